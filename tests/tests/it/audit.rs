//! Black-box tests of the audit trail on both stores: the SSE stream (order,
//! resuming with Last-Event-ID, many subscribers, tenant isolation), the
//! query endpoint, the hash chain's verification after tampering, and that
//! no API-key value is ever stored or streamed.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use palisade_infra::Store;
use palisade_tests::{on_both_stores, Auth, Backend, Server, ServerOptions, SseClient, SseEvent};
use reqwest::Method;
use serde_json::{json, Value};

on_both_stores!(
    the_stream_delivers_in_order_and_resumes_exactly,
    two_hundred_subscribers_each_receive_a_thousand_events,
    a_subscriber_sees_only_its_own_tenant,
    changing_a_stored_row_breaks_the_chain_there,
    no_api_key_value_is_stored_or_streamed,
    the_query_endpoint_filters_and_pages,
    revoking_the_key_or_suspending_the_tenant_ends_its_streams,
);

const WAIT: Duration = Duration::from_secs(20);

async fn start(backend: &Backend) -> (Server, String, String) {
    let server = Server::start_admin(backend).await;
    let (tenant, owner) = server.create_tenant("Acme", "unlimited").await;
    (server, tenant, owner)
}

fn finding(title: &str) -> Value {
    json!({
        "product": "custom",
        "category": "vulnerability",
        "title": title,
        "severity": "medium",
        "asset_identifier": "app.example.com",
    })
}

async fn ingest(server: &Server, key: &str, title: &str) {
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/findings",
            Auth::ApiKey(key),
            Some(finding(title)),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

async fn bulk(server: &Server, key: &str, prefix: &str, n: usize) {
    let items: Vec<Value> = (0..n).map(|i| finding(&format!("{prefix} {i}"))).collect();
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/findings/bulk",
            Auth::ApiKey(key),
            Some(json!({ "findings": items })),
        )
        .await;
    assert_eq!(status, 200, "{}", &body.to_string()[..300]);
    assert_eq!(body["data"]["created"], n, "{}", &body.to_string()[..300]);
}

async fn get(server: &Server, key: &str, path: &str) -> Value {
    let (status, body) = server
        .call(Method::GET, path, Auth::ApiKey(key), None)
        .await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

fn seqs(events: &[SseEvent]) -> Vec<i64> {
    events
        .iter()
        .map(|e| e.id.as_deref().unwrap().parse().unwrap())
        .collect()
}

/// The whole chain, strongly consistent, via the query endpoint.
async fn all_records(server: &Server, key: &str) -> Vec<Value> {
    let mut records = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let body = get(
            server,
            key,
            &format!("/v1/audit/events?limit=500&cursor={cursor}&consistency=strong"),
        )
        .await;
        let page = body["data"].as_array().unwrap().clone();
        records.extend(page);
        match body["meta"]["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => return records,
        }
    }
}

async fn the_stream_delivers_in_order_and_resumes_exactly(backend: &Backend) {
    let (server, tenant, owner) = start(backend).await;
    let mut stream = SseClient::connect(&server, &owner, "/v1/audit/stream", None).await;
    // The tenant's creation and its owner key come first.
    let first = stream.take(2, WAIT).await;
    assert_eq!(seqs(&first), [1, 2]);
    assert_eq!(first[0].event.as_deref(), Some("TenantCreated"));
    assert_eq!(first[1].event.as_deref(), Some("ApiKeyIssued"));
    let record = first[0].json();
    assert_eq!(record["seq"], 1);
    assert_eq!(record["tenant_id"], tenant);
    assert_eq!(record["event_type"], "TenantCreated");
    assert_eq!(record["prev_hash"], "0".repeat(64));
    assert_eq!(first[1].json()["prev_hash"], record["hash"]);

    // Live: each ingest arrives, in order.
    for i in 0..5 {
        ingest(&server, &owner, &format!("Live {i}")).await;
    }
    let live = stream.take(5, WAIT).await;
    assert_eq!(seqs(&live), [3, 4, 5, 6, 7]);
    assert!(live
        .iter()
        .all(|e| e.event.as_deref() == Some("FindingIngested")));
    assert_eq!(live[0].json()["data"]["details"]["title"], "Live 0");

    // The metrics count this subscriber and what it was sent.
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("palisade_audit_subscribers 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("palisade_audit_events_delivered_total 7"),
        "{metrics}"
    );

    // Disconnect; 50 events happen; reconnect after the last id seen.
    drop(stream);
    for i in 0..50 {
        ingest(&server, &owner, &format!("While away {i}")).await;
    }
    let mut resumed = SseClient::connect(&server, &owner, "/v1/audit/stream", Some("7")).await;
    let missed = resumed.take(50, WAIT).await;
    assert_eq!(seqs(&missed), (8..=57).collect::<Vec<_>>());
    let titles: Vec<String> = missed
        .iter()
        .map(|e| {
            e.json()["data"]["details"]["title"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(titles[0], "While away 0");
    assert_eq!(titles[49], "While away 49");
    // Nothing more, and no duplicate: the next event is the next new one.
    assert!(resumed.next(Duration::from_millis(700)).await.is_none());
    ingest(&server, &owner, "After resuming").await;
    let next = resumed.take(1, WAIT).await;
    assert_eq!(seqs(&next), [58]);

    // `?after=` resumes the same way, and the chain verifies.
    let mut by_query = SseClient::connect(&server, &owner, "/v1/audit/stream?after=55", None).await;
    assert_eq!(seqs(&by_query.take(3, WAIT).await), [56, 57, 58]);
    let verify = get(&server, &owner, "/v1/audit/verify?consistency=strong").await;
    assert_eq!(
        verify["data"],
        json!({"verified": true, "last_seq": 58, "first_broken_seq": null})
    );
}

async fn two_hundred_subscribers_each_receive_a_thousand_events(backend: &Backend) {
    let (server, _, owner) = start(backend).await;
    let mut streams = Vec::new();
    // A key holds at most 10 streams: twenty readers' keys, ten each.
    let mut readers = Vec::new();
    for i in 0..20 {
        let name = format!("reader-{i}");
        readers.push(server.issue_api_key(&owner, &name, &["audit:read"]).await.1);
    }
    for reader in &readers {
        for _ in 0..10 {
            // Only what follows the tenant's creation (seqs 1 and 2) and the
            // readers' keys (3 to 22).
            streams
                .push(SseClient::connect(&server, reader, "/v1/audit/stream?after=22", None).await);
        }
    }
    bulk(&server, &owner, "Fan-out", 1000).await;
    let readers = streams.into_iter().map(|mut stream| {
        tokio::spawn(async move {
            let events = stream.take(1000, Duration::from_secs(60)).await;
            seqs(&events)
        })
    });
    let expected: Vec<i64> = (23..1023).collect();
    for reader in readers {
        assert_eq!(reader.await.unwrap(), expected);
    }
}

async fn a_subscriber_sees_only_its_own_tenant(backend: &Backend) {
    let (server, tenant_a, owner_a) = start(backend).await;
    let (tenant_b, owner_b) = server.create_tenant("Beta", "unlimited").await;
    let mut stream_b = SseClient::connect(&server, &owner_b, "/v1/audit/stream", None).await;
    for i in 0..10 {
        ingest(&server, &owner_a, &format!("A's finding {i}")).await;
    }
    ingest(&server, &owner_b, "B's finding").await;
    let events = stream_b.take(3, WAIT).await;
    assert_eq!(seqs(&events), [1, 2, 3]);
    for event in &events {
        assert_eq!(event.json()["tenant_id"], tenant_b);
    }
    assert_eq!(events[2].json()["data"]["details"]["title"], "B's finding");
    assert!(stream_b.next(Duration::from_millis(700)).await.is_none());
    assert!(!stream_b.raw.contains(&tenant_a));
    assert!(!stream_b.raw.contains("A's finding"));
    // The query endpoint and the chain are per tenant as well.
    let records_b = all_records(&server, &owner_b).await;
    assert_eq!(records_b.len(), 3);
    let records_a = all_records(&server, &owner_a).await;
    assert_eq!(records_a.len(), 12);
    assert!(records_a.iter().all(|r| r["tenant_id"] == tenant_a));
    // A key without audit:read is refused.
    let (_, reader) = server
        .issue_api_key(&owner_a, "bot", &["findings:read"])
        .await;
    let (status, refused) = server
        .call(Method::GET, "/v1/audit/stream", Auth::ApiKey(&reader), None)
        .await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["error"]["code"], "forbidden");
}

async fn changing_a_stored_row_breaks_the_chain_there(backend: &Backend) {
    let (server, tenant, owner) = start(backend).await;
    for i in 0..6 {
        ingest(&server, &owner, &format!("Chained {i}")).await;
    }
    let intact = get(&server, &owner, "/v1/audit/verify?consistency=strong").await;
    assert_eq!(
        intact["data"],
        json!({"verified": true, "last_seq": 8, "first_broken_seq": null})
    );
    let store = Store::open(&backend.config()).await.unwrap();
    let changed = sqlx::query(
        "UPDATE audit_events SET data = REPLACE(data, 'Chained 3', 'Chained three')
          WHERE tenant_id = $1 AND seq = 6",
    )
    .bind(&tenant)
    .execute(store.read_pool())
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(changed, 1);
    let broken = get(&server, &owner, "/v1/audit/verify").await;
    assert_eq!(
        broken["data"],
        json!({"verified": false, "last_seq": 8, "first_broken_seq": 6})
    );
    // Rewriting the row's own hash does not hide it: the next row's link breaks.
    let records = all_records(&server, &owner).await;
    sqlx::query(
        "UPDATE audit_events SET actor = 'mallory', hash = $1 WHERE tenant_id = $2 AND seq = 4",
    )
    .bind(records[3]["hash"].as_str().unwrap().replace('a', "b"))
    .bind(&tenant)
    .execute(store.read_pool())
    .await
    .unwrap();
    let broken = get(&server, &owner, "/v1/audit/verify").await;
    assert_eq!(broken["data"]["first_broken_seq"], 4, "{broken}");
    // Deleting a row is a gap.
    sqlx::query("DELETE FROM audit_events WHERE tenant_id = $1 AND seq IN (2, 4, 6)")
        .bind(&tenant)
        .execute(store.read_pool())
        .await
        .unwrap();
    let broken = get(&server, &owner, "/v1/audit/verify").await;
    assert_eq!(broken["data"]["first_broken_seq"], 2, "{broken}");
    store.close().await;
}

async fn no_api_key_value_is_stored_or_streamed(backend: &Backend) {
    let (server, _, owner) = start(backend).await;
    let mut stream = SseClient::connect(&server, &owner, "/v1/audit/stream", None).await;
    let mut keys = vec![owner.clone()];
    for (i, scopes) in [["audit:read"], ["findings:write"], ["tenant:admin"]]
        .iter()
        .enumerate()
    {
        let body = json!({ "name": format!("key {i}"), "principal": "bot", "scopes": scopes });
        let (status, issued) = server
            .call(
                Method::POST,
                "/v1/api-keys",
                Auth::ApiKey(&owner),
                Some(body),
            )
            .await;
        assert_eq!(status, 201, "{issued}");
        let key = issued["data"]["key"].as_str().unwrap().to_string();
        let id = issued["data"]["id"].as_str().unwrap().to_string();
        keys.push(key);
        if i == 2 {
            let (status, body) = server
                .call(
                    Method::DELETE,
                    &format!("/v1/api-keys/{id}"),
                    Auth::ApiKey(&owner),
                    None,
                )
                .await;
            assert!(status == 200 || status == 204, "{status} {body}");
        }
    }
    // Created, owner key, three keys, one revocation.
    let events = stream.take(6, WAIT).await;
    let issued = events
        .iter()
        .find(|e| e.event.as_deref() == Some("ApiKeyIssued"))
        .unwrap()
        .json();
    assert!(
        issued["data"]["key_hash"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:"),
        "{issued}"
    );

    let store = Store::open(&backend.config()).await.unwrap();
    let stored_hashes: Vec<String> = sqlx::query_scalar("SELECT key_hash FROM api_keys")
        .fetch_all(store.read_pool())
        .await
        .unwrap();
    assert_eq!(stored_hashes.len(), 4);
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT id || '|' || actor || '|' || COALESCE(api_key_id, '') || '|' || summary || '|' || data
           FROM audit_events",
    )
    .fetch_all(store.read_pool())
    .await
    .unwrap();
    assert_eq!(rows.len(), 6);
    let served = serde_json::to_string(&all_records(&server, &owner).await).unwrap();
    for key in &keys {
        let secret_part = &key[key.len() - 20..];
        for (place, text) in [
            ("stored record", rows.join("\n")),
            ("SSE frame", stream.raw.clone()),
            ("query answer", served.clone()),
        ] {
            assert!(
                !text.contains(key.as_str()),
                "an API key appears in a {place}"
            );
            assert!(
                !text.contains(secret_part),
                "part of an API key appears in a {place}"
            );
        }
    }
    for hash in &stored_hashes {
        assert!(
            !rows.join("\n").contains(hash.as_str()),
            "a key hash appears in the audit trail"
        );
    }
    store.close().await;
}

async fn the_query_endpoint_filters_and_pages(backend: &Backend) {
    let (server, _, owner) = start(backend).await;
    for i in 0..4 {
        ingest(&server, &owner, &format!("Queried {i}")).await;
    }
    let records = all_records(&server, &owner).await;
    assert_eq!(records.len(), 6);
    let seqs: Vec<i64> = records.iter().map(|r| r["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    let finding_id = records[3]["aggregate_id"].as_str().unwrap().to_string();

    let page = get(&server, &owner, "/v1/audit/events?limit=2&after=1").await;
    let page_seqs: Vec<i64> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(page_seqs, [2, 3]);
    assert_eq!(page["meta"]["next_cursor"], "3");

    let by_type = get(
        &server,
        &owner,
        "/v1/audit/events?event_type=TenantCreated,ApiKeyIssued",
    )
    .await;
    assert_eq!(by_type["data"].as_array().unwrap().len(), 2);
    let by_aggregate = get(
        &server,
        &owner,
        &format!("/v1/audit/events?aggregate_type=Finding&aggregate_id={finding_id}"),
    )
    .await;
    let only = by_aggregate["data"].as_array().unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0]["seq"], 4);
    let by_actor = get(&server, &owner, "/v1/audit/events?actor=admin").await;
    assert_eq!(by_actor["data"].as_array().unwrap().len(), 2);
    let future = get(
        &server,
        &owner,
        "/v1/audit/events?since=2999-01-01T00:00:00Z",
    )
    .await;
    assert_eq!(future["data"], json!([]));
    let past = get(
        &server,
        &owner,
        "/v1/audit/events?until=2000-01-01T00:00:00Z",
    )
    .await;
    assert_eq!(past["data"], json!([]));

    for bad in [
        "limit=501",
        "after=-1",
        "since=yesterday",
        "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
        "colour=blue",
    ] {
        let (status, body) = server
            .call(
                Method::GET,
                &format!("/v1/audit/events?{bad}"),
                Auth::ApiKey(&owner),
                None,
            )
            .await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "validation_error", "{bad}");
    }
    let response = server
        .http
        .get(server.url("/v1/audit/stream"))
        .header("x-api-key", &owner)
        .header("last-event-id", "seven")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 422);
}

#[tokio::test]
async fn idle_streams_get_heartbeat_comments() {
    let backend = Backend::sqlite();
    let options = ServerOptions {
        env: vec![("PALISADE_SSE_HEARTBEAT_MS".into(), "200".into())],
        admin_token: Some(palisade_tests::ADMIN_TOKEN.into()),
    };
    let server = Server::start_with(&backend, options).await;
    let (_, owner) = server.create_tenant("Acme", "unlimited").await;
    let mut stream = SseClient::connect(&server, &owner, "/v1/audit/stream", None).await;
    assert_eq!(seqs(&stream.take(2, WAIT).await), [1, 2]);
    // Nothing happens: no event, but heartbeats keep the connection alive.
    assert!(stream.next(Duration::from_millis(900)).await.is_none());
    assert!(
        stream.comments.iter().filter(|c| *c == "heartbeat").count() >= 2,
        "{:?}",
        stream.comments
    );
    // A later event still arrives on the same stream.
    ingest(&server, &owner, "After the heartbeats").await;
    assert_eq!(seqs(&stream.take(1, WAIT).await), [3]);
    backend.cleanup().await;
}

#[tokio::test]
async fn sigterm_ends_open_streams_and_the_server_stops() {
    let backend = Backend::sqlite();
    let (mut server, _, owner) = start(&backend).await;
    let mut stream = SseClient::connect(&server, &owner, "/v1/audit/stream", None).await;
    assert_eq!(seqs(&stream.take(2, WAIT).await), [1, 2]);
    server.signal("TERM");
    assert_eq!(server.wait(Duration::from_secs(20)).await, Some(0));
    assert!(stream.next(Duration::from_secs(5)).await.is_none());
    backend.cleanup().await;
}

/// The error frame that ends a stream, and that the stream then closes.
async fn ends_with_error(stream: &mut SseClient, code: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let event = stream
            .next(left)
            .await
            .unwrap_or_else(|| panic!("no error frame; ended: {}", stream.ended));
        if event.event.as_deref() == Some("error") {
            assert_eq!(event.json()["error"]["code"], code, "{}", event.data);
            assert_eq!(event.id, None);
            break;
        }
    }
    assert!(stream.next(WAIT).await.is_none());
    assert!(stream.ended, "the server closes the stream");
}

/// A stream is as good as its key: revoking the key (or suspending the
/// tenant) ends the streams it opened, with the error as the last frame.
async fn revoking_the_key_or_suspending_the_tenant_ends_its_streams(backend: &Backend) {
    let (server, tenant, owner) = start(backend).await;
    let (key_id, reader) = server.issue_api_key(&owner, "siem", &["audit:read"]).await;
    let mut by_reader = SseClient::connect(&server, &reader, "/v1/audit/stream", None).await;
    let mut by_owner = SseClient::connect(&server, &owner, "/v1/audit/stream", None).await;
    assert_eq!(seqs(&by_reader.take(3, WAIT).await), [1, 2, 3]);
    assert_eq!(seqs(&by_owner.take(3, WAIT).await), [1, 2, 3]);

    server.revoke_api_key(&owner, &key_id).await;
    // The revocation itself is the reader's last record.
    let revoked = by_reader.take(1, WAIT).await;
    assert_eq!(revoked[0].event.as_deref(), Some("ApiKeyRevoked"));
    ends_with_error(&mut by_reader, "invalid_api_key").await;
    // The owner's stream goes on.
    ingest(&server, &owner, "After the revocation").await;
    let live = by_owner.take(2, WAIT).await;
    assert_eq!(seqs(&live), [4, 5]);

    let (status, body) = server
        .admin_post(
            &format!("/v1/admin/tenants/{tenant}/suspend"),
            json!({"reason": "unpaid"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    ends_with_error(&mut by_owner, "tenant_suspended").await;
}
