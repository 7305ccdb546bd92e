//! The report's inputs from the store: one read each, then [`super::compute`].

use super::{Inputs, Period, Report, compute};
use crate::config::Config;
use crate::store::{Store, StoreError};

/// Reads what [`compute`] needs from `store` and computes the report for `period`.
pub async fn load(
    store: &dyn Store,
    config: &Config,
    period: Period,
) -> Result<Report, StoreError> {
    let history = store.group_history(period.since).await?;
    let groups = store.list_groups(None).await?;
    let (tags, _) = store.ignore_tags().await?;
    let accounts: Vec<_> = config.settings.accounts.values().cloned().collect();
    Ok(compute(
        Inputs {
            history: &history,
            groups: &groups,
            ignore_tags: &tags,
            accounts: &accounts,
        },
        period,
    ))
}
