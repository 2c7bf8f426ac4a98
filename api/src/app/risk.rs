//! Risk use cases: the overview of a tenant environment, its daily history,
//! and the from-scratch recalculation (the `RiskLedger` aggregate records
//! it, and the findings projection then takes the recomputed scores).

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate, Utc};
use palisade_domain::risk::{finding_risk, RiskAccumulator, RiskLedger, RiskLedgerCommand};
use palisade_infra::readmodel::{
    counted_findings, get_risk_summary, list_assets, risk_history, AssetFilter, AssetSort, Order,
    PageRequest,
};
use palisade_infra::CommandError;
use palisade_projections::{AssetRow, FindingsProjection, Projection as _, RiskSummaryRow};

use super::auth::{FindingsRead, FindingsWrite};
use super::{App, Authorized, Error, RequestContext, Result};

/// A tenant environment at a glance: its summary (None before the first
/// finding) and its five riskiest assets.
pub struct Overview {
    pub summary: Option<RiskSummaryRow>,
    pub top_assets: Vec<AssetRow>,
}

/// The caller's overview.
pub async fn overview(app: &App, context: &Authorized<FindingsRead>) -> Result<Overview> {
    let pool = app.store.read_pool();
    let partition = context.principal.partition();
    let summary = get_risk_summary(pool, &partition).await?;
    let top = list_assets(
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
            per_page: 5,
        },
    )
    .await?;
    Ok(Overview {
        summary,
        top_assets: top.items,
    })
}

/// One score a day for the last `days` days, oldest first, ending today.
pub async fn history(
    app: &App,
    context: &Authorized<FindingsRead>,
    days: u32,
) -> Result<Vec<(NaiveDate, f64)>> {
    let today = Utc::now().date_naive();
    let since = today - Duration::days(i64::from(days) - 1);
    let partition = context.principal.partition();
    let (carried, points) = risk_history(app.store.read_pool(), &partition, since).await?;
    let mut score = carried.unwrap_or(0.0);
    let mut recorded = points.into_iter().peekable();
    let mut series = Vec::with_capacity(days as usize);
    let mut day = since;
    while day <= today {
        while let Some((_, value)) = recorded.next_if(|(d, _)| *d <= day) {
            score = value;
        }
        series.push((day, score));
        day += Duration::days(1);
    }
    Ok(series)
}

/// A recalculation's figures.
pub struct Recalculated {
    /// The incrementally kept tenant score.
    pub previous: f64,
    /// The score computed from scratch from the findings.
    pub recalculated: f64,
    pub dry_run: bool,
    pub findings_counted: usize,
    pub assets_counted: usize,
}

/// Recomputes the caller's tenant risk from scratch; without `dry_run`
/// records it (scope `findings:write`; a dry run needs `findings:read`).
pub async fn recalculate(
    app: &App,
    context: &RequestContext,
    dry_run: bool,
) -> Result<Recalculated> {
    if dry_run {
        let _: Authorized<FindingsRead> = context.authorize()?;
    } else {
        let _: Authorized<FindingsWrite> = context.authorize()?;
    }
    // Everything acknowledged so far must be in the view compared.
    let name = FindingsProjection.name();
    app.await_views(&[name]).await?;
    let pool = app.store.read_pool();
    let partition = context.principal.partition();
    let previous = get_risk_summary(pool, &partition)
        .await?
        .map_or(0.0, |s| s.risk_score);
    let findings = counted_findings(pool, &partition).await?;
    let mut by_asset: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for f in &findings {
        let d = &f.details;
        by_asset
            .entry(f.asset_id.as_str())
            .or_default()
            .push(finding_risk(d.severity, d.likelihood, d.impact, f.status));
    }
    let recalculated = RiskAccumulator::combine(
        by_asset
            .values()
            .map(|r| RiskAccumulator::combine(r.iter().copied())),
    );
    if !dry_run {
        let command = RiskLedgerCommand::RecordRecalculation {
            previous,
            recalculated,
            at: Utc::now(),
        };
        let ledger = RiskLedger::id_for(&partition.tenant_id, partition.environment);
        let version = app
            .commands
            .execute::<RiskLedger>(&ledger, command, (), &context.metadata())
            .await
            .map_err(|e| match e {
                CommandError::Conflict => {
                    Error::conflict("Another recalculation ran at the same time; retry")
                }
                other => Error::internal(other),
            })?;
        // Later reads see the corrected scores.
        if let Some(position) = app
            .store
            .feed_position_of("RiskLedger", &ledger, version)
            .await?
        {
            app.runner
                .wait_until_applied(name, position, app.strong_read_timeout)
                .await?;
        }
    }
    Ok(Recalculated {
        previous,
        recalculated,
        dry_run,
        findings_counted: findings.len(),
        assets_counted: by_asset.len(),
    })
}
