//! Black-box tests: the real `palisade serve` binary over HTTP.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use palisade_infra::Store;
use palisade_tests::{on_both_stores, Backend, Server, ServerOptions};
use serde_json::{json, Value};

async fn eventually<T>(limit: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn health_reports_the_store(backend: Backend) {
    let server = Server::start(&backend).await;
    let response = server
        .http
        .get(server.url("/v1/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers().get("x-request-id").is_some());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["success"], true);
    assert_eq!(body["data"]["status"], "healthy");
    assert_eq!(body["data"]["store"], backend.kind());
    assert_eq!(body["data"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["meta"]["request_id"]
        .as_str()
        .unwrap()
        .starts_with("req_"));
    drop(server);
    backend.cleanup().await;
}

#[tokio::test]
async fn health_reports_sqlite_by_default() {
    health_reports_the_store(Backend::sqlite()).await;
}

#[tokio::test]
async fn health_reports_postgres_when_configured() {
    if let Some(backend) = Backend::postgres().await {
        health_reports_the_store(backend).await;
    }
}

#[tokio::test]
async fn a_generated_admin_token_is_private_and_never_logged() {
    let backend = Backend::sqlite();
    let server = Server::start(&backend).await;
    let file = backend.dir.join("admin-token");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let log = server.log();
    assert!(
        log.contains(&file.display().to_string()),
        "the log names the file:\n{log}"
    );
    assert!(
        !log.contains(&server.admin_token),
        "the token itself is never logged"
    );
    drop(server);
    backend.cleanup().await;
}

async fn a_created_tenant_reaches_the_tenants_view(backend: Backend) {
    let server = Server::start(&backend).await;
    let (status, body) = server
        .admin_post(
            "/v1/admin/tenants",
            json!({ "name": "Acme", "plan": "pro" }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let tenant = &body["data"]["tenant"];
    assert_eq!(
        (tenant["name"].as_str(), tenant["plan"].as_str()),
        (Some("Acme"), Some("pro"))
    );
    let id = tenant["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("ten_"));

    let listed = eventually(Duration::from_secs(10), async || {
        let (_, body) = server.admin_get("/v1/admin/tenants").await;
        let found = body["data"]
            .as_array()?
            .iter()
            .any(|t| t["id"] == id.as_str());
        found.then_some(body)
    })
    .await
    .expect("the projection shows the tenant");
    assert_eq!(listed["meta"]["total"], 1);

    let (status, body) = server.admin_get("/v1/admin/projections").await;
    assert_eq!(status, 200);
    let tenants = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "tenants")
        .unwrap()
        .clone();
    for field in [
        "version",
        "checkpoint",
        "head",
        "lag_events",
        "lag_ms",
        "running_here",
    ] {
        assert!(
            tenants.get(field).is_some(),
            "{field} missing from {tenants}"
        );
    }
    assert_eq!(tenants["checkpoint"], tenants["head"]);
    assert_eq!(tenants["lag_events"], 0);
    assert_eq!(tenants["running_here"], true);
    drop(server);
    backend.cleanup().await;
}

#[tokio::test]
async fn a_created_tenant_reaches_the_tenants_view_on_sqlite() {
    a_created_tenant_reaches_the_tenants_view(Backend::sqlite()).await;
}

#[tokio::test]
async fn a_created_tenant_reaches_the_tenants_view_on_postgres() {
    if let Some(backend) = Backend::postgres().await {
        a_created_tenant_reaches_the_tenants_view(backend).await;
    }
}

#[tokio::test]
async fn admin_routes_refuse_a_missing_or_wrong_token() {
    let backend = Backend::sqlite();
    let server = Server::start(&backend).await;
    let missing = server
        .http
        .get(server.url("/v1/admin/tenants"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 401);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "missing_admin_token");
    let wrong = server
        .http
        .get(server.url("/v1/admin/tenants"))
        .bearer_auth("pal_admin_not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_admin_token");
    drop(server);
    backend.cleanup().await;
}

on_both_stores!(
    bad_requests_get_clear_errors_in_the_envelope,
    the_request_id_reaches_the_events_it_causes,
    the_cli_creates_a_tenant_like_the_admin_api,
);

async fn the_cli_creates_a_tenant_like_the_admin_api(backend: &Backend) {
    let stdout = backend
        .run_cli(&["tenant", "create", "--name", "Acme", "--plan", "pro"])
        .await;
    let printed: Value = serde_json::from_slice(&stdout).unwrap();
    assert_eq!(printed["tenant"]["name"], "Acme");
    assert_eq!(printed["tenant"]["plan"], "pro");
    for field in ["id", "key", "prefix", "principal", "scopes", "environment"] {
        assert!(
            printed["api_key"].get(field).is_some(),
            "api_key.{field} missing: {printed}"
        );
    }
    // A server on the same store accepts the printed key once its view has caught up.
    let server = Server::start(backend).await;
    let key = printed["api_key"]["key"].as_str().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let response = server
            .http
            .get(server.url("/v1/api-keys"))
            .header("x-api-key", key)
            .send()
            .await
            .unwrap();
        if response.status().as_u16() == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the CLI's key never worked"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn bad_requests_get_clear_errors_in_the_envelope(backend: &Backend) {
    let server = Server::start_with(
        backend,
        ServerOptions {
            admin_token: Some("tok".into()),
            ..Default::default()
        },
    )
    .await;
    let post = |body: String, content_type: &'static str| {
        server
            .http
            .post(server.url("/v1/admin/tenants"))
            .bearer_auth("tok")
            .header("content-type", content_type)
            .header("x-request-id", "my-request-1")
            .body(body)
            .send()
    };
    let cases = [
        (
            post("{\"name\":".into(), "application/json").await.unwrap(),
            400,
            "bad_request",
        ),
        (
            post("{\"name\":\"A\"}".into(), "text/plain").await.unwrap(),
            415,
            "unsupported_media_type",
        ),
        (
            post(
                "{\"name\":\"A\",\"plan\":\"gold\"}".into(),
                "application/json",
            )
            .await
            .unwrap(),
            422,
            "validation_error",
        ),
        (
            post("{\"nam\":\"A\"}".into(), "application/json")
                .await
                .unwrap(),
            422,
            "validation_error",
        ),
    ];
    for (response, status, code) in cases {
        assert_eq!(response.status().as_u16(), status);
        assert_eq!(response.headers()["x-request-id"], "my-request-1");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            (body["success"].as_bool(), body["error"]["code"].as_str()),
            (Some(false), Some(code)),
            "{body}"
        );
        assert_eq!(body["meta"]["request_id"], "my-request-1");
    }
    // Over the 1 MiB limit: refused from the declared length, before the body is read.
    let response = raw_request(
        &server,
        "POST /v1/admin/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\n\
         Content-Type: application/json\r\nContent-Length: 2000000\r\n\r\n{",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains("\"payload_too_large\""), "{response}");
    let (_, body) = server
        .admin_post("/v1/admin/tenants", json!({ "name": " ", "plan": "gold" }))
        .await;
    let fields: Vec<_> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "plan"]);
    let unknown = server
        .http
        .get(server.url("/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
    let wrong_method = server
        .http
        .delete(server.url("/v1/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status().as_u16(), 405);
    let body: Value = wrong_method.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
    let (status, body) = server.admin_get("/v1/admin/tenants?per_page=101").await;
    assert_eq!(
        (status, body["error"]["details"][0]["field"].as_str()),
        (422, Some("per_page"))
    );
}

async fn the_request_id_reaches_the_events_it_causes(backend: &Backend) {
    let server = Server::start_with(
        backend,
        ServerOptions {
            admin_token: Some("tok".into()),
            ..Default::default()
        },
    )
    .await;
    let response = server
        .http
        .post(server.url("/v1/admin/tenants"))
        .bearer_auth("tok")
        .header("x-request-id", "trace-me-42")
        .json(&json!({ "name": "Acme" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
    let body: Value = response.json().await.unwrap();
    let owner = body["data"]["api_key"]["key"].as_str().unwrap().to_string();
    let owner_id = body["data"]["api_key"]["id"].as_str().unwrap().to_string();
    let issued = server
        .http
        .post(server.url("/v1/api-keys"))
        .header("x-api-key", &owner)
        .header("x-request-id", "trace-me-43")
        .json(&json!({ "name": "ci", "principal": "ci-bot", "scopes": ["findings:read"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(issued.status().as_u16(), 201);

    let store = Store::open(&backend.config()).await.unwrap();
    let events = palisade_tests::read_feed_exactly(&store, 3).await;
    store.close().await;
    let metadata: Vec<_> = events.iter().map(|e| &e.metadata).collect();
    assert_eq!(
        metadata.len(),
        3,
        "TenantCreated, ApiKeyIssued (owner), ApiKeyIssued"
    );
    for m in &metadata[..2] {
        assert_eq!(
            (m["request_id"].as_str(), m["actor_type"].as_str()),
            ("trace-me-42", "admin")
        );
    }
    let by_key = metadata[2];
    assert_eq!(by_key["request_id"], "trace-me-43");
    assert_eq!(
        (by_key["actor"].as_str(), by_key["actor_type"].as_str()),
        ("owner", "api_key")
    );
    assert_eq!(by_key["api_key_id"], owner_id);
    assert!(
        server.log().contains("trace-me-42"),
        "the request id is in the logs"
    );
}

/// Sends raw bytes and reads until the server closes or 2 s pass.
async fn raw_request(server: &Server, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = server.base_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut response)).await;
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn sigterm_drains_requests_and_stops_cleanly() {
    let backend = Backend::sqlite();
    let mut server = Server::start(&backend).await;
    server.signal("TERM");
    assert_eq!(server.wait(Duration::from_secs(20)).await, Some(0));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(server.log().contains("stopped"), "{}", server.log());
    backend.cleanup().await;
}

/// Which of the servers report `running_here` for each projection.
async fn runners(servers: &[&Server]) -> Vec<(String, Vec<usize>)> {
    let mut by_name: Vec<(String, Vec<usize>)> = Vec::new();
    for (index, server) in servers.iter().enumerate() {
        let (status, body) = server.admin_get("/v1/admin/projections").await;
        assert_eq!(status, 200, "{body}");
        for projection in body["data"].as_array().unwrap() {
            let name = projection["name"].as_str().unwrap().to_string();
            let entry = match by_name.iter().position(|(n, _)| *n == name) {
                Some(i) => &mut by_name[i],
                None => {
                    by_name.push((name, Vec::new()));
                    by_name.last_mut().unwrap()
                }
            };
            if projection["running_here"] == true {
                entry.1.push(index);
            }
        }
    }
    by_name
}

#[tokio::test]
async fn exactly_one_replica_runs_each_projection_and_another_takes_over() {
    let Some(backend) = Backend::postgres().await else {
        return;
    };
    let options = || ServerOptions {
        admin_token: Some("tok".into()),
        ..Default::default()
    };
    let first = Server::start_with(&backend, options()).await;
    let second = Server::start_with(&backend, options()).await;

    let settled = eventually(Duration::from_secs(10), async || {
        let runners = runners(&[&first, &second]).await;
        runners
            .iter()
            .all(|(_, on)| on.len() == 1)
            .then_some(runners)
    })
    .await
    .expect("every projection runs on exactly one replica");
    for _ in 0..5 {
        let again = runners(&[&first, &second]).await;
        assert!(
            again.iter().all(|(_, on)| on.len() == 1),
            "never on both: {again:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Kill -9 whichever runs the tenants projection; the other takes over.
    let (_, holders) = settled.iter().find(|(name, _)| name == "tenants").unwrap();
    let (victim, survivor) = if holders[0] == 0 {
        (first, second)
    } else {
        (second, first)
    };
    victim.signal("KILL");
    let killed_at = Instant::now();
    drop(victim);
    let took_over = eventually(Duration::from_secs(10), async || {
        let runners = runners(&[&survivor]).await;
        runners.iter().all(|(_, on)| on == &[0]).then_some(())
    })
    .await;
    assert!(
        took_over.is_some(),
        "the surviving replica did not take over within 10 s"
    );
    eprintln!("takeover after kill -9: {:?}", killed_at.elapsed());

    // And it keeps projecting: a new tenant reaches the view.
    let (status, body) = survivor
        .admin_post("/v1/admin/tenants", json!({ "name": "After" }))
        .await;
    assert_eq!(status, 201, "{body}");
    let seen = eventually(Duration::from_secs(10), async || {
        let (_, body) = survivor.admin_get("/v1/admin/tenants").await;
        (body["meta"]["total"] == 1).then_some(())
    })
    .await;
    assert!(seen.is_some());
    drop(survivor);
    backend.cleanup().await;
}
