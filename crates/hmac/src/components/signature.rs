//! `Signature` (RFC 9421 §4.2): the byte sequence of one label.

use std::convert::Infallible;

use sfv::visitor::{
    DictionaryVisitor, EntryVisitor, Ignored, InnerListVisitor, ItemVisitor, ParameterVisitor,
};
use sfv::{BareItemFromInput, KeyRef};

use super::BaseError;
use super::field::Engine;

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

pub(super) struct SignatureVisitor<'l> {
    pub(super) label: Option<&'l str>,
    pub(super) found: ByteMember,
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
