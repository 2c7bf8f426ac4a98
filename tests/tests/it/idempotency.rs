//! Black-box tests of Idempotency-Key, on both stores.
#![allow(clippy::unwrap_used)]

use palisade_infra::Store;
use palisade_tests::{on_both_stores, Auth, Backend, Server};
use serde_json::{json, Value};

on_both_stores!(
    a_retry_with_the_same_key_and_body_replays_the_first_response,
    the_same_key_with_another_body_is_refused,
    keys_are_per_tenant,
    a_key_whose_request_is_in_flight_gets_409,
    admin_commands_are_idempotent_too,
    a_retry_after_the_server_died_mid_request_never_runs_the_command_twice,
);

fn issue_body(name: &str) -> Value {
    json!({ "name": name, "principal": "ci", "scopes": ["findings:read"] })
}

/// POST /v1/api-keys with an Idempotency-Key: status, replayed?, body.
async fn issue(
    server: &Server,
    key: &str,
    idempotency_key: &str,
    name: &str,
) -> (u16, bool, Value) {
    server
        .post_idempotent("/v1/api-keys", key, idempotency_key, &issue_body(name))
        .await
}

/// The tenant's API keys, counted with a strongly consistent read.
async fn key_count(server: &Server, key: &str) -> i64 {
    let response = server
        .http
        .get(server.url("/v1/api-keys?consistency=strong"))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    body["meta"]["total"].as_i64().unwrap()
}

async fn a_retry_with_the_same_key_and_body_replays_the_first_response(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (_, owner) = server.create_tenant("Acme", "pro").await;
    let (status, replayed, first) = issue(&server, &owner, "retry-1", "ci").await;
    assert_eq!((status, replayed), (201, false), "{first}");
    let (status, replayed, second) = issue(&server, &owner, "retry-1", "ci").await;
    assert_eq!((status, replayed), (201, true));
    assert_eq!(
        without_value(&first["data"]),
        without_value(&second["data"]),
        "the same key"
    );
    assert_eq!(
        second["data"]["key"], "[redacted]",
        "the value is shown once, never kept"
    );
    assert_eq!(
        key_count(&server, &owner).await,
        2,
        "the owner key and one new key, not two"
    );
}

async fn the_same_key_with_another_body_is_refused(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (_, owner) = server.create_tenant("Acme", "pro").await;
    let (status, _, _) = issue(&server, &owner, "reuse-1", "first").await;
    assert_eq!(status, 201);
    let (status, _, body) = issue(&server, &owner, "reuse-1", "second").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("idempotency_key_reused")),
        "{body}"
    );
    assert_eq!(key_count(&server, &owner).await, 2);
}

async fn keys_are_per_tenant(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (_, a) = server.create_tenant("Acme", "pro").await;
    let (_, b) = server.create_tenant("Acme", "pro").await;
    let (status_a, _, body_a) = issue(&server, &a, "shared", "ci").await;
    let (status_b, replayed_b, body_b) = issue(&server, &b, "shared", "ci").await;
    assert_eq!((status_a, status_b, replayed_b), (201, 201, false));
    assert_ne!(body_a["data"]["id"], body_b["data"]["id"]);
}

async fn a_key_whose_request_is_in_flight_gets_409(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (_, owner) = server.create_tenant("Acme", "pro").await;
    let (_, keys) = server
        .call(
            reqwest::Method::GET,
            "/v1/api-keys",
            Auth::ApiKey(&owner),
            None,
        )
        .await;
    let scope = format!("key:{}", keys["data"][0]["id"].as_str().unwrap());
    // Claim the key exactly as a still-running identical request holds it:
    // same scope (the owner's key), same fingerprint (method, URI and
    // body), no response yet.
    let body = serde_json::to_vec(&issue_body("ci")).unwrap();
    // Keyed with the server's root key (a subkey of it), as the server does.
    let (root, _) =
        palisade_infra::crypto::RootKey::load(None, &backend.config().data_dir).unwrap();
    let fingerprint = palisade_infra::crypto::KeyedDigest::new(&root, "idempotency fingerprint")
        .digest(&[b"POST", b"/v1/api-keys", &body]);
    let store = Store::open(&backend.config()).await.unwrap();
    sqlx::query("INSERT INTO idempotency_keys (scope, idempotency_key, fingerprint, created_at) VALUES ($1, 'busy', $2, $3)")
        .bind(&scope)
        .bind(&fingerprint)
        .bind(chrono::Utc::now().timestamp_millis())
        .execute(store.read_pool())
        .await
        .unwrap();
    store.close().await;
    let (status, _, answer) = issue(&server, &owner, "busy", "ci").await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{answer}"
    );

    // Two identical requests at once: one runs, the other is replayed or refused.
    let (first, second) = tokio::join!(
        issue(&server, &owner, "race", "ci"),
        issue(&server, &owner, "race", "ci")
    );
    let mut statuses = [first.0, second.0];
    statuses.sort();
    assert!(
        statuses == [201, 201] || statuses == [201, 409],
        "never run twice: {statuses:?}"
    );
    assert_eq!(key_count(&server, &owner).await, 2);
}

async fn admin_commands_are_idempotent_too(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let create = || {
        server
            .http
            .post(server.url("/v1/admin/tenants"))
            .bearer_auth("tok")
            .header("idempotency-key", "tenant-acme")
            .json(&json!({ "name": "Acme" }))
            .send()
    };
    let first: Value = create().await.unwrap().json().await.unwrap();
    let second = create().await.unwrap();
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    let second: Value = second.json().await.unwrap();
    assert_eq!(
        first["data"]["tenant"]["id"],
        second["data"]["tenant"]["id"]
    );
    let (_, list) = server.admin_get("/v1/admin/tenants").await;
    assert_eq!(list["meta"]["total"], 1);
}

/// Makes the record of `idempotency_key` look as a process that died mid
/// request leaves it: no response, claimed two minutes ago, and (when
/// `token` is given) another token.
async fn abandon(backend: &Backend, idempotency_key: &str, token: Option<&str>) {
    let store = Store::open(&backend.config()).await.unwrap();
    let sql = match token {
        Some(_) => {
            "UPDATE idempotency_keys
                SET response_status = NULL, response_type = NULL, response_etag = NULL,
                    response_body = NULL, created_at = created_at - 120000, token = $2
              WHERE idempotency_key = $1"
        }
        None => {
            "UPDATE idempotency_keys
                SET response_status = NULL, response_type = NULL, response_etag = NULL,
                    response_body = NULL, created_at = created_at - 120000
              WHERE idempotency_key = $1"
        }
    };
    let mut query = sqlx::query(sql).bind(idempotency_key);
    if let Some(token) = token {
        query = query.bind(token);
    }
    let changed = query
        .execute(store.read_pool())
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(changed, 1);
    store.close().await;
}

/// The response of an idempotent request is stored after its events
/// commit. If the process dies in between, the retry must not issue a
/// second key: the request's events carry its claim's token, so the retry
/// learns that the first one committed. A claim that died before its
/// append is taken over, and the command runs.
async fn a_retry_after_the_server_died_mid_request_never_runs_the_command_twice(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (_, owner) = server.create_tenant("Acme", "pro").await;
    let (status, _, first) = issue(&server, &owner, "crash-1", "ci").await;
    assert_eq!(status, 201, "{first}");
    abandon(backend, "crash-1", None).await;
    let (status, replayed, lost) = issue(&server, &owner, "crash-1", "ci").await;
    assert_eq!((status, replayed), (409, false), "{lost}");
    assert_eq!(lost["error"]["code"], "idempotency_response_lost");
    let (status, replayed, again) = issue(&server, &owner, "crash-1", "ci").await;
    assert_eq!((status, replayed), (409, true), "{again}");
    assert_eq!(again["error"]["code"], "idempotency_response_lost");
    assert_eq!(key_count(&server, &owner).await, 2, "one new key, not two");

    // Died before its append: its token is in no event, so a retry runs it.
    let (status, _, first) = issue(&server, &owner, "crash-2", "ci").await;
    assert_eq!(status, 201, "{first}");
    abandon(backend, "crash-2", Some("idem_never_committed")).await;
    let (status, replayed, rerun) = issue(&server, &owner, "crash-2", "ci").await;
    assert_eq!((status, replayed), (201, false), "{rerun}");
    assert_ne!(rerun["data"]["id"], first["data"]["id"]);
    assert_eq!(key_count(&server, &owner).await, 4);
    // And the key is held again: the next retry replays the rerun.
    let (status, replayed, replay) = issue(&server, &owner, "crash-2", "ci").await;
    assert_eq!((status, replayed), (201, true));
    assert_eq!(
        without_value(&replay["data"]),
        without_value(&rerun["data"])
    );
}

/// An issued key as a replay can show it: everything but its value.
fn without_value(key: &Value) -> Value {
    let mut key = key.clone();
    key.as_object_mut().unwrap().remove("key");
    key
}
