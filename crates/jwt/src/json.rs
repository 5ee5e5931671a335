//! JSON parsing that refuses duplicate member names.
//!
//! RFC 7515 §5.2 (step 4) and RFC 7519 §4 let a recipient either reject duplicate names or
//! keep the last one. Keeping one silently is how two parsers come to disagree about what a
//! token says, so every object, at any depth, is refused if a name repeats.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A `serde_json::Value` whose objects had no duplicate names.
pub(crate) struct Strict(pub(crate) Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
        Ok(Strict(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
        Ok(Strict(Value::String(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Strict, E> {
        Ok(Strict(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }
    fn visit_none<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        let mut v = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            v.push(item);
        }
        Ok(Strict(Value::Array(v)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        let mut m = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if m.insert(key, value).is_some() {
                return Err(de::Error::custom("duplicate member name"));
            }
        }
        Ok(Strict(Value::Object(m)))
    }
}

/// Parses `bytes` as one JSON object with no duplicate names at any depth. serde_json's
/// recursion limit bounds the nesting, and the caller bounds the length.
pub(crate) fn parse_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Strict>(bytes) {
        Ok(Strict(Value::Object(m))) => Some(m),
        _ => None,
    }
}

/// A member name, borrowed from the input unless it had escapes.
struct Name<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// The member names of one object, to refuse a repeated one. A few names are compared in a
/// list; past that an ordered set keeps a long object from costing quadratic time.
#[derive(Default)]
struct Names<'de> {
    few: Vec<Cow<'de, str>>,
    many: BTreeSet<Cow<'de, str>>,
}

const FEW_NAMES: usize = 16;

impl<'de> Names<'de> {
    /// `false` if `name` was already seen.
    fn insert(&mut self, name: Cow<'de, str>) -> bool {
        if self.many.is_empty() {
            if self.few.contains(&name) {
                return false;
            }
            if self.few.len() < FEW_NAMES {
                if self.few.capacity() == 0 {
                    self.few.reserve_exact(FEW_NAMES);
                }
                self.few.push(name);
                return true;
            }
            self.many.extend(self.few.drain(..));
        }
        self.many.insert(name)
    }
}

fn duplicate<E: de::Error>() -> E {
    E::custom("duplicate member name")
}

/// Any JSON value, checked as strictly as [`Strict`] (no repeated names at any depth) but
/// not kept: nothing is built except the name sets of nested objects.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_none<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while let Some(Checked) = seq.next_element()? {}
        Ok(Checked)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        let mut names = Names::default();
        while let Some(Name(name)) = map.next_key()? {
            if !names.insert(name) {
                return Err(duplicate());
            }
            let Checked = map.next_value()?;
        }
        Ok(Checked)
    }
}

/// A member value as the verifier reads it: only the shapes it looks for are kept.
#[derive(Debug, PartialEq)]
pub(crate) enum Member<'de> {
    Str(Cow<'de, str>),
    /// A number as a NumericDate (RFC 7519 §2): seconds, fractions truncated, saturating.
    Num(i64),
    /// An array whose every element is a string.
    StrList(Vec<Cow<'de, str>>),
    /// Anything else (checked, not kept).
    Other,
}

impl<'de> Member<'de> {
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Member::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Member<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MemberVisitor)
    }
}

struct MemberVisitor;

impl<'de> Visitor<'de> for MemberVisitor {
    type Value = Member<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Member<'de>, E> {
        Ok(Member::Other)
    }
    // The same conversion `serde_json::Number` gives through `as_i64`, then `as_f64` cast.
    fn visit_i64<E>(self, v: i64) -> Result<Member<'de>, E> {
        Ok(Member::Num(v))
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    fn visit_u64<E>(self, v: u64) -> Result<Member<'de>, E> {
        Ok(Member::Num(i64::try_from(v).unwrap_or(v as f64 as i64)))
    }
    #[allow(clippy::cast_possible_truncation)]
    fn visit_f64<E>(self, v: f64) -> Result<Member<'de>, E> {
        // serde_json never yields a non-finite number; anything else is not a date.
        Ok(if v.is_finite() {
            Member::Num(v as i64)
        } else {
            Member::Other
        })
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Member<'de>, E> {
        Ok(Member::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Member<'de>, E> {
        Ok(Member::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Member<'de>, E> {
        Ok(Member::Str(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Member<'de>, E> {
        Ok(Member::Other)
    }
    fn visit_none<E>(self) -> Result<Member<'de>, E> {
        Ok(Member::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Member<'de>, A::Error> {
        let mut list = Some(Vec::new());
        while let Some(item) = seq.next_element::<Member<'de>>()? {
            match (item, &mut list) {
                (Member::Str(s), Some(l)) => l.push(s),
                // One element that is not a string: the rest is still checked, not kept.
                _ => list = None,
            }
        }
        Ok(list.map_or(Member::Other, Member::StrList))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Member<'de>, A::Error> {
        CheckedVisitor.visit_map(map)?;
        Ok(Member::Other)
    }
}

/// Members of one object known by name in advance (registered claims, header parameters),
/// each read into a field of its own; see [`known_members!`].
pub(crate) trait KnownMembers<'de>: Default {
    /// The field for member `name`, if `name` is one of the known members.
    fn field_mut(&mut self, name: &str) -> Option<&mut Option<Member<'de>>>;
    /// The field for member `name`, if `name` is one of the known members.
    fn field(&self, name: &str) -> Option<&Option<Member<'de>>>;
}

/// Declares a struct with one `Option<Member>` field per known member name, and its
/// [`KnownMembers`] lookup: one `match` on the name, so scanning stays a single pass.
macro_rules! known_members {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($(#[$fmeta:meta])* $field:ident: $json:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Default)]
        $vis struct $name<'de> {
            $($(#[$fmeta])* pub(crate) $field: Option<$crate::json::Member<'de>>,)*
            _borrow: std::marker::PhantomData<&'de ()>,
        }

        impl<'de> $crate::json::KnownMembers<'de> for $name<'de> {
            fn field_mut(&mut self, name: &str) -> Option<&mut Option<$crate::json::Member<'de>>> {
                match name {
                    $($json => Some(&mut self.$field),)*
                    _ => None,
                }
            }
            fn field(&self, name: &str) -> Option<&Option<$crate::json::Member<'de>>> {
                match name {
                    $($json => Some(&self.$field),)*
                    _ => None,
                }
            }
        }
    };
}
pub(crate) use known_members;

/// Which members of one object to keep besides the known ones.
pub(crate) struct Wanted<'a> {
    pub(crate) extra: &'a dyn Fn(&str) -> bool,
}

/// The members of one JSON object that were asked for, after the whole object has been
/// checked like [`parse_object`]: no repeated name at any depth, nothing after it. The known
/// members are fields of `K` (reached through `Deref`); others by [`get`](Self::get).
pub(crate) struct Members<'de, K> {
    known: K,
    extra: Vec<(Cow<'de, str>, Member<'de>)>,
}

impl<'de, K: KnownMembers<'de>> Members<'de, K> {
    /// The member `name`, if the object has it and it was asked for.
    pub(crate) fn get(&self, name: &str) -> Option<&Member<'de>> {
        match self.known.field(name) {
            Some(field) => field.as_ref(),
            None => self.extra.iter().find(|(n, _)| n == name).map(|(_, v)| v),
        }
    }
}

impl<K> std::ops::Deref for Members<'_, K> {
    type Target = K;
    fn deref(&self) -> &K {
        &self.known
    }
}

/// Fills `out` in place (no copy of the fields per layer of serde's calls).
struct MembersSeed<'a, 'm, 'de, K> {
    extra: &'a dyn Fn(&str) -> bool,
    out: &'m mut Members<'de, K>,
}

impl<'de, K: KnownMembers<'de>> DeserializeSeed<'de> for MembersSeed<'_, '_, 'de, K> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, K: KnownMembers<'de>> Visitor<'de> for MembersSeed<'_, '_, 'de, K> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let out = self.out;
        // Names without a field; a known name can only repeat itself, found by its field.
        let mut others = Names::default();
        while let Some(Name(name)) = map.next_key()? {
            match out.known.field_mut(&name) {
                Some(Some(_)) => return Err(duplicate()),
                Some(place) => *place = Some(map.next_value::<Member<'de>>()?),
                None => {
                    if !others.insert(name.clone()) {
                        return Err(duplicate());
                    }
                    if (self.extra)(&name) {
                        let value: Member<'de> = map.next_value()?;
                        out.extra.push((name, value));
                    } else {
                        let Checked = map.next_value()?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Checks `bytes` as [`parse_object`] does (one object, no repeated name at any depth,
/// serde_json's recursion limit) and keeps only the known members of `K` and those `wanted`
/// names, borrowing their strings from `bytes` where they had no escapes.
pub(crate) fn scan_object<'de, K: KnownMembers<'de>>(
    bytes: &'de [u8],
    wanted: Wanted<'_>,
) -> Option<Members<'de, K>> {
    let mut members = Members {
        known: K::default(),
        extra: Vec::new(),
    };
    let mut d = serde_json::Deserializer::from_slice(bytes);
    MembersSeed {
        extra: wanted.extra,
        out: &mut members,
    }
    .deserialize(&mut d)
    .ok()?;
    d.end().ok()?;
    Some(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_names_are_refused_at_any_depth() {
        assert!(parse_object(br#"{"a":1,"b":{"c":2}}"#).is_some());
        assert!(parse_object(br#"{"a":1,"a":1}"#).is_none());
        assert!(parse_object(br#"{"a":{"c":1,"c":2}}"#).is_none());
        assert!(parse_object(br#"{"a":[{"c":1,"c":2}]}"#).is_none());
    }

    #[test]
    fn only_objects_are_accepted() {
        assert!(parse_object(b"[]").is_none());
        assert!(parse_object(b"\"x\"").is_none());
        assert!(parse_object(b"{} x").is_none());
        assert!(parse_object(b"{\"a\":1}").is_some());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        let doc = format!("{{\"a\":{deep}}}");
        assert!(parse_object(doc.as_bytes()).is_none());
    }

    known_members! {
        struct AN { a: "a", n: "n" }
    }

    known_members! {
        struct NoneKnown {}
    }

    fn scan_all(bytes: &[u8]) -> Option<Members<'_, AN<'_>>> {
        scan_object(bytes, Wanted { extra: &|_| true })
    }

    #[test]
    fn scanning_accepts_and_refuses_exactly_what_parsing_does() {
        let many: String = (0..40).map(|i| format!("\"n{i}\":{i},")).collect();
        let docs: Vec<String> = [
            r#"{"a":1,"b":{"c":2}}"#,
            r#"{"a":1,"a":1}"#,
            r#"{"a":1,"\u0061":2}"#,
            r#"{"n":1,"x":2,"n":3}"#,
            r#"{"x":1,"n":2,"\u0078":3}"#,
            r#"{"a":{"c":1,"c":2}}"#,
            r#"{"a":[{"c":1,"c":2}]}"#,
            r#"{"a":[[{"c":1,"\u0063":2}]]}"#,
            r#"{"a":"x\ny","b":[1,"2",null,true,{"d":[]}]}"#,
            "[]",
            "\"x\"",
            "{} x",
            "{\"a\":1}",
            "{\"a\":1e400}",
            "{\"a\":\"\\ud800\"}",
            "{\"a\":\"\u{7f}\"}",
            "{\"a\" 1}",
            "",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([
            format!("{{{many}\"z\":1}}"),
            format!("{{{many}\"n3\":1}}"),
            format!("{{\"a\":{{{many}\"n39\":1}}}}"),
            format!("{{\"a\":{}1{}}}", "[".repeat(200), "]".repeat(200)),
        ])
        .collect();
        for d in &docs {
            assert_eq!(
                scan_all(d.as_bytes()).is_some(),
                parse_object(d.as_bytes()).is_some(),
                "{d}"
            );
            let none = Wanted { extra: &|_| false };
            assert_eq!(
                scan_object::<NoneKnown<'_>>(d.as_bytes(), none).is_some(),
                parse_object(d.as_bytes()).is_some(),
                "{d}"
            );
        }
    }

    #[test]
    fn scanned_members_keep_the_shapes_the_verifier_reads() {
        let doc = br#"{"s":"a\"b","t":"plain","n":-3,"u":18446744073709551615,"f":1.9,
            "l":["x","y\u0041"],"m":["x",1],"e":[],"o":{"k":"v"},"b":true,"z":null}"#;
        let m = scan_object::<AN<'_>>(
            doc,
            Wanted {
                extra: &|n| n != "o",
            },
        )
        .unwrap();
        assert_eq!(m.get("s"), Some(&Member::Str("a\"b".into())));
        assert_eq!(m.get("t").and_then(Member::as_str), Some("plain"));
        assert_eq!(m.get("n"), Some(&Member::Num(-3)));
        assert_eq!(m.n, Some(Member::Num(-3)));
        assert_eq!(m.a, None);
        assert_eq!(m.get("u"), Some(&Member::Num(i64::MAX)));
        assert_eq!(m.get("f"), Some(&Member::Num(1)));
        assert_eq!(
            m.get("l"),
            Some(&Member::StrList(vec!["x".into(), "yA".into()]))
        );
        assert_eq!(m.get("m"), Some(&Member::Other));
        assert_eq!(m.get("e"), Some(&Member::StrList(Vec::new())));
        assert_eq!(m.get("b"), Some(&Member::Other));
        assert_eq!(m.get("z"), Some(&Member::Other));
        // Not asked for: checked, not kept.
        assert_eq!(m.get("o"), None);
        assert!(m.get("missing").is_none());
    }
}
