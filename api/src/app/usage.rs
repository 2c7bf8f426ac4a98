//! The caller's usage this month, in its key's environment: requests by day
//! and by endpoint group, and the tenant's quota. Any valid key may ask.

use chrono::{DateTime, Utc};
use palisade_infra::usage::{quota_used, usage_report, UsageReport};

use super::{App, RequestContext, Result};

/// This month's usage and, on a plan with a quota, how much of it is used.
pub struct Usage {
    pub report: UsageReport,
    /// `(limit, used)`; None on a plan without a quota.
    pub quota: Option<(u64, u64)>,
}

pub async fn report(app: &App, context: &RequestContext, now: DateTime<Utc>) -> Result<Usage> {
    // This replica's requests so far are in it.
    app.usage
        .flush(&app.store)
        .await
        .map_err(super::Error::internal)?;
    let pool = app.store.read_pool();
    let caller = &context.principal;
    let tenant = caller.tenant_id.to_string();
    let report = usage_report(pool, &tenant, caller.environment, now).await?;
    let quota = match caller.plan.monthly_quota() {
        Some(limit) => Some((limit, quota_used(pool, &tenant, now).await?)),
        None => None,
    };
    Ok(Usage { report, quota })
}
