//! The RFC 9421 §2.5 signature base of a request, rebuilt independently of `apiauth-hmac`, so
//! the floor hashes the same bytes as the verifier without calling it.

use std::fmt::Write as _;

/// The signature base for the member `label` of the request's `Signature-Input`.
///
/// Covers the components the benchmark signer uses: `@method`, `@authority`, `@path`,
/// `@query`, `@target-uri` and plain header fields.
pub fn signature_base<B>(req: &http::Request<B>, label: &str) -> Result<String, String> {
    let input = req
        .headers()
        .get("signature-input")
        .and_then(|v| v.to_str().ok())
        .ok_or("no Signature-Input")?;
    // One member per benchmark request: `label=(...);params`.
    let params = input
        .strip_prefix(label)
        .and_then(|r| r.strip_prefix('='))
        .ok_or("no member with that label")?;
    let list_end = params.find(')').ok_or("no inner list")?;
    let list = params
        .get(1..list_end)
        .ok_or("inner list does not start with '('")?;
    let mut base = String::new();
    for item in list.split_whitespace() {
        let name = item
            .strip_prefix('"')
            .and_then(|i| i.strip_suffix('"'))
            .ok_or("component is not a quoted string")?;
        let value = component(req, name)?;
        // §2.5: `"<component identifier>": <component value>` and a LF.
        let _ = writeln!(base, "\"{name}\": {value}");
    }
    // §2.3: the last line is the signature parameters, exactly as sent.
    let _ = write!(base, "\"@signature-params\": {params}");
    Ok(base)
}

fn component<B>(req: &http::Request<B>, name: &str) -> Result<String, String> {
    let uri = req.uri();
    Ok(match name {
        // §2.2.1
        "@method" => req.method().as_str().to_owned(),
        // §2.2.3: lowercase host, port only when not the scheme's default.
        "@authority" => {
            let a = uri.authority().ok_or("no authority")?;
            let default = match uri.scheme_str() {
                Some("https") => 443,
                _ => 80,
            };
            match a.port_u16() {
                Some(p) if p != default => format!("{}:{p}", a.host().to_ascii_lowercase()),
                _ => a.host().to_ascii_lowercase(),
            }
        }
        // §2.2.2
        "@target-uri" => uri.to_string(),
        // §2.2.6: an empty path is "/".
        "@path" => match uri.path() {
            "" => "/".to_owned(),
            p => p.to_owned(),
        },
        // §2.2.7: "?" and the query, or "?" alone.
        "@query" => format!("?{}", uri.query().unwrap_or("")),
        n if n.starts_with('@') => return Err(format!("derived component {n} not covered")),
        // §2.1: values of one field joined with ", ", surrounding whitespace removed.
        field => {
            let values: Vec<&str> = req
                .headers()
                .get_all(field)
                .iter()
                .map(|v| v.to_str().map(str::trim))
                .collect::<Result<_, _>>()
                .map_err(|_| format!("{field} is not ASCII"))?;
            if values.is_empty() {
                return Err(format!("no {field} field"));
            }
            values.join(", ")
        }
    })
}
