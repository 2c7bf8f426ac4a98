//! The scheduler on both stores, driven by a controllable clock: an expired
//! risk acceptance reverts its finding to open, exactly once, and a fresh
//! scheduler (a restart) finds what is due from the read model alone; and
//! idempotency records are deleted once their 24 hours end.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use palisade_domain::finding::{Finding, FindingCommand, Severity, Status};
use palisade_domain::{AssetId, Environment, FindingId};
use palisade_infra::readmodel::{get_finding, Partition};
use palisade_infra::{Commands, ManualClock, ProjectionRunner, Scheduler};
use palisade_tests::findings::{ingest, metadata};
use palisade_tests::{Backend, TestStore};
use uuid::Uuid;

palisade_tests::in_process_on_both_stores!(
    an_expired_risk_acceptance_reopens_the_finding_once,
    idempotency_records_are_pruned_when_their_day_ends,
);

const TENANT: &str = "ten_5c4ed01e000000000000000000000001";

/// The sealer of new key material (the key jobs); these tests make none.
fn sealer() -> palisade_infra::crypto::seal::Sealer {
    let root = palisade_infra::crypto::RootKey::from_hex(&"42".repeat(32)).unwrap();
    palisade_infra::crypto::seal::Sealer::new(&root)
}

async fn an_expired_risk_acceptance_reopens_the_finding_once(backend: Backend) {
    let test = TestStore::open(backend).await;
    let commands = Commands::new(test.store.clone());
    let runner = ProjectionRunner::new(
        test.store.clone(),
        palisade_projections::catalogue(palisade_projections::Redactor::new([7; 32])),
        &test.config,
    );
    let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
    let at = |days: i64| t0 + chrono::Duration::days(days);
    let meta = metadata(TENANT, Environment::Live, t0);
    let id = FindingId::from_uuid(Uuid::new_v4()).to_string();
    let asset = (AssetId::from_uuid(Uuid::new_v4()), "db.example.com");
    let finding_id = FindingId::parse(&id).unwrap();
    commands
        .execute::<Finding>(
            &id,
            ingest(finding_id, asset, "Weak TLS", Severity::Medium, None, t0),
            (),
            &meta,
        )
        .await
        .unwrap();
    let accept = FindingCommand::AcceptRisk {
        reason: "internal only".into(),
        expires_at: at(30),
        at: t0,
    };
    commands
        .execute::<Finding>(&id, accept, (), &meta)
        .await
        .unwrap();
    runner.catch_up("findings").await.unwrap();
    let partition = Partition {
        tenant_id: TENANT.into(),
        environment: Environment::Live,
    };
    let status = || async {
        get_finding(test.store.read_pool(), &partition, &id)
            .await
            .unwrap()
            .unwrap()
            .status
    };
    assert_eq!(status().await, Status::RiskAccepted);

    let clock = Arc::new(ManualClock::new(at(29)));
    let scheduler = Scheduler::new(
        test.store.clone(),
        sealer(),
        clock.clone(),
        Duration::from_secs(1),
    );
    assert_eq!(scheduler.tick().await.unwrap().fired, 0, "nothing due yet");

    clock.set(at(30));
    assert_eq!(scheduler.tick().await.unwrap().fired, 1);
    // The view has not caught up, so the next pass fires again: the command
    // finds nothing left to expire and records nothing.
    assert_eq!(scheduler.tick().await.unwrap().fired, 1);
    let events = test.store.aggregate_events("Finding", &id).await.unwrap();
    let types: Vec<_> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "FindingIngested",
            "FindingRiskAccepted",
            "FindingRiskAcceptanceExpired"
        ],
        "expired exactly once"
    );
    let expired = events[2].typed_metadata().unwrap();
    assert_eq!(
        (expired.actor.as_str(), expired.occurred_at),
        ("scheduler", at(30))
    );
    runner.catch_up("findings").await.unwrap();
    assert_eq!(status().await, Status::Open);
    assert_eq!(scheduler.tick().await.unwrap().fired, 0);

    // A restart: accept again, then a brand-new scheduler past the date
    // finds the due finding from the read model and expires it.
    let accept = FindingCommand::AcceptRisk {
        reason: "again".into(),
        expires_at: at(60),
        at: at(31),
    };
    commands
        .execute::<Finding>(
            &id,
            accept,
            (),
            &metadata(TENANT, Environment::Live, at(31)),
        )
        .await
        .unwrap();
    runner.catch_up("findings").await.unwrap();
    drop(scheduler);
    let restarted = Scheduler::new(
        test.store.clone(),
        sealer(),
        Arc::new(ManualClock::new(at(90))),
        Duration::from_secs(1),
    );
    assert_eq!(restarted.tick().await.unwrap().fired, 1);
    runner.catch_up("findings").await.unwrap();
    assert_eq!(status().await, Status::Open);
    test.finish().await;
}

/// Issue 11, item 3: `idempotency::prune` was never called, so records
/// (and whatever they held) stayed forever. The scheduler prunes them on
/// every pass once their 24 hours have passed, and no sooner.
async fn idempotency_records_are_pruned_when_their_day_ends(backend: Backend) {
    let test = TestStore::open(backend).await;
    let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
    for (key, age_hours) in [("old", 25), ("young", 23)] {
        sqlx::query(
            "INSERT INTO idempotency_keys (scope, idempotency_key, fingerprint, created_at)
             VALUES ('key:apk_1', $1, 'f', $2)",
        )
        .bind(key)
        .bind((t0 - chrono::Duration::hours(age_hours)).timestamp_millis())
        .execute(test.store.read_pool())
        .await
        .unwrap();
    }
    let clock = Arc::new(ManualClock::new(t0));
    let scheduler = Scheduler::new(
        test.store.clone(),
        sealer(),
        clock.clone(),
        Duration::from_secs(1),
    );
    assert_eq!(scheduler.tick().await.unwrap().pruned, 1);
    let left: Vec<String> = sqlx::query_scalar("SELECT idempotency_key FROM idempotency_keys")
        .fetch_all(test.store.read_pool())
        .await
        .unwrap();
    assert_eq!(left, ["young"]);
    clock.set(t0 + chrono::Duration::hours(2));
    assert_eq!(scheduler.tick().await.unwrap().pruned, 1);
    assert_eq!(scheduler.tick().await.unwrap().pruned, 0);
    test.finish().await;
}
