//! The signature base (RFC 9421 §2.5): one line per covered component, derived from the
//! request, then `@signature-params`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sfv::{
    Dictionary, FieldType, InnerList, Item, List, ListEntry, ListSerializer, Parser, Version,
};

use super::BaseError;
use super::form::{form_encode, form_pairs};
use super::identifier::{Flag, Kind, SfType, StructuredFields, Text};
use super::input::{Covered, SignatureInput};
use super::message::Message;

impl SignatureInput {
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

pub(super) fn parse_sf<T: FieldType>(bytes: &[u8]) -> Result<T, BaseError> {
    Parser::new(bytes)
        .with_version(Version::Rfc8941)
        .parse()
        .map_err(|_| BaseError("malformed_structured_field"))
}

pub(super) fn serialize_entry(entry: &ListEntry) -> String {
    match entry {
        ListEntry::Item(item) => item.serialize(),
        ListEntry::InnerList(list) => serialize_inner_list(list),
    }
}

pub(super) fn serialize_inner_list(list: &InnerList) -> String {
    let mut ser = ListSerializer::new();
    ser.members([&ListEntry::InnerList(list.clone())]);
    ser.finish().unwrap_or_default()
}

/// Strips leading and trailing SP and HTAB (RFC 9110 §5.5, RFC 9421 §2.1).
pub(super) fn trim_ows(b: &[u8]) -> &[u8] {
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

/// Starts a base line: the component identifier, a colon and a space (RFC 9421 §2.5 step 2).
pub(super) fn begin_line(out: &mut Vec<u8>, id: &[u8]) {
    out.extend_from_slice(id);
    out.extend_from_slice(b": ");
}

impl Covered {
    /// Writes this component's line(s) of the signature base (§2.5 step 2) to `out`.
    pub(super) fn write_lines(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_lines_are_trimmed_of_ows() {
        assert_eq!(trim_ows(b" \t a b \t"), b"a b");
        assert_eq!(trim_ows(b"   "), b"");
    }
}
