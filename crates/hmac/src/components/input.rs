//! `Signature-Input` (RFC 9421 §4.1): the member of one label, read through `sfv`'s visitor
//! API and re-serialised once as the value of `@signature-params` (§2.3).

use std::convert::Infallible;
use std::ops::Range;

use sfv::visitor::{
    DictionaryVisitor, EntryVisitor, Ignored, InnerListVisitor, ItemVisitor, ParameterVisitor,
};
use sfv::{BareItem, BareItemFromInput, InnerList, ItemSerializer, KeyRef, Parameters};

use super::BaseError;
use super::base::serialize_inner_list;
use super::field::Engine;
use super::identifier::{Component, ComponentParams, Kind, is_lowercase_field_name, key};
use crate::error::HttpSigConfigError;

/// Most components one signature may cover: bounds the work a client can ask for.
pub(super) const MAX_COMPONENTS: usize = 32;

/// Most parameters one parameter list may carry. RFC 9421 defines six signature parameters
/// (§2.3) and five component parameters (§2.1, §2.2.8); the cap bounds the duplicate-key
/// rule of RFC 8941 §4.2.3.2 (a linear search per parameter) on client input.
pub(super) const MAX_PARAMS: usize = 32;

/// One covered component of a parsed `Signature-Input` member.
#[derive(Debug, Clone)]
pub(super) struct Covered {
    /// The serialized component identifier (name and parameters) within
    /// [`SignatureInput::serialized`]: what goes before `: ` in its base line (§2.5).
    pub(super) id: Range<usize>,
    /// The name as serialized (between the quotes). Field names and the derived names
    /// understood here need no escaping, so this is the name itself for every component
    /// that can be derived.
    pub(super) name: Range<usize>,
    pub(super) kind: Kind,
    pub(super) params: ComponentParams,
}

/// The parsed `Signature-Input` member of one label (RFC 9421 §4.1).
#[derive(Clone, Debug)]
pub(crate) struct SignatureInput {
    /// The member re-serialized (RFC 8941 §4.1.1.1): the value of `@signature-params`
    /// (§2.3, §3.2). Parameters keep the order they were received in. Each covered
    /// component's identifier is a slice of it.
    pub(super) serialized: String,
    pub(super) components: Vec<Covered>,
    pub(crate) created: Option<i64>,
    pub(crate) expires: Option<i64>,
    pub(super) nonce: Option<Param>,
    pub(super) alg: Option<Param>,
    pub(super) keyid: Option<Param>,
}

/// A string signature parameter: where it is in the serialization, or (when it had to be
/// escaped there) its own copy.
#[derive(Clone, Debug)]
pub(super) enum Param {
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
    ) -> Result<Self, HttpSigConfigError> {
        let mut params = Parameters::new();
        params.insert(key("created"), BareItem::Integer(int_item(created)?));
        if let Some(e) = expires {
            params.insert(key("expires"), BareItem::Integer(int_item(e)?));
        }
        let string = |s: &str| {
            sfv::String::from_string(s.to_owned())
                .map_err(|_| HttpSigConfigError::InvalidParameter(s.to_owned()))
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
            .map_err(|e| HttpSigConfigError::InvalidParameter(e.0.to_owned()))?;
        picked
            .input
            .map_err(|e| HttpSigConfigError::InvalidParameter(e.0.to_owned()))
    }

    /// The serialized inner list (the value of `@signature-params`).
    pub(crate) fn serialized(&self) -> &str {
        &self.serialized
    }

    pub(super) fn param<'a>(&'a self, p: &'a Option<Param>) -> Option<&'a str> {
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

    pub(super) fn name_of(&self, c: &Covered) -> &str {
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
}

pub(super) fn int_item(v: i64) -> Result<sfv::Integer, HttpSigConfigError> {
    sfv::Integer::try_from(v).map_err(|_| HttpSigConfigError::InvalidParameter(v.to_string()))
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
pub(super) struct InputVisitor<'l, 'de> {
    pub(super) wanted: Option<&'l str>,
    pub(super) picked: Option<&'de KeyRef>,
    pub(super) member: Member<'de>,
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
pub(super) struct Member<'de> {
    pub(super) inner_list: bool,
    pub(super) serialized: String,
    pub(super) components: Vec<Covered>,
    pub(super) items: usize,
    /// The first fault of a component, in order.
    pub(super) fault: Option<&'static str>,
    pub(super) too_many_params: bool,
    /// Parameters of the item or list being read, duplicates resolved as they come.
    pub(super) params: Vec<(&'de KeyRef, BareItemFromInput<'de>)>,
    pub(super) bad_params: bool,
    pub(super) created: Option<i64>,
    pub(super) expires: Option<i64>,
    pub(super) nonce: Option<Param>,
    pub(super) alg: Option<Param>,
    pub(super) keyid: Option<Param>,
}

impl<'de> Member<'de> {
    /// Room for a member serialized from `field_len` bytes of field: the serialization is
    /// never longer than what it was parsed from (RFC 8941 §4.1 emits no optional
    /// whitespace, `;p` for `;p=?1`, no leading zeros).
    pub(super) fn with_capacity(field_len: usize) -> Self {
        Member {
            serialized: String::with_capacity(field_len),
            components: Vec::with_capacity(8),
            params: Vec::with_capacity(8),
            ..Member::default()
        }
    }

    pub(super) fn reset(&mut self) {
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
    pub(super) fn set_param(&mut self, key: &'de KeyRef, value: BareItemFromInput<'de>) {
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
    pub(super) fn finish_component(&mut self, bare: &BareItemFromInput<'de>) {
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
    pub(super) fn finish_list(&mut self) {
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

    pub(super) fn finish(self) -> Result<SignatureInput, BaseError> {
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

pub(super) struct ComponentVisitor<'m, 'de>(&'m mut Member<'de>);

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

pub(super) struct ComponentParamsVisitor<'m, 'de> {
    pub(super) member: &'m mut Member<'de>,
    pub(super) bare: BareItemFromInput<'de>,
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

pub(super) struct ListParams<'m, 'de>(&'m mut Member<'de>);

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
pub(super) fn serialize_bare_item(out: &mut String, bare: &BareItemFromInput<'_>) {
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
pub(super) fn serialize_params(out: &mut String, params: &[(&KeyRef, BareItemFromInput<'_>)]) {
    for (k, v) in params {
        out.push(';');
        out.push_str(k.as_str());
        if !matches!(v, BareItemFromInput::Boolean(true)) {
            out.push('=');
            serialize_bare_item(out, v);
        }
    }
}
