//! Deterministic fake enrichment data: the guard around it is the point of the example.
//!
//! Each handler carries its OpenAPI operation (`#[utoipa::path]`), registered with the route
//! by `routes!` in `app.rs`.

use apiauth::{Scope, Scoped};
use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::app::{CompaniesRead, ContactsRead, EnrichWrite};
use crate::openapi::{
    BadRequest, Forbidden, PayloadTooLarge, TooManyRequests, Unauthorized, Unavailable,
    UnprocessableContent, UnsupportedMediaType,
};
use crate::problem::{ApiJson, Problem};

/// A company profile.
#[derive(Serialize, ToSchema)]
pub struct Company {
    domain: String,
    name: String,
    industry: &'static str,
    employees: u32,
    country: &'static str,
    founded: u16,
}

/// A person at a company.
#[derive(Serialize, ToSchema)]
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

fn problem(status: StatusCode, detail: &str) -> Problem {
    Problem::new(status, detail)
}

pub type ApiResult<T> = Result<Json<T>, Problem>;

/// Company profile by domain.
#[utoipa::path(
    get,
    path = "/v1/companies/{domain}",
    tag = "data",
    params(("domain" = String, Path, description = "A domain name", example = "acme.com")),
    responses(
        (status = 200, description = "The company", body = Company),
        BadRequest,
        Unauthorized,
        Forbidden,
        TooManyRequests,
        Unavailable,
    ),
    security(
        ("apiKey" = [CompaniesRead::NAME]),
        ("apiKeyAuthorization" = [CompaniesRead::NAME]),
        ("oauth2" = [CompaniesRead::NAME]),
        ("bearerAuth" = [CompaniesRead::NAME]),
        ("dpopAuth" = [CompaniesRead::NAME]),
        ("httpSignature" = [CompaniesRead::NAME]),
    )
)]
pub async fn get_company(
    _: Scoped<CompaniesRead>,
    Path(domain): Path<String>,
) -> ApiResult<Company> {
    if !valid_domain(&domain) {
        return Err(problem(StatusCode::BAD_REQUEST, "Not a domain name."));
    }
    Ok(Json(company(&domain.to_ascii_lowercase())))
}

/// Whose contacts to find.
#[derive(Deserialize, ToSchema)]
pub struct ContactSearch {
    #[schema(example = "acme.com")]
    company_domain: String,
    /// How many contacts, 1 to 10 (default 3).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10)]
    limit: Option<u8>,
}

/// Contacts found.
#[derive(Serialize, ToSchema)]
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

/// Search contacts at a company.
#[utoipa::path(
    post,
    path = "/v1/contacts/search",
    tag = "data",
    request_body = ContactSearch,
    responses(
        (status = 200, description = "Contacts at the company", body = ContactResults),
        BadRequest,
        Unauthorized,
        Forbidden,
        PayloadTooLarge,
        UnsupportedMediaType,
        UnprocessableContent,
        TooManyRequests,
        Unavailable,
    ),
    security(
        ("apiKey" = [ContactsRead::NAME]),
        ("apiKeyAuthorization" = [ContactsRead::NAME]),
        ("oauth2" = [ContactsRead::NAME]),
        ("bearerAuth" = [ContactsRead::NAME]),
        ("dpopAuth" = [ContactsRead::NAME]),
        ("httpSignature" = [ContactsRead::NAME]),
    )
)]
pub async fn search_contacts(
    _: Scoped<ContactsRead>,
    ApiJson(q): ApiJson<ContactSearch>,
) -> ApiResult<ContactResults> {
    search(&q)
}

/// The address to enrich.
#[derive(Deserialize, ToSchema)]
pub struct EnrichmentRequest {
    #[schema(example = "ada@acme.com")]
    email: String,
}

/// An enrichment, completed at once.
#[derive(Serialize, ToSchema)]
pub struct Enrichment {
    #[schema(example = "enr_0123456789abcdef")]
    id: String,
    #[schema(example = "completed")]
    status: &'static str,
    email: String,
    company: Company,
}

/// Enrich an email address.
#[utoipa::path(
    post,
    path = "/v1/enrichments",
    tag = "data",
    request_body = EnrichmentRequest,
    responses(
        (status = 201, description = "Enriched", body = Enrichment),
        BadRequest,
        Unauthorized,
        Forbidden,
        PayloadTooLarge,
        UnsupportedMediaType,
        UnprocessableContent,
        TooManyRequests,
        Unavailable,
    ),
    security(
        ("apiKey" = [EnrichWrite::NAME]),
        ("apiKeyAuthorization" = [EnrichWrite::NAME]),
        ("oauth2" = [EnrichWrite::NAME]),
        ("bearerAuth" = [EnrichWrite::NAME]),
        ("dpopAuth" = [EnrichWrite::NAME]),
        ("httpSignature" = [EnrichWrite::NAME]),
    )
)]
pub async fn create_enrichment(
    _: Scoped<EnrichWrite>,
    ApiJson(req): ApiJson<EnrichmentRequest>,
) -> Result<(StatusCode, Json<Enrichment>), Problem> {
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
