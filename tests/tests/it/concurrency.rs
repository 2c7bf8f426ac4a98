//! Black-box tests of ETag / If-Match, on both stores.
#![allow(clippy::unwrap_used)]

use palisade_tests::{on_both_stores, Backend, Server};
use serde_json::{json, Value};

on_both_stores!(
    responses_about_a_tenant_carry_its_version_as_etag,
    a_stale_if_match_gets_412_and_changes_nothing,
);

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
