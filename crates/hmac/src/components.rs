//! Component identifiers and the signature base (RFC 9421 §2).
//!
//! The verifier and the signer share this module, so both sides derive every component the
//! same way.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::{HeaderMap, HeaderName, Method};
use sfv::{
    BareItem, Dictionary, FieldType, InnerList, Item, Key, KeyRef, List, ListEntry, ListSerializer,
    Parameters, Parser, StringRef, Version,
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

    /// Reads a component identifier out of a covered-components inner list.
    pub(crate) fn from_item(item: &Item) -> Result<Self, BaseError> {
        let BareItem::String(name) = &item.bare_item else {
            return Err(BaseError("component_not_a_string"));
        };
        let name = name.as_str();
        if !name.starts_with('@') {
            // §2.1: field component names are lowercase field names.
            let valid = HeaderName::from_bytes(name.as_bytes())
                .map(|h| h.as_str() == name)
                .unwrap_or(false);
            if !valid {
                return Err(BaseError("invalid_field_name"));
            }
        }
        Ok(Self {
            name: name.to_owned(),
            params: item.params.clone(),
        })
    }

    fn to_item(&self) -> Item {
        // Names were checked to be visible ASCII when the component was made.
        let name = sfv::String::from_string(self.name.clone())
            .unwrap_or_else(|_| StringRef::constant("invalid").to_owned());
        Item::with_params(BareItem::String(name), self.params.clone())
    }

    fn flag(&self, name: &str) -> Result<bool, BaseError> {
        match self.params.get(name) {
            None => Ok(false),
            Some(BareItem::Boolean(true)) => Ok(true),
            Some(_) => Err(BaseError("bad_component_parameter")),
        }
    }

    fn string_param(&self, name: &str) -> Result<Option<&str>, BaseError> {
        match self.params.get(name) {
            None => Ok(None),
            Some(BareItem::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(BaseError("bad_component_parameter")),
        }
    }

    /// Writes this component's line(s) of the signature base (§2.5 step 2).
    fn write_lines(
        &self,
        msg: &Message<'_>,
        sf: &StructuredFields,
        out: &mut Vec<u8>,
    ) -> Result<(), BaseError> {
        let id = self.to_string();
        let line = |value: &[u8], out: &mut Vec<u8>| {
            out.extend_from_slice(id.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.push(b'\n');
        };
        if let Some(derived) = self.name.strip_prefix('@') {
            // Derived components take no field parameters; `req`/`tr` do not apply to a
            // request verified on its own.
            let allowed: &[&str] = if derived == "query-param" {
                &["name"]
            } else {
                &[]
            };
            if self.params.keys().any(|k| !allowed.contains(&k.as_str())) {
                return Err(BaseError("unsupported_component_parameter"));
            }
            match derived {
                "method" => line(msg.method.as_str().as_bytes(), out),
                "target-uri" => {
                    let mut v = String::new();
                    v.push_str(msg.scheme()?);
                    v.push_str("://");
                    v.push_str(msg.authority()?);
                    v.push_str(msg.path);
                    if let Some(q) = msg.query {
                        v.push('?');
                        v.push_str(q);
                    }
                    line(v.as_bytes(), out);
                }
                "authority" => line(msg.authority()?.as_bytes(), out),
                "scheme" => line(msg.scheme()?.as_bytes(), out),
                "request-target" => {
                    let mut v = msg.path.to_owned();
                    if let Some(q) = msg.query {
                        v.push('?');
                        v.push_str(q);
                    }
                    line(v.as_bytes(), out);
                }
                "path" => line(msg.path.as_bytes(), out),
                "query" => {
                    let v = format!("?{}", msg.query.unwrap_or(""));
                    line(v.as_bytes(), out);
                }
                "query-param" => {
                    let Some(wanted) = self.string_param("name")? else {
                        return Err(BaseError("query_param_without_name"));
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
                _ => return Err(BaseError("unsupported_derived_component")),
            }
            return Ok(());
        }

        if self
            .params
            .keys()
            .any(|k| !matches!(k.as_str(), "sf" | "key" | "bs"))
        {
            // `req` and `tr` (and unknown parameters) are not supported: fail closed.
            return Err(BaseError("unsupported_component_parameter"));
        }
        let is_sf = self.flag("sf")?;
        let is_bs = self.flag("bs")?;
        let member = self.string_param("key")?;
        if is_bs && (is_sf || member.is_some()) {
            // §2.1.3: `bs` MUST NOT be combined with `sf` or `key`.
            return Err(BaseError("bs_with_sf"));
        }
        let mut lines = msg.headers.get_all(self.name.as_str()).iter().peekable();
        if lines.peek().is_none() {
            return Err(BaseError("missing_component"));
        }
        if is_bs {
            let mut v = Vec::new();
            for (i, l) in lines.enumerate() {
                if i > 0 {
                    v.extend_from_slice(b", ");
                }
                v.push(b':');
                v.extend_from_slice(BASE64.encode(trim_ows(l.as_bytes())).as_bytes());
                v.push(b':');
            }
            line(&v, out);
            return Ok(());
        }
        // §2.1: trim each field line, then join them with ", ".
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
        } else if is_sf {
            let value = match sf.type_of(&self.name) {
                Some(SfType::Dictionary) => parse_sf::<Dictionary>(&combined)?.serialize(),
                Some(SfType::List) => parse_sf::<List>(&combined)?.serialize(),
                Some(SfType::Item) => Some(parse_sf::<Item>(&combined)?.serialize()),
                None => return Err(BaseError("unknown_structured_field")),
            };
            line(value.unwrap_or_default().as_bytes(), out);
        } else {
            line(&combined, out);
        }
        Ok(())
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
/// host, no default port, no userinfo.
pub(crate) fn normalize_authority(authority: &str, scheme: Option<&str>) -> Option<String> {
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let lower = authority.to_ascii_lowercase();
    let default_port = match scheme {
        Some("http") => Some(":80"),
        Some("https") => Some(":443"),
        _ => None,
    };
    Some(match default_port {
        Some(p) if lower.ends_with(p) => lower[..lower.len() - p.len()].to_owned(),
        _ => lower,
    })
}

/// The parsed `Signature-Input` member of one label (RFC 9421 §4.1).
#[derive(Clone)]
pub(crate) struct SignatureInput {
    pub(crate) components: Vec<Component>,
    pub(crate) created: Option<i64>,
    pub(crate) expires: Option<i64>,
    pub(crate) nonce: Option<String>,
    pub(crate) alg: Option<String>,
    pub(crate) keyid: Option<String>,
    /// The inner list exactly as it is serialized into `@signature-params` (§2.3).
    serialized: String,
}

impl SignatureInput {
    pub(crate) fn from_inner_list(list: &InnerList) -> Result<Self, BaseError> {
        if list.items.len() > MAX_COMPONENTS {
            return Err(BaseError("too_many_components"));
        }
        let mut components: Vec<Component> = Vec::with_capacity(list.items.len());
        let mut ids: Vec<String> = Vec::with_capacity(list.items.len());
        for item in &list.items {
            let c = Component::from_item(item)?;
            let id = c.to_string();
            // §2.5: a component identifier occurs at most once.
            if ids.contains(&id) {
                return Err(BaseError("duplicate_component"));
            }
            ids.push(id);
            components.push(c);
        }
        let int = |k: &str| match list.params.get(k) {
            None => Ok(None),
            Some(BareItem::Integer(i)) => Ok(Some(i64::from(*i))),
            Some(_) => Err(BaseError("malformed_signature_params")),
        };
        let string = |k: &str| match list.params.get(k) {
            None => Ok(None),
            Some(BareItem::String(s)) => Ok(Some(s.as_str().to_owned())),
            Some(_) => Err(BaseError("malformed_signature_params")),
        };
        Ok(Self {
            components,
            created: int("created")?,
            expires: int("expires")?,
            nonce: string("nonce")?,
            alg: string("alg")?,
            keyid: string("keyid")?,
            serialized: serialize_inner_list(list),
        })
    }

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
        Self::from_inner_list(&list).map_err(|e| HmacError::InvalidParameter(e.0.to_owned()))
    }

    /// The serialized inner list (the value of `@signature-params`).
    pub(crate) fn serialized(&self) -> &str {
        &self.serialized
    }

    pub(crate) fn covers(&self, c: &Component) -> bool {
        self.components.iter().any(|x| x == c)
    }

    /// The signature base (RFC 9421 §2.5).
    pub(crate) fn base(
        &self,
        msg: &Message<'_>,
        sf: &StructuredFields,
    ) -> Result<Vec<u8>, BaseError> {
        let mut out = Vec::with_capacity(256);
        for c in &self.components {
            c.write_lines(msg, sf, &mut out)?;
        }
        out.extend_from_slice(b"\"@signature-params\": ");
        out.extend_from_slice(self.serialized.as_bytes());
        Ok(out)
    }
}

fn int_item(v: i64) -> Result<sfv::Integer, HmacError> {
    sfv::Integer::try_from(v).map_err(|_| HmacError::InvalidParameter(v.to_string()))
}

/// Parses a dictionary-valued signature field (all field lines joined, RFC 8941 §4.2).
pub(crate) fn parse_dictionary_field(
    headers: &HeaderMap,
    name: &HeaderName,
    max_len: usize,
) -> Result<Option<Dictionary>, BaseError> {
    let mut joined = Vec::new();
    let mut any = false;
    for (i, v) in headers.get_all(name).iter().enumerate() {
        any = true;
        if i > 0 {
            joined.extend_from_slice(b", ");
        }
        joined.extend_from_slice(v.as_bytes());
        if joined.len() > max_len {
            return Err(BaseError("signature_field_too_long"));
        }
    }
    if !any {
        return Ok(None);
    }
    parse_sf(&joined).map(Some)
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
