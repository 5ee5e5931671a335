//! A test oracle: the verifier's reading of `Signature-Input`/`Signature` and its signature
//! base as they were before the visitor-based rewrite (whole fields parsed into `sfv`
//! dictionaries, component identifiers compared as strings, base lines formatted per
//! component). The rewrite must give the same answer, reason for reason, on any input; the
//! test below checks that on RFC 9421 examples and on many mutations of them.

use super::*;
use http::HeaderValue;

/// What the old `extract` kept of a request.
struct Old {
    label: String,
    components: Vec<Component>,
    serialized: String,
    created: Option<i64>,
    expires: Option<i64>,
    nonce: Option<String>,
    alg: Option<String>,
    keyid: Option<String>,
    signature: Vec<u8>,
}

fn old_from_item(item: &Item) -> Result<Component, BaseError> {
    let BareItem::String(name) = &item.bare_item else {
        return Err(BaseError("component_not_a_string"));
    };
    let name = name.as_str();
    if !name.starts_with('@') {
        let valid = HeaderName::from_bytes(name.as_bytes())
            .map(|h| h.as_str() == name)
            .unwrap_or(false);
        if !valid {
            return Err(BaseError("invalid_field_name"));
        }
    }
    Ok(Component {
        name: name.to_owned(),
        params: item.params.clone(),
    })
}

/// The old `extract` after the fields were joined, and `SignatureInput::from_inner_list`.
fn old_extract(si: &[u8], sig: &[u8], label: Option<&str>) -> Result<Old, &'static str> {
    let inputs: Dictionary = parse_sf(si).map_err(|e| e.0)?;
    let signatures: Dictionary = parse_sf(sig).map_err(|e| e.0)?;
    let (label, entry) = match label {
        Some(l) => match inputs.get(l) {
            Some(e) => (l.to_owned(), e),
            None => return Err("label_not_found"),
        },
        None => match inputs.first() {
            Some((k, e)) => (k.as_str().to_owned(), e),
            None => return Err("empty_signature_input"),
        },
    };
    let ListEntry::InnerList(list) = entry else {
        return Err("signature_input_not_inner_list");
    };
    if list.items.len() > MAX_COMPONENTS {
        return Err("too_many_components");
    }
    let mut components: Vec<Component> = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    for item in &list.items {
        let c = old_from_item(item).map_err(|e| e.0)?;
        let id = c.to_string();
        if ids.contains(&id) {
            return Err("duplicate_component");
        }
        ids.push(id);
        components.push(c);
    }
    let int = |k: &str| match list.params.get(k) {
        None => Ok(None),
        Some(BareItem::Integer(i)) => Ok(Some(i64::from(*i))),
        Some(_) => Err("malformed_signature_params"),
    };
    let string = |k: &str| match list.params.get(k) {
        None => Ok(None),
        Some(BareItem::String(s)) => Ok(Some(s.as_str().to_owned())),
        Some(_) => Err("malformed_signature_params"),
    };
    let (created, expires) = (int("created")?, int("expires")?);
    let (nonce, alg, keyid) = (string("nonce")?, string("alg")?, string("keyid")?);
    let signature = match signatures.get(label.as_str()) {
        Some(ListEntry::Item(item)) => match &item.bare_item {
            BareItem::ByteSequence(b) => b.clone(),
            _ => return Err("signature_not_bytes"),
        },
        _ => return Err("signature_label_mismatch"),
    };
    Ok(Old {
        label,
        components,
        serialized: serialize_inner_list(list),
        created,
        expires,
        nonce,
        alg,
        keyid,
        signature,
    })
}

fn old_base(old: &Old, msg: &Message<'_>, sf: &StructuredFields) -> Result<Vec<u8>, BaseError> {
    let mut out = Vec::new();
    for c in &old.components {
        write_lines(c, msg, sf, &mut out)?;
    }
    out.extend_from_slice(b"\"@signature-params\": ");
    out.extend_from_slice(old.serialized.as_bytes());
    Ok(out)
}

fn flag(c: &Component, name: &str) -> Result<bool, BaseError> {
    match c.params.get(name) {
        None => Ok(false),
        Some(BareItem::Boolean(true)) => Ok(true),
        Some(_) => Err(BaseError("bad_component_parameter")),
    }
}

fn string_param<'a>(c: &'a Component, name: &str) -> Result<Option<&'a str>, BaseError> {
    match c.params.get(name) {
        None => Ok(None),
        Some(BareItem::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(BaseError("bad_component_parameter")),
    }
}

/// The old `Component::write_lines`.
fn write_lines(
    c: &Component,
    msg: &Message<'_>,
    sf: &StructuredFields,
    out: &mut Vec<u8>,
) -> Result<(), BaseError> {
    let id = c.to_string();
    let line = |value: &[u8], out: &mut Vec<u8>| {
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.push(b'\n');
    };
    if let Some(derived) = c.name.strip_prefix('@') {
        // Derived components take no field parameters; `req`/`tr` do not apply to a
        // request verified on its own.
        let allowed: &[&str] = if derived == "query-param" {
            &["name"]
        } else {
            &[]
        };
        if c.params.keys().any(|k| !allowed.contains(&k.as_str())) {
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
                let Some(wanted) = string_param(c, "name")? else {
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

    if c.params
        .keys()
        .any(|k| !matches!(k.as_str(), "sf" | "key" | "bs"))
    {
        // `req` and `tr` (and unknown parameters) are not supported: fail closed.
        return Err(BaseError("unsupported_component_parameter"));
    }
    let is_sf = flag(c, "sf")?;
    let is_bs = flag(c, "bs")?;
    let member = string_param(c, "key")?;
    if is_bs && (is_sf || member.is_some()) {
        // §2.1.3: `bs` MUST NOT be combined with `sf` or `key`.
        return Err(BaseError("bs_with_sf"));
    }
    let mut lines = msg.headers.get_all(c.name.as_str()).iter().peekable();
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
        let value = match sf.type_of(&c.name) {
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

/// The new reading, in the order `HttpSignatureVerifier::extract` applies it.
fn new_extract(
    si: &[u8],
    sig: &[u8],
    label: Option<&str>,
) -> Result<(String, SignatureInput, Vec<u8>), &'static str> {
    let picked = parse_signature_input(si, label).map_err(|e| e.0)?;
    let signature = parse_signature(sig, picked.label.as_deref()).map_err(|e| e.0)?;
    let Some(label) = picked.label else {
        return Err(picked.input.err().map_or("label_not_found", |e| e.0));
    };
    let input = picked.input.map_err(|e| e.0)?;
    let signature = signature.map_err(|e| e.0)?;
    Ok((label, input, signature))
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

const SEEDS: &[&str] = &[
    r#"sig1=("@method" "@authority" "@path" "@query" "content-digest");created=1618884473;nonce="abc";alg="hmac-sha256";keyid="k1""#,
    r#"sig1=("@target-uri" "x";sf "x";key="a" "x-b";bs "@query-param";name="a");created=1;keyid="k""#,
    r#"sig1=("@method");created=1, sig2=("@path" "@query" "@scheme" "@request-target");keyid="k2";created=2;expires=3"#,
    r#"sig-b26=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret""#,
    r#"sig1=();created=1;tag="t", sig1=("@method" "@method")"#,
    r#"sig1=("@query-param";name="b" "@query-param";name="a" "x";key="b")"#,
];

const FRAGMENTS: &[&str] = &[
    ";sf",
    ";sf=?0",
    ";sf=?1",
    ";bs",
    ";key=\"a\"",
    ";key=\"b\"",
    ";key=a",
    ";name=\"a\"",
    ";name=\"b\"",
    ";name=1",
    ";req",
    ";tr",
    ";created=7",
    ";created=\"7\"",
    ";expires=9",
    ";expires=1.5",
    ";nonce=\"n\"",
    ";nonce=n",
    ";nonce=\"a\\\"b\"",
    ";keyid=\"k\"",
    ";keyid=\"k\\\\1\"",
    ";alg=\"hmac-sha256\"",
    ";alg=\"x\"",
    ";tag=\"t\"",
    ";zz=:YQ==:",
    " \"@method\"",
    " \"@path\"",
    " \"x\"",
    " \"X\"",
    " \"x\";sf",
    " \"@status\"",
    " \"@query-param\"",
    " \"content-digest\"",
    " \"a\\\"b\"",
    " \"@me\\\\thod\"",
    " \"\"",
    " \"@query\"",
    " \"@target-uri\"",
    " \"x-b\";bs",
    " \"x-list\";sf",
    " \"x;y\"",
    ", sig2=(\"@method\")",
    ", sig1=(\"@path\");created=5",
    ", sig1=:AA==:",
    ", sig2=1",
    ", sig2",
    " ",
    "  ",
    "(",
    ")",
    "\"",
    "=",
    ";",
    ",",
    "?1",
    "1.5",
    ":YQ==:",
    "tok",
    "*",
    "-0",
    "007",
    "@1",
    "%\"a\"",
    "\t",
];

const SIGNATURES: &[&str] = &[
    "sig1=:AAAA:, sig2=:BBBB:, sig-b26=:YQ==:",
    "sig1=:AAAA:",
    "sig2=:BBBB:, sig1=(\"x\")",
    "sig1=\"x\", sig2=:YQ==:",
    "sig1=:AAAA:, sig1=:YWI=:",
    "",
];

fn mutate(rng: &mut Rng, seed: &str) -> String {
    let mut s = seed.as_bytes().to_vec();
    for _ in 0..=rng.below(4) {
        // Mostly where a parameter, an item or a member can follow, so that many
        // mutants still parse and reach the checks after the syntax.
        let joints: Vec<usize> = (0..=s.len())
            .filter(|&i| {
                i == s.len()
                    || matches!(s.get(i), Some(b')' | b' '))
                    || matches!(i.checked_sub(1).and_then(|j| s.get(j)), Some(b'"' | b')'))
            })
            .collect();
        let at = if rng.below(4) == 0 {
            rng.below(s.len() + 1)
        } else {
            joints[rng.below(joints.len())]
        };
        match rng.below(6) {
            0..=3 => {
                let f = rng.pick(FRAGMENTS).as_bytes();
                s.splice(at..at, f.iter().copied());
            }
            4 => {
                let end = (at + 1 + rng.below(5)).min(s.len());
                s.drain(at..end.max(at));
            }
            _ => {
                let end = (at + 1 + rng.below(12)).min(s.len());
                let copy = s[at..end.max(at)].to_vec();
                let to = rng.below(s.len() + 1);
                s.splice(to..to, copy);
            }
        }
    }
    String::from_utf8_lossy(&s).into_owned()
}

fn policy_components() -> Vec<Component> {
    vec![
        Component::method(),
        Component::target_uri(),
        Component::authority(),
        Component::path(),
        Component::query(),
        Component::scheme(),
        Component::field(HeaderName::from_static("content-digest")),
        Component::field(HeaderName::from_static("x")),
        Component::field(HeaderName::from_static("x")).sf(),
        Component::field(HeaderName::from_static("x"))
            .key("a")
            .unwrap(),
        Component::field(HeaderName::from_static("x"))
            .sf()
            .key("a")
            .unwrap(),
        Component::field(HeaderName::from_static("x-b")).bs(),
        Component::query_param("a").unwrap(),
    ]
}

fn compare(si: &str, sig: &str, label: Option<&str>, msg: &Message<'_>, sf: &StructuredFields) {
    let old = old_extract(si.as_bytes(), sig.as_bytes(), label);
    let new = new_extract(si.as_bytes(), sig.as_bytes(), label);
    let ctx = format!("Signature-Input: {si}\nSignature: {sig}\nlabel: {label:?}");
    let (old, (new_label, new, new_sig)) = match (old, new) {
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "{ctx}");
            return;
        }
        (Ok(_), Err("too_many_parameters")) => return,
        (Ok(o), Ok(n)) => (o, n),
        (o, n) => panic!(
            "{ctx}\nold: {:?}\nnew: {:?}",
            o.map(|o| o.serialized),
            n.map(|n| n.1.serialized)
        ),
    };
    assert_eq!(old.label, new_label, "{ctx}");
    assert_eq!(old.serialized, new.serialized(), "{ctx}");
    let ids: Vec<String> = old.components.iter().map(ToString::to_string).collect();
    let new_ids: Vec<&str> = new.covered_ids().collect();
    assert_eq!(ids, new_ids, "{ctx}");
    assert_eq!(old.created, new.created, "{ctx}");
    assert_eq!(old.expires, new.expires, "{ctx}");
    assert_eq!(old.nonce.as_deref(), new.nonce(), "{ctx}");
    assert_eq!(old.alg.as_deref(), new.alg(), "{ctx}");
    assert_eq!(old.keyid.as_deref(), new.keyid(), "{ctx}");
    assert_eq!(old.signature, new_sig, "{ctx}");
    for c in policy_components() {
        let was = old.components.contains(&c);
        assert_eq!(was, new.covers(&c), "{ctx}\n{c}");
    }
    for (kind, c) in [
        (Kind::Method, Component::method()),
        (Kind::TargetUri, Component::target_uri()),
        (Kind::Authority, Component::authority()),
        (Kind::Path, Component::path()),
        (Kind::Query, Component::query()),
    ] {
        let was = old.components.contains(&c);
        assert_eq!(was, new.covers_plain_derived(kind), "{ctx}\n{c}");
    }
    let digest = Component::field(HeaderName::from_static("content-digest"));
    assert_eq!(
        old.components.contains(&digest),
        new.covers_plain_field("content-digest"),
        "{ctx}"
    );
    let (a, b) = (old_base(&old, msg, sf), new.base(msg, sf));
    match (a, b) {
        (Ok(a), Ok(b)) => assert_eq!(
            String::from_utf8_lossy(&a),
            String::from_utf8_lossy(&b),
            "{ctx}"
        ),
        (Err(a), Err(b)) => assert_eq!(a, b, "{ctx}"),
        (a, b) => panic!("{ctx}\nold base: {a:?}\nnew base: {b:?}"),
    }
}

#[test]
fn the_rewrite_reads_every_input_as_the_old_code_did() {
    let mut headers = HeaderMap::new();
    headers.insert("content-digest", HeaderValue::from_static("sha-256=:YQ==:"));
    headers.insert("x", HeaderValue::from_static(" a=1, b=(2 3);p "));
    headers.insert("x-b", HeaderValue::from_static("one"));
    headers.append("x-b", HeaderValue::from_static(" two\t"));
    headers.insert("x-list", HeaderValue::from_static("\"a\",  b"));
    headers.insert(
        "date",
        HeaderValue::from_static("Tue, 20 Apr 2021 02:07:55 GMT"),
    );
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    let method = Method::POST;
    let msg = Message {
        method: &method,
        scheme: Some("https"),
        authority: Some("example.com"),
        path: "/foo",
        query: Some("a=1&b=x%20y&a=2"),
        headers: &headers,
    };
    let mut sf = StructuredFields::default();
    sf.add(HeaderName::from_static("x"), SfType::Dictionary);
    sf.add(HeaderName::from_static("x-list"), SfType::List);

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for seed in SEEDS {
        for label in [None, Some("sig1"), Some("sig2")] {
            for sig in SIGNATURES {
                compare(seed, sig, label, &msg, &sf);
            }
        }
    }
    for _ in 0..150_000 {
        let seed = rng.pick(SEEDS);
        let si = mutate(&mut rng, seed);
        let sig = if rng.below(8) == 0 {
            mutate(&mut rng, SIGNATURES[0])
        } else {
            rng.pick(SIGNATURES).to_owned()
        };
        let label = [None, Some("sig1"), Some("sig2")][rng.below(3)];
        compare(&si, &sig, label, &msg, &sf);
    }
}

#[test]
fn field_names_are_checked_as_http_header_names_would_be() {
    let valid = |s: &str| {
        HeaderName::from_bytes(s.as_bytes())
            .map(|h| h.as_str() == s)
            .unwrap_or(false)
    };
    for a in 0u8..=127 {
        for b in 0u8..=127 {
            let s = String::from_utf8(vec![a, b]).unwrap();
            assert_eq!(valid(&s), is_lowercase_field_name(&s), "{s:?}");
            let one = String::from_utf8(vec![a]).unwrap();
            assert_eq!(valid(&one), is_lowercase_field_name(&one), "{one:?}");
        }
    }
    assert!(!is_lowercase_field_name(""));
    assert!(!is_lowercase_field_name("é"));
}
