//! Webhooks end to end, on both stores: a receiver on loopback verifies
//! every delivery with the Standard Webhooks algorithm (written in the
//! test support, independently of Palisade's signer); rotation signs with
//! both secrets; the signing secret never rests anywhere but in its sealed
//! row; retries follow the Svix schedule under a controllable clock; 410
//! disables; `Retry-After` is honoured; unsafe URLs are refused.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use palisade_infra::crypto::seal::Sealer;
use palisade_infra::crypto::RootKey;
use palisade_infra::webhooks::secrets::SigningSecrets;
use palisade_infra::webhooks::{SenderConfig, Senders};
use palisade_infra::{ManualClock, Store};
use palisade_tests::receiver::{unix_now, verify, Receiver, Reply, Unverified};
use palisade_tests::{on_both_stores, read_feed_all, Auth, Backend, Server, ServerOptions};
use reqwest::Method;
use serde_json::{json, Value};

on_both_stores!(
    deliveries_are_signed_verified_rotated_and_never_leak_the_secret,
    retries_follow_the_schedule_and_410_disables,
    unsafe_urls_are_refused,
    a_slow_endpoint_does_not_delay_a_fast_one,
    a_name_that_resolves_to_loopback_is_refused_at_send_time,
    https_deliveries_verify_the_receivers_certificate,
    ten_thousand_findings_arrive_through_two_crashes
);

const PATIENCE: Duration = Duration::from_secs(30);

fn allow_private(send: bool) -> ServerOptions {
    ServerOptions {
        env: vec![
            ("PALISADE_WEBHOOKS_ALLOW_PRIVATE".into(), "true".into()),
            ("PALISADE_WEBHOOKS_SEND".into(), send.to_string()),
        ],
        ..Default::default()
    }
}

async fn key(server: &Server) -> String {
    let (_, owner) = server.create_tenant("Acme", "unlimited").await;
    let (_, key) = server
        .issue_api_key(
            &owner,
            "hooks",
            &[
                "webhooks:manage",
                "findings:write",
                "findings:read",
                "audit:read",
                "keys:admin",
                "secrets:read",
                "access:approve",
                "tenant:admin",
            ],
        )
        .await;
    key
}

async fn call(
    server: &Server,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    server.call(method, path, Auth::ApiKey(key), body).await
}

async fn ingest(server: &Server, key: &str, title: &str, severity: &str) -> Value {
    let (status, body) = call(
        server,
        key,
        Method::POST,
        "/v1/findings",
        Some(json!({
            "product": "custom",
            "category": "vulnerability",
            "title": title,
            "severity": severity,
            "asset_identifier": "app.example.com",
        })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["data"].clone()
}

/// The receiver's requests whose body has `type`.
fn of_type<'a>(
    received: &'a [palisade_tests::receiver::Received],
    event_type: &str,
) -> Vec<&'a palisade_tests::receiver::Received> {
    received
        .iter()
        .filter(|r| r.json()["type"] == event_type)
        .collect()
}

async fn deliveries_to_webhook_are_signed(
    server: &Server,
    key: &str,
    receiver: &Receiver,
) -> (String, String) {
    let (status, body) = call(
        server,
        key,
        Method::POST,
        "/v1/webhooks",
        Some(json!({
            "url": receiver.url,
            "description": "SIEM",
            "event_types": ["finding.created", "finding.status_changed"],
            "filter": {"severity": ["high", "critical"]},
        })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let webhook = &body["data"];
    let secret = webhook["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{body}");
    assert_eq!(
        base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            secret.trim_start_matches("whsec_")
        )
        .unwrap()
        .len(),
        32
    );
    assert_eq!(webhook["status"], "enabled", "{body}");
    assert_eq!(webhook["filter"]["severity"], json!(["high", "critical"]));
    (webhook["id"].as_str().unwrap().to_string(), secret)
}

async fn deliveries_are_signed_verified_rotated_and_never_leak_the_secret(backend: &Backend) {
    let server = Server::start_with(backend, allow_private(true)).await;
    let key = key(&server).await;
    let receiver = Receiver::start("/hooks/palisade").await;
    let (id, secret) = deliveries_to_webhook_are_signed(&server, &key, &receiver).await;

    // Three high findings and one low: the filter lets the high ones through.
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(ingest(&server, &key, &format!("SQL injection {i}"), "high").await["id"].clone());
    }
    ingest(&server, &key, "Verbose banner", "low").await;
    let received = receiver.wait_for(3, PATIENCE).await;
    let created = of_type(&received, "finding.created");
    assert_eq!(created.len(), 3, "{received:?}");
    for request in &created {
        verify(
            &secret,
            &request.headers,
            request.body.as_bytes(),
            unix_now(),
        )
        .unwrap_or_else(|e| panic!("{e:?}: {request:?}"));
        assert_eq!(request.header("content-type"), "application/json");
        assert!(request
            .header("user-agent")
            .starts_with("Palisade-Webhooks/"));
        assert!(request.header("webhook-id").starts_with("msg_"));
        let body = request.json();
        assert_eq!(body["data"]["severity"], "high", "{body}");
        assert!(body["data"]["audit_seq"].as_i64().unwrap() > 0, "{body}");
        assert!(body["timestamp"].is_string(), "{body}");
    }
    let delivered_ids: Vec<Value> = created
        .iter()
        .map(|r| r.json()["data"]["id"].clone())
        .collect();
    for id in &ids {
        assert!(
            delivered_ids.contains(id),
            "{id} missing from {delivered_ids:?}"
        );
    }

    // The receiver's check rejects a tampered body and an old timestamp.
    let first = created[0];
    let tampered = first.body.replace("SQL injection", "SQL injektion");
    assert_eq!(
        verify(&secret, &first.headers, tampered.as_bytes(), unix_now()),
        Err(Unverified::NoMatchingSignature)
    );
    assert_eq!(
        verify(
            &secret,
            &first.headers,
            first.body.as_bytes(),
            unix_now() + 301
        ),
        Err(Unverified::OutsideTolerance)
    );

    // A test message goes through the same path.
    let (status, body) = call(
        &server,
        &key,
        Method::POST,
        &format!("/v1/webhooks/{id}/test"),
        None,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let message_id = body["data"]["message_id"].as_str().unwrap().to_string();
    let received = receiver.wait_for(4, PATIENCE).await;
    let tests = of_type(&received, "webhook.test");
    assert_eq!(tests.len(), 1, "{received:?}");
    assert_eq!(tests[0].header("webhook-id"), message_id);
    verify(
        &secret,
        &tests[0].headers,
        tests[0].body.as_bytes(),
        unix_now(),
    )
    .unwrap();

    // Rotation: for 24 hours two signatures, each verifying with its secret.
    let (status, body) = call(
        &server,
        &key,
        Method::POST,
        &format!("/v1/webhooks/{id}/rotate-secret"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let new_secret = body["data"]["secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);
    assert!(
        body["data"]["previous_secret_valid_until"].is_string(),
        "{body}"
    );
    ingest(&server, &key, "SQL injection 4", "critical").await;
    let received = receiver.wait_for(5, PATIENCE).await;
    let last = received.last().unwrap();
    let signatures: Vec<&str> = last.header("webhook-signature").split(' ').collect();
    assert_eq!(signatures.len(), 2, "{last:?}");
    for (secret, signature) in [(&new_secret, signatures[0]), (&secret, signatures[1])] {
        let mut alone = last.headers.clone();
        alone.insert("webhook-signature".into(), signature.to_string());
        verify(secret, &alone, last.body.as_bytes(), unix_now())
            .unwrap_or_else(|e| panic!("{e:?} for one of the two signatures"));
    }

    // The official library verifies them unchanged, and refuses them
    // tampered or stale; during the rotation with either secret.
    let mut checked: Vec<(String, &palisade_tests::receiver::Received)> =
        created.iter().map(|r| (secret.clone(), *r)).collect();
    checked.push((secret.clone(), tests[0]));
    checked.push((new_secret.clone(), last));
    checked.push((secret.clone(), last));
    official_library_verifies(&checked).await;

    // History and figures, once the last attempt is recorded.
    delivered(&server, &key, &id, 5).await;
    let (status, body) = call(
        &server,
        &key,
        Method::GET,
        &format!("/v1/webhooks/{id}/deliveries?status=success"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let deliveries = body["data"].as_array().unwrap();
    assert_eq!(deliveries.len(), 5, "{body}");
    for delivery in deliveries {
        assert_eq!(delivery["attempts"][0]["status_code"], 200, "{delivery}");
        assert_eq!(
            delivery["attempts"][0]["response_excerpt"], "received",
            "{delivery}"
        );
    }
    let (status, body) = call(
        &server,
        &key,
        Method::GET,
        &format!("/v1/webhooks/{id}/deliveries?status=sometimes"),
        None,
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = call(
        &server,
        &key,
        Method::GET,
        &format!("/v1/webhooks/{id}/stats"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["delivered"], 5, "{body}");
    assert_eq!(body["data"]["pending"], 0, "{body}");
    assert!(body["data"]["last_success_at"].is_string(), "{body}");

    // GraphQL reads the same endpoint and history (never a secret).
    let query = format!(
        r#"{{ webhooks {{ edges {{ node {{ id status eventTypes }} }} }}
              webhookStats(id: "{id}") {{ delivered pending }}
              webhookDeliveries(id: "{id}", filter: {{ status: "success", eventType: "webhook.test" }}) {{
                edges {{ node {{ messageId attempts {{ statusCode }} }} }} }} }}"#
    );
    let (status, body) = call(
        &server,
        &key,
        Method::POST,
        "/graphql",
        Some(json!({ "query": query })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(
        body["data"]["webhooks"]["edges"][0]["node"]["id"],
        id.as_str(),
        "{body}"
    );
    assert_eq!(body["data"]["webhookStats"]["delivered"], 5, "{body}");
    let tested = &body["data"]["webhookDeliveries"]["edges"];
    assert_eq!(tested.as_array().unwrap().len(), 1, "{body}");
    assert_eq!(
        tested[0]["node"]["messageId"],
        message_id.as_str(),
        "{body}"
    );
    assert_eq!(
        tested[0]["node"]["attempts"][0]["statusCode"], 200,
        "{body}"
    );

    // An idempotent create keeps the answer with the secret redacted.
    let create = json!({"url": receiver.url, "event_types": ["audit.event"]});
    let (status, _, first) = server
        .post_idempotent("/v1/webhooks", &key, "hook-1", &create)
        .await;
    assert_eq!(status, 201, "{first}");
    let third_secret = first["data"]["secret"].as_str().unwrap().to_string();
    let (status, replayed, again) = server
        .post_idempotent("/v1/webhooks", &key, "hook-1", &create)
        .await;
    assert_eq!((status, replayed), (201, true), "{again}");
    assert_eq!(again["data"]["secret"], "[redacted]", "{again}");

    // No secret anywhere but its sealed row: not in the answers that
    // read endpoints, not in the audit trail or the events, not in the
    // idempotency records or the log, not in clear in the database.
    let secrets = [secret.clone(), new_secret.clone(), third_secret.clone()];
    let bare: Vec<String> = secrets
        .iter()
        .map(|s| s.trim_start_matches("whsec_").to_string())
        .collect();
    let leaks = |text: &str| bare.iter().any(|s| text.contains(s.as_str()));
    for path in [
        "/v1/webhooks".to_string(),
        format!("/v1/webhooks/{id}"),
        format!("/v1/webhooks/{id}/deliveries"),
        "/v1/audit/events?limit=100".to_string(),
    ] {
        let (status, body) = call(&server, &key, Method::GET, &path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(!leaks(&body.to_string()), "{path} shows a secret");
    }
    assert!(!leaks(&server.log()), "the log shows a secret");
    let store = Store::open(&backend.config()).await.unwrap();
    for event in read_feed_all(&store).await {
        assert!(
            !leaks(&event.payload.to_string()),
            "an event holds a secret: {event:?}"
        );
    }
    let kept: Vec<String> = sqlx::query_scalar(
        "SELECT response_body FROM idempotency_keys WHERE response_body IS NOT NULL",
    )
    .fetch_all(store.read_pool())
    .await
    .unwrap();
    assert!(!kept.is_empty());
    assert!(
        kept.iter().all(|body| !leaks(body)),
        "an idempotency record holds a secret"
    );
    let sealed: Vec<String> = sqlx::query_scalar("SELECT sealed FROM webhook_secrets")
        .fetch_all(store.read_pool())
        .await
        .unwrap();
    assert_eq!(
        sealed.len(),
        3,
        "two of the first endpoint, one of the second"
    );
    assert!(sealed.iter().all(|s| !leaks(s)));
    if let Some(dir) = backend
        .env()
        .into_iter()
        .find(|(k, _)| k == "PALISADE_DATA_DIR")
        .map(|(_, v)| v)
    {
        let raw_secrets: Vec<Vec<u8>> = bare
            .iter()
            .map(|s| base64::Engine::decode(&base64::engine::general_purpose::STANDARD, s).unwrap())
            .collect();
        for file in ["palisade.db", "palisade.db-wal"] {
            let Ok(bytes) = std::fs::read(std::path::Path::new(&dir).join(file)) else {
                continue;
            };
            for secret in bare
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .chain(raw_secrets.clone())
            {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_slice()),
                    "{file} holds a secret in clear"
                );
            }
        }
    }

    // Deleting the endpoint deletes its secrets.
    let (status, body) = call(
        &server,
        &key,
        Method::DELETE,
        &format!("/v1/webhooks/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = call(
        &server,
        &key,
        Method::GET,
        &format!("/v1/webhooks/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let left: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM webhook_secrets WHERE webhook_id = $1")
            .bind(&id)
            .fetch_one(store.read_pool())
            .await
            .unwrap();
    assert_eq!(left, 0);
}

/// Runs `tests/standardwebhooks/verify.py` (the official `standardwebhooks`
/// package) over the messages; skipped, loudly, where the package is not
/// installed (`.ci/run` installs it and sets the variable).
async fn official_library_verifies(messages: &[(String, &palisade_tests::receiver::Received)]) {
    let Ok(python) = std::env::var("PALISADE_TEST_STANDARDWEBHOOKS_PYTHON") else {
        eprintln!(
            "SKIPPED: verification with the official standardwebhooks package (set PALISADE_TEST_STANDARDWEBHOOKS_PYTHON to a python that has it; .ci/run does)"
        );
        return;
    };
    let input: Vec<Value> = messages
        .iter()
        .map(|(secret, r)| json!({"secret": secret, "headers": r.headers, "body": r.body}))
        .collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/standardwebhooks/verify.py");
    let mut child = tokio::process::Command::new(&python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stdin, Value::Array(input).to_string().as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the official library refused a delivery:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count(),
        messages.len(),
        "{stdout}"
    );
}

/// Waits until the endpoint's figures count `count` deliveries delivered.
async fn delivered(server: &Server, key: &str, id: &str, count: i64) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (status, body) = call(
            server,
            key,
            Method::GET,
            &format!("/v1/webhooks/{id}/stats"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        if body["data"]["delivered"] == count {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not {count} delivered: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Senders in this process over the server's store, at `clock`.
async fn senders(backend: &Backend, clock: Arc<ManualClock>) -> (Store, Senders) {
    let store = Store::open(&backend.config()).await.unwrap();
    let (root, _) = RootKey::load(None, &backend.config().data_dir).unwrap();
    let senders = Senders::new(
        store.clone(),
        SigningSecrets::new(Sealer::new(&root)),
        clock,
        SenderConfig::new(true),
        Arc::default(),
    )
    .unwrap();
    (store, senders)
}

/// The endpoint's one delivery, once the dispatcher has written it.
async fn only_delivery(server: &Server, key: &str, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (status, body) = call(
            server,
            key,
            Method::GET,
            &format!("/v1/webhooks/{id}/deliveries"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        if let Some(delivery) = body["data"].as_array().and_then(|d| d.first()) {
            return delivery.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivery was written"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn create(server: &Server, key: &str, url: &str) -> String {
    let (status, body) = call(
        server,
        key,
        Method::POST,
        "/v1/webhooks",
        Some(json!({"url": url})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["data"]["id"].as_str().unwrap().to_string()
}

async fn retries_follow_the_schedule_and_410_disables(backend: &Backend) {
    // The server dispatches; the senders run here, on a clock the test moves.
    let server = Server::start_with(backend, allow_private(false)).await;
    let key = key(&server).await;
    let receiver = Receiver::start("/flaky").await;
    receiver.script([Reply::status(500), Reply::status(502), Reply::status(500)]);
    let id = create(&server, &key, &receiver.url).await;
    let (status, _) = call(
        &server,
        &key,
        Method::POST,
        &format!("/v1/webhooks/{id}/test"),
        None,
    )
    .await;
    assert_eq!(status, 202);
    only_delivery(&server, &key, &id).await;

    let start = Utc::now() + chrono::Duration::seconds(1);
    let clock = Arc::new(ManualClock::new(start));
    let (_store, senders) = senders(backend, clock.clone()).await;
    let at = |seconds: i64| start + chrono::Duration::seconds(seconds);
    // Attempt 1 now, 2 after 5 s, 3 after 5 min more, 4 after 30 min more.
    let plan = [
        (0, 1),
        (4, 0),
        (5, 1),
        (5 + 299, 0),
        (5 + 300, 1),
        (305 + 1799, 0),
        (305 + 1800, 1),
    ];
    for (seconds, expected) in plan {
        clock.set(at(seconds));
        assert_eq!(senders.pass().await.unwrap(), expected, "at +{seconds} s");
    }
    assert_eq!(receiver.received().len(), 4);
    let delivery = only_delivery(&server, &key, &id).await;
    assert_eq!(delivery["status"], "success", "{delivery}");
    let codes: Vec<Value> = delivery["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].clone())
        .collect();
    assert_eq!(
        codes,
        vec![json!(500), json!(502), json!(500), json!(200)],
        "{delivery}"
    );
    let times: Vec<chrono::DateTime<Utc>> = delivery["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["at"].as_str().unwrap().parse().unwrap())
        .collect();
    let gaps: Vec<i64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).num_seconds())
        .collect();
    assert_eq!(gaps, vec![5, 300, 1800], "{delivery}");
    for request in receiver.received() {
        assert_eq!(
            request.header("webhook-id"),
            delivery["message_id"].as_str().unwrap(),
            "the same id on every attempt"
        );
    }

    // Retry-After: 2 on a 429 is honoured instead of the schedule's 5 s.
    receiver.script([Reply {
        status: 429,
        retry_after: Some(2),
        delay: Duration::ZERO,
    }]);
    let (status, body) = call(
        &server,
        &key,
        Method::POST,
        &format!(
            "/v1/webhooks/{id}/deliveries/{}/retry",
            delivery["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let base = 305 + 1800 + 3600;
    clock.set(at(base));
    assert_eq!(senders.pass().await.unwrap(), 1);
    clock.set(at(base + 1));
    assert_eq!(
        senders.pass().await.unwrap(),
        0,
        "Retry-After: 2 is not over"
    );
    clock.set(at(base + 2));
    assert_eq!(senders.pass().await.unwrap(), 1);
    assert_eq!(receiver.received().len(), 6);

    // 410 Gone disables the endpoint at once.
    receiver.script([Reply::status(410)]);
    let (status, _) = call(
        &server,
        &key,
        Method::POST,
        &format!("/v1/webhooks/{id}/test"),
        None,
    )
    .await;
    assert_eq!(status, 202);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        clock.set(at(base + 10));
        if senders.pass().await.unwrap() == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the test message was not dispatched"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = call(
        &server,
        &key,
        Method::GET,
        &format!("/v1/webhooks/{id}?consistency=strong"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "disabled", "{body}");
    assert_eq!(body["data"]["disabled_reason"], "gone", "{body}");
    let (status, body) = call(
        &server,
        &key,
        Method::POST,
        &format!("/v1/webhooks/{id}/test"),
        None,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = call(
        &server,
        &key,
        Method::POST,
        &format!("/v1/webhooks/{id}/enable"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "enabled", "{body}");

    // The history is kept 30 days after a delivery's last attempt, then
    // the scheduler deletes it (its own clock, moved past that).
    assert_eq!(history(&server, &key, &id).await, 2);
    // The retried delivery's last attempt was at +2 s, the 410's at +10 s.
    let scheduler_clock = Arc::new(ManualClock::new(
        at(base + 2) + chrono::Duration::days(30) - chrono::Duration::seconds(1),
    ));
    let store = Store::open(&backend.config()).await.unwrap();
    let (root, _) = RootKey::load(None, &backend.config().data_dir).unwrap();
    let scheduler = palisade_infra::Scheduler::new(
        store,
        Sealer::new(&root),
        scheduler_clock.clone(),
        Duration::from_secs(1),
    );
    scheduler.tick().await.unwrap();
    assert_eq!(history(&server, &key, &id).await, 2, "kept for 30 days");
    scheduler_clock.set(at(base + 11) + chrono::Duration::days(30));
    scheduler.tick().await.unwrap();
    assert_eq!(history(&server, &key, &id).await, 0, "gone after 30 days");
}

async fn unsafe_urls_are_refused(backend: &Backend) {
    let server = Server::start(backend).await;
    let key = key(&server).await;
    for url in [
        "http://127.0.0.1/",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://localhost:8080/",
        "http://[::ffff:127.0.0.1]/",
        "https://[2002:a9fe:a9fe::1]/",
        "https://[64:ff9b:1::a00:1]/",
    ] {
        let (status, body) = call(
            &server,
            &key,
            Method::POST,
            "/v1/webhooks",
            Some(json!({"url": url})),
        )
        .await;
        assert_eq!(status, 422, "{url}: {body}");
        assert_eq!(body["error"]["code"], "unsafe_webhook_url", "{url}: {body}");
    }
    for (body, field) in [
        (json!({"url": "ftp://example.com/"}), "url"),
        (json!({"url": "https://user:pw@example.com/"}), "url"),
        (
            json!({"url": "http://93.184.216.34/", "event_types": ["finding.made"]}),
            "event_types[0]",
        ),
        (
            json!({"url": "http://93.184.216.34/", "rate_limit_per_second": 0}),
            "rate_limit_per_second",
        ),
        (
            json!({"url": "http://93.184.216.34/", "filter": {"severity": ["urgent"]}}),
            "filter.severity[0]",
        ),
    ] {
        let (status, answer) = call(
            &server,
            &key,
            Method::POST,
            "/v1/webhooks",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert_eq!(
            answer["error"]["code"], "validation_error",
            "{body}: {answer}"
        );
        assert!(answer.to_string().contains(field), "{field} in {answer}");
    }
    // Public address literals are accepted, http:// and https:// (nothing
    // is sent in this test).
    for url in ["http://93.184.216.34/hooks", "https://93.184.216.34/hooks"] {
        create(&server, &key, url).await;
    }
    let (status, body) = call(&server, &key, Method::GET, "/v1/webhooks/event-types", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 24, "{body}");
    assert!(body["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["sample"]["type"] == t["name"]));
    // A key with webhooks:manage alone may not subscribe to what it
    // cannot read.
    let (_, hooks_only) = server
        .issue_api_key(&key, "hooks-only", &["webhooks:manage"])
        .await;
    for types in [
        json!([]),
        json!(["audit.event"]),
        json!(["finding.created"]),
    ] {
        let (status, body) = call(
            &server,
            &hooks_only,
            Method::POST,
            "/v1/webhooks",
            Some(json!({"url": "http://93.184.216.34/x", "event_types": types})),
        )
        .await;
        assert_eq!(status, 403, "{types}: {body}");
    }
    // An endpoint that once took every type, narrowed to findings: a key
    // that reads findings only may change its description, not its URL
    // (the new URL would receive what is pending and what a replay sends
    // again from when it took every type).
    let wide = create(&server, &key, "http://93.184.216.34/all").await;
    let path = format!("/v1/webhooks/{wide}");
    let (status, body) = call(
        &server,
        &key,
        Method::PATCH,
        &path,
        Some(json!({"event_types": ["finding.created"]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, findings_only) = server
        .issue_api_key(
            &key,
            "findings-hooks",
            &["webhooks:manage", "findings:read"],
        )
        .await;
    let (status, body) = call(
        &server,
        &findings_only,
        Method::PATCH,
        &path,
        Some(json!({"description": "SIEM"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        &server,
        &findings_only,
        Method::PATCH,
        &path,
        Some(json!({"url": "http://93.184.216.35/mine"})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    // A key without webhooks:manage may not see them.
    let (_, owner) = server.create_tenant("Other", "unlimited").await;
    let (_, reader) = server
        .issue_api_key(&owner, "reader", &["findings:read"])
        .await;
    let (status, _) = call(&server, &reader, Method::GET, "/v1/webhooks", None).await;
    assert_eq!(status, 403);
}

async fn subscribe(server: &Server, key: &str, url: &str, types: &[&str]) -> String {
    let (status, body) = call(
        server,
        key,
        Method::POST,
        "/v1/webhooks",
        Some(json!({"url": url, "event_types": types})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["data"]["id"].as_str().unwrap().to_string()
}

async fn a_slow_endpoint_does_not_delay_a_fast_one(backend: &Backend) {
    let server = Server::start_with(backend, allow_private(true)).await;
    let key = key(&server).await;
    let slow = Receiver::start("/slow").await;
    slow.answer_by_default(Reply {
        status: 200,
        retry_after: None,
        delay: Duration::from_secs(5),
    });
    let fast = Receiver::start("/fast").await;
    subscribe(&server, &key, &slow.url, &["finding.created"]).await;
    subscribe(&server, &key, &fast.url, &["finding.created"]).await;
    let mut answered = std::collections::HashMap::new();
    for i in 0..20 {
        let finding = ingest(&server, &key, &format!("Finding {i}"), "high").await;
        answered.insert(
            finding["id"].as_str().unwrap().to_string(),
            std::time::Instant::now(),
        );
    }
    let received = fast.wait_for(20, PATIENCE).await;
    assert_eq!(received.len(), 20);
    let mut worst = Duration::ZERO;
    for request in &received {
        let id = request.json()["data"]["id"].as_str().unwrap().to_string();
        let lag = request.at.saturating_duration_since(answered[&id]);
        worst = worst.max(lag);
    }
    // The slow endpoint has at most 4 requests in flight, 5 s each.
    assert!(slow.received().len() <= 8, "{}", slow.received().len());
    assert!(
        worst < Duration::from_secs(1),
        "a fast delivery came {worst:?} after its finding"
    );
}

/// A name of this machine that resolves to a loopback address, if any
/// (its host name usually does, through /etc/hosts).
async fn loopback_name() -> Option<String> {
    let output = tokio::process::Command::new("hostname")
        .output()
        .await
        .ok()?;
    let name = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if name.is_empty() || name == "localhost" {
        return None;
    }
    let addresses: Vec<_> = tokio::net::lookup_host((name.as_str(), 80))
        .await
        .ok()?
        .collect();
    (!addresses.is_empty() && addresses.iter().all(|a| a.ip().is_loopback())).then_some(name)
}

async fn a_name_that_resolves_to_loopback_is_refused_at_send_time(backend: &Backend) {
    let Some(name) = loopback_name().await else {
        eprintln!("SKIPPED: this machine's host name does not resolve to loopback only");
        return;
    };
    let receiver = Receiver::start("/rebound").await;
    let port = receiver
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let url = format!("http://{name}:{port}/rebound");
    // Registered while the override allowed it (as if the name had
    // resolved to a public address then) …
    let mut server = Server::start_with(backend, allow_private(true)).await;
    let key = key(&server).await;
    let id = create(&server, &key, &url).await;
    server.kill9().await;
    // … then, without the override, the name is refused at registration
    // and at every attempt.
    let server = Server::start(backend).await;
    let (status, body) = call(
        &server,
        &key,
        Method::POST,
        "/v1/webhooks",
        Some(json!({"url": url})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "unsafe_webhook_url", "{body}");
    let (status, body) = call(
        &server,
        &key,
        Method::POST,
        &format!("/v1/webhooks/{id}/test"),
        None,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let attempt = loop {
        let delivery = only_delivery(&server, &key, &id).await;
        if let Some(attempt) = delivery["attempts"].as_array().and_then(|a| a.first()) {
            break attempt.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no attempt: {delivery}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let error = attempt["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("refused: "), "{attempt}");
    assert!(error.contains("loopback"), "{attempt}");
    assert!(attempt["status_code"].is_null(), "{attempt}");
    assert!(
        receiver.received().is_empty(),
        "the refused address was reached"
    );
}

async fn ten_thousand_findings_arrive_through_two_crashes(backend: &Backend) {
    const FINDINGS: usize = 10_000;
    let mut server = Server::start_with(backend, allow_private(true)).await;
    let key = key(&server).await;
    let receiver = Receiver::start("/many").await;
    let hook = subscribe(&server, &key, &receiver.url, &["finding.created"]).await;
    for batch in 0..FINDINGS / 1000 {
        let findings: Vec<Value> = (0..1000)
            .map(|i| {
                json!({
                    "product": "custom",
                    "category": "vulnerability",
                    "title": format!("Finding {batch}-{i}"),
                    "severity": "medium",
                    "asset_identifier": format!("host-{}.example.com", i % 50),
                })
            })
            .collect();
        let (status, body) = call(
            &server,
            &key,
            Method::POST,
            "/v1/findings/bulk",
            Some(json!({"findings": findings})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    // Crash twice while the deliveries go out.
    for seen in [FINDINGS / 3, 2 * FINDINGS / 3] {
        let got = receiver
            .wait_for_count(seen, Duration::from_secs(300))
            .await;
        assert!(
            got >= seen,
            "only {got} deliveries arrived before the crash"
        );
        server.restart(backend).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    let mut wanted = FINDINGS;
    let (ids, findings, total) = loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        receiver.wait_for_count(wanted, left).await;
        let received = receiver.received();
        let ids: std::collections::HashSet<String> = received
            .iter()
            .map(|r| r.header("webhook-id").to_string())
            .collect();
        let mut findings = std::collections::HashMap::<String, String>::new();
        for request in &received {
            let finding = request.json()["data"]["id"].as_str().unwrap().to_string();
            let id = request.header("webhook-id").to_string();
            let first = findings
                .entry(finding.clone())
                .or_insert_with(|| id.clone());
            assert_eq!(*first, id, "{finding} came under two webhook-ids");
        }
        if ids.len() >= FINDINGS || tokio::time::Instant::now() >= deadline {
            break (ids, findings, received.len());
        }
        // Duplicates took some of the requests: wait for as many more.
        wanted = received.len() + (FINDINGS - ids.len());
    };
    eprintln!(
        "webhooks at least once ({}): {} distinct messages for {} findings, {} requests, {} duplicates after two kill -9",
        backend.kind(),
        ids.len(),
        findings.len(),
        total,
        total - ids.len()
    );
    let (_, stats) = call(
        &server,
        &key,
        Method::GET,
        &format!("/v1/webhooks/{hook}/stats"),
        None,
    )
    .await;
    assert_eq!(
        ids.len(),
        FINDINGS,
        "messages missing; the endpoint's figures: {stats}"
    );
    assert_eq!(findings.len(), FINDINGS, "findings missing");
}

/// How many finished deliveries (success or failed) an endpoint's
/// history lists.
async fn history(server: &Server, key: &str, id: &str) -> usize {
    let path = format!("/v1/webhooks/{id}/deliveries");
    let (status, body) = call(server, key, Method::GET, &path, None).await;
    assert_eq!(status, 200, "{body}");
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["status"] != "pending")
        .count()
}

/// The next line a child process printed.
async fn next_line<R: tokio::io::AsyncBufRead + Unpin>(lines: &mut tokio::io::Lines<R>) -> String {
    tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .expect("the https receiver said nothing in time")
        .unwrap()
        .expect("the https receiver stopped")
}

/// Runs `openssl` with `args` in `dir`; false when it cannot be run.
fn openssl(dir: &std::path::Path, args: &[&str]) -> bool {
    match std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
    {
        Ok(output) if output.status.success() => true,
        Ok(output) => panic!(
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(_) => false,
    }
}

/// A CA and a certificate it issued for `localhost` (and no address),
/// made by the openssl command: (the CA's PEM, the chain, the key).
fn test_pki(dir: &std::path::Path) -> Option<(String, String, String)> {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=Palisade test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=localhost",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
        ],
    ];
    for step in steps {
        if !openssl(dir, step) {
            return None;
        }
    }
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    Some((path("ca.pem"), path("leaf.pem"), path("leaf.key")))
}

/// An `https://` endpoint whose certificate the server trusts through
/// `PALISADE_WEBHOOKS_CA_FILE` gets its messages, received by Python's
/// TLS server (OpenSSL) and verified by the official library; the same
/// receiver under a name its certificate does not carry is refused.
async fn https_deliveries_verify_the_receivers_certificate(backend: &Backend) {
    let dir = std::env::temp_dir().join(format!("palisade-tls-{}", uuid::Uuid::new_v4()));
    let Some((ca, chain, leaf_key)) = test_pki(&dir) else {
        eprintln!(
            "SKIPPED: https delivery (the openssl command is not installed; .ci/run installs it)"
        );
        return;
    };
    let python = std::env::var("PALISADE_TEST_STANDARDWEBHOOKS_PYTHON")
        .unwrap_or_else(|_| "python3".to_string());
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/standardwebhooks/https_receiver.py"
    );
    let mut child = tokio::process::Command::new(&python)
        .args([script, &chain, &leaf_key])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    let mut lines =
        tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(child.stdout.take().unwrap()));
    let first: String = next_line(&mut lines).await;
    let port: u16 = first
        .strip_prefix("listening ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line: {first}"));

    let mut options = allow_private(true);
    options
        .env
        .push(("PALISADE_WEBHOOKS_CA_FILE".into(), ca.clone()));
    let server = Server::start_with(backend, options).await;
    let key = key(&server).await;
    let (status, body) = call(
        &server,
        &key,
        Method::POST,
        "/v1/webhooks",
        Some(json!({"url": format!("https://localhost:{port}/tls"), "event_types": ["finding.created"]})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let secret = body["data"]["secret"].as_str().unwrap().to_string();
    // The same receiver by address: its certificate names localhost only.
    let mismatched = subscribe(
        &server,
        &key,
        &format!("https://127.0.0.1:{port}/wrong-name"),
        &["finding.created"],
    )
    .await;

    ingest(&server, &key, "Reached over TLS", "high").await;
    let line: String = next_line(&mut lines).await;
    let record: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(record["path"], "/tls", "{record}");
    assert!(
        matches!(record["tls"].as_str(), Some("TLSv1.3" | "TLSv1.2")),
        "{record}"
    );
    let headers: std::collections::HashMap<String, String> =
        serde_json::from_value(record["headers"].clone()).unwrap();
    let body = record["body"].as_str().unwrap().to_string();
    verify(&secret, &headers, body.as_bytes(), unix_now()).expect("signed");
    let received = palisade_tests::receiver::Received {
        headers,
        body,
        at: std::time::Instant::now(),
    };
    assert_eq!(received.json()["type"], "finding.created");
    official_library_verifies(&[(secret, &received)]).await;

    // The attempt under the wrong name failed on the certificate.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let delivery = only_delivery(&server, &key, &mismatched).await;
        if let Some(attempt) = delivery["attempts"].as_array().and_then(|a| a.first()) {
            let error = attempt["error"].as_str().unwrap_or_default().to_lowercase();
            assert!(attempt["status_code"].is_null(), "{delivery}");
            assert!(error.contains("certificate"), "{delivery}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no attempt: {delivery}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
}
