//! Regression tests for what the schema fuzzer of issue 12 found, on both
//! stores: a NUL anywhere in input is a clear 4xx on both (it was a 500 on
//! PostgreSQL and stored as is on SQLite), every rejection is in the
//! envelope, a recalculation needs its body, and a request is validated
//! before its `If-Match` is.
#![allow(clippy::unwrap_used)]

use palisade_tests::{on_both_stores, Auth, Backend, Server};
use reqwest::Method;
use serde_json::{json, Value};

on_both_stores!(
    a_nul_in_a_path_is_a_400_on_both_stores,
    a_nul_in_any_query_parameter_is_a_422_on_both_stores,
    a_duplicated_query_parameter_is_refused_in_the_envelope,
    a_recalculation_without_a_body_records_nothing,
    a_request_is_validated_before_its_if_match,
);

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

async fn start(backend: &Backend) -> (Server, String) {
    let server = Server::start_admin(backend).await;
    let (_, owner) = server.create_tenant("Acme", "unlimited").await;
    (server, owner)
}

fn finding(title: &str) -> Value {
    json!({"product": "custom", "category": "vulnerability", "title": title,
           "severity": "high", "asset_identifier": "app.example.com"})
}

async fn a_nul_in_a_path_is_a_400_on_both_stores(backend: &Backend) {
    let (server, owner) = start(backend).await;
    for path in [
        "/v1/findings/%00",
        "/v1/findings/fnd_%00/history",
        "/v1/assets/%00",
        "/v1/assets/%00/findings",
        "/v1/api-keys/%00",
    ] {
        let (status, body) = server
            .call(Method::GET, path, Auth::ApiKey(&owner), None)
            .await;
        assert_eq!(
            (status, code(&body)),
            (400, "bad_request"),
            "{path}: {body}"
        );
    }
    let (status, body) = server
        .call(Method::GET, "/v1/admin/tenants/%00", Auth::Admin, None)
        .await;
    assert_eq!((status, code(&body)), (400, "bad_request"), "{body}");
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/findings/a%00b/confirm",
            Auth::ApiKey(&owner),
            None,
        )
        .await;
    assert_eq!((status, code(&body)), (400, "bad_request"), "{body}");
}

async fn a_nul_in_any_query_parameter_is_a_422_on_both_stores(backend: &Backend) {
    let (server, owner) = start(backend).await;
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/findings",
            Auth::ApiKey(&owner),
            Some(finding("Seed")),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let routes: &[(&str, &[&str])] = &[
        (
            "/v1/findings",
            &[
                "product", "category", "severity", "status", "asset", "cve", "assignee", "tag",
                "search", "sort", "order",
            ],
        ),
        ("/v1/assets", &["search", "sort"]),
        ("/v1/timeline", &["asset", "finding", "types", "cursor"]),
        (
            "/v1/audit/events",
            &[
                "aggregate_type",
                "aggregate_id",
                "event_type",
                "actor",
                "since",
                "after",
            ],
        ),
        ("/v1/overview", &["consistency"]),
    ];
    for (route, parameters) in routes {
        for parameter in *parameters {
            let path = format!("{route}?{parameter}=a%00b");
            let (status, body) = server
                .call(Method::GET, &path, Auth::ApiKey(&owner), None)
                .await;
            assert_eq!(
                (status, code(&body)),
                (422, "validation_error"),
                "{path}: {body}"
            );
        }
    }
    // GraphQL filters too.
    let (status, body) = server
        .call(
            Method::POST,
            "/graphql",
            Auth::ApiKey(&owner),
            Some(json!({"query": "query($s: String) { findings(filter: {search: $s}) { totalCount } }",
                        "variables": {"s": "a\u{0}b"}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "validation_error",
        "{body}"
    );
}

async fn a_duplicated_query_parameter_is_refused_in_the_envelope(backend: &Backend) {
    let (server, owner) = start(backend).await;
    let (status, body) = server
        .call(
            Method::GET,
            "/v1/api-keys?per_page=5&per_page=6",
            Auth::ApiKey(&owner),
            None,
        )
        .await;
    assert_eq!((status, code(&body)), (422, "validation_error"), "{body}");
    let (status, body) = server
        .call(
            Method::GET,
            "/v1/admin/tenants?page=1&page=2",
            Auth::Admin,
            None,
        )
        .await;
    assert_eq!((status, code(&body)), (422, "validation_error"), "{body}");
}

async fn a_recalculation_without_a_body_records_nothing(backend: &Backend) {
    let (server, owner) = start(backend).await;
    let response = server
        .http
        .post(server.url("/v1/risk/recalculate"))
        .header("x-api-key", &owner)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(code(&body), "validation_error", "{body}");
    let (status, timeline) = server
        .call(
            Method::GET,
            "/v1/timeline?types=RiskScoreRecalculated&consistency=strong",
            Auth::ApiKey(&owner),
            None,
        )
        .await;
    assert_eq!(status, 200, "{timeline}");
    assert_eq!(timeline["data"], json!([]), "{timeline}");
}

async fn a_request_is_validated_before_its_if_match(backend: &Backend) {
    let (server, owner) = start(backend).await;
    let (_, body) = server
        .call(
            Method::POST,
            "/v1/findings",
            Auth::ApiKey(&owner),
            Some(finding("Validated first")),
        )
        .await;
    let id = body["data"]["id"].as_str().unwrap().to_string();
    let post = |path: String, if_match: &'static str, body: &'static str| {
        server
            .http
            .post(server.url(&path))
            .header("x-api-key", &owner)
            .header("if-match", if_match)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let dismiss = format!("/v1/findings/{id}/dismiss");
    for if_match in ["\"99\"", "not-an-etag"] {
        let response = post(dismiss.clone(), if_match, "{not json").await.unwrap();
        assert_eq!(
            response.status().as_u16(),
            400,
            "malformed body, If-Match {if_match}"
        );
        let response = post(dismiss.clone(), if_match, r#"{"reason": ""}"#)
            .await
            .unwrap();
        assert_eq!(
            response.status().as_u16(),
            422,
            "invalid body, If-Match {if_match}"
        );
        // A valid request that names another version: 412.
        let response = post(dismiss.clone(), if_match, r#"{"reason": "noise"}"#)
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 412, "If-Match {if_match}");
    }
}
