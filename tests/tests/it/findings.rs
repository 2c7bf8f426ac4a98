//! Black-box tests of findings, assets, risk and the timeline, on both
//! stores: ingest and deduplication, triage over HTTP, list filters, bulk
//! ingest, scopes and isolation, strong reads and recalculation.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use palisade_tests::{on_both_stores, Auth, Backend, Server};
use reqwest::Method;
use serde_json::{json, Value};

on_both_stores!(
    seed_numbers,
    strong_reads_see_every_acknowledged_write,
    fifty_concurrent_posts_make_one_finding,
    duplicates_are_reobserved_and_remediated_findings_regress,
    triage_transitions_over_http,
    filters_sorts_and_pages,
    bulk_ingest_keeps_the_good_items,
    scopes_and_isolation,
    timeline_and_recalculate,
    the_timeline_orders_one_commands_events_by_sequence,
    min_risk_matches_the_risk_score_shown,
    an_asset_identifier_may_start_with_ast,
    a_rebuild_reproduces_the_views,
    a_rebuild_against_running_servers_completes,
    counts_stop_at_ten_thousand,
);

/// One caller: a server and an API key.
struct Api<'a> {
    server: &'a Server,
    key: String,
}

impl<'a> Api<'a> {
    fn new(server: &'a Server, key: &str) -> Self {
        Self {
            server,
            key: key.to_string(),
        }
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.server
            .call(Method::GET, path, Auth::ApiKey(&self.key), None)
            .await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.server
            .call(Method::POST, path, Auth::ApiKey(&self.key), Some(body))
            .await
    }

    /// A POST without a body.
    async fn post_empty(&self, path: &str) -> (u16, Value) {
        self.server
            .call(Method::POST, path, Auth::ApiKey(&self.key), None)
            .await
    }

    /// Ingests `body`, expecting a new finding; its `data`.
    async fn ingest(&self, body: Value) -> Value {
        let (status, response) = self.post("/v1/findings", body).await;
        assert_eq!(status, 201, "{response}");
        assert_eq!(response["data"]["deduplicated"], false, "{response}");
        response["data"].clone()
    }

    /// Runs a triage command, expecting 200; the finding afterwards.
    async fn command(&self, id: &str, action: &str, body: Option<Value>) -> Value {
        let path = format!("/v1/findings/{id}/{action}");
        let (status, response) = match body {
            Some(body) => self.post(&path, body).await,
            None => self.post_empty(&path).await,
        };
        assert_eq!(status, 200, "{action}: {response}");
        response["data"].clone()
    }

    /// A strongly consistent GET that must answer 200; the whole body.
    async fn read(&self, path: &str) -> Value {
        let separator = if path.contains('?') { '&' } else { '?' };
        let (status, body) = self
            .get(&format!("{path}{separator}consistency=strong"))
            .await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    /// The ids `GET /v1/findings?<query>` answers (strong), and its meta.
    async fn list(&self, query: &str) -> (Vec<String>, Value) {
        let body = self
            .read(&format!("/v1/findings?per_page=100&{query}"))
            .await;
        (ids(&body["data"]), body["meta"].clone())
    }

    async fn asset_risk(&self, asset: &str) -> f64 {
        let body = self.read(&format!("/v1/assets/{asset}")).await;
        score(&body["data"]["risk_score"])
    }
}

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

fn ids(items: &Value) -> Vec<String> {
    items
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {items}"))
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_string())
        .collect()
}

fn id(data: &Value) -> String {
    data["id"].as_str().unwrap().to_string()
}

fn score(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {value}"))
}

fn assert_score(value: &Value, expected: f64, what: &str) {
    let actual = score(value);
    assert!(
        (actual - expected).abs() < 0.005,
        "{what}: expected {expected}, got {actual}"
    );
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

/// The fields a validation error names.
fn fields(body: &Value) -> Vec<String> {
    body["error"]["details"]
        .as_array()
        .map(|details| {
            details
                .iter()
                .map(|d| d["field"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn assert_invalid(status: u16, body: &Value, field: &str) {
    assert_eq!((status, code(body)), (422, "validation_error"), "{body}");
    assert!(
        fields(body).iter().any(|f| f == field),
        "expected a problem with {field}: {body}"
    );
}

fn seed() -> Value {
    json!({
        "product": "custom",
        "category": "vulnerability",
        "title": "SQL Injection",
        "severity": "high",
        "asset_identifier": "app.example.com",
        "likelihood": 0.8,
        "impact": 0.9,
    })
}

/// A valid finding named `title` on `asset`.
fn finding(title: &str, asset: &str) -> Value {
    json!({
        "product": "custom",
        "category": "vulnerability",
        "title": title,
        "severity": "medium",
        "asset_identifier": asset,
    })
}

fn with(mut body: Value, extra: Value) -> Value {
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

/// A server and an unlimited tenant's owner key.
async fn start(backend: &Backend) -> (Server, String) {
    let server = Server::start_admin(backend).await;
    let (_, owner) = server.create_tenant("Acme", "unlimited").await;
    (server, owner)
}

/// Issues a key with `scopes` (and `extra` fields) with `owner`.
async fn issue(server: &Server, owner: &str, scopes: &[&str], extra: Value) -> String {
    let body = with(
        json!({ "name": "ci", "principal": "ci-bot", "scopes": scopes }),
        extra,
    );
    let (status, body) = Api::new(server, owner).post("/v1/api-keys", body).await;
    assert_eq!(status, 201, "{body}");
    body["data"]["key"].as_str().unwrap().to_string()
}

fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

async fn seed_numbers(backend: &Backend) {
    let (server, owner) = start(backend).await;
    let api = Api::new(&server, &owner);

    let first = api.ingest(seed()).await;
    let first_id = id(&first);
    assert!(first_id.starts_with("fnd_"), "{first}");
    assert_score(&first["risk_score"], 72.0, "finding risk");
    assert_eq!(first["status"], "open");
    assert_eq!(first["occurrences"], 1);
    assert_eq!(first["severity"], "high");
    assert_eq!(first["environment"], "live");
    assert_eq!(first["asset"]["identifier"], "app.example.com");
    let asset_id = first["asset"]["id"].as_str().unwrap().to_string();
    assert!(asset_id.starts_with("ast_"), "{first}");

    assert_score(
        &api.read("/v1/assets/app.example.com").await["data"]["risk_score"],
        72.0,
        "asset by identifier",
    );
    let asset = api.read(&format!("/v1/assets/{asset_id}")).await;
    assert_score(&asset["data"]["risk_score"], 72.0, "asset by id");
    assert_eq!(asset["data"]["identifier"], "app.example.com");
    assert_eq!(asset["data"]["open_findings"], 1);

    let second = api
        .ingest(with(
            seed(),
            json!({ "title": "Stored XSS", "likelihood": 0.5, "impact": 0.5 }),
        ))
        .await;
    assert_score(&second["risk_score"], 25.0, "second finding");
    assert_eq!(second["asset"]["id"], asset_id.as_str(), "same asset");
    assert_score(
        &json!(api.asset_risk("app.example.com").await),
        79.0,
        "1 − (1 − 0.72)(1 − 0.25)",
    );

    let dismissed = api
        .command(
            &first_id,
            "dismiss",
            Some(json!({ "reason": "false positive" })),
        )
        .await;
    assert_eq!(dismissed["status"], "dismissed");
    assert_eq!(dismissed["status_reason"], "false positive");
    assert_score(&dismissed["risk_score"], 0.0, "dismissed finding");
    let asset = api.read(&format!("/v1/assets/{asset_id}")).await;
    assert_score(&asset["data"]["risk_score"], 25.0, "asset after dismissal");
    assert_eq!(asset["data"]["open_findings"], 1);
    assert_eq!(asset["data"]["total_findings"], 2);

    let overview = api.read("/v1/overview").await;
    let data = &overview["data"];
    assert_score(&data["risk_score"], 25.0, "overview");
    assert_eq!(data["risk_level"], "medium", "{data}");
    assert_eq!(data["findings"]["total"], 2, "{data}");
    assert_eq!(data["findings"]["open"], 1, "{data}");
    assert_eq!(data["findings"]["by_status"]["dismissed"], 1, "{data}");
    assert_eq!(data["findings"]["by_status"]["open"], 1, "{data}");
    assert_eq!(data["findings"]["by_severity"]["high"], 1, "{data}");
    assert_eq!(data["assets"]["total"], 1, "{data}");
    assert_eq!(data["assets"]["at_risk"], 1, "{data}");
    assert_eq!(data["top_assets"][0]["identifier"], "app.example.com");
    assert_eq!(data["top_assets"].as_array().unwrap().len(), 1);
}

async fn strong_reads_see_every_acknowledged_write(backend: &Backend) {
    let (server, owner) = start(backend).await;
    let api = Api::new(&server, &owner);
    for n in 1..=20 {
        let created = api
            .ingest(finding(&format!("Finding {n}"), "app.example.com"))
            .await;
        let id = id(&created);
        let (listed, meta) = api.list("").await;
        assert_eq!(meta["total"], n, "after {n} writes");
        assert!(listed.contains(&id), "write {n} ({id}) is not listed");
        let (status, body) = api
            .get(&format!("/v1/findings/{id}?consistency=strong"))
            .await;
        assert_eq!(status, 200, "write {n}: {body}");
        assert_eq!(body["data"]["id"], id.as_str());
        let asset = api.read("/v1/assets/app.example.com").await;
        assert_eq!(asset["data"]["open_findings"], n, "{asset}");
    }
}

async fn fifty_concurrent_posts_make_one_finding(backend: &Backend) {
    let (server, owner) = start(backend).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let request = server
            .http
            .clone()
            .post(server.url("/v1/findings"))
            .header("x-api-key", &owner)
            .json(&seed());
        tasks.spawn(async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        });
    }
    let mut answers = Vec::new();
    while let Some(answer) = tasks.join_next().await {
        answers.push(answer.unwrap());
    }
    let created: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, b)| b)
        .collect();
    let deduplicated = answers
        .iter()
        .filter(|(s, b)| *s == 200 && b["data"]["deduplicated"] == true)
        .count();
    assert_eq!(
        (created.len(), deduplicated),
        (1, 49),
        "statuses: {:?}",
        answers
            .iter()
            .map(|(s, b)| (s, code(b)))
            .collect::<Vec<_>>()
    );
    assert_eq!(created[0]["data"]["deduplicated"], false);
    let id = id(&created[0]["data"]);
    let distinct: BTreeSet<&str> = answers
        .iter()
        .map(|(_, b)| b["data"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(distinct, BTreeSet::from([id.as_str()]));

    let api = Api::new(&server, &owner);
    let body = api.read(&format!("/v1/findings/{id}")).await;
    assert_eq!(body["data"]["occurrences"], 50, "{body}");
    let (listed, meta) = api.list("").await;
    assert_eq!(
        (listed, meta["total"].clone()),
        (vec![id.clone()], json!(1))
    );
    let (_, history) = api.get(&format!("/v1/findings/{id}/history")).await;
    assert_eq!(history["data"].as_array().unwrap().len(), 50);
}

async fn duplicates_are_reobserved_and_remediated_findings_regress(backend: &Backend) {
    let (server, owner) = start(backend).await;
    let api = Api::new(&server, &owner);
    let created = api.ingest(seed()).await;
    let id = id(&created);

    // The same fingerprint: re-observed, not created.
    let (status, body) = api.post("/v1/findings", seed()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["deduplicated"], true);
    assert_eq!(body["data"]["id"], id.as_str());
    assert_eq!(body["data"]["occurrences"], 2);
    assert_eq!(body["data"]["fingerprint"], created["fingerprint"]);
    // The derived fingerprint ignores case and surrounding blanks.
    let (status, body) = api
        .post(
            "/v1/findings",
            with(seed(), json!({ "title": "  sql INJECTION " })),
        )
        .await;
    assert_eq!((status, body["data"]["id"].as_str()), (200, Some(&*id)));
    assert_eq!(body["data"]["occurrences"], 3);
    // Another location is another finding.
    let elsewhere = api
        .ingest(with(seed(), json!({ "location": "/login" })))
        .await;
    assert_ne!(elsewhere["id"], id.as_str());

    // An explicit fingerprint deduplicates across different titles.
    let first = api
        .ingest(with(
            finding("Scanner title A", "db.example.com"),
            json!({ "fingerprint": "scanner-42" }),
        ))
        .await;
    let (status, body) = api
        .post(
            "/v1/findings",
            with(
                finding("Scanner title B", "db.example.com"),
                json!({ "fingerprint": "scanner-42" }),
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["deduplicated"], true);
    assert_eq!(body["data"]["id"], first["id"]);
    assert_eq!(body["data"]["fingerprint"], "scanner-42");
    assert_eq!(body["data"]["occurrences"], 2);

    // Remediated, then seen again: reopened as a regression.
    let remediated = api.command(&id, "remediate", None).await;
    assert_eq!(remediated["status"], "remediated");
    assert_score(&remediated["risk_score"], 0.0, "remediated");
    let (status, body) = api.post("/v1/findings", seed()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["deduplicated"], true);
    assert_eq!(body["data"]["status"], "open");
    assert_eq!(body["data"]["occurrences"], 4);
    assert_score(&body["data"]["risk_score"], 72.0, "regressed");
    let current = api.read(&format!("/v1/findings/{id}")).await;
    assert_eq!(current["data"]["status"], "open");
    assert_eq!(current["data"]["occurrences"], 4);

    let (status, history) = api.get(&format!("/v1/findings/{id}/history")).await;
    assert_eq!(status, 200, "{history}");
    let entries = history["data"].as_array().unwrap();
    let types: Vec<&str> = entries
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "FindingIngested",
            "FindingReobserved",
            "FindingReobserved",
            "FindingRemediated",
            "FindingReobserved",
            "FindingReopened",
        ]
    );
    let reopened = entries.last().unwrap();
    assert_eq!(reopened["data"]["regression"], true, "{reopened}");
    let mut previous: Option<chrono::DateTime<Utc>> = None;
    for (n, entry) in entries.iter().enumerate() {
        assert_eq!(entry["sequence"], n + 1, "{entry}");
        assert_eq!(entry["actor"], "owner", "{entry}");
        assert_eq!(entry["actor_type"], "api_key", "{entry}");
        let at = chrono::DateTime::parse_from_rfc3339(entry["occurred_at"].as_str().unwrap())
            .unwrap()
            .with_timezone(&Utc);
        assert!(previous.is_none_or(|p| p <= at), "oldest first: {history}");
        previous = Some(at);
    }
    assert_eq!(entries[0]["data"]["details"]["title"], "SQL Injection");
}

async fn triage_transitions_over_http(backend: &Backend) {
    let (server, owner) = start(backend).await;
    let api = Api::new(&server, &owner);
    let id = id(&api.ingest(seed()).await);
    let path = |action: &str| format!("/v1/findings/{id}/{action}");

    let confirmed = api.command(&id, "confirm", None).await;
    assert_eq!(confirmed["status"], "confirmed");
    assert_score(&confirmed["risk_score"], 72.0, "confirmed still counts");
    let (status, body) = api.post_empty(&path("confirm")).await;
    assert_eq!((status, code(&body)), (409, "invalid_transition"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("confirmed"),
        "{body}"
    );

    // Accepting a risk needs a reason and an expiry within a year.
    let in_30_days = (Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    let (status, body) = api
        .post(
            &path("accept-risk"),
            json!({ "expires_at": in_30_days.clone() }),
        )
        .await;
    assert_eq!((status, code(&body)), (422, "validation_error"), "{body}");
    let (status, body) = api
        .post(
            &path("accept-risk"),
            json!({ "reason": "  ", "expires_at": in_30_days.clone() }),
        )
        .await;
    assert_invalid(status, &body, "reason");
    let too_late = (Utc::now() + chrono::Duration::days(400)).to_rfc3339();
    let (status, body) = api
        .post(
            &path("accept-risk"),
            json!({ "reason": "compensating control", "expires_at": too_late }),
        )
        .await;
    assert_invalid(status, &body, "expires_at");
    let past = (Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let (status, body) = api
        .post(
            &path("accept-risk"),
            json!({ "reason": "compensating control", "expires_at": past }),
        )
        .await;
    assert_invalid(status, &body, "expires_at");
    let (status, body) = api
        .post(
            &path("accept-risk"),
            json!({ "reason": "compensating control", "expires_at": "next month" }),
        )
        .await;
    assert_invalid(status, &body, "expires_at");
    let (status, body) = api.post_empty(&path("accept-risk")).await;
    assert_eq!((status, code(&body)), (422, "validation_error"), "{body}");
    let still = api.read(&format!("/v1/findings/{id}")).await;
    assert_eq!(
        still["data"]["status"], "confirmed",
        "refusals change nothing"
    );

    let accepted = api
        .command(
            &id,
            "accept-risk",
            Some(json!({ "reason": "compensating control", "expires_at": in_30_days })),
        )
        .await;
    assert_eq!(accepted["status"], "risk_accepted");
    assert_eq!(accepted["status_reason"], "compensating control");
    assert!(accepted["risk_accepted_until"].is_string(), "{accepted}");
    assert_score(&accepted["risk_score"], 0.0, "accepted");

    let reopened = api
        .command(&id, "reopen", Some(json!({ "reason": "control removed" })))
        .await;
    assert_eq!(reopened["status"], "open");
    assert_eq!(reopened["risk_accepted_until"], Value::Null);
    assert_score(&reopened["risk_score"], 72.0, "reopened");
    let remediated = api.command(&id, "remediate", None).await;
    assert_eq!(remediated["status"], "remediated");
    let (status, body) = api
        .post(&path("dismiss"), json!({ "reason": "noise" }))
        .await;
    assert_eq!((status, code(&body)), (409, "invalid_transition"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("remediated"),
        "{body}"
    );
    let reopened = api.command(&id, "reopen", None).await;
    assert_eq!(reopened["status"], "open");

    let assigned = api
        .command(&id, "assign", Some(json!({ "assignee": "alice" })))
        .await;
    assert_eq!(assigned["assignee"], "alice");
    let severe = api
        .command(&id, "severity", Some(json!({ "severity": "critical" })))
        .await;
    assert_eq!(severe["severity"], "critical");
    let (status, body) = api
        .post(&path("severity"), json!({ "severity": "urgent" }))
        .await;
    assert_invalid(status, &body, "severity");
    let ticketed = api
        .command(
            &id,
            "ticket",
            Some(json!({ "system": "jira", "ticket_id": "SEC-1" })),
        )
        .await;
    assert_eq!(ticketed["tickets"][0]["system"], "jira");
    assert_eq!(ticketed["tickets"][0]["ticket_id"], "SEC-1");
    // Linking the same ticket again changes nothing.
    let again = api
        .command(
            &id,
            "ticket",
            Some(json!({ "system": "jira", "ticket_id": "SEC-1" })),
        )
        .await;
    assert_eq!(again["tickets"].as_array().unwrap().len(), 1);
    assert_eq!(again["version"], ticketed["version"]);
    let commented = api
        .command(&id, "comments", Some(json!({ "body": "looks real" })))
        .await;
    assert_eq!(commented["comments"][0]["author"], "owner");
    assert_eq!(commented["comments"][0]["body"], "looks real");
    let (status, body) = api.post(&path("comments"), json!({ "body": "" })).await;
    assert_invalid(status, &body, "body");

    // The read model agrees with the command responses.
    let read = api.read(&format!("/v1/findings/{id}")).await["data"].clone();
    for field in [
        "status", "assignee", "severity", "tickets", "comments", "version",
    ] {
        assert_eq!(read[field], commented[field], "{field}");
    }

    let unknown = format!("fnd_{}", "0".repeat(32));
    let (status, body) = api
        .get(&format!("/v1/findings/{unknown}?consistency=strong"))
        .await;
    assert_eq!((status, code(&body)), (404, "not_found"), "{body}");
    let (status, body) = api
        .post_empty(&format!("/v1/findings/{unknown}/confirm"))
        .await;
    assert_eq!((status, code(&body)), (404, "not_found"), "{body}");
    let (status, _) = api.get(&format!("/v1/findings/{unknown}/history")).await;
    assert_eq!(status, 404);
    let (status, _) = api.post_empty("/v1/findings/nonsense/confirm").await;
    assert_eq!(status, 404);

    // If-Match: a wrong version is refused and changes nothing; the ETag
    // of the previous response is accepted.
    let (status, etag, body) = send(
        server
            .http
            .get(server.url(&format!("/v1/findings/{id}?consistency=strong")))
            .header("x-api-key", &owner),
    )
    .await;
    assert_eq!(status, 200);
    let etag = etag.expect("GET carries an ETag");
    assert_eq!(etag, format!("\"{}\"", body["data"]["version"]));
    let assign = |if_match: &str, assignee: &str| {
        server
            .http
            .post(server.url(&path("assign")))
            .header("x-api-key", &owner)
            .header("if-match", if_match)
            .json(&json!({ "assignee": assignee }))
    };
    let (status, _, body) = send(assign("\"1\"", "bob")).await;
    assert_eq!(
        (status, code(&body)),
        (412, "precondition_failed"),
        "{body}"
    );
    let (status, _, body) = send(assign("not-an-etag", "bob")).await;
    assert_eq!(
        (status, code(&body)),
        (412, "precondition_failed"),
        "{body}"
    );
    let (status, next_etag, body) = send(assign(&etag, "bob")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["assignee"], "bob");
    let next_etag = next_etag.unwrap();
    assert_ne!(next_etag, etag);
    let (status, _, body) = send(assign(&etag, "carol")).await;
    assert_eq!((status, code(&body)), (412, "precondition_failed"), "stale");
    let (status, _, body) = send(assign(&next_etag, "carol")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["assignee"], "carol");
}

/// The findings of `filters_sorts_and_pages`, by their number (1-based).
struct Known {
    ids: Vec<String>,
}

impl Known {
    fn of(&self, numbers: &[usize]) -> BTreeSet<String> {
        numbers.iter().map(|n| self.ids[n - 1].clone()).collect()
    }

    fn ordered(&self, numbers: &[usize]) -> Vec<String> {
        numbers.iter().map(|n| self.ids[n - 1].clone()).collect()
    }
}

async fn filters_sorts_and_pages(backend: &Backend) {
    let (server, owner) = start(backend).await;
    let api = Api::new(&server, &owner);
    #[rustfmt::skip]
    let items = [
        ("Alpha SQL injection", "scanner-a", "vulnerability", "critical", "web.example.com", Some("CVE-2024-1234"), vec!["PCI", "web"], "Found in the login form", 0.9, 1.0),
        ("Bravo reflected XSS", "scanner-a", "vulnerability", "high", "web.example.com", None, vec!["web"], "Reflected input", 0.7, 0.8),
        ("Charlie open port", "scanner-b", "misconfiguration", "medium", "db.example.com", None, vec!["network"], "Port 5432 exposed", 0.5, 0.5),
        ("Delta weak TLS", "scanner-b", "misconfiguration", "low", "db.example.com", None, vec![], "TLS 1.0 enabled", 0.3, 0.2),
        ("Echo outdated library", "scanner-c", "dependency", "high", "api.example.com", Some("cve-2024-1234"), vec!["pci"], "Bundles a library with a known Sql Injection", 0.6, 0.5),
        ("Foxtrot info leak", "scanner-c", "dependency", "info", "api.example.com", None, vec![], "", 0.1, 0.1),
    ];
    let mut known = Known { ids: Vec::new() };
    let mut web_asset = String::new();
    let mut middle = String::new();
    for (n, (title, product, category, severity, asset, cve, tags, description, l, i)) in
        items.into_iter().enumerate()
    {
        if n == 3 {
            tokio::time::sleep(Duration::from_millis(30)).await;
            middle = now_text();
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        let data = api
            .ingest(json!({
                "product": product, "category": category, "title": title,
                "severity": severity, "asset_identifier": asset, "cve": cve,
                "tags": tags, "description": description, "likelihood": l, "impact": i,
            }))
            .await;
        if n == 0 {
            web_asset = data["asset"]["id"].as_str().unwrap().to_string();
            assert_eq!(data["cve"], "CVE-2024-1234");
            assert_eq!(data["tags"], json!(["pci", "web"]), "lower-cased, sorted");
        }
        known.ids.push(id(&data));
    }
    // Triage, in this order, so updated_at is 1, 6, 2, 5, 3, 4.
    api.command(
        &known.ids[1],
        "assign",
        Some(json!({ "assignee": "alice" })),
    )
    .await;
    api.command(&known.ids[4], "assign", Some(json!({ "assignee": "bob" })))
        .await;
    api.command(&known.ids[2], "dismiss", Some(json!({ "reason": "noise" })))
        .await;
    api.command(&known.ids[3], "confirm", None).await;

    let filters: Vec<(String, &[usize])> = vec![
        ("product=scanner-b".into(), &[3, 4]),
        ("category=dependency".into(), &[5, 6]),
        ("severity=critical,high".into(), &[1, 2, 5]),
        ("severity=info".into(), &[6]),
        ("status=dismissed,confirmed".into(), &[3, 4]),
        ("status=open".into(), &[1, 2, 5, 6]),
        ("asset=web.example.com".into(), &[1, 2]),
        (format!("asset={web_asset}"), &[1, 2]),
        ("asset=nowhere.example.com".into(), &[]),
        ("cve=CVE-2024-1234".into(), &[1, 5]),
        ("cve=cve-2024-1234".into(), &[1, 5]),
        ("assignee=alice".into(), &[2]),
        ("tag=pci".into(), &[1, 5]),
        ("tag=PCI".into(), &[1, 5]),
        ("tag=web".into(), &[1, 2]),
        ("tag=we".into(), &[]),
        ("search=sql".into(), &[1, 5]),
        ("search=SQL%20INJECTION".into(), &[1, 5]),
        ("search=port%205432".into(), &[3]),
        ("search=%25".into(), &[]),
        (format!("created_after={middle}"), &[4, 5, 6]),
        (format!("created_before={middle}"), &[1, 2, 3]),
        ("min_risk=26".into(), &[1, 2, 5]),
        ("min_risk=50".into(), &[1, 2]),
        ("min_risk=0".into(), &[1, 2, 3, 4, 5, 6]),
        ("product=scanner-a&severity=high".into(), &[2]),
        ("status=open&tag=pci&min_risk=50".into(), &[1]),
    ];
    for (query, expected) in filters {
        let (listed, meta) = api.list(&query).await;
        assert_eq!(
            listed.iter().cloned().collect::<BTreeSet<_>>(),
            known.of(expected),
            "{query}"
        );
        assert_eq!(listed.len(), expected.len(), "{query}: no duplicates");
        assert_eq!(meta["total"], expected.len(), "{query}");
    }
    // created_after with an offset, its '+' encoded.
    let offset = chrono::DateTime::parse_from_rfc3339(&middle)
        .unwrap()
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap())
        .to_rfc3339();
    assert!(offset.contains("+02:00"));
    let (listed, _) = api
        .list(&format!(
            "created_after={}",
            offset.replace(':', "%3A").replace('+', "%2B")
        ))
        .await;
    assert_eq!(
        listed.into_iter().collect::<BTreeSet<_>>(),
        known.of(&[4, 5, 6])
    );

    // Sorts; ties (two highs) are broken by id in the same direction.
    let mut highs = known.ordered(&[2, 5]);
    highs.sort();
    let by_severity_desc: Vec<String> = [known.ids[0].clone()]
        .into_iter()
        .chain(highs.iter().rev().cloned())
        .chain(known.ordered(&[3, 4, 6]))
        .collect();
    let sorts: Vec<(&str, Vec<String>)> = vec![
        ("created_at", known.ordered(&[1, 2, 3, 4, 5, 6])),
        ("updated_at", known.ordered(&[1, 6, 2, 5, 3, 4])),
        ("risk", known.ordered(&[3, 6, 4, 5, 2, 1])),
        ("title", known.ordered(&[1, 2, 3, 4, 5, 6])),
        ("severity", by_severity_desc.into_iter().rev().collect()),
    ];
    for (sort, ascending) in sorts {
        let (listed, _) = api.list(&format!("sort={sort}&order=asc")).await;
        assert_eq!(listed, ascending, "sort={sort}&order=asc");
        let (listed, _) = api.list(&format!("sort={sort}&order=desc")).await;
        let descending: Vec<String> = ascending.iter().rev().cloned().collect();
        assert_eq!(listed, descending, "sort={sort}&order=desc");
    }
    let (listed, _) = api.list("").await;
    assert_eq!(
        listed,
        known.ordered(&[6, 5, 4, 3, 2, 1]),
        "newest first by default"
    );
    let body = api.read("/v1/findings?sort=risk&order=desc").await;
    let risks: Vec<f64> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| score(&f["risk_score"]))
        .collect();
    assert_eq!(risks, [90.0, 56.0, 30.0, 6.0, 1.0, 0.0]);

    // Pages.
    let page = api
        .read("/v1/findings?sort=created_at&order=asc&per_page=2&page=2")
        .await;
    assert_eq!(ids(&page["data"]), known.ordered(&[3, 4]));
    let meta = &page["meta"];
    assert_eq!(
        (
            &meta["page"],
            &meta["per_page"],
            &meta["total"],
            &meta["pages"]
        ),
        (&json!(2), &json!(2), &json!(6), &json!(3)),
        "{meta}"
    );
    let last = api
        .read("/v1/findings?sort=created_at&order=asc&per_page=4&page=2")
        .await;
    assert_eq!(ids(&last["data"]), known.ordered(&[5, 6]));
    assert_eq!(last["meta"]["total"], 6);
    assert_eq!(last["meta"]["pages"], 2);
    let beyond = api.read("/v1/findings?per_page=2&page=9").await;
    assert_eq!(beyond["data"], json!([]));
    assert_eq!(beyond["meta"]["total"], 6);
    let default = api.read("/v1/findings").await;
    assert_eq!(default["meta"]["per_page"], 50);
    assert_eq!(default["meta"]["page"], 1);
    assert_eq!(default["meta"]["pages"], 1);

    // Bad parameters.
    let bad = [
        ("per_page=101", "per_page"),
        ("per_page=0", "per_page"),
        ("page=0", "page"),
        ("page=x", "page"),
        ("severity=urgent", "severity"),
        ("severity=high,urgent", "severity"),
        ("status=closed", "status"),
        ("sort=priority", "sort"),
        ("order=up", "order"),
        ("min_risk=101", "min_risk"),
        ("min_risk=lots", "min_risk"),
        ("created_after=yesterday", "created_after"),
        ("created_before=2024-13-01T00:00:00Z", "created_before"),
        ("colour=red", "query"),
        ("consistency=perfect", "consistency"),
    ];
    for (query, field) in bad {
        let (status, body) = api.get(&format!("/v1/findings?{query}")).await;
        assert_invalid(status, &body, field);
        assert_eq!(body["success"], false);
    }
}

async fn bulk_ingest_keeps_the_good_items(backend: &Backend) {
    let (server, owner) = start(backend).await;
    let api = Api::new(&server, &owner);
    let items: Vec<Value> = (0..1000)
        .map(|n| {
            with(
                finding(
                    &format!("Bulk finding {n}"),
                    &format!("host-{}.example.com", n % 10),
                ),
                json!({ "likelihood": 0.1, "impact": 0.1 }),
            )
        })
        .collect();
    let (status, body) = api
        .post("/v1/findings/bulk", json!({ "findings": items }))
        .await;
    assert_eq!(
        status,
        200,
        "{}",
        &body.to_string()[..500.min(body.to_string().len())]
    );
    let data = &body["data"];
    assert_eq!(
        (&data["created"], &data["deduplicated"], &data["failed"]),
        (&json!(1000), &json!(0), &json!(0))
    );
    let results = data["results"].as_array().unwrap();
    assert_eq!(results.len(), 1000);
    for (n, result) in results.iter().enumerate() {
        assert_eq!(result["index"], n);
        assert_eq!(result["status"], "created", "{result}");
        assert!(result["id"].as_str().unwrap().starts_with("fnd_"));
    }
    let distinct: BTreeSet<&str> = results.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(distinct.len(), 1000);
    let first_id = results[0]["id"].as_str().unwrap().to_string();
    let (_, meta) = api
        .list("status=open,confirmed,dismissed,risk_accepted,remediated")
        .await;
    assert_eq!(meta["total"], 1000);
    assert_eq!(meta["pages"], 10);
    let assets = api.read("/v1/assets").await;
    assert_eq!(assets["meta"]["total"], 10);
    assert_eq!(assets["data"][0]["open_findings"], 100);

    // A mix: each item stands alone.
    let mix = json!({ "findings": [
        finding("Mixed good one", "mix.example.com"),
        with(finding("Urgent", "mix.example.com"), json!({ "severity": "urgent" })),
        { "product": "custom", "category": "vulnerability", "severity": "low", "asset_identifier": "mix.example.com" },
        with(finding("Too likely", "mix.example.com"), json!({ "likelihood": 2 })),
        with(finding("Bulk finding 0", "host-0.example.com"), json!({ "likelihood": 0.1, "impact": 0.1 })),
        "not an object",
        with(finding("  ", "mix.example.com"), json!({})),
        finding("Mixed good two", "mix.example.com"),
    ]});
    let (status, body) = api.post("/v1/findings/bulk", mix).await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    let statuses: Vec<&str> = data["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "created",
            "failed",
            "failed",
            "failed",
            "deduplicated",
            "failed",
            "failed",
            "created"
        ],
        "{body}"
    );
    assert_eq!(
        (&data["created"], &data["deduplicated"], &data["failed"]),
        (&json!(2), &json!(1), &json!(5))
    );
    let results = &data["results"];
    assert_eq!(results[4]["id"], first_id.as_str());
    for (index, field) in [(1, "severity"), (3, "likelihood"), (6, "title")] {
        let error = &results[index]["error"];
        assert_eq!(error["code"], "validation_error", "{error}");
        assert!(
            error["details"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["field"] == field),
            "item {index} names {field}: {error}"
        );
        assert_eq!(results[index]["id"], Value::Null);
    }
    for index in [2, 5] {
        assert_eq!(
            results[index]["error"]["code"], "validation_error",
            "{}",
            results[index]
        );
    }
    let (_, meta) = api
        .list("status=open,confirmed,dismissed,risk_accepted,remediated")
        .await;
    assert_eq!(meta["total"], 1002);
    let (listed, _) = api.list("asset=mix.example.com").await;
    assert_eq!(
        listed.into_iter().collect::<BTreeSet<_>>(),
        BTreeSet::from([
            results[0]["id"].as_str().unwrap().to_string(),
            results[7]["id"].as_str().unwrap().to_string()
        ])
    );
    let first = api.read(&format!("/v1/findings/{first_id}")).await;
    assert_eq!(first["data"]["occurrences"], 2);

    // The list's size is checked.
    let (status, body) = api
        .post("/v1/findings/bulk", json!({ "findings": [] }))
        .await;
    assert_invalid(status, &body, "findings");
    let too_many: Vec<Value> = (0..1001)
        .map(|n| finding(&format!("Over the limit {n}"), "over.example.com"))
        .collect();
    let (status, body) = api
        .post("/v1/findings/bulk", json!({ "findings": too_many }))
        .await;
    assert_invalid(status, &body, "findings");
    let (status, body) = api.post("/v1/findings/bulk", json!({})).await;
    assert_eq!((status, code(&body)), (422, "validation_error"), "{body}");
    let (_, meta) = api
        .list("status=open,confirmed,dismissed,risk_accepted,remediated")
        .await;
    assert_eq!(meta["total"], 1002, "refused bulks ingest nothing");
}

async fn scopes_and_isolation(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (_, owner_a) = server.create_tenant("A", "unlimited").await;
    let (_, owner_b) = server.create_tenant("B", "unlimited").await;
    let a = Api::new(&server, &owner_a);
    let b = Api::new(&server, &owner_b);
    let live = a.ingest(seed()).await;
    let live_id = id(&live);
    a.ingest(finding("Second live finding", "app.example.com"))
        .await;

    // A read-only key reads, but cannot write.
    let reader = Api::new(
        &server,
        &issue(&server, &owner_a, &["findings:read"], json!({})).await,
    );
    let got = reader.read(&format!("/v1/findings/{live_id}")).await;
    assert_eq!(got["data"]["id"], live_id.as_str());
    let (status, body) = reader.post("/v1/findings", seed()).await;
    assert_eq!((status, code(&body)), (403, "forbidden"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("findings:write"),
        "{body}"
    );
    let (status, body) = reader
        .post(
            &format!("/v1/findings/{live_id}/dismiss"),
            json!({ "reason": "x" }),
        )
        .await;
    assert_eq!((status, code(&body)), (403, "forbidden"), "{body}");
    let (status, _) = reader
        .post("/v1/findings/bulk", json!({ "findings": [seed()] }))
        .await;
    assert_eq!(status, 403);
    let (status, _) = reader.post("/v1/risk/recalculate", json!({})).await;
    assert_eq!(status, 403);
    let (status, body) = reader
        .post("/v1/risk/recalculate", json!({ "dry_run": true }))
        .await;
    assert_eq!(status, 200, "a dry run only reads: {body}");
    // A write-only key cannot read.
    let writer = Api::new(
        &server,
        &issue(&server, &owner_a, &["findings:write"], json!({})).await,
    );
    let (status, body) = writer.get("/v1/findings").await;
    assert_eq!((status, code(&body)), (403, "forbidden"), "{body}");

    // Another tenant sees nothing of A's.
    let (status, body) = b
        .get(&format!("/v1/findings/{live_id}?consistency=strong"))
        .await;
    assert_eq!((status, code(&body)), (404, "not_found"), "{body}");
    let (status, _) = b.get(&format!("/v1/findings/{live_id}/history")).await;
    assert_eq!(status, 404);
    for (action, body) in [
        ("confirm", None),
        ("dismiss", Some(json!({ "reason": "not mine" }))),
        ("assign", Some(json!({ "assignee": "mallory" }))),
        ("comments", Some(json!({ "body": "hello" }))),
    ] {
        let path = format!("/v1/findings/{live_id}/{action}");
        let (status, response) = match body {
            Some(body) => b.post(&path, body).await,
            None => b.post_empty(&path).await,
        };
        assert_eq!((status, code(&response)), (404, "not_found"), "{action}");
    }
    let (status, _) = b.get("/v1/assets/app.example.com?consistency=strong").await;
    assert_eq!(status, 404);
    let (listed, meta) = b.list("").await;
    assert_eq!((listed.len(), meta["total"].clone()), (0, json!(0)));
    let theirs = b.ingest(seed()).await;
    assert_ne!(theirs["id"], live_id.as_str(), "ids are per tenant");
    assert_ne!(theirs["asset"]["id"], live["asset"]["id"]);
    let untouched = a.read(&format!("/v1/findings/{live_id}")).await;
    assert_eq!(untouched["data"]["status"], "open");
    assert_eq!(untouched["data"]["occurrences"], 1);
    assert!(untouched["data"]["assignee"].is_null());

    // The sandbox and live data never mix.
    let sandbox = Api::new(
        &server,
        &issue(
            &server,
            &owner_a,
            &["findings:read", "findings:write"],
            json!({ "environment": "test" }),
        )
        .await,
    );
    let (listed, meta) = sandbox.list("").await;
    assert_eq!((listed.len(), meta["total"].clone()), (0, json!(0)));
    let (status, _) = sandbox
        .get(&format!("/v1/findings/{live_id}?consistency=strong"))
        .await;
    assert_eq!(status, 404);
    let (status, _) = sandbox
        .post_empty(&format!("/v1/findings/{live_id}/confirm"))
        .await;
    assert_eq!(status, 404);
    let test = sandbox.ingest(seed()).await;
    let test_id = id(&test);
    assert_eq!(test["environment"], "test");
    assert_ne!(test_id, live_id, "not deduplicated against live data");
    let (listed, _) = sandbox.list("").await;
    assert_eq!(listed, std::slice::from_ref(&test_id));
    let (status, _) = a
        .get(&format!("/v1/findings/{test_id}?consistency=strong"))
        .await;
    assert_eq!(status, 404);
    let (status, _) = a.get(&format!("/v1/findings/{test_id}/history")).await;
    assert_eq!(status, 404);
    let (status, _) = a
        .post(
            &format!("/v1/findings/{test_id}/dismiss"),
            json!({ "reason": "x" }),
        )
        .await;
    assert_eq!(status, 404);
    let (_, meta) = a.list("").await;
    assert_eq!(meta["total"], 2);

    let sandbox_overview = sandbox.read("/v1/overview").await;
    let data = &sandbox_overview["data"];
    assert_eq!(data["findings"]["total"], 1, "{data}");
    assert_eq!(data["assets"]["total"], 1, "{data}");
    assert_score(&data["risk_score"], 72.0, "sandbox risk");
    let live_overview = a.read("/v1/overview").await;
    assert_eq!(live_overview["data"]["findings"]["total"], 2);
    let b_overview = b.read("/v1/overview").await;
    assert_eq!(b_overview["data"]["findings"]["total"], 1);
    let sandbox_timeline = sandbox.read("/v1/timeline").await;
    let entries = sandbox_timeline["data"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{sandbox_timeline}");
    assert_eq!(entries[0]["finding_id"], test_id.as_str());
}

async fn timeline_and_recalculate(backend: &Backend) {
    let (server, owner) = start(backend).await;
    let api = Api::new(&server, &owner);
    let a = api.ingest(seed()).await;
    let a_id = id(&a);
    let b = api
        .ingest(with(
            finding("Open admin panel", "admin.example.com"),
            json!({ "likelihood": 0.5, "impact": 0.4 }),
        ))
        .await;
    let b_id = id(&b);
    let b_asset = b["asset"]["id"].as_str().unwrap().to_string();
    api.command(&a_id, "confirm", None).await;
    api.command(&b_id, "assign", Some(json!({ "assignee": "alice" })))
        .await;
    api.command(
        &a_id,
        "dismiss",
        Some(json!({ "reason": "false positive" })),
    )
    .await;

    let full = api.read("/v1/timeline").await;
    let all = full["data"].as_array().unwrap().clone();
    let summary: Vec<(&str, &str)> = all
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap(),
                e["finding_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("FindingDismissed", a_id.as_str()),
            ("FindingAssigned", b_id.as_str()),
            ("FindingConfirmed", a_id.as_str()),
            ("FindingIngested", b_id.as_str()),
            ("FindingIngested", a_id.as_str()),
        ],
        "newest first"
    );
    assert_eq!(full["meta"]["next_cursor"], Value::Null);
    for entry in &all {
        assert_eq!(entry["actor"], "owner", "{entry}");
        assert_eq!(entry["actor_type"], "api_key", "{entry}");
        assert!(entry["asset_id"].as_str().unwrap().starts_with("ast_"));
        assert!(
            chrono::DateTime::parse_from_rfc3339(entry["occurred_at"].as_str().unwrap()).is_ok()
        );
        assert!(!entry["summary"].as_str().unwrap().is_empty(), "{entry}");
    }
    assert!(
        all[0]["summary"]
            .as_str()
            .unwrap()
            .contains("SQL Injection"),
        "{}",
        all[0]
    );
    assert!(all[1]["summary"].as_str().unwrap().contains("alice"));

    // Pages of two, following the cursor.
    let mut seen: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/timeline?limit=2&cursor={c}"),
            None => "/v1/timeline?limit=2".to_string(),
        };
        let page = api.read(&path).await;
        let entries = page["data"].as_array().unwrap();
        pages += 1;
        assert!(
            entries.len() == 2 || page["meta"]["next_cursor"].is_null(),
            "{page}"
        );
        seen.extend(entries.iter().cloned());
        match page["meta"]["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
        assert!(pages < 10, "the cursor never ends");
    }
    assert_eq!(pages, 3);
    assert_eq!(ids(&Value::Array(seen)), ids(&Value::Array(all.clone())));

    // Filters.
    let types = |body: &Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect()
    };
    let only_a = api.read(&format!("/v1/timeline?finding={a_id}")).await;
    assert_eq!(
        types(&only_a),
        ["FindingDismissed", "FindingConfirmed", "FindingIngested"]
    );
    for asset in [b_asset.as_str(), "admin.example.com"] {
        let only_b = api.read(&format!("/v1/timeline?asset={asset}")).await;
        assert_eq!(
            types(&only_b),
            ["FindingAssigned", "FindingIngested"],
            "{asset}"
        );
    }
    let ingests = api.read("/v1/timeline?types=FindingIngested").await;
    assert_eq!(types(&ingests), ["FindingIngested", "FindingIngested"]);
    let two = api
        .read("/v1/timeline?types=FindingIngested,FindingDismissed")
        .await;
    assert_eq!(
        types(&two),
        ["FindingDismissed", "FindingIngested", "FindingIngested"]
    );
    for (query, field) in [
        ("limit=201", "limit"),
        ("limit=0", "limit"),
        ("days=0", "days"),
        ("cursor=zz", "cursor"),
        ("colour=red", "query"),
    ] {
        let (status, body) = api.get(&format!("/v1/timeline?{query}")).await;
        assert_invalid(status, &body, field);
    }
    let (status, _) = api
        .get("/v1/timeline?asset=nowhere.example.com&consistency=strong")
        .await;
    assert_eq!(status, 404);

    // Recalculation: a dry run records nothing; a real one is on the timeline.
    let (status, body) = api
        .post("/v1/risk/recalculate", json!({ "dry_run": true }))
        .await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["dry_run"], true);
    assert_score(&data["previous"], 20.0, "previous");
    assert_score(&data["recalculated"], 20.0, "recalculated");
    assert!(score(&data["drift"]).abs() < 1e-6, "{data}");
    assert_eq!(
        (&data["findings_counted"], &data["assets_counted"]),
        (&json!(1), &json!(1))
    );
    let recalculations = api.read("/v1/timeline?types=RiskScoreRecalculated").await;
    assert_eq!(types(&recalculations), Vec::<String>::new());
    // No body is no recalculation (issue 12): the command must say so.
    let (status, body) = api.post_empty("/v1/risk/recalculate").await;
    assert_eq!((status, code(&body)), (422, "validation_error"), "{body}");
    let (status, body) = api
        .post("/v1/risk/recalculate", json!({ "dry_run": false }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["dry_run"], false);
    assert_score(&body["data"]["recalculated"], 20.0, "recalculated");
    let recalculations = api.read("/v1/timeline?types=RiskScoreRecalculated").await;
    assert_eq!(types(&recalculations), ["RiskScoreRecalculated"]);
    let entry = &recalculations["data"][0];
    assert_eq!(entry["actor"], "owner");
    assert_eq!(entry["finding_id"], Value::Null);
    let latest = api.read("/v1/timeline?limit=1").await;
    assert_eq!(types(&latest), ["RiskScoreRecalculated"]);
    let overview = api.read("/v1/overview").await;
    assert_score(&overview["data"]["risk_score"], 20.0, "overview");

    let history = api.read("/v1/risk/history?days=7").await;
    let points = history["data"].as_array().unwrap();
    assert_eq!(points.len(), 7, "{history}");
    let today = Utc::now().date_naive();
    for (n, point) in points.iter().enumerate() {
        let expected = today - chrono::Duration::days(6 - n as i64);
        assert_eq!(point["date"], expected.to_string(), "{history}");
    }
    let last = points.last().unwrap();
    assert_score(&last["risk_score"], 20.0, "today");
    assert_eq!(last["risk_level"], "low");
    assert_score(&points[0]["risk_score"], 0.0, "before the first finding");
    let (status, body) = api.get("/v1/risk/history?days=366").await;
    assert_invalid(status, &body, "days");
}

async fn the_timeline_orders_one_commands_events_by_sequence(backend: &Backend) {
    let (server, owner) = start(backend).await;
    let api = Api::new(&server, &owner);
    let id = id(&api.ingest(seed()).await);
    for n in 0..6 {
        api.command(
            &id,
            "comments",
            Some(json!({ "body": format!("note {n}") })),
        )
        .await;
    }
    api.command(&id, "remediate", None).await;
    // Seen again: FindingReobserved (9) and FindingReopened (10), one command.
    let (status, body) = api.post("/v1/findings", seed()).await;
    assert_eq!((status, body["data"]["version"].as_i64()), (200, Some(10)));
    let page = api
        .read(&format!("/v1/timeline?finding={id}&limit=3"))
        .await;
    let types: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["FindingReopened", "FindingReobserved", "FindingRemediated"],
        "newest first: {page}"
    );
}

async fn min_risk_matches_the_risk_score_shown(backend: &Backend) {
    let (server, owner) = start(backend).await;
    let api = Api::new(&server, &owner);
    let created = api
        .ingest(with(
            finding("Rounding", "round.example.com"),
            json!({ "likelihood": 0.29, "impact": 1.0 }),
        ))
        .await;
    assert_eq!(score(&created["risk_score"]), 29.0);
    let (listed, _) = api.list("min_risk=29").await;
    assert_eq!(listed, [id(&created)], "shown as 29, so at least 29");
}

async fn an_asset_identifier_may_start_with_ast(backend: &Backend) {
    let (server, owner) = start(backend).await;
    let api = Api::new(&server, &owner);
    let created = api.ingest(finding("Prefix", "ast_build_server")).await;
    let asset = api.read("/v1/assets/ast_build_server").await;
    assert_eq!(asset["data"]["id"], created["asset"]["id"]);
    let (listed, _) = api.list("asset=ast_build_server").await;
    assert_eq!(listed, [id(&created)]);
}

/// `palisade projections rebuild findings` gives the same findings, assets
/// and overview as the live projection did. The whole feed is one batch,
/// so the batch prefetch serves first events, later events, and events
/// after a recalculation (which flushes mid-batch).
async fn a_rebuild_reproduces_the_views(backend: &Backend) {
    let (mut server, owner) = start(backend).await;
    let api = Api::new(&server, &owner);
    let mut ids = Vec::new();
    for (n, asset) in [
        "a.example",
        "b.example",
        "a.example",
        "c.example",
        "b.example",
    ]
    .iter()
    .enumerate()
    {
        let body = with(
            finding(&format!("Finding {n}"), asset),
            json!({ "likelihood": 0.2 * (n as f64 + 1.0), "impact": 0.5 }),
        );
        ids.push(id(&api.ingest(body).await));
    }
    api.command(&ids[0], "confirm", None).await;
    api.command(&ids[1], "assign", Some(json!({ "assignee": "alice" })))
        .await;
    let (status, body) = api.post("/v1/risk/recalculate", json!({})).await;
    assert!(status < 300, "{status} {body}");
    api.command(
        &ids[2],
        "dismiss",
        Some(json!({ "reason": "false positive" })),
    )
    .await;
    api.command(&ids[0], "remediate", None).await;
    let (status, body) = api
        .post(
            "/v1/findings",
            with(finding("Finding 1", "b.example"), json!({})),
        )
        .await;
    assert_eq!(status, 200, "a re-observation: {body}");
    let paths = [
        "/v1/findings?per_page=100&sort=created_at",
        "/v1/assets?per_page=100",
        "/v1/overview",
    ];
    let mut before = Vec::new();
    for path in paths {
        before.push(api.read(path).await["data"].clone());
    }
    server.signal("TERM");
    server.wait(Duration::from_secs(30)).await;

    backend
        .run_cli(&["projections", "rebuild", "findings"])
        .await;

    let server = Server::start_admin(backend).await;
    let api = Api::new(&server, &owner);
    for (path, before) in paths.iter().zip(before) {
        assert_eq!(api.read(path).await["data"], before, "{path}");
    }
}

/// `palisade projections rebuild findings` while the server runs (two
/// replicas on PostgreSQL) rebuilds the view with no restart and no new
/// event: the replica that runs the projection sees the rewind, and every
/// replica's status reaches lag 0 with the findings back.
async fn a_rebuild_against_running_servers_completes(backend: &Backend) {
    let (server, owner) = start(backend).await;
    let second = match backend.kind() {
        "postgres" => Some(Server::start_admin(backend).await),
        _ => None,
    };
    let api = Api::new(&server, &owner);
    for n in 0..3 {
        api.ingest(finding(&format!("Finding {n}"), "a.example"))
            .await;
    }
    let output = backend
        .run_cli(&["projections", "rebuild", "findings"])
        .await;
    let output = String::from_utf8_lossy(&output);
    assert!(output.contains("findings"), "{output}");
    let replicas: Vec<&Server> = std::iter::once(&server).chain(second.as_ref()).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for replica in replicas {
        loop {
            let (status, body) = replica.admin_get("/v1/admin/projections").await;
            assert_eq!(status, 200, "{body}");
            let findings = body["data"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == "findings")
                .unwrap()
                .clone();
            let listed = Api::new(replica, &owner)
                .read("/v1/findings?per_page=10")
                .await;
            if findings["lag_events"] == 0
                && findings["checkpoint"] == findings["head"]
                && listed["meta"]["total"] == 3
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the rebuild did not complete within 30 s: {findings}; listed {}\nlog:\n{}",
                listed["meta"],
                replica.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A list counts its matches up to 10,000: above that `meta.total` is
/// 10,000 with `total_exact: false` (and `pages` follows it); a filtered
/// list under the cap is exact. GraphQL says the same, and a full page
/// past the counted total still has a next page.
async fn counts_stop_at_ten_thousand(backend: &Backend) {
    let (server, owner) = start(backend).await;
    let api = Api::new(&server, &owner);
    for batch in 0..11 {
        let items: Vec<Value> = (0..1000)
            .map(|n| {
                let n = batch * 1000 + n;
                let severity = if n < 5 { "high" } else { "medium" };
                with(
                    finding(&format!("Counted {n}"), &format!("host-{}.example", n % 50)),
                    json!({ "severity": severity }),
                )
            })
            .collect();
        let (status, body) = api
            .post("/v1/findings/bulk", json!({ "findings": items }))
            .await;
        assert_eq!(status, 200, "{}", body["data"]["failed"]);
        assert_eq!(body["data"]["failed"], 0);
    }
    let all = api.read("/v1/findings?per_page=10").await;
    assert_eq!(all["meta"]["total"], 10_000, "{}", all["meta"]);
    assert_eq!(all["meta"]["total_exact"], false, "{}", all["meta"]);
    assert_eq!(all["meta"]["pages"], 1_000, "{}", all["meta"]);
    let high = api
        .read("/v1/findings?per_page=2&severity=high&page=2")
        .await;
    assert_eq!(high["meta"]["total"], 5, "{}", high["meta"]);
    assert_eq!(high["meta"]["total_exact"], true, "{}", high["meta"]);
    let (status, body) = server
        .call(
            Method::POST,
            "/graphql",
            Auth::ApiKey(&owner),
            Some(json!({"query": "{ findings(first: 10, after: \"9994\") { totalCount totalExact pageInfo { hasNextPage } } }"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let findings = &body["data"]["findings"];
    assert_eq!(findings["totalCount"], 10_000, "{body}");
    assert_eq!(findings["totalExact"], false, "{body}");
    assert_eq!(findings["pageInfo"]["hasNextPage"], true, "{body}");
}
