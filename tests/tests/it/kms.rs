//! Black-box tests of KMS analytics and crypto agility (`/v1/kms`), on both
//! stores: usage buckets sum to the operations performed, per application
//! and per key; the algorithm inventory and post-quantum adoption match
//! the keys created.
#![allow(clippy::unwrap_used)]

use palisade_tests::{on_both_stores, Auth, Backend, Server};
use reqwest::Method;
use serde_json::{json, Value};

on_both_stores!(
    usage_analytics_sum_to_the_operations_performed,
    crypto_agility_counts_the_keys_by_policy
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
