//! The `RateLimit-Policy` and `RateLimit` fields of draft-ietf-httpapi-ratelimit-headers
//! (draft 10), as Structured Field lists (RFC 9651) serialised with `sfv`.
//!
//! Each limit that applies to a request is one policy: the GCRA rate limit of
//! [`QuotaLayer`](crate::QuotaLayer) and the credit balance of
//! [`CreditsLayer`](crate::CreditsLayer) are two items of each list, named alike in both
//! fields so a client can pair them:
//!
//! ```text
//! RateLimit-Policy: "plan:free";q=20;w=60, "credits:free";q=100;w=2678400
//! RateLimit: "plan:free";r=19;t=3, "credits:free";r=95;t=2419200
//! ```
//!
//! The layers collect the items in a [`RateLimitItems`] response extension and each rewrites
//! both fields from all of them, so the order of the layers does not matter.

use http::{HeaderMap, HeaderName, HeaderValue};
use sfv::{Integer, KeyRef, ListSerializer, StringRef};

/// `RateLimit-Policy` (draft §3, "RateLimit-Policy Field"): the quota policies of the
/// resource.
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit` (draft §4, "RateLimit Field"): what is left of each policy now.
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// One policy's state for one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyItem {
    /// The policy's name: the item's String value in both fields.
    pub name: String,
    /// `q` (draft §3.1.1, "Quota"): the quota of the policy's window.
    pub quota: u64,
    /// `w` (draft §3.1.3, "Window"): the window in seconds.
    pub window: u64,
    /// `r` (draft §4.1.1, "Remaining"): quota units left.
    pub remaining: u64,
    /// `t` (draft §4.1.2, "Reset"): seconds until the quota resets.
    pub reset: u64,
}

/// The policies of one answer, in the order they are listed; a response extension.
#[derive(Debug, Clone, Default)]
pub struct RateLimitItems(pub Vec<PolicyItem>);

fn int(v: u64) -> Integer {
    // sf-integer holds 15 digits (RFC 9651 §3.3.1); larger values are clamped.
    Integer::try_from(v).unwrap_or(Integer::MAX)
}

/// Serialises the two fields for `items` (nothing when empty: an empty list is not sent,
/// RFC 9651 §4.1).
#[must_use]
pub fn serialize(items: &[PolicyItem]) -> Option<(String, String)> {
    let mut policy = ListSerializer::new();
    let mut state = ListSerializer::new();
    for it in items {
        // A name that is not an sf-string (non-ASCII or control characters) is skipped.
        let Ok(name) = StringRef::from_str(&it.name) else {
            continue;
        };
        policy
            .bare_item(name)
            .parameter(KeyRef::constant("q"), int(it.quota))
            .parameter(KeyRef::constant("w"), int(it.window));
        state
            .bare_item(name)
            .parameter(KeyRef::constant("r"), int(it.remaining))
            .parameter(KeyRef::constant("t"), int(it.reset));
    }
    Some((policy.finish()?, state.finish()?))
}

/// A request extension set by [`QuotaLayer`](crate::QuotaLayer): it rewrites both fields
/// from every item on the way out, so a layer inside it only adds its item
/// ([`add_policy`] with `write` false) and the fields are serialised once per answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WrittenOutside;

/// Adds `item` to the answer's policies (`first`: before the others) and, with `write`,
/// rewrites both fields from all of them.
pub(crate) fn add_policy<B>(
    res: &mut http::Response<B>,
    item: PolicyItem,
    first: bool,
    write_fields: bool,
) {
    let items = res
        .extensions_mut()
        .get_or_insert_default::<RateLimitItems>();
    items.0.retain(|i| i.name != item.name);
    if first {
        items.0.insert(0, item);
    } else {
        items.0.push(item);
    }
    if !write_fields {
        return;
    }
    let serialized = serialize(&items.0);
    write(res.headers_mut(), serialized);
}

fn write(headers: &mut HeaderMap, serialized: Option<(String, String)>) {
    if let Some((policy, state)) = serialized
        && let (Ok(p), Ok(s)) = (
            HeaderValue::from_str(&policy),
            HeaderValue::from_str(&state),
        )
    {
        headers.insert(RATELIMIT_POLICY, p);
        headers.insert(RATELIMIT, s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_policies_serialise_as_two_list_members() {
        let items = [
            PolicyItem {
                name: "plan:free".into(),
                quota: 20,
                window: 60,
                remaining: 19,
                reset: 3,
            },
            PolicyItem {
                name: "credits:free".into(),
                quota: 100,
                window: 2_678_400,
                remaining: 95,
                reset: 10,
            },
        ];
        let (p, s) = serialize(&items).unwrap();
        assert_eq!(
            p,
            r#""plan:free";q=20;w=60, "credits:free";q=100;w=2678400"#
        );
        assert_eq!(s, r#""plan:free";r=19;t=3, "credits:free";r=95;t=10"#);
        assert!(serialize(&[]).is_none());
    }
}
