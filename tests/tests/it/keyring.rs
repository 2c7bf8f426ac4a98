//! The key ring in process, on both stores: a ring fill never trusts a
//! keys view that is behind the key's events, so a view that lags or is
//! being rebuilt (where a disabled key would still read as enabled) never
//! lets an operation run on an older state of its key.
#![allow(clippy::unwrap_used)]

use chrono::Utc;
use palisade_domain::key::{
    key_id_for, Algorithm, Key, KeyCommand, KeyName, KeyState, NewKey, NewKeyVersion,
};
use palisade_domain::{Environment, TenantId};
use palisade_infra::crypto::seal::Sealer;
use palisade_infra::crypto::RootKey;
use palisade_infra::keyring::lifecycle::{self, KeyToCreate};
use palisade_infra::keyring::{KeyRing, Lookup};
use palisade_infra::readmodel::Partition;
use palisade_infra::{Commands, ProjectionRunner};
use palisade_tests::findings::metadata;
use palisade_tests::{Backend, TestStore};

palisade_tests::in_process_on_both_stores!(a_fill_waits_for_a_view_that_is_behind_the_key);

const TENANT: &str = "ten_6b65790000000000000000000000000a";

async fn a_fill_waits_for_a_view_that_is_behind_the_key(backend: Backend) {
    let test = TestStore::open(backend).await;
    let commands = Commands::new(test.store.clone());
    let runner = ProjectionRunner::new(
        test.store.clone(),
        palisade_projections::catalogue(palisade_projections::Redactor::new([7; 32])),
        &test.config,
    );
    let sealer = Sealer::new(&RootKey::from_hex(&"42".repeat(32)).unwrap());
    let tenant = TenantId::parse(TENANT).unwrap();
    let name = KeyName::parse("lagging").unwrap();
    let key_id = key_id_for(&tenant, Environment::Live, &name);
    let now = Utc::now();
    let meta = metadata(TENANT, Environment::Live, now);
    let key = NewKey {
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
    };
    lifecycle::create(
        &test.store,
        &commands,
        &sealer,
        KeyToCreate { key, at: now },
        &meta,
    )
    .await
    .unwrap();
    let ring = KeyRing::new(test.store.clone(), sealer);
    let partition = Partition {
        tenant_id: TENANT.into(),
        environment: Environment::Live,
    };
    let id = key_id.to_string();
    assert!(matches!(
        ring.key(&partition, &id).await.unwrap(),
        Lookup::Missing
    ));
    runner.catch_up("keys").await.unwrap();

    // Disabled in the events, not yet in the view: the ring refuses to fill.
    commands
        .execute::<Key>(&id, KeyCommand::Disable { at: now }, (), &meta)
        .await
        .unwrap();
    match ring.key(&partition, &id).await.unwrap() {
        Lookup::Behind { version } => assert_eq!(version, 2),
        Lookup::Found(key) => panic!("filled from a view behind the key: {:?}", key.key.state),
        Lookup::Missing => panic!("the key is missing"),
    }
    runner.catch_up("keys").await.unwrap();
    match ring.key(&partition, &id).await.unwrap() {
        Lookup::Found(key) => assert_eq!(key.key.state, KeyState::Disabled),
        _ => panic!("the view has caught up"),
    }
    // Another partition never sees it, from memory or not.
    let other = Partition {
        tenant_id: TENANT.into(),
        environment: Environment::Test,
    };
    assert!(matches!(
        ring.key(&other, &id).await.unwrap(),
        Lookup::Missing
    ));
    test.finish().await;
}
