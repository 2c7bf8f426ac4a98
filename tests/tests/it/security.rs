//! Regression tests for the security review of issue 11, one or more per
//! numbered defect, against the real binary on both stores. Each failed on
//! the code before the fix. Input bounds (items 7, 9, 11, 12 and 15) are in
//! `security_input.rs`; the scheduler's pruning of idempotency records
//! (item 3) is in `scheduler.rs`; the configuration's redacted secrets
//! (item 18) are a unit test of `palisade_infra::config`.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use palisade_infra::Store;
use palisade_tests::{on_both_stores, Auth, Backend, Server, ServerOptions, ADMIN_TOKEN};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::graphql::{finding, graphql, operation, Subscriber};

on_both_stores!(
    a_revoked_keys_open_socket_refuses_its_next_operation_and_closes,
    a_suspended_tenants_open_socket_refuses_its_next_operation_and_closes,
    a_replay_answers_only_the_key_that_made_the_request,
    a_replay_never_shows_a_secret_and_no_record_holds_one,
    data_files_are_private,
    bodies_are_limited_as_they_stream,
    test_keys_see_and_touch_only_test_keys,
    every_mutation_root_field_counts_and_root_fields_are_capped,
    list_fields_and_chain_walks_carry_their_cost,
    a_far_expiry_is_refused_and_no_stored_time_breaks_a_list,
    plan_limits_apply_to_the_tenant_as_a_whole,
    concurrent_requests_never_spend_more_than_the_quota,
    a_key_holds_at_most_ten_streams,
    a_socket_that_never_initialises_is_closed,
    metrics_need_the_admin_token_and_rejections_speak_the_envelope,
    slow_statement_warnings_are_truncated,
);

const WAIT: Duration = Duration::from_secs(20);

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

/// The tenant's keys as its owner sees them, read strongly.
async fn key_count(server: &Server, owner: &str) -> i64 {
    let (status, body) = server
        .call(
            Method::GET,
            "/v1/api-keys?consistency=strong",
            Auth::ApiKey(owner),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["meta"]["total"].as_i64().unwrap()
}

const ISSUE_ADMIN_KEY: &str = r#"mutation { issueApiKey(input: {name: "minted", principal: "x", scopes: ["tenant:admin"]}) { key } }"#;

/// Item 1: after `DELETE /v1/api-keys/{K}`, K's open socket answered
/// queries and minted a live admin key. Now its next operation is refused
/// and the socket closes with 4401 `invalid_api_key`.
async fn a_revoked_keys_open_socket_refuses_its_next_operation_and_closes(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (_, owner) = server.create_tenant("Acme", "unlimited").await;
    let (key_id, key) = server
        .issue_api_key(&owner, "admin-bot", &["tenant:admin"])
        .await;
    let mut socket = Subscriber::connect(&server, json!({"apiKey": key})).await;
    let ack = socket.next(WAIT).await.unwrap();
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    let answer = operation(&mut socket, 1, "{ tenant { name } }").await;
    assert_eq!(answer["data"]["tenant"]["name"], "Acme", "{answer}");
    let before = key_count(&server, &owner).await;

    server.revoke_api_key(&owner, &key_id).await;
    socket
        .send(json!({"id": "2", "type": "subscribe", "payload": {"query": ISSUE_ADMIN_KEY}}))
        .await;
    let refused = socket.next(WAIT).await.unwrap();
    assert_eq!(refused["type"], "next", "{refused}");
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], "invalid_api_key",
        "{refused}"
    );
    assert!(refused["payload"]["data"].is_null(), "{refused}");
    assert_eq!(
        socket.closed(WAIT).await,
        Some((4401, "invalid_api_key".to_string()))
    );
    assert_eq!(
        key_count(&server, &owner).await,
        before,
        "no key was minted"
    );
}

/// Item 1, for a suspended tenant: 4403 `tenant_suspended`.
async fn a_suspended_tenants_open_socket_refuses_its_next_operation_and_closes(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (tenant_id, owner) = server.create_tenant("Acme", "unlimited").await;
    let mut socket = Subscriber::connect(&server, json!({"apiKey": owner})).await;
    assert_eq!(socket.next(WAIT).await.unwrap()["type"], "connection_ack");
    let answer = operation(&mut socket, 1, "{ tenant { name } }").await;
    assert!(answer.get("errors").is_none(), "{answer}");
    let path = format!("/v1/admin/tenants/{tenant_id}/suspend");
    let (status, body) = server.admin_post(&path, json!({})).await;
    assert_eq!(status, 200, "{body}");
    socket
        .send(json!({"id": "2", "type": "subscribe", "payload": {"query": "{ tenant { name } }"}}))
        .await;
    let refused = socket.next(WAIT).await.unwrap();
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], "tenant_suspended",
        "{refused}"
    );
    assert_eq!(
        socket.closed(WAIT).await,
        Some((4403, "tenant_suspended".to_string()))
    );
}

/// Item 2: a read-only key, or a test key, that replayed the owner's
/// `POST /v1/api-keys` (same Idempotency-Key, same body) got the owner's
/// plaintext admin key; a test key replaying a live ingest got the live
/// finding. Now a record answers only the key that made it: another key
/// makes a fresh request, authorised as any other.
async fn a_replay_answers_only_the_key_that_made_the_request(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (_, owner) = server.create_tenant("Acme", "unlimited").await;
    let (_, reader) = server
        .issue_api_key(&owner, "reader", &["findings:read"])
        .await;
    let test_body = json!({"name": "sandbox", "principal": "ci", "environment": "test",
                           "scopes": ["tenant:admin", "findings:write", "findings:read"]});
    let (_, test_key) = server.issue_api_key_with(&owner, test_body).await;
    let body = json!({"name": "ops", "principal": "ops", "scopes": ["tenant:admin"]});
    let (status, replayed, first) = server
        .post_idempotent("/v1/api-keys", &owner, "shared-1", &body)
        .await;
    assert_eq!((status, replayed), (201, false), "{first}");
    for other in [&reader, &test_key] {
        let (status, replayed, answer) = server
            .post_idempotent("/v1/api-keys", other, "shared-1", &body)
            .await;
        assert_eq!((status, replayed), (403, false), "{answer}");
        assert_eq!(code(&answer), "forbidden");
        assert!(!answer.to_string().contains("pal_live_"), "{answer}");
    }
    // GraphQL mutations too.
    let mutation = json!({"query": ISSUE_ADMIN_KEY});
    let (status, _, first) = server
        .post_idempotent("/graphql", &owner, "gql-1", &mutation)
        .await;
    assert_eq!(status, 200, "{first}");
    assert!(first["data"]["issueApiKey"]["key"].is_string(), "{first}");
    let (status, replayed, answer) = server
        .post_idempotent("/graphql", &reader, "gql-1", &mutation)
        .await;
    assert_eq!((status, replayed), (200, false), "{answer}");
    assert_eq!(answer["errors"][0]["extensions"]["code"], "forbidden");
    // A test key replaying a live ingest ingests into test.
    let ingest = finding("Live only", "high", "live.example.com");
    let (status, _, live) = server
        .post_idempotent("/v1/findings", &owner, "ingest-1", &ingest)
        .await;
    assert_eq!(status, 201, "{live}");
    let (status, replayed, test) = server
        .post_idempotent("/v1/findings", &test_key, "ingest-1", &ingest)
        .await;
    assert_eq!((status, replayed), (201, false), "{test}");
    assert_eq!(test["data"]["environment"], "test", "{test}");
    assert_ne!(test["data"]["id"], live["data"]["id"]);
}

/// Item 3: idempotency records held new keys' values in clear. Now a
/// response with a secret is kept redacted, its replay says so, and the
/// value is in no record and nowhere in the database files.
async fn a_replay_never_shows_a_secret_and_no_record_holds_one(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (_, owner) = server.create_tenant("Acme", "unlimited").await;
    let body = json!({"name": "ops", "principal": "ops", "scopes": ["findings:read"]});
    let send = || {
        server
            .http
            .post(server.url("/v1/api-keys"))
            .header("x-api-key", &owner)
            .header("idempotency-key", "secret-1")
            .json(&body)
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status().as_u16(), 201);
    let first: Value = first.json().await.unwrap();
    let value = first["data"]["key"].as_str().unwrap().to_string();
    assert!(value.starts_with("pal_live_"));
    let replay = send().await.unwrap();
    assert_eq!(replay.status().as_u16(), 201);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.headers()["idempotent-redacted"], "true");
    let replay: Value = replay.json().await.unwrap();
    assert_eq!(replay["data"]["key"], "[redacted]");
    assert_eq!(replay["data"]["id"], first["data"]["id"]);
    // The admin's tenant creation carries the owner's key: redacted too.
    let create = || {
        server
            .http
            .post(server.url("/v1/admin/tenants"))
            .bearer_auth(ADMIN_TOKEN)
            .header("idempotency-key", "tenant-1")
            .json(&json!({"name": "Beta"}))
            .send()
    };
    let created: Value = create().await.unwrap().json().await.unwrap();
    let owner_b = created["data"]["api_key"]["key"]
        .as_str()
        .unwrap()
        .to_string();
    let again: Value = create().await.unwrap().json().await.unwrap();
    assert_eq!(again["data"]["api_key"]["key"], "[redacted]", "{again}");

    let store = Store::open(&backend.config()).await.unwrap();
    let bodies: Vec<String> =
        sqlx::query_scalar("SELECT COALESCE(response_body, '') FROM idempotency_keys")
            .fetch_all(store.read_pool())
            .await
            .unwrap();
    assert_eq!(bodies.len(), 2);
    for body in &bodies {
        assert!(!body.contains(&value) && !body.contains(&owner_b), "{body}");
        assert!(body.contains("[redacted]"), "{body}");
    }
    // Nor in any event (payload or metadata), on either store.
    let events: Vec<String> =
        sqlx::query_scalar("SELECT CAST(payload AS TEXT) || CAST(metadata AS TEXT) FROM events")
            .fetch_all(store.read_pool())
            .await
            .unwrap();
    assert!(!events.is_empty());
    for event in &events {
        assert!(
            !event.contains(&value) && !event.contains(&owner_b),
            "{event}"
        );
    }
    store.close().await;
    // Nor in the server's log, nor in an error body that a wrong use of the
    // key provokes.
    let log = server.log();
    assert!(
        !log.contains(&value) && !log.contains(&owner_b),
        "the log holds a key"
    );
    let wrong = format!("{value}x");
    let (status, refused) = server
        .call(Method::GET, "/v1/findings", Auth::ApiKey(&wrong), None)
        .await;
    assert_eq!(status, 401);
    assert!(!refused.to_string().contains(&value), "{refused}");
    if backend.database_url().is_none() {
        // Not in any page of the SQLite files either.
        for name in ["palisade.db", "palisade.db-wal"] {
            let path = backend.dir.join(name);
            let bytes = std::fs::read(&path).unwrap_or_default();
            let found = bytes
                .windows(value.len())
                .any(|w| w == value.as_bytes() || w == owner_b.as_bytes());
            assert!(!found, "{} holds a key value", path.display());
        }
    }
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Item 3: `palisade.db`, `-wal` and `-shm` were 0644 in a 0755 data dir.
/// Now the dir is 0700 and every file 0600, also when they existed with
/// looser modes (tightened, and logged).
async fn data_files_are_private(backend: &Backend) {
    std::fs::set_permissions(&backend.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut server = Server::start_admin(backend).await;
    server.create_tenant("Acme", "pro").await;
    assert_eq!(mode(&backend.dir), 0o700);
    assert!(
        server.log().contains("tightened the permissions"),
        "{}",
        server.log()
    );
    let sqlite = backend.database_url().is_none();
    let files: &[&str] = if sqlite {
        &[
            "palisade.db",
            "palisade.db-wal",
            "palisade.db-shm",
            "root-key",
        ]
    } else {
        &["root-key"]
    };
    for name in files {
        assert_eq!(mode(&backend.dir.join(name)), 0o600, "{name}");
    }
    // A looser mode left by someone else is tightened at the next start.
    server.signal("TERM");
    assert_eq!(server.wait(Duration::from_secs(30)).await, Some(0));
    // (A clean stop removes the WAL and shared-memory files.)
    for name in files {
        let path = backend.dir.join(name);
        if path.exists() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let server = Server::start_admin(backend).await;
    for name in files {
        assert_eq!(mode(&backend.dir.join(name)), 0o600, "{name}");
    }
    drop(server);
    // A data dir that does not exist yet is created private.
    let fresh = backend.dir.join("nested").join("data");
    let options = ServerOptions {
        env: vec![("PALISADE_DATA_DIR".into(), fresh.display().to_string())],
        admin_token: Some(ADMIN_TOKEN.into()),
    };
    let _server = Server::start_with(backend, options).await;
    assert_eq!(mode(&fresh), 0o700);
}

/// Sends `total` bytes to `path` as a chunked body; the status line's code.
async fn chunked_post(server: &Server, path: &str, key: &str, total: usize) -> (u16, String) {
    let address = server.base_url.trim_start_matches("http://").to_string();
    let stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    // Read while writing: the answer comes before the body is done, and a
    // reset after it must not discard it unread.
    let answer = tokio::spawn(async move {
        let mut answer = Vec::new();
        let mut buffer = [0u8; 4096];
        while let Ok(Ok(n)) = tokio::time::timeout(WAIT, reader.read(&mut buffer)).await {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buffer[..n]);
        }
        answer
    });
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nX-API-Key: {key}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    writer.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 64 * 1024];
    let mut sent = 0;
    while sent < total {
        let frame = [
            format!("{:x}\r\n", chunk.len()).into_bytes(),
            chunk.clone(),
            b"\r\n".to_vec(),
        ]
        .concat();
        // The server may answer and stop reading before the end.
        if writer.write_all(&frame).await.is_err() {
            break;
        }
        sent += chunk.len();
    }
    let _ = writer.write_all(b"0\r\n\r\n").await;
    let answer = answer.await.unwrap();
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// Item 4: a chunked 200 MiB body to `POST /graphql` was read whole. Now
/// every body is cut off at its route's limit as it streams (1 MiB for
/// GraphQL), 413 in the envelope, and a websocket message over 1 MiB
/// closes the socket.
async fn bodies_are_limited_as_they_stream(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (_, owner) = server.create_tenant("Acme", "unlimited").await;
    for path in ["/graphql", "/v1/findings", "/v1/api-keys"] {
        let (status, text) = chunked_post(&server, path, &owner, 3 * 1024 * 1024).await;
        assert_eq!(status, 413, "{path}: {text}");
        assert!(text.contains("\"payload_too_large\""), "{path}: {text}");
    }
    let mut socket = Subscriber::connect(&server, json!({"apiKey": owner})).await;
    assert_eq!(socket.next(WAIT).await.unwrap()["type"], "connection_ack");
    let huge = "x".repeat(2 * 1024 * 1024);
    // The server may drop the connection before the message is written.
    let _ = socket
        .try_send(json!({"id": "1", "type": "subscribe", "payload": {"query": huge}}))
        .await;
    assert!(
        socket.next(WAIT).await.is_none(),
        "an oversized message closes the socket"
    );
    // And the server is fine.
    let body = graphql(&server, &owner, "{ tenant { name } }", json!({})).await;
    assert_eq!(body["data"]["tenant"]["name"], "Acme");
}

/// Item 5: a test key listed, read and revoked live keys. Now test keys
/// see and touch only test keys; live keys are 404 to them.
async fn test_keys_see_and_touch_only_test_keys(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (_, owner) = server.create_tenant("Acme", "unlimited").await;
    let body = json!({"name": "sandbox", "principal": "ci", "environment": "test",
                      "scopes": ["tenant:admin"]});
    let (test_id, test_key) = server.issue_api_key_with(&owner, body).await;
    let (_, owner_keys) = server
        .call(Method::GET, "/v1/api-keys", Auth::ApiKey(&owner), None)
        .await;
    assert_eq!(owner_keys["meta"]["total"], 2, "live keys see every key");
    let owner_id = owner_keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["environment"] == "live")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    let (status, listed) = server
        .call(Method::GET, "/v1/api-keys", Auth::ApiKey(&test_key), None)
        .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["meta"]["total"], 1, "{listed}");
    assert_eq!(listed["data"][0]["id"], test_id.as_str());
    let path = format!("/v1/api-keys/{owner_id}");
    let (status, body) = server
        .call(Method::GET, &path, Auth::ApiKey(&test_key), None)
        .await;
    assert_eq!((status, code(&body)), (404, "not_found"), "{body}");
    let (status, body) = server
        .call(Method::DELETE, &path, Auth::ApiKey(&test_key), None)
        .await;
    assert_eq!((status, code(&body)), (404, "not_found"), "{body}");
    let (status, _) = server
        .call(Method::GET, "/v1/api-keys", Auth::ApiKey(&owner), None)
        .await;
    assert_eq!(status, 200, "the owner key still works");
    let keys = graphql(
        &server,
        &test_key,
        &format!(r#"{{ apiKeys {{ totalCount edges {{ node {{ id }} }} }} apiKey(id: "{owner_id}") {{ id }} }}"#),
        json!({}),
    )
    .await;
    assert_eq!(keys["data"]["apiKeys"]["totalCount"], 1, "{keys}");
    assert!(keys["data"]["apiKey"].is_null(), "{keys}");
    let revoke = format!(r#"mutation {{ revokeApiKey(input: {{id: "{owner_id}"}}) {{ id }} }}"#);
    let answer = graphql(&server, &test_key, &revoke, json!({})).await;
    assert_eq!(
        answer["errors"][0]["extensions"]["code"], "not_found",
        "{answer}"
    );
    // A test key still revokes its own kind.
    let path = format!("/v1/api-keys/{test_id}");
    let (status, body) = server
        .call(Method::DELETE, &path, Auth::ApiKey(&test_key), None)
        .await;
    assert_eq!(status, 200, "{body}");
}

/// How many Finding events the store holds.
async fn finding_events(backend: &Backend) -> i64 {
    let store = Store::open(&backend.config()).await.unwrap();
    let count: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE aggregate_type = 'Finding'")
            .fetch_one(store.read_pool())
            .await
            .unwrap();
    store.close().await;
    count
}

/// Item 6: 200 aliased `ingestFinding` on a free key (10 a minute)
/// created 200 findings. Now each mutation root field counts as a
/// request, and an operation selects at most 20 root fields.
async fn every_mutation_root_field_counts_and_root_fields_are_capped(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (_, key) = server.create_tenant("Acme", "free").await;
    let fields: Vec<String> = (0..11)
        .map(|i| {
            format!(
                r#"f{i}: ingestFinding(input: {{product: "p", category: "c", title: "T{i}", severity: HIGH, assetIdentifier: "a.example.com"}}) {{ deduplicated }}"#
            )
        })
        .collect();
    let document = format!("mutation {{ {} }}", fields.join(" "));
    let (status, body) = server
        .call(
            Method::POST,
            "/graphql",
            Auth::ApiKey(&key),
            Some(json!({"query": document})),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (429, "rate_limit_exceeded"),
        "{body}"
    );
    assert_eq!(finding_events(backend).await, 0, "nothing was ingested");
    // A refusal by the limits is not kept for retries: the retry is judged
    // afresh (and refused afresh), not replayed.
    for _ in 0..2 {
        let (status, replayed, body) = server
            .post_idempotent("/graphql", &key, "aliases-1", &json!({"query": document}))
            .await;
        assert_eq!((status, replayed), (429, false), "{body}");
    }
    // Nesting the mutations in inline fragments hides none of them.
    let mut nested = fields.join(" ");
    for _ in 0..12 {
        nested = format!("... {{ {nested} }}");
    }
    let (_, other) = server.create_tenant("Gamma", "free").await;
    let (status, body) = server
        .call(
            Method::POST,
            "/graphql",
            Auth::ApiKey(&other),
            Some(json!({"query": format!("mutation {{ {nested} }}")})),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (429, "rate_limit_exceeded"),
        "{body}"
    );
    assert_eq!(finding_events(backend).await, 0, "nothing was ingested");

    let (_, unlimited) = server.create_tenant("Beta", "unlimited").await;
    let many: Vec<String> = (0..21)
        .map(|i| format!("t{i}: tenant {{ name }}"))
        .collect();
    let (status, body) = server
        .call(
            Method::POST,
            "/graphql",
            Auth::ApiKey(&unlimited),
            Some(json!({"query": format!("{{ {} }}", many.join(" "))})),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (400, "too_many_root_fields"),
        "{body}"
    );
    // Through a fragment too.
    let query = format!(
        "query {{ ...many }} fragment many on Query {{ {} }}",
        many.join(" ")
    );
    let (status, body) = server
        .call(
            Method::POST,
            "/graphql",
            Auth::ApiKey(&unlimited),
            Some(json!({"query": query})),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (400, "too_many_root_fields"),
        "{body}"
    );
    // A fragment bomb (each fragment spreads the next eight times: 8^10
    // fields) is refused at once, before async-graphql validates it.
    let mut bomb = String::from("query { ...F0 }");
    for i in 0..10 {
        let spreads = vec![format!("...F{}", i + 1); 8].join(" ");
        bomb.push_str(&format!(" fragment F{i} on Query {{ {spreads} }}"));
    }
    bomb.push_str(" fragment F10 on Query { tenant { name } }");
    let started = std::time::Instant::now();
    let (status, body) = server
        .call(
            Method::POST,
            "/graphql",
            Auth::ApiKey(&unlimited),
            Some(json!({"query": bomb})),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "bad_request"), "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let twenty = many[..20].join(" ");
    let body = graphql(&server, &unlimited, &format!("{{ {twenty} }}"), json!({})).await;
    assert_eq!(body["data"]["t19"]["name"], "Beta", "{body}");
}

/// Item 6: 2,400 aliased `auditVerification` took 19 s. Now a chain walk
/// costs 1,000 of the complexity limit of 5,000, and list fields cost
/// their items.
async fn list_fields_and_chain_walks_carry_their_cost(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (_, key) = server.create_tenant("Acme", "unlimited").await;
    let walks: Vec<String> = (0..6)
        .map(|i| format!("v{i}: auditVerification {{ verified }}"))
        .collect();
    let body = graphql(
        &server,
        &key,
        &format!("{{ {} }}", walks.join(" ")),
        json!({}),
    )
    .await;
    assert!(body["data"].is_null(), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("complex"), "{body}");
    let body = graphql(
        &server,
        &key,
        &format!("{{ {} }}", walks[..4].join(" ")),
        json!({}),
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
    // 100 findings with their history each: 100 × (20 + fields) > 5,000.
    let heavy = "{ a: findings(first: 100) { edges { node { id title history { eventType } } } } \
                   b: findings(first: 100) { edges { node { id title history { eventType } } } } \
                   c: findings(first: 100) { edges { node { id title history { eventType } } } } }";
    let body = graphql(&server, &key, heavy, json!({})).await;
    assert!(body["data"].is_null(), "{body}");
}

/// Item 8: `expires_at` in year 10000 was accepted and then could not be
/// read back: the tenant's key list was 500 forever. Now expiry is at most
/// 10 years ahead, and a stored time that cannot be read breaks nothing.
async fn a_far_expiry_is_refused_and_no_stored_time_breaks_a_list(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (_, owner) = server.create_tenant("Acme", "unlimited").await;
    for expires_at in ["2040-01-01T00:00:00Z", "+10000-01-01T00:00:00Z"] {
        let body = json!({"name": "far", "principal": "x", "scopes": ["findings:read"],
                          "expires_at": expires_at});
        let (status, answer) = server
            .call(
                Method::POST,
                "/v1/api-keys",
                Auth::ApiKey(&owner),
                Some(body),
            )
            .await;
        assert_eq!(
            (status, code(&answer)),
            (422, "validation_error"),
            "{answer}"
        );
    }
    let (id, _) = server
        .issue_api_key(&owner, "poisoned", &["findings:read"])
        .await;
    // Rows written by an older version, or by hand: unreadable times.
    let store = Store::open(&backend.config()).await.unwrap();
    for stored in ["+10000-01-01T00:00:00.000000Z", "not a time"] {
        sqlx::query("UPDATE api_keys SET expires_at = $1 WHERE id = $2")
            .bind(stored)
            .bind(&id)
            .execute(store.read_pool())
            .await
            .unwrap();
        let (status, body) = server
            .call(Method::GET, "/v1/api-keys", Auth::ApiKey(&owner), None)
            .await;
        assert_eq!(status, 200, "{stored}: {body}");
        assert_eq!(body["meta"]["total"], 2);
    }
    store.close().await;
    let (status, body) = server
        .call(
            Method::DELETE,
            &format!("/v1/api-keys/{id}"),
            Auth::ApiKey(&owner),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// Waits, when needed, so that the next twenty seconds fall in one minute.
async fn within_one_minute() {
    let second = chrono::Timelike::second(&chrono::Utc::now());
    if second > 40 {
        tokio::time::sleep(Duration::from_secs(u64::from(61 - second))).await;
    }
}

/// Item 10: rate limits were per key, so a free tenant with 5 extra keys
/// made 50 requests a minute. Now the plan's limits are the tenant's, in
/// each environment.
async fn plan_limits_apply_to_the_tenant_as_a_whole(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (_, owner) = server.create_tenant("Acme", "free").await;
    within_one_minute().await;
    let body = json!({"name": "sandbox", "principal": "ci", "environment": "test",
                      "scopes": ["findings:read"]});
    let (_, sandbox) = server.issue_api_key_with(&owner, body).await;
    let mut keys = vec![owner.clone()];
    for i in 0..4 {
        let name = format!("bot-{i}");
        keys.push(
            server
                .issue_api_key(&owner, &name, &["findings:read"])
                .await
                .1,
        );
    }
    // Five requests so far; five more across the keys make ten.
    let mut ok = 0;
    let mut refused = 0;
    for i in 0..10 {
        let key = &keys[i % keys.len()];
        let (status, body) = server
            .call(Method::GET, "/v1/findings", Auth::ApiKey(key), None)
            .await;
        match status {
            200 => ok += 1,
            429 => {
                assert_eq!(code(&body), "rate_limit_exceeded");
                refused += 1;
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!((ok, refused), (5, 5), "ten a minute for the whole tenant");
    // Test keys have windows of their own: a sandbox key never uses up
    // production's limits (nor production the sandbox's).
    let (status, body) = server
        .call(Method::GET, "/v1/findings", Auth::ApiKey(&sandbox), None)
        .await;
    assert_eq!(status, 200, "{body}");
}

/// Item 13: the monthly quota was read before a request and written after
/// it, so concurrent requests could pass it together. Now each request
/// reserves its place atomically: exactly what is left gets through.
async fn concurrent_requests_never_spend_more_than_the_quota(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (tenant_id, key) = server.create_tenant("Acme", "pro").await;
    let store = Store::open(&backend.config()).await.unwrap();
    // Pro: 50,000 a month. Leave five.
    sqlx::query(
        "INSERT INTO quota_usage (tenant_id, month, requests) VALUES ($1, $2, 49995)
         ON CONFLICT (tenant_id, month) DO UPDATE SET requests = 49995",
    )
    .bind(&tenant_id)
    .bind(chrono::Utc::now().format("%Y-%m").to_string())
    .execute(store.read_pool())
    .await
    .unwrap();
    store.close().await;
    let requests = (0..20).map(|_| {
        let http = server.http.clone();
        let url = server.url("/v1/usage");
        let key = key.clone();
        tokio::spawn(async move {
            let response = http.get(url).header("x-api-key", key).send().await.unwrap();
            response.status().as_u16()
        })
    });
    let mut statuses = Vec::new();
    for request in requests {
        statuses.push(request.await.unwrap());
    }
    let passed = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 402).count();
    assert_eq!((passed, refused), (5, 15), "{statuses:?}");
}

/// Item 14: one key held 100 SSE streams, each polling. Now a key holds
/// at most 10 streams (SSE and GraphQL subscriptions together).
async fn a_key_holds_at_most_ten_streams(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (_, owner) = server.create_tenant("Acme", "unlimited").await;
    let mut streams = Vec::new();
    for _ in 0..9 {
        streams.push(
            palisade_tests::SseClient::connect(&server, &owner, "/v1/audit/stream", None).await,
        );
    }
    let mut socket = Subscriber::connect(&server, json!({"apiKey": owner})).await;
    assert_eq!(socket.next(WAIT).await.unwrap()["type"], "connection_ack");
    socket
        .send(json!({"id": "1", "type": "subscribe",
                     "payload": {"query": "subscription { auditEvents { seq } }"}}))
        .await;
    // The tenth: wait until the server counts it.
    let deadline = tokio::time::Instant::now() + WAIT;
    while !server
        .metrics()
        .await
        .contains("palisade_audit_subscribers 10")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}",
            server.metrics().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let response = server
        .http
        .get(server.url("/v1/audit/stream"))
        .header("x-api-key", &owner)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    let body: Value = response.json().await.unwrap();
    assert_eq!(code(&body), "too_many_streams", "{body}");
    socket
        .send(json!({"id": "2", "type": "subscribe",
                     "payload": {"query": "subscription { auditEvents { seq } }"}}))
        .await;
    let refused = socket.next(WAIT).await.unwrap();
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], "too_many_streams",
        "{refused}"
    );
    // Another key of the tenant has its own ten.
    let (_, other) = server
        .issue_api_key(&owner, "reader", &["audit:read"])
        .await;
    let _ok = palisade_tests::SseClient::connect(&server, &other, "/v1/audit/stream", None).await;
}

/// Item 14: a websocket that never sent `connection_init` stayed open.
/// Now it is closed after 10 s with 4408.
async fn a_socket_that_never_initialises_is_closed(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let mut socket = Subscriber::open(&server).await;
    let closed = socket.closed(Duration::from_secs(30)).await;
    assert_eq!(
        closed,
        Some((4408, "Connection initialisation timeout".to_string()))
    );
}

/// Item 16: `/metrics` needed no credential; an undecodable path and a
/// batched GraphQL request were refused in plain text.
async fn metrics_need_the_admin_token_and_rejections_speak_the_envelope(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (_, owner) = server.create_tenant("Acme", "unlimited").await;
    let (status, body) = server.call(Method::GET, "/metrics", Auth::None, None).await;
    assert_eq!(
        (status, code(&body)),
        (401, "missing_admin_token"),
        "{body}"
    );
    let (status, body) = server
        .call(Method::GET, "/metrics", Auth::ApiKey(&owner), None)
        .await;
    assert_eq!(status, 401, "an API key is not the admin token: {body}");
    assert!(server
        .metrics()
        .await
        .contains("palisade_projection_lag_events"));

    let (status, body) = server
        .call(
            Method::GET,
            "/v1/findings/%FF%FE",
            Auth::ApiKey(&owner),
            None,
        )
        .await;
    assert_eq!((status, code(&body)), (400, "bad_request"), "{body}");
    let batch = json!([{"query": "{ tenant { name } }"}, {"query": "{ tenant { id } }"}]);
    let (status, body) = server
        .call(Method::POST, "/graphql", Auth::ApiKey(&owner), Some(batch))
        .await;
    assert_eq!(
        (status, code(&body)),
        (400, "batch_not_supported"),
        "{body}"
    );
    let (status, body) = server
        .call(Method::GET, "/graphql/ws", Auth::ApiKey(&owner), None)
        .await;
    assert_eq!(status, 400, "not an upgrade: {body}");
    assert_eq!(body["success"], false);
}

/// Item 17: a slow-statement warning logged its whole SQL (one line was
/// 790 KB). Now every log line is bounded.
async fn slow_statement_warnings_are_truncated(backend: &Backend) {
    let options = ServerOptions {
        env: vec![("PALISADE_SLOW_STATEMENT_MS".into(), "0".into())],
        admin_token: Some(ADMIN_TOKEN.into()),
    };
    let server = Server::start_with(backend, options).await;
    let (_, owner) = server.create_tenant("Acme", "unlimited").await;
    let items: Vec<Value> = (0..300)
        .map(|i| finding(&format!("Bulk {i}"), "low", "bulk.example.com"))
        .collect();
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/findings/bulk",
            Auth::ApiKey(&owner),
            Some(json!({"findings": items})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let log = server.log();
    assert!(
        log.contains("slow statement"),
        "every statement is slow at 0 ms"
    );
    assert!(log.contains("[truncated]"), "the bulk insert's SQL is long");
    let longest = log.lines().map(str::len).max().unwrap_or(0);
    assert!(longest <= 4_200, "a log line of {longest} bytes");
}
