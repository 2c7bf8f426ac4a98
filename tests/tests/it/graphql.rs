//! Black-box tests of GraphQL on both stores: introspection and the depth
//! limit, findings that match REST's, mutations and their error codes,
//! scopes and tenant isolation, and the audit subscription over
//! `graphql-transport-ws`.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use palisade_tests::{on_both_stores, Auth, Backend, Server};
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

on_both_stores!(
    introspection_works_and_deep_queries_are_refused,
    findings_match_rest_with_the_same_filters,
    mutations_change_findings_and_errors_carry_rest_codes,
    scopes_and_tenants_are_enforced,
    the_subscription_receives_an_event_caused_by_rest,
    a_mutation_retried_with_an_idempotency_key_runs_once,
    a_revoked_key_ends_its_subscription,
    websocket_operations_count_against_the_rate_limits,
);

async fn start(backend: &Backend) -> (Server, String) {
    let server = Server::start_admin(backend).await;
    let (_, owner) = server.create_tenant("Acme", "unlimited").await;
    (server, owner)
}

/// Posts a GraphQL document; the whole answer (200 expected).
pub(crate) async fn graphql(server: &Server, key: &str, query: &str, variables: Value) -> Value {
    let (status, body) = server
        .call(
            Method::POST,
            "/graphql",
            Auth::ApiKey(key),
            Some(json!({ "query": query, "variables": variables })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The data of an answer that must have no errors.
async fn data(server: &Server, key: &str, query: &str, variables: Value) -> Value {
    let body = graphql(server, key, query, variables).await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"].clone()
}

pub(crate) fn finding(title: &str, severity: &str, asset: &str) -> Value {
    json!({
        "product": "custom",
        "category": "vulnerability",
        "title": title,
        "severity": severity,
        "asset_identifier": asset,
    })
}

async fn ingest(server: &Server, key: &str, body: Value) -> String {
    let (status, response) = server
        .call(Method::POST, "/v1/findings", Auth::ApiKey(key), Some(body))
        .await;
    assert_eq!(status, 201, "{response}");
    response["data"]["id"].as_str().unwrap().to_string()
}

async fn introspection_works_and_deep_queries_are_refused(backend: &Backend) {
    let (server, owner) = start(backend).await;
    let schema = data(
        &server,
        &owner,
        "{ __schema { queryType { name } mutationType { name } subscriptionType { name } types { name } } }",
        json!({}),
    )
    .await;
    assert_eq!(schema["__schema"]["queryType"]["name"], "Query");
    assert_eq!(
        schema["__schema"]["subscriptionType"]["name"],
        "Subscription"
    );
    let names: Vec<&str> = schema["__schema"]["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for name in [
        "Finding",
        "FindingConnection",
        "Asset",
        "AuditEvent",
        "Severity",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    // Severity values follow async-graphql's naming.
    let severity = data(
        &server,
        &owner,
        r#"{ __type(name: "Severity") { enumValues { name } } }"#,
        json!({}),
    )
    .await;
    assert_eq!(severity["__type"]["enumValues"][1]["name"], "HIGH");

    // Depth 20: refused before anything runs, with a clear message.
    let deep = format!(
        "{{ __type(name: \"Query\") {{ {} name {} }} }}",
        "ofType { ".repeat(19),
        "}".repeat(19)
    );
    let refused = graphql(&server, &owner, &deep, json!({})).await;
    let errors = refused["errors"].as_array().expect("errors");
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("nested too deep"),
        "{refused}"
    );
    assert_eq!(errors[0]["extensions"]["code"], "bad_request");
    assert!(refused["data"].is_null(), "{refused}");

    // GraphiQL on GET, without a key; POST needs one.
    let page = server
        .http
        .get(server.url("/graphql"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains("graphiql"));
    let (status, body) = server
        .call(
            Method::POST,
            "/graphql",
            Auth::None,
            Some(json!({"query": "{ tenant { id } }"})),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "missing_api_key");
}

const FINDINGS: &str = r#"
query Findings($first: Int, $after: String, $filter: FindingFilter, $sort: FindingSortInput) {
  findings(first: $first, after: $after, filter: $filter, sort: $sort, consistency: STRONG) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage }
    edges { cursor node { id title severity status riskScore asset { id identifier riskScore } } }
  }
}"#;

fn node_ids(findings: &Value) -> Vec<String> {
    findings["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_string())
        .collect()
}

async fn findings_match_rest_with_the_same_filters(backend: &Backend) {
    let (server, owner) = start(backend).await;
    let severities = ["critical", "high", "medium", "low", "high", "critical"];
    for i in 0..18 {
        let severity = severities[i % severities.len()];
        let asset = format!("host-{}.example.com", i % 4);
        let mut body = finding(&format!("Finding {i}"), severity, &asset);
        body["tags"] = json!([if i % 2 == 0 { "even" } else { "odd" }]);
        ingest(&server, &owner, body).await;
    }
    let cases = [
        (
            "severity=high,critical&sort=risk&order=desc",
            json!({"severity": ["HIGH", "CRITICAL"]}),
            json!({"field": "RISK", "order": "DESC"}),
        ),
        (
            "tag=even&asset=host-2.example.com&sort=title&order=asc",
            json!({"tag": "even", "asset": "host-2.example.com"}),
            json!({"field": "TITLE", "order": "ASC"}),
        ),
        (
            "search=finding%201&min_risk=10",
            json!({"search": "finding 1", "minRisk": 10}),
            json!({}),
        ),
    ];
    for (rest_query, filter, sort) in cases {
        let (status, rest) = server
            .call(
                Method::GET,
                &format!("/v1/findings?per_page=100&consistency=strong&{rest_query}"),
                Auth::ApiKey(&owner),
                None,
            )
            .await;
        assert_eq!(status, 200, "{rest}");
        let rest_ids: Vec<String> = rest["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_str().unwrap().to_string())
            .collect();
        assert!(!rest_ids.is_empty(), "{rest_query} matched nothing");
        let graph = data(
            &server,
            &owner,
            FINDINGS,
            json!({"first": 100, "filter": filter, "sort": sort}),
        )
        .await;
        assert_eq!(node_ids(&graph["findings"]), rest_ids, "{rest_query}");
        assert_eq!(graph["findings"]["totalCount"], rest["meta"]["total"]);
    }

    // Pages follow the cursors, and each finding's asset is loaded.
    let first = data(
        &server,
        &owner,
        FINDINGS,
        json!({"first": 5, "sort": {"field": "TITLE", "order": "ASC"}}),
    )
    .await;
    let page = &first["findings"];
    assert_eq!(page["totalCount"], 18);
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let edge = &page["edges"][0]["node"];
    assert_eq!(edge["title"], "Finding 0");
    assert_eq!(edge["severity"], "CRITICAL");
    assert_eq!(edge["status"], "OPEN");
    assert_eq!(edge["asset"]["identifier"], "host-0.example.com");
    let cursor = page["edges"][4]["cursor"].as_str().unwrap();
    let second = data(
        &server,
        &owner,
        FINDINGS,
        json!({"first": 5, "after": cursor, "sort": {"field": "TITLE", "order": "ASC"}}),
    )
    .await;
    let (status, rest) = server
        .call(
            Method::GET,
            "/v1/findings?per_page=5&page=2&sort=title&order=asc",
            Auth::ApiKey(&owner),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let rest_ids: Vec<String> = rest["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(node_ids(&second["findings"]), rest_ids);
    assert_eq!(second["findings"]["pageInfo"]["hasPreviousPage"], true);

    // The other read models answer too.
    let others = data(
        &server,
        &owner,
        r#"{ tenant { name plan status }
             overview(consistency: STRONG) { riskScore riskLevel findings { total open } assets { total atRisk } topAssets { identifier } }
             assets(first: 2, sort: {field: RISK}) { totalCount edges { node { identifier riskScore } } }
             asset(id: "host-1.example.com") { identifier openFindings }
             riskHistory(days: 3) { date riskScore }
             timeline(first: 3) { edges { cursor node { eventType summary } } pageInfo { hasNextPage } }
             auditEvents(first: 2) { edges { cursor node { seq eventType hash } } }
             auditVerification { verified lastSeq }
             apiKeys { totalCount edges { node { name scopes environment } } }
             projections { name lagEvents } }"#,
        json!({}),
    )
    .await;
    assert_eq!(others["tenant"]["name"], "Acme");
    assert_eq!(others["tenant"]["plan"], "unlimited");
    assert_eq!(others["overview"]["findings"]["total"], 18);
    assert_eq!(others["assets"]["totalCount"], 4);
    assert_eq!(others["asset"]["openFindings"], 5);
    assert_eq!(others["riskHistory"].as_array().unwrap().len(), 3);
    assert_eq!(others["timeline"]["edges"].as_array().unwrap().len(), 3);
    assert_eq!(others["timeline"]["pageInfo"]["hasNextPage"], true);
    assert_eq!(
        others["auditEvents"]["edges"][0]["node"]["eventType"],
        "TenantCreated"
    );
    assert_eq!(others["auditVerification"]["verified"], true);
    assert_eq!(others["apiKeys"]["totalCount"], 1);
    assert_eq!(others["apiKeys"]["edges"][0]["node"]["environment"], "LIVE");
    assert!(others["projections"].as_array().unwrap().len() >= 4);
}

async fn mutations_change_findings_and_errors_carry_rest_codes(backend: &Backend) {
    let (server, owner) = start(backend).await;
    let ingested = data(
        &server,
        &owner,
        r#"mutation Ingest($input: IngestFindingInput!) {
             ingestFinding(input: $input) { deduplicated finding { id status severity riskScore version } } }"#,
        json!({"input": {
            "product": "custom", "category": "vulnerability", "title": "SQL injection",
            "severity": "HIGH", "assetIdentifier": "app.example.com"
        }}),
    )
    .await;
    let finding = &ingested["ingestFinding"]["finding"];
    assert_eq!(ingested["ingestFinding"]["deduplicated"], false);
    assert_eq!(finding["status"], "OPEN");
    assert_eq!(finding["riskScore"], 56.0);
    let id = finding["id"].as_str().unwrap().to_string();

    let dismissed = data(
        &server,
        &owner,
        r#"mutation Dismiss($input: DismissFindingInput!) {
             dismissFinding(input: $input) { id status statusReason version history { eventType } } }"#,
        json!({"input": {"id": id, "reason": "false positive"}}),
    )
    .await;
    assert_eq!(dismissed["dismissFinding"]["status"], "DISMISSED");
    assert_eq!(
        dismissed["dismissFinding"]["statusReason"],
        "false positive"
    );
    assert_eq!(
        dismissed["dismissFinding"]["history"],
        json!([{"eventType": "FindingIngested"}, {"eventType": "FindingDismissed"}])
    );

    // The same impossible transition through both interfaces: one code.
    let (status, rest) = server
        .call(
            Method::POST,
            &format!("/v1/findings/{id}/confirm"),
            Auth::ApiKey(&owner),
            None,
        )
        .await;
    assert_eq!(status, 409, "{rest}");
    let refused = graphql(
        &server,
        &owner,
        "mutation($id: String!) { confirmFinding(input: {id: $id}) { id } }",
        json!({"id": id}),
    )
    .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"],
        rest["error"]["code"]
    );
    // A stale expected version is the REST 412.
    let stale = graphql(
        &server,
        &owner,
        "mutation($id: String!) { reopenFinding(input: {id: $id, expectedVersion: 1}) { id } }",
        json!({"id": id}),
    )
    .await;
    assert_eq!(
        stale["errors"][0]["extensions"]["code"], "precondition_failed",
        "{stale}"
    );
    // Invalid input is a validation error naming the field.
    let invalid = graphql(
        &server,
        &owner,
        r#"mutation { ingestFinding(input: {product: "", category: "x", title: "t", severity: LOW, assetIdentifier: "a"}) { deduplicated } }"#,
        json!({}),
    )
    .await;
    assert_eq!(
        invalid["errors"][0]["extensions"]["code"], "validation_error",
        "{invalid}"
    );
    assert!(
        invalid["errors"][0]["extensions"]["details"][0]["field"].is_string(),
        "{invalid}"
    );

    // Risk recalculation: the dismissed finding no longer counts.
    let recalculated = data(
        &server,
        &owner,
        "mutation { recalculateRisk(input: {dryRun: true}) { previous recalculated drift dryRun findingsCounted } }",
        json!({}),
    )
    .await;
    assert_eq!(
        recalculated["recalculateRisk"],
        json!({"previous": 0.0, "recalculated": 0.0, "drift": 0.0, "dryRun": true, "findingsCounted": 0})
    );

    // Keys through GraphQL: the value is shown once, revocation works.
    let issued = data(
        &server,
        &owner,
        r#"mutation { issueApiKey(input: {name: "ci", principal: "bot", scopes: ["findings:read"]}) { id key scopes environment } }"#,
        json!({}),
    )
    .await;
    let key = issued["issueApiKey"]["key"].as_str().unwrap().to_string();
    let key_id = issued["issueApiKey"]["id"].as_str().unwrap().to_string();
    assert_eq!(issued["issueApiKey"]["scopes"], json!(["findings:read"]));
    let visible = data(&server, &key, "{ findings { totalCount } }", json!({})).await;
    assert_eq!(visible["findings"]["totalCount"], 1);
    let revoked = data(
        &server,
        &owner,
        "mutation($id: String!) { revokeApiKey(input: {id: $id}) { id revokedAt } }",
        json!({"id": key_id}),
    )
    .await;
    assert!(revoked["revokeApiKey"]["revokedAt"].is_string());
    let (status, _) = server
        .call(
            Method::POST,
            "/graphql",
            Auth::ApiKey(&key),
            Some(json!({"query": "{ findings { totalCount } }"})),
        )
        .await;
    assert_eq!(status, 401);
}

async fn scopes_and_tenants_are_enforced(backend: &Backend) {
    let (server, owner_a) = start(backend).await;
    let (_, owner_b) = server.create_tenant("Beta", "unlimited").await;
    let id_b = ingest(
        &server,
        &owner_b,
        finding("B's secret finding", "high", "b.example.com"),
    )
    .await;
    let seen = data(
        &server,
        &owner_a,
        r#"query($id: String!) {
             finding(id: $id, consistency: STRONG) { id }
             asset(id: "b.example.com") { id }
             findings { totalCount } }"#,
        json!({"id": id_b}),
    )
    .await;
    assert_eq!(
        seen,
        json!({"finding": null, "asset": null, "findings": {"totalCount": 0}})
    );
    let own = data(
        &server,
        &owner_b,
        r#"query($id: String!) { finding(id: $id, consistency: STRONG) { title } }"#,
        json!({"id": id_b}),
    )
    .await;
    assert_eq!(own["finding"]["title"], "B's secret finding");

    // A key without audit:read gets `forbidden` on that field only.
    let issued = data(
        &server,
        &owner_a,
        r#"mutation { issueApiKey(input: {name: "ro", principal: "bot", scopes: ["findings:read"]}) { key } }"#,
        json!({}),
    )
    .await;
    let reader = issued["issueApiKey"]["key"].as_str().unwrap().to_string();
    let partial = graphql(
        &server,
        &reader,
        "{ findings { totalCount } auditEvents { edges { cursor } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        partial["errors"][0]["extensions"]["code"], "forbidden",
        "{partial}"
    );
    assert_eq!(partial["errors"][0]["path"], json!(["auditEvents"]));
    assert_eq!(partial["data"]["findings"]["totalCount"], 0);
    let write = graphql(
        &server,
        &reader,
        r#"mutation { ingestFinding(input: {product: "p", category: "c", title: "t", severity: LOW, assetIdentifier: "a"}) { deduplicated } }"#,
        json!({}),
    )
    .await;
    assert_eq!(
        write["errors"][0]["extensions"]["code"], "forbidden",
        "{write}"
    );
}

/// A `graphql-transport-ws` client.
pub(crate) struct Subscriber {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Subscriber {
    pub(crate) async fn connect(server: &Server, init: Value) -> Self {
        let mut subscriber = Self::open(server).await;
        subscriber
            .send(json!({"type": "connection_init", "payload": init}))
            .await;
        subscriber
    }

    /// A socket that has not sent `connection_init`.
    pub(crate) async fn open(server: &Server) -> Self {
        let url = server.url("/graphql/ws").replacen("http", "ws", 1);
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        let (socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
        assert_eq!(
            response.headers()["sec-websocket-protocol"],
            "graphql-transport-ws"
        );
        Self { socket }
    }

    pub(crate) async fn send(&mut self, message: Value) {
        self.try_send(message).await.unwrap();
    }

    /// Sends, and says whether the socket took the message (a server that
    /// refuses it may close the connection while it is being written).
    pub(crate) async fn try_send(
        &mut self,
        message: Value,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
    }

    /// The close frame's code and reason, skipping other messages; None
    /// when `limit` passes first or the socket ends without one.
    pub(crate) async fn closed(&mut self, limit: Duration) -> Option<(u16, String)> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return frame.map(|f| (u16::from(f.code), f.reason.to_string()))
                }
                Ok(Some(Ok(_))) => continue,
                _ => return None,
            }
        }
    }

    /// The next JSON message; None when the socket closes or `limit` passes.
    pub(crate) async fn next(&mut self, limit: Duration) -> Option<Value> {
        loop {
            match tokio::time::timeout(limit, self.socket.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    return Some(serde_json::from_str(&text).unwrap())
                }
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                _ => return None,
            }
        }
    }
}

async fn the_subscription_receives_an_event_caused_by_rest(backend: &Backend) {
    let (server, owner) = start(backend).await;
    let (tenant_b, owner_b) = server.create_tenant("Beta", "unlimited").await;
    // "From now" means from the audit view's head: wait until the tenant's
    // own creation events (seq 1 and 2) are in it, so they are not "new".
    let (status, body) = server
        .call(
            Method::GET,
            "/v1/audit/events?consistency=strong",
            Auth::ApiKey(&owner),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 2, "{body}");
    let mut subscriber = Subscriber::connect(&server, json!({"apiKey": owner})).await;
    let ack = subscriber.next(Duration::from_secs(10)).await.unwrap();
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    subscriber
        .send(json!({
            "id": "1",
            "type": "subscribe",
            "payload": {"query": "subscription { auditEvents { seq eventType tenantId aggregateId data } }"}
        }))
        .await;
    // The subscriber is counted once it has read the head it starts from.
    let started = std::time::Instant::now();
    loop {
        let metrics = server.metrics().await;
        if metrics.contains("palisade_audit_subscribers 1") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{metrics}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ingest(
        &server,
        &owner_b,
        finding("Another tenant's", "low", "b.example.com"),
    )
    .await;
    let id = ingest(
        &server,
        &owner,
        finding("Seen live", "medium", "live.example.com"),
    )
    .await;
    let message = subscriber
        .next(Duration::from_secs(20))
        .await
        .expect("a next message");
    assert_eq!(message["type"], "next", "{message}");
    assert_eq!(message["id"], "1");
    let event = &message["payload"]["data"]["auditEvents"];
    assert_eq!(event["eventType"], "FindingIngested", "{message}");
    assert_eq!(event["aggregateId"], id.as_str());
    assert_eq!(event["seq"], 3);
    assert_ne!(event["tenantId"], tenant_b.as_str());
    assert_eq!(event["data"]["details"]["title"], "Seen live");

    // A wrong key in connection_init is refused.
    let mut stranger = Subscriber::connect(&server, json!({"apiKey": "pal_live_not_a_key"})).await;
    let answer = stranger.next(Duration::from_secs(10)).await;
    assert!(
        answer.is_none() || answer.as_ref().unwrap()["type"] != "connection_ack",
        "{answer:?}"
    );
}

/// POST /graphql with an Idempotency-Key: status, replayed?, body.
async fn post_with_key(
    server: &Server,
    key: &str,
    idempotency_key: &str,
    query: &str,
    variables: Value,
) -> (u16, bool, Value) {
    let body = json!({ "query": query, "variables": variables });
    server
        .post_idempotent("/graphql", key, idempotency_key, &body)
        .await
}

/// A mutation is a POST like any REST command: a retry with the same
/// Idempotency-Key replays the first answer and appends nothing.
async fn a_mutation_retried_with_an_idempotency_key_runs_once(backend: &Backend) {
    let (server, owner) = start(backend).await;
    let id = ingest(
        &server,
        &owner,
        finding("Open redirect", "low", "r.example.com"),
    )
    .await;
    let comment = r#"mutation($input: CommentOnFindingInput!) {
        commentOnFinding(input: $input) { id version history { eventType } } }"#;
    let variables = json!({"input": {"id": id, "body": "Looking into it"}});
    let (status, replayed, first) =
        post_with_key(&server, &owner, "comment-1", comment, variables.clone()).await;
    assert_eq!(status, 200, "{first}");
    assert!(!replayed);
    assert!(first.get("errors").is_none(), "{first}");
    let (status, replayed, again) =
        post_with_key(&server, &owner, "comment-1", comment, variables).await;
    assert_eq!(status, 200, "{again}");
    assert!(replayed, "the retry is a replay");
    assert_eq!(again, first);

    // One comment event, not two.
    let history = data(
        &server,
        &owner,
        "query($id: String!) { finding(id: $id, consistency: STRONG) { version history { eventType } } }",
        json!({"id": id}),
    )
    .await;
    assert_eq!(
        history["finding"]["history"],
        json!([{"eventType": "FindingIngested"}, {"eventType": "FindingCommented"}])
    );

    // The same key with another document is refused, as in REST.
    let (status, _, refused) = post_with_key(
        &server,
        &owner,
        "comment-1",
        comment,
        json!({"input": {"id": id, "body": "Something else"}}),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["code"], "idempotency_key_reused");
}

/// Revoking the key that opened a subscription ends it: an error with the
/// REST code, then `complete`.
async fn a_revoked_key_ends_its_subscription(backend: &Backend) {
    let (server, owner) = start(backend).await;
    let (key_id, reader) = server.issue_api_key(&owner, "ui", &["audit:read"]).await;
    let mut subscriber = Subscriber::connect(&server, json!({"apiKey": reader})).await;
    let ack = subscriber.next(Duration::from_secs(10)).await.unwrap();
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    subscriber
        .send(json!({
            "id": "1",
            "type": "subscribe",
            "payload": {"query": "subscription { auditEvents(after: 0) { seq eventType } }"}
        }))
        .await;
    for seq in 1..=3 {
        let message = subscriber.next(Duration::from_secs(20)).await.unwrap();
        assert_eq!(
            message["payload"]["data"]["auditEvents"]["seq"], seq,
            "{message}"
        );
    }
    server.revoke_api_key(&owner, &key_id).await;
    let mut seen = Vec::new();
    loop {
        let message = subscriber
            .next(Duration::from_secs(20))
            .await
            .unwrap_or_else(|| panic!("the subscription did not end: {seen:?}"));
        let kind = message["type"].as_str().unwrap().to_string();
        seen.push(message);
        if kind == "complete" {
            break;
        }
    }
    // The revocation's own record, the refusal, then the end.
    let refusal = &seen[seen.len() - 2];
    assert_eq!(
        refusal["payload"]["errors"][0]["extensions"]["code"], "invalid_api_key",
        "{seen:?}"
    );
    assert_eq!(
        seen[0]["payload"]["data"]["auditEvents"]["eventType"], "ApiKeyRevoked",
        "{seen:?}"
    );
}

/// Every operation on a websocket is a request of its key: it loads assets
/// as a POST does, and the free plan's eleventh request in a minute is
/// refused with the REST code, on the socket and over HTTP alike.
async fn websocket_operations_count_against_the_rate_limits(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (_, key) = server.create_tenant("Acme", "free").await;
    // Eleven requests must fall in one minute window.
    let second = chrono::Timelike::second(&chrono::Utc::now());
    if second > 40 {
        tokio::time::sleep(Duration::from_secs(u64::from(61 - second))).await;
    }
    ingest(
        &server,
        &key,
        finding("Over the socket", "high", "ws.example.com"),
    )
    .await;
    let mut socket = Subscriber::connect(&server, json!({"apiKey": key})).await;
    let ack = socket.next(Duration::from_secs(10)).await.unwrap();
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    // Requests 2 to 10 (the ingest was the first).
    let answer = operation(
        &mut socket,
        1,
        "{ findings(consistency: STRONG) { edges { node { title asset { identifier } } } } }",
    )
    .await;
    assert!(answer.get("errors").is_none(), "{answer}");
    assert_eq!(
        answer["data"]["findings"]["edges"][0]["node"]["asset"]["identifier"],
        "ws.example.com"
    );
    for id in 2..=9 {
        let answer = operation(&mut socket, id, "{ tenant { name } }").await;
        assert!(answer.get("errors").is_none(), "operation {id}: {answer}");
    }
    let refused = operation(&mut socket, 10, "{ tenant { name } }").await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "rate_limit_exceeded",
        "{refused}"
    );
    assert!(refused["data"].is_null(), "{refused}");
    drop(socket);
    let (status, body) = server
        .call(Method::GET, "/v1/usage", Auth::ApiKey(&key), None)
        .await;
    assert_eq!(status, 429, "{body}");
}

/// Runs one query over the socket: its `next` payload (then `complete`).
pub(crate) async fn operation(socket: &mut Subscriber, id: u32, query: &str) -> Value {
    let id = id.to_string();
    socket
        .send(json!({"id": id, "type": "subscribe", "payload": {"query": query}}))
        .await;
    let answer = socket.next(Duration::from_secs(20)).await.unwrap();
    assert_eq!(answer["type"], "next", "{answer}");
    assert_eq!(answer["id"], id.as_str());
    let complete = socket.next(Duration::from_secs(20)).await.unwrap();
    assert_eq!(complete["type"], "complete", "{complete}");
    answer["payload"].clone()
}
