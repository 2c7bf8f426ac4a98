//! Key hygiene on both stores, driven by the scheduler's controllable
//! clock: a key past its cryptoperiod is recorded overdue, the hygiene
//! process manager turns that into exactly one `crypto` finding on
//! `kms:key/<name>` whose risk moves the tenant score, a rotation
//! remediates it, and rebuilding every view and the manager (and a fresh
//! runner, as after a restart) leaves exactly that one finding, unchanged.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use palisade_domain::finding::{Finding, Status};
use palisade_domain::key::{key_id_for, Algorithm, KeyName, NewKey, NewKeyVersion};
use palisade_domain::{Environment, TenantId};
use palisade_infra::keyring::lifecycle::{self, KeyToCreate, KeyToRotate};
use palisade_infra::process::process_managers;
use palisade_infra::readmodel::{
    get_risk_summary, list_findings, FindingFilter, FindingSort, Order, Partition, Window,
};
use palisade_infra::{Commands, ManualClock, ProjectionRunner, Scheduler};
use palisade_projections::FindingRow;
use palisade_tests::findings::metadata;
use palisade_tests::{Backend, TestStore};

palisade_tests::in_process_on_both_stores!(
    an_overdue_key_is_one_crypto_finding_until_it_is_rotated,
);

const TENANT: &str = "ten_4b9e0000000000000000000000000016";

fn sealer() -> palisade_infra::crypto::seal::Sealer {
    let root = palisade_infra::crypto::RootKey::from_hex(&"42".repeat(32)).unwrap();
    palisade_infra::crypto::seal::Sealer::new(&root)
}

fn runner(test: &TestStore) -> ProjectionRunner {
    ProjectionRunner::with_consumers(
        test.store.clone(),
        palisade_projections::catalogue(palisade_projections::Redactor::new([7; 32])),
        process_managers(&test.store),
        &test.config,
    )
}

/// Every view, then the process managers, then the views again (for what
/// the managers did).
async fn settle(runner: &ProjectionRunner) {
    for name in [
        "keys",
        "kms-hygiene",
        "kms-alerts",
        "findings",
        "timeline",
        "audit",
    ] {
        runner.catch_up(name).await.unwrap();
    }
}

async fn hygiene_findings(test: &TestStore, partition: &Partition) -> Vec<FindingRow> {
    let filter = FindingFilter {
        product: Some("palisade-kms".into()),
        ..FindingFilter::default()
    };
    list_findings(
        test.store.read_pool(),
        partition,
        &filter,
        FindingSort::CreatedAt,
        Order::Asc,
        Window {
            offset: 0,
            limit: 50,
        },
    )
    .await
    .unwrap()
    .items
}

async fn tenant_score(test: &TestStore, partition: &Partition) -> f64 {
    get_risk_summary(test.store.read_pool(), partition)
        .await
        .unwrap()
        .map_or(0.0, |summary| summary.risk_score)
}

async fn an_overdue_key_is_one_crypto_finding_until_it_is_rotated(backend: Backend) {
    let test = TestStore::open(backend).await;
    let commands = Commands::new(test.store.clone());
    let runner = runner(&test);
    let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
    let day = |days: i64| -> DateTime<Utc> { t0 + chrono::Duration::days(days) };
    let tenant = TenantId::parse(TENANT).unwrap();
    let partition = Partition {
        tenant_id: TENANT.into(),
        environment: Environment::Live,
    };
    let name = KeyName::parse("ledger").unwrap();
    let key_id = key_id_for(&tenant, Environment::Live, &name);
    let create = KeyToCreate {
        key: NewKey {
            key_id,
            tenant_id: tenant,
            environment: Environment::Live,
            name,
            algorithm: Algorithm::Aes256Gcm,
            description: None,
            tags: Vec::new(),
            rotation_period_days: None,
            first_version: NewKeyVersion {
                material_id: String::new(),
                public_key: None,
            },
        },
        at: t0,
    };
    let meta = metadata(TENANT, Environment::Live, t0);
    lifecycle::create(&test.store, &commands, &sealer(), create, &meta)
        .await
        .unwrap();
    settle(&runner).await;
    assert!(hygiene_findings(&test, &partition).await.is_empty());
    let score_before = tenant_score(&test, &partition).await;

    // AES-256's cryptoperiod is 730 days; a day's grace after that the
    // scheduler records the key overdue.
    let clock = Arc::new(ManualClock::new(day(730)));
    let scheduler = Scheduler::new(
        test.store.clone(),
        sealer(),
        clock.clone(),
        Duration::from_secs(1),
    );
    scheduler.tick().await.unwrap();
    settle(&runner).await;
    assert!(
        hygiene_findings(&test, &partition).await.is_empty(),
        "not overdue within the grace day"
    );
    clock.set(day(731) + chrono::Duration::minutes(1));
    scheduler.tick().await.unwrap();
    settle(&runner).await;
    let found = hygiene_findings(&test, &partition).await;
    assert_eq!(found.len(), 1, "{found:?}");
    let finding = &found[0];
    assert_eq!(finding.details.category, "crypto");
    assert_eq!(finding.details.asset_identifier, "kms:key/ledger");
    assert_eq!(finding.status, Status::Open);
    let events = test
        .store
        .aggregate_events("Finding", &finding.id)
        .await
        .unwrap();
    assert_eq!(
        events[0].typed_metadata().unwrap().actor,
        "system:kms-hygiene"
    );
    let score_overdue = tenant_score(&test, &partition).await;
    assert!(
        score_overdue > score_before,
        "the tenant score moves: {score_before} → {score_overdue}"
    );

    // Passes and settles again: nothing new.
    scheduler.tick().await.unwrap();
    settle(&runner).await;
    assert_eq!(hygiene_findings(&test, &partition).await.len(), 1);

    // The rotation remediates it.
    let rotate = KeyToRotate {
        tenant_id: TENANT,
        key_id: &key_id.to_string(),
        algorithm: Algorithm::Aes256Gcm,
        latest_version: 1,
    };
    let at = day(732);
    lifecycle::rotate(
        &test.store,
        &commands,
        &sealer(),
        rotate,
        false,
        &metadata(TENANT, Environment::Live, at),
        at,
    )
    .await
    .unwrap();
    settle(&runner).await;
    let found = hygiene_findings(&test, &partition).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].status, Status::Remediated);
    assert!(tenant_score(&test, &partition).await < score_overdue);
    let (_, version) = commands.load::<Finding>(&found[0].id).await.unwrap();

    // Rebuild every view and the managers, then a fresh runner (a
    // restart): still exactly one finding, and no command was issued again.
    for name in [
        "keys",
        "findings",
        "timeline",
        "audit",
        "kms-hygiene",
        "kms-alerts",
    ] {
        runner.reset(name).await.unwrap();
    }
    settle(&runner).await;
    let restarted = self::runner(&test);
    settle(&restarted).await;
    let again = hygiene_findings(&test, &partition).await;
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(again[0].id, found[0].id);
    assert_eq!(again[0].status, Status::Remediated);
    let (_, after) = commands.load::<Finding>(&found[0].id).await.unwrap();
    assert_eq!(after, version, "the rebuild issued no command");
    test.finish().await;
}
