//! Component identifiers and the signature base (RFC 9421 §2), and the reading of
//! `Signature-Input` and `Signature` (§4).
//!
//! The verifier and the signer share this module, so both sides derive every component the
//! same way. Its parts, in the order a request meets them:
//!
//! - [`identifier`]: [`Component`], what a received identifier's name and parameters mean,
//!   which fields are structured;
//! - [`field`]: a dictionary field of one or several lines, read by this crate's parser or
//!   by `sfv`;
//! - [`input`]: the `Signature-Input` member of one label, serialised once for
//!   `@signature-params`;
//! - [`signature`]: the `Signature` bytes of that label;
//! - [`message`]: the request as the base sees it, the authority normalised;
//! - [`form`]: the form codec of `@query-param`;
//! - [`base`]: the signature base.

mod base;
mod field;
mod form;
mod identifier;
mod input;
mod message;
mod signature;

#[cfg(any(test, feature = "differential"))]
pub(crate) use field::readings_agree;
pub(crate) use field::{Engine, with_field};
pub use identifier::{Component, SfType};
pub(crate) use identifier::{Kind, StructuredFields, valid_key, valid_sf_string};
#[cfg(any(test, feature = "differential"))]
pub(crate) use input::parse_signature_input_with;
pub(crate) use input::{SignatureInput, parse_signature_input};
pub(crate) use message::{Message, normalize_authority};
#[cfg(any(test, feature = "differential"))]
pub(crate) use signature::parse_signature_with;
pub(crate) use signature::{ByteMember, parse_signature};

/// Why a component could not be derived: an audit reason word, never message content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BaseError(pub(crate) &'static str);

/// What the test oracle in `reference` reads of the parts above.
#[cfg(test)]
use {
    base::*,
    base64::Engine as _,
    base64::engine::general_purpose::STANDARD as BASE64,
    form::*,
    http::{HeaderMap, HeaderName, Method},
    identifier::*,
    input::*,
    sfv::{BareItem, Dictionary, FieldType, Item, List, ListEntry},
};

#[cfg(test)]
mod reference;
