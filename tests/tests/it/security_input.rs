//! Black-box regression tests of the input limits from the security review
//! (issue 11), on both stores: free text keeps to one rule (length, no
//! control characters), query filters are bounded in length and in the
//! number of values, a bulk ingest is refused at its 1,001st item, and
//! cursors never overflow.
#![allow(clippy::unwrap_used)]

use palisade_tests::{on_both_stores, Auth, Backend, Server};
use reqwest::Method;
use serde_json::{json, Value};

on_both_stores!(
    free_text_in_commands_keeps_to_the_text_rule,
    text_filters_are_at_most_200_characters,
    multi_value_filters_take_at_most_50_distinct_values,
    a_bulk_ingest_stops_at_its_1001st_item,
    cursors_and_pages_never_overflow,
);

async fn start(backend: &Backend) -> (Server, String) {
    let server = Server::start_admin(backend).await;
    let (_, owner) = server.create_tenant("Acme", "unlimited").await;
    (server, owner)
}

fn finding(title: &str) -> Value {
    json!({
        "product": "custom",
        "category": "vulnerability",
        "title": title,
        "severity": "high",
        "asset_identifier": "app.example.com",
    })
}

/// The fields a 422 `validation_error` names; panics on anything else.
fn refused_fields(status: u16, body: &Value) -> Vec<String> {
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("validation_error")),
        "{body}"
    );
    body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap().to_string())
        .collect()
}

/// The GraphQL error's `extensions.code` and the fields it names.
fn graphql_refusal(body: &Value) -> (String, Vec<String>) {
    let error = &body["errors"][0];
    let code = error["extensions"]["code"].as_str().unwrap_or_default();
    let fields = error["extensions"]["details"]
        .as_array()
        .map(|details| {
            details
                .iter()
                .map(|d| d["field"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    (code.to_string(), fields)
}

async fn graphql(server: &Server, key: &str, query: &str, variables: Value) -> Value {
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

async fn ingest(server: &Server, key: &str, body: Value) -> (u16, Value) {
    server
        .call(Method::POST, "/v1/findings", Auth::ApiKey(key), Some(body))
        .await
}

/// Item 11: NUL and other control characters, and over-long text, are
/// refused with 422 naming the field, in every command's text fields, on
/// REST and GraphQL; line feeds and tabs stay allowed in long-form text.
async fn free_text_in_commands_keeps_to_the_text_rule(backend: &Backend) {
    let (server, key) = start(backend).await;
    let post = |path: String, body: Value| {
        let server = &server;
        let key = key.clone();
        async move {
            server
                .call(Method::POST, &path, Auth::ApiKey(&key), Some(body))
                .await
        }
    };

    // Ingest: every bad field named at once.
    let mut bad = finding("SQL\u{0}Injection");
    bad["description"] = json!("nul \u{0} in the description");
    bad["location"] = json!("/login\u{7}");
    bad["tags"] = json!(["ok", "t\u{1b}"]);
    bad["fingerprint"] = json!("fp\u{0}");
    let (status, body) = ingest(&server, &key, bad).await;
    assert_eq!(
        refused_fields(status, &body),
        ["title", "description", "location", "tags[1]", "fingerprint"]
    );
    let mut multiline = finding("Multi-line description");
    multiline["description"] = json!("line one\n\tline two");
    let (status, body) = ingest(&server, &key, multiline).await;
    assert_eq!(status, 201, "{body}");
    let id = body["data"]["id"].as_str().unwrap().to_string();
    let path = |command: &str| format!("/v1/findings/{id}/{command}");

    // Triage: reasons, comments, assignee and tickets.
    let long_reason = "x".repeat(2_001);
    for (command, body, field) in [
        (
            "severity",
            json!({"severity": "low", "reason": long_reason}),
            "reason",
        ),
        (
            "severity",
            json!({"severity": "low", "reason": "a\u{0}b"}),
            "reason",
        ),
        ("dismiss", json!({"reason": "false\u{0}positive"}), "reason"),
        ("comments", json!({"body": "nul \u{0} here"}), "body"),
        ("comments", json!({"body": "y".repeat(10_001)}), "body"),
        ("assign", json!({"assignee": "bob\u{9b}"}), "assignee"),
        (
            "ticket",
            json!({"system": "jira", "ticket_id": "SEC-1\r\nX: y"}),
            "ticket_id",
        ),
    ] {
        let (status, answer) = post(path(command), body).await;
        assert_eq!(refused_fields(status, &answer), [field], "{command}");
    }
    let (status, answer) = post(path("dismiss"), json!({"reason": "noise"})).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = post(path("reopen"), json!({"reason": "a\u{0}b"})).await;
    assert_eq!(refused_fields(status, &answer), ["reason"]);
    let (status, answer) = post(path("reopen"), json!({"reason": "z".repeat(900_000)})).await;
    assert_eq!(refused_fields(status, &answer), ["reason"]);
    let (status, answer) = post(path("comments"), json!({"body": "ok\nsecond line"})).await;
    assert_eq!(status, 200, "{answer}");

    // GraphQL goes through the same rule.
    let body = graphql(
        &server,
        &key,
        "mutation($input: CommentOnFindingInput!) { commentOnFinding(input: $input) { id } }",
        json!({"input": {"id": id, "body": "nul \u{0}"}}),
    )
    .await;
    assert_eq!(
        graphql_refusal(&body),
        ("validation_error".to_string(), vec!["body".to_string()]),
        "{body}"
    );

    // Tenants and API keys: name, principal, suspension reason.
    let (status, answer) = server
        .admin_post("/v1/admin/tenants", json!({"name": "Ev\u{0}il"}))
        .await;
    assert_eq!(refused_fields(status, &answer), ["name"]);
    let (status, answer) = server
        .call(
            Method::POST,
            "/v1/api-keys",
            Auth::ApiKey(&key),
            Some(json!({"name": "ci\u{0}", "principal": "ci", "scopes": ["findings:read"]})),
        )
        .await;
    assert_eq!(refused_fields(status, &answer), ["name"]);
    let (tenant, _) = server.create_tenant("Other", "free").await;
    let (status, answer) = server
        .admin_post(
            &format!("/v1/admin/tenants/{tenant}/suspend"),
            json!({"reason": "r\u{0}"}),
        )
        .await;
    assert_eq!(refused_fields(status, &answer), ["reason"]);
}

async fn get(server: &Server, key: &str, path: &str) -> (u16, Value) {
    server
        .call(Method::GET, path, Auth::ApiKey(key), None)
        .await
}

/// Item 9: a text filter over 200 characters (or with a control
/// character) is a 422 naming it, not a 500 from the database.
async fn text_filters_are_at_most_200_characters(backend: &Backend) {
    let (server, key) = start(backend).await;
    let (status, body) = ingest(&server, &key, finding("SQL Injection")).await;
    assert_eq!(status, 201, "{body}");
    let long = "x".repeat(201);
    for (path, field) in [
        (format!("/v1/findings?search={long}"), "search"),
        (format!("/v1/findings?tag={long}"), "tag"),
        (format!("/v1/findings?product={long}"), "product"),
        (format!("/v1/findings?assignee={long}"), "assignee"),
        ("/v1/findings?search=a%00b".to_string(), "search"),
        (format!("/v1/assets?search={long}"), "search"),
        (format!("/v1/timeline?finding={long}"), "finding"),
        (format!("/v1/audit/events?actor={long}"), "actor"),
        (
            format!("/v1/audit/events?aggregate_id={long}"),
            "aggregate_id",
        ),
    ] {
        let (status, body) = get(&server, &key, &path).await;
        assert_eq!(refused_fields(status, &body), [field], "{path}");
    }
    // 200 characters are fine (multi-byte ones count as one).
    let (status, body) = get(
        &server,
        &key,
        &format!("/v1/findings?search={}", "é".repeat(200)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Read after the views applied the ingest (they may lag it).
    let (status, body) = get(
        &server,
        &key,
        "/v1/findings?search=injection&consistency=strong",
    )
    .await;
    assert_eq!(
        (status, body["meta"]["total"].as_i64()),
        (200, Some(1)),
        "{body}"
    );

    let body = graphql(
        &server,
        &key,
        "query($f: FindingFilter) { findings(filter: $f) { totalCount } }",
        json!({"f": {"search": long}}),
    )
    .await;
    assert_eq!(
        graphql_refusal(&body),
        ("validation_error".to_string(), vec!["search".to_string()]),
        "{body}"
    );
    let body = graphql(
        &server,
        &key,
        "query($f: AssetFilter) { assets(filter: $f) { totalCount } }",
        json!({"f": {"search": long}}),
    )
    .await;
    assert_eq!(graphql_refusal(&body).0, "validation_error", "{body}");
}

/// Item 7: at most 50 distinct values per multi-value filter (duplicates
/// collapse), on REST and GraphQL; 51 is a 422 naming the filter.
async fn multi_value_filters_take_at_most_50_distinct_values(backend: &Backend) {
    let (server, key) = start(backend).await;
    let (status, body) = ingest(&server, &key, finding("SQL Injection")).await;
    assert_eq!(status, 201, "{body}");
    let types = |n: usize| (0..n).map(|i| format!("Type{i}")).collect::<Vec<_>>();
    let list = |n: usize| types(n).join(",");
    for (path, field) in [
        (format!("/v1/timeline?types={}", list(51)), "types"),
        (
            format!("/v1/audit/events?event_type={}", list(51)),
            "event_type",
        ),
        (
            format!("/v1/audit/stream?event_type={}", list(51)),
            "event_type",
        ),
        (
            format!("/v1/findings?severity=high,{}", list(50)),
            "severity",
        ),
        (format!("/v1/findings?status=open,{}", list(50)), "status"),
    ] {
        let (status, body) = get(&server, &key, &path).await;
        assert_eq!(refused_fields(status, &body), [field], "{path}");
    }
    // 50 distinct values, however often repeated, are fine.
    let repeated = format!("FindingIngested,{},{}", list(49), list(49));
    let (status, body) = get(
        &server,
        &key,
        &format!("/v1/timeline?types={repeated}&consistency=strong"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 1, "{body}");
    let (status, body) = get(
        &server,
        &key,
        &format!("/v1/audit/events?event_type={repeated}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let severities = vec!["high"; 2_000].join(",");
    let (status, body) = get(
        &server,
        &key,
        &format!("/v1/findings?severity={severities}"),
    )
    .await;
    assert_eq!(
        (status, body["meta"]["total"].as_i64()),
        (200, Some(1)),
        "{body}"
    );

    let body = graphql(
        &server,
        &key,
        "query($f: TimelineFilter) { timeline(filter: $f) { edges { cursor } } }",
        json!({"f": {"types": types(51)}}),
    )
    .await;
    assert_eq!(
        graphql_refusal(&body),
        ("validation_error".to_string(), vec!["types".to_string()]),
        "{body}"
    );
    let body = graphql(
        &server,
        &key,
        "query($f: AuditFilter) { auditEvents(filter: $f) { edges { cursor } } }",
        json!({"f": {"eventType": types(51)}}),
    )
    .await;
    assert_eq!(
        graphql_refusal(&body),
        (
            "validation_error".to_string(),
            vec!["eventType".to_string()]
        ),
        "{body}"
    );
    let body = graphql(
        &server,
        &key,
        "query($f: FindingFilter) { findings(filter: $f) { totalCount } }",
        json!({"f": {"severity": vec!["HIGH"; 2_000]}}),
    )
    .await;
    assert_eq!(body["data"]["findings"]["totalCount"], 1, "{body}");
}

/// Item 12: the 1,001st item ends the parse with a 422 naming `findings`
/// and the limit, whatever the items are; 1,000 junk items still get one
/// result each.
async fn a_bulk_ingest_stops_at_its_1001st_item(backend: &Backend) {
    let (server, key) = start(backend).await;
    let bulk = |body: String| {
        server
            .http
            .post(server.url("/v1/findings/bulk"))
            .header("x-api-key", &key)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let junk = |n: usize| vec!["0"; n].join(",");
    // Junk after item 1,001 (even malformed JSON) is never read.
    for body in [
        format!("{{\"findings\": [{}]}}", junk(1_001)),
        format!("{{\"findings\": [{}, this is not JSON", junk(1_001)),
    ] {
        let response = bulk(body).await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert_eq!(refused_fields(status, &body), ["findings"]);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("1 to 1000 items"), "{body}");
    }
    let response = bulk(r#"{"findings": []}"#.to_string()).await.unwrap();
    let status = response.status().as_u16();
    assert_eq!(
        refused_fields(status, &response.json().await.unwrap()),
        ["findings"]
    );
    let response = bulk(format!("{{\"findings\": [{}]}}", junk(1_000)))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["failed"], 1_000, "{body}");
}

/// Item 15: cursors and pages near i64::MAX are validation errors (or
/// empty pages), never wrapped to negative offsets.
async fn cursors_and_pages_never_overflow(backend: &Backend) {
    let (server, key) = start(backend).await;
    let (status, body) = ingest(&server, &key, finding("SQL Injection")).await;
    assert_eq!(status, 201, "{body}");
    let max = i64::MAX.to_string();
    let near = (i64::MAX - 10).to_string();
    for (query, after) in [
        (
            "query($a: String) { findings(after: $a) { totalCount } }",
            &max,
        ),
        (
            "query($a: String) { findings(first: 50, after: $a) { totalCount } }",
            &near,
        ),
        (
            "query($a: String) { assets(after: $a) { totalCount } }",
            &max,
        ),
        (
            "query($a: String) { apiKeys(after: $a) { totalCount } }",
            &max,
        ),
        (
            "query($a: String) { findings(after: $a) { totalCount } }",
            &"-1".to_string(),
        ),
    ] {
        let body = graphql(&server, &key, query, json!({ "a": after })).await;
        assert_eq!(
            graphql_refusal(&body),
            ("validation_error".to_string(), vec!["after".to_string()]),
            "{query} after {after}: {body}"
        );
    }
    // The last cursor that fits still reads (an empty page).
    let body = graphql(
        &server,
        &key,
        "query($a: String) { findings(first: 1, after: $a) { totalCount edges { cursor } } }",
        json!({ "a": (i64::MAX - 2).to_string() }),
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["findings"]["edges"], json!([]), "{body}");
    let body = graphql(
        &server,
        &key,
        "query($a: String) { auditEvents(after: $a) { edges { cursor } } }",
        json!({ "a": max }),
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");

    // REST: a page beyond u32 is a 422; the largest page is empty.
    let (status, body) = get(&server, &key, &format!("/v1/findings?page={max}")).await;
    assert_eq!(refused_fields(status, &body), ["page"]);
    let (status, body) = get(&server, &key, "/v1/findings?page=4294967295&per_page=100").await;
    assert_eq!(
        (status, body["data"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{body}"
    );
    let (status, body) = get(&server, &key, &format!("/v1/audit/events?after={max}")).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(&server, &key, "/v1/audit/events?after=9223372036854775808").await;
    assert_eq!(refused_fields(status, &body), ["after"]);
}
