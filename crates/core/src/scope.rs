//! Scopes: parsed strictly per RFC 6749 §3.3 and declared once as types.
//!
//! ```
//! use apiauth_core::{scope, AllOf, AnyOf, ScopeRequirement, ScopeSet};
//!
//! scope!(pub CompaniesRead = "companies:read");
//! scope!(pub ContactsRead = "contacts:read");
//!
//! let granted = ScopeSet::parse("companies:read contacts:read").unwrap();
//! assert!(CompaniesRead::is_satisfied_by(&granted));
//! assert!(<AllOf<(CompaniesRead, ContactsRead)>>::is_satisfied_by(&granted));
//! assert!(<AnyOf<(CompaniesRead, ContactsRead)>>::is_satisfied_by(&ScopeSet::parse("contacts:read").unwrap()));
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

/// A scope string that is not valid RFC 6749 §3.3 syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed scope string: {reason}")]
pub struct ScopeParseError {
    reason: &'static str,
}

/// Whether `token` is one RFC 6749 §3.3 `scope-token`:
/// `1*( %x21 / %x23-5B / %x5D-7E )`, i.e. visible ASCII except `"` and `\`.
pub const fn is_valid_scope_token(token: &str) -> bool {
    let bytes = token.as_bytes();
    if bytes.is_empty() {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let ok = b == 0x21 || (b >= 0x23 && b <= 0x5B) || (b >= 0x5D && b <= 0x7E);
        if !ok {
            return false;
        }
        i += 1;
    }
    true
}

/// An immutable, de-duplicated set of scope tokens. Cheap to clone.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ScopeSet {
    // Sorted and de-duplicated, so lookups are a binary search and equality is structural.
    tokens: Arc<[Box<str>]>,
}

impl ScopeSet {
    /// The empty set.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Parses a space-delimited scope string (RFC 6749 §3.3:
    /// `scope = scope-token *( SP scope-token )`). The empty string is the empty set.
    /// Leading, trailing or doubled spaces, tabs, quotes, backslashes and non-ASCII are refused.
    pub fn parse(s: &str) -> Result<Self, ScopeParseError> {
        if s.is_empty() {
            return Ok(Self::empty());
        }
        let mut tokens = Vec::new();
        for token in s.split(' ') {
            if token.is_empty() {
                return Err(ScopeParseError {
                    reason: "scope tokens must be separated by exactly one space",
                });
            }
            if !is_valid_scope_token(token) {
                return Err(ScopeParseError {
                    reason: "scope token contains a character outside %x21 / %x23-5B / %x5D-7E",
                });
            }
            tokens.push(token);
        }
        Ok(Self::from_valid(tokens))
    }

    /// Builds a set from individual tokens, each checked against RFC 6749 §3.3.
    pub fn from_tokens<I, T>(tokens: I) -> Result<Self, ScopeParseError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let tokens: Vec<T> = tokens.into_iter().collect();
        for token in &tokens {
            if !is_valid_scope_token(token.as_ref()) {
                return Err(ScopeParseError {
                    reason: "scope token contains a character outside %x21 / %x23-5B / %x5D-7E",
                });
            }
        }
        Ok(Self::from_valid(tokens.iter().map(AsRef::as_ref)))
    }

    fn from_valid<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Self {
        let mut v: Vec<Box<str>> = tokens.into_iter().map(Box::from).collect();
        v.sort_unstable();
        v.dedup();
        Self { tokens: v.into() }
    }

    /// Whether `scope` is granted.
    pub fn contains(&self, scope: &str) -> bool {
        self.tokens
            .binary_search_by(|t| t.as_ref().cmp(scope))
            .is_ok()
    }

    /// Whether every scope of `other` is granted here.
    pub fn is_superset_of(&self, other: &ScopeSet) -> bool {
        other.iter().all(|s| self.contains(s))
    }

    /// The tokens, in sorted order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.tokens.iter().map(AsRef::as_ref)
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

impl fmt::Display for ScopeSet {
    /// The RFC 6749 §3.3 form: tokens joined by single spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.tokens.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(t)?;
        }
        Ok(())
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl std::str::FromStr for ScopeSet {
    type Err = ScopeParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for ScopeSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ScopeSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        ScopeSet::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A scope declared as a type, so that a route's requirement is checked by the compiler.
/// Declare with [`scope!`](crate::scope!).
pub trait Scope: Send + Sync + 'static {
    /// The scope token.
    const NAME: &'static str;
}

/// Declares a scope type: `scope!(pub ContactsRead = "contacts:read");`.
///
/// The token is checked against RFC 6749 §3.3 at compile time.
#[macro_export]
macro_rules! scope {
    ($(#[$meta:meta])* $vis:vis $name:ident = $value:literal $(;)?) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        $vis struct $name;
        impl $crate::Scope for $name {
            const NAME: &'static str = $value;
        }
        const _: () = assert!(
            $crate::scope::is_valid_scope_token($value),
            "scope token must match RFC 6749 §3.3 scope-token"
        );
    };
}

/// A requirement on a principal's scopes, checked by [`Scoped`](crate::Scoped).
///
/// Implemented by every [`Scope`] type, by [`AllOf`] and by [`AnyOf`].
pub trait ScopeRequirement: Send + Sync + 'static {
    /// Whether `granted` meets the requirement.
    fn is_satisfied_by(granted: &ScopeSet) -> bool;
    /// The scope tokens named by the requirement, for the RFC 6750 `scope` attribute.
    fn scopes() -> Vec<&'static str>;
}

impl<T: Scope> ScopeRequirement for T {
    fn is_satisfied_by(granted: &ScopeSet) -> bool {
        granted.contains(T::NAME)
    }
    fn scopes() -> Vec<&'static str> {
        vec![T::NAME]
    }
}

/// Every scope of the tuple `T` is required: `Scoped<AllOf<(A, B)>>`.
pub struct AllOf<T>(PhantomData<fn() -> T>);

/// At least one scope of the tuple `T` is required: `Scoped<AnyOf<(A, B)>>`.
pub struct AnyOf<T>(PhantomData<fn() -> T>);

macro_rules! tuple_requirements {
    ($($t:ident),+) => {
        impl<$($t: Scope),+> ScopeRequirement for AllOf<($($t,)+)> {
            fn is_satisfied_by(granted: &ScopeSet) -> bool {
                true $(&& granted.contains($t::NAME))+
            }
            fn scopes() -> Vec<&'static str> {
                vec![$($t::NAME),+]
            }
        }
        impl<$($t: Scope),+> ScopeRequirement for AnyOf<($($t,)+)> {
            fn is_satisfied_by(granted: &ScopeSet) -> bool {
                false $(|| granted.contains($t::NAME))+
            }
            fn scopes() -> Vec<&'static str> {
                vec![$($t::NAME),+]
            }
        }
    };
}

tuple_requirements!(A);
tuple_requirements!(A, B);
tuple_requirements!(A, B, C);
tuple_requirements!(A, B, C, D);
tuple_requirements!(A, B, C, D, E);
tuple_requirements!(A, B, C, D, E, F);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_space_delimited_tokens_and_dedups() {
        let s = ScopeSet::parse("b a b c:d").unwrap();
        assert_eq!(s.to_string(), "a b c:d");
        assert!(s.contains("c:d"));
        assert!(!s.contains("c"));
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn empty_string_is_empty_set() {
        assert!(ScopeSet::parse("").unwrap().is_empty());
    }

    #[test]
    fn malformed_scope_strings_are_refused() {
        for bad in [
            " a",
            "a ",
            "a  b",
            "a\tb",
            "a\"b",
            "a\\b",
            "caf\u{e9}",
            "a\nb",
            " ",
            "a\u{7f}",
        ] {
            assert!(ScopeSet::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn every_allowed_character_is_accepted() {
        let all: String = (0x21u8..=0x7e)
            .filter(|b| *b != b'"' && *b != b'\\')
            .map(char::from)
            .collect();
        assert!(ScopeSet::parse(&all).unwrap().contains(&all));
    }

    #[test]
    fn serde_round_trip_is_strict() {
        let s: ScopeSet = serde_json::from_str("\"x y\"").unwrap();
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"x y\"");
        assert!(serde_json::from_str::<ScopeSet>("\"x  y\"").is_err());
    }
}
