//! `scripts/bench`: Palisade's benchmark. In one run, per store (SQLite and
//! PostgreSQL): the store's raw limit for one command's statements,
//! single-command ingest at several concurrencies with projection lag,
//! bulk ingest, queries at scale, a projection rebuild and the server's
//! memory. Writes `target/bench/report.json` and prints a markdown table.
//! Targets are reported beside the figures, never asserted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use palisade_tests::{Backend, Server};
use serde_json::{json, Value};
use sqlx::Executor;

struct Options {
    quick: bool,
    findings: u64,
    /// Active grants the access check is measured over.
    grants: u64,
    stores: Vec<String>,
    seconds: u64,
    concurrency: Vec<usize>,
    /// Results of the generated SARIF the scanner import is measured with.
    scanner_results: usize,
    /// Only the scanner imports (`--only scanner`).
    scanner_only: bool,
    /// Only the webhook deliveries (`--only webhooks`).
    webhooks_only: bool,
}

impl Options {
    fn parse() -> Self {
        let mut options = Options {
            quick: false,
            findings: 100_000,
            grants: 100_000,
            stores: vec!["sqlite".into(), "postgres".into()],
            seconds: 15,
            concurrency: vec![1, 8, 32],
            scanner_results: 100_000,
            scanner_only: false,
            webhooks_only: false,
        };
        let mut args = std::env::args().skip(1);
        let mut findings_given = false;
        let mut grants_given = false;
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--findings" => {
                    options.findings = args
                        .next()
                        .and_then(|n| n.parse().ok())
                        .expect("--findings N");
                    findings_given = true;
                }
                "--grants" => {
                    options.grants = args
                        .next()
                        .and_then(|n| n.parse().ok())
                        .expect("--grants N");
                    grants_given = true;
                }
                "--stores" => {
                    options.stores = args
                        .next()
                        .expect("--stores sqlite,postgres")
                        .split(',')
                        .map(str::to_string)
                        .collect()
                }
                "--seconds" => {
                    options.seconds = args
                        .next()
                        .and_then(|n| n.parse().ok())
                        .expect("--seconds N")
                }
                "--scanner-results" => {
                    options.scanner_results = args
                        .next()
                        .and_then(|n| n.parse().ok())
                        .expect("--scanner-results N")
                }
                "--only" => match args.next().as_deref() {
                    Some("scanner") => options.scanner_only = true,
                    Some("webhooks") => options.webhooks_only = true,
                    other => panic!("--only scanner|webhooks (got {other:?})"),
                },
                "-h" | "--help" => {
                    println!("scripts/bench [--quick] [--findings N] [--grants N] [--stores sqlite,postgres] [--seconds N] [--scanner-results N] [--only scanner|webhooks]");
                    std::process::exit(0);
                }
                other => panic!("unknown argument {other}; see --help"),
            }
        }
        if options.quick {
            options.seconds = options.seconds.min(5);
            if !findings_given {
                options.findings = 10_000;
            }
            if !grants_given {
                options.grants = 10_000;
            }
        }
        options
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap()
}

/// p50 / p99 / max in milliseconds of a histogram of microseconds.
fn percentiles(h: &Histogram<u64>) -> Value {
    let ms = |us: u64| (us as f64 / 1000.0 * 100.0).round() / 100.0;
    json!({
        "count": h.len(),
        "p50_ms": ms(h.value_at_quantile(0.50)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "max_ms": ms(h.max()),
    })
}

fn finding(n: u64, run: &str) -> Value {
    let severities = ["critical", "high", "medium", "low", "info"];
    let product = ["zap", "nuclei", "sarif", "burp"][(n % 4) as usize];
    json!({
        "product": product,
        "category": "vulnerability",
        "title": format!("Finding {run}-{n}"),
        "description": format!("Bench finding number {n} of run {run}, with some searchable text: token{}", n % 997),
        "severity": severities[(n % 5) as usize],
        "asset_identifier": format!("host-{}.bench.example", n % 1000),
        "likelihood": ((n % 10) as f64) / 10.0,
        "impact": ((n % 7) as f64) / 7.0,
        "tags": [format!("team-{}", n % 5)],
    })
}

/// RSS and peak RSS of a process, in MB.
fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| (kb / 1024.0 * 10.0).round() / 10.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Runs `request` in a closed loop on `concurrency` workers for `seconds`
/// (each worker sends its next request when the last one is answered):
/// requests per second, errors, and the latency of the successful ones.
/// `request(worker, n)` says whether its request succeeded.
async fn closed_loop<F, Fut>(concurrency: usize, seconds: u64, request: F) -> Value
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(histogram()));
    let request = Arc::new(request);
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let (stop, errors, latencies, request) = (
            stop.clone(),
            errors.clone(),
            latencies.clone(),
            request.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut local = histogram();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let started = Instant::now();
                if request(worker, n).await {
                    local.record(started.elapsed().as_micros() as u64).unwrap();
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies.lock().unwrap().add(&local).unwrap();
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    for worker in workers {
        worker.await.unwrap();
    }
    let latencies = latencies.lock().unwrap();
    json!({
        "concurrency": concurrency,
        "per_second": (latencies.len() as f64 / elapsed).round(),
        "errors": errors.load(Ordering::Relaxed),
        "latency": percentiles(&latencies),
    })
}

/// The store's own limit: the statements one command issues (load the
/// aggregate's events; append one event in a transaction), straight over
/// sqlx, at `concurrency`, for `seconds`. Commands per second.
async fn raw_limit(backend: &Backend, concurrency: usize, seconds: u64) -> Value {
    let payload = json!({"FindingIngested": finding(0, "raw")});
    let metadata = json!({"tenant_id": "ten_raw", "environment": "live"});
    let url = backend.database_url().map(str::to_string);
    let sqlite_path = backend.dir.join("palisade.db");
    let pg = match &url {
        Some(url) => Some(
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(concurrency as u32)
                .connect(url)
                .await
                .unwrap(),
        ),
        None => None,
    };
    let lite = match &url {
        Some(_) => None,
        None => Some(
            sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(concurrency as u32)
                .connect_with(
                    sqlx::sqlite::SqliteConnectOptions::new()
                        .filename(&sqlite_path)
                        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                        .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                        .busy_timeout(Duration::from_secs(30)),
                )
                .await
                .unwrap(),
        ),
    };
    let (pool_pg, pool_lite) = (pg.clone(), lite.clone());
    let report = closed_loop(concurrency, seconds, move |worker, n| {
        let (pg, lite) = (pool_pg.clone(), pool_lite.clone());
        let (payload, metadata) = (payload.clone(), metadata.clone());
        async move {
            let id = format!("raw-{worker}-{n}-{}", uuid::Uuid::new_v4().simple());
            const LOAD: &str = "SELECT event_type, event_version, payload, metadata, sequence FROM events
                                WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence";
            const APPEND: &str = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
                                  VALUES ($1, $2, $3, $4, $5, $6, $7)";
            let result: Result<(), sqlx::Error> = async {
                if let Some(pool) = &pg {
                    sqlx::query(LOAD).bind("Finding").bind(&id).fetch_all(pool).await?;
                    let mut tx = pool.begin().await?;
                    sqlx::query(APPEND)
                        .bind("Finding").bind(&id).bind(1i64).bind("FindingIngested").bind("1")
                        .bind(&payload).bind(&metadata)
                        .execute(&mut *tx).await?;
                    tx.commit().await?;
                } else if let Some(pool) = &lite {
                    sqlx::query(LOAD).bind("Finding").bind(&id).fetch_all(pool).await?;
                    let mut tx = pool.begin().await?;
                    sqlx::query(APPEND)
                        .bind("Finding").bind(&id).bind(1i64).bind("FindingIngested").bind("1")
                        .bind(payload.to_string()).bind(metadata.to_string())
                        .execute(&mut *tx).await?;
                    tx.commit().await?;
                }
                Ok(())
            }
            .await;
            result.is_ok()
        }
    })
    .await;
    // The raw rows are not valid events for the projections: remove them
    // before the server reads the feed (it is stopped meanwhile).
    if let Some(pool) = &pg {
        pool.execute("DELETE FROM events WHERE aggregate_id LIKE 'raw-%'")
            .await
            .unwrap();
    }
    if let Some(pool) = &lite {
        pool.execute("DELETE FROM events WHERE aggregate_id LIKE 'raw-%'")
            .await
            .unwrap();
        pool.close().await;
    }
    report
}

/// The peer (`palisade-bench-peer`: cqrs-es + postgres-es behind axum, on
/// its own fresh database) opening new accounts at `concurrency`, by the
/// same load generator as Palisade's ingest.
async fn peer_load(concurrency: usize, seconds: u64) -> Value {
    let database = Backend::postgres().await.expect("PostgreSQL for the peer");
    let binary = std::env::var("PALISADE_BENCH_PEER").unwrap_or_else(|_| {
        let exe = std::env::current_exe().unwrap();
        exe.with_file_name("palisade-bench-peer")
            .to_string_lossy()
            .to_string()
    });
    let mut peer = tokio::process::Command::new(binary)
        .arg(database.database_url().unwrap())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("palisade-bench-peer (scripts/bench builds it)");
    let stdout = peer.stdout.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let address = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("the peer's address");
        if let Some(address) = line.strip_prefix("listening on ") {
            break address.to_string();
        }
    };
    let http = reqwest::Client::new();
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let report = closed_loop(concurrency, seconds, move |worker, n| {
        let request = http
            .post(format!(
                "http://{address}/accounts/acc-{run}-{worker}-{n}/open"
            ))
            .json(&json!({"owner": format!("owner {n}")}))
            .send();
        async move { request.await.is_ok_and(|r| r.status().as_u16() == 201) }
    })
    .await;
    let _ = peer.kill().await;
    database.cleanup().await;
    report
}

/// `GET path` at `concurrency` for `seconds`, with the key when given.
async fn get_load(
    server: &Server,
    path: &str,
    key: Option<&str>,
    concurrency: usize,
    seconds: u64,
) -> Value {
    let (http, url, key) = (
        server.http.clone(),
        server.url(path),
        key.map(str::to_string),
    );
    let mut report = closed_loop(concurrency, seconds, move |_, _| {
        let mut request = http.get(&url);
        if let Some(key) = &key {
            request = request.header("x-api-key", key);
        }
        let sent = request.send();
        async move {
            match sent.await {
                Ok(r) if r.status().as_u16() == 200 => r.bytes().await.is_ok(),
                _ => false,
            }
        }
    })
    .await;
    report["path"] = json!(path);
    report
}

/// `POST path` with `body` at `concurrency` for `seconds`, with the key.
async fn post_load(
    server: &Server,
    path: &str,
    key: &str,
    body: Value,
    concurrency: usize,
    seconds: u64,
) -> Value {
    let (http, url, key) = (server.http.clone(), server.url(path), key.to_string());
    let body = Arc::new(serde_json::to_vec(&body).unwrap());
    let mut report = closed_loop(concurrency, seconds, move |_, _| {
        let sent = http
            .post(&url)
            .header("x-api-key", &key)
            .header("content-type", "application/json")
            .body(body.as_ref().clone())
            .send();
        async move {
            match sent.await {
                Ok(r) if r.status().as_u16() == 200 => r.bytes().await.is_ok(),
                _ => false,
            }
        }
    })
    .await;
    report["path"] = json!(path);
    report
}

/// The KMS at `concurrency`: encrypt and decrypt of 1 KiB with an
/// AES-256-GCM key, and a 1 KiB sign with each signing algorithm; and the
/// in-process AES-256-GCM rate of one thread, for scale.
async fn kms_load(server: &Server, key: &str, concurrency: usize, seconds: u64) -> Value {
    use base64::Engine;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let create = |name: &str, algorithm: &str| {
        let body = json!({ "name": name, "algorithm": algorithm });
        let request = server
            .http
            .post(server.url("/v1/keys"))
            .header("x-api-key", key)
            .json(&body)
            .send();
        async move {
            let response = request.await.unwrap();
            assert_eq!(response.status().as_u16(), 201, "creating a bench key");
        }
    };
    let plaintext = b64(&[7u8; 1024]);
    create("bench-aes", "aes-256-gcm").await;
    let response: Value = server
        .http
        .post(server.url("/v1/keys/bench-aes/encrypt"))
        .header("x-api-key", key)
        .json(&json!({ "plaintext": plaintext }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ciphertext = response["data"]["ciphertext"].clone();
    eprintln!("   KMS encrypt / decrypt 1 KiB, c={concurrency}");
    let encrypt = post_load(
        server,
        "/v1/keys/bench-aes/encrypt",
        key,
        json!({ "plaintext": plaintext }),
        concurrency,
        seconds,
    )
    .await;
    let decrypt = post_load(
        server,
        "/v1/keys/bench-aes/decrypt",
        key,
        json!({ "ciphertext": ciphertext }),
        concurrency,
        seconds,
    )
    .await;
    let mut sign = serde_json::Map::new();
    for algorithm in ["ed25519", "ecdsa-p256", "ml-dsa-65"] {
        let name = format!("bench-{algorithm}");
        create(&name, algorithm).await;
        eprintln!("   KMS sign 1 KiB with {algorithm}, c={concurrency}");
        let report = post_load(
            server,
            &format!("/v1/keys/{name}/sign"),
            key,
            json!({ "message": plaintext }),
            concurrency,
            seconds,
        )
        .await;
        sign.insert(algorithm.to_string(), report);
    }
    // One thread of this process sealing 1 KiB with the same code.
    use palisade_infra::crypto::kms;
    let generated = kms::generate(palisade_domain::key::Algorithm::Aes256Gcm).unwrap();
    let aad = kms::aad("key_bench", 1, &Default::default());
    let started = Instant::now();
    let mut sealed = 0u64;
    while started.elapsed() < Duration::from_secs(1) {
        kms::encrypt(
            palisade_domain::key::Algorithm::Aes256Gcm,
            &generated.material,
            &[7u8; 1024],
            &aad,
        )
        .unwrap();
        sealed += 1;
    }
    json!({
        "encrypt": encrypt,
        "decrypt": decrypt,
        "sign": sign,
        "in_process_aes_gcm_per_second": (sealed as f64 / started.elapsed().as_secs_f64()).round(),
    })
}

/// The secret store at `concurrency`: writes of a 64-byte value, each
/// worker to its own path (no check-and-set, so no write is refused), and
/// reads of one secret's current value (each read appends its `SecretRead`
/// event before it answers).
async fn secrets_load(server: &Server, key: &str, concurrency: usize, seconds: u64) -> Value {
    let value = "v".repeat(64);
    eprintln!("   secret write / read, c={concurrency}");
    let (http, key_text) = (server.http.clone(), key.to_string());
    let base = server.url("/v1/secrets/data/bench");
    let body = Arc::new(serde_json::to_vec(&json!({ "value": value })).unwrap());
    let mut write = closed_loop(concurrency, seconds, move |worker, _| {
        let sent = http
            .put(format!("{base}/w{worker}"))
            .header("x-api-key", &key_text)
            .header("content-type", "application/json")
            .body(body.as_ref().clone())
            .send();
        async move {
            match sent.await {
                Ok(r) if r.status().as_u16() == 200 => r.bytes().await.is_ok(),
                _ => false,
            }
        }
    })
    .await;
    write["path"] = json!("/v1/secrets/data/bench/w{worker}");
    let read = get_load(
        server,
        "/v1/secrets/data/bench/w0",
        Some(key),
        concurrency,
        seconds,
    )
    .await;
    json!({ "write": write, "read": read })
}

/// `POST /v1/access/check` at `concurrency` over `grants` active grants:
/// the grants are appended straight to the event store (each request's
/// `AccessRequested` and its approval, as the aggregate decides them, a
/// thousand requests per transaction), the access view applies them, and
/// then each check asks about one of them (a different one each time).
async fn access_load(
    backend: &Backend,
    server: &Server,
    key: &str,
    tenant_id: &str,
    grants: u64,
    concurrency: &[usize],
    seconds: u64,
) -> Value {
    use palisade_domain::grant::{AccessRequest, NewAccessRequest, PolicyTerms, RequestCommand};
    use palisade_domain::{AccessRequestId, Environment, EventMetadata, PolicyId, TenantId};
    use palisade_infra::commands::NewAggregate;
    eprintln!("   access: {grants} grants");
    let store = palisade_infra::Store::open(&backend.config())
        .await
        .unwrap();
    let commands = palisade_infra::Commands::new(store.clone());
    let tenant = TenantId::parse(tenant_id).unwrap();
    let terms = PolicyTerms {
        policy_id: PolicyId::from_uuid(uuid::Uuid::now_v7()),
        max_duration_minutes: 20_160,
        approvals_required: 1,
        approver_principals: Vec::new(),
        approver_scopes: Vec::new(),
        request_ttl_minutes: 60,
    };
    let metadata = EventMetadata {
        tenant_id: tenant_id.to_string(),
        environment: Environment::Live,
        actor: "bench".into(),
        actor_type: palisade_domain::ActorType::System,
        api_key_id: None,
        request_id: None,
        correlation_id: None,
        causation_id: None,
        occurred_at: chrono::Utc::now(),
    };
    let seeded = Instant::now();
    for chunk in (0..grants).collect::<Vec<_>>().chunks(1000) {
        let mut batch = Vec::with_capacity(chunk.len());
        for &n in chunk {
            let id = AccessRequestId::from_uuid(uuid::Uuid::now_v7());
            let request = NewAccessRequest {
                request_id: id,
                tenant_id: tenant,
                environment: Environment::Live,
                requester: format!("user-{}", n % 1000),
                resource_type: "database".into(),
                resource_id: format!("db-{n}"),
                permissions: vec!["read".into()],
                justification: "bench".into(),
                duration_minutes: 20_160,
                ticket_reference: None,
                policy: Some(terms.clone()),
                auto_approval: Some("bench".into()),
            };
            let events = commands
                .decide_new::<AccessRequest>(
                    RequestCommand::Request {
                        request: Box::new(request),
                        at: chrono::Utc::now(),
                    },
                    (),
                )
                .await
                .unwrap();
            batch.push(NewAggregate {
                aggregate_id: id.to_string(),
                events,
            });
        }
        commands
            .create_many::<AccessRequest>(&batch, &metadata)
            .await
            .unwrap();
    }
    store.wake_feed_readers();
    let appended_ms = seeded.elapsed().as_millis();
    // The server's runner applies them; a strong read waits for it.
    loop {
        let r = server
            .http
            .get(server.url("/v1/access/stats?consistency=strong"))
            .header("x-api-key", key)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or_default();
        match status {
            200 => {
                assert_eq!(body["data"]["active_grants"], json!(grants), "{body}");
                break;
            }
            503 | 504 if seeded.elapsed() < Duration::from_secs(1800) => continue,
            _ => panic!("the access view did not catch up: {status} {body}"),
        }
    }
    let applied_ms = seeded.elapsed().as_millis();
    store.close().await;
    let mut checks = Vec::new();
    for &c in concurrency {
        eprintln!("   access check, c={c}");
        let (http, url, key) = (
            server.http.clone(),
            server.url("/v1/access/check"),
            key.to_string(),
        );
        let mut check = closed_loop(c, seconds, move |worker, n| {
            let grant = (n * 7919 + worker as u64 * 104_729) % grants;
            let body = json!({
                "principal": format!("user-{}", grant % 1000),
                "resource_type": "database",
                "resource_id": format!("db-{grant}"),
                "permission": "read",
            });
            let sent = http.post(&url).header("x-api-key", &key).json(&body).send();
            async move {
                match sent.await {
                    Ok(r) if r.status().as_u16() == 200 => r
                        .json::<Value>()
                        .await
                        .is_ok_and(|body| body["data"]["has_access"] == json!(true)),
                    _ => false,
                }
            }
        })
        .await;
        check["path"] = json!("/v1/access/check");
        checks.push(check);
    }
    json!({
        "grants": grants,
        "appended_ms": appended_ms,
        "applied_ms": applied_ms,
        "check": checks,
    })
}

/// Single-command ingest at `concurrency` for `seconds`. Meanwhile one
/// prober measures projection lag: it takes the finding answered last,
/// polls a plain GET every 5 ms until the findings view shows it, records
/// the time since the answer, and takes the next one. (One probe at a time:
/// the probes are a few percent of the requests, not a load of their own.)
async fn ingest_load(server: &Server, key: &str, concurrency: usize, seconds: u64) -> Value {
    let stop = Arc::new(AtomicBool::new(false));
    let lags = Arc::new(Mutex::new(histogram()));
    let latest: Arc<Mutex<Option<(String, Instant)>>> = Arc::default();
    let max_lag_events = Arc::new(AtomicU64::new(0));
    let probes = Arc::new(AtomicU64::new(0));
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let prober = {
        let (stop, lags, latest, probes) =
            (stop.clone(), lags.clone(), latest.clone(), probes.clone());
        let (http, base, key) = (
            server.http.clone(),
            server.base_url.clone(),
            key.to_string(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Some((id, answered)) = latest.lock().unwrap().take() else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                loop {
                    probes.fetch_add(1, Ordering::Relaxed);
                    let seen = http
                        .get(format!("{base}/v1/findings/{id}"))
                        .header("x-api-key", &key)
                        .send()
                        .await;
                    if seen.is_ok_and(|r| r.status().as_u16() == 200) {
                        lags.lock()
                            .unwrap()
                            .record(answered.elapsed().as_micros().max(1) as u64)
                            .unwrap();
                        break;
                    }
                    if answered.elapsed() > Duration::from_secs(60) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        })
    };
    // The runner's own lag, sampled through the admin API.
    let watcher = {
        let (stop, max_lag_events) = (stop.clone(), max_lag_events.clone());
        let (http, base, token) = (
            server.http.clone(),
            server.base_url.clone(),
            server.admin_token.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(r) = http
                    .get(format!("{base}/v1/admin/projections"))
                    .bearer_auth(&token)
                    .send()
                    .await
                {
                    if let Ok(body) = r.json::<Value>().await {
                        for p in body["data"].as_array().into_iter().flatten() {
                            if p["name"] == "findings" {
                                max_lag_events.fetch_max(
                                    p["lag_events"].as_u64().unwrap_or(0),
                                    Ordering::Relaxed,
                                );
                            }
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    let (http, base, key) = (
        server.http.clone(),
        server.base_url.clone(),
        key.to_string(),
    );
    let slot = latest.clone();
    let mut report = closed_loop(concurrency, seconds, move |worker, n| {
        let body = finding(worker as u64 * 10_000_000 + n, &run);
        let sent = http
            .post(format!("{base}/v1/findings"))
            .header("x-api-key", &key)
            .json(&body)
            .send();
        let slot = slot.clone();
        async move {
            let created = match sent.await {
                Ok(r) if r.status().as_u16() == 201 => r.json::<Value>().await.ok(),
                _ => None,
            };
            let Some(created) = created else {
                return false;
            };
            if let Some(id) = created["data"]["id"].as_str() {
                *slot.lock().unwrap() = Some((id.to_string(), Instant::now()));
            }
            true
        }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    prober.await.unwrap();
    watcher.await.unwrap();
    let lags = lags.lock().unwrap();
    report["projection_lag"] = percentiles(&lags);
    report["lag_probe_requests"] = json!(probes.load(Ordering::Relaxed));
    report["runner_max_lag_events"] = json!(max_lag_events.load(Ordering::Relaxed));
    report
}

async fn post_bulk(server: &Server, key: &str, from: u64, count: u64, run: &str) {
    let items: Vec<Value> = (from..from + count).map(|n| finding(n, run)).collect();
    let response = server
        .http
        .post(server.url("/v1/findings/bulk"))
        .header("x-api-key", key)
        .json(&json!({ "findings": items }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "bulk: {body}");
    assert_eq!(
        body["data"]["failed"], 0,
        "bulk: {}",
        body["data"]["results"][0]
    );
}

/// Loads the store up to `total` findings with bulk requests; findings/s of
/// the first `measured` requests.
async fn bulk_load(server: &Server, key: &str, total: u64, measured: u64) -> Value {
    let run = "bulk";
    let per_request = 1000;
    let mut loaded = 0;
    let started = Instant::now();
    let mut measured_rate = None;
    let mut request = 0;
    while loaded < total {
        let count = per_request.min(total - loaded);
        post_bulk(server, key, loaded, count, run).await;
        loaded += count;
        request += 1;
        if request == measured || loaded == total && measured_rate.is_none() {
            measured_rate = Some(loaded as f64 / started.elapsed().as_secs_f64());
        }
    }
    json!({
        "findings_per_request": per_request,
        "findings_per_second": measured_rate.unwrap_or(0.0).round(),
        "loaded": loaded,
        "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    })
}

async fn query_latencies(server: &Server, key: &str, iterations: usize) -> Value {
    let queries = [
        (
            "list_high_by_risk",
            "/v1/findings?severity=high&sort=risk&per_page=50",
        ),
        ("search", "/v1/findings?search=token42"),
        ("overview", "/v1/overview"),
        ("assets_by_risk", "/v1/assets?sort=risk"),
    ];
    let mut report = BTreeMap::new();
    for (name, path) in queries {
        let mut h = histogram();
        for _ in 0..iterations {
            let started = Instant::now();
            let r = server
                .http
                .get(server.url(path))
                .header("x-api-key", key)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200, "{path}");
            let _ = r.bytes().await.unwrap();
            h.record(started.elapsed().as_micros() as u64).unwrap();
        }
        report.insert(name, json!({ "path": path, "latency": percentiles(&h) }));
    }
    json!(report)
}

async fn start(backend: &Backend) -> Server {
    let options = palisade_tests::ServerOptions {
        admin_token: Some("bench".into()),
        // The server's tuning may be tried from the bench's environment
        // (`PALISADE_PROJECTION_GROUPS=1 scripts/bench`, …).
        env: std::iter::once(("PALISADE_DB_MAX_CONNECTIONS".into(), "32".into()))
            .chain(std::env::vars().filter(|(name, _)| {
                name.starts_with("PALISADE_PROJECTION_") || name.starts_with("PALISADE_FEED_")
            }))
            .collect(),
    };
    Server::start_with(backend, options).await
}

async fn rebuild(backend: &Backend) -> Value {
    let output = tokio::process::Command::new(palisade_tests::binary())
        .args(["projections", "rebuild", "findings"])
        .env_clear()
        .envs(backend.env())
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    // "rebuilt findings: N events in S s (R events/s)"
    let numbers: Vec<f64> = text
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|t| t.parse().ok())
        .collect();
    json!({
        "output": text.trim(),
        "events": numbers.first(),
        "seconds": numbers.get(1),
        "events_per_second": numbers.get(2),
    })
}

async fn bench_store(kind: &str, options: &Options) -> Value {
    let backend = match kind {
        "sqlite" => Backend::sqlite(),
        "postgres" => Backend::postgres()
            .await
            .expect("PostgreSQL for the benchmark"),
        other => panic!("unknown store {other}"),
    };
    eprintln!("== {kind}");
    let deliveries = if options.quick { 5_000 } else { 20_000 };
    if options.scanner_only {
        return json!({ "store": kind, "scanner": scanner_imports(kind, options.scanner_results).await });
    }
    if options.webhooks_only {
        backend.cleanup().await;
        return json!({ "store": kind, "webhooks": webhook_deliveries(kind, deliveries).await });
    }
    // The raw limit first, on the empty store, before the server starts.
    {
        let server = start(&backend).await; // creates and migrates the store
        drop(server);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut raw = Vec::new();
    for &c in &options.concurrency {
        eprintln!("   raw limit, c={c}");
        raw.push(raw_limit(&backend, c, options.seconds).await);
    }
    // The peer on its own fresh database, before Palisade's server starts.
    let peer = if kind == "postgres" {
        let c = options.concurrency.iter().copied().max().unwrap_or(32);
        eprintln!("   peer (cqrs-es + postgres-es), c={c}");
        Some(peer_load(c, options.seconds).await)
    } else {
        None
    };
    let mut server = start(&backend).await;
    let (status, body) = server
        .admin_post(
            "/v1/admin/tenants",
            json!({"name": "Bench", "plan": "unlimited"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let key = body["data"]["api_key"]["key"].as_str().unwrap().to_string();
    let tenant_id = body["data"]["tenant"]["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (idle_rss, _) = memory(server.pid());
    let top = options.concurrency.iter().copied().max().unwrap_or(32);
    eprintln!("   GET /v1/health and GET /v1/whoami, c={top}");
    let reads = json!({
        "health": get_load(&server, "/v1/health", None, top, options.seconds).await,
        "whoami": get_load(&server, "/v1/whoami", Some(&key), top, options.seconds).await,
    });
    let kms = kms_load(&server, &key, top, options.seconds).await;
    let secrets = secrets_load(&server, &key, top, options.seconds).await;
    let mut ingest = Vec::new();
    for &c in &options.concurrency {
        eprintln!("   single-command ingest, c={c}");
        ingest.push(ingest_load(&server, &key, c, options.seconds).await);
    }
    eprintln!("   bulk ingest up to {} findings", options.findings);
    let bulk = bulk_load(
        &server,
        &key,
        options.findings,
        if options.quick { 5 } else { 20 },
    )
    .await;
    // Let the views catch up before timing queries.
    // A strong read gives up after its timeout (`consistency_timeout`); at a
    // million findings the views may need longer, so ask again until they answer.
    let caught_up = Instant::now();
    let overview: Value = loop {
        let r = server
            .http
            .get(server.url("/v1/overview?consistency=strong"))
            .header("x-api-key", &key)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or_default();
        match status {
            200 => break body,
            503 | 504 if caught_up.elapsed() < Duration::from_secs(1800) => continue,
            _ => panic!("the views did not catch up after the bulk load: {status} {body}"),
        }
    };
    let catch_up_ms = caught_up.elapsed().as_millis();
    eprintln!(
        "   queries over {} findings",
        overview["data"]["findings"]["total"]
    );
    let queries = query_latencies(&server, &key, if options.quick { 50 } else { 200 }).await;
    // After the ingest loads, whose projection lag the 200,000 events
    // appended here would otherwise disturb.
    let access = access_load(
        &backend,
        &server,
        &key,
        &tenant_id,
        options.grants,
        &[1, top],
        options.seconds,
    )
    .await;
    let (_, peak_rss) = memory(server.pid());
    server.signal("TERM");
    let _ = server.wait(Duration::from_secs(60)).await;
    eprintln!("   rebuild findings");
    let rebuild = rebuild(&backend).await;
    backend.cleanup().await;
    let scanner = scanner_imports(kind, options.scanner_results).await;
    let webhooks = webhook_deliveries(kind, deliveries).await;
    json!({
        "scanner": scanner,
        "webhooks": webhooks,
        "store": kind,
        "raw_limit": raw,
        "peer": peer,
        "reads": reads,
        "kms": kms,
        "secrets": secrets,
        "access": access,
        "ingest": ingest,
        "bulk": bulk,
        "views_catch_up_after_bulk_ms": catch_up_ms,
        "findings_total": overview["data"]["findings"]["total"],
        "queries": queries,
        "rebuild": rebuild,
        "rss_mb": { "idle": idle_rss, "peak": peak_rss },
    })
}

/// Webhook deliveries on a fresh store: `count` findings bulk-ingested for
/// an endpoint subscribed to `finding.created` on a receiver in this
/// process (deliveries/s from the first delivery to the last), then 200
/// single findings one at a time (the latency from each 201 to its
/// delivery: feed, views, dispatcher, outbox, sender).
async fn webhook_deliveries(kind: &str, count: u64) -> Value {
    eprintln!("   webhooks: {count} deliveries");
    let backend = match kind {
        "sqlite" => Backend::sqlite(),
        _ => Backend::postgres()
            .await
            .expect("PostgreSQL for the benchmark"),
    };
    let options = palisade_tests::ServerOptions {
        admin_token: Some("bench".into()),
        env: vec![
            ("PALISADE_DB_MAX_CONNECTIONS".into(), "32".into()),
            ("PALISADE_WEBHOOKS_ALLOW_PRIVATE".into(), "true".into()),
        ],
    };
    let server = Server::start_with(&backend, options).await;
    let (status, body) = server
        .admin_post(
            "/v1/admin/tenants",
            json!({"name": "Hooks", "plan": "unlimited"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let owner = body["data"]["api_key"]["key"].as_str().unwrap().to_string();
    let (_, key) = server
        .issue_api_key(
            &owner,
            "hooks",
            &["webhooks:manage", "findings:write", "findings:read"],
        )
        .await;
    let receiver = palisade_tests::receiver::Receiver::start("/bench").await;
    let response = server
        .http
        .post(server.url("/v1/webhooks"))
        .header("x-api-key", &key)
        .json(&json!({"url": receiver.url, "event_types": ["finding.created"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    // When the dispatcher has written every delivery (the outbox), apart
    // from when the senders have sent them.
    let store = palisade_infra::Store::open(&backend.config())
        .await
        .unwrap();
    let started = Instant::now();
    let outbox = tokio::spawn(async move {
        loop {
            let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhook_deliveries")
                .fetch_one(store.read_pool())
                .await
                .unwrap();
            if rows as u64 >= count || started.elapsed() > Duration::from_secs(1800) {
                return started.elapsed().as_secs_f64();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let mut loaded = 0;
    while loaded < count {
        let n = 1000.min(count - loaded);
        post_bulk(&server, &key, loaded, n, "hooks").await;
        loaded += n;
    }
    let ingested_s = started.elapsed().as_secs_f64();
    let received = receiver
        .wait_for(count as usize, Duration::from_secs(1800))
        .await;
    let delivered_s = started.elapsed().as_secs_f64();
    let dispatched_s = outbox.await.unwrap();
    let first = received.iter().map(|r| r.at).min();
    let last = received.iter().map(|r| r.at).max();
    let spread = match (first, last) {
        (Some(first), Some(last)) => last.duration_since(first).as_secs_f64(),
        _ => 0.0,
    };
    let per_second = if spread > 0.0 {
        received.len() as f64 / spread
    } else {
        0.0
    };
    let mut latency = histogram();
    for n in 0..200u64 {
        let before = receiver.received().len();
        let answered = {
            let response = server
                .http
                .post(server.url("/v1/findings"))
                .header("x-api-key", &key)
                .json(&finding(1_000_000 + n, "hooks-latency"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 201);
            Instant::now()
        };
        let got = receiver.wait_for(before + 1, Duration::from_secs(60)).await;
        let arrived = got.last().map_or(answered, |r| r.at);
        latency
            .record(arrived.saturating_duration_since(answered).as_micros() as u64)
            .unwrap();
    }
    drop(server);
    backend.cleanup().await;
    json!({
        "deliveries": received.len(),
        "expected": count,
        "ingest_seconds": (ingested_s * 10.0).round() / 10.0,
        "outbox_written_seconds": (dispatched_s * 10.0).round() / 10.0,
        "all_delivered_seconds": (delivered_s * 10.0).round() / 10.0,
        "delivery_seconds": (spread * 10.0).round() / 10.0,
        "deliveries_per_second": per_second.round(),
        "feed_to_delivery": percentiles(&latency),
    })
}

/// Uploads a report (the raw body) and follows its job to its end: the
/// job's document and the seconds from the upload to the end.
async fn import_report(
    server: &Server,
    key: &str,
    name: &str,
    bytes: Vec<u8>,
    format: Option<&str>,
) -> (Value, f64) {
    let started = Instant::now();
    let mut query = vec![("file_name", name.to_string())];
    if let Some(format) = format {
        query.push(("format", format.to_string()));
    }
    let response = server
        .http
        .post(server.url("/v1/ingestion/upload"))
        .query(&query)
        .header("x-api-key", key)
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 202, "upload of {name}: {body}");
    let id = body["data"]["job_id"].as_str().unwrap().to_string();
    loop {
        let response = server
            .http
            .get(server.url(&format!("/v1/ingestion/jobs/{id}")))
            .header("x-api-key", key)
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        let job = body["data"].clone();
        if job["status"] == "completed" || job["status"] == "failed" {
            return (job, started.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Scanner reports in, on a fresh store and server: the corpus per format
/// (files, findings, seconds from the first upload to the last job's end),
/// then a generated SARIF of `results` results over 1,000 files imported
/// twice (the second all deduplicated), and the server's peak RSS.
async fn scanner_imports(kind: &str, results: usize) -> Value {
    let backend = match kind {
        "sqlite" => Backend::sqlite(),
        _ => Backend::postgres()
            .await
            .expect("PostgreSQL for the benchmark"),
    };
    let mut server = start(&backend).await;
    let (status, body) = server
        .admin_post(
            "/v1/admin/tenants",
            json!({"name": "Scanners", "plan": "unlimited"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let key = body["data"]["api_key"]["key"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (idle_rss, _) = memory(server.pid());

    eprintln!("   scanner corpus");
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let table = std::fs::read_to_string(corpus.join("EXPECTED.tsv")).unwrap();
    let mut per_format: BTreeMap<String, (u64, u64, f64)> = BTreeMap::new();
    for line in table.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (format, file) = (cols[0], cols[1]);
        let bytes = std::fs::read(corpus.join(format).join(file)).unwrap();
        let declared = bytes.iter().all(u8::is_ascii_whitespace).then_some(format);
        let (job, seconds) = import_report(&server, &key, file, bytes, declared).await;
        let entry = per_format.entry(format.to_string()).or_default();
        entry.0 += 1;
        entry.1 += job["counts"]["parsed"].as_u64().unwrap_or(0);
        entry.2 += seconds;
    }
    let corpus: BTreeMap<String, Value> = per_format
        .into_iter()
        .map(|(format, (files, findings, seconds))| {
            let ms = (seconds * 1000.0).round();
            (
                format,
                json!({ "files": files, "findings": findings, "ms": ms }),
            )
        })
        .collect();

    eprintln!("   generated SARIF, {results} results over 1,000 files");
    let report = palisade_tests::reports::sarif("BenchScan", results, 1000);
    let size_mb = (report.len() as f64 / 1e6 * 10.0).round() / 10.0;
    let mut runs = Vec::new();
    for (name, expect_created) in [("first import", results), ("re-import", 0)] {
        eprintln!("   {name}");
        let (job, seconds) =
            import_report(&server, &key, "bench.sarif", report.clone(), None).await;
        assert_eq!(job["status"], "completed", "{job}");
        assert_eq!(
            job["counts"]["created"].as_u64(),
            Some(expect_created as u64),
            "{job}"
        );
        let parsed = job["counts"]["parsed"].as_u64().unwrap_or(0) as f64;
        // The job's own time (started to completed, from its events), and
        // the client's: upload to the jobs view showing it completed, which
        // comes when the views have applied every finding's events.
        let job_seconds = job["duration_ms"].as_f64().unwrap_or(0.0) / 1000.0;
        runs.push(json!({
            "run": name,
            "seconds": (seconds * 100.0).round() / 100.0,
            "findings_per_second": (parsed / seconds).round(),
            "job_findings_per_second": (parsed / job_seconds.max(1e-3)).round(),
            "job_duration_ms": job["duration_ms"],
            "counts": job["counts"],
        }));
    }
    let (_, peak_rss) = memory(server.pid());
    server.signal("TERM");
    let _ = server.wait(Duration::from_secs(60)).await;
    backend.cleanup().await;
    json!({
        "corpus": corpus,
        "generated": { "results": results, "files": 1000, "size_mb": size_mb, "runs": runs },
        "rss_mb": { "idle": idle_rss, "peak": peak_rss },
    })
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("unknown")
        .trim()
        .to_string();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory_gb = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| (kb / 1024.0 / 1024.0).round());
    json!({ "cpu": cpu, "cores": cores, "memory_gb": memory_gb, "os": std::env::consts::OS })
}

fn commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        String::new()
    }
}

/// The scanner-import rows of a store.
fn scanner_rows(out: &mut String, kind: &str, scanner: &Value) {
    if scanner.is_null() {
        return;
    }
    let generated = &scanner["generated"];
    for run in generated["runs"].as_array().into_iter().flatten() {
        let target = match (run["run"].as_str(), kind) {
            (Some("re-import"), _) => "≥ 40,000",
            (_, "postgres") => "≥ 20,000",
            _ => "≥ 10,000",
        };
        out.push_str(&format!(
            "| {kind} | scanner {}, SARIF {} results / {} files, {} MB (findings/s of the job, started to completed; s from the upload to the view showing it completed) | {}; {} | | | | | {target} |\n",
            run["run"].as_str().unwrap_or_default(), generated["results"], generated["files"],
            generated["size_mb"], run["job_findings_per_second"], run["seconds"],
        ));
    }
    for (format, c) in scanner["corpus"].as_object().into_iter().flatten() {
        out.push_str(&format!(
            "| {kind} | scanner corpus {format}: {} files, {} findings (ms, all files) | {} | | | | | |\n",
            c["files"], c["findings"], c["ms"],
        ));
    }
    out.push_str(&format!(
        "| {kind} | scanner imports: RSS idle / peak (MB) | {} / {} | | | | | peak < 300 |\n",
        scanner["rss_mb"]["idle"], scanner["rss_mb"]["peak"]
    ));
}

fn markdown(report: &Value) -> String {
    let mut out = String::new();
    out.push_str(
        "| store | figure | Palisade | raw limit | Palisade / raw | peer | Palisade / peer | target |\n|---|---|---|---|---|---|---|---|\n",
    );
    for store in report["stores"].as_array().into_iter().flatten() {
        let kind = store["store"].as_str().unwrap_or_default();
        scanner_rows(&mut out, kind, &store["scanner"]);
        let hooks = &store["webhooks"];
        if !hooks.is_null() {
            out.push_str(&format!(
                "| {kind} | webhook deliveries ({} of {}; per s, first to last) | {:.0} | | | | | ≥ 2,000/s |\n",
                hooks["deliveries"], hooks["expected"], f(&hooks["deliveries_per_second"]),
            ));
            out.push_str(&format!(
                "| {kind} | feed-to-delivery latency, one finding at a time (p50 / p99 ms) | {} / {} | | | | | |\n",
                hooks["feed_to_delivery"]["p50_ms"], hooks["feed_to_delivery"]["p99_ms"],
            ));
        }
        if store["ingest"].is_null() {
            continue;
        }
        let raws = store["raw_limit"].as_array().cloned().unwrap_or_default();
        let peer = &store["peer"];
        let top = store["ingest"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["concurrency"].as_u64())
            .max();
        for (i, run) in store["ingest"].as_array().into_iter().flatten().enumerate() {
            let raw = raws.get(i).map_or(0.0, |r| f(&r["per_second"]));
            let api = f(&run["per_second"]);
            let at_top = run["concurrency"].as_u64() == top;
            let (peer_cell, peer_ratio) = if at_top && !peer.is_null() {
                (
                    format!(
                        "{:.0}; {} / {} ms",
                        f(&peer["per_second"]),
                        peer["latency"]["p50_ms"],
                        peer["latency"]["p99_ms"]
                    ),
                    ratio(api, f(&peer["per_second"])),
                )
            } else {
                (String::new(), String::new())
            };
            let target = match (kind, at_top) {
                ("postgres", true) => "≥ 0.7 × raw, ≥ 1.5 × peer, p99 < 25 ms",
                ("sqlite", true) => "≥ 0.5 × raw",
                _ => "",
            };
            out.push_str(&format!(
                "| {kind} | ingest c={} (req/s; p50 / p99 / max ms; errors) | {api:.0}; {} / {} / {}; {} | {raw:.0}; {} / {} ms | {} | {peer_cell} | {peer_ratio} | {target} |\n",
                run["concurrency"],
                run["latency"]["p50_ms"], run["latency"]["p99_ms"], run["latency"]["max_ms"], run["errors"],
                raws.get(i).map_or(json!(null), |r| r["latency"]["p50_ms"].clone()),
                raws.get(i).map_or(json!(null), |r| r["latency"]["p99_ms"].clone()),
                ratio(api, raw),
            ));
            out.push_str(&format!(
                "| {kind} | projection lag c={} (p50 / p99 ms; samples; runner max lag events) | {} / {}; {}; {} | | | | | p99 < 250 ms |\n",
                run["concurrency"], run["projection_lag"]["p50_ms"], run["projection_lag"]["p99_ms"],
                run["projection_lag"]["count"], run["runner_max_lag_events"],
            ));
        }
        let reads = &store["reads"];
        out.push_str(&format!(
            "| {kind} | GET /v1/whoami vs GET /v1/health c={} (req/s; p99 ms) | {:.0}; {} | | {} (/ health: {:.0}; {}) | | | ≥ 0.5 × health |\n",
            reads["whoami"]["concurrency"],
            f(&reads["whoami"]["per_second"]), reads["whoami"]["latency"]["p99_ms"],
            ratio(f(&reads["whoami"]["per_second"]), f(&reads["health"]["per_second"])),
            f(&reads["health"]["per_second"]), reads["health"]["latency"]["p99_ms"],
        ));
        let kms = &store["kms"];
        let health = f(&reads["health"]["per_second"]);
        for (name, run, target) in [
            (
                "KMS encrypt 1 KiB",
                &kms["encrypt"],
                "≥ 0.5 × health, p99 < 10 ms",
            ),
            ("KMS decrypt 1 KiB", &kms["decrypt"], ""),
            ("KMS sign ed25519", &kms["sign"]["ed25519"], ""),
            ("KMS sign ecdsa-p256", &kms["sign"]["ecdsa-p256"], ""),
            ("KMS sign ml-dsa-65", &kms["sign"]["ml-dsa-65"], ""),
        ] {
            out.push_str(&format!(
                "| {kind} | {name} c={} (ops/s; p50 / p99 ms; errors) | {:.0}; {} / {}; {} | | {} (/ health: {health:.0}) | | | {target} |\n",
                run["concurrency"], f(&run["per_second"]), run["latency"]["p50_ms"],
                run["latency"]["p99_ms"], run["errors"], ratio(f(&run["per_second"]), health),
            ));
        }
        out.push_str(&format!(
            "| {kind} | in-process AES-256-GCM 1 KiB, one thread (ops/s) | {} | | | | | |\n",
            kms["in_process_aes_gcm_per_second"]
        ));
        // Beside the findings ingest at the same concurrency: a write and
        // a read of a secret each append one event, as an ingest does.
        let ingest_top = store["ingest"]
            .as_array()
            .and_then(|runs| runs.last())
            .map_or(0.0, |run| f(&run["per_second"]));
        for (name, run) in [
            ("secret write 64 B", &store["secrets"]["write"]),
            ("secret read (recorded)", &store["secrets"]["read"]),
        ] {
            out.push_str(&format!(
                "| {kind} | {name} c={} (req/s; p50 / p99 ms; errors) | {:.0}; {} / {}; {} | | {} (/ ingest: {ingest_top:.0}) | | | |\n",
                run["concurrency"], f(&run["per_second"]), run["latency"]["p50_ms"],
                run["latency"]["p99_ms"], run["errors"], ratio(f(&run["per_second"]), ingest_top),
            ));
        }
        for check in store["access"]["check"].as_array().into_iter().flatten() {
            let target = if check["concurrency"] == json!(1) {
                "p99 < 5 ms at 100,000"
            } else {
                ""
            };
            out.push_str(&format!(
                "| {kind} | access check c={} at {} grants (req/s; p50 / p99 ms; errors) | {:.0}; {} / {}; {} | | | | | {target} |\n",
                check["concurrency"], store["access"]["grants"], f(&check["per_second"]),
                check["latency"]["p50_ms"], check["latency"]["p99_ms"], check["errors"],
            ));
        }
        out.push_str(&format!(
            "| {kind} | bulk ingest, 1,000 per request (findings/s) | {} | | | | | {} |\n",
            store["bulk"]["findings_per_second"],
            if kind == "postgres" {
                "≥ 20,000"
            } else {
                "≥ 10,000"
            },
        ));
        for (name, q) in store["queries"].as_object().into_iter().flatten() {
            out.push_str(&format!(
                "| {kind} | {name} at {} findings (p50 / p99 ms) | {} / {} | | | | | p99 < 20 ms at 1,000,000 |\n",
                store["findings_total"], q["latency"]["p50_ms"], q["latency"]["p99_ms"]
            ));
        }
        out.push_str(&format!(
            "| {kind} | rebuild findings (events/s) | {} | | | | | ≥ 50,000 |\n",
            store["rebuild"]["events_per_second"]
        ));
        out.push_str(&format!(
            "| {kind} | RSS idle / peak (MB) | {} / {} | | | | | < 60 / < 500 at 1,000,000 |\n",
            store["rss_mb"]["idle"], store["rss_mb"]["peak"]
        ));
    }
    out
}

#[tokio::main]
async fn main() {
    let options = Options::parse();
    let started = Instant::now();
    let mut stores = Vec::new();
    for kind in &options.stores {
        stores.push(bench_store(kind, &options).await);
    }
    let report = json!({
        "machine": machine(),
        "commit": commit(),
        "when": chrono::Utc::now().to_rfc3339(),
        "options": {
            "quick": options.quick,
            "findings": options.findings,
            "grants": options.grants,
            "seconds_per_load": options.seconds,
            "concurrency": options.concurrency,
            "scanner_results": options.scanner_results,
            "scanner_only": options.scanner_only,
        },
        "seconds": started.elapsed().as_secs(),
        "stores": stores,
    });
    let dir = std::path::Path::new("target/bench");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
    println!("{}", markdown(&report));
    println!(
        "machine: {}; commit {}; {} s; report: target/bench/report.json",
        report["machine"], report["commit"], report["seconds"]
    );
}
