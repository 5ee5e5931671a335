//! What `tls_client_auth` compares (RFC 8705 §2.1.2): a certificate's subject DN and its
//! subjectAltName entries.

use std::net::IpAddr;

use x509_parser::extensions::GeneralName;
use x509_parser::objects::{oid_registry, oid2abbrev};
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

use crate::ClientCertificate;

/// The certificate could not be read as an X.509 certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotACertificate;

impl std::fmt::Display for NotACertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a parsable X.509 certificate")
    }
}

impl std::error::Error for NotACertificate {}

/// A distinguished name in a form two spellings of one name share: RDNs in RFC 4514 order,
/// attribute types upper-cased, values with insignificant spaces removed and compared
/// case-insensitively (the RFC 4517 caseIgnoreMatch of the usual DN attributes).
///
/// Two names are equal when their normalised forms are; [`as_str`](Self::as_str) keeps the
/// spelling the name was read from, so a store can keep a registration as it was written.
#[derive(Debug, Clone)]
pub struct DistinguishedName {
    rdns: Vec<Vec<(String, String)>>,
    text: String,
}

impl PartialEq for DistinguishedName {
    fn eq(&self, other: &Self) -> bool {
        self.rdns == other.rdns
    }
}

impl Eq for DistinguishedName {}

/// A registered subject DN that is not an RFC 4514 string this crate reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadDistinguishedName;

impl std::fmt::Display for BadDistinguishedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not an RFC 4514 distinguished name (hex-string values are not supported)")
    }
}

impl std::error::Error for BadDistinguishedName {}

fn normalise_value(v: &str) -> String {
    v.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

impl DistinguishedName {
    /// Parses an RFC 4514 string (`CN=client-a,O=Example Corp,C=SE`), as a client's
    /// `tls_client_auth_subject_dn` is registered (RFC 8705 §2.1.2).
    pub fn parse(s: &str) -> Result<Self, BadDistinguishedName> {
        let mut rdns = Vec::new();
        let mut rdn = Vec::new();
        let (mut ty, mut val) = (String::new(), String::new());
        let mut in_value = false;
        let mut chars = s.chars().peekable();
        let finish = |ty: &mut String, val: &mut String, rdn: &mut Vec<(String, String)>| {
            let t = ty.trim().to_ascii_uppercase();
            if t.is_empty() || val.trim_start().starts_with('#') {
                return Err(BadDistinguishedName);
            }
            rdn.push((t, normalise_value(val)));
            ty.clear();
            val.clear();
            Ok(())
        };
        while let Some(c) = chars.next() {
            match c {
                '\\' if in_value => match chars.next() {
                    Some(e) if e.is_ascii_hexdigit() => {
                        // §2.4: `\XX` is one byte of the UTF-8 value; only ASCII is kept simple.
                        let lo = chars.next().filter(char::is_ascii_hexdigit);
                        let byte = lo
                            .and_then(|lo| u8::from_str_radix(&format!("{e}{lo}"), 16).ok())
                            .filter(u8::is_ascii)
                            .ok_or(BadDistinguishedName)?;
                        val.push(byte as char);
                    }
                    Some(e) => val.push(e),
                    None => return Err(BadDistinguishedName),
                },
                '=' if !in_value => in_value = true,
                ',' | '+' if in_value => {
                    finish(&mut ty, &mut val, &mut rdn)?;
                    in_value = false;
                    if c == ',' {
                        rdn.sort();
                        rdns.push(std::mem::take(&mut rdn));
                    }
                }
                c if in_value => val.push(c),
                c => ty.push(c),
            }
        }
        if !in_value {
            return Err(BadDistinguishedName);
        }
        finish(&mut ty, &mut val, &mut rdn)?;
        rdn.sort();
        rdns.push(rdn);
        Ok(Self {
            rdns,
            text: s.to_owned(),
        })
    }

    /// The name as it was read: the RFC 4514 string given to [`parse`](Self::parse), or the
    /// certificate's subject in RFC 4514 form.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn of(name: &X509Name<'_>) -> Result<Self, NotACertificate> {
        // RFC 4514 §2.1: the last RDN of the sequence comes first.
        let mut rdns = Vec::new();
        for rdn in name.iter().collect::<Vec<_>>().into_iter().rev() {
            let mut set = Vec::new();
            for atv in rdn.iter() {
                let oid = atv.attr_type();
                let ty = oid2abbrev(oid, oid_registry())
                    .map(str::to_ascii_uppercase)
                    .unwrap_or_else(|_| oid.to_id_string());
                let v = atv.as_str().map_err(|_| NotACertificate)?;
                set.push((ty, normalise_value(v)));
            }
            set.sort();
            rdns.push(set);
        }
        Ok(Self {
            rdns,
            text: name.to_string(),
        })
    }
}

/// The names `tls_client_auth` may be registered with (RFC 8705 §2.1.2).
#[derive(Debug, Clone)]
pub struct CertificateNames {
    /// The subject distinguished name.
    pub subject: DistinguishedName,
    /// subjectAltName dNSName entries.
    pub dns: Vec<String>,
    /// subjectAltName uniformResourceIdentifier entries.
    pub uris: Vec<String>,
    /// subjectAltName iPAddress entries.
    pub ips: Vec<IpAddr>,
    /// subjectAltName rfc822Name entries.
    pub emails: Vec<String>,
}

impl ClientCertificate {
    /// The subject DN and subjectAltName entries of the certificate.
    pub fn names(&self) -> Result<CertificateNames, NotACertificate> {
        let (rest, cert) = X509Certificate::from_der(self.der()).map_err(|_| NotACertificate)?;
        if !rest.is_empty() {
            return Err(NotACertificate);
        }
        let mut names = CertificateNames {
            subject: DistinguishedName::of(cert.subject())?,
            dns: Vec::new(),
            uris: Vec::new(),
            ips: Vec::new(),
            emails: Vec::new(),
        };
        let san = cert
            .subject_alternative_name()
            .map_err(|_| NotACertificate)?;
        for n in san.iter().flat_map(|s| s.value.general_names.iter()) {
            match n {
                GeneralName::DNSName(d) => names.dns.push((*d).to_owned()),
                GeneralName::URI(u) => names.uris.push((*u).to_owned()),
                GeneralName::RFC822Name(e) => names.emails.push((*e).to_owned()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => names
                        .ips
                        .push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap_or_default())),
                    16 => names
                        .ips
                        .push(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap_or_default())),
                    _ => {}
                },
                _ => {}
            }
        }
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4514_spellings_of_one_name_are_equal_and_other_names_are_not() {
        let a = DistinguishedName::parse("CN=Client A,O=Example Corp,C=SE").unwrap();
        let b = DistinguishedName::parse("cn=client  a, o=example corp ,c=se").unwrap();
        assert_eq!(a, b);
        let c = DistinguishedName::parse("CN=Client B,O=Example Corp,C=SE").unwrap();
        assert_ne!(a, c);
        // Order matters; multi-valued RDNs do not.
        assert_ne!(
            a,
            DistinguishedName::parse("C=SE,O=Example Corp,CN=Client A").unwrap()
        );
        assert_eq!(
            DistinguishedName::parse("CN=x+UID=1,O=y").unwrap(),
            DistinguishedName::parse("UID=1+CN=x,O=y").unwrap()
        );
        let escaped = DistinguishedName::parse(r"CN=Smith\, John,O=a\2Cb").unwrap();
        assert_eq!(
            escaped.rdns[0],
            [("CN".to_owned(), "smith, john".to_owned())]
        );
        assert_eq!(escaped.rdns[1], [("O".to_owned(), "a,b".to_owned())]);
        for bad in ["", "CN", "=x", "CN=#0403", r"CN=x\"] {
            assert!(DistinguishedName::parse(bad).is_err(), "{bad}");
        }
    }
}
