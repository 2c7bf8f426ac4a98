//! Black-box tests of ETag / If-Match, and of commands that commute, on
//! both stores.
#![allow(clippy::unwrap_used)]

use palisade_tests::{on_both_stores, Backend, Server};
use serde_json::{json, Value};

on_both_stores!(
    responses_about_a_tenant_carry_its_version_as_etag,
    a_stale_if_match_gets_412_and_changes_nothing,
    concurrent_key_issues_in_one_tenant_all_succeed,
);

/// Keys live in the Tenant aggregate, but issuing one commutes with every
/// other tenant command: 50 at once in one tenant are 50 × 201 with 50
/// distinct keys, never a false 409 (the use case decides again after a
/// lost race).
async fn concurrent_key_issues_in_one_tenant_all_succeed(backend: &Backend) {
    let server = Server::start(backend).await;
    let (_, owner) = server.create_tenant("Busy", "unlimited").await;
    let issues = (0..50).map(|i| {
        let request = server
            .http
            .post(server.url("/v1/api-keys"))
            .header("x-api-key", &owner)
            .json(
                &json!({"name": format!("k{i}"), "principal": "ci", "scopes": ["findings:read"]}),
            );
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    });
    let answers = futures_util::future::join_all(issues).await;
    let mut values = std::collections::HashSet::new();
    let mut ids = std::collections::HashSet::new();
    for (status, body) in &answers {
        assert_eq!(*status, 201, "{body}");
        values.insert(body["data"]["key"].as_str().unwrap().to_string());
        ids.insert(body["data"]["id"].as_str().unwrap().to_string());
    }
    assert_eq!((values.len(), ids.len()), (50, 50));
    // Every one of them works, and the tenant lists them all.
    for value in values.iter().take(3) {
        let (status, _, body) = send(
            server
                .http
                .get(server.url("/v1/usage"))
                .header("x-api-key", value),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, _, body) = send(
        server
            .http
            .get(server.url("/v1/api-keys?per_page=100&consistency=strong"))
            .header("x-api-key", &owner),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["meta"]["total"], 51, "the owner's key and the 50");
}

/// Sends a request; returns status, ETag and body.
async fn send(request: reqwest::RequestBuilder) -> (u16, Option<String>, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let etag = response
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_string());
    (status, etag, response.json().await.unwrap())
}

async fn responses_about_a_tenant_carry_its_version_as_etag(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let create = server
        .http
        .post(server.url("/v1/admin/tenants"))
        .bearer_auth("tok")
        .json(&json!({ "name": "Acme" }));
    let (status, etag, body) = send(create).await;
    assert_eq!(
        (status, etag.as_deref()),
        (201, Some("\"2\"")),
        "created and its owner key: version 2"
    );
    let id = body["data"]["tenant"]["id"].as_str().unwrap().to_string();
    let owner = body["data"]["api_key"]["key"].as_str().unwrap().to_string();
    let key_id = body["data"]["api_key"]["id"].as_str().unwrap().to_string();

    let (status, etag, _) = send(
        server
            .http
            .get(server.url(&format!("/v1/admin/tenants/{id}")))
            .bearer_auth("tok"),
    )
    .await;
    assert_eq!((status, etag.as_deref()), (200, Some("\"2\"")));
    let (_, etag, _) = send(
        server
            .http
            .get(server.url(&format!("/v1/api-keys/{key_id}")))
            .header("x-api-key", &owner),
    )
    .await;
    assert_eq!(etag.as_deref(), Some("\"2\""));

    let change = server
        .http
        .post(server.url(&format!("/v1/admin/tenants/{id}/plan")))
        .bearer_auth("tok")
        .header("if-match", "\"2\"")
        .json(&json!({ "plan": "business" }));
    let (status, etag, body) = send(change).await;
    assert_eq!((status, etag.as_deref()), (200, Some("\"3\"")), "{body}");
    let star = server
        .http
        .post(server.url(&format!("/v1/admin/tenants/{id}/suspend")))
        .bearer_auth("tok")
        .header("if-match", "*");
    let (status, etag, _) = send(star).await;
    assert_eq!((status, etag.as_deref()), (200, Some("\"4\"")));
}

async fn a_stale_if_match_gets_412_and_changes_nothing(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (_, _, body) = send(
        server
            .http
            .post(server.url("/v1/admin/tenants"))
            .bearer_auth("tok")
            .json(&json!({ "name": "Acme" })),
    )
    .await;
    let id = body["data"]["tenant"]["id"].as_str().unwrap().to_string();
    let owner = body["data"]["api_key"]["key"].as_str().unwrap().to_string();
    let key_id = body["data"]["api_key"]["id"].as_str().unwrap().to_string();

    for stale in ["\"1\"", "W/\"7\"", "not-an-etag"] {
        let change = server
            .http
            .post(server.url(&format!("/v1/admin/tenants/{id}/plan")))
            .bearer_auth("tok")
            .header("if-match", stale)
            .json(&json!({ "plan": "business" }));
        let (status, _, body) = send(change).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (412, Some("precondition_failed")),
            "{stale}: {body}"
        );
    }
    let revoke = server
        .http
        .delete(server.url(&format!("/v1/api-keys/{key_id}")))
        .header("x-api-key", &owner)
        .header("if-match", "\"1\"");
    let (status, _, _) = send(revoke).await;
    assert_eq!(status, 412);

    let (_, etag, body) = send(
        server
            .http
            .get(server.url(&format!("/v1/admin/tenants/{id}")))
            .bearer_auth("tok"),
    )
    .await;
    assert_eq!(
        (etag.as_deref(), body["data"]["plan"].as_str()),
        (Some("\"2\""), Some("free")),
        "nothing changed"
    );
    let (status, _, _) = send(
        server
            .http
            .get(server.url("/v1/api-keys"))
            .header("x-api-key", &owner),
    )
    .await;
    assert_eq!(status, 200, "the owner key was not revoked");
}
