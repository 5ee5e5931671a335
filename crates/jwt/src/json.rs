//! JSON parsing that refuses duplicate member names.
//!
//! RFC 7515 §5.2 (step 4) and RFC 7519 §4 let a recipient either reject duplicate names or
//! keep the last one. Keeping one silently is how two parsers come to disagree about what a
//! token says, so every object, at any depth, is refused if a name repeats.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
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
}
