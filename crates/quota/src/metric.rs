//! Counters exported through the `metrics` crate, so any exporter (Prometheus, StatsD…) can
//! serve them.
//!
//! | name | labels | counts |
//! | --- | --- | --- |
//! | [`AUTH_OUTCOMES`] | `outcome`, `method`, `reason` | audit events seen by [`AuthMetricsLayer`] |
//! | [`RATE_LIMITED`] | `policy` | requests answered 429 |
//! | [`LIMITER_ERRORS`] | `policy` | limiter failures (answered 503) |
//! | [`USAGE`] | `route`, `status_class`, `policy` | requests that reached a handler |
//! | [`USAGE_ERRORS`] | — | usage meter failures |
//! | [`CREDITS_CHARGED`] | `route`, `plan` | credits charged (billable answers) |
//! | [`CREDITS_EXHAUSTED`] | `plan` | requests refused 429 for an exhausted balance |
//! | [`CREDIT_ERRORS`] | — | credit-store failures and failed refunds |
//!
//! Every label value is bounded: policies and routes come from configuration, reasons and
//! methods from code. Subjects are deliberately not labels (one series per user would swamp a
//! time-series database); per-subject counts live in the [`UsageMeter`](crate::UsageMeter).

use std::fmt::Debug;

use apiauth_core::audit::TARGET;
use metrics::{counter, describe_counter};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crate::meter::StatusClass;
use crate::policy::QuotaPolicy;

/// Authentication outcomes, from the audit events.
pub const AUTH_OUTCOMES: &str = "apiauth_auth_outcomes_total";
/// Requests refused with 429.
pub const RATE_LIMITED: &str = "apiauth_ratelimit_rejected_total";
/// Rate-limiter failures, answered 503.
pub const LIMITER_ERRORS: &str = "apiauth_ratelimit_errors_total";
/// Requests that reached a handler.
pub const USAGE: &str = "apiauth_usage_requests_total";
/// Usage-meter failures.
pub const USAGE_ERRORS: &str = "apiauth_usage_errors_total";

/// Registers descriptions of every counter with the installed recorder (for `# HELP` lines).
pub fn describe() {
    describe_counter!(
        AUTH_OUTCOMES,
        "Authentication outcomes by outcome, method and reason"
    );
    describe_counter!(RATE_LIMITED, "Requests refused by the rate limiter");
    describe_counter!(LIMITER_ERRORS, "Rate-limiter failures (answered 503)");
    describe_counter!(
        USAGE,
        "Requests that reached a handler, by route template and status class"
    );
    describe_counter!(USAGE_ERRORS, "Usage-meter failures");
    describe_counter!(
        CREDITS_CHARGED,
        "Credits charged, by route template and plan"
    );
    describe_counter!(
        CREDITS_EXHAUSTED,
        "Requests refused for an exhausted balance"
    );
    describe_counter!(CREDIT_ERRORS, "Credit-store failures and failed refunds");
}

pub(crate) fn rejected(policy: &QuotaPolicy) {
    counter!(RATE_LIMITED, "policy" => policy.shared_name()).increment(1);
}

pub(crate) fn limiter_error(policy: &QuotaPolicy) {
    counter!(LIMITER_ERRORS, "policy" => policy.shared_name()).increment(1);
}

pub(crate) fn usage(route: &str, class: StatusClass, policy: &QuotaPolicy) {
    counter!(
        USAGE,
        "route" => route.to_owned(),
        "status_class" => class.as_str(),
        "policy" => policy.shared_name()
    )
    .increment(1);
}

pub(crate) fn usage_error() {
    counter!(USAGE_ERRORS).increment(1);
}

/// A `tracing_subscriber` layer that counts authentication outcomes.
///
/// It watches the audit events of every method layer (target `apiauth::audit`, fields
/// `outcome`, `method`, `reason`) and increments [`AUTH_OUTCOMES`]; accepted requests carry
/// `reason="none"`. Add it to the subscriber next to your formatter, and let `apiauth::audit`
/// events at `INFO` and above through:
///
/// ```
/// use apiauth_quota::metric::AuthMetricsLayer;
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let subscriber = tracing_subscriber::registry().with(AuthMetricsLayer::new());
/// # drop(subscriber);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct AuthMetricsLayer {
    _private: (),
}

impl AuthMetricsLayer {
    /// A new layer.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Longest label value kept; longer ones are cut, so a label cannot grow without bound.
const MAX_LABEL: usize = 64;

#[derive(Default)]
struct AuditFields {
    outcome: Option<String>,
    method: Option<String>,
    reason: Option<String>,
}

impl AuditFields {
    fn slot(&mut self, field: &Field) -> Option<&mut Option<String>> {
        match field.name() {
            "outcome" => Some(&mut self.outcome),
            "method" => Some(&mut self.method),
            "reason" => Some(&mut self.reason),
            _ => None,
        }
    }
}

fn label(value: &str) -> String {
    value
        .chars()
        .take(MAX_LABEL)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Visit for AuditFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if let Some(slot) = self.slot(field) {
            *slot = Some(label(value));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        if let Some(slot) = self.slot(field) {
            *slot = Some(label(format!("{value:?}").trim_matches('"')));
        }
    }
}

impl<S: Subscriber> Layer<S> for AuthMetricsLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != TARGET {
            return;
        }
        let mut f = AuditFields::default();
        event.record(&mut f);
        // Other messages on the audit target (warnings about set-up) carry no outcome.
        let Some(outcome) = f.outcome else { return };
        let reason = f.reason.filter(|r| !r.is_empty());
        counter!(
            AUTH_OUTCOMES,
            "outcome" => outcome,
            "method" => f.method.unwrap_or_else(|| "unknown".to_owned()),
            "reason" => reason.unwrap_or_else(|| "none".to_owned())
        )
        .increment(1);
    }
}

/// Credits charged, by route template and plan (both from configuration: bounded).
pub const CREDITS_CHARGED: &str = "apiauth_credits_charged_total";
/// Requests refused because the balance was exhausted, by plan.
pub const CREDITS_EXHAUSTED: &str = "apiauth_credits_exhausted_total";
/// Credit-store failures (answered 503) and failed refunds.
pub const CREDIT_ERRORS: &str = "apiauth_credits_errors_total";

pub(crate) fn credits_charged(route: &str, plan: &str, credits: u64) {
    counter!(CREDITS_CHARGED, "route" => route.to_owned(), "plan" => plan.to_owned())
        .increment(credits);
}

pub(crate) fn credits_exhausted(plan: &str) {
    counter!(CREDITS_EXHAUSTED, "plan" => plan.to_owned()).increment(1);
}

pub(crate) fn credit_error() {
    counter!(CREDIT_ERRORS).increment(1);
}
