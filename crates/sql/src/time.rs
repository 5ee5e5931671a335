//! Times as BIGINT columns: whole Unix seconds for records (the JSON form the other stores
//! keep), milliseconds for revocations.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apiauth_core::StoreError;

use crate::error::corrupt;

/// Whole Unix seconds, rounded down (an expiry only moves earlier); saturating.
pub(crate) fn secs(t: SystemTime) -> i64 {
    i64::try_from(apiauth_core::clock::unix_seconds(t)).unwrap_or(i64::MAX)
}

#[cfg(feature = "api-key")]
pub(crate) fn opt_secs(t: Option<SystemTime>) -> Option<i64> {
    t.map(secs)
}

/// Unix milliseconds rounded up, so a revocation never ends early; saturating.
pub(crate) fn millis_ceil(t: SystemTime) -> i64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let ms = d.as_millis() + u128::from(!d.subsec_nanos().is_multiple_of(1_000_000));
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// Unix milliseconds rounded down.
pub(crate) fn millis(t: SystemTime) -> i64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn from_secs(op: &'static str, s: i64) -> Result<SystemTime, StoreError> {
    u64::try_from(s)
        .ok()
        .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)))
        .ok_or_else(|| corrupt(op))
}

pub(crate) fn from_opt_secs(
    op: &'static str,
    s: Option<i64>,
) -> Result<Option<SystemTime>, StoreError> {
    s.map(|s| from_secs(op, s)).transpose()
}
