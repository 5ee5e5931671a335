//! Reading a dictionary field (RFC 8941 §3.2) of one or several field lines, by this crate's
//! parser or by `sfv`, its reference.

use http::HeaderValue;
use http::header::GetAll;
use sfv::visitor::DictionaryVisitor;
use sfv::{Parser, Version};

use super::BaseError;
#[cfg(any(test, feature = "differential"))]
use super::{input::parse_signature_input_with, signature::parse_signature_with};

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
