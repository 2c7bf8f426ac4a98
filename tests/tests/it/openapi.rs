//! The OpenAPI document: it parses as OpenAPI 3.1, lists exactly the routes
//! the server has, and every route it lists answers in the envelope.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use palisade_tests::{Backend, Server};
use serde_json::Value;

/// Every REST route, as (method, path). A route added to the server without
/// being added here (or removed) fails `the_document_lists_every_route`.
const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/access/policies"),
    ("get", "/v1/access/policies"),
    ("get", "/v1/access/policies/{id}"),
    ("patch", "/v1/access/policies/{id}"),
    ("post", "/v1/access/requests"),
    ("get", "/v1/access/requests"),
    ("get", "/v1/access/requests/{id}"),
    ("post", "/v1/access/requests/{id}/review"),
    ("post", "/v1/access/requests/{id}/withdraw"),
    ("post", "/v1/access/requests/{id}/revoke"),
    ("post", "/v1/access/check"),
    ("get", "/v1/access/grants"),
    ("get", "/v1/access/stats"),
    ("post", "/v1/access/simulate"),
    ("post", "/v1/webhooks"),
    ("get", "/v1/webhooks"),
    ("get", "/v1/webhooks/event-types"),
    ("get", "/v1/webhooks/{id}"),
    ("patch", "/v1/webhooks/{id}"),
    ("delete", "/v1/webhooks/{id}"),
    ("post", "/v1/webhooks/{id}/rotate-secret"),
    ("post", "/v1/webhooks/{id}/enable"),
    ("post", "/v1/webhooks/{id}/disable"),
    ("post", "/v1/webhooks/{id}/test"),
    ("get", "/v1/webhooks/{id}/deliveries"),
    ("post", "/v1/webhooks/{id}/deliveries/{delivery_id}/retry"),
    ("post", "/v1/webhooks/{id}/replay"),
    ("get", "/v1/webhooks/{id}/stats"),
    ("post", "/v1/ingestion/upload"),
    ("get", "/v1/ingestion/jobs"),
    ("get", "/v1/ingestion/jobs/{id}"),
    ("delete", "/v1/api-keys/{id}"),
    ("get", "/v1/admin/projections"),
    ("get", "/v1/admin/tenants"),
    ("get", "/v1/admin/tenants/{id}"),
    ("get", "/v1/api-keys"),
    ("get", "/v1/api-keys/{id}"),
    ("get", "/v1/assets"),
    ("get", "/v1/assets/{id}"),
    ("get", "/v1/assets/{id}/findings"),
    ("get", "/v1/audit/events"),
    ("get", "/v1/audit/stream"),
    ("get", "/v1/audit/verify"),
    ("get", "/v1/findings"),
    ("get", "/v1/findings/{id}"),
    ("get", "/v1/findings/{id}/history"),
    ("get", "/v1/health"),
    ("get", "/v1/openapi.json"),
    ("get", "/v1/overview"),
    ("get", "/v1/risk/history"),
    ("get", "/v1/timeline"),
    ("get", "/v1/usage"),
    ("get", "/v1/whoami"),
    ("post", "/v1/admin/tenants"),
    ("post", "/v1/admin/tenants/{id}/plan"),
    ("post", "/v1/admin/tenants/{id}/reactivate"),
    ("post", "/v1/admin/tenants/{id}/suspend"),
    ("post", "/v1/api-keys"),
    ("post", "/v1/findings"),
    ("post", "/v1/findings/bulk"),
    ("post", "/v1/findings/{id}/accept-risk"),
    ("post", "/v1/findings/{id}/assign"),
    ("post", "/v1/findings/{id}/comments"),
    ("post", "/v1/findings/{id}/confirm"),
    ("post", "/v1/findings/{id}/dismiss"),
    ("post", "/v1/findings/{id}/remediate"),
    ("post", "/v1/findings/{id}/reopen"),
    ("post", "/v1/findings/{id}/severity"),
    ("post", "/v1/findings/{id}/ticket"),
    ("post", "/v1/risk/recalculate"),
    ("put", "/v1/secrets/data/{path}"),
    ("get", "/v1/secrets/data/{path}"),
    ("get", "/v1/secrets/metadata"),
    ("get", "/v1/secrets/metadata/{path}"),
    ("patch", "/v1/secrets/metadata/{path}"),
    ("delete", "/v1/secrets/metadata/{path}"),
    ("post", "/v1/secrets/delete/{path}"),
    ("post", "/v1/secrets/undelete/{path}"),
    ("post", "/v1/secrets/destroy/{path}"),
    ("post", "/v1/secrets/rollback/{path}"),
    ("post", "/v1/secrets/deprecate/{path}"),
    ("post", "/v1/secrets/compare/{path}"),
    ("get", "/v1/secrets/audit/{path}"),
    ("get", "/v1/secrets/stats"),
    ("post", "/v1/secrets/leak-check/{path}"),
    ("get", "/v1/secrets/config"),
    ("patch", "/v1/secrets/config"),
    ("post", "/v1/leakage/incidents"),
    ("get", "/v1/leakage/incidents"),
    ("get", "/v1/leakage/incidents/{id}"),
    ("patch", "/v1/leakage/incidents/{id}"),
    ("get", "/v1/keys"),
    ("post", "/v1/keys"),
    ("get", "/v1/keys/{id}"),
    ("patch", "/v1/keys/{id}"),
    ("post", "/v1/keys/{id}/rotate"),
    ("post", "/v1/keys/{id}/disable"),
    ("post", "/v1/keys/{id}/enable"),
    ("post", "/v1/keys/{id}/schedule-deletion"),
    ("post", "/v1/keys/{id}/cancel-deletion"),
    ("get", "/v1/keys/{id}/usage"),
    ("get", "/v1/keys/{id}/public-key"),
    ("post", "/v1/keys/{id}/encrypt"),
    ("post", "/v1/keys/{id}/decrypt"),
    ("post", "/v1/keys/{id}/rewrap"),
    ("post", "/v1/keys/{id}/data-key"),
    ("post", "/v1/keys/{id}/sign"),
    ("post", "/v1/keys/{id}/verify"),
    ("post", "/v1/keys/{id}/mac"),
    ("post", "/v1/keys/{id}/mac/verify"),
    ("post", "/v1/keys/{id}/decapsulate"),
    ("get", "/v1/kms/analytics/usage"),
    ("get", "/v1/kms/analytics/applications"),
    ("get", "/v1/kms/analytics/keys/{id}/summary"),
    ("get", "/v1/kms/crypto-agility/policy"),
    ("get", "/v1/kms/crypto-agility/algorithm-usage"),
    ("get", "/v1/kms/crypto-agility/pqc-adoption"),
    ("get", "/v1/kms/crypto-agility/risk-assessment"),
    ("post", "/v1/kms/analytics/alert-rules"),
    ("get", "/v1/kms/analytics/alert-rules"),
    ("get", "/v1/kms/analytics/alert-rules/{id}"),
    ("patch", "/v1/kms/analytics/alert-rules/{id}"),
    ("delete", "/v1/kms/analytics/alert-rules/{id}"),
    ("get", "/v1/kms/analytics/alerts"),
    ("post", "/v1/kms/analytics/alerts/{id}/acknowledge"),
    ("post", "/v1/kms/crypto-agility/migration-plans"),
    ("get", "/v1/kms/crypto-agility/migration-plans"),
    ("get", "/v1/kms/crypto-agility/migration-plans/{id}"),
    ("patch", "/v1/kms/crypto-agility/migration-plans/{id}"),
    ("get", "/v1/kms/crypto-agility/migration-readiness"),
];

async fn document(server: &Server) -> (String, Value) {
    let response = server
        .http
        .get(server.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap();
    (text, json)
}

fn operations(document: &Value) -> Vec<(String, String, Value)> {
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                operations.push((method.clone(), path.clone(), operation.clone()));
            }
        }
    }
    operations
}

#[tokio::test]
async fn the_document_parses_as_openapi_3_1() {
    let backend = Backend::sqlite();
    let server = Server::start(&backend).await;
    let (text, json) = document(&server).await;
    let spec = oas3::from_json(&text).expect("a valid OpenAPI 3.1 document");
    assert!(spec.openapi.starts_with("3.1"), "{}", spec.openapi);
    assert_eq!(
        spec.paths.as_ref().map(|p| p.len()),
        json["paths"].as_object().map(|p| p.len())
    );
    let schemes = &json["components"]["securitySchemes"];
    for scheme in ["api_key", "bearer_api_key", "admin_token"] {
        assert!(
            schemes.get(scheme).is_some(),
            "security scheme {scheme} missing"
        );
    }
    assert!(json["components"]["schemas"].get("ErrorEnvelope").is_some());
    let docs = server.http.get(server.url("/docs")).send().await.unwrap();
    assert_eq!(docs.status().as_u16(), 200);
    assert!(docs.text().await.unwrap().contains("/v1/openapi.json"));
    drop(server);
    backend.cleanup().await;
}

#[tokio::test]
async fn the_document_lists_every_route() {
    let backend = Backend::sqlite();
    let server = Server::start(&backend).await;
    let (_, json) = document(&server).await;
    let documented: BTreeSet<(String, String)> = operations(&json)
        .into_iter()
        .map(|(m, p, _)| (m, p))
        .collect();
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, expected);
    drop(server);
    backend.cleanup().await;
}

/// Every documented route is served (a route that is not would be a 404),
/// and answers a bad credential with the 401 envelope; public routes answer 200.
#[tokio::test]
async fn every_documented_route_answers_in_the_envelope() {
    let backend = Backend::sqlite();
    let server = Server::start(&backend).await;
    let (_, json) = document(&server).await;
    let bad_key = "pal_live_0000000000000000000000000000000000000";
    for (method, path, operation) in operations(&json) {
        let url = server.url(&path.replace("{id}", "x"));
        let method: reqwest::Method = method.to_uppercase().parse().unwrap();
        let security = operation["security"].to_string();
        let request = server
            .http
            .request(method.clone(), &url)
            .header("content-type", "application/json")
            .body("{}");
        let (request, expected) = if security.contains("admin_token") {
            (
                request.bearer_auth("not-the-admin-token"),
                Some("invalid_admin_token"),
            )
        } else if security.contains("api_key") {
            (
                request.header("x-api-key", bad_key),
                Some("invalid_api_key"),
            )
        } else {
            (request, None)
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        match expected {
            Some(code) => {
                assert_eq!(
                    (status, body["error"]["code"].as_str()),
                    (401, Some(code)),
                    "{method} {path}: {body}"
                );
                assert_eq!(body["success"], false);
                assert!(body["error"]["message"].is_string());
                assert!(
                    body["meta"]["request_id"].is_string(),
                    "{method} {path}: {body}"
                );
            }
            None => assert_eq!(status, 200, "{method} {path}"),
        }
    }
    drop(server);
    backend.cleanup().await;
}

fn parameter<'a>(document: &'a Value, method: &str, path: &str, name: &str) -> &'a Value {
    document["paths"][path][method]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{method} {path} has no parameter {name}"))
}

/// The document states the bounds the server enforces: text limits from the
/// domain's table, enums, formats, numeric bounds, the statuses a body or a
/// query can earn, and the shape of an audit stream event.
#[tokio::test]
async fn the_document_states_the_servers_bounds() {
    use palisade_domain::limits;
    let backend = Backend::sqlite();
    let server = Server::start(&backend).await;
    let (_, json) = document(&server).await;
    let schemas = &json["components"]["schemas"];

    let title = &schemas["IngestFindingRequest"]["properties"]["title"];
    assert_eq!(title["minLength"], 1);
    assert_eq!(title["maxLength"], limits::TITLE.max_chars);
    assert!(title["pattern"].is_string(), "{title}");
    let body = &schemas["CommentRequest"]["properties"]["body"];
    assert_eq!(body["maxLength"], limits::COMMENT_BODY.max_chars);
    assert_eq!(
        schemas["IngestFindingRequest"]["properties"]["severity"]["enum"],
        serde_json::json!(["critical", "high", "medium", "low", "info"])
    );
    assert_eq!(
        schemas["IssueApiKeyRequest"]["properties"]["scopes"]["minItems"],
        1
    );
    assert!(
        schemas["IssueApiKeyRequest"]["properties"]["scopes"]["items"]["enum"]
            .as_array()
            .unwrap()
            .contains(&Value::from("findings:read"))
    );
    let findings = &schemas["BulkIngestRequest"]["properties"]["findings"];
    assert_eq!(
        (&findings["minItems"], &findings["maxItems"]),
        (&1.into(), &1000.into())
    );

    let per_page = &parameter(&json, "get", "/v1/findings", "per_page")["schema"];
    assert_eq!(
        (&per_page["minimum"], &per_page["maximum"]),
        (&1.into(), &100.into())
    );
    assert_eq!(
        parameter(&json, "get", "/v1/findings", "page")["schema"]["minimum"],
        1
    );
    assert_eq!(
        parameter(&json, "get", "/v1/findings", "consistency")["schema"]["enum"],
        serde_json::json!(["strong", "eventual"])
    );
    assert_eq!(
        parameter(&json, "get", "/v1/findings", "created_after")["schema"]["format"],
        "date-time"
    );
    let severity = parameter(&json, "get", "/v1/findings", "severity");
    assert_eq!(
        (&severity["style"], &severity["explode"]),
        (&"form".into(), &false.into())
    );
    assert!(parameter(&json, "get", "/v1/findings", "sort")["schema"]["enum"].is_array());
    assert_eq!(
        parameter(&json, "get", "/v1/audit/events", "limit")["schema"]["maximum"],
        500
    );
    assert_eq!(
        parameter(&json, "get", "/v1/timeline", "limit")["schema"]["maximum"],
        200
    );
    assert_eq!(
        parameter(&json, "get", "/v1/risk/history", "days")["schema"]["maximum"],
        365
    );
    assert_eq!(
        parameter(&json, "get", "/v1/audit/stream", "Last-Event-ID")["schema"]["minimum"],
        0
    );
    let key = &parameter(&json, "post", "/v1/findings", "Idempotency-Key")["schema"];
    assert_eq!(
        (&key["minLength"], &key["maxLength"]),
        (&1.into(), &255.into())
    );

    for (method, path, operation) in operations(&json) {
        let responses = &operation["responses"];
        if operation.get("requestBody").is_some() {
            for status in ["400", "413", "415", "422"] {
                assert!(
                    responses.get(status).is_some(),
                    "{method} {path} lacks {status}"
                );
            }
        }
        if operation["parameters"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["in"] == "query"))
        {
            assert!(responses.get("422").is_some(), "{method} {path} lacks 422");
        }
        if operation["parameters"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["name"] == "If-Match"))
        {
            assert!(responses.get("412").is_some(), "{method} {path} lacks 412");
        }
    }
    let stream = &json["paths"]["/v1/audit/stream"]["get"]["responses"]["200"]["content"]
        ["text/event-stream"]["schema"];
    let event = match stream.get("$ref").and_then(Value::as_str) {
        Some(reference) => &schemas[reference.rsplit('/').next().unwrap()],
        None => stream,
    };
    assert_eq!(event["type"], "object", "{stream}");
    assert!(event["properties"]["data"].is_object(), "{event}");
    drop(server);
    backend.cleanup().await;
}

/// A blank value of a parameter that is not free text (a sort key, a number,
/// a time, a seq) is refused like any other value out of its schema, as
/// `page=` and `consistency=` always were; a blank free-text filter is absent.
#[tokio::test]
async fn a_blank_parameter_that_is_not_free_text_is_refused() {
    use palisade_tests::Auth;
    let backend = Backend::sqlite();
    let server = Server::start_admin(&backend).await;
    let (_, key) = server.create_tenant("Blank", "pro").await;
    for (path, field) in [
        ("/v1/findings?sort=", "sort"),
        ("/v1/findings?order=", "order"),
        ("/v1/findings?min_risk=", "min_risk"),
        ("/v1/findings?created_after=", "created_after"),
        ("/v1/assets?sort=", "sort"),
        ("/v1/timeline?days=", "days"),
        ("/v1/timeline?cursor=", "cursor"),
        ("/v1/risk/history?days=", "days"),
        ("/v1/audit/events?after=", "after"),
        ("/v1/audit/events?limit=", "limit"),
        ("/v1/audit/stream?after=x", "after"),
    ] {
        let (status, body) = server
            .call(reqwest::Method::GET, path, Auth::ApiKey(&key), None)
            .await;
        assert_eq!(status, 422, "{path}: {body}");
        assert_eq!(
            body["error"]["details"][0]["field"], field,
            "{path}: {body}"
        );
    }
    let (status, body) = server
        .call(
            reqwest::Method::GET,
            "/v1/findings?search=&tag=",
            Auth::ApiKey(&key),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    drop(server);
    backend.cleanup().await;
}
