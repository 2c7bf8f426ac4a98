//! Black-box tests of KMS analytics and crypto agility (`/v1/kms`), on both
//! stores: usage buckets sum to the operations performed, per application
//! and per key; the algorithm inventory and post-quantum adoption match
//! the keys created; an alert rule triggers once per window, reaches the
//! audit trail and is acknowledged once; migration plans count the keys
//! replaced, move through their states, score readiness, and make
//! quantum-vulnerable keys findings while active.
#![allow(clippy::unwrap_used)]

use chrono::Utc;
use palisade_tests::{on_both_stores, Auth, Backend, Server};
use reqwest::Method;
use serde_json::{json, Value};

on_both_stores!(
    usage_analytics_sum_to_the_operations_performed,
    crypto_agility_counts_the_keys_by_policy,
    an_alert_rule_triggers_once_and_is_acknowledged_once,
    migration_plans_count_replacements_and_feed_the_findings
);

async fn call(
    server: &Server,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    application: &str,
) -> (u16, Value) {
    server
        .call_with_headers(
            method,
            path,
            Auth::ApiKey(key),
            &[("x-palisade-application", application)],
            body,
        )
        .await
}

async fn create(server: &Server, key: &str, name: &str, algorithm: &str) {
    let (status, body) = call(
        server,
        key,
        Method::POST,
        "/v1/keys",
        Some(json!({ "name": name, "algorithm": algorithm })),
        "setup",
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

async fn get(server: &Server, key: &str, path: &str) -> Value {
    let (status, body) = server
        .call(Method::GET, path, Auth::ApiKey(key), None)
        .await;
    assert_eq!(status, 200, "{path}: {body}");
    body["data"].clone()
}

async fn usage_analytics_sum_to_the_operations_performed(backend: &Backend) {
    let server = Server::start(backend).await;
    let (_, owner) = server.create_tenant("Acme", "unlimited").await;
    create(&server, &owner, "data", "aes-256-gcm").await;
    create(&server, &owner, "signer", "ed25519").await;
    let mut ciphertexts = Vec::new();
    for _ in 0..3 {
        let (status, body) = call(
            &server,
            &owner,
            Method::POST,
            "/v1/keys/data/encrypt",
            Some(json!({ "plaintext": "aGVsbG8=" })),
            "billing",
        )
        .await;
        assert_eq!(status, 200, "{body}");
        ciphertexts.push(body["data"]["ciphertext"].clone());
    }
    for ciphertext in &ciphertexts[..2] {
        let (status, _) = call(
            &server,
            &owner,
            Method::POST,
            "/v1/keys/data/decrypt",
            Some(json!({ "ciphertext": ciphertext })),
            "reports",
        )
        .await;
        assert_eq!(status, 200);
    }
    // A failed decrypt is an error of the operation, not a success.
    let (status, _) = call(
        &server,
        &owner,
        Method::POST,
        "/v1/keys/data/decrypt",
        Some(json!({ "ciphertext": ciphertexts[2], "context": { "wrong": "yes" } })),
        "reports",
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = call(
        &server,
        &owner,
        Method::POST,
        "/v1/keys/signer/sign",
        Some(json!({ "message": "aGVsbG8=" })),
        "ci",
    )
    .await;
    assert_eq!(status, 200);

    let usage = get(&server, &owner, "/v1/kms/analytics/usage?granularity=day").await;
    let sum = |operation: &str, field: &str| -> i64 {
        usage["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["operation"] == operation)
            .map(|b| b[field].as_i64().unwrap())
            .sum()
    };
    assert_eq!(sum("encrypt", "count"), 3, "{usage}");
    assert_eq!(sum("decrypt", "count"), 2, "{usage}");
    assert_eq!(sum("decrypt", "errors"), 1, "{usage}");
    assert_eq!(sum("sign", "count"), 1, "{usage}");
    assert_eq!(usage["summary"]["total_operations"], 6, "{usage}");
    assert_eq!(usage["summary"]["unique_keys"], 2, "{usage}");
    for granularity in ["hour", "week"] {
        let other = get(
            &server,
            &owner,
            &format!("/v1/kms/analytics/usage?granularity={granularity}"),
        )
        .await;
        assert_eq!(other["summary"]["total_operations"], 6, "{other}");
    }
    let only = get(
        &server,
        &owner,
        "/v1/kms/analytics/usage?key_id=data&operation=encrypt",
    )
    .await;
    assert_eq!(only["summary"]["total_operations"], 3, "{only}");
    assert_eq!(only["summary"]["unique_keys"], 1, "{only}");
    for bad in [
        "/v1/kms/analytics/usage?granularity=month",
        "/v1/kms/analytics/usage?operation=explode",
        "/v1/kms/analytics/usage?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z",
        "/v1/kms/analytics/usage?since=2020-01-01T00:00:00Z&until=2026-01-01T00:00:00Z",
    ] {
        let (status, body) = server
            .call(Method::GET, bad, Auth::ApiKey(&owner), None)
            .await;
        assert_eq!(status, 422, "{bad}: {body}");
    }

    let applications = get(&server, &owner, "/v1/kms/analytics/applications").await;
    let billing = applications
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["application"] == "billing")
        .unwrap()
        .clone();
    assert_eq!(billing["keys_used"], 1, "{applications}");
    assert_eq!(billing["operation_counts"]["encrypt"], 3, "{applications}");
    assert_eq!(
        applications[0]["application"], "billing",
        "most active first: {applications}"
    );

    let summary = get(&server, &owner, "/v1/kms/analytics/keys/data/summary").await;
    assert_eq!(summary["total_operations"], 5, "{summary}");
    assert_eq!(
        summary["operation_breakdown"],
        json!({ "encrypt": 3, "decrypt": 2 }),
        "{summary}"
    );
    assert_eq!(
        summary["top_applications"][0]["application"], "billing",
        "{summary}"
    );
    assert!(summary["last_used_at"].is_string(), "{summary}");
    let (status, _) = server
        .call(
            Method::GET,
            "/v1/kms/analytics/keys/nope/summary",
            Auth::ApiKey(&owner),
            None,
        )
        .await;
    assert_eq!(status, 404);
    // Another tenant sees none of it.
    let (_, other) = server.create_tenant("Other", "pro").await;
    let theirs = get(&server, &other, "/v1/kms/analytics/usage").await;
    assert_eq!(theirs["summary"]["total_operations"], 0, "{theirs}");
}

async fn crypto_agility_counts_the_keys_by_policy(backend: &Backend) {
    let server = Server::start(backend).await;
    let (_, owner) = server.create_tenant("Acme", "unlimited").await;
    for (name, algorithm) in [
        ("a", "aes-256-gcm"),
        ("c", "chacha20-poly1305"),
        ("e", "ed25519"),
        ("d", "ml-dsa-65"),
        ("k", "ml-kem-768"),
    ] {
        create(&server, &owner, name, algorithm).await;
    }
    for key in ["e", "d", "d"] {
        let (status, _) = call(
            &server,
            &owner,
            Method::POST,
            &format!("/v1/keys/{key}/sign"),
            Some(json!({ "message": "aGVsbG8=" })),
            "ci",
        )
        .await;
        assert_eq!(status, 200);
    }
    let policy = get(&server, &owner, "/v1/kms/crypto-agility/policy").await;
    assert_eq!(policy.as_array().unwrap().len(), 7, "{policy}");

    let inventory = get(&server, &owner, "/v1/kms/crypto-agility/algorithm-usage").await;
    assert_eq!(inventory["pqc_adoption_rate"], 0.4, "{inventory}");
    // One of the three operations was on a quantum-vulnerable algorithm.
    assert_eq!(inventory["legacy_algorithm_usage"], 0.3333, "{inventory}");
    let row = |algorithm: &str| {
        inventory["algorithms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["algorithm"] == algorithm)
            .unwrap()
            .clone()
    };
    assert_eq!(row("ml-dsa-65")["usage_count"], 2, "{inventory}");
    assert_eq!(row("ml-dsa-65")["status"], "recommended");
    assert_eq!(row("ed25519")["quantum_risk"], "high");
    assert_eq!(row("ecdsa-p256")["key_count"], 0);

    let adoption = get(&server, &owner, "/v1/kms/crypto-agility/pqc-adoption").await;
    assert_eq!(
        adoption["current"],
        json!({ "pqc_keys": 2, "total_keys": 5, "adoption_rate": 0.4 }),
        "{adoption}"
    );
    let trend = &adoption["trends"][0];
    assert_eq!(
        (
            trend["pqc_operations"].as_i64(),
            trend["classical_operations"].as_i64()
        ),
        (Some(2), Some(1)),
        "{adoption}"
    );

    let risk = get(&server, &owner, "/v1/kms/crypto-agility/risk-assessment").await;
    assert_eq!(risk["overall_risk"], "high", "{risk}");
    let ed25519 = risk["algorithms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["algorithm"] == "ed25519")
        .unwrap()
        .clone();
    assert_eq!(ed25519["affected_keys"], 1, "{risk}");
    assert!(
        ed25519["recommendation"]
            .as_str()
            .unwrap()
            .contains("ml-dsa-65"),
        "{risk}"
    );
    // A tenant without keys has nothing at risk and adopts nothing.
    let (_, fresh) = server.create_tenant("Fresh", "pro").await;
    let risk = get(&server, &fresh, "/v1/kms/crypto-agility/risk-assessment").await;
    assert_eq!(risk["overall_risk"], "low", "{risk}");
    let adoption = get(&server, &fresh, "/v1/kms/crypto-agility/pqc-adoption").await;
    assert_eq!(adoption["current"]["adoption_rate"], 0.0, "{adoption}");

    // The same read models over GraphQL.
    let (status, body) = server
        .call(
            Method::POST,
            "/graphql",
            Auth::ApiKey(&owner),
            Some(json!({ "query": "{ cryptoPolicy { algorithm quantumRisk replacement } \
                pqcAdoption { current { pqcKeys totalKeys adoptionRate } } \
                algorithmUsage { legacyAlgorithmUsage algorithms { algorithm usageCount } } \
                quantumRiskAssessment { overallRisk } \
                kmsUsage(granularity: DAY) { summary { totalOperations uniqueKeys } } \
                kmsApplications { application totalOperations operationCounts { operation count } } \
                kmsKeySummary(id: \"d\") { totalOperations topApplications { application } } }" })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    let data = &body["data"];
    assert_eq!(data["cryptoPolicy"].as_array().unwrap().len(), 7, "{body}");
    assert_eq!(
        data["pqcAdoption"]["current"]["adoptionRate"], 0.4,
        "{body}"
    );
    assert_eq!(
        data["quantumRiskAssessment"]["overallRisk"], "high",
        "{body}"
    );
    assert_eq!(data["kmsUsage"]["summary"]["totalOperations"], 3, "{body}");
    assert_eq!(data["kmsApplications"][0]["application"], "ci", "{body}");
    assert_eq!(data["kmsKeySummary"]["totalOperations"], 2, "{body}");
    assert_eq!(
        data["kmsKeySummary"]["topApplications"][0]["application"], "ci",
        "{body}"
    );
}

async fn encrypt(server: &Server, key: &str, times: usize) {
    for _ in 0..times {
        let (status, body) = call(
            server,
            key,
            Method::POST,
            "/v1/keys/data/encrypt",
            Some(json!({ "plaintext": "aGVsbG8=" })),
            "billing",
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
}

async fn send(server: &Server, key: &str, method: Method, path: &str, body: Value) -> (u16, Value) {
    server
        .call(method, path, Auth::ApiKey(key), Some(body))
        .await
}

async fn an_alert_rule_triggers_once_and_is_acknowledged_once(backend: &Backend) {
    let server = Server::start(backend).await;
    let (_, owner) = server.create_tenant("Acme", "unlimited").await;
    create(&server, &owner, "data", "aes-256-gcm").await;
    let rule = json!({
        "name": "burst",
        "key_ids": ["data"],
        "condition": { "metric": "operation_count", "operator": "gt", "threshold": 5, "window": "1h" },
        "severity": "high"
    });
    let (status, created) = send(
        &server,
        &owner,
        Method::POST,
        "/v1/kms/analytics/alert-rules",
        rule,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let rule_id = created["data"]["id"].as_str().unwrap().to_string();
    assert!(rule_id.starts_with("kar_"), "{created}");
    assert_eq!(created["data"]["key_ids"].as_array().unwrap().len(), 1);
    assert_eq!(created["data"]["enabled"], true);
    let rules = get(&server, &owner, "/v1/kms/analytics/alert-rules").await;
    assert_eq!(rules.as_array().unwrap().len(), 1, "{rules}");

    for bad in [
        json!({ "name": "x", "condition": { "metric": "bogus", "operator": "gt", "threshold": 1, "window": "1h" } }),
        json!({ "name": "x", "condition": { "metric": "error_rate", "operator": "gt", "threshold": 2, "window": "1h" } }),
        json!({ "name": "x", "condition": { "metric": "operation_count", "operator": "ge", "threshold": 1, "window": "1h" } }),
        json!({ "name": "x", "condition": { "metric": "operation_count", "operator": "gt", "threshold": -1, "window": "1h" } }),
        json!({ "name": "x", "condition": { "metric": "operation_count", "operator": "gt", "threshold": 1, "window": "7d" } }),
        json!({ "name": "", "condition": { "metric": "operation_count", "operator": "gt", "threshold": 1, "window": "1h" } }),
        json!({ "name": "x", "key_ids": ["missing"], "condition": { "metric": "operation_count", "operator": "gt", "threshold": 1, "window": "1h" } }),
    ] {
        let (status, body) = send(
            &server,
            &owner,
            Method::POST,
            "/v1/kms/analytics/alert-rules",
            bad.clone(),
        )
        .await;
        assert_eq!(status, 422, "{bad}: {body}");
    }

    // The operations must share one clock hour (the rule's window): close
    // to the hour's end, wait for the next one to begin.
    let into_hour = Utc::now().timestamp() % 3600;
    if into_hour > 3600 - 30 {
        let left = u64::try_from(3600 - into_hour).unwrap() + 1;
        tokio::time::sleep(std::time::Duration::from_secs(left)).await;
    }
    encrypt(&server, &owner, 5).await;
    let alerts = get(&server, &owner, "/v1/kms/analytics/alerts").await;
    assert_eq!(
        alerts.as_array().unwrap().len(),
        0,
        "five is not above five: {alerts}"
    );
    encrypt(&server, &owner, 1).await;
    let alerts = get(&server, &owner, "/v1/kms/analytics/alerts").await;
    assert_eq!(alerts.as_array().unwrap().len(), 1, "{alerts}");
    let alert = &alerts[0];
    assert_eq!(alert["rule_id"], rule_id.as_str());
    assert_eq!(alert["value"], 6.0, "{alert}");
    assert_eq!(alert["severity"], "high");
    assert_eq!(alert["acknowledged"], false);
    let alert_id = alert["id"].as_str().unwrap().to_string();
    // More usage in the same window raises nothing more.
    encrypt(&server, &owner, 2).await;
    let alerts = get(&server, &owner, "/v1/kms/analytics/alerts?severity=high").await;
    assert_eq!(alerts.as_array().unwrap().len(), 1, "{alerts}");
    let none = get(&server, &owner, "/v1/kms/analytics/alerts?severity=low").await;
    assert_eq!(none.as_array().unwrap().len(), 0, "{none}");

    // In the audit trail, by the evaluator.
    let audit = get(
        &server,
        &owner,
        "/v1/audit/events?event_type=KmsAlertTriggered&consistency=strong",
    )
    .await;
    let records = audit.as_array().unwrap();
    assert_eq!(records.len(), 1, "{audit}");
    assert_eq!(records[0]["actor"], "system:kms-alerts", "{audit}");

    let path = format!("/v1/kms/analytics/alerts/{alert_id}/acknowledge");
    let (status, body) = send(&server, &owner, Method::POST, &path, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["acknowledged"], true);
    let (status, body) = send(&server, &owner, Method::POST, &path, json!({})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "invalid_transition", "{body}");
    let open = get(
        &server,
        &owner,
        "/v1/kms/analytics/alerts?acknowledged=false",
    )
    .await;
    assert_eq!(open.as_array().unwrap().len(), 0, "{open}");
    let done = get(
        &server,
        &owner,
        "/v1/kms/analytics/alerts?acknowledged=true",
    )
    .await;
    assert_eq!(done.as_array().unwrap().len(), 1, "{done}");

    // Disabled, changed, deleted; the alert stays.
    let rule_path = format!("/v1/kms/analytics/alert-rules/{rule_id}");
    let (status, body) = send(
        &server,
        &owner,
        Method::PATCH,
        &rule_path,
        json!({ "enabled": false, "severity": "low" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["data"]["enabled"].as_bool(),
            body["data"]["severity"].as_str()
        ),
        (Some(false), Some("low"))
    );
    let (status, _) = server
        .call(Method::DELETE, &rule_path, Auth::ApiKey(&owner), None)
        .await;
    assert_eq!(status, 200);
    let (status, _) = server
        .call(Method::GET, &rule_path, Auth::ApiKey(&owner), None)
        .await;
    assert_eq!(status, 404);
    let alerts = get(&server, &owner, "/v1/kms/analytics/alerts").await;
    assert_eq!(alerts.as_array().unwrap().len(), 1, "{alerts}");
    // Another tenant sees none of it.
    let (_, other) = server.create_tenant("Other", "pro").await;
    let theirs = get(&server, &other, "/v1/kms/analytics/alerts").await;
    assert_eq!(theirs.as_array().unwrap().len(), 0);
    let (status, _) = send(&server, &other, Method::POST, &path, json!({})).await;
    assert_eq!(status, 404);

    let (status, body) = server
        .call(
            Method::POST,
            "/graphql",
            Auth::ApiKey(&owner),
            Some(json!({ "query": "{ kmsAlerts(acknowledged: true) { totalCount nodes { ruleName value condition { metric window } } } kmsAlertRules { totalCount } }" })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["kmsAlerts"]["totalCount"], 1, "{body}");
    assert_eq!(body["data"]["kmsAlerts"]["nodes"][0]["ruleName"], "burst");
    assert_eq!(body["data"]["kmsAlertRules"]["totalCount"], 0);
}

/// The hygiene findings of the caller's environment, once `done` holds
/// (the process manager acts after the views; polled until then).
async fn kms_findings_when(
    server: &Server,
    key: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let found = get(
            server,
            key,
            "/v1/findings?product=palisade-kms&consistency=strong",
        )
        .await;
        let found = found.as_array().unwrap().clone();
        if done(&found) || std::time::Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn migration_plans_count_replacements_and_feed_the_findings(backend: &Backend) {
    let server = Server::start(backend).await;
    let (_, owner) = server.create_tenant("Acme", "unlimited").await;
    for (name, algorithm) in [
        ("old-signer", "ecdsa-p256"),
        ("edge-signer", "ed25519"),
        ("new-signer", "ml-dsa-65"),
        ("data", "aes-256-gcm"),
    ] {
        create(&server, &owner, name, algorithm).await;
    }
    let plan = json!({
        "name": "PQC 2030",
        "target_algorithms": { "signing": "ml-dsa-65" },
        "scope": { "algorithms": ["ecdsa-p256", "ed25519"] }
    });
    let (status, created) = send(
        &server,
        &owner,
        Method::POST,
        "/v1/kms/crypto-agility/migration-plans",
        plan,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let plan = &created["data"];
    assert_eq!(plan["status"], "draft");
    assert_eq!(plan["progress"]["total_keys"], 2, "{plan}");
    assert_eq!(plan["progress"]["migrated_keys"], 0, "{plan}");
    let path = format!(
        "/v1/kms/crypto-agility/migration-plans/{}",
        plan["id"].as_str().unwrap()
    );
    for bad in [
        json!({ "name": "x", "target_algorithms": { "signing": "ml-kem-768" }, "scope": { "algorithms": ["ed25519"] } }),
        json!({ "name": "x", "target_algorithms": {}, "scope": { "algorithms": ["ed25519"] } }),
        json!({ "name": "x", "target_algorithms": { "signing": "ml-dsa-65" }, "scope": {} }),
        json!({ "name": "x", "target_algorithms": { "signing": "ml-dsa-65" }, "scope": { "algorithms": ["rsa"] } }),
        json!({ "name": "x", "target_algorithms": { "signing": "ml-dsa-65" }, "scope": { "key_ids": ["missing"] } }),
        json!({ "name": "x", "target_algorithms": { "signing": "ml-dsa-65" }, "scope": { "algorithms": null } }),
    ] {
        let (status, body) = send(
            &server,
            &owner,
            Method::POST,
            "/v1/kms/crypto-agility/migration-plans",
            bad.clone(),
        )
        .await;
        assert_eq!(status, 422, "{bad}: {body}");
    }
    // A draft cannot complete; a refused move writes nothing else either.
    let (status, body) = send(
        &server,
        &owner,
        Method::PATCH,
        &path,
        json!({ "name": "renamed", "status": "completed" }),
    )
    .await;
    assert_eq!(status, 409, "a draft cannot complete: {body}");
    assert_eq!(get(&server, &owner, &path).await["name"], "PQC 2030");
    let (status, body) = send(
        &server,
        &owner,
        Method::PATCH,
        &path,
        json!({ "status": "active" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "active");

    // Active: both quantum-vulnerable signing keys are crypto findings.
    let found = kms_findings_when(&server, &owner, |f| f.len() == 2).await;
    assert_eq!(found.len(), 2, "{found:?}");
    let mut assets: Vec<&str> = found
        .iter()
        .map(|f| f["asset"]["identifier"].as_str().unwrap())
        .collect();
    assets.sort();
    assert_eq!(assets, ["kms:key/edge-signer", "kms:key/old-signer"]);
    assert!(
        found
            .iter()
            .all(|f| f["category"] == "crypto" && f["status"] == "open"),
        "{found:?}"
    );
    let overview = get(&server, &owner, "/v1/overview").await;
    assert!(overview["risk_score"].as_f64().unwrap() > 0.0, "{overview}");

    // The ECDSA key is replaced by the ML-DSA key: migrated, remediated.
    let (status, body) = send(
        &server,
        &owner,
        Method::PATCH,
        "/v1/keys/old-signer",
        json!({ "replaced_by": "new-signer" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["data"]["replaced_by"]
            .as_str()
            .unwrap()
            .starts_with("key_"),
        "{body}"
    );
    let (status, body) = send(
        &server,
        &owner,
        Method::PATCH,
        "/v1/keys/data",
        json!({ "replaced_by": "nope" }),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let plan = get(&server, &owner, &path).await;
    assert_eq!(plan["progress"]["migrated_keys"], 1, "{plan}");
    assert_eq!(plan["progress"]["pending_keys"], 1, "{plan}");
    assert_eq!(plan["progress"]["percent_complete"], 50.0, "{plan}");
    let found = kms_findings_when(&server, &owner, |f| {
        f.iter().any(|f| {
            f["asset"]["identifier"] == "kms:key/old-signer" && f["status"] == "remediated"
        })
    })
    .await;
    let status_of = |asset: &str| {
        found
            .iter()
            .find(|f| f["asset"]["identifier"] == asset)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status_of("kms:key/old-signer"), "remediated", "{found:?}");
    assert_eq!(status_of("kms:key/edge-signer"), "open", "{found:?}");

    // Readiness: of 2 vulnerable keys 1 migrated (0.5); 1 of 3 live signing
    // keys post-quantum (0.3333); no weak algorithm (1):
    // 100 × (0.6 × 0.5 + 0.25 × 0.3333 + 0.15) = 53.
    let readiness = get(
        &server,
        &owner,
        "/v1/kms/crypto-agility/migration-readiness",
    )
    .await;
    assert_eq!(
        readiness["key_migration_status"],
        json!({ "total": 2, "migrated": 1, "pending_migration": 1 }),
        "{readiness}"
    );
    assert_eq!(readiness["overall_score"], 53, "{readiness}");
    assert_eq!(readiness["active_plans"], 1, "{readiness}");

    let (status, body) = send(
        &server,
        &owner,
        Method::PATCH,
        &path,
        json!({ "status": "completed" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(
        &server,
        &owner,
        Method::PATCH,
        &path,
        json!({ "status": "active" }),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = send(
        &server,
        &owner,
        Method::PATCH,
        &path,
        json!({ "status": "paused" }),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    // No active plan: the remaining finding is remediated too.
    let found = kms_findings_when(&server, &owner, |f| {
        f.iter().all(|f| f["status"] == "remediated")
    })
    .await;
    assert!(
        found.iter().all(|f| f["status"] == "remediated"),
        "{found:?}"
    );
    let plans = get(
        &server,
        &owner,
        "/v1/kms/crypto-agility/migration-plans?status=completed",
    )
    .await;
    assert_eq!(plans.as_array().unwrap().len(), 1, "{plans}");

    let (status, body) = server
        .call(
            Method::POST,
            "/graphql",
            Auth::ApiKey(&owner),
            Some(json!({ "query": "{ migrationReadiness { overallScore keyMigrationStatus { pendingMigration } } migrationPlans { totalCount nodes { status progress { migratedKeys } targetAlgorithms { signing } } } }" })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(
        body["data"]["migrationReadiness"]["overallScore"], 53,
        "{body}"
    );
    assert_eq!(
        body["data"]["migrationPlans"]["nodes"][0]["targetAlgorithms"]["signing"],
        "ml-dsa-65"
    );
}
