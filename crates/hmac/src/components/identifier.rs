//! Component identifiers (RFC 9421 §2.1, §2.2): the public [`Component`] a policy or a signer
//! names, what a received identifier's name and parameters mean, and which fields are
//! structured.

use std::fmt;

use http::HeaderName;
use sfv::{BareItem, BareItemFromInput, FieldType, Item, Key, KeyRef, Parameters, StringRef};

use super::form::form_encode;
use crate::error::HttpSigConfigError;

/// The type of a structured field (RFC 8941 §3), needed to re-serialize it for `;sf`/`;key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SfType {
    /// An sf-item.
    Item,
    /// An sf-list.
    List,
    /// An sf-dictionary.
    Dictionary,
}

/// Fields this crate knows to be structured. Others need [`SfType`] configured to be covered
/// with `;sf` or `;key` (RFC 9421 §2.1.1: the application must know the type).
pub(super) const KNOWN_STRUCTURED: &[(&str, SfType)] = &[
    ("signature-input", SfType::Dictionary),
    ("signature", SfType::Dictionary),
    ("accept-signature", SfType::Dictionary),
    ("content-digest", SfType::Dictionary),
    ("repr-digest", SfType::Dictionary),
    ("want-content-digest", SfType::Dictionary),
    ("want-repr-digest", SfType::Dictionary),
    ("priority", SfType::Dictionary),
    ("cdn-cache-control", SfType::Dictionary),
    ("accept-ch", SfType::List),
    ("cache-status", SfType::List),
    ("proxy-status", SfType::List),
];

/// The structured-field types known to one verifier or signer.
#[derive(Debug, Clone, Default)]
pub(crate) struct StructuredFields {
    pub(super) extra: Vec<(HeaderName, SfType)>,
}

impl StructuredFields {
    pub(crate) fn add(&mut self, name: HeaderName, ty: SfType) {
        self.extra.retain(|(n, _)| *n != name);
        self.extra.push((name, ty));
    }

    pub(super) fn type_of(&self, name: &str) -> Option<SfType> {
        self.extra
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, t)| *t)
            .or_else(|| {
                KNOWN_STRUCTURED
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, t)| *t)
            })
    }
}

/// One covered component: a component identifier (RFC 9421 §2), a name and its parameters.
///
/// ```
/// use apiauth_hmac::Component;
/// let c = Component::query_param("Pet").unwrap();
/// assert_eq!(c.to_string(), r#""@query-param";name="Pet""#);
/// let d = Component::field(http::HeaderName::from_static("content-digest"));
/// assert_eq!(d.to_string(), r#""content-digest""#);
/// ```
#[derive(Clone, PartialEq)]
pub struct Component {
    pub(super) name: String,
    pub(super) params: Parameters,
}

impl Component {
    pub(super) fn bare(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            params: Parameters::new(),
        }
    }

    /// `@method` (RFC 9421 §2.2.1).
    pub fn method() -> Self {
        Self::bare("@method")
    }
    /// `@target-uri` (§2.2.2).
    pub fn target_uri() -> Self {
        Self::bare("@target-uri")
    }
    /// `@authority` (§2.2.3).
    pub fn authority() -> Self {
        Self::bare("@authority")
    }
    /// `@scheme` (§2.2.4).
    pub fn scheme() -> Self {
        Self::bare("@scheme")
    }
    /// `@request-target` (§2.2.5).
    pub fn request_target() -> Self {
        Self::bare("@request-target")
    }
    /// `@path` (§2.2.6).
    pub fn path() -> Self {
        Self::bare("@path")
    }
    /// `@query` (§2.2.7).
    pub fn query() -> Self {
        Self::bare("@query")
    }

    /// `@query-param;name="…"` (§2.2.8). `name` is the decoded parameter name.
    pub fn query_param(name: &str) -> Result<Self, HttpSigConfigError> {
        let encoded = form_encode(name.as_bytes());
        let value = sfv::String::from_string(encoded)
            .map_err(|_| HttpSigConfigError::InvalidComponent(name.to_owned()))?;
        let mut c = Self::bare("@query-param");
        c.params.insert(key("name"), BareItem::String(value));
        Ok(c)
    }

    /// An HTTP field, by name (`HeaderName` is lowercase, as RFC 9421 §2.1 wants it).
    pub fn field(name: HeaderName) -> Self {
        Self::bare(name.as_str())
    }

    /// Adds `;sf`: the field is re-serialized as a structured field (§2.1.1).
    pub fn sf(mut self) -> Self {
        self.params.insert(key("sf"), BareItem::Boolean(true));
        self
    }

    /// Adds `;key="…"`: one member of a dictionary field (§2.1.2).
    pub fn key(mut self, member: &str) -> Result<Self, HttpSigConfigError> {
        let value = sfv::String::from_string(member.to_owned())
            .map_err(|_| HttpSigConfigError::InvalidComponent(member.to_owned()))?;
        self.params.insert(key("key"), BareItem::String(value));
        Ok(self)
    }

    /// Adds `;bs`: every field line is wrapped as a byte sequence (§2.1.3).
    pub fn bs(mut self) -> Self {
        self.params.insert(key("bs"), BareItem::Boolean(true));
        self
    }

    /// The component name (`@method`, `content-type`, …).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn to_item(&self) -> Item {
        // Names were checked to be visible ASCII when the component was made.
        let name = sfv::String::from_string(self.name.clone())
            .unwrap_or_else(|_| StringRef::constant("invalid").to_owned());
        Item::with_params(BareItem::String(name), self.params.clone())
    }
}

impl fmt::Display for Component {
    /// The serialized component identifier, as it appears in the signature base.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_item().serialize())
    }
}

impl fmt::Debug for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Component({self})")
    }
}

/// A parameter key from a literal known to be valid.
pub(super) fn key(s: &'static str) -> Key {
    KeyRef::constant(s).to_owned()
}

/// What a covered component's name says it is (RFC 9421 §2.1, §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Method,
    TargetUri,
    Authority,
    Scheme,
    RequestTarget,
    Path,
    Query,
    QueryParam,
    /// `@status`, `@signature-params` or an unknown derived name: never derivable here.
    OtherDerived,
    Field,
}

impl Kind {
    pub(super) fn of(name: &str) -> Self {
        match name {
            "@method" => Kind::Method,
            "@target-uri" => Kind::TargetUri,
            "@authority" => Kind::Authority,
            "@scheme" => Kind::Scheme,
            "@request-target" => Kind::RequestTarget,
            "@path" => Kind::Path,
            "@query" => Kind::Query,
            "@query-param" => Kind::QueryParam,
            n if n.starts_with('@') => Kind::OtherDerived,
            _ => Kind::Field,
        }
    }
}

/// A boolean component parameter (`sf`, `bs`): only `true` is meaningful.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) enum Flag {
    #[default]
    Absent,
    True,
    /// Present with another value (`?0`, a string, …).
    Invalid,
}

/// A string component parameter (`key`, `name`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) enum Text {
    #[default]
    Absent,
    Value(String),
    /// Present but not an sf-string.
    Invalid,
}

/// The parameters of one covered component, by meaning (RFC 9421 §2.1, §2.2.8).
#[derive(Debug, Clone, Default)]
pub(super) struct ComponentParams {
    pub(super) sf: Flag,
    pub(super) bs: Flag,
    pub(super) key: Text,
    pub(super) name: Text,
    /// Any other parameter (`req`, `tr`, unknown ones): none is supported.
    pub(super) other: bool,
}

impl ComponentParams {
    /// From the parameters as parsed (duplicates already resolved, RFC 8941 §4.2.3.2).
    pub(super) fn read(params: &[(&KeyRef, BareItemFromInput<'_>)]) -> Self {
        let flag = |v: &BareItemFromInput<'_>| match v {
            BareItemFromInput::Boolean(true) => Flag::True,
            _ => Flag::Invalid,
        };
        let text = |v: &BareItemFromInput<'_>| match v {
            BareItemFromInput::String(s) => Text::Value(s.as_str().to_owned()),
            _ => Text::Invalid,
        };
        let mut p = Self::default();
        for (k, v) in params {
            match k.as_str() {
                "sf" => p.sf = flag(v),
                "bs" => p.bs = flag(v),
                "key" => p.key = text(v),
                "name" => p.name = text(v),
                _ => p.other = true,
            }
        }
        p
    }

    pub(super) fn is_empty(&self) -> bool {
        !self.other
            && self.sf == Flag::Absent
            && self.bs == Flag::Absent
            && self.key == Text::Absent
            && self.name == Text::Absent
    }

    /// The same parameters as `params`, compared as maps (as `Parameters` equality does).
    /// `Component`s carry only `sf`, `bs` (true), `key` and `name` (strings).
    pub(super) fn equals(&self, params: &Parameters) -> bool {
        let flag = |f: &Flag, v: Option<&BareItem>| {
            matches!(
                (f, v),
                (Flag::Absent, None) | (Flag::True, Some(BareItem::Boolean(true)))
            )
        };
        let text = |t: &Text, v: Option<&BareItem>| match (t, v) {
            (Text::Absent, None) => true,
            (Text::Value(a), Some(BareItem::String(b))) => a == b.as_str(),
            _ => false,
        };
        !self.other
            && params
                .keys()
                .all(|k| matches!(k.as_str(), "sf" | "bs" | "key" | "name"))
            && flag(&self.sf, params.get("sf"))
            && flag(&self.bs, params.get("bs"))
            && text(&self.key, params.get("key"))
            && text(&self.name, params.get("name"))
    }
}

/// A field name as RFC 9421 §2.1 wants it in a component identifier: a valid field name
/// (RFC 9110 §5.1, a token) in lowercase. Exactly the names `http::HeaderName` accepts and
/// leaves unchanged (see the test below), checked without building one.
pub(super) fn is_lowercase_field_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        })
}

/// A string usable as a structured-field string (printable ASCII).
pub(crate) fn valid_sf_string(s: &str) -> bool {
    StringRef::from_str(s).is_ok()
}

/// A string usable as a dictionary key / signature label.
pub(crate) fn valid_key(s: &str) -> bool {
    KeyRef::from_str(s).is_ok()
}
