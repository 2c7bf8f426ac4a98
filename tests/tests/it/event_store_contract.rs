//! The event-store contract: the same tests, run against every backend.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{SubsecRound, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{PersistedEventRepository, PersistenceError, SerializedEvent};
use cqrs_es::{Aggregate, AggregateContext, DomainEvent, EventStore};
use palisade_domain::tenant::{
    NewApiKey, Plan, Tenant, TenantCommand, TenantError, TenantEvent, TenantName,
};
use palisade_domain::{ActorType, ApiKeyId, Environment, EventMetadata, Scope, TenantId};
use palisade_infra::{CommandError, Commands, ProjectionRunner, Store, StoreKind};
use palisade_projections::{
    FeedEvent, FeedPosition, Projection, ProjectionError, ReadModelStore, TenantRow,
};
use palisade_tests::{read_feed_exactly, Backend, TestStore};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{Any, Transaction};

/// A minimal aggregate with long histories, for snapshots and races.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Counter {
    value: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum CounterEvent {
    Incremented { by: u64 },
}

impl DomainEvent for CounterEvent {
    fn event_type(&self) -> String {
        "Incremented".into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug)]
struct CounterError;

impl std::fmt::Display for CounterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("counter error")
    }
}

impl std::error::Error for CounterError {}

impl Aggregate for Counter {
    const TYPE: &'static str = "Counter";
    type Command = u64;
    type Event = CounterEvent;
    type Error = CounterError;
    type Services = ();

    async fn handle(
        &mut self,
        by: u64,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), CounterError> {
        sink.write(CounterEvent::Incremented { by }, self).await;
        Ok(())
    }

    fn apply(&mut self, event: CounterEvent) {
        let CounterEvent::Incremented { by } = event;
        self.value += by;
    }
}

fn metadata(tenant: &str) -> EventMetadata {
    EventMetadata {
        tenant_id: tenant.to_string(),
        environment: Environment::Live,
        actor: "contract-suite".into(),
        actor_type: ActorType::System,
        api_key_id: None,
        request_id: Some("req_contract".into()),
        correlation_id: Some("cor_1".into()),
        causation_id: None,
        // Metadata keeps microseconds.
        occurred_at: Utc::now().trunc_subsecs(6),
    }
}

fn counter_event(id: &str, sequence: usize, by: u64) -> SerializedEvent {
    SerializedEvent::new(
        id.to_string(),
        sequence,
        "Counter".into(),
        "Incremented".into(),
        "1".into(),
        json!({ "Incremented": { "by": by } }),
        json!({}),
    )
}

/// Appends one event inside `tx` with plain SQL, as the cqrs-es repositories do.
async fn insert_raw(tx: &mut Transaction<'static, Any>, kind: StoreKind, id: &str, sequence: i64) {
    insert_raw_of(tx, kind, "Counter", id, sequence).await;
}

async fn insert_raw_of(
    tx: &mut Transaction<'static, Any>,
    kind: StoreKind,
    aggregate_type: &str,
    id: &str,
    sequence: i64,
) {
    let sql = match kind {
        StoreKind::Sqlite => {
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             VALUES ($1, $2, $3, $4, $5, $6, $7)"
        }
        StoreKind::Postgres => {
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb)"
        }
    };
    sqlx::query(sql)
        .bind(aggregate_type)
        .bind(id)
        .bind(sequence)
        .bind("Incremented")
        .bind("1")
        .bind(r#"{"Incremented":{"by":1}}"#)
        .bind("{}")
        .execute(&mut **tx)
        .await
        .unwrap();
}

palisade_tests::in_process_on_both_stores!(
    appended_events_load_back_with_their_metadata,
    snapshots_are_taken_every_n_events_and_restore_the_aggregate,
    sixteen_racers_for_one_sequence_make_one_winner_and_lose_nothing,
    a_tailing_reader_sees_every_event_of_concurrent_writers_exactly_once,
    a_failed_batch_leaves_read_model_and_checkpoint_unchanged,
    a_failing_projection_does_not_hold_the_others_back,
    a_new_projection_version_rebuilds_from_the_start,
    a_batch_of_new_aggregates_is_appended_all_or_nothing,
    a_feed_read_for_some_aggregate_types_returns_theirs_and_where_the_window_ended,
);

async fn appended_events_load_back_with_their_metadata(backend: Backend) {
    let test = TestStore::open(backend).await;
    let commands = Commands::new(test.store.clone());
    let tenant_id = TenantId::from_uuid(uuid::Uuid::now_v7());
    let meta = metadata(&tenant_id.to_string());
    let created_at = Utc::now();
    let owner_key = NewApiKey {
        key_id: ApiKeyId::from_uuid(uuid::Uuid::now_v7()),
        name: "Owner key".into(),
        principal: "owner".into(),
        scopes: vec![Scope::TenantAdmin],
        environment: Environment::Live,
        prefix: "pal_live_abcd".into(),
        key_hash: "keyed-hash".into(),
        expires_at: None,
    };
    let create = TenantCommand::CreateTenant {
        tenant_id,
        name: TenantName::parse("Acme").unwrap(),
        plan: Plan::Pro,
        owner_key,
        created_at,
    };
    commands
        .execute::<Tenant>(&tenant_id.to_string(), create.clone(), (), &meta)
        .await
        .unwrap();

    let stored = test
        .store
        .event_repository()
        .get_events::<Tenant>(&tenant_id.to_string())
        .await
        .unwrap();
    assert_eq!(
        stored.len(),
        2,
        "the tenant and its owner key, appended together"
    );
    assert_eq!(stored[0].event_type, "TenantCreated");
    assert_eq!(stored[1].event_type, "ApiKeyIssued");
    assert_eq!(stored[0].event_version, "1");
    let event: TenantEvent = serde_json::from_value(stored[0].payload.clone()).unwrap();
    assert_eq!(
        event,
        TenantEvent::TenantCreated {
            tenant_id,
            name: "Acme".into(),
            plan: Plan::Pro,
            created_at
        }
    );
    let map = serde_json::from_value(stored[0].metadata.clone()).unwrap();
    assert_eq!(EventMetadata::from_map(&map).unwrap(), meta);

    let feed = read_feed_exactly(&test.store, 2).await;
    assert_eq!(feed[0].aggregate_type, "Tenant");
    assert_eq!((feed[0].sequence, feed[1].sequence), (1, 2));
    assert_eq!(EventMetadata::from_map(&feed[0].metadata).unwrap(), meta);

    let again = commands
        .execute::<Tenant>(&tenant_id.to_string(), create, (), &meta)
        .await;
    assert!(matches!(
        again,
        Err(CommandError::Rejected(TenantError::AlreadyExists))
    ));
    assert_eq!(
        read_feed_exactly(&test.store, 2).await.len(),
        2,
        "nothing was appended"
    );
    test.finish().await;
}

async fn snapshots_are_taken_every_n_events_and_restore_the_aggregate(backend: Backend) {
    let test = TestStore::open_with(backend, |config| {
        config.snapshots.insert("Counter".into(), 3);
    })
    .await;
    let commands = Commands::new(test.store.clone());
    for _ in 0..10 {
        commands
            .execute::<Counter>("c-1", 1, (), &metadata("t"))
            .await
            .unwrap();
    }
    let snapshot = test
        .store
        .event_repository()
        .get_snapshot::<Counter>("c-1")
        .await
        .unwrap()
        .expect("a snapshot");
    assert_eq!(snapshot.current_sequence, 9);
    assert_eq!(snapshot.current_snapshot, 3);
    assert_eq!(snapshot.aggregate, json!({ "value": 9 }));
    let mut context = test
        .store
        .event_store::<Counter>()
        .load_aggregate("c-1")
        .await
        .unwrap();
    assert_eq!(context.aggregate().value, 10);
    read_feed_exactly(&test.store, 10).await;
    test.finish().await;
}

async fn sixteen_racers_for_one_sequence_make_one_winner_and_lose_nothing(backend: Backend) {
    let test = TestStore::open(backend).await;
    let repo = Arc::new(test.store.event_repository());
    repo.persist::<Counter>(&[counter_event("race", 1, 0)], None)
        .await
        .unwrap();
    let racers: Vec<_> = (1..=16u64)
        .map(|by| {
            let repo = repo.clone();
            tokio::spawn(async move {
                (
                    by,
                    repo.persist::<Counter>(&[counter_event("race", 2, by)], None)
                        .await,
                )
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut conflicts = 0;
    for racer in racers {
        match racer.await.unwrap() {
            (by, Ok(())) => winners.push(by),
            (_, Err(PersistenceError::OptimisticLockError)) => conflicts += 1,
            (_, Err(other)) => {
                panic!("a racer failed with something other than a conflict: {other}")
            }
        }
    }
    assert_eq!(winners.len(), 1, "exactly one racer wins");
    assert_eq!(conflicts, 15);
    let stored = repo.get_events::<Counter>("race").await.unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(
        stored[1].payload,
        json!({ "Incremented": { "by": winners[0] } })
    );
    read_feed_exactly(&test.store, 2).await;
    test.finish().await;
}

async fn a_tailing_reader_sees_every_event_of_concurrent_writers_exactly_once(backend: Backend) {
    let test = TestStore::open(backend).await;
    let kind = test.store.kind();
    // SQLite serialises writers, so sleeping inside its transactions only
    // measures the sleeps; PostgreSQL gets the full 8 × 1,000.
    let per_writer: i64 = if kind == StoreKind::Postgres {
        1000
    } else {
        100
    };
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store = test.store.clone();
            tokio::spawn(async move {
                for sequence in 1..=per_writer {
                    let pause = Duration::from_micros(rand::thread_rng().gen_range(0..1500));
                    let mut tx = store.read_pool().begin().await.unwrap();
                    insert_raw(&mut tx, kind, &format!("writer-{w}"), sequence).await;
                    tokio::time::sleep(pause).await;
                    tx.commit().await.unwrap();
                }
            })
        })
        .collect();
    let total = 8 * per_writer as usize;
    let mut seen = HashSet::new();
    let mut position = FeedPosition::START;
    let deadline = Instant::now() + Duration::from_secs(180);
    while seen.len() < total {
        assert!(
            Instant::now() < deadline,
            "only {} of {total} events seen",
            seen.len()
        );
        let batch = test.store.read_feed(position, 500).await.unwrap();
        if batch.is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        for event in batch {
            assert!(event.position > position, "feed order went backwards");
            position = event.position;
            let key = (event.aggregate_id, event.sequence);
            assert!(seen.insert(key.clone()), "{key:?} delivered twice");
        }
    }
    for writer in writers {
        writer.await.unwrap();
    }
    assert!(test.store.read_feed(position, 10).await.unwrap().is_empty());
    // Each writer's events arrive in its own order.
    assert_eq!(seen.len(), total);
    test.finish().await;
}

/// Records which events it was asked to apply; fails on one position on demand.
struct Recording {
    name: &'static str,
    version: i64,
    fail_at: AtomicI64,
    calls: Mutex<Vec<i64>>,
}

impl Recording {
    fn new(version: i64) -> Arc<Self> {
        Self::named("recording", version)
    }

    fn named(name: &'static str, version: i64) -> Arc<Self> {
        Arc::new(Self {
            name,
            version,
            fail_at: AtomicI64::new(0),
            calls: Mutex::new(Vec::new()),
        })
    }

    fn take_calls(&self) -> Vec<i64> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

#[async_trait]
impl Projection for Recording {
    fn name(&self) -> &'static str {
        self.name
    }
    fn version(&self) -> i64 {
        self.version
    }
    fn tables(&self) -> &'static [&'static str] {
        &["tenants"]
    }
    async fn apply(
        &self,
        event: &FeedEvent,
        store: &mut dyn ReadModelStore,
    ) -> Result<(), ProjectionError> {
        self.calls.lock().unwrap().push(event.position.position);
        if event.position.position == self.fail_at.load(Ordering::SeqCst) {
            return Err(ProjectionError::Failed("injected failure".into()));
        }
        let row = TenantRow {
            id: format!("{}-evt-{}", self.name, event.position.position),
            version: event.sequence,
            name: event.aggregate_id.clone(),
            plan: Plan::Free,
            status: "active".into(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        store.upsert_tenant(&row).await?;
        Ok(())
    }
}

async fn a_feed_read_for_some_aggregate_types_returns_theirs_and_where_the_window_ended(
    backend: Backend,
) {
    let test = TestStore::open(backend).await;
    let repo = test.store.event_repository();
    // Counters "a" and "b" interleaved; "b" is stored under another type.
    for sequence in 1..=3 {
        repo.persist::<Counter>(&[counter_event("a", sequence, 1)], None)
            .await
            .unwrap();
        let mut tx = test.store.read_pool().begin().await.unwrap();
        insert_raw_of(&mut tx, test.store.kind(), "Other", "b", sequence as i64).await;
        tx.commit().await.unwrap();
    }
    let all = read_feed_exactly(&test.store, 6).await;
    let last = all.last().unwrap().position;

    let counters = test
        .store
        .read_feed_of(FeedPosition::START, 100, &["Counter"])
        .await
        .unwrap();
    let expected: Vec<&FeedEvent> = all
        .iter()
        .filter(|e| e.aggregate_type == "Counter")
        .collect();
    assert_eq!(
        counters.events.iter().collect::<Vec<_>>(),
        expected,
        "the wanted events, whole"
    );
    assert_eq!((counters.read, counters.read_to), (6, Some(last)));

    // A window of four ends at the fourth event, whichever type it is.
    let window = test
        .store
        .read_feed_of(FeedPosition::START, 4, &["Other"])
        .await
        .unwrap();
    assert_eq!(window.read_to, Some(all[3].position));
    assert_eq!(window.events.len(), 2);
    assert!(window.events.iter().all(|e| e.aggregate_type == "Other"));

    let none = test
        .store
        .read_feed_of(FeedPosition::START, 100, &["Nothing"])
        .await
        .unwrap();
    assert!(none.events.is_empty());
    assert_eq!(none.read_to, Some(last), "read past, not stuck");
    let after = test
        .store
        .read_feed_of(last, 100, &["Counter"])
        .await
        .unwrap();
    assert_eq!((after.read, after.read_to), (0, None));
    test.finish().await;
}

async fn count_rows(store: &Store) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM tenants")
        .fetch_one(store.read_pool())
        .await
        .unwrap()
}

async fn append_counters(store: &Store, n: usize) -> Vec<i64> {
    append_counters_after(store, 0, n).await
}

/// Appends `n` more events to counter `c`, which has `existing`; their
/// positions.
async fn append_counters_after(store: &Store, existing: usize, n: usize) -> Vec<i64> {
    let repo = store.event_repository();
    for sequence in existing + 1..=existing + n {
        repo.persist::<Counter>(&[counter_event("c", sequence, 1)], None)
            .await
            .unwrap();
    }
    read_feed_exactly(store, existing + n)
        .await
        .iter()
        .skip(existing)
        .map(|e| e.position.position)
        .collect()
}

async fn a_failed_batch_leaves_read_model_and_checkpoint_unchanged(backend: Backend) {
    let test = TestStore::open(backend).await;
    let positions = append_counters(&test.store, 10).await;
    let projection = Recording::new(1);
    projection.fail_at.store(positions[4], Ordering::SeqCst);

    let runner = ProjectionRunner::new(test.store.clone(), vec![projection.clone()], &test.config);
    let failed = runner.catch_up("recording").await;
    assert!(failed.is_err(), "the injected failure surfaces");
    assert_eq!(
        projection.take_calls(),
        positions[..5].to_vec(),
        "it stopped at the failing event"
    );
    assert_eq!(
        count_rows(&test.store).await,
        0,
        "the first four writes were rolled back"
    );
    assert_eq!(runner.status().await.unwrap()[0].checkpoint, 0);

    // A restart after the fault is fixed applies every event exactly once.
    projection.fail_at.store(0, Ordering::SeqCst);
    let restarted =
        ProjectionRunner::new(test.store.clone(), vec![projection.clone()], &test.config);
    let done = restarted.catch_up("recording").await.unwrap();
    assert_eq!(done.events, 10);
    assert_eq!(projection.take_calls(), positions);
    assert_eq!(count_rows(&test.store).await, 10);
    let status = restarted.status().await.unwrap();
    assert_eq!(
        (status[0].checkpoint, status[0].head, status[0].lag_events),
        (positions[9], positions[9], 0)
    );

    // And another restart finds nothing left to do.
    let again = ProjectionRunner::new(test.store.clone(), vec![projection.clone()], &test.config);
    assert_eq!(again.catch_up("recording").await.unwrap().events, 0);
    assert!(projection.take_calls().is_empty());
    test.finish().await;
}

async fn rows_of(store: &Store, projection: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM tenants WHERE id LIKE $1")
        .bind(format!("{projection}-evt-%"))
        .fetch_one(store.read_pool())
        .await
        .unwrap()
}

async fn checkpoint_of(runner: &ProjectionRunner, name: &str) -> i64 {
    runner
        .checkpoint(name)
        .await
        .unwrap()
        .map_or(0, |c| c.position.position)
}

/// Waits (up to 10 s) until the projection's checkpoint reaches `position`.
async fn reaches(runner: &ProjectionRunner, name: &str, position: i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while checkpoint_of(runner, name).await < position {
        assert!(
            std::time::Instant::now() < deadline,
            "{name} stayed at {} (wanted {position})",
            checkpoint_of(runner, name).await
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The spawned runner applies its projections' batches together; when one
/// of them fails, the whole batch rolls back, the others go on without it,
/// and it catches up alone once it succeeds, then goes on with them.
async fn a_failing_projection_does_not_hold_the_others_back(backend: Backend) {
    // Both in one group, so that they share each batch's transaction.
    let test = TestStore::open_with(backend, |config| config.projection_groups = 1).await;
    let positions = append_counters(&test.store, 10).await;
    let (steady, flaky) = (Recording::named("steady", 1), Recording::named("flaky", 1));
    flaky.fail_at.store(positions[4], Ordering::SeqCst);
    let runner = ProjectionRunner::new(
        test.store.clone(),
        vec![steady.clone(), flaky.clone()],
        &test.config,
    );
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let tasks = runner.spawn(shutdown);

    reaches(&runner, "steady", positions[9]).await;
    assert_eq!(rows_of(&test.store, "steady").await, 10);
    assert_eq!(
        checkpoint_of(&runner, "flaky").await,
        0,
        "the failing one stays behind"
    );
    assert_eq!(
        rows_of(&test.store, "flaky").await,
        0,
        "its partial batch rolled back"
    );

    // Fixed, it catches up alone and joins the others.
    flaky.fail_at.store(0, Ordering::SeqCst);
    reaches(&runner, "flaky", positions[9]).await;
    assert_eq!(rows_of(&test.store, "flaky").await, 10);
    let more = append_counters_after(&test.store, 10, 3).await;
    reaches(&runner, "steady", more[2]).await;
    reaches(&runner, "flaky", more[2]).await;
    assert_eq!(
        (
            rows_of(&test.store, "steady").await,
            rows_of(&test.store, "flaky").await
        ),
        (13, 13)
    );
    stop.send(true).unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    test.finish().await;
}

async fn a_new_projection_version_rebuilds_from_the_start(backend: Backend) {
    let test = TestStore::open(backend).await;
    let positions = append_counters(&test.store, 5).await;
    let v1 = Recording::new(1);
    let runner = ProjectionRunner::new(test.store.clone(), vec![v1.clone()], &test.config);
    assert_eq!(runner.catch_up("recording").await.unwrap().events, 5);
    sqlx::query("INSERT INTO tenants (id, name, plan, status, created_at, updated_at) VALUES ('stale', 's', 'free', 'active', 'x', 'x')")
        .execute(test.store.read_pool())
        .await
        .unwrap();

    let v2 = Recording::new(2);
    let runner = ProjectionRunner::new(test.store.clone(), vec![v2.clone()], &test.config);
    assert_eq!(runner.catch_up("recording").await.unwrap().events, 5);
    assert_eq!(
        v2.take_calls(),
        positions,
        "version 2 replays the whole feed"
    );
    assert_eq!(
        count_rows(&test.store).await,
        5,
        "the old rows were cleared first"
    );
    assert_eq!(runner.status().await.unwrap()[0].version, 2);
    test.finish().await;
}

/// The gap-safe feed (`docs/event-store.md`): a reader must not pass an event whose transaction commits later.
/// Transaction A appends and holds; B appends and commits; the reader reads;
/// A commits; the reader reads again. A naive `ORDER BY position` reader,
/// kept as the control, loses A's event.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_feed_never_passes_an_event_that_commits_later() {
    let Some(backend) = Backend::postgres().await else {
        return;
    };
    let test = TestStore::open(backend).await;
    let kind = test.store.kind();
    let naive = test.raw_postgres().await;
    let naive_read = |after: i64| {
        let naive = naive.clone();
        async move {
            sqlx::query_as::<_, (i64, String)>(
                "SELECT position, aggregate_id FROM events WHERE position > $1 ORDER BY position",
            )
            .bind(after)
            .fetch_all(&naive)
            .await
            .unwrap()
        }
    };

    let mut a = test.store.read_pool().begin().await.unwrap();
    insert_raw(&mut a, kind, "A", 1).await;
    let mut b = test.store.read_pool().begin().await.unwrap();
    insert_raw(&mut b, kind, "B", 1).await;
    b.commit().await.unwrap();

    let first = test
        .store
        .read_feed(FeedPosition::START, 100)
        .await
        .unwrap();
    assert!(
        first.is_empty(),
        "B must wait for A, which may still commit before it in feed order"
    );
    let naive_first = naive_read(0).await;
    assert_eq!(
        naive_first.iter().map(|r| r.1.as_str()).collect::<Vec<_>>(),
        ["B"]
    );
    let naive_checkpoint = naive_first[0].0;

    a.commit().await.unwrap();

    // Both are committed now; a transaction still open elsewhere in the
    // cluster may hold the watermark a moment longer.
    let second = read_feed_exactly(&test.store, 2).await;
    let ids: Vec<_> = second.iter().map(|e| e.aggregate_id.as_str()).collect();
    assert_eq!(ids, ["A", "B"], "both events, once each, in feed order");
    assert!(second[0].position < second[1].position);
    assert!(test
        .store
        .read_feed(second[1].position, 100)
        .await
        .unwrap()
        .is_empty());

    let naive_second = naive_read(naive_checkpoint).await;
    assert!(
        naive_second.is_empty(),
        "the control reader has moved past A's event and lost it"
    );
    test.finish().await;
}

/// Bulk ingest's append: the first events of many new aggregates in one
/// transaction, stored exactly as cqrs-es stores them, or none at all when
/// one of them exists already.
async fn a_batch_of_new_aggregates_is_appended_all_or_nothing(backend: Backend) {
    let test = TestStore::open(backend).await;
    let commands = Commands::new(test.store.clone());
    let meta = metadata("ten_batch");
    commands
        .execute::<Counter>("taken", 1, (), &meta)
        .await
        .unwrap();
    let new = |id: &str, by: u64| palisade_infra::NewAggregate::<Counter> {
        aggregate_id: id.into(),
        events: vec![
            CounterEvent::Incremented { by },
            CounterEvent::Incremented { by },
        ],
    };
    let refused = commands
        .create_many(&[new("fresh", 2), new("taken", 3)], &meta)
        .await;
    assert!(
        matches!(refused, Err(CommandError::Conflict)),
        "{refused:?}"
    );
    let store = test.store.event_store::<Counter>();
    assert_eq!(
        store
            .load_aggregate("fresh")
            .await
            .unwrap()
            .current_sequence,
        0,
        "nothing of a refused batch is stored"
    );

    commands
        .create_many(&[new("a", 2), new("b", 5)], &meta)
        .await
        .unwrap();
    for (id, value) in [("a", 4), ("b", 10)] {
        let loaded = store.load_aggregate(id).await.unwrap();
        assert_eq!(
            (loaded.current_sequence, loaded.aggregate.value),
            (2, value)
        );
        let events = store.load_events(id).await.unwrap();
        assert_eq!(
            events[0].metadata,
            meta.to_map(),
            "metadata as cqrs-es stores it"
        );
    }
    // Then the aggregates take ordinary commands.
    commands
        .execute::<Counter>("a", 1, (), &meta)
        .await
        .unwrap();
    assert_eq!(store.load_aggregate("a").await.unwrap().aggregate.value, 5);
    // "taken" 1, "a" 2 + 1, "b" 2: the refused batch left nothing.
    read_feed_exactly(&test.store, 6).await;
    test.finish().await;
}
