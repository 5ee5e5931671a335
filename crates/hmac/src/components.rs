//! Component identifiers and the signature base (RFC 9421 §2).
//!
//! The verifier and the signer share this module, so both sides derive every component the
//! same way.

use std::borrow::Cow;
use std::convert::Infallible;
use std::fmt;
use std::ops::Range;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::header::GetAll;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use sfv::visitor::{
    DictionaryVisitor, EntryVisitor, Ignored, InnerListVisitor, ItemVisitor, ParameterVisitor,
};
use sfv::{
    BareItem, BareItemFromInput, Dictionary, FieldType, InnerList, Item, ItemSerializer, Key,
    KeyRef, List, ListEntry, ListSerializer, Parameters, Parser, StringRef, Version,
};

use crate::error::HmacError;

/// Most components one signature may cover: bounds the work a client can ask for.
pub(crate) const MAX_COMPONENTS: usize = 32;

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
const KNOWN_STRUCTURED: &[(&str, SfType)] = &[
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
    extra: Vec<(HeaderName, SfType)>,
}

impl StructuredFields {
    pub(crate) fn add(&mut self, name: HeaderName, ty: SfType) {
        self.extra.retain(|(n, _)| *n != name);
        self.extra.push((name, ty));
    }

    fn type_of(&self, name: &str) -> Option<SfType> {
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
/// let d = Component::field("content-digest").unwrap();
/// assert_eq!(d.to_string(), r#""content-digest""#);
/// ```
#[derive(Clone, PartialEq)]
pub struct Component {
    name: String,
    params: Parameters,
}

/// Why a component could not be derived: an audit reason word, never message content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BaseError(pub(crate) &'static str);

impl Component {
    fn bare(name: &str) -> Self {
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
    pub fn query_param(name: &str) -> Result<Self, HmacError> {
        let encoded = form_encode(name.as_bytes());
        let value = sfv::String::from_string(encoded)
            .map_err(|_| HmacError::InvalidComponent(name.to_owned()))?;
        let mut c = Self::bare("@query-param");
        c.params.insert(key("name"), BareItem::String(value));
        Ok(c)
    }

    /// An HTTP field, by name (lowercased, RFC 9421 §2.1).
    pub fn field(name: &str) -> Result<Self, HmacError> {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| HmacError::InvalidComponent(name.to_owned()))?;
        Ok(Self::bare(header.as_str()))
    }

    /// Adds `;sf`: the field is re-serialized as a structured field (§2.1.1).
    pub fn sf(mut self) -> Self {
        self.params.insert(key("sf"), BareItem::Boolean(true));
        self
    }

    /// Adds `;key="…"`: one member of a dictionary field (§2.1.2).
    pub fn key(mut self, member: &str) -> Result<Self, HmacError> {
        let value = sfv::String::from_string(member.to_owned())
            .map_err(|_| HmacError::InvalidComponent(member.to_owned()))?;
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

    fn to_item(&self) -> Item {
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
fn key(s: &'static str) -> Key {
    KeyRef::constant(s).to_owned()
}

fn parse_sf<T: FieldType>(bytes: &[u8]) -> Result<T, BaseError> {
    Parser::new(bytes)
        .with_version(Version::Rfc8941)
        .parse()
        .map_err(|_| BaseError("malformed_structured_field"))
}

fn serialize_entry(entry: &ListEntry) -> String {
    match entry {
        ListEntry::Item(item) => item.serialize(),
        ListEntry::InnerList(list) => serialize_inner_list(list),
    }
}

fn serialize_inner_list(list: &InnerList) -> String {
    let mut ser = ListSerializer::new();
    ser.members([&ListEntry::InnerList(list.clone())]);
    ser.finish().unwrap_or_default()
}

/// Strips leading and trailing SP and HTAB (RFC 9110 §5.5, RFC 9421 §2.1).
fn trim_ows(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| *c != b' ' && *c != b'\t')
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| *c != b' ' && *c != b'\t')
        .map_or(start, |i| i + 1);
    b.get(start..end).unwrap_or_default()
}

/// The name/value pairs of an `application/x-www-form-urlencoded` string, decoded (`+` is a
/// space, `%XX` a byte), as RFC 9421 §2.2.8 asks.
fn form_pairs(query: &str) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + '_ {
    query.split('&').filter(|s| !s.is_empty()).map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (form_decode(name), form_decode(value))
    })
}

fn form_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(v) = hex {
                    out.push(v);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

/// Percent-encodes every byte outside the `application/x-www-form-urlencoded` safe set
/// (ASCII alphanumerics and `*-._`), spaces as `%20` (RFC 9421 §2.2.8).
fn form_encode(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for &c in b {
        if c.is_ascii_alphanumeric() || b"*-._".contains(&c) {
            out.push(char::from(c));
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// The parts of a request the base is built from, after scheme and authority were settled.
pub(crate) struct Message<'a> {
    pub(crate) method: &'a Method,
    pub(crate) scheme: Option<&'a str>,
    pub(crate) authority: Option<&'a str>,
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
    pub(crate) headers: &'a HeaderMap,
}

impl Message<'_> {
    fn scheme(&self) -> Result<&str, BaseError> {
        self.scheme.ok_or(BaseError("unknown_scheme"))
    }
    fn authority(&self) -> Result<&str, BaseError> {
        self.authority.ok_or(BaseError("unknown_authority"))
    }
}

/// Normalizes an authority for `@authority` (RFC 9421 §2.2.3, RFC 9110 §4.2.3): lowercase
/// host, no default port, no userinfo. Borrows when there is nothing to change.
pub(crate) fn normalize_authority<'a>(
    authority: &'a str,
    scheme: Option<&str>,
) -> Option<Cow<'a, str>> {
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let default_port = match scheme {
        Some("http") => Some(":80"),
        Some("https") => Some(":443"),
        _ => None,
    };
    let kept = match default_port {
        Some(p) => authority.strip_suffix(p).unwrap_or(authority),
        None => authority,
    };
    Some(if kept.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(kept.to_ascii_lowercase())
    } else {
        Cow::Borrowed(kept)
    })
}

/// Most parameters one parameter list may carry. RFC 9421 defines six signature parameters
/// (§2.3) and five component parameters (§2.1, §2.2.8); the cap bounds the duplicate-key
/// rule of RFC 8941 §4.2.3.2 (a linear search per parameter) on client input.
const MAX_PARAMS: usize = 32;

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
    fn of(name: &str) -> Self {
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
enum Flag {
    #[default]
    Absent,
    True,
    /// Present with another value (`?0`, a string, …).
    Invalid,
}

/// A string component parameter (`key`, `name`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Text {
    #[default]
    Absent,
    Value(String),
    /// Present but not an sf-string.
    Invalid,
}

/// The parameters of one covered component, by meaning (RFC 9421 §2.1, §2.2.8).
#[derive(Debug, Clone, Default)]
struct ComponentParams {
    sf: Flag,
    bs: Flag,
    key: Text,
    name: Text,
    /// Any other parameter (`req`, `tr`, unknown ones): none is supported.
    other: bool,
}

impl ComponentParams {
    /// From the parameters as parsed (duplicates already resolved, RFC 8941 §4.2.3.2).
    fn read(params: &[(&KeyRef, BareItemFromInput<'_>)]) -> Self {
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

    fn is_empty(&self) -> bool {
        !self.other
            && self.sf == Flag::Absent
            && self.bs == Flag::Absent
            && self.key == Text::Absent
            && self.name == Text::Absent
    }

    /// The same parameters as `params`, compared as maps (as `Parameters` equality does).
    /// `Component`s carry only `sf`, `bs` (true), `key` and `name` (strings).
    fn equals(&self, params: &Parameters) -> bool {
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

/// One covered component of a parsed `Signature-Input` member.
#[derive(Debug, Clone)]
struct Covered {
    /// The serialized component identifier (name and parameters) within
    /// [`SignatureInput::serialized`]: what goes before `: ` in its base line (§2.5).
    id: Range<usize>,
    /// The name as serialized (between the quotes). Field names and the derived names
    /// understood here need no escaping, so this is the name itself for every component
    /// that can be derived.
    name: Range<usize>,
    kind: Kind,
    params: ComponentParams,
}

/// Starts a base line: the component identifier, a colon and a space (RFC 9421 §2.5 step 2).
fn begin_line(out: &mut Vec<u8>, id: &[u8]) {
    out.extend_from_slice(id);
    out.extend_from_slice(b": ");
}

impl Covered {
    /// Writes this component's line(s) of the signature base (§2.5 step 2) to `out`.
    fn write_lines(
        &self,
        serialized: &str,
        msg: &Message<'_>,
        sf: &StructuredFields,
        out: &mut Vec<u8>,
    ) -> Result<(), BaseError> {
        let id = serialized
            .get(self.id.clone())
            .unwrap_or_default()
            .as_bytes();
        let name = serialized.get(self.name.clone()).unwrap_or_default();
        let p = &self.params;
        let line = |value: &[u8], out: &mut Vec<u8>| {
            begin_line(out, id);
            out.extend_from_slice(value);
            out.push(b'\n');
        };
        if self.kind != Kind::Field {
            // Derived components take no field parameters; `req`/`tr` do not apply to a
            // request verified on its own. `@query-param` takes `name` (§2.2.8).
            if p.other
                || p.sf != Flag::Absent
                || p.bs != Flag::Absent
                || p.key != Text::Absent
                || (self.kind != Kind::QueryParam && p.name != Text::Absent)
            {
                return Err(BaseError("unsupported_component_parameter"));
            }
            match self.kind {
                Kind::Method => line(msg.method.as_str().as_bytes(), out),
                Kind::TargetUri => {
                    // §2.2.2: the full target URI, absolute form (RFC 9110 §7.1).
                    let (scheme, authority) = (msg.scheme()?, msg.authority()?);
                    begin_line(out, id);
                    out.extend_from_slice(scheme.as_bytes());
                    out.extend_from_slice(b"://");
                    out.extend_from_slice(authority.as_bytes());
                    out.extend_from_slice(msg.path.as_bytes());
                    if let Some(q) = msg.query {
                        out.push(b'?');
                        out.extend_from_slice(q.as_bytes());
                    }
                    out.push(b'\n');
                }
                Kind::Authority => line(msg.authority()?.as_bytes(), out),
                Kind::Scheme => line(msg.scheme()?.as_bytes(), out),
                Kind::RequestTarget => {
                    // §2.2.5: origin form, path and query.
                    begin_line(out, id);
                    out.extend_from_slice(msg.path.as_bytes());
                    if let Some(q) = msg.query {
                        out.push(b'?');
                        out.extend_from_slice(q.as_bytes());
                    }
                    out.push(b'\n');
                }
                Kind::Path => line(msg.path.as_bytes(), out),
                Kind::Query => {
                    // §2.2.7: `?` and the query, `?` alone when there is none.
                    begin_line(out, id);
                    out.push(b'?');
                    out.extend_from_slice(msg.query.unwrap_or("").as_bytes());
                    out.push(b'\n');
                }
                Kind::QueryParam => {
                    let wanted = match &p.name {
                        Text::Value(w) => w.as_str(),
                        Text::Invalid => return Err(BaseError("bad_component_parameter")),
                        Text::Absent => return Err(BaseError("query_param_without_name")),
                    };
                    let mut found = false;
                    // §2.2.8: every occurrence, in order, each on its own line.
                    for (name, value) in form_pairs(msg.query.unwrap_or("")) {
                        if form_encode(&name) == wanted {
                            line(form_encode(&value).as_bytes(), out);
                            found = true;
                        }
                    }
                    if !found {
                        return Err(BaseError("missing_query_param"));
                    }
                }
                // `@status` is for responses, `@signature-params` is never covered (§2.3).
                Kind::OtherDerived | Kind::Field => {
                    return Err(BaseError("unsupported_derived_component"));
                }
            }
            return Ok(());
        }

        if p.other || p.name != Text::Absent {
            // `req` and `tr` (and unknown parameters) are not supported: fail closed.
            return Err(BaseError("unsupported_component_parameter"));
        }
        if p.sf == Flag::Invalid || p.bs == Flag::Invalid || p.key == Text::Invalid {
            return Err(BaseError("bad_component_parameter"));
        }
        let is_sf = p.sf == Flag::True;
        let is_bs = p.bs == Flag::True;
        let member = match &p.key {
            Text::Value(m) => Some(m.as_str()),
            _ => None,
        };
        if is_bs && (is_sf || member.is_some()) {
            // §2.1.3: `bs` MUST NOT be combined with `sf` or `key`.
            return Err(BaseError("bs_with_sf"));
        }
        let mut lines = msg.headers.get_all(name).iter().peekable();
        if lines.peek().is_none() {
            return Err(BaseError("missing_component"));
        }
        if is_bs {
            // §2.1.3: each field line, trimmed, as a byte sequence; joined with ", ".
            begin_line(out, id);
            for (i, l) in lines.enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                out.push(b':');
                out.extend_from_slice(BASE64.encode(trim_ows(l.as_bytes())).as_bytes());
                out.push(b':');
            }
            out.push(b'\n');
            return Ok(());
        }
        if !is_sf && member.is_none() {
            // §2.1: trim each field line, then join them with ", ", straight into the base.
            begin_line(out, id);
            for (i, l) in lines.enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                out.extend_from_slice(trim_ows(l.as_bytes()));
            }
            out.push(b'\n');
            return Ok(());
        }
        let mut combined = Vec::new();
        for (i, l) in lines.enumerate() {
            if i > 0 {
                combined.extend_from_slice(b", ");
            }
            combined.extend_from_slice(trim_ows(l.as_bytes()));
        }
        if let Some(member) = member {
            // §2.1.2: the named member of a dictionary field, re-serialized.
            let dict: Dictionary = parse_sf(&combined)?;
            let entry = dict
                .get(member)
                .ok_or(BaseError("missing_dictionary_member"))?;
            line(serialize_entry(entry).as_bytes(), out);
        } else {
            // §2.1.1: the field re-serialized as the structured type it is known to be.
            let value = match sf.type_of(name) {
                Some(SfType::Dictionary) => parse_sf::<Dictionary>(&combined)?.serialize(),
                Some(SfType::List) => parse_sf::<List>(&combined)?.serialize(),
                Some(SfType::Item) => Some(parse_sf::<Item>(&combined)?.serialize()),
                None => return Err(BaseError("unknown_structured_field")),
            };
            line(value.unwrap_or_default().as_bytes(), out);
        }
        Ok(())
    }
}

/// A field name as RFC 9421 §2.1 wants it in a component identifier: a valid field name
/// (RFC 9110 §5.1, a token) in lowercase. Exactly the names `http::HeaderName` accepts and
/// leaves unchanged (see the test below), checked without building one.
fn is_lowercase_field_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        })
}

/// The parsed `Signature-Input` member of one label (RFC 9421 §4.1).
#[derive(Clone, Debug)]
pub(crate) struct SignatureInput {
    /// The member re-serialized (RFC 8941 §4.1.1.1): the value of `@signature-params`
    /// (§2.3, §3.2). Parameters keep the order they were received in. Each covered
    /// component's identifier is a slice of it.
    serialized: String,
    components: Vec<Covered>,
    pub(crate) created: Option<i64>,
    pub(crate) expires: Option<i64>,
    nonce: Option<Param>,
    alg: Option<Param>,
    keyid: Option<Param>,
}

/// A string signature parameter: where it is in the serialization, or (when it had to be
/// escaped there) its own copy.
#[derive(Clone, Debug)]
enum Param {
    Serialized(Range<usize>),
    Owned(String),
}

impl SignatureInput {
    /// Builds the input a signer sends, parameters in the order RFC 9421's examples use.
    pub(crate) fn new(
        components: &[Component],
        created: i64,
        expires: Option<i64>,
        nonce: Option<&str>,
        keyid: &str,
        tag: Option<&str>,
    ) -> Result<Self, HmacError> {
        let mut params = Parameters::new();
        params.insert(key("created"), BareItem::Integer(int_item(created)?));
        if let Some(e) = expires {
            params.insert(key("expires"), BareItem::Integer(int_item(e)?));
        }
        let string = |s: &str| {
            sfv::String::from_string(s.to_owned())
                .map_err(|_| HmacError::InvalidParameter(s.to_owned()))
        };
        if let Some(n) = nonce {
            params.insert(key("nonce"), BareItem::String(string(n)?));
        }
        params.insert(key("keyid"), BareItem::String(string(keyid)?));
        params.insert(key("alg"), BareItem::String(string(crate::ALG)?));
        if let Some(t) = tag {
            params.insert(key("tag"), BareItem::String(string(t)?));
        }
        let list =
            InnerList::with_params(components.iter().map(Component::to_item).collect(), params);
        // Read back exactly as a verifier reads it, so both sides agree on every rule.
        let field = format!("s={}", serialize_inner_list(&list));
        let picked = parse_signature_input(field.as_bytes(), Some("s"))
            .map_err(|e| HmacError::InvalidParameter(e.0.to_owned()))?;
        picked
            .input
            .map_err(|e| HmacError::InvalidParameter(e.0.to_owned()))
    }

    /// The serialized inner list (the value of `@signature-params`).
    pub(crate) fn serialized(&self) -> &str {
        &self.serialized
    }

    fn param<'a>(&'a self, p: &'a Option<Param>) -> Option<&'a str> {
        match p.as_ref()? {
            Param::Serialized(r) => Some(self.serialized.get(r.clone()).unwrap_or_default()),
            Param::Owned(s) => Some(s),
        }
    }

    /// The `nonce` parameter (§2.3).
    pub(crate) fn nonce(&self) -> Option<&str> {
        self.param(&self.nonce)
    }

    /// The `alg` parameter (§2.3).
    pub(crate) fn alg(&self) -> Option<&str> {
        self.param(&self.alg)
    }

    /// The `keyid` parameter (§2.3).
    pub(crate) fn keyid(&self) -> Option<&str> {
        self.param(&self.keyid)
    }

    /// The serialized identifiers of the covered components, in order.
    pub(crate) fn covered_ids(&self) -> impl Iterator<Item = &str> {
        self.components
            .iter()
            .map(|c| self.serialized.get(c.id.clone()).unwrap_or_default())
    }

    fn name_of(&self, c: &Covered) -> &str {
        self.serialized.get(c.name.clone()).unwrap_or_default()
    }

    /// Whether `c` is covered: same name and same parameters.
    pub(crate) fn covers(&self, c: &Component) -> bool {
        self.components
            .iter()
            .any(|x| self.name_of(x) == c.name && x.params.equals(&c.params))
    }

    /// Whether the field `name` without parameters is covered: `covers` of
    /// `Component::field(name)`, without building one.
    pub(crate) fn covers_plain_field(&self, name: &str) -> bool {
        self.components
            .iter()
            .any(|x| x.kind == Kind::Field && x.params.is_empty() && self.name_of(x) == name)
    }

    /// Whether the derived component `kind` (not `@query-param`) is covered without
    /// parameters: `covers` of `Component::method()` and the like.
    pub(crate) fn covers_plain_derived(&self, kind: Kind) -> bool {
        self.components
            .iter()
            .any(|x| x.kind == kind && x.params.is_empty())
    }

    /// The signature base (RFC 9421 §2.5), in one buffer sized for it up front.
    pub(crate) fn base(
        &self,
        msg: &Message<'_>,
        sf: &StructuredFields,
    ) -> Result<Vec<u8>, BaseError> {
        // Identifiers appear in their lines and again in `@signature-params`; 256 bytes is
        // room for typical values (a target URI, a digest).
        let mut out = Vec::with_capacity(2 * self.serialized.len() + 256);
        for c in &self.components {
            c.write_lines(&self.serialized, msg, sf, &mut out)?;
        }
        // §2.5 step 3: the signature parameters line, last and without a newline.
        out.extend_from_slice(b"\"@signature-params\": ");
        out.extend_from_slice(self.serialized.as_bytes());
        Ok(out)
    }
}

fn int_item(v: i64) -> Result<sfv::Integer, HmacError> {
    sfv::Integer::try_from(v).map_err(|_| HmacError::InvalidParameter(v.to_string()))
}

/// Calls `parse` on the value of a field given by its `lines`: its one field line as
/// received, or all of its lines joined with ", " (RFC 9110 §5.3, RFC 8941 §4.2). `None`
/// when it is absent.
pub(crate) fn with_field<T>(
    lines: &GetAll<'_, HeaderValue>,
    max_len: usize,
    parse: impl FnOnce(&[u8]) -> T,
) -> Result<Option<T>, BaseError> {
    let mut lines = lines.iter();
    let Some(first) = lines.next() else {
        return Ok(None);
    };
    let Some(second) = lines.next() else {
        if first.len() > max_len {
            return Err(BaseError("signature_field_too_long"));
        }
        return Ok(Some(parse(first.as_bytes())));
    };
    let mut joined = Vec::new();
    for (i, v) in [first, second].into_iter().chain(lines).enumerate() {
        if i > 0 {
            joined.extend_from_slice(b", ");
        }
        joined.extend_from_slice(v.as_bytes());
        if joined.len() > max_len {
            return Err(BaseError("signature_field_too_long"));
        }
    }
    Ok(Some(parse(&joined)))
}

/// Which parser reads a dictionary field: this crate's ([`crate::sf`]) on requests, `sfv`
/// as the reference it is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Engine {
    Hand,
    #[cfg_attr(not(any(test, feature = "differential")), allow(dead_code))]
    Sfv,
}

impl Engine {
    /// Parses `bytes` as an RFC 8941 dictionary into `visitor` (RFC 9421 §4, RFC 9530 §2).
    pub(crate) fn dictionary<'de, V: DictionaryVisitor<'de>>(
        self,
        bytes: &'de [u8],
        visitor: V,
    ) -> Result<V::Out, BaseError> {
        let malformed = BaseError("malformed_structured_field");
        match self {
            Engine::Hand => crate::sf::parse_dictionary(bytes, visitor).map_err(|_| malformed),
            Engine::Sfv => Parser::new(bytes)
                .with_version(Version::Rfc8941)
                .parse_dictionary_with_visitor(visitor)
                .map_err(|_| malformed),
        }
    }
}

/// Whether both parsers give the same `Signature-Input` member (or the same refusal) and
/// the same `Signature` bytes for `bytes` read as either field.
#[cfg(any(test, feature = "differential"))]
pub(crate) fn readings_agree(bytes: &[u8], label: Option<&str>) -> bool {
    let input = |e| {
        parse_signature_input_with(e, bytes, label).map(|p| (p.label, format!("{:?}", p.input)))
    };
    input(Engine::Hand) == input(Engine::Sfv)
        && parse_signature_with(Engine::Hand, bytes, label)
            == parse_signature_with(Engine::Sfv, bytes, label)
}

/// `Signature-Input` as read for one signature: the label picked (RFC 9421 §3.2 step 1) and
/// its member, or why that member cannot be used.
pub(crate) struct PickedInput {
    /// `None` when no member has the label asked for, or there is no member at all.
    pub(crate) label: Option<String>,
    pub(crate) input: Result<SignatureInput, BaseError>,
}

/// Parses `Signature-Input` (RFC 9421 §4.1) with `sfv`'s visitor API and keeps only the
/// member labelled `label` (default: the first). Other members are checked for syntax only
/// (RFC 8941 §4.2: a field that does not parse fails as a whole) and never stored.
///
/// `Err` is a syntax error; what is wrong with the picked member is in
/// [`PickedInput::input`].
pub(crate) fn parse_signature_input(
    bytes: &[u8],
    label: Option<&str>,
) -> Result<PickedInput, BaseError> {
    parse_signature_input_with(Engine::Hand, bytes, label)
}

/// [`parse_signature_input`] with the given parser.
pub(crate) fn parse_signature_input_with(
    engine: Engine,
    bytes: &[u8],
    label: Option<&str>,
) -> Result<PickedInput, BaseError> {
    let visitor = InputVisitor {
        wanted: label,
        picked: None,
        member: Member::with_capacity(bytes.len()),
    };
    let v = engine.dictionary(bytes, visitor)?;
    let Some(picked) = v.picked else {
        let why = match label {
            Some(_) => "label_not_found",
            None => "empty_signature_input",
        };
        return Ok(PickedInput {
            label: None,
            input: Err(BaseError(why)),
        });
    };
    Ok(PickedInput {
        label: Some(picked.as_str().to_owned()),
        input: v.member.finish(),
    })
}

/// Picks the dictionary member (RFC 8941 §3.2) to read.
struct InputVisitor<'l, 'de> {
    wanted: Option<&'l str>,
    picked: Option<&'de KeyRef>,
    member: Member<'de>,
}

impl<'de> DictionaryVisitor<'de> for InputVisitor<'_, 'de> {
    type Out = Self;
    type Error = Infallible;

    fn entry(&mut self, key: &'de KeyRef) -> Result<impl EntryVisitor<'de>, Self::Error> {
        let pick = match self.wanted {
            Some(w) => key.as_str() == w,
            // No label configured: the first member, by position (an `IndexMap`'s first).
            None => self.picked.is_none_or(|p| p.as_str() == key.as_str()),
        };
        Ok(if pick {
            // RFC 8941 §4.2.2: a later member with the same key replaces the earlier one
            // (and keeps its position).
            self.picked = Some(key);
            self.member.reset();
            Some(&mut self.member)
        } else {
            None
        })
    }

    fn finish(self) -> Result<Self::Out, Self::Error> {
        Ok(self)
    }
}

/// The picked member as it is read. Its faults are recorded, not returned, so that a syntax
/// error anywhere in the field still takes precedence, as it did when the whole field was
/// parsed first.
#[derive(Default)]
struct Member<'de> {
    inner_list: bool,
    serialized: String,
    components: Vec<Covered>,
    items: usize,
    /// The first fault of a component, in order.
    fault: Option<&'static str>,
    too_many_params: bool,
    /// Parameters of the item or list being read, duplicates resolved as they come.
    params: Vec<(&'de KeyRef, BareItemFromInput<'de>)>,
    bad_params: bool,
    created: Option<i64>,
    expires: Option<i64>,
    nonce: Option<Param>,
    alg: Option<Param>,
    keyid: Option<Param>,
}

impl<'de> Member<'de> {
    /// Room for a member serialized from `field_len` bytes of field: the serialization is
    /// never longer than what it was parsed from (RFC 8941 §4.1 emits no optional
    /// whitespace, `;p` for `;p=?1`, no leading zeros).
    fn with_capacity(field_len: usize) -> Self {
        Member {
            serialized: String::with_capacity(field_len),
            components: Vec::with_capacity(8),
            params: Vec::with_capacity(8),
            ..Member::default()
        }
    }

    fn reset(&mut self) {
        let (mut serialized, mut components, mut params) = (
            std::mem::take(&mut self.serialized),
            std::mem::take(&mut self.components),
            std::mem::take(&mut self.params),
        );
        serialized.clear();
        components.clear();
        params.clear();
        *self = Member {
            serialized,
            components,
            params,
            ..Member::default()
        };
    }

    /// RFC 8941 §4.2.3.2: a parameter repeated replaces the earlier value, at the earlier
    /// position.
    fn set_param(&mut self, key: &'de KeyRef, value: BareItemFromInput<'de>) {
        if let Some(slot) = self
            .params
            .iter_mut()
            .find(|(k, _)| k.as_str() == key.as_str())
        {
            slot.1 = value;
        } else if self.params.len() < MAX_PARAMS {
            self.params.push((key, value));
        } else {
            self.too_many_params = true;
        }
    }

    /// One covered component, read (RFC 9421 §2.1, §2.2) and serialized in place.
    fn finish_component(&mut self, bare: &BareItemFromInput<'de>) {
        if self.fault.is_some() {
            return;
        }
        let BareItemFromInput::String(name) = bare else {
            self.fault = Some("component_not_a_string");
            return;
        };
        let kind = Kind::of(name.as_str());
        if kind == Kind::Field && !is_lowercase_field_name(name.as_str()) {
            // §2.1: field component names are lowercase field names.
            self.fault = Some("invalid_field_name");
            return;
        }
        let s = &mut self.serialized;
        if !s.ends_with('(') {
            s.push(' ');
        }
        let start = s.len();
        serialize_bare_item(s, bare);
        let name_range = start + 1..s.len() - 1;
        serialize_params(s, &self.params);
        let id = start..s.len();
        // §2.5 step 1: a component identifier occurs at most once. Identifiers are
        // compared serialized, parameters in the order received.
        let this = s.get(id.clone());
        if self.components.iter().any(|c| s.get(c.id.clone()) == this) {
            self.fault = Some("duplicate_component");
            return;
        }
        self.components.push(Covered {
            id,
            name: name_range,
            kind,
            params: ComponentParams::read(&self.params),
        });
    }

    /// The signature parameters (§2.3), read and serialized after the inner list. String
    /// values are kept as where they were serialized, unless they needed escaping.
    fn finish_list(&mut self) {
        let mut bad = false;
        for (k, v) in &self.params {
            let s = &mut self.serialized;
            s.push(';');
            s.push_str(k.as_str());
            let start = s.len();
            if !matches!(v, BareItemFromInput::Boolean(true)) {
                s.push('=');
                serialize_bare_item(s, v);
            }
            let int = |bad: &mut bool| match v {
                BareItemFromInput::Integer(i) => Some(i64::from(*i)),
                _ => {
                    *bad = true;
                    None
                }
            };
            // `="…"`: the characters between the quotes are the value if none was escaped.
            let inner = start + 2..s.len().saturating_sub(1);
            let string = |bad: &mut bool| match v {
                BareItemFromInput::String(x) if x.as_str().len() == inner.len() => {
                    Some(Param::Serialized(inner.clone()))
                }
                BareItemFromInput::String(x) => Some(Param::Owned(x.as_str().to_owned())),
                _ => {
                    *bad = true;
                    None
                }
            };
            match k.as_str() {
                "created" => self.created = int(&mut bad),
                "expires" => self.expires = int(&mut bad),
                "nonce" => self.nonce = string(&mut bad),
                "alg" => self.alg = string(&mut bad),
                "keyid" => self.keyid = string(&mut bad),
                // `tag` and unknown parameters are signed (they are in the serialization)
                // but carry nothing this verifier acts on.
                _ => {}
            }
        }
        self.bad_params = bad;
    }

    fn finish(self) -> Result<SignatureInput, BaseError> {
        if !self.inner_list {
            return Err(BaseError("signature_input_not_inner_list"));
        }
        if self.items > MAX_COMPONENTS {
            return Err(BaseError("too_many_components"));
        }
        if self.too_many_params {
            return Err(BaseError("too_many_parameters"));
        }
        if let Some(f) = self.fault {
            return Err(BaseError(f));
        }
        if self.bad_params {
            return Err(BaseError("malformed_signature_params"));
        }
        Ok(SignatureInput {
            serialized: self.serialized,
            components: self.components,
            created: self.created,
            expires: self.expires,
            nonce: self.nonce,
            alg: self.alg,
            keyid: self.keyid,
        })
    }
}

impl<'de> EntryVisitor<'de> for &mut Member<'de> {
    type Error = Infallible;

    fn item(self) -> Result<impl ItemVisitor<'de>, Self::Error> {
        // §4.1: each member is an inner list; anything else is refused after parsing.
        self.inner_list = false;
        Ok(Ignored)
    }

    fn inner_list(self) -> Result<impl InnerListVisitor<'de>, Self::Error> {
        self.inner_list = true;
        self.serialized.push('(');
        Ok(self)
    }
}

impl<'de> InnerListVisitor<'de> for &mut Member<'de> {
    type Error = Infallible;

    fn item(&mut self) -> Result<impl ItemVisitor<'de>, Self::Error> {
        self.items += 1;
        // Past the limit, or after a fault, items are parsed but not kept.
        let keep = self.items <= MAX_COMPONENTS && self.fault.is_none();
        Ok(keep.then_some(ComponentVisitor(self)))
    }

    fn finish(self) -> Result<impl ParameterVisitor<'de>, Self::Error> {
        self.serialized.push(')');
        self.params.clear();
        Ok(ListParams(self))
    }
}

struct ComponentVisitor<'m, 'de>(&'m mut Member<'de>);

impl<'m, 'de> ItemVisitor<'de> for ComponentVisitor<'m, 'de> {
    type Out = ();
    type Error = Infallible;

    fn bare_item(
        self,
        bare: BareItemFromInput<'de>,
    ) -> Result<impl ParameterVisitor<'de, Out = ()>, Self::Error> {
        self.0.params.clear();
        Ok(ComponentParamsVisitor {
            member: self.0,
            bare,
        })
    }
}

struct ComponentParamsVisitor<'m, 'de> {
    member: &'m mut Member<'de>,
    bare: BareItemFromInput<'de>,
}

impl<'de> ParameterVisitor<'de> for ComponentParamsVisitor<'_, 'de> {
    type Out = ();
    type Error = Infallible;

    fn parameter(
        &mut self,
        key: &'de KeyRef,
        value: BareItemFromInput<'de>,
    ) -> Result<(), Self::Error> {
        self.member.set_param(key, value);
        Ok(())
    }

    fn finish(self) -> Result<(), Self::Error> {
        self.member.finish_component(&self.bare);
        Ok(())
    }
}

struct ListParams<'m, 'de>(&'m mut Member<'de>);

impl<'de> ParameterVisitor<'de> for ListParams<'_, 'de> {
    type Out = ();
    type Error = Infallible;

    fn parameter(
        &mut self,
        key: &'de KeyRef,
        value: BareItemFromInput<'de>,
    ) -> Result<(), Self::Error> {
        self.0.set_param(key, value);
        Ok(())
    }

    fn finish(self) -> Result<(), Self::Error> {
        self.0.finish_list();
        Ok(())
    }
}

/// A bare item, serialized (RFC 8941 §4.1.3) by `sfv`, except for the common string with
/// nothing to escape, which is copied whole (§4.1.6: `"`, the characters, `"`).
fn serialize_bare_item(out: &mut String, bare: &BareItemFromInput<'_>) {
    match bare {
        BareItemFromInput::String(s) if !s.as_str().contains(['"', '\\']) => {
            out.push('"');
            out.push_str(s.as_str());
            out.push('"');
        }
        _ => {
            let _ = ItemSerializer::with_buffer(out).bare_item(bare);
        }
    }
}

/// Parameters as RFC 8941 §4.1.1.2 serializes them: `;key`, then `=value` unless the value
/// is Boolean true.
fn serialize_params(out: &mut String, params: &[(&KeyRef, BareItemFromInput<'_>)]) {
    for (k, v) in params {
        out.push(';');
        out.push_str(k.as_str());
        if !matches!(v, BareItemFromInput::Boolean(true)) {
            out.push('=');
            serialize_bare_item(out, v);
        }
    }
}

/// Parses `Signature` (RFC 9421 §4.2) and returns the signature of `label` (`None`: the
/// label was not found in `Signature-Input`; every member is then checked for syntax only).
///
/// `Err` is a syntax error; the inner result says whether the member is usable.
pub(crate) fn parse_signature(
    bytes: &[u8],
    label: Option<&str>,
) -> Result<Result<Vec<u8>, BaseError>, BaseError> {
    parse_signature_with(Engine::Hand, bytes, label)
}

/// [`parse_signature`] with the given parser.
pub(crate) fn parse_signature_with(
    engine: Engine,
    bytes: &[u8],
    label: Option<&str>,
) -> Result<Result<Vec<u8>, BaseError>, BaseError> {
    let v = engine.dictionary(
        bytes,
        SignatureVisitor {
            label,
            found: ByteMember::Absent,
        },
    )?;
    match v.found {
        ByteMember::Bytes(b) => Ok(Ok(b)),
        // §4.2: the value is a byte sequence; an inner list is no signature.
        ByteMember::Absent | ByteMember::InnerList => {
            Ok(Err(BaseError("signature_label_mismatch")))
        }
        ByteMember::NotBytes => Ok(Err(BaseError("signature_not_bytes"))),
    }
}

struct SignatureVisitor<'l> {
    label: Option<&'l str>,
    found: ByteMember,
}

impl<'de> DictionaryVisitor<'de> for SignatureVisitor<'_> {
    type Out = Self;
    type Error = Infallible;

    fn entry(&mut self, key: &'de KeyRef) -> Result<impl EntryVisitor<'de>, Self::Error> {
        // A later member with the same label replaces the earlier (RFC 8941 §4.2.2).
        Ok((self.label == Some(key.as_str())).then_some(&mut self.found))
    }

    fn finish(self) -> Result<Self::Out, Self::Error> {
        Ok(self)
    }
}

/// A dictionary member expected to hold a byte sequence (RFC 8941 §3.3.5), as a visitor
/// leaves it: `Signature` (RFC 9421 §4.2) and `Content-Digest` (RFC 9530 §2) members.
#[derive(Default, Debug, PartialEq, Eq)]
pub(crate) enum ByteMember {
    /// Not in the dictionary.
    #[default]
    Absent,
    /// An inner list.
    InnerList,
    /// An item of another type.
    NotBytes,
    /// A byte sequence.
    Bytes(Vec<u8>),
}

impl<'de> EntryVisitor<'de> for &mut ByteMember {
    type Error = Infallible;

    fn item(self) -> Result<impl ItemVisitor<'de>, Self::Error> {
        Ok(self)
    }

    fn inner_list(self) -> Result<impl InnerListVisitor<'de>, Self::Error> {
        *self = ByteMember::InnerList;
        Ok(Ignored)
    }
}

impl<'de> ItemVisitor<'de> for &mut ByteMember {
    type Out = ();
    type Error = Infallible;

    fn bare_item(
        self,
        bare: BareItemFromInput<'de>,
    ) -> Result<impl ParameterVisitor<'de, Out = ()>, Self::Error> {
        *self = match bare {
            BareItemFromInput::ByteSequence(b) => ByteMember::Bytes(b),
            _ => ByteMember::NotBytes,
        };
        Ok(Ignored)
    }
}

/// A string usable as a structured-field string (printable ASCII).
pub(crate) fn valid_sf_string(s: &str) -> bool {
    StringRef::from_str(s).is_ok()
}

/// A string usable as a dictionary key / signature label.
pub(crate) fn valid_key(s: &str) -> bool {
    KeyRef::from_str(s).is_ok()
}

#[cfg(test)]
mod reference;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_follows_rfc9421_examples() {
        // RFC 9421 §2.2.8 examples.
        let q = "param=value&foo=bar&baz=batman&qux=&var=this%20is%20a%20big%0Avalue&bar=with+plus+whitespace&fa%C3%A7ade%22%3A%20=something";
        let got: Vec<(String, String)> = form_pairs(q)
            .map(|(n, v)| (form_encode(&n), form_encode(&v)))
            .collect();
        assert!(got.contains(&("var".into(), "this%20is%20a%20big%0Avalue".into())));
        assert!(got.contains(&("bar".into(), "with%20plus%20whitespace".into())));
        assert!(got.contains(&("fa%C3%A7ade%22%3A%20".into(), "something".into())));
        assert!(got.contains(&("qux".into(), "".into())));
    }

    #[test]
    fn trim_and_authority_normalization() {
        assert_eq!(trim_ows(b" \t a b \t"), b"a b");
        assert_eq!(trim_ows(b"   "), b"");
        assert_eq!(
            normalize_authority("Example.COM:443", Some("https")).as_deref(),
            Some("example.com")
        );
        assert_eq!(
            normalize_authority("example.com:8443", Some("https")).as_deref(),
            Some("example.com:8443")
        );
        assert_eq!(normalize_authority("u@example.com", Some("https")), None);
    }

    #[test]
    fn form_decode_never_panics_on_truncated_escapes() {
        for s in ["%", "%4", "%zz", "a%", "%%%", "%C3"] {
            let _ = form_decode(s);
        }
        assert_eq!(form_decode("%41%"), b"A%");
    }
}
