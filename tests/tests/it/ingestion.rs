//! Black-box tests of scanner ingestion (`/v1/ingestion`), on both stores:
//! every report of the corpus (`tests/corpus`, DefectDojo's parser
//! fixtures) uploaded through the API counts what DefectDojo counts;
//! re-imports deduplicate, close-old closes exactly what a new report no
//! longer holds (never a dismissed finding) and a fixed finding seen
//! again reopens; malformed reports fail naming where, bad items are item
//! errors, and bad uploads are refused.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use palisade_tests::{on_both_stores, Auth, Backend, Server};
use reqwest::Method;
use serde_json::{json, Value};

on_both_stores!(
    every_corpus_report_counts_as_defectdojo_does,
    reimports_deduplicate_and_close_old_closes_only_what_is_fixed,
    bad_reports_fail_naming_where_and_bad_uploads_are_refused,
    palisade_import_shows_progress_and_exits_by_the_jobs_outcome,
    a_job_killed_mid_import_resumes_and_counts_each_finding_once
);

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

fn report(format: &str, file: &str) -> Vec<u8> {
    std::fs::read(corpus().join(format).join(file)).unwrap()
}

/// Uploads `bytes` as a form (field `file`, and `fields`); status and body.
async fn upload(
    server: &Server,
    key: &str,
    name: &str,
    bytes: Vec<u8>,
    fields: &[(&str, &str)],
) -> (u16, Value) {
    let mut form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()),
    );
    for (field, value) in fields {
        form = form.text(field.to_string(), value.to_string());
    }
    let response = server
        .http
        .post(server.url("/v1/ingestion/upload"))
        .header("x-api-key", key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Uploads and returns the job id (202 expected).
async fn submit(
    server: &Server,
    key: &str,
    name: &str,
    bytes: Vec<u8>,
    fields: &[(&str, &str)],
) -> String {
    let (status, body) = upload(server, key, name, bytes, fields).await;
    assert_eq!(status, 202, "{name}: {body}");
    assert_eq!(body["data"]["status"], "pending", "{body}");
    body["data"]["job_id"].as_str().unwrap().to_string()
}

/// Waits until the job has ended; its document.
async fn ended(server: &Server, key: &str, job: &str) -> Value {
    // Generous: a bound on a failure, not a timing (the crash test's
    // 100,000 results take a minute or two on a debug build).
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (status, body) = server
            .call(
                Method::GET,
                &format!("/v1/ingestion/jobs/{job}"),
                Auth::ApiKey(key),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let data = body["data"].clone();
        if data["status"] == "completed" || data["status"] == "failed" {
            return data;
        }
        assert!(Instant::now() < deadline, "job {job} did not end: {data}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn import(
    server: &Server,
    key: &str,
    format: &str,
    file: &str,
    fields: &[(&str, &str)],
) -> Value {
    let job = submit(server, key, file, report(format, file), fields).await;
    let data = ended(server, key, &job).await;
    assert_eq!(data["status"], "completed", "{file}: {data}");
    data
}

async fn every_corpus_report_counts_as_defectdojo_does(backend: &Backend) {
    let server = Server::start(backend).await;
    let (_, key) = server.create_tenant("Corpus", "unlimited").await;
    let table = std::fs::read_to_string(corpus().join("EXPECTED.tsv")).unwrap();
    let mut jobs = Vec::new();
    for line in table.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (format, file, expected) = (cols[0], cols[1], cols[2]);
        let bytes = report(format, file);
        // Detected from content; an empty report must be declared.
        let fields: Vec<(&str, &str)> = if bytes.iter().all(u8::is_ascii_whitespace) {
            vec![("format", format)]
        } else {
            vec![]
        };
        let job = submit(&server, &key, file, bytes, &fields).await;
        jobs.push((format, file, expected.to_string(), job));
    }
    let mut wrong = Vec::new();
    let mut per_format: std::collections::BTreeMap<&str, (u32, u64)> = Default::default();
    for (format, file, expected, job) in &jobs {
        let data = ended(&server, &key, job).await;
        if data["format"] != *format {
            wrong.push(format!("{file}: detected {}", data["format"]));
        }
        if expected == "error" {
            if data["status"] != "failed" || data["failure"].as_str().unwrap_or("").is_empty() {
                wrong.push(format!("{file}: expected a failure, got {data}"));
            }
            continue;
        }
        let parsed = data["counts"]["parsed"].as_u64();
        if data["status"] != "completed" || parsed != expected.parse().ok() {
            wrong.push(format!(
                "{file}: {} with {parsed:?} parsed, expected {expected}: {}",
                data["status"], data["failure"]
            ));
        }
        let entry = per_format.entry(format).or_default();
        entry.0 += 1;
        entry.1 += parsed.unwrap_or(0);
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    println!("corpus per format (files, findings): {per_format:?}");
    // Listed and filtered.
    let (status, body) = server
        .call(
            Method::GET,
            "/v1/ingestion/jobs?status=failed&per_page=100",
            Auth::ApiKey(&key),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["data"][0]["file"]["name"], "null_title.json");
    let (_, body) = server
        .call(
            Method::GET,
            "/v1/ingestion/jobs?format=zap&per_page=100",
            Auth::ApiKey(&key),
            None,
        )
        .await;
    assert_eq!(body["meta"]["total"], 15, "{body}");
}

/// The findings of a product (at most 100), by title.
async fn findings(server: &Server, key: &str, product: &str) -> Vec<Value> {
    let (status, body) = server
        .call(
            Method::GET,
            &format!("/v1/findings?product={product}&per_page=100&consistency=strong"),
            Auth::ApiKey(key),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().unwrap().clone()
}

async fn reimports_deduplicate_and_close_old_closes_only_what_is_fixed(backend: &Backend) {
    let server = Server::start(backend).await;
    let (_, key) = server.create_tenant("Reimport", "unlimited").await;

    // The same report twice: everything deduplicated the second time.
    let first = import(
        &server,
        &key,
        "zap",
        "0_zap_sample.xml",
        &[("product", "shop")],
    )
    .await;
    assert_eq!(first["counts"]["created"], 4, "{first}");
    let again = import(
        &server,
        &key,
        "zap",
        "0_zap_sample.xml",
        &[("product", "shop")],
    )
    .await;
    assert_eq!(
        (
            again["counts"]["created"].as_u64(),
            again["counts"]["deduplicated"].as_u64()
        ),
        (Some(0), Some(4)),
        "{again}"
    );

    // A re-scan without one alert, with close-old: exactly that one closed.
    let rescan = import(
        &server,
        &key,
        "zap",
        "0_zap_sample_without_zap3.xml",
        &[("product", "shop"), ("close_old", "true")],
    )
    .await;
    assert_eq!(rescan["counts"]["closed"], 1, "{rescan}");
    assert_eq!(rescan["counts"]["deduplicated"], 3, "{rescan}");
    let shop = findings(&server, &key, "shop").await;
    let remediated: Vec<&Value> = shop
        .iter()
        .filter(|f| f["status"] == "remediated")
        .collect();
    assert_eq!(remediated.len(), 1, "{shop:?}");
    let closed_id = remediated[0]["id"].as_str().unwrap().to_string();

    // Seen again later: reopened as a regression.
    let back = import(
        &server,
        &key,
        "zap",
        "0_zap_sample.xml",
        &[("product", "shop")],
    )
    .await;
    assert_eq!(back["counts"]["reopened"], 1, "{back}");
    let (_, finding) = server
        .call(
            Method::GET,
            &format!("/v1/findings/{closed_id}"),
            Auth::ApiKey(&key),
            None,
        )
        .await;
    assert_eq!(finding["data"]["status"], "open", "{finding}");

    // A dismissed finding is never touched by close-old (another product).
    import(
        &server,
        &key,
        "zap",
        "0_zap_sample.xml",
        &[("product", "blog")],
    )
    .await;
    let blog = findings(&server, &key, "blog").await;
    assert_eq!(blog.len(), 4);
    for finding in &blog {
        let id = finding["id"].as_str().unwrap();
        let (status, body) = server
            .call(
                Method::POST,
                &format!("/v1/findings/{id}/dismiss"),
                Auth::ApiKey(&key),
                Some(json!({"reason": "accepted by the blog team"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let rescan = import(
        &server,
        &key,
        "zap",
        "0_zap_sample_without_zap3.xml",
        &[("product", "blog"), ("close_old", "true")],
    )
    .await;
    assert_eq!(rescan["counts"]["closed"], 0, "{rescan}");
    let blog = findings(&server, &key, "blog").await;
    assert!(blog.iter().all(|f| f["status"] == "dismissed"), "{blog:?}");

    // SARIF: the full report, then its subset: 4 deduplicated.
    let full = import(
        &server,
        &key,
        "sarif",
        "bash-report-fabricated-no-internal-dupes.sarif",
        &[],
    )
    .await;
    assert_eq!(full["counts"]["created"], 5, "{full}");
    let subset = import(
        &server,
        &key,
        "sarif",
        "bash-report-fabricated-no-internal-dupes-subset.sarif",
        &[],
    )
    .await;
    assert_eq!(subset["counts"]["deduplicated"], 4, "{subset}");
    assert_eq!(subset["counts"]["created"], 0, "{subset}");

    // Suppressed SARIF results are ingested dismissed, with the reason.
    let suppressed = import(
        &server,
        &key,
        "sarif",
        "suppression_test.sarif",
        &[("product", "sup")],
    )
    .await;
    assert_eq!(suppressed["counts"]["parsed"], 5, "{suppressed}");
    let sup = findings(&server, &key, "sup").await;
    let dismissed = sup.iter().filter(|f| f["status"] == "dismissed").count();
    assert_eq!(dismissed, 3, "{sup:?}");
}

async fn bad_reports_fail_naming_where_and_bad_uploads_are_refused(backend: &Backend) {
    let server = Server::start(backend).await;
    let (_, key) = server.create_tenant("Bad", "unlimited").await;

    // Truncated: the job fails, naming the line and column.
    let full = report("sarif", "flawfinder.sarif");
    let truncated = full[..full.len() / 2].to_vec();
    let job = submit(&server, &key, "cut.sarif", truncated, &[]).await;
    let data = ended(&server, &key, &job).await;
    assert_eq!(data["status"], "failed", "{data}");
    let failure = data["failure"].as_str().unwrap();
    assert!(failure.contains("at line "), "{failure}");

    // One malformed result in a good report: an item error, the rest ingested.
    let log = json!({"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "T"}}, "results": [
        {"ruleId": "A", "message": {"text": "one"}},
        42,
        {"ruleId": "B", "message": {"text": "two"}}]}]});
    // As a raw body, the way a CI pipeline posts it.
    let response = server
        .http
        .post(server.url("/v1/ingestion/upload?product=raw&tags=ci,nightly"))
        .header("x-api-key", &key)
        .header("content-type", "application/sarif+json")
        .body(log.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["format"], "sarif");
    let data = ended(&server, &key, body["data"]["job_id"].as_str().unwrap()).await;
    assert_eq!(data["status"], "completed", "{data}");
    assert_eq!(data["counts"]["parsed"], 2, "{data}");
    assert_eq!(data["counts"]["errors"], 1, "{data}");
    assert_eq!(data["errors"][0]["at"], "runs[0].results[1]", "{data}");
    // GraphQL reads the same jobs.
    let query = format!(
        r#"{{ ingestionJob(id: "{}") {{ status format counts {{ parsed errors }} errors {{ at }} }}
             ingestionJobs(filter: {{ status: ["failed"] }}) {{ totalCount nodes {{ failure }} }} }}"#,
        data["job_id"].as_str().unwrap()
    );
    let (status, body) = server
        .call(
            Method::POST,
            "/graphql",
            Auth::ApiKey(&key),
            Some(json!({ "query": query })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["ingestionJob"],
        json!({"status": "completed", "format": "sarif", "counts": {"parsed": 2, "errors": 1},
               "errors": [{"at": "runs[0].results[1]"}]}),
        "{body}"
    );
    assert_eq!(body["data"]["ingestionJobs"]["totalCount"], 1, "{body}");
    let raw = findings(&server, &key, "raw").await;
    assert_eq!(raw.len(), 2);
    assert!(
        raw[0]["tags"]
            .as_array()
            .unwrap()
            .contains(&json!("nightly")),
        "{raw:?}"
    );

    // 60 MB declared: 413 at once, before the body is read.
    let response = raw_request(
        &server,
        &format!(
            "POST /v1/ingestion/upload HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n\
             Content-Type: application/sarif+json\r\nContent-Length: 60000000\r\n\r\n{{"
        ),
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains("\"payload_too_large\""), "{response}");
    // One byte over 50 MiB, sent whole: refused as well (nothing queued).
    let response = server
        .http
        .post(server.url("/v1/ingestion/upload"))
        .header("x-api-key", &key)
        .header("content-type", "application/sarif+json")
        .body(vec![b' '; 50 * 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);

    // A format that cannot be told, and bad options: 422 naming the fields.
    let (status, body) = upload(
        &server,
        &key,
        "notes.txt",
        b"hello".to_vec(),
        &[("close_old", "maybe"), ("minimum_severity", "severe")],
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let fields: Vec<&str> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["format", "close_old", "minimum_severity"],
        "{body}"
    );
    let (status, _) = upload(&server, &key, "x", b"{}".to_vec(), &[("format", "csv")]).await;
    assert_eq!(status, 422);
    // No file; an unknown field; another body type.
    let form = reqwest::multipart::Form::new().text("format", "sarif");
    let response = server
        .http
        .post(server.url("/v1/ingestion/upload"))
        .header("x-api-key", &key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 422);
    let (status, _) = upload(&server, &key, "x", b"{}".to_vec(), &[("colour", "red")]).await;
    assert_eq!(status, 422);
    let response = server
        .http
        .post(server.url("/v1/ingestion/upload"))
        .header("x-api-key", &key)
        .header("content-type", "image/png")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 415);

    // Scopes: a reader cannot upload; unknown jobs are 404.
    let (_, reader) = server
        .issue_api_key(&key, "reader", &["findings:read"])
        .await;
    let (status, _) = upload(
        &server,
        &reader,
        "x.sarif",
        log.to_string().into_bytes(),
        &[],
    )
    .await;
    assert_eq!(status, 403);
    for id in ["job_00000000000000000000000000000000", "nope"] {
        let (status, _) = server
            .call(
                Method::GET,
                &format!("/v1/ingestion/jobs/{id}"),
                Auth::ApiKey(&reader),
                None,
            )
            .await;
        assert_eq!(status, 404);
    }
    let (status, body) = server
        .call(
            Method::GET,
            "/v1/ingestion/jobs?status=done",
            Auth::ApiKey(&reader),
            None,
        )
        .await;
    assert_eq!(status, 422, "{body}");
}

/// One raw HTTP/1.1 exchange (for a request no client library sends).
async fn raw_request(server: &Server, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = server.base_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response)).await;
    String::from_utf8_lossy(&response).into_owned()
}

/// Runs `palisade import ARGS` against `server` with `key`; exit code,
/// stdout, stderr.
async fn palisade_import(server: &Server, key: &str, args: &[&str]) -> (i32, String, String) {
    let output = tokio::process::Command::new(palisade_tests::binary())
        .arg("import")
        .args(args)
        .env("PALISADE_URL", server.url(""))
        .env("PALISADE_API_KEY", key)
        .output()
        .await
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn palisade_import_shows_progress_and_exits_by_the_jobs_outcome(backend: &Backend) {
    let server = Server::start(backend).await;
    let (_, key) = server.create_tenant("Importer", "unlimited").await;
    let dir = std::env::temp_dir().join(format!("palisade-import-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let generated = dir.join("generated.sarif");
    let bytes = palisade_tests::reports::sarif("GenScan", 3000, 30);
    std::fs::write(&generated, &bytes).unwrap();
    let path = generated.to_str().unwrap();

    // First import: progress on stderr (plain lines: no terminal), the
    // final counts on stdout, exit 0.
    let (code, out, err) = palisade_import(&server, &key, &["--wait", "--tag", "ci", path]).await;
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(
        err.contains(&format!("generated.sarif: uploading {} bytes", bytes.len())),
        "{err}"
    );
    assert!(
        err.contains("uploaded") && err.contains("job job_"),
        "{err}"
    );
    assert!(
        out.contains("completed") && out.contains("3000 parsed, 3000 created, 0 deduplicated"),
        "{out}"
    );

    let (_, findings) = server
        .call(
            Method::GET,
            "/v1/findings?tag=ci&per_page=1&consistency=strong",
            Auth::ApiKey(&key),
            None,
        )
        .await;
    assert_eq!(findings["meta"]["total"], 3000, "{findings}");

    // The same report again, as JSON: every finding deduplicated; the job
    // knows the file's name and read all of it.
    let (code, out, err) = palisade_import(&server, &key, &["--wait", "--json", path]).await;
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let job: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["counts"]["deduplicated"], 3000, "{job}");
    assert_eq!(job["counts"]["created"], 0, "{job}");
    assert_eq!(job["file"]["name"], "generated.sarif", "{job}");
    assert_eq!(job["file"]["size_bytes"], bytes.len() as u64, "{job}");
    assert_eq!(job["file"]["bytes_read"], bytes.len() as u64, "{job}");
    assert!(err.is_empty(), "--json prints no progress: {err}");

    // A job that fails: exit 1, the reason on stdout; the good file of the
    // same run still imports.
    let refused = corpus().join("burp").join("null_title.json");
    let good = corpus().join("zap").join("juicy2.xml");
    let (code, out, err) = palisade_import(
        &server,
        &key,
        &["--wait", refused.to_str().unwrap(), good.to_str().unwrap()],
    )
    .await;
    assert_eq!(code, 1, "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains("null_title.json: job_") && out.contains("failed"),
        "{out}"
    );
    assert!(out.contains("issue has no name"), "{out}");
    assert!(
        out.contains("juicy2.xml: job_") && out.contains("6 parsed"),
        "{out}"
    );
    assert!(err.contains("1 of 2 imports failed"), "{err}");

    // Without --wait: queued, exit 0; a refused upload and a wrong key exit 1
    // with the server's reason.
    let (code, out, _) = palisade_import(&server, &key, &[good.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("pending") || out.contains("processing") || out.contains("completed"),
        "{out}"
    );
    let (code, _, err) = palisade_import(&server, &key, &["--format", "zip", path]).await;
    assert_eq!(code, 1);
    assert!(err.contains("422") && err.contains("format"), "{err}");
    let (code, _, err) = palisade_import(&server, "pal_live_nope", &[path]).await;
    assert_eq!(code, 1);
    assert!(err.contains("401"), "{err}");
    let (code, _, err) = palisade_import(
        &server,
        &key,
        &[dir.join("missing.sarif").to_str().unwrap()],
    )
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("cannot read"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `kill -9` while a 100,000-result report is being ingested: after the
/// restart the job resumes where its events say it was and completes,
/// and the store holds exactly the findings of an uninterrupted import
/// (each result its own finding), each created once.
async fn a_job_killed_mid_import_resumes_and_counts_each_finding_once(backend: &Backend) {
    const RESULTS: u64 = 100_000;
    let mut server = Server::start(backend).await;
    let (_, key) = server.create_tenant("Crash", "unlimited").await;
    let report = palisade_tests::reports::sarif("CrashScan", RESULTS as usize, 1000);
    let job = submit(&server, &key, "crash.sarif", report, &[]).await;
    // Killed once some batches are in (the view shows at least that many).
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (status, body) = server
            .call(
                Method::GET,
                &format!("/v1/ingestion/jobs/{job}"),
                Auth::ApiKey(&key),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let data = &body["data"];
        assert_ne!(
            data["status"], "completed",
            "the job ended before the kill: {data}"
        );
        if data["counts"]["items_processed"].as_u64().unwrap_or(0) >= 5_000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the job did not progress: {data}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.restart(backend).await;

    let data = ended(&server, &key, &job).await;
    assert_eq!(data["status"], "completed", "{data}\n{}", server.log());
    assert_eq!(data["attempts"], 2, "{data}");
    let counts = &data["counts"];
    assert_eq!(counts["items_processed"], RESULTS, "{data}");
    assert_eq!(counts["parsed"], RESULTS, "{data}");
    assert_eq!(
        counts["created"], RESULTS,
        "no finding created twice: {data}"
    );
    assert_eq!(counts["deduplicated"], 0, "{data}");
    assert_eq!(counts["errors"], 0, "{data}");
    // The views may need longer than a strong read waits: ask until they
    // answer. The tenant has this import only, so the overview's exact
    // count is the import's (a list counts up to 10,000).
    let overview = loop {
        let (status, overview) = server
            .call(
                Method::GET,
                "/v1/overview?consistency=strong",
                Auth::ApiKey(&key),
                None,
            )
            .await;
        match status {
            200 => break overview,
            503 | 504 if Instant::now() < deadline + Duration::from_secs(600) => continue,
            _ => panic!("{status}: {overview}"),
        }
    };
    assert_eq!(overview["data"]["findings"]["total"], RESULTS, "{overview}");
}
