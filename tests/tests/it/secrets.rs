//! Black-box tests of the secret store (`/v1/secrets`), on both stores:
//! check-and-set under 20 concurrent writers, max_versions, undelete,
//! rollback and compare, every read in the audit trail, no value at rest
//! in clear anywhere, and destroy deleting the sealed rows for good.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use palisade_infra::crypto::seal::Sealer;
use palisade_infra::crypto::RootKey;
use palisade_infra::{ManualClock, Scheduler, Store};
use palisade_tests::{on_both_stores, Auth, Backend, Server};
use reqwest::Method;
use serde_json::{json, Value};

on_both_stores!(
    twenty_concurrent_writes_with_one_cas_make_one_version,
    versions_follow_max_versions_undelete_and_rollback,
    reads_are_audited_and_no_value_rests_in_clear,
    scopes_and_bad_input_are_refused_clearly,
    a_leak_check_matches_the_value_and_opens_an_incident,
    the_scheduler_soft_deletes_versions_older_than_delete_version_after,
    graphql_lists_secrets_and_changes_them_without_values,
    the_sandbox_has_its_own_secrets,
    rows_a_crash_left_after_a_destroy_are_shredded_on_the_next_pass
);

struct Vault<'a> {
    server: &'a Server,
    key: String,
}

impl Vault<'_> {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.server
            .call(method, path, Auth::ApiKey(&self.key), body)
            .await
    }

    async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::PUT, &format!("/v1/secrets/data/{path}"), Some(body))
            .await
    }

    async fn write(&self, path: &str, value: &str) -> u64 {
        let (status, body) = self.put(path, json!({ "value": value })).await;
        assert_eq!(status, 200, "{body}");
        body["data"]["version"].as_u64().unwrap()
    }

    async fn read(&self, path: &str, version: Option<u32>) -> (u16, Value) {
        let query = version.map_or(String::new(), |v| format!("?version={v}"));
        self.call(
            Method::GET,
            &format!("/v1/secrets/data/{path}{query}"),
            None,
        )
        .await
    }

    async fn metadata(&self, path: &str) -> Value {
        let (status, body) = self
            .call(Method::GET, &format!("/v1/secrets/metadata/{path}"), None)
            .await;
        assert_eq!(status, 200, "{body}");
        body["data"].clone()
    }

    async fn post(&self, action: &str, path: &str, body: Value) -> (u16, Value) {
        self.call(
            Method::POST,
            &format!("/v1/secrets/{action}/{path}"),
            Some(body),
        )
        .await
    }
}

async fn vault(server: &Server) -> Vault<'_> {
    let (_, owner) = server.create_tenant("Acme", "unlimited").await;
    let (_, key) = server
        .issue_api_key(
            &owner,
            "vault",
            &["secrets:read", "secrets:write", "audit:read"],
        )
        .await;
    Vault { server, key }
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

fn state_of(metadata: &Value, version: u32) -> String {
    metadata["versions"][version.to_string()]["state"]
        .as_str()
        .unwrap_or("missing")
        .to_string()
}

async fn twenty_concurrent_writes_with_one_cas_make_one_version(backend: &Backend) {
    let server = Server::start(backend).await;
    let vault = vault(&server).await;
    assert_eq!(vault.write("app/db/password", "v1").await, 1);
    let writes = (0..20).map(|i| {
        let vault = &vault;
        async move {
            vault
                .put(
                    "app/db/password",
                    json!({ "value": format!("racer-{i}"), "cas": 1 }),
                )
                .await
        }
    });
    let outcomes = futures_util::future::join_all(writes).await;
    let won: Vec<&Value> = outcomes
        .iter()
        .filter(|(status, _)| *status == 200)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(won.len(), 1, "exactly one write wins: {outcomes:?}");
    assert_eq!(won[0]["data"]["version"], 2);
    for (status, body) in outcomes.iter().filter(|(status, _)| *status != 200) {
        assert_eq!((*status, code(body)), (409, "cas_mismatch"), "{body}");
        assert_eq!(
            body["error"]["details"][0]["message"], "the current version is 2",
            "{body}"
        );
    }
    let metadata = vault.metadata("app/db/password").await;
    assert_eq!(metadata["current_version"], 2, "{metadata}");
    // cas 0 only creates.
    let (status, body) = vault
        .put("app/db/password", json!({ "value": "x", "cas": 0 }))
        .await;
    assert_eq!((status, code(&body)), (409, "cas_mismatch"), "{body}");
    let (status, _) = vault
        .put("app/new", json!({ "value": "x", "cas": 0 }))
        .await;
    assert_eq!(status, 200);
    // cas_required makes cas mandatory.
    let (status, body) = vault
        .call(
            Method::PATCH,
            "/v1/secrets/metadata/app/new",
            Some(json!({ "cas_required": true })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = vault.put("app/new", json!({ "value": "y" })).await;
    assert_eq!((status, code(&body)), (422, "cas_required"), "{body}");
    let (status, _) = vault
        .put("app/new", json!({ "value": "y", "cas": 1 }))
        .await;
    assert_eq!(status, 200);

    // The tenant's default (tenant:admin) makes cas mandatory everywhere in
    // the environment; the caller's own key sees it on its next request.
    let (status, body) = vault
        .call(
            Method::PATCH,
            "/v1/secrets/config",
            Some(json!({ "cas_required": true })),
        )
        .await;
    assert_eq!((status, code(&body)), (403, "forbidden"), "{body}");
    let (_, owner) = server.create_tenant("Defaults", "unlimited").await;
    let (status, body) = server
        .call(
            Method::PATCH,
            "/v1/secrets/config",
            Auth::ApiKey(&owner),
            Some(json!({ "cas_required": true })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server
        .call(
            Method::PUT,
            "/v1/secrets/data/fresh",
            Auth::ApiKey(&owner),
            Some(json!({ "value": "x" })),
        )
        .await;
    assert_eq!((status, code(&body)), (422, "cas_required"), "{body}");
    let (status, body) = server
        .call(
            Method::PUT,
            "/v1/secrets/data/fresh",
            Auth::ApiKey(&owner),
            Some(json!({ "value": "x", "cas": 0 })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = server
        .call(
            Method::GET,
            "/v1/secrets/config",
            Auth::ApiKey(&owner),
            None,
        )
        .await;
    assert_eq!(body["data"]["cas_required"], true, "{body}");
    // Another tenant is untouched.
    assert_eq!(vault.write("app/other", "z").await, 1);
}

async fn versions_follow_max_versions_undelete_and_rollback(backend: &Backend) {
    let server = Server::start(backend).await;
    let vault = vault(&server).await;
    vault.write("svc/token", "one").await;
    let (status, body) = vault
        .call(
            Method::PATCH,
            "/v1/secrets/metadata/svc/token",
            Some(json!({ "max_versions": 3 })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    for value in ["two", "three", "four", "five"] {
        vault.write("svc/token", value).await;
    }
    let metadata = vault.metadata("svc/token").await;
    assert_eq!(
        (&metadata["current_version"], &metadata["oldest_version"]),
        (&json!(5), &json!(3)),
        "{metadata}"
    );
    assert_eq!(state_of(&metadata, 1), "destroyed");
    assert_eq!(state_of(&metadata, 2), "destroyed");
    assert_eq!(state_of(&metadata, 3), "active");
    let (status, body) = vault.read("svc/token", Some(1)).await;
    assert_eq!((status, code(&body)), (404, "not_found"), "{body}");
    assert_eq!(
        body["error"]["details"][0]["message"], "destroyed",
        "{body}"
    );

    // Soft delete, then undelete: restored. A destroyed version never is.
    let (status, body) = vault.post("delete", "svc/token", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(state_of(&body["data"], 5), "deleted");
    let (status, body) = vault.read("svc/token", None).await;
    assert_eq!((status, code(&body)), (404, "not_found"), "{body}");
    assert_eq!(body["error"]["details"][0]["message"], "deleted", "{body}");
    assert_eq!(
        body["error"]["details"][1]["field"], "deletion_time",
        "{body}"
    );
    let (status, body) = vault
        .post("undelete", "svc/token", json!({ "versions": [2, 5] }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(state_of(&body["data"], 5), "active");
    assert_eq!(state_of(&body["data"], 2), "destroyed");
    let (status, body) = vault.read("svc/token", None).await;
    assert_eq!(
        (status, body["data"]["value"].clone()),
        (200, json!("five"))
    );

    // Rollback to 4 makes version 6 with 4's value (and, at max 3,
    // destroys version 3).
    let (status, body) = vault
        .post(
            "rollback",
            "svc/token",
            json!({ "version": 4, "reason": "bad deploy" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["version"], 6);
    assert_eq!(body["data"]["destroyed_versions"], json!([3]));
    let (_, body) = vault.read("svc/token", None).await;
    assert_eq!(body["data"]["value"], "four");
    let (status, body) = vault
        .post(
            "compare",
            "svc/token",
            json!({ "version1": 4, "version2": 6 }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["different"], false, "{body}");
    let (_, body) = vault
        .post(
            "compare",
            "svc/token",
            json!({ "version1": 5, "version2": 6 }),
        )
        .await;
    assert_eq!(body["data"]["different"], true, "{body}");
    let metadata = vault.metadata("svc/token").await;
    assert_eq!(metadata["oldest_version"], 4, "{metadata}");
    let (status, body) = vault
        .post("rollback", "svc/token", json!({ "version": 3 }))
        .await;
    assert_eq!((status, code(&body)), (409, "invalid_transition"), "{body}");

    // Deprecated stays readable and says so.
    let (status, body) = vault
        .post("deprecate", "svc/token", json!({ "version": 4 }))
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = vault.read("svc/token", Some(4)).await;
    assert_eq!(
        (&body["data"]["state"], &body["data"]["value"]),
        (&json!("deprecated"), &json!("four"))
    );

    // The list and the stats.
    vault.write("svc/other", "x").await;
    vault.write("web/key", "y").await;
    let (_, body) = vault
        .call(Method::GET, "/v1/secrets/metadata?prefix=svc/", None)
        .await;
    let paths: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, vec!["svc/other", "svc/token"], "{body}");
    let (_, body) = vault.call(Method::GET, "/v1/secrets/stats", None).await;
    assert_eq!(body["data"]["total_secrets"], 3, "{body}");
    assert_eq!(body["data"]["by_state"]["destroyed"], 3, "{body}");

    // Delete everything: the path is free, a new write is version 1.
    let (status, body) = vault
        .call(Method::DELETE, "/v1/secrets/metadata/svc/token", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["current_version"], 6, "as it was: {body}");
    let (status, _) = vault
        .call(Method::GET, "/v1/secrets/metadata/svc/token", None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(vault.write("svc/token", "again").await, 1);
    let (_, body) = vault.read("svc/token", None).await;
    assert_eq!(body["data"]["value"], "again");
}

async fn reads_are_audited_and_no_value_rests_in_clear(backend: &Backend) {
    let server = Server::start(backend).await;
    let vault = vault(&server).await;
    let marker = format!("MARKER-{}", uuid::Uuid::new_v4().simple());
    let first = format!("{marker}-first");
    let second = format!("{marker}-second");
    let (status, body) = server
        .call_with_headers(
            Method::PUT,
            "/v1/secrets/data/prod/api-key",
            Auth::ApiKey(&vault.key),
            &[("idempotency-key", "write-1")],
            Some(json!({ "value": first })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    vault.write("prod/api-key", &second).await;
    for version in [1, 2, 2] {
        let (status, body) = vault.read("prod/api-key", Some(version)).await;
        assert_eq!(status, 200, "{body}");
    }
    // Three reads, three SecretRead events with the reader.
    let (status, body) = vault
        .call(
            Method::GET,
            "/v1/audit/events?limit=100&aggregate_type=SecretRead&consistency=strong",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let reads = body["data"].as_array().unwrap();
    assert_eq!(reads.len(), 3, "{body}");
    assert!(reads.iter().all(|r| r["actor"] == "vault"), "{body}");
    let (_, body) = vault
        .call(
            Method::GET,
            "/v1/secrets/audit/prod/api-key?consistency=strong",
            None,
        )
        .await;
    let actions: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec!["created", "created", "read", "read", "read"],
        "{body}"
    );

    // The sealed row of version 1, read before the destroy.
    let store = Store::open(&backend.config()).await.unwrap();
    let sealed: String = sqlx::query_scalar("SELECT sealed FROM secret_values WHERE version = 1")
        .fetch_one(store.read_pool())
        .await
        .unwrap();
    let (status, body) = vault
        .post("destroy", "prod/api-key", json!({ "versions": [1] }))
        .await;
    assert_eq!(status, 200, "{body}");
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM secret_values WHERE version = 1")
        .fetch_one(store.read_pool())
        .await
        .unwrap();
    assert_eq!(left, 0, "the destroyed version's row is gone");

    // No value in any event, audit record, idempotency record or log line.
    for (table, column) in [
        ("events", "payload"),
        ("events", "metadata"),
        ("audit_events", "data"),
        ("idempotency_keys", "response_body"),
    ] {
        let sql = format!("SELECT CAST({column} AS TEXT) FROM {table}");
        let rows: Vec<Option<String>> = sqlx::query_scalar(&sql)
            .fetch_all(store.read_pool())
            .await
            .unwrap();
        for row in rows.into_iter().flatten() {
            assert!(
                !row.contains(&marker),
                "{table}.{column} holds a value: {row}"
            );
        }
    }
    let log = server.log();
    assert!(!log.contains(&marker), "the log holds a value");
    let mut stream =
        palisade_tests::SseClient::connect(&server, &vault.key, "/v1/audit/stream", None).await;
    let frames = stream.take(8, Duration::from_secs(10)).await;
    assert!(
        frames.len() >= 8,
        "the stream replays the records: {frames:?}"
    );
    for frame in &frames {
        assert!(!frame.data.contains(&marker), "an SSE frame holds a value");
    }
    let (_, audit) = vault
        .call(
            Method::GET,
            "/v1/audit/events?limit=500&consistency=strong",
            None,
        )
        .await;
    assert!(
        !audit.to_string().contains(&marker),
        "the audit trail holds a value"
    );
    if backend.kind() == "sqlite" {
        // Neither the database file nor its log holds the destroyed row,
        // nor a value in clear.
        let dir = backend.config().data_dir;
        for file in ["palisade.db", "palisade.db-wal", "palisade.db-shm"] {
            let Ok(bytes) = std::fs::read(dir.join(file)) else {
                continue;
            };
            let needle = &sealed.as_bytes()[..48];
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{file} still holds the destroyed version's sealed row"
            );
            assert!(
                !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
                "{file} holds a value in clear"
            );
        }
    }
    store.close().await;
}

async fn scopes_and_bad_input_are_refused_clearly(backend: &Backend) {
    let server = Server::start(backend).await;
    let vault = vault(&server).await;
    vault.write("team/one", "x").await;
    let (_, owner) = server.create_tenant("Other", "unlimited").await;
    let (_, reader) = server
        .issue_api_key(&owner, "reader", &["secrets:read"])
        .await;
    let (_, findings_only) = server
        .issue_api_key(&owner, "findings", &["findings:read"])
        .await;
    let (status, body) = server
        .call(
            Method::PUT,
            "/v1/secrets/data/team/one",
            Auth::ApiKey(&reader),
            Some(json!({ "value": "x" })),
        )
        .await;
    assert_eq!((status, code(&body)), (403, "forbidden"), "{body}");
    let (status, _) = server
        .call(
            Method::GET,
            "/v1/secrets/data/team/one",
            Auth::ApiKey(&findings_only),
            None,
        )
        .await;
    assert_eq!(status, 403);
    // Another tenant's secret is unknown.
    let (status, _) = server
        .call(
            Method::GET,
            "/v1/secrets/data/team/one",
            Auth::ApiKey(&reader),
            None,
        )
        .await;
    assert_eq!(status, 404);
    // (A client resolves `..` before sending: the domain's tests cover it.)
    for bad in ["a//b", "a/b/", "has%20space", "x/%C3%BC"] {
        let (status, body) = vault.put(bad, json!({ "value": "x" })).await;
        assert_eq!(
            (status, code(&body)),
            (422, "validation_error"),
            "{bad}: {body}"
        );
    }
    let big = "x".repeat(1024 * 1024 + 1);
    let (status, body) = vault.put("team/big", json!({ "value": big })).await;
    assert_eq!((status, code(&body)), (413, "payload_too_large"), "{body}");
    // Versions never had are left out, as Vault does; none named is refused.
    let (status, body) = vault
        .post("destroy", "team/one", json!({ "versions": [9] }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(state_of(&body["data"], 1), "active", "{body}");
    let (status, body) = vault
        .post("destroy", "team/one", json!({ "versions": [] }))
        .await;
    assert_eq!((status, code(&body)), (422, "validation_error"), "{body}");
    let (status, body) = vault
        .post("deprecate", "team/one", json!({ "version": 9 }))
        .await;
    assert_eq!((status, code(&body)), (404, "not_found"), "{body}");
    let (status, body) = vault
        .call(
            Method::PATCH,
            "/v1/secrets/metadata/team/one",
            Some(json!({ "delete_version_after": "soon" })),
        )
        .await;
    assert_eq!((status, code(&body)), (422, "validation_error"), "{body}");
}

async fn a_leak_check_matches_the_value_and_opens_an_incident(backend: &Backend) {
    let server = Server::start(backend).await;
    let vault = vault(&server).await;
    vault.write("ci/deploy-token", "tok-old").await;
    vault.write("ci/deploy-token", "tok-current").await;
    // A random candidate matches nothing and opens nothing.
    let random = format!("tok-{}", uuid::Uuid::new_v4().simple());
    let (status, body) = vault
        .post(
            "leak-check",
            "ci/deploy-token",
            json!({ "candidate": random }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["matched"], false, "{body}");
    // A deprecated version matches but is not in use: no incident.
    let (status, body) = vault
        .post("deprecate", "ci/deploy-token", json!({ "version": 1 }))
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = vault
        .post(
            "leak-check",
            "ci/deploy-token",
            json!({ "candidate": "tok-old" }),
        )
        .await;
    assert_eq!(
        (
            &body["data"]["matched"],
            &body["data"]["version"],
            &body["data"]["state"],
            &body["data"]["incident_id"]
        ),
        (&json!(true), &json!(1), &json!("deprecated"), &Value::Null),
        "{body}"
    );
    // The current value matches and opens an incident; again, the same one.
    let (_, body) = vault
        .post(
            "leak-check",
            "ci/deploy-token",
            json!({ "candidate": "tok-current" }),
        )
        .await;
    assert_eq!(
        (
            &body["data"]["matched"],
            &body["data"]["version"],
            &body["data"]["state"]
        ),
        (&json!(true), &json!(2), &json!("active")),
        "{body}"
    );
    let incident = body["data"]["incident_id"].as_str().unwrap().to_string();
    let (_, again) = vault
        .post(
            "leak-check",
            "ci/deploy-token",
            json!({ "candidate": "tok-current" }),
        )
        .await;
    assert_eq!(again["data"]["incident_id"], incident.as_str(), "{again}");
    let metadata = vault.metadata("ci/deploy-token").await;
    assert_eq!(metadata["leaked"], true, "{metadata}");
    let (status, body) = vault
        .call(Method::GET, "/v1/leakage/incidents?status=open", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["data"][0]["source"], "leak-check");

    // A report by hand, investigated and resolved.
    let (status, body) = vault
        .call(
            Method::POST,
            "/v1/leakage/incidents",
            Some(json!({ "path": "ci/deploy-token", "source": "github", "location": "https://github.example/x", "severity": "critical" })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let reported = body["data"]["id"].as_str().unwrap().to_string();
    let path = format!("/v1/leakage/incidents/{reported}");
    let (status, body) = vault
        .call(Method::PATCH, &path, Some(json!({ "status": "resolved" })))
        .await;
    assert_eq!((status, code(&body)), (422, "validation_error"), "{body}");
    let (status, body) = vault
        .call(
            Method::PATCH,
            &path,
            Some(json!({ "status": "investigating" })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = vault
        .call(
            Method::PATCH,
            &path,
            Some(json!({ "status": "resolved", "resolution": "token rotated" })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["timeline"].as_array().unwrap().len(),
        3,
        "{body}"
    );
    let (status, body) = vault
        .call(Method::PATCH, &path, Some(json!({ "notes": "late" })))
        .await;
    assert_eq!((status, code(&body)), (409, "invalid_transition"), "{body}");

    // A new version clears `leaked`; the candidate is nowhere at rest.
    vault.write("ci/deploy-token", "tok-rotated").await;
    let metadata = vault.metadata("ci/deploy-token").await;
    assert_eq!(metadata["leaked"], false, "{metadata}");
    let store = Store::open(&backend.config()).await.unwrap();
    for (table, column) in [
        ("events", "payload"),
        ("audit_events", "data"),
        ("idempotency_keys", "response_body"),
    ] {
        let sql = format!("SELECT CAST({column} AS TEXT) FROM {table}");
        let rows: Vec<Option<String>> = sqlx::query_scalar(&sql)
            .fetch_all(store.read_pool())
            .await
            .unwrap();
        for row in rows.into_iter().flatten() {
            assert!(!row.contains(&random), "{table} holds a candidate: {row}");
            assert!(!row.contains("tok-current"), "{table} holds a value: {row}");
        }
    }
    assert!(!server.log().contains(&random), "the log holds a candidate");
    store.close().await;
}

async fn the_scheduler_soft_deletes_versions_older_than_delete_version_after(backend: &Backend) {
    let server = Server::start(backend).await;
    let vault = vault(&server).await;
    vault.write("batch/creds", "a").await;
    vault.write("batch/creds", "b").await;
    let (status, body) = vault
        .call(
            Method::PATCH,
            "/v1/secrets/metadata/batch/creds",
            Some(json!({ "delete_version_after": "1h" })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["delete_version_after"], "3600s", "{body}");
    let due: chrono::DateTime<chrono::Utc> = body["data"]["versions"]["1"]["deletion_time"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    let store = Store::open(&backend.config()).await.unwrap();
    let (root, _) = RootKey::load(None, &backend.config().data_dir).unwrap();
    let clock = Arc::new(ManualClock::new(due - chrono::Duration::minutes(1)));
    let scheduler = Scheduler::new(
        store.clone(),
        Sealer::new(&root),
        clock.clone(),
        Duration::from_secs(1),
    );
    scheduler.tick().await.unwrap();
    let metadata = vault.metadata("batch/creds").await;
    assert_eq!(state_of(&metadata, 1), "active", "not yet due: {metadata}");
    // Both versions were written within the same second or so; an hour
    // and a minute later both are due.
    clock.set(due + chrono::Duration::minutes(1));
    scheduler.tick().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let metadata = vault.metadata("batch/creds").await;
        if state_of(&metadata, 1) == "deleted" && state_of(&metadata, 2) == "deleted" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not deleted: {metadata}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) = vault.read("batch/creds", None).await;
    assert_eq!((status, code(&body)), (404, "not_found"), "{body}");
    // Undelete brings a version back; the scheduler deletes it again only
    // on a later pass past its time (it is still past it: it does).
    let (status, body) = vault
        .post("undelete", "batch/creds", json!({ "versions": [2] }))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = vault.read("batch/creds", None).await;
    assert_eq!((status, body["data"]["value"].clone()), (200, json!("b")));
    store.close().await;
}

async fn graphql_lists_secrets_and_changes_them_without_values(backend: &Backend) {
    let server = Server::start(backend).await;
    let vault = vault(&server).await;
    let graphql = |query: String| {
        let vault = &vault;
        async move {
            let (status, body) = vault
                .call(Method::POST, "/graphql", Some(json!({ "query": query })))
                .await;
            assert_eq!(status, 200, "{body}");
            assert!(body["errors"].is_null(), "{body}");
            body["data"].clone()
        }
    };
    let written = graphql(
        r#"mutation { writeSecret(input: { path: "gql/one", value: "v-one-GQL", cas: 0 }) { path version } }"#.into(),
    )
    .await;
    assert_eq!(written["writeSecret"]["version"], 1, "{written}");
    graphql(
        r#"mutation { writeSecret(input: { path: "gql/one", value: "v-two-GQL" }) { version } }"#
            .into(),
    )
    .await;
    graphql(r#"mutation { deprecateSecretVersion(path: "gql/one", version: 1) { path } }"#.into())
        .await;
    let data = graphql(
        r#"{ secret(path: "gql/one") { path currentVersion leaked versions { version state size } }
             secrets(prefix: "gql/") { totalCount edges { node { path currentVersion } } } }"#
            .into(),
    )
    .await;
    assert_eq!(data["secret"]["currentVersion"], 2, "{data}");
    assert_eq!(
        data["secret"]["versions"][0]["state"], "deprecated",
        "{data}"
    );
    assert_eq!(data["secrets"]["totalCount"], 1, "{data}");
    assert!(
        !data.to_string().contains("GQL"),
        "GraphQL shows no value: {data}"
    );
    let data = graphql(r#"{ secret(path: "gql/none") { path } }"#.into()).await;
    assert!(data["secret"].is_null(), "{data}");
    let reported = graphql(
        r#"mutation { reportLeak(input: { path: "gql/one", source: "slack", severity: "high" }) { id status } }"#.into(),
    )
    .await;
    assert_eq!(reported["reportLeak"]["status"], "open", "{reported}");
    let listed = graphql(
        r#"{ leakageIncidents(status: ["open"]) { totalCount edges { node { path source } } } }"#
            .into(),
    )
    .await;
    assert_eq!(listed["leakageIncidents"]["totalCount"], 1, "{listed}");
    assert_eq!(
        listed["leakageIncidents"]["edges"][0]["node"]["source"],
        "slack"
    );
    let destroyed = graphql(
        r#"mutation { destroySecretVersions(path: "gql/one", versions: [1]) { versions { version state } } }"#.into(),
    )
    .await;
    assert_eq!(
        destroyed["destroySecretVersions"]["versions"][0]["state"], "destroyed",
        "{destroyed}"
    );
}

async fn the_sandbox_has_its_own_secrets(backend: &Backend) {
    let server = Server::start(backend).await;
    let (_, owner) = server.create_tenant("Acme", "unlimited").await;
    let (_, live) = server
        .issue_api_key(&owner, "live", &["secrets:read", "secrets:write"])
        .await;
    let (_, sandbox) = server
        .issue_api_key_with(
            &owner,
            json!({ "name": "sandbox", "principal": "sandbox", "scopes": ["secrets:read", "secrets:write"], "environment": "test" }),
        )
        .await;
    let live = Vault {
        server: &server,
        key: live,
    };
    let sandbox = Vault {
        server: &server,
        key: sandbox,
    };
    live.write("db/password", "live-value").await;
    let (status, _) = sandbox.read("db/password", None).await;
    assert_eq!(status, 404, "the sandbox does not see live secrets");
    assert_eq!(sandbox.write("db/password", "test-value").await, 1);
    let (_, body) = live.read("db/password", None).await;
    assert_eq!(body["data"]["value"], "live-value");
    let (_, body) = sandbox.read("db/password", None).await;
    assert_eq!(body["data"]["value"], "test-value");
}

/// A copy of every sealed row of a secret, to put back as a crash between
/// the event and the delete would have left it.
async fn sealed_rows(store: &Store, table: &str, secret_id: &str) -> Vec<Vec<Option<String>>> {
    let columns = match table {
        "secret_values" => {
            "value_id, secret_id, data_key_id, CAST(version AS TEXT), sealed, created_at"
        }
        _ => "data_key_id, secret_id, tenant_id, sealed, created_at",
    };
    let sql = format!("SELECT {columns} FROM {table} WHERE secret_id = $1");
    let rows = sqlx::query(&sql)
        .bind(secret_id)
        .fetch_all(store.read_pool())
        .await
        .unwrap();
    use sqlx::Row;
    rows.iter()
        .map(|row| {
            (0..row.len())
                .map(|i| row.try_get::<Option<String>, _>(i).unwrap())
                .collect()
        })
        .collect()
}

async fn put_back(store: &Store, table: &str, rows: &[Vec<Option<String>>]) {
    for row in rows {
        let sql = match table {
            "secret_values" => "INSERT INTO secret_values (value_id, secret_id, data_key_id, version, sealed, created_at) VALUES ($1, $2, $3, CAST($4 AS BIGINT), $5, $6)",
            _ => "INSERT INTO secret_data_keys (data_key_id, secret_id, tenant_id, sealed, created_at) VALUES ($1, $2, $3, $4, $5)",
        };
        let mut query = sqlx::query(sql);
        for value in row {
            query = query.bind(value.clone());
        }
        query.execute(store.read_pool()).await.unwrap();
    }
}

async fn count(store: &Store, table: &str, secret_id: &str) -> i64 {
    sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM {table} WHERE secret_id = $1"
    ))
    .bind(secret_id)
    .fetch_one(store.read_pool())
    .await
    .unwrap()
}

async fn rows_a_crash_left_after_a_destroy_are_shredded_on_the_next_pass(backend: &Backend) {
    let server = Server::start(backend).await;
    let vault = vault(&server).await;
    for value in ["one", "two", "three"] {
        vault.write("crash/s", value).await;
    }
    let store = Store::open(&backend.config()).await.unwrap();
    let secret_id: String = sqlx::query_scalar("SELECT id FROM secrets WHERE path = 'crash/s'")
        .fetch_one(store.read_pool())
        .await
        .unwrap();
    let values = sealed_rows(&store, "secret_values", &secret_id).await;
    let keys = sealed_rows(&store, "secret_data_keys", &secret_id).await;
    assert_eq!((values.len(), keys.len()), (3, 1));
    let first: Vec<_> = values
        .iter()
        .filter(|row| row[3].as_deref() == Some("1"))
        .cloned()
        .collect();
    let (status, body) = vault
        .post("destroy", "crash/s", json!({ "versions": [1] }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(count(&store, "secret_values", &secret_id).await, 2);
    // As if the process had died between the event and the delete.
    put_back(&store, "secret_values", &first).await;
    let (root, _) = RootKey::load(None, &backend.config().data_dir).unwrap();
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let scheduler = Scheduler::new(
        store.clone(),
        Sealer::new(&root),
        clock,
        Duration::from_secs(1),
    );
    scheduler.tick().await.unwrap();
    assert_eq!(
        count(&store, "secret_values", &secret_id).await,
        2,
        "the destroyed row is gone again"
    );
    let (_, body) = vault.read("crash/s", Some(2)).await;
    assert_eq!(body["data"]["value"], "two", "the others are untouched");

    let (status, body) = vault
        .call(Method::DELETE, "/v1/secrets/metadata/crash/s", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(count(&store, "secret_values", &secret_id).await, 0);
    assert_eq!(count(&store, "secret_data_keys", &secret_id).await, 0);
    put_back(&store, "secret_data_keys", &keys).await;
    put_back(&store, "secret_values", &values[..1]).await;
    // A new generation at the same path is written meanwhile: its rows stay.
    vault.write("crash/s", "reborn").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        scheduler.tick().await.unwrap();
        if count(&store, "secret_data_keys", &secret_id).await == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the deleted secret's rows stay"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        count(&store, "secret_values", &secret_id).await,
        1,
        "the new generation's row"
    );
    let (_, body) = vault.read("crash/s", None).await;
    assert_eq!(body["data"]["value"], "reborn");
    store.close().await;
}
