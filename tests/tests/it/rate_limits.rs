//! Black-box tests of rate limits, the monthly quota and usage, on both stores.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::{Timelike, Utc};
use palisade_infra::Store;
use palisade_tests::{on_both_stores, Auth, Backend, Server};
use reqwest::Method;
use serde_json::json;

on_both_stores!(
    the_eleventh_request_in_a_minute_on_the_free_plan_gets_429,
    a_spent_quota_gets_402_but_test_keys_are_exempt,
    usage_counts_requests_by_day_and_endpoint_group,
);

async fn the_eleventh_request_in_a_minute_on_the_free_plan_gets_429(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (_, key) = server.create_tenant("Acme", "free").await;
    // Eleven requests must fall in one minute window.
    let second = Utc::now().second();
    if second > 45 {
        tokio::time::sleep(Duration::from_secs(u64::from(61 - second))).await;
    }
    let get = || {
        server
            .http
            .get(server.url("/v1/usage"))
            .header("x-api-key", &key)
            .send()
    };
    for i in 1..=10u64 {
        let response = get().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "request {i}");
        let headers = response.headers();
        assert_eq!(headers["x-ratelimit-limit"], "10");
        assert_eq!(
            headers["x-ratelimit-remaining"],
            (10 - i).to_string().as_str()
        );
        let reset: i64 = headers["x-ratelimit-reset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (0..=60).contains(&(reset - Utc::now().timestamp())),
            "reset is the minute's end"
        );
    }
    let response = get().await.unwrap();
    assert_eq!(response.status().as_u16(), 429);
    let retry_header: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(response.headers()["x-ratelimit-remaining"], "0");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(body["error"]["message"], "Minute rate limit exceeded");
    let retry_after = body["error"]["retry_after"].as_u64().unwrap();
    assert!((1..=60).contains(&retry_after), "{body}");
    assert_eq!(retry_after, retry_header);
}

async fn a_spent_quota_gets_402_but_test_keys_are_exempt(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (tenant_id, live) = server.create_tenant("Acme", "free").await;
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/api-keys",
            Auth::ApiKey(&live),
            Some(json!({ "name": "sandbox", "principal": "ci", "scopes": ["findings:read"], "environment": "test" })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let test_key = body["data"]["key"].as_str().unwrap().to_string();

    // One live request so far (issuing the test key). Bring the month to 999
    // of the free plan's 1,000 directly in the store.
    let store = Store::open(&backend.config()).await.unwrap();
    sqlx::query(
        "INSERT INTO usage_daily (tenant_id, environment, day, endpoint_group, requests)
         VALUES ($1, 'live', $2, 'findings', 998)",
    )
    .bind(&tenant_id)
    .bind(Utc::now().date_naive().to_string())
    .execute(store.read_pool())
    .await
    .unwrap();
    // The quota itself is a counter that requests reserve from.
    sqlx::query(
        "INSERT INTO quota_usage (tenant_id, month, requests) VALUES ($1, $2, 998)
         ON CONFLICT (tenant_id, month) DO UPDATE SET requests = quota_usage.requests + 998",
    )
    .bind(&tenant_id)
    .bind(Utc::now().format("%Y-%m").to_string())
    .execute(store.read_pool())
    .await
    .unwrap();
    store.close().await;

    let (status, body) = server
        .call(Method::GET, "/v1/usage", Auth::ApiKey(&live), None)
        .await;
    assert_eq!(
        status, 200,
        "999 + the key request before: the quota is now spent"
    );
    let (status, body_402) = server
        .call(Method::GET, "/v1/usage", Auth::ApiKey(&live), None)
        .await;
    assert_eq!(
        (status, body_402["error"]["code"].as_str()),
        (402, Some("quota_exceeded")),
        "{body} {body_402}"
    );

    let (status, body) = server
        .call(Method::GET, "/v1/usage", Auth::ApiKey(&test_key), None)
        .await;
    assert_eq!(
        status, 200,
        "test keys never count against the quota: {body}"
    );
    assert_eq!(body["data"]["quota"]["remaining"], 0);
    assert_eq!(body["data"]["quota"]["counts_this_key"], false);
    assert_eq!(body["data"]["environment"], "test");
}

async fn usage_counts_requests_by_day_and_endpoint_group(backend: &Backend) {
    let server = Server::start_admin(backend).await;
    let (_, key) = server.create_tenant("Acme", "pro").await;
    for _ in 0..3 {
        let (status, _) = server
            .call(Method::GET, "/v1/api-keys", Auth::ApiKey(&key), None)
            .await;
        assert_eq!(status, 200);
    }
    let (status, body) = server
        .call(Method::GET, "/v1/usage", Auth::Bearer(&key), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["plan"], "pro");
    assert_eq!(data["requests"], 3, "{data}");
    assert_eq!(
        data["by_day"][0]["day"],
        Utc::now().date_naive().to_string()
    );
    assert_eq!(
        data["by_endpoint_group"],
        json!([{ "group": "api-keys", "requests": 3 }])
    );
    assert_eq!(data["quota"]["limit"], 50_000);
    assert_eq!(data["quota"]["used"], 3);
    let (_, body) = server
        .call(Method::GET, "/v1/usage", Auth::Bearer(&key), None)
        .await;
    assert_eq!(
        body["data"]["by_endpoint_group"][1],
        json!({ "group": "usage", "requests": 1 })
    );
}
