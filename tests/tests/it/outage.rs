//! A database outage, on PostgreSQL (issue 12): while the database does not
//! answer, requests get 503 `unavailable` with `Retry-After` within a
//! second, `/v1/health` too, and everything recovers by itself when it
//! answers again.
//!
//! The outage is made by a TCP proxy of the test's own between the server
//! and PostgreSQL, which the test cuts (dropping every connection and
//! refusing new ones) and restores. Stopping the PostgreSQL server itself
//! would disturb every other test that runs in parallel against it.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use palisade_tests::{Auth, Backend, Server, ServerOptions, ADMIN_TOKEN};
use reqwest::Method;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A loopback proxy to `upstream` that can be cut and restored.
struct Proxy {
    address: String,
    up: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let up = Arc::new(AtomicBool::new(true));
        let (cut, cuts) = watch::channel(0u64);
        let accepting = up.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !accepting.load(Ordering::Acquire) {
                    // Refused: the connection closes at once.
                    continue;
                }
                let upstream = upstream.clone();
                let mut cuts = cuts.clone();
                // Only cuts from now on end this connection.
                cuts.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cuts.changed() => {}
                    }
                });
            }
        });
        Self { address, up, cut }
    }

    /// Every connection dropped, new ones refused.
    fn cut(&self) {
        self.up.store(false, Ordering::Release);
        self.cut.send_modify(|n| *n += 1);
    }

    fn restore(&self) {
        self.up.store(true, Ordering::Release);
    }
}

#[tokio::test]
async fn postgres_an_outage_is_503_within_a_second_and_recovery_is_automatic() {
    let Some(backend) = Backend::postgres().await else {
        return;
    };
    run(&backend).await;
    backend.cleanup().await;
}

/// `postgres://user@host:port/db` with `host:port` replaced by `address`.
fn through(url: &str, address: &str) -> String {
    let (scheme_user, rest) = url.split_once('@').unwrap();
    let (_, path) = rest.split_once('/').unwrap();
    format!("{scheme_user}@{address}/{path}")
}

fn upstream_of(url: &str) -> String {
    let (_, rest) = url.split_once('@').unwrap();
    rest.split_once('/').unwrap().0.to_string()
}

async fn timed(server: &Server, path: &str, auth: Auth<'_>) -> (u16, Duration, serde_json::Value) {
    let started = Instant::now();
    let (status, body) = server.call(Method::GET, path, auth, None).await;
    (status, started.elapsed(), body)
}

async fn run(backend: &Backend) {
    let url = backend.database_url().unwrap().to_string();
    let proxy = Proxy::start(upstream_of(&url)).await;
    let options = ServerOptions {
        env: vec![(
            "PALISADE_DATABASE_URL".into(),
            through(&url, &proxy.address),
        )],
        admin_token: Some(ADMIN_TOKEN.into()),
    };
    let server = Server::start_with(backend, options).await;
    let (_, key) = server.create_tenant("Acme", "unlimited").await;
    let (status, body) = server
        .call(Method::GET, "/v1/findings", Auth::ApiKey(&key), None)
        .await;
    assert_eq!(status, 200, "{body}");

    proxy.cut();
    // Within a few seconds the circuit is open; from then on every answer
    // is a 503 within a second.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, took, body) = timed(&server, "/v1/findings", Auth::ApiKey(&key)).await;
        if status == 503 && took < Duration::from_secs(1) {
            assert_eq!(body["error"]["code"], "unavailable", "{body}");
            break;
        }
        assert!(
            status == 503 || status == 500,
            "during the outage: {status} {body}"
        );
        assert!(
            Instant::now() < deadline,
            "no quick 503 yet: {status} after {took:?}"
        );
    }
    let response = server
        .http
        .get(server.url("/v1/overview"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    for _ in 0..5 {
        let (status, took, body) = timed(&server, "/v1/findings", Auth::ApiKey(&key)).await;
        assert_eq!(status, 503, "{body}");
        assert!(took < Duration::from_secs(1), "{took:?}");
        let (status, took, body) = timed(&server, "/v1/health", Auth::None).await;
        assert_eq!(status, 503, "{body}");
        assert!(took < Duration::from_secs(1), "health took {took:?}");
    }

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _, _) = timed(&server, "/v1/health", Auth::None).await;
        let (listed, _, body) = timed(&server, "/v1/findings", Auth::ApiKey(&key)).await;
        if status == 200 && listed == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery: {status} {listed} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Writes work again too.
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/findings",
            Auth::ApiKey(&key),
            Some(
                serde_json::json!({"product": "custom", "category": "vulnerability",
                                    "title": "After the outage", "severity": "low",
                                    "asset_identifier": "app.example.com"}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}
