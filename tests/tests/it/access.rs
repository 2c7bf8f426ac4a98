//! Black-box tests of just-in-time access (`/v1/access`), on both stores:
//! Teleport's review rules under a 2-approver policy, a check that is
//! time-true (false one instant after `expires_at`, before the scheduler
//! records the end, which it then does exactly once), deny, TTL expiry,
//! revoke, auto-approval by asset risk, 50 concurrent approvals deciding
//! once, scopes, statistics and GraphQL.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use palisade_domain::Environment;
use palisade_infra::crypto::seal::Sealer;
use palisade_infra::crypto::RootKey;
use palisade_infra::readmodel::access::{check_access, AccessQuestion};
use palisade_infra::readmodel::Partition;
use palisade_infra::{ManualClock, Scheduler, Store};
use palisade_tests::{on_both_stores, Auth, Backend, Server};
use reqwest::Method;
use serde_json::{json, Value};

on_both_stores!(
    two_approvals_activate_a_grant_that_ends_at_its_expiry_to_the_instant,
    a_deny_decides_a_ttl_expires_and_a_revoke_ends_access_at_once,
    auto_approval_holds_only_while_the_assets_risk_is_low,
    fifty_concurrent_approvals_make_one_decision,
    scopes_bad_input_stats_and_graphql
);

struct Team<'a> {
    server: &'a Server,
    tenant_id: String,
    owner: String,
    /// `dev`: access:request and access:approve (to try reviewing itself).
    dev: String,
    alice: String,
    bob: String,
}

impl Team<'_> {
    async fn call(
        &self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.server
            .call(method, path, Auth::ApiKey(key), body)
            .await
    }

    async fn post(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        self.call(key, Method::POST, path, Some(body)).await
    }

    async fn policy(&self, body: Value) -> Value {
        let (status, body) = self.post(&self.owner, "/v1/access/policies", body).await;
        assert_eq!(status, 201, "{body}");
        body["data"].clone()
    }

    async fn request(&self, resource_type: &str, resource_id: &str, minutes: u32) -> (u16, Value) {
        self.post(
            &self.dev,
            "/v1/access/requests",
            json!({
                "resource_type": resource_type,
                "resource_id": resource_id,
                "permissions": ["read"],
                "justification": "INC-42: look at the orders table",
                "duration_minutes": minutes,
                "ticket_reference": "INC-42",
            }),
        )
        .await
    }

    async fn pending(&self, resource_type: &str, resource_id: &str) -> String {
        let (status, body) = self.request(resource_type, resource_id, 30).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["data"]["status"], "pending", "{body}");
        body["data"]["id"].as_str().unwrap().to_string()
    }

    async fn review(&self, key: &str, id: &str, decision: &str) -> (u16, Value) {
        self.post(
            key,
            &format!("/v1/access/requests/{id}/review"),
            json!({ "decision": decision, "reason": format!("{decision}: looks right") }),
        )
        .await
    }

    async fn check(
        &self,
        key: &str,
        principal: &str,
        resource_id: &str,
        permission: &str,
    ) -> Value {
        let (status, body) = self
            .post(
                key,
                "/v1/access/check",
                json!({
                    "principal": principal,
                    "resource_type": "database",
                    "resource_id": resource_id,
                    "permission": permission,
                }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["data"].clone()
    }

    async fn get(&self, id: &str) -> Value {
        let (status, body) = self
            .call(
                &self.alice,
                Method::GET,
                &format!("/v1/access/requests/{id}?consistency=strong"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["data"].clone()
    }
}

async fn team(server: &Server) -> Team<'_> {
    let (tenant_id, owner) = server.create_tenant("Acme", "unlimited").await;
    let (_, dev) = server
        .issue_api_key(&owner, "dev", &["access:request", "access:approve"])
        .await;
    let (_, alice) = server
        .issue_api_key(&owner, "alice", &["access:approve", "audit:read"])
        .await;
    let (_, bob) = server
        .issue_api_key(&owner, "bob", &["access:approve"])
        .await;
    Team {
        server,
        tenant_id,
        owner,
        dev,
        alice,
        bob,
    }
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

fn time(value: &Value) -> DateTime<Utc> {
    value.as_str().unwrap().parse().unwrap()
}

/// A scheduler in this process over the server's store, at `clock`.
async fn scheduler(backend: &Backend, clock: Arc<ManualClock>) -> (Store, Scheduler) {
    let store = Store::open(&backend.config()).await.unwrap();
    let (root, _) = RootKey::load(None, &backend.config().data_dir).unwrap();
    let scheduler = Scheduler::new(
        store.clone(),
        Sealer::new(&root),
        clock,
        Duration::from_secs(1),
    );
    (store, scheduler)
}

async fn two_approvals_activate_a_grant_that_ends_at_its_expiry_to_the_instant(backend: &Backend) {
    let server = Server::start(backend).await;
    let team = team(&server).await;
    let policy = team
        .policy(json!({
            "name": "production databases",
            "resource_types": ["database"],
            "max_duration_minutes": 60,
            "approvals_required": 2,
        }))
        .await;
    assert_eq!(policy["approvals_required"], 2, "{policy}");
    let id = team.pending("database", "db-prod-1").await;

    let (status, body) = team.review(&team.alice, &id, "approve").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "pending", "one of two: {body}");
    let (status, body) = team.review(&team.dev, &id, "approve").await;
    assert_eq!((status, code(&body)), (403, "self_review"), "{body}");
    let (status, body) = team.review(&team.alice, &id, "approve").await;
    assert_eq!(status, 409, "a second review by alice: {body}");
    assert_eq!(
        team.check(&team.alice, "dev", "db-prod-1", "read").await["has_access"],
        false
    );

    let (status, body) = team.review(&team.bob, &id, "approve").await;
    assert_eq!(status, 200, "{body}");
    let grant = &body["data"];
    assert_eq!(grant["status"], "approved", "{grant}");
    assert_eq!(grant["approvers"], json!(["alice", "bob"]), "{grant}");
    assert_eq!(grant["reviews"].as_array().unwrap().len(), 2, "{grant}");
    let approved_at = time(&grant["approved_at"]);
    let expires_at = time(&grant["expires_at"]);
    assert_eq!(expires_at - approved_at, chrono::Duration::minutes(30));

    let answer = team.check(&team.alice, "dev", "db-prod-1", "read").await;
    assert_eq!(answer["has_access"], true, "{answer}");
    assert_eq!(answer["grant_id"], id.as_str(), "{answer}");
    for (resource, permission) in [("db-prod-1", "write"), ("db-prod-2", "read")] {
        let answer = team.check(&team.alice, "dev", resource, permission).await;
        assert_eq!(
            answer["has_access"], false,
            "{resource} {permission}: {answer}"
        );
    }
    let (status, body) = team
        .call(&team.dev, Method::GET, "/v1/access/grants", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"][0]["id"], id.as_str(), "{body}");

    // The check the endpoint runs, at the scheduler's clock: true up to
    // the instant before expires_at, false from it on, while the grant's
    // row is still in the view (no end recorded yet).
    let (store, scheduler) = scheduler(backend, Arc::new(ManualClock::new(expires_at))).await;
    let partition = Partition {
        tenant_id: team.tenant_id.clone(),
        environment: Environment::Live,
    };
    let question = AccessQuestion {
        principal: "dev",
        resource_type: "database",
        resource_id: "db-prod-1",
        permission: "read",
    };
    let pool = store.read_pool();
    let before = expires_at - chrono::Duration::milliseconds(1);
    let after = expires_at + chrono::Duration::milliseconds(1);
    assert!(check_access(pool, &partition, &question, before)
        .await
        .unwrap()
        .is_some());
    assert!(check_access(pool, &partition, &question, after)
        .await
        .unwrap()
        .is_none());
    assert!(check_access(pool, &partition, &question, expires_at)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        team.check(&team.alice, "dev", "db-prod-1", "read").await["has_access"],
        true,
        "the server's clock is still before expires_at"
    );

    // The scheduler records the end once, however often it runs.
    let version = team.get(&id).await["version"].as_i64().unwrap();
    scheduler.tick().await.unwrap();
    let ended = team.get(&id).await;
    assert_eq!(ended["status"], "ended", "{ended}");
    assert_eq!(ended["version"].as_i64().unwrap(), version + 1, "{ended}");
    scheduler.tick().await.unwrap();
    scheduler.tick().await.unwrap();
    assert_eq!(
        team.get(&id).await["version"].as_i64().unwrap(),
        version + 1
    );
    assert_eq!(
        team.check(&team.alice, "dev", "db-prod-1", "read").await["has_access"],
        false,
        "the ended grant's row is gone"
    );
    let (status, body) = team
        .call(
            &team.alice,
            Method::GET,
            "/v1/audit/events?consistency=strong&limit=500&aggregate_type=AccessRequest",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let ends = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|record| record["event_type"] == "AccessEnded")
        .count();
    assert_eq!(ends, 1, "{body}");
    let summaries: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|record| record["summary"].as_str())
        .collect();
    assert!(
        summaries
            .iter()
            .any(|s| s.starts_with("dev requested read on database 'db-prod-1'")),
        "{summaries:?}"
    );
    assert!(
        summaries
            .iter()
            .any(|s| s.starts_with("bob approved access request") && s.contains("looks right")),
        "{summaries:?}"
    );
    store.close().await;
}

async fn a_deny_decides_a_ttl_expires_and_a_revoke_ends_access_at_once(backend: &Backend) {
    let server = Server::start(backend).await;
    let team = team(&server).await;
    team.policy(json!({
        "name": "databases",
        "resource_types": ["database"],
        "max_duration_minutes": 60,
        "approvals_required": 2,
        "request_ttl_minutes": 5,
    }))
    .await;

    // Any deny decides, whatever the number of approvals required.
    let denied = team.pending("database", "db-1").await;
    let (status, body) = team.review(&team.alice, &denied, "deny").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "denied", "{body}");
    assert_eq!(body["data"]["denied_by"], "alice", "{body}");
    let (status, body) = team.review(&team.bob, &denied, "approve").await;
    assert_eq!((status, code(&body)), (409, "invalid_transition"), "{body}");

    // A pending request expires after its TTL, recorded by the scheduler.
    let waiting = team.pending("database", "db-2").await;
    let pending_until = time(&team.get(&waiting).await["pending_until"]);
    let (store, scheduler) = scheduler(
        backend,
        Arc::new(ManualClock::new(
            pending_until - chrono::Duration::seconds(1),
        )),
    )
    .await;
    scheduler.tick().await.unwrap();
    assert_eq!(team.get(&waiting).await["status"], "pending");
    drop(scheduler);
    let (_, scheduler) = scheduler_at(backend, pending_until).await;
    // Shown to the millisecond, and to the millisecond it is.
    scheduler.tick().await.unwrap();
    let expired = team.get(&waiting).await;
    assert_eq!(expired["status"], "expired", "{expired}");
    let (status, body) = team.review(&team.alice, &waiting, "approve").await;
    assert_eq!((status, code(&body)), (409, "invalid_transition"), "{body}");

    // Revoke ends a grant: the next check is false.
    let granted = team.pending("database", "db-3").await;
    team.review(&team.alice, &granted, "approve").await;
    let (status, body) = team.review(&team.bob, &granted, "approve").await;
    assert_eq!(body["data"]["status"], "approved", "{status} {body}");
    assert_eq!(
        team.check(&team.bob, "dev", "db-3", "read").await["has_access"],
        true
    );
    // A check is never replayed, whatever Idempotency-Key it carries.
    let checked = || async {
        let (status, body) = team
            .server
            .call_with_headers(
                Method::POST,
                "/v1/access/check",
                Auth::ApiKey(&team.bob),
                &[("Idempotency-Key", "same-check")],
                Some(json!({ "principal": "dev", "resource_type": "database",
                             "resource_id": "db-3", "permission": "read" })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["data"]["has_access"].clone()
    };
    assert_eq!(checked().await, true);
    let revoke = format!("/v1/access/requests/{granted}/revoke");
    let (status, body) = team
        .post(&team.alice, &revoke, json!({ "reason": " " }))
        .await;
    assert_eq!((status, code(&body)), (422, "validation_error"), "{body}");
    let (status, body) = team
        .post(&team.alice, &revoke, json!({ "reason": "incident closed" }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "revoked", "{body}");
    assert_eq!(body["data"]["revoked_by"], "alice", "{body}");
    assert_eq!(
        team.check(&team.bob, "dev", "db-3", "read").await["has_access"],
        false
    );
    assert_eq!(checked().await, false, "not replayed after the revoke");
    let (status, body) = team
        .post(&team.alice, &revoke, json!({ "reason": "again" }))
        .await;
    assert_eq!((status, code(&body)), (409, "invalid_transition"), "{body}");

    // Only the requester withdraws, and only while pending.
    let withdrawn = team.pending("database", "db-4").await;
    let path = format!("/v1/access/requests/{withdrawn}/withdraw");
    let (status, body) = team.call(&team.alice, Method::POST, &path, None).await;
    assert_eq!(status, 403, "alice lacks access:request: {body}");
    let (status, body) = team.call(&team.dev, Method::POST, &path, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "withdrawn", "{body}");
    store.close().await;
}

async fn scheduler_at(backend: &Backend, at: DateTime<Utc>) -> (Store, Scheduler) {
    scheduler(backend, Arc::new(ManualClock::new(at))).await
}

async fn auto_approval_holds_only_while_the_assets_risk_is_low(backend: &Backend) {
    let server = Server::start(backend).await;
    let team = team(&server).await;
    let (_, scanner) = server
        .issue_api_key(&team.owner, "scanner", &["findings:read", "findings:write"])
        .await;
    let policy = team
        .policy(json!({
            "name": "hosts",
            "resource_types": ["host"],
            "max_duration_minutes": 120,
            "auto_approve": { "max_asset_risk": 50 },
        }))
        .await;
    assert_eq!(policy["auto_approve"]["max_asset_risk"], 50.0, "{policy}");
    let finding = |likelihood: f64, impact: f64, title: &str| {
        json!({
            "product": "custom",
            "category": "vulnerability",
            "title": title,
            "severity": "high",
            "asset_identifier": "web-1",
            "likelihood": likelihood,
            "impact": impact,
        })
    };
    let (status, low) = team
        .post(&scanner, "/v1/findings", finding(0.5, 0.5, "Stored XSS"))
        .await;
    assert_eq!(status, 201, "{low}");
    assert_eq!(low["data"]["risk_score"].as_f64(), Some(25.0), "{low}");

    let (status, body) = team.request("host", "web-1", 60).await;
    assert_eq!(status, 201, "{body}");
    let auto = &body["data"];
    assert_eq!(auto["status"], "approved", "risk 25 ≤ 50: {auto}");
    assert_eq!(auto["approvers"], json!(["system:auto-approve"]), "{auto}");
    let reason = auto["decision_reason"].as_str().unwrap();
    assert!(reason.contains("is at most 50"), "{reason}");
    assert!(
        !reason.contains("25"),
        "the score is not in the reason: {reason}"
    );
    let (status, body) = team.request("host", "web-without-findings", 60).await;
    assert_eq!(
        body["data"]["status"], "approved",
        "no findings: 0 ({status} {body})"
    );

    // A finding pushes the asset to 72: the same request now waits.
    let low_id = low["data"]["id"].as_str().unwrap();
    let (status, body) = team
        .post(
            &scanner,
            &format!("/v1/findings/{low_id}/dismiss"),
            json!({ "reason": "false positive" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, high) = team
        .post(&scanner, "/v1/findings", finding(0.8, 0.9, "SQL injection"))
        .await;
    assert_eq!(status, 201, "{high}");
    let (status, asset) = team
        .call(
            &scanner,
            Method::GET,
            "/v1/assets/web-1?consistency=strong",
            None,
        )
        .await;
    assert_eq!(status, 200, "{asset}");
    assert_eq!(asset["data"]["risk_score"].as_f64(), Some(72.0), "{asset}");
    let (status, body) = team.request("host", "web-1", 60).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"]["status"], "pending", "risk 72 > 50: {body}");
    assert_eq!(body["data"]["approvers"], json!([]), "{body}");

    let (status, body) = team
        .post(
            &team.dev,
            "/v1/access/simulate",
            json!({
                "principal": "dev",
                "resource_type": "host",
                "resource_id": "web-1",
                "permissions": ["ssh"],
                "duration_minutes": 60,
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let simulation = &body["data"];
    assert_eq!(simulation["allowed"], true, "{simulation}");
    assert_eq!(simulation["auto_approved"], false, "{simulation}");
    assert!(
        simulation["reason"]
            .as_str()
            .unwrap()
            .contains("above the maximum 50"),
        "{simulation}"
    );
    assert_eq!(simulation["policy_id"], policy["id"], "{simulation}");
    assert_eq!(
        simulation["policy"],
        Value::Null,
        "tenant:admin's: {simulation}"
    );
    assert_eq!(simulation["approver_scopes"], json!(["access:approve"]));
    let (status, body) = team
        .post(
            &team.dev,
            "/v1/access/simulate",
            json!({
                "principal": "dev",
                "resource_type": "host",
                "resource_id": "web-1",
                "permissions": ["ssh"],
                "duration_minutes": 500,
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["allowed"], false, "{body}");
}

async fn fifty_concurrent_approvals_make_one_decision(backend: &Backend) {
    let server = Server::start(backend).await;
    let team = team(&server).await;
    team.policy(json!({
        "name": "clusters",
        "resource_types": ["kubernetes"],
        "max_duration_minutes": 60,
    }))
    .await;
    let mut reviewers = Vec::new();
    for i in 0..50 {
        let (_, key) = server
            .issue_api_key(&team.owner, &format!("reviewer-{i}"), &["access:approve"])
            .await;
        reviewers.push(key);
    }
    let id = team.pending("kubernetes", "prod-cluster").await;
    let reviews = reviewers.iter().map(|key| {
        let team = &team;
        let id = &id;
        async move { team.review(key, id, "approve").await }
    });
    let outcomes = futures_util::future::join_all(reviews).await;
    let approved: Vec<&Value> = outcomes
        .iter()
        .filter(|(status, _)| *status == 200)
        .map(|(_, body)| body)
        .collect();
    let refused = outcomes.iter().filter(|(status, _)| *status == 409).count();
    assert_eq!(approved.len(), 1, "{outcomes:?}");
    assert_eq!(refused, 49, "{outcomes:?}");
    assert_eq!(approved[0]["data"]["status"], "approved");
    let request = team.get(&id).await;
    assert_eq!(request["reviews"].as_array().unwrap().len(), 1, "{request}");
    assert_eq!(
        request["approvers"].as_array().unwrap().len(),
        1,
        "{request}"
    );
}

async fn scopes_bad_input_stats_and_graphql(backend: &Backend) {
    let server = Server::start(backend).await;
    let team = team(&server).await;
    let (_, eve) = server
        .issue_api_key(&team.owner, "eve", &["access:request"])
        .await;
    let (_, reader) = server
        .issue_api_key(&team.owner, "reader", &["findings:read"])
        .await;

    // Policies are tenant:admin's; requests need a policy and its bounds.
    let body = json!({ "name": "x", "resource_types": ["secret"], "max_duration_minutes": 10 });
    let (status, _) = team.post(&team.alice, "/v1/access/policies", body).await;
    assert_eq!(status, 403);
    let (status, body) = team.request("database", "db-1", 30).await;
    assert_eq!((status, code(&body)), (422, "no_policy"), "{body}");
    let policy = team
        .policy(json!({
            "name": "databases",
            "resource_types": ["database", "kms_key"],
            "max_duration_minutes": 60,
            "approver_principals": ["alice"],
        }))
        .await;
    let (status, body) = team
        .post(
            &team.owner,
            "/v1/access/policies",
            json!({ "name": "again", "resource_types": ["kms_key"], "max_duration_minutes": 5 }),
        )
        .await;
    assert_eq!((status, code(&body)), (409, "conflict"), "overlap: {body}");
    for bad in [
        json!({ "name": "", "resource_types": ["a"], "max_duration_minutes": 5 }),
        json!({ "name": "n", "resource_types": [], "max_duration_minutes": 5 }),
        json!({ "name": "n", "resource_types": ["a"], "max_duration_minutes": 20161 }),
        json!({ "name": "n", "resource_types": ["a"], "max_duration_minutes": 5, "approvals_required": 0 }),
        json!({ "name": "n", "resource_types": ["a"], "max_duration_minutes": 5, "approver_scopes": ["root"] }),
        json!({ "name": "n", "resource_types": ["a"], "max_duration_minutes": 5,
                "auto_approve": { "time_window": { "start": "25:00", "end": "06:00" } } }),
        json!({ "name": "n", "resource_types": ["a"], "max_duration_minutes": 5,
                "auto_approve": { "max_asset_risk": 101 } }),
    ] {
        let (status, body) = team
            .post(&team.owner, "/v1/access/policies", bad.clone())
            .await;
        assert_eq!(
            (status, code(&body)),
            (422, "validation_error"),
            "{bad}: {body}"
        );
    }
    let (status, body) = team.request("database", "db-1", 61).await;
    assert_eq!((status, code(&body)), (422, "validation_error"), "{body}");
    let (status, _) = team.post(&reader, "/v1/access/requests", json!({})).await;
    assert_eq!(status, 403);

    // Only the named approver reviews; bob is not one.
    let id = team.pending("database", "db-1").await;
    let (status, body) = team.review(&team.bob, &id, "approve").await;
    assert_eq!((status, code(&body)), (403, "forbidden"), "{body}");
    let (status, body) = team.review(&team.alice, &id, "maybe").await;
    assert_eq!((status, code(&body)), (422, "validation_error"), "{body}");
    let (status, body) = team
        .post(
            &team.alice,
            &format!("/v1/access/requests/{id}/review"),
            json!({ "decision": "approve", "modified_duration": 10 }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["granted_minutes"], 10, "{body}");

    // access:request alone sees and checks only its own principal.
    let (status, body) = team
        .call(
            &eve,
            Method::GET,
            &format!("/v1/access/requests/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let withdraw = format!("/v1/access/requests/{id}/withdraw");
    let (status, body) = team.call(&eve, Method::POST, &withdraw, None).await;
    assert_eq!(
        status, 404,
        "another's request is not there for eve: {body}"
    );
    let (status, body) = team
        .call(
            &eve,
            Method::GET,
            "/v1/access/requests?consistency=strong",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], json!([]), "{body}");
    let (status, body) = team
        .call(&eve, Method::GET, "/v1/access/grants?principal=dev", None)
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = team
        .post(
            &eve,
            "/v1/access/check",
            json!({ "principal": "dev", "resource_type": "database", "resource_id": "db-1", "permission": "read" }),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        team.check(&eve, "eve", "db-1", "read").await["has_access"],
        false
    );
    let (status, _) = team
        .post(
            &reader,
            "/v1/access/check",
            json!({ "principal": "dev", "resource_type": "database", "resource_id": "db-1", "permission": "read" }),
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = team
        .call(
            &team.alice,
            Method::GET,
            "/v1/access/requests?status=approved&requester=dev&resource_type=database",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"][0]["id"], id.as_str(), "{body}");
    assert_eq!(body["meta"]["total"], 1, "{body}");
    let (status, body) = team
        .call(
            &team.alice,
            Method::GET,
            "/v1/access/requests?status=granted",
            None,
        )
        .await;
    assert_eq!((status, code(&body)), (422, "validation_error"), "{body}");

    // Statistics.
    team.pending("kms_key", "payments").await;
    let (status, body) = team
        .call(
            &team.alice,
            Method::GET,
            "/v1/access/stats?period=7d&consistency=strong",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let stats = &body["data"];
    assert_eq!(stats["total_requests"], 2, "{stats}");
    assert_eq!(stats["approved"], 1, "{stats}");
    assert_eq!(stats["active_grants"], 1, "{stats}");
    assert!(
        stats["average_approval_seconds"].as_f64().unwrap() >= 0.0,
        "{stats}"
    );
    assert_eq!(
        stats["top_resources"].as_array().unwrap().len(),
        2,
        "{stats}"
    );
    let (status, _) = team
        .call(&team.alice, Method::GET, "/v1/access/stats?period=1y", None)
        .await;
    assert_eq!(status, 422);

    // GraphQL: the same use cases.
    let graphql = |key: String, query: String| {
        let team = &team;
        async move {
            let (status, body) = team
                .call(
                    &key,
                    Method::POST,
                    "/graphql",
                    Some(json!({ "query": query })),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            body
        }
    };
    let body = graphql(
        team.dev.clone(),
        r#"mutation { requestAccess(input: { resourceType: "database", resourceId: "db-9",
            permissions: ["read"], justification: "debugging", durationMinutes: 15 }) { id status } }"#
            .into(),
    )
    .await;
    let made = body["data"]["requestAccess"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let body = graphql(
        team.alice.clone(),
        format!(r#"mutation {{ reviewAccessRequest(input: {{ id: "{made}", decision: "deny", reason: "no ticket" }}) {{ status deniedBy decisionReason }} }}"#),
    )
    .await;
    assert_eq!(
        body["data"]["reviewAccessRequest"],
        json!({ "status": "denied", "deniedBy": "alice", "decisionReason": "no ticket" }),
        "{body}"
    );
    let body = graphql(
        team.alice.clone(),
        r#"{ accessRequests(filter: { status: ["denied"] }) { totalCount nodes { id reviews { reviewer decision } } }
             accessStats(period: "24h") { totalRequests denied } }"#
            .into(),
    )
    .await;
    assert_eq!(body["data"]["accessRequests"]["totalCount"], 1, "{body}");
    assert_eq!(
        body["data"]["accessRequests"]["nodes"][0]["id"],
        made.as_str()
    );
    assert_eq!(body["data"]["accessStats"]["denied"], 1, "{body}");
    let body = graphql(
        team.owner.clone(),
        "{ accessPolicies { nodes { id name resourceTypes } } }".into(),
    )
    .await;
    assert_eq!(
        body["data"]["accessPolicies"]["nodes"][0]["id"], policy["id"],
        "{body}"
    );
    let body = graphql(
        eve.clone(),
        format!(r#"{{ accessRequest(id: "{made}") {{ id }} }}"#),
    )
    .await;
    assert_eq!(body["data"]["accessRequest"], Value::Null, "{body}");

    // The timeline shows access events only with access:approve.
    let (_, watcher) = server
        .issue_api_key(&team.owner, "watcher", &["findings:read", "access:approve"])
        .await;
    for (key, visible) in [(&watcher, true), (&reader, false)] {
        let (status, body) = team
            .call(key, Method::GET, "/v1/timeline?consistency=strong", None)
            .await;
        assert_eq!(status, 200, "{body}");
        let access = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|entry| entry["aggregate_type"] == "AccessRequest");
        assert_eq!(access, visible, "{body}");
    }
}
