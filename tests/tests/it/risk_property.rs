//! A randomized property test on both stores: for random sequences of
//! ingests, re-observations, dismissals, remediations, reopenings,
//! confirmations, risk acceptances and severity changes, the risk scores
//! the findings projection keeps incrementally equal the formula of `docs/findings.md`
//! computed from scratch, per finding, per asset and per tenant, at every
//! checkpoint. Each case is a seed; a failure names it, so it can be
//! replayed with `PALISADE_PROPERTY_SEED=<seed>`.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use palisade_domain::finding::{Finding, FindingCommand, Severity, Status, Transition};
use palisade_domain::risk::{finding_risk, RiskAccumulator};
use palisade_domain::{AssetId, Environment, FindingId};
use palisade_infra::readmodel::{
    get_asset, get_finding, get_risk_summary, AssetFilter, AssetSort, Order, PageRequest, Partition,
};
use palisade_infra::{CommandError, Commands, ProjectionRunner, Store};
use palisade_tests::findings::{ingest, metadata};
use palisade_tests::{Backend, TestStore};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

palisade_tests::in_process_on_both_stores!(incremental_risk_equals_the_formula_from_scratch);

const TENANT: &str = "ten_9e0be47100000000000000000000000a";
const ASSETS: [&str; 4] = ["app.example.com", "db.example.com", "vpn.example.com", "ci"];
const CASES: u64 = 6;
const STEPS: usize = 60;

/// What the test believes about one finding.
#[derive(Debug, Clone)]
struct Modelled {
    id: String,
    asset: usize,
    severity: Severity,
    likelihood_impact: Option<(f64, f64)>,
    status: Status,
}

impl Modelled {
    fn risk(&self) -> f64 {
        let (l, i) = self.likelihood_impact.unzip();
        finding_risk(self.severity, l, i, self.status)
    }
}

/// Asset ids are per tenant environment, as the API derives them.
fn asset_id(seed: u64, index: usize) -> AssetId {
    AssetId::from_uuid(Uuid::from_u128(((seed as u128) << 64) + index as u128))
}

fn random_severity(rng: &mut StdRng) -> Severity {
    Severity::ALL[rng.gen_range(0..Severity::ALL.len())]
}

async fn incremental_risk_equals_the_formula_from_scratch(backend: Backend) {
    let test = TestStore::open(backend).await;
    let seeds: Vec<u64> = match std::env::var("PALISADE_PROPERTY_SEED") {
        Ok(seed) => vec![seed.parse().unwrap()],
        Err(_) => (1..=CASES).map(|case| case * 7919).collect(),
    };
    for seed in seeds {
        run_case(&test.store, &test.config, seed).await;
    }
    test.finish().await;
}

async fn run_case(store: &Store, config: &palisade_infra::Config, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let commands = Commands::new(store.clone());
    let runner = ProjectionRunner::new(
        store.clone(),
        palisade_projections::catalogue(palisade_projections::Redactor::new([7; 32])),
        config,
    );
    // Each case is its own tenant environment, so cases do not mix.
    let tenant = format!("{}{:04x}", &TENANT[..TENANT.len() - 4], seed % 0xffff);
    let environment = if seed.is_multiple_of(2) {
        Environment::Live
    } else {
        Environment::Test
    };
    let t0 = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
    let mut findings: Vec<Modelled> = Vec::new();
    let mut log = Vec::new();
    for step in 0..STEPS {
        let at = t0 + chrono::Duration::minutes(step as i64);
        let meta = metadata(&tenant, environment, at);
        let existing = (!findings.is_empty()).then(|| rng.gen_range(0..findings.len()));
        let choice = if existing.is_none() {
            0
        } else {
            rng.gen_range(0..9)
        };
        let (target, command, transition) = match (choice, existing) {
            (0 | 1, _) | (_, None) => {
                let asset = rng.gen_range(0..ASSETS.len());
                let likelihood_impact = rng
                    .gen_bool(0.7)
                    .then(|| (rng.gen_range(0.0..=1.0), rng.gen_range(0.0..=1.0)));
                let severity = random_severity(&mut rng);
                let finding = Modelled {
                    id: FindingId::from_uuid(Uuid::new_v4()).to_string(),
                    asset,
                    severity,
                    likelihood_impact,
                    status: Status::Open,
                };
                let command = ingest(
                    FindingId::parse(&finding.id).unwrap(),
                    (asset_id(seed, asset), ASSETS[asset]),
                    &format!("finding {step}"),
                    severity,
                    likelihood_impact,
                    at,
                );
                findings.push(finding);
                (findings.len() - 1, command, None)
            }
            (2, Some(i)) => (
                i,
                FindingCommand::Reobserve { observed_at: at },
                Some(Transition::Regress),
            ),
            (3, Some(i)) => (
                i,
                FindingCommand::Dismiss {
                    reason: "noise".into(),
                    at,
                },
                Some(Transition::Dismiss),
            ),
            (4, Some(i)) => (
                i,
                FindingCommand::Remediate { at },
                Some(Transition::Remediate),
            ),
            (5, Some(i)) => (
                i,
                FindingCommand::Reopen { reason: None, at },
                Some(Transition::Reopen),
            ),
            (6, Some(i)) => (i, FindingCommand::Confirm { at }, Some(Transition::Confirm)),
            (7, Some(i)) => (
                i,
                FindingCommand::AcceptRisk {
                    reason: "accepted".into(),
                    expires_at: at + chrono::Duration::days(30),
                    at,
                },
                Some(Transition::AcceptRisk),
            ),
            (_, Some(i)) => {
                let severity = random_severity(&mut rng);
                let command = FindingCommand::ChangeSeverity {
                    severity,
                    reason: None,
                    at,
                };
                findings[i].severity = severity;
                (i, command, None)
            }
        };
        log.push(format!("{step}: {command:?}"));
        let outcome = commands
            .execute::<Finding>(&findings[target].id, command, (), &meta)
            .await;
        let model = &mut findings[target];
        match (transition, outcome) {
            // A re-observation always succeeds; it reopens a remediated one.
            (Some(Transition::Regress), Ok(_)) => {
                model.status = model
                    .status
                    .after(Transition::Regress)
                    .unwrap_or(model.status)
            }
            (Some(transition), Ok(_)) => {
                model.status = model.status.after(transition).unwrap_or_else(|| {
                    panic!(
                        "seed {seed}: {transition:?} from {:?} succeeded",
                        model.status
                    )
                })
            }
            (Some(transition), Err(CommandError::Rejected(_))) => assert!(
                model.status.after(transition).is_none(),
                "seed {seed}: {transition:?} from {:?} was refused",
                model.status
            ),
            (None, Ok(_)) => {}
            (_, Err(error)) => panic!("seed {seed} step {step}: {error}"),
        }
        // Check at random moments, so batches of every size are applied.
        if rng.gen_bool(0.2) || step == STEPS - 1 {
            runner.catch_up("findings").await.unwrap();
            check(store, &tenant, environment, &findings, seed, &log).await;
        }
    }
}

async fn check(
    store: &Store,
    tenant: &str,
    environment: Environment,
    findings: &[Modelled],
    seed: u64,
    log: &[String],
) {
    let pool = store.read_pool();
    let partition = Partition {
        tenant_id: tenant.into(),
        environment,
    };
    let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
    let context = || format!("seed {seed}, after:\n{}", log.join("\n"));
    let mut by_asset: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for finding in findings {
        let row = get_finding(pool, &partition, &finding.id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{} missing; {}", finding.id, context()));
        assert_eq!(row.status, finding.status, "{}", context());
        assert!(
            close(row.risk_score, finding.risk()),
            "finding {}: view {} ≠ formula {}; {}",
            finding.id,
            row.risk_score,
            finding.risk(),
            context()
        );
        by_asset
            .entry(finding.asset)
            .or_default()
            .push(finding.risk());
    }
    let mut asset_scores = Vec::new();
    for (asset, risks) in &by_asset {
        let expected = RiskAccumulator::combine(risks.iter().copied());
        let row = get_asset(pool, &partition, ASSETS[*asset])
            .await
            .unwrap()
            .unwrap();
        assert!(
            close(row.risk_score, expected),
            "asset {}: view {} ≠ formula {expected}; {}",
            ASSETS[*asset],
            row.risk_score,
            context()
        );
        let counted = findings
            .iter()
            .filter(|f| f.asset == *asset && f.status.counts_for_risk())
            .count();
        assert_eq!(row.open_findings, counted as i64, "{}", context());
        asset_scores.push(expected);
    }
    let expected = RiskAccumulator::combine(asset_scores.iter().copied());
    let summary = get_risk_summary(pool, &partition).await.unwrap().unwrap();
    assert!(
        close(summary.risk_score, expected),
        "tenant: view {} ≠ formula {expected}; {}",
        summary.risk_score,
        context()
    );
    assert_eq!(summary.total_findings, findings.len() as i64);
    assert_eq!(summary.total_assets, by_asset.len() as i64);
    let at_risk = palisade_infra::readmodel::list_assets(
        pool,
        &partition,
        &AssetFilter {
            min_risk: Some(f64::MIN_POSITIVE),
            ..AssetFilter::default()
        },
        AssetSort::Risk,
        Order::Desc,
        PageRequest {
            page: 1,
            per_page: 100,
        },
    )
    .await
    .unwrap();
    assert_eq!(summary.assets_at_risk, at_risk.total, "{}", context());
}
