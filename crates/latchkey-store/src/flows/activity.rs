//! The counts behind the activity charts: read-only, one snapshot each.

use crate::activity::{DaySignIns, HourCount, LoginOutcome, LoginOverview};
use crate::txn::Txn;
use latchkey_domain::Timestamp;

/// The user's device sign-ins since `since`, per device and UTC day.
pub async fn device_sign_ins<T: Txn>(tx: &T, user_id: &str, since: Timestamp) -> Result<Vec<DaySignIns>, T::Error> {
    tx.device_sign_ins_by_day(user_id, since).await
}

/// Device logins since `since` per outcome and hour; a login requested before
/// `expired_before` that nobody decided counts as expired. With the active totals.
pub async fn overview<T: Txn>(tx: &T, since: Timestamp, expired_before: Timestamp) -> Result<LoginOverview, T::Error> {
    let mut hours: Vec<HourCount> = tx
        .logins_by_hour(since)
        .await?
        .into_iter()
        .filter_map(|(kind, hour, count)| {
            LoginOutcome::from_audit_kind(&kind).map(|outcome| HourCount { outcome, hour, count })
        })
        .collect();
    hours.extend(tx.expired_logins_by_hour(since, expired_before).await?.into_iter().map(|(hour, count)| HourCount {
        outcome: LoginOutcome::Expired,
        hour,
        count,
    }));
    let (active_devices, active_users) = tx.active_totals().await?;
    Ok(LoginOverview { hours, active_devices, active_users })
}
