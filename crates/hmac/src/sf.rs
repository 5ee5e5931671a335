//! A hand-written parser for RFC 8941 dictionaries, the one structured type this crate reads
//! on every request (`Signature-Input`, `Signature`, `Content-Digest`).
//!
//! It drives the same `sfv` visitors as [`sfv::Parser::parse_dictionary_with_visitor`], so
//! everything the verifier decides about a member (labels, inner lists, parameters, the
//! refusal reasons) stays in those visitors; only the reading of bytes is done here, in one
//! pass without error positions. `sfv` remains the reference: [`differential`] compares
//! both parsers event by event, the tests below and the `sf_dictionary` fuzz target feed it.
//!
//! RFC 8941 only (no Date or Display String of RFC 9651), as RFC 9421 and RFC 9530 require.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use sfv::visitor::{
    DictionaryVisitor, EntryVisitor, InnerListVisitor, ItemVisitor, ParameterVisitor,
};
use sfv::{BareItemFromInput, Decimal, Integer, KeyRef, StringRef, TokenRef};

/// The field does not parse as an RFC 8941 dictionary (or a visitor refused it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

/// RFC 8941 §4.2.7: base64 with or without `=` padding ("parsers SHOULD NOT fail when `=`
/// padding is not present"), and without insisting that unused trailing bits are zero.
const BYTES: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

struct Cursor<'de> {
    input: &'de [u8],
    pos: usize,
}

/// `lcalpha / "*"` (RFC 8941 §3.1.2, `key`).
fn key_start(c: u8) -> bool {
    c.is_ascii_lowercase() || c == b'*'
}

/// `lcalpha / DIGIT / "_" / "-" / "." / "*"` (RFC 8941 §3.1.2, `key`).
fn key_char(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-' | b'.' | b'*')
}

/// `tchar / ":" / "/"` (RFC 8941 §3.3.4, `sf-token`; `tchar` from RFC 9110 §5.6.2).
fn token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&c)
}

impl<'de> Cursor<'de> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn skip_sp(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    /// OWS: SP and HTAB (RFC 9110 §5.6.3), allowed around dictionary commas (RFC 8941 §3.2).
    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// The ASCII run from the current position while `more` holds (the first byte checked
    /// by the caller).
    fn run(&mut self, more: impl Fn(u8) -> bool) -> Result<&'de str, Malformed> {
        let start = self.pos;
        self.pos += 1;
        while self.peek().is_some_and(&more) {
            self.pos += 1;
        }
        let bytes = self.input.get(start..self.pos).ok_or(Malformed)?;
        std::str::from_utf8(bytes).map_err(|_| Malformed)
    }

    /// RFC 8941 §4.2.3.3, Parsing a Key.
    fn key(&mut self) -> Result<&'de KeyRef, Malformed> {
        if !self.peek().is_some_and(key_start) {
            return Err(Malformed);
        }
        let s = self.run(key_char)?;
        KeyRef::from_str(s).map_err(|_| Malformed)
    }

    /// RFC 8941 §4.2.3.1, Parsing a Bare Item.
    fn bare_item(&mut self) -> Result<BareItemFromInput<'de>, Malformed> {
        match self.peek() {
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'"') => self.string().map(BareItemFromInput::String),
            Some(c) if c.is_ascii_alphabetic() || c == b'*' => {
                // §4.2.6: ALPHA or "*", then tchar, ":" or "/".
                let s = self.run(token_char)?;
                TokenRef::from_str(s)
                    .map(BareItemFromInput::Token)
                    .map_err(|_| Malformed)
            }
            Some(b':') => self.byte_sequence().map(BareItemFromInput::ByteSequence),
            Some(b'?') => {
                // §4.2.8, Parsing a Boolean.
                self.pos += 1;
                let v = match self.peek() {
                    Some(b'1') => true,
                    Some(b'0') => false,
                    _ => return Err(Malformed),
                };
                self.pos += 1;
                Ok(BareItemFromInput::Boolean(v))
            }
            _ => Err(Malformed),
        }
    }

    /// RFC 8941 §4.2.4, Parsing an Integer or Decimal.
    fn number(&mut self) -> Result<BareItemFromInput<'de>, Malformed> {
        let negative = self.eat(b'-');
        if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
            return Err(Malformed);
        }
        let (mut int, mut int_digits) = (0i64, 0usize);
        while let Some(c) = self.peek().filter(u8::is_ascii_digit) {
            int_digits += 1;
            // At most 15 digits for an integer.
            if int_digits > 15 {
                return Err(Malformed);
            }
            int = int * 10 + i64::from(c - b'0');
            self.pos += 1;
        }
        let sign = if negative { -1 } else { 1 };
        if self.peek() != Some(b'.') {
            return Integer::try_from(sign * int)
                .map(BareItemFromInput::Integer)
                .map_err(|_| Malformed);
        }
        // A decimal: at most 12 digits before the point, 1 to 3 after it.
        if int_digits > 12 {
            return Err(Malformed);
        }
        self.pos += 1;
        let (mut frac, mut frac_digits) = (0i64, 0u32);
        while let Some(c) = self.peek().filter(u8::is_ascii_digit) {
            frac_digits += 1;
            if frac_digits > 3 {
                return Err(Malformed);
            }
            frac = frac * 10 + i64::from(c - b'0');
            self.pos += 1;
        }
        if frac_digits == 0 {
            return Err(Malformed);
        }
        let scaled = int * 1000 + frac * 10i64.pow(3 - frac_digits);
        Integer::try_from(sign * scaled)
            .map(|v| BareItemFromInput::Decimal(Decimal::from_integer_scaled_1000(v)))
            .map_err(|_| Malformed)
    }

    /// RFC 8941 §4.2.5, Parsing a String: borrowed unless an escape had to be undone.
    fn string(&mut self) -> Result<Cow<'de, StringRef>, Malformed> {
        self.pos += 1;
        let start = self.pos;
        let mut owned: Option<String> = None;
        loop {
            let Some(c) = self.peek() else {
                return Err(Malformed);
            };
            match c {
                b'"' => {
                    let end = self.pos;
                    self.pos += 1;
                    return match owned {
                        None => {
                            let s = self.input.get(start..end).ok_or(Malformed)?;
                            let s = std::str::from_utf8(s).map_err(|_| Malformed)?;
                            StringRef::from_str(s)
                                .map(Cow::Borrowed)
                                .map_err(|_| Malformed)
                        }
                        Some(s) => sfv::String::from_string(s)
                            .map(Cow::Owned)
                            .map_err(|_| Malformed),
                    };
                }
                b'\\' => {
                    // Only `\"` and `\\` are escapes.
                    let escaped = match self.input.get(self.pos + 1) {
                        Some(&e @ (b'"' | b'\\')) => e,
                        _ => return Err(Malformed),
                    };
                    let s = owned.get_or_insert_with(|| {
                        let done = self.input.get(start..self.pos).unwrap_or_default();
                        // Checked printable ASCII byte by byte below.
                        done.iter().map(|&b| char::from(b)).collect()
                    });
                    s.push(char::from(escaped));
                    self.pos += 2;
                }
                // Visible ASCII and SP only (`unescaped = %x20-21 / %x23-5B / %x5D-7E`).
                0x20..=0x7e => {
                    if let Some(s) = owned.as_mut() {
                        s.push(char::from(c));
                    }
                    self.pos += 1;
                }
                _ => return Err(Malformed),
            }
        }
    }

    /// RFC 8941 §4.2.7, Parsing a Byte Sequence.
    fn byte_sequence(&mut self) -> Result<Vec<u8>, Malformed> {
        self.pos += 1;
        let rest = self.input.get(self.pos..).unwrap_or_default();
        let len = rest.iter().position(|&c| c == b':').ok_or(Malformed)?;
        let b64 = rest.get(..len).ok_or(Malformed)?;
        self.pos += len + 1;
        // The decoder refuses anything outside ALPHA, DIGIT, "+", "/" and "=".
        BYTES.decode(b64).map_err(|_| Malformed)
    }

    /// RFC 8941 §4.2.3.2, Parsing Parameters.
    fn parameters<V: ParameterVisitor<'de>>(
        &mut self,
        mut visitor: V,
    ) -> Result<V::Out, Malformed> {
        while self.eat(b';') {
            self.skip_sp();
            let key = self.key()?;
            let value = if self.eat(b'=') {
                self.bare_item()?
            } else {
                BareItemFromInput::Boolean(true)
            };
            visitor.parameter(key, value).map_err(|_| Malformed)?;
        }
        visitor.finish().map_err(|_| Malformed)
    }

    /// RFC 8941 §4.2.3, Parsing an Item.
    fn item<V: ItemVisitor<'de>>(&mut self, visitor: V) -> Result<(), Malformed> {
        let bare = self.bare_item()?;
        let params = visitor.bare_item(bare).map_err(|_| Malformed)?;
        self.parameters(params).map(drop)
    }

    /// RFC 8941 §4.2.1.2, Parsing an Inner List.
    fn inner_list<V: InnerListVisitor<'de>>(&mut self, mut visitor: V) -> Result<(), Malformed> {
        self.pos += 1;
        while self.peek().is_some() {
            self.skip_sp();
            if self.eat(b')') {
                let params = visitor.finish().map_err(|_| Malformed)?;
                return self.parameters(params).map(drop);
            }
            self.item(visitor.item().map_err(|_| Malformed)?)?;
            if !matches!(self.peek(), None | Some(b' ' | b')')) {
                return Err(Malformed);
            }
        }
        Err(Malformed)
    }

    /// RFC 8941 §4.2.1.1, Parsing an Item or Inner List.
    fn entry<V: EntryVisitor<'de>>(&mut self, visitor: V) -> Result<(), Malformed> {
        if self.peek() == Some(b'(') {
            self.inner_list(visitor.inner_list().map_err(|_| Malformed)?)
        } else {
            self.item(visitor.item().map_err(|_| Malformed)?)
        }
    }
}

/// Parses `input` as an RFC 8941 dictionary (§4.2, §4.2.2), calling `visitor` as
/// `sfv::Parser::parse_dictionary_with_visitor` does.
pub(crate) fn parse_dictionary<'de, V: DictionaryVisitor<'de>>(
    input: &'de [u8],
    mut visitor: V,
) -> Result<V::Out, Malformed> {
    let mut c = Cursor { input, pos: 0 };
    // §4.2 step 2: leading SP are discarded (and trailing SP, step 6).
    c.skip_sp();
    while c.peek().is_some() {
        let key = c.key()?;
        let entry = visitor.entry(key).map_err(|_| Malformed)?;
        if c.eat(b'=') {
            c.entry(entry)?;
        } else {
            // §4.2.2: a member without `=` is Boolean true, with parameters.
            let item = entry.item().map_err(|_| Malformed)?;
            let params = item
                .bare_item(BareItemFromInput::Boolean(true))
                .map_err(|_| Malformed)?;
            c.parameters(params)?;
        }
        c.skip_ows();
        if c.peek().is_none() {
            break;
        }
        if !c.eat(b',') {
            return Err(Malformed);
        }
        c.skip_ows();
        // A trailing comma fails.
        if c.peek().is_none() {
            return Err(Malformed);
        }
    }
    visitor.finish().map_err(|_| Malformed)
}

/// The differential oracle: both parsers on the same bytes, as logs of the visitor calls
/// they make. For the tests below and the `sf_dictionary` fuzz target; not a stable API.
#[cfg(any(test, feature = "differential"))]
pub mod differential {
    use std::convert::Infallible;

    use super::*;

    /// One visitor call, with what it was given.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Event {
        /// A dictionary member's key.
        Key(String),
        /// The member is an item.
        Item,
        /// The member is an inner list.
        InnerList,
        /// A bare item, in `Debug` form (type and value).
        Bare(String),
        /// A parameter: key and bare item (`Debug`).
        Param(String, String),
        /// The end of a parameter list.
        EndParams,
    }

    /// Records every call.
    #[derive(Default)]
    pub struct Recorder(Vec<Event>);

    impl<'de> DictionaryVisitor<'de> for Recorder {
        type Out = Vec<Event>;
        type Error = Infallible;
        fn entry(&mut self, key: &'de KeyRef) -> Result<impl EntryVisitor<'de>, Infallible> {
            self.0.push(Event::Key(key.as_str().to_owned()));
            Ok(self)
        }
        fn finish(self) -> Result<Vec<Event>, Infallible> {
            Ok(self.0)
        }
    }

    impl<'de> EntryVisitor<'de> for &mut Recorder {
        type Error = Infallible;
        fn item(self) -> Result<impl ItemVisitor<'de>, Infallible> {
            self.0.push(Event::Item);
            Ok(self)
        }
        fn inner_list(self) -> Result<impl InnerListVisitor<'de>, Infallible> {
            self.0.push(Event::InnerList);
            Ok(self)
        }
    }

    impl<'de> InnerListVisitor<'de> for &mut Recorder {
        type Error = Infallible;
        fn item(&mut self) -> Result<impl ItemVisitor<'de>, Infallible> {
            self.0.push(Event::Item);
            Ok(&mut **self)
        }
        fn finish(self) -> Result<impl ParameterVisitor<'de>, Infallible> {
            Ok(self)
        }
    }

    impl<'de> ItemVisitor<'de> for &mut Recorder {
        type Out = ();
        type Error = Infallible;
        fn bare_item(
            self,
            bare: BareItemFromInput<'de>,
        ) -> Result<impl ParameterVisitor<'de, Out = ()>, Infallible> {
            self.0.push(Event::Bare(format!("{bare:?}")));
            Ok(self)
        }
    }

    impl<'de> ParameterVisitor<'de> for &mut Recorder {
        type Out = ();
        type Error = Infallible;
        fn parameter(
            &mut self,
            key: &'de KeyRef,
            value: BareItemFromInput<'de>,
        ) -> Result<(), Infallible> {
            self.0
                .push(Event::Param(key.as_str().to_owned(), format!("{value:?}")));
            Ok(())
        }
        fn finish(self) -> Result<(), Infallible> {
            self.0.push(Event::EndParams);
            Ok(())
        }
    }

    /// `sfv`'s reading of `input` as an RFC 8941 dictionary: `None` if it refuses it.
    pub fn by_sfv(input: &[u8]) -> Option<Vec<Event>> {
        sfv::Parser::new(input)
            .with_version(sfv::Version::Rfc8941)
            .parse_dictionary_with_visitor(Recorder::default())
            .ok()
    }

    /// This crate's reading of `input`: `None` if it refuses it.
    pub fn by_hand(input: &[u8]) -> Option<Vec<Event>> {
        parse_dictionary(input, Recorder::default()).ok()
    }

    /// Reads `Signature-Input` and `Signature` as the verifier does, with `sfv` or with
    /// this crate's parser: whether the first member is usable and its signature found. For
    /// benchmarking one parser against the other.
    // Reached through the `differential` feature (the bench); this crate's tests do not call it.
    #[cfg_attr(not(feature = "differential"), allow(dead_code))]
    pub fn read_signature_fields(signature_input: &[u8], signature: &[u8], sfv: bool) -> bool {
        use crate::components::{Engine, parse_signature_input_with, parse_signature_with};
        let engine = if sfv { Engine::Sfv } else { Engine::Hand };
        let Ok(picked) = parse_signature_input_with(engine, signature_input, None) else {
            return false;
        };
        let (Some(label), Ok(_)) = (picked.label, picked.input) else {
            return false;
        };
        matches!(
            parse_signature_with(engine, signature, Some(&label)),
            Ok(Ok(_))
        )
    }

    /// Whether the verifier's own readings of `Signature-Input`, `Signature` and
    /// `Content-Digest` from `input` are the same with either parser (the picked member, its
    /// refusal reason, the signature bytes, the digests).
    pub fn verifier_readings_agree(input: &[u8], label: Option<&str>) -> bool {
        crate::components::readings_agree(input, label) && crate::digest::readings_agree(input)
    }
}

#[cfg(test)]
mod tests {
    use super::differential::{by_hand, by_sfv, verifier_readings_agree};
    use proptest::prelude::*;

    fn agree(input: &[u8]) {
        assert_eq!(
            by_hand(input),
            by_sfv(input),
            "input {:?}",
            String::from_utf8_lossy(input)
        );
        for label in [None, Some("sig1"), Some("a")] {
            assert!(
                verifier_readings_agree(input, label),
                "verifier readings differ on {:?} (label {label:?})",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn rfc9421_and_rfc9530_examples_parse_alike() {
        for s in [
            r#"sig1=("@method" "@authority" "@path" "content-digest" "content-length" "content-type");created=1618884473;keyid="test-key-rsa-pss""#,
            r#"sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519""#,
            r#"sig1=:e3y37nxAoeuXw2KbaIxE2d9jpE7Z9okgizg6QbD2Z7fUVUvog+ZTKKLRBnhNglVIY6fAaYlHwx7ZAXXdBVF8gA==:"#,
            "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
            r#"a=1, b=?0;x, c=(1.5 -2 tok/en:x "s\"q\\");p=:AA:, d, e=*t"#,
            "",
            "  ",
            "a=",
            "a=,",
            "a=1,",
            "a=1 ,  b=2",
            "a=1\t,\tb=2",
            "a=(",
            "a=(1",
            "a=(1)x",
            "a=1.",
            "a=1.2345",
            "a=1234567890123.1",
            "a=123456789012.123",
            "a=1234567890123456",
            "a=-",
            "a=\"\\x\"",
            "a=\"\x7f\"",
            "a=:AA",
            "a=:A=A=:",
            "a=:Zm9v:",
            "a=:Zm9:",
            "A=1",
            "a=@1",
            "a=%\"x\"",
            "a;b=1;c",
            "a=1;",
            "a=1; b",
            "a=(1  2 )",
            "a=(1)(2)",
            " a=1 ",
            "a=1 ",
            "\ta=1",
            "a=?2",
            "a=?",
            "a=(\"a\";sf \"b\";key=\"c\");created=-1",
        ] {
            agree(s.as_bytes());
        }
    }

    /// Pieces valid dictionaries are made of, and pieces that break them.
    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("sig1=".to_owned()),
            Just("(".to_owned()),
            Just(")".to_owned()),
            Just(" ".to_owned()),
            Just("\t".to_owned()),
            Just(", ".to_owned()),
            Just(",".to_owned()),
            Just(";".to_owned()),
            Just("=".to_owned()),
            Just("\"@method\"".to_owned()),
            Just("\"content-digest\";sf".to_owned()),
            Just("\"@query-param\";name=\"a\"".to_owned()),
            Just(";created=1618884473".to_owned()),
            Just(";keyid=\"k\\\"1\"".to_owned()),
            Just(";nonce=\"n\"".to_owned()),
            Just(";alg=\"hmac-sha256\"".to_owned()),
            Just(":dGVzdA==:".to_owned()),
            Just(":dGVzdA:".to_owned()),
            Just("sha-256=".to_owned()),
            Just("?1".to_owned()),
            Just("?0".to_owned()),
            "[a-z*][a-z0-9_.*-]{0,4}",
            "-?[0-9]{1,16}(\\.[0-9]{0,4})?",
            "\"[ -~]{0,6}\"",
            "[A-Za-z*][A-Za-z0-9:/!#$%&'*+.^_`|~-]{0,5}",
            ":[A-Za-z0-9+/=]{0,9}:",
            any::<u8>().prop_map(|b| char::from(b).to_string()),
        ]
    }

    /// A well-formed dictionary, then (in most cases) a few bytes changed.
    fn field() -> impl Strategy<Value = Vec<u8>> {
        let dict = prop::collection::vec(fragment(), 0..14).prop_map(|v| v.concat());
        let edits =
            prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..3);
        (dict, edits).prop_map(|(s, edits)| {
            let mut b = s.into_bytes();
            for (at, byte, op) in edits {
                let i = if b.is_empty() { 0 } else { at.index(b.len()) };
                match op {
                    0 if !b.is_empty() => b[i] = byte,
                    1 => b.insert(i.min(b.len()), byte),
                    _ if !b.is_empty() => {
                        b.remove(i);
                    }
                    _ => {}
                }
            }
            b
        })
    }

    /// Valid signature dictionaries, so most cases get past the syntax and exercise the
    /// member checks too.
    fn signature_input() -> impl Strategy<Value = Vec<u8>> {
        let component = prop_oneof![
            Just("\"@method\""),
            Just("\"@target-uri\""),
            Just("\"@authority\""),
            Just("\"@path\""),
            Just("\"@query\""),
            Just("\"@query-param\";name=\"x\""),
            Just("\"content-digest\""),
            Just("\"content-digest\";sf"),
            Just("\"content-digest\";key=\"sha-256\""),
            Just("\"Content-Type\""),
            Just("\"date\";bs"),
            Just("\"@status\""),
            Just("\"x\";req"),
            Just("tok"),
            Just("1"),
        ];
        let param = prop_oneof![
            Just(";created=1618884473"),
            Just(";created=\"x\""),
            Just(";expires=1618884773"),
            Just(";nonce=\"abc\""),
            Just(";nonce=\"a\\\\b\""),
            Just(";keyid=\"test-key\""),
            Just(";alg=\"hmac-sha256\""),
            Just(";tag=\"t\""),
            Just(";created=1;created=2"),
        ];
        let member = (
            prop_oneof![Just("sig1"), Just("a"), Just("sig2")],
            prop::collection::vec(component, 0..6),
            prop::collection::vec(param, 0..5),
        )
            .prop_map(|(label, comps, params)| {
                format!("{label}=({}){}", comps.join(" "), params.concat())
            });
        prop::collection::vec(member, 0..3).prop_map(|m| m.join(", ").into_bytes())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

        #[test]
        fn both_parsers_agree_on_any_field(input in field()) {
            agree(&input);
        }

        #[test]
        fn both_parsers_agree_on_signature_inputs(input in signature_input()) {
            agree(&input);
        }

        #[test]
        fn both_parsers_agree_on_arbitrary_bytes(input in prop::collection::vec(any::<u8>(), 0..40)) {
            agree(&input);
        }
    }
}
