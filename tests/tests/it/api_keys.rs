//! Black-box tests of tenants, API keys and authentication, on both stores.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use palisade_domain::Environment;
use palisade_infra::crypto::api_key;
use palisade_tests::{Auth, Backend, Server};
use reqwest::Method;
use serde_json::{json, Value};

use palisade_tests::on_both_stores;

on_both_stores!(
    a_new_tenant_gets_a_working_owner_key_with_every_scope,
    requests_without_a_valid_key_get_401,
    a_key_without_the_scope_gets_403_naming_it,
    a_revoked_key_fails_on_its_next_request,
    another_tenants_key_is_not_found,
    a_suspended_tenant_gets_403_until_reactivated,
    plans_change_and_bad_admin_input_is_refused,
    an_expired_key_is_refused,
    new_keys_are_validated,
    reads_accept_a_consistency_level,
    whoami_names_the_caller,
    a_cached_key_changes_on_this_replica_before_the_change_answers,
);

async fn whoami_names_the_caller(backend: &Backend) {
    let server = Server::start(backend).await;
    let (tenant_id, owner) = server.create_tenant("Acme", "pro").await;
    let (key_id, reader) = issue(
        &server,
        &owner,
        &["findings:read"],
        json!({ "environment": "test" }),
    )
    .await;
    let (status, body) = server
        .call(Method::GET, "/v1/whoami", Auth::ApiKey(&reader), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let me = &body["data"];
    assert_eq!(me["tenant_id"], tenant_id.as_str());
    assert_eq!(me["key_id"], key_id.as_str());
    assert_eq!(me["principal"], "ci-bot");
    assert_eq!(me["scopes"], json!(["findings:read"]));
    assert_eq!(
        (me["environment"].as_str(), me["plan"].as_str()),
        (Some("test"), Some("pro"))
    );
    let (status, body) = server
        .call(Method::GET, "/v1/whoami", Auth::None, None)
        .await;
    assert_eq!((status, code(&body)), (401, "missing_api_key"), "{body}");
}

/// This process's API-key lookups with `result` (`hit`: from its cache;
/// `miss`: from the tenants view).
async fn key_lookups(server: &Server, result: &str) -> u64 {
    let metrics = server.metrics().await;
    let prefix = format!("palisade_api_key_lookups_total{{result=\"{result}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no key lookups ({result}) in the metrics:\n{metrics}"))
}

async fn cache_hits(server: &Server) -> u64 {
    key_lookups(server, "hit").await
}

async fn whoami(server: &Server, key: &str) -> (u16, Value) {
    server
        .call(Method::GET, "/v1/whoami", Auth::ApiKey(key), None)
        .await
}

/// Waits until `server` answers every key from its cache: its follower has
/// passed the tenant's latest events (each drops the tenant's keys once).
async fn served_from_cache(server: &Server, keys: &[&str]) {
    let since = std::time::Instant::now();
    loop {
        let before = cache_hits(server).await;
        for key in keys {
            assert_eq!(whoami(server, key).await.0, 200);
        }
        if cache_hits(server).await >= before + keys.len() as u64 {
            return;
        }
        assert!(
            since.elapsed() < Duration::from_secs(5),
            "the keys are still not served from the cache after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The three tenant changes the key cache must follow, each asserted 200.
async fn revoke(server: &Server, owner: &str, id: &str) {
    let (status, body) = server
        .call(
            Method::DELETE,
            &format!("/v1/api-keys/{id}"),
            Auth::ApiKey(owner),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

async fn admin_change(server: &Server, tenant: &str, action: &str, body: Option<Value>) {
    let (status, body) = server
        .call(
            Method::POST,
            &format!("/v1/admin/tenants/{tenant}/{action}"),
            Auth::Admin,
            body,
        )
        .await;
    assert_eq!(status, 200, "{action}: {body}");
}

/// Keys are served from memory once seen, and a change to the tenant
/// (revoking a key, a new plan, a suspension) is in force on this replica
/// by the time the change answers: the very next request sees it.
async fn a_cached_key_changes_on_this_replica_before_the_change_answers(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (tenant, owner) = server.create_tenant("Acme", "pro").await;
    let (id, second) = issue(&server, &owner, &["findings:read"], json!({})).await;
    served_from_cache(&server, &[&second, &owner]).await;

    revoke(&server, &owner, &id).await;
    let (status, body) = whoami(&server, &second).await;
    assert_eq!((status, code(&body)), (401, "invalid_api_key"), "{body}");

    admin_change(
        &server,
        &tenant,
        "plan",
        Some(json!({ "plan": "business" })),
    )
    .await;
    let (status, body) = whoami(&server, &owner).await;
    assert_eq!(
        (status, body["data"]["plan"].as_str()),
        (200, Some("business")),
        "{body}"
    );

    admin_change(
        &server,
        &tenant,
        "suspend",
        Some(json!({ "reason": "unpaid" })),
    )
    .await;
    let (status, body) = whoami(&server, &owner).await;
    assert_eq!((status, code(&body)), (403, "tenant_suspended"), "{body}");
}

/// Two replicas on one PostgreSQL: a key revoked, a plan changed or a
/// tenant suspended through one is in force on the other within a second,
/// though the other answered the key from its cache just before.
#[tokio::test]
async fn another_replica_sees_a_tenant_change_within_a_second() {
    let Some(backend) = Backend::postgres().await else {
        return;
    };
    let options = || palisade_tests::ServerOptions {
        admin_token: Some("tok".into()),
        ..Default::default()
    };
    let first = Server::start_with(&backend, options()).await;
    let second = Server::start_with(&backend, options()).await;
    let (tenant, owner) = first.create_tenant("Acme", "pro").await;
    let (id, key) = issue(&first, &owner, &["findings:read"], json!({})).await;
    // The second replica has both keys in its cache.
    served_from_cache(&second, &[&key, &owner]).await;

    // Polls the second replica until `refused` holds; how long it took.
    async fn until(server: &Server, key: &str, refused: impl Fn(u16, &Value) -> bool) -> Duration {
        let since = std::time::Instant::now();
        loop {
            let (status, body) = whoami(server, key).await;
            if refused(status, &body) {
                return since.elapsed();
            }
            assert!(
                since.elapsed() < Duration::from_secs(5),
                "the second replica still answers {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    revoke(&first, &owner, &id).await;
    let revoked = until(&second, &key, |status, _| status == 401).await;

    admin_change(&first, &tenant, "plan", Some(json!({ "plan": "business" }))).await;
    let replanned = until(&second, &owner, |_, body| {
        body["data"]["plan"] == "business"
    })
    .await;

    admin_change(
        &first,
        &tenant,
        "suspend",
        Some(json!({ "reason": "unpaid" })),
    )
    .await;
    let suspended = until(&second, &owner, |status, _| status == 403).await;
    eprintln!("second replica: revoked after {revoked:?}, new plan after {replanned:?}, suspended after {suspended:?}");
    for (what, took) in [
        ("revocation", revoked),
        ("plan", replanned),
        ("suspension", suspended),
    ] {
        assert!(
            took <= Duration::from_secs(1),
            "{what} reached the other replica after {took:?}"
        );
    }
}

/// A rebuild of the tenants view (here by the CLI, in another process)
/// passes through older states of the view, however fast it finishes: the
/// server drops every cached key when it notices the rewind, within a
/// second, and looks keys up again.
#[tokio::test]
async fn a_rebuilt_tenants_view_empties_the_key_cache() {
    let backend = Backend::sqlite();
    let server = Server::start_admin(&backend).await;
    let (_, owner) = server.create_tenant("Acme", "pro").await;
    for _ in 0..2 {
        assert_eq!(whoami(&server, &owner).await.0, 200);
    }
    let misses = key_lookups(&server, "miss").await;
    backend
        .run_cli(&["projections", "rebuild", "tenants"])
        .await;
    let since = std::time::Instant::now();
    loop {
        assert_eq!(whoami(&server, &owner).await.0, 200);
        if key_lookups(&server, "miss").await > misses {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(1),
            "the key is still served from the cache a second after the rebuild"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Issues a key with `scopes`; returns its id and value.
async fn issue(server: &Server, owner: &str, scopes: &[&str], extra: Value) -> (String, String) {
    let mut body = json!({ "name": "ci", "principal": "ci-bot", "scopes": scopes });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    server.issue_api_key_with(owner, body).await
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

async fn a_new_tenant_gets_a_working_owner_key_with_every_scope(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/admin/tenants",
            Auth::Admin,
            Some(json!({ "name": "Acme", "plan": "pro", "owner_principal": "alice" })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let key = &body["data"]["api_key"];
    for field in ["id", "key", "prefix", "principal", "scopes", "environment"] {
        assert!(key.get(field).is_some(), "api_key.{field} missing: {key}");
    }
    let value = key["key"].as_str().unwrap();
    assert!(
        value.starts_with("pal_live_")
            && key["prefix"].as_str().is_some_and(|p| value.starts_with(p))
    );
    assert_eq!(key["principal"], "alice");
    assert_eq!(key["scopes"].as_array().unwrap().len(), 11);

    // Both headers work, and listings never show the value.
    for auth in [Auth::ApiKey(value), Auth::Bearer(value)] {
        let (status, body) = server.call(Method::GET, "/v1/api-keys", auth, None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["meta"]["total"], 1);
        assert!(
            !body.to_string().contains(value),
            "a listing leaked the key value"
        );
        assert!(body["data"][0].get("key").is_none());
    }
    let id = key["id"].as_str().unwrap();
    let (status, body) = server
        .call(
            Method::GET,
            &format!("/v1/api-keys/{id}"),
            Auth::ApiKey(value),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.to_string().contains(value));
    assert_eq!(body["data"]["revoked_at"], Value::Null);
}

async fn requests_without_a_valid_key_get_401(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (_, owner) = server.create_tenant("Acme", "pro").await;
    let unknown = api_key::generate(Environment::Live).value;
    let mut typo = owner.clone();
    typo.pop();
    typo.push(if owner.ends_with('a') { 'b' } else { 'a' });
    let cases = [
        (Auth::None, "missing_api_key"),
        (Auth::ApiKey(&unknown), "invalid_api_key"),
        (Auth::Bearer(&unknown), "invalid_api_key"),
        (Auth::ApiKey(&typo), "invalid_api_key"),
        (Auth::ApiKey("not-a-key"), "invalid_api_key"),
        (Auth::Admin, "invalid_api_key"),
    ];
    for (auth, expected) in cases {
        let (status, body) = server.call(Method::GET, "/v1/api-keys", auth, None).await;
        assert_eq!((status, code(&body)), (401, expected), "{auth:?}: {body}");
        assert_eq!(body["success"], false);
    }
}

async fn a_key_without_the_scope_gets_403_naming_it(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (_, owner) = server.create_tenant("Acme", "pro").await;
    let (_, reader) = issue(&server, &owner, &["findings:read"], json!({})).await;
    let (status, body) = server
        .call(Method::GET, "/v1/api-keys", Auth::ApiKey(&reader), None)
        .await;
    assert_eq!((status, code(&body)), (403, "forbidden"));
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tenant:admin"),
        "{body}"
    );
}

async fn a_revoked_key_fails_on_its_next_request(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (_, owner) = server.create_tenant("Acme", "pro").await;
    let (id, second) = issue(&server, &owner, &["tenant:admin"], json!({})).await;
    let (status, _) = server
        .call(Method::GET, "/v1/api-keys", Auth::ApiKey(&second), None)
        .await;
    assert_eq!(status, 200);
    let (status, body) = server
        .call(
            Method::DELETE,
            &format!("/v1/api-keys/{id}"),
            Auth::ApiKey(&owner),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["revoked_at"].is_string(), "{body}");
    let (status, body) = server
        .call(Method::GET, "/v1/api-keys", Auth::ApiKey(&second), None)
        .await;
    assert_eq!((status, code(&body)), (401, "invalid_api_key"));
    // Revoking again changes nothing and still answers with the key.
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/v1/api-keys/{id}"),
            Auth::ApiKey(&owner),
            None,
        )
        .await;
    assert_eq!(status, 200);
}

async fn another_tenants_key_is_not_found(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (_, owner_a) = server.create_tenant("A", "pro").await;
    let (_, owner_b) = server.create_tenant("B", "pro").await;
    let (id_a, _) = issue(&server, &owner_a, &["findings:read"], json!({})).await;
    for method in [Method::GET, Method::DELETE] {
        let (status, body) = server
            .call(
                method.clone(),
                &format!("/v1/api-keys/{id_a}"),
                Auth::ApiKey(&owner_b),
                None,
            )
            .await;
        assert_eq!(
            (status, code(&body)),
            (404, "not_found"),
            "{method}: {body}"
        );
    }
    let (status, _) = server
        .call(
            Method::GET,
            "/v1/api-keys/apk_nonsense",
            Auth::ApiKey(&owner_b),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (_, body) = server
        .call(Method::GET, "/v1/api-keys", Auth::ApiKey(&owner_b), None)
        .await;
    assert_eq!(body["meta"]["total"], 1, "B sees only its own key");
}

async fn a_suspended_tenant_gets_403_until_reactivated(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (id, owner) = server.create_tenant("Acme", "pro").await;
    let (status, body) = server
        .call(
            Method::POST,
            &format!("/v1/admin/tenants/{id}/suspend"),
            Auth::Admin,
            Some(json!({ "reason": "unpaid" })),
        )
        .await;
    assert_eq!(
        (status, body["data"]["status"].as_str()),
        (200, Some("suspended")),
        "{body}"
    );
    let (status, body) = server
        .call(Method::GET, "/v1/api-keys", Auth::ApiKey(&owner), None)
        .await;
    assert_eq!((status, code(&body)), (403, "tenant_suspended"));
    let (status, body) = server
        .call(
            Method::POST,
            &format!("/v1/admin/tenants/{id}/reactivate"),
            Auth::Admin,
            None,
        )
        .await;
    assert_eq!(
        (status, body["data"]["status"].as_str()),
        (200, Some("active")),
        "{body}"
    );
    let (status, _) = server
        .call(Method::GET, "/v1/api-keys", Auth::ApiKey(&owner), None)
        .await;
    assert_eq!(status, 200);
}

async fn plans_change_and_bad_admin_input_is_refused(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (id, _) = server.create_tenant("Acme", "pro").await;
    let plan = |id: String, plan: &'static str| {
        let server = &server;
        async move {
            server
                .call(
                    Method::POST,
                    &format!("/v1/admin/tenants/{id}/plan"),
                    Auth::Admin,
                    Some(json!({ "plan": plan })),
                )
                .await
        }
    };
    let (status, body) = plan(id.clone(), "business").await;
    assert_eq!(
        (status, body["data"]["plan"].as_str()),
        (200, Some("business")),
        "{body}"
    );
    let (status, body) = plan(id.clone(), "gold").await;
    assert_eq!(
        (status, body["error"]["details"][0]["field"].as_str()),
        (422, Some("plan"))
    );
    let (status, _) = plan("ten_00000000000000000000000000000000".into(), "pro").await;
    assert_eq!(status, 404);
    let (status, _) = plan("nonsense".into(), "pro").await;
    assert_eq!(status, 404);
    let (_, body) = server
        .call(Method::GET, "/v1/admin/tenants", Auth::Admin, None)
        .await;
    assert_eq!(body["data"][0]["plan"], "business");
}

async fn an_expired_key_is_refused(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (_, owner) = server.create_tenant("Acme", "pro").await;
    let expires_at = (chrono::Utc::now() + chrono::Duration::milliseconds(1500)).to_rfc3339();
    let (_, short) = issue(
        &server,
        &owner,
        &["tenant:admin"],
        json!({ "expires_at": expires_at }),
    )
    .await;
    let (status, _) = server
        .call(Method::GET, "/v1/api-keys", Auth::ApiKey(&short), None)
        .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let (status, body) = server
        .call(Method::GET, "/v1/api-keys", Auth::ApiKey(&short), None)
        .await;
    assert_eq!((status, code(&body)), (401, "invalid_api_key"));
}

async fn new_keys_are_validated(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (_, owner) = server.create_tenant("Acme", "pro").await;
    let post = |body: Value, key: &str| {
        let key = key.to_string();
        let server = &server;
        async move {
            server
                .call(Method::POST, "/v1/api-keys", Auth::ApiKey(&key), Some(body))
                .await
        }
    };
    let (status, body) = post(
        json!({ "name": "x", "principal": "p", "scopes": ["findings:read", "root"] }),
        &owner,
    )
    .await;
    assert_eq!(
        (status, body["error"]["details"][0]["field"].as_str()),
        (422, Some("scopes[1]")),
        "{body}"
    );
    let (status, body) = post(
        json!({ "name": "x", "principal": "p", "scopes": [] }),
        &owner,
    )
    .await;
    assert_eq!(
        (status, body["error"]["details"][0]["field"].as_str()),
        (422, Some("scopes")),
        "{body}"
    );
    let (status, body) = post(json!({ "name": "x", "principal": "p", "scopes": ["findings:read"], "environment": "prod" }), &owner).await;
    assert_eq!(
        (status, body["error"]["details"][0]["field"].as_str()),
        (422, Some("environment")),
        "{body}"
    );
    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let (status, body) = post(
        json!({ "name": "x", "principal": "p", "scopes": ["findings:read"], "expires_at": past }),
        &owner,
    )
    .await;
    assert_eq!(
        (status, body["error"]["details"][0]["field"].as_str()),
        (422, Some("expires_at")),
        "{body}"
    );

    // Test keys look different, and cannot mint live keys.
    let (_, test_key) = issue(
        &server,
        &owner,
        &["tenant:admin"],
        json!({ "environment": "test" }),
    )
    .await;
    assert!(test_key.starts_with("pal_test_"));
    let (status, body) = post(
        json!({ "name": "x", "principal": "p", "scopes": ["findings:read"] }),
        &test_key,
    )
    .await;
    assert_eq!((status, code(&body)), (403, "forbidden"), "{body}");
    let (status, _) = post(json!({ "name": "x", "principal": "p", "scopes": ["findings:read"], "environment": "test" }), &test_key).await;
    assert_eq!(status, 201);
}

/// `?consistency=strong` works on the tenant and key reads too, and a level
/// that does not exist is a 422 naming the parameter.
async fn reads_accept_a_consistency_level(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (tenant_id, owner) = server.create_tenant("Acme", "unlimited").await;
    let (id, _) = issue(&server, &owner, &["findings:read"], json!({})).await;
    for path in [
        "/v1/api-keys?consistency=strong".to_string(),
        format!("/v1/api-keys/{id}?consistency=strong"),
        "/v1/usage?consistency=strong".to_string(),
        "/v1/findings?consistency=eventual".to_string(),
    ] {
        let (status, body) = server
            .call(Method::GET, &path, Auth::ApiKey(&owner), None)
            .await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (status, body) = server
        .call(
            Method::GET,
            "/v1/api-keys?consistency=strong",
            Auth::ApiKey(&owner),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(body["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["id"] == id.as_str()));
    let (status, body) = server
        .call(
            Method::GET,
            &format!("/v1/admin/tenants/{tenant_id}?consistency=strong"),
            Auth::Admin,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server
        .call(
            Method::GET,
            "/v1/usage?consistency=always",
            Auth::ApiKey(&owner),
            None,
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["details"][0]["field"], "consistency");
}
