//! Deterministic fake enrichment data: the guard around it is the point of the example.

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Serialize)]
pub struct Company {
    domain: String,
    name: String,
    industry: &'static str,
    employees: u32,
    country: &'static str,
    founded: u16,
}

#[derive(Serialize)]
pub struct Contact {
    name: String,
    title: &'static str,
    email: String,
}

const INDUSTRIES: [&str; 6] = [
    "Software",
    "Logistics",
    "Healthcare",
    "Retail",
    "Finance",
    "Manufacturing",
];
const COUNTRIES: [&str; 5] = ["US", "DE", "FR", "GB", "JP"];
const TITLES: [&str; 5] = ["CEO", "CTO", "VP Sales", "Head of Data", "Engineer"];
const FIRST: [&str; 6] = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken"];
const LAST: [&str; 6] = [
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson",
];

fn seed(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

fn pick<T: Copy>(list: &[T], b: u8) -> T {
    list[usize::from(b) % list.len()]
}

/// A domain name of letters, digits, `-` and `.`, at most 253 characters.
fn valid_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.contains('.')
        && d.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

fn company(domain: &str) -> Company {
    let s = seed(domain);
    let label = domain.split('.').next().unwrap_or(domain);
    let mut name = label.to_owned();
    if let Some(first) = name.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    Company {
        domain: domain.to_owned(),
        name: format!("{name} Inc."),
        industry: pick(&INDUSTRIES, s[0]),
        employees: 10 + u32::from(u16::from_be_bytes([s[1], s[2]])),
        country: pick(&COUNTRIES, s[3]),
        founded: 1950 + u16::from(s[4] % 75),
    }
}

fn problem(
    status: StatusCode,
    detail: &str,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let body = serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    (
        status,
        [("content-type", "application/problem+json")],
        body.to_string(),
    )
}

pub type ApiResult<T> = Result<Json<T>, (StatusCode, [(&'static str, &'static str); 1], String)>;

pub async fn get_company(Path(domain): Path<String>) -> ApiResult<Company> {
    if !valid_domain(&domain) {
        return Err(problem(StatusCode::BAD_REQUEST, "Not a domain name."));
    }
    Ok(Json(company(&domain.to_ascii_lowercase())))
}

#[derive(Deserialize)]
pub struct ContactSearch {
    company_domain: String,
    #[serde(default)]
    limit: Option<u8>,
}

#[derive(Serialize)]
pub struct ContactResults {
    contacts: Vec<Contact>,
}

pub fn search(q: &ContactSearch) -> ApiResult<ContactResults> {
    if !valid_domain(&q.company_domain) {
        return Err(problem(StatusCode::BAD_REQUEST, "Not a domain name."));
    }
    let domain = q.company_domain.to_ascii_lowercase();
    let s = seed(&domain);
    let n = usize::from(q.limit.unwrap_or(3).clamp(1, 10));
    let contacts = (0..n)
        .map(|i| {
            let first = pick(&FIRST, s[i]);
            let last = pick(&LAST, s[i + 10]);
            Contact {
                name: format!("{first} {last}"),
                title: pick(&TITLES, s[i + 20]),
                email: format!(
                    "{}.{}@{domain}",
                    first.to_ascii_lowercase(),
                    last.to_ascii_lowercase()
                ),
            }
        })
        .collect();
    Ok(Json(ContactResults { contacts }))
}

pub async fn search_contacts(Json(q): Json<ContactSearch>) -> ApiResult<ContactResults> {
    search(&q)
}

#[derive(Deserialize)]
pub struct EnrichmentRequest {
    email: String,
}

#[derive(Serialize)]
pub struct Enrichment {
    id: String,
    status: &'static str,
    email: String,
    company: Company,
}

pub async fn create_enrichment(
    Json(req): Json<EnrichmentRequest>,
) -> Result<(StatusCode, Json<Enrichment>), (StatusCode, [(&'static str, &'static str); 1], String)>
{
    let Some((local, domain)) = req.email.split_once('@') else {
        return Err(problem(StatusCode::BAD_REQUEST, "Not an email address."));
    };
    if local.is_empty() || !valid_domain(domain) {
        return Err(problem(StatusCode::BAD_REQUEST, "Not an email address."));
    }
    let s = seed(&req.email);
    let id: String = s[..8].iter().map(|b| format!("{b:02x}")).collect();
    Ok((
        StatusCode::CREATED,
        Json(Enrichment {
            id: format!("enr_{id}"),
            status: "completed",
            company: company(&domain.to_ascii_lowercase()),
            email: req.email,
        }),
    ))
}
