//! The portal's request handlers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use apiauth::api_key::{KeyFilter, KeySummary, NewKey};
use apiauth::basic::{BasicCredentials, CredentialEncoding};
use apiauth::oauth2::RegisteredClient;
use apiauth::{AuthMethod, Authenticator, ScopeSet, audit};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::pages::{self, KeysPage, TenantRow, UsagePage};
use super::security::{self, csrf_matches, same_origin, session_cookie};
use super::session::{Session, SignedIn};
use super::usage::{self, DAYS};
use super::{ClientInfo, Portal};

type St = State<Arc<Portal>>;

fn page(status: StatusCode, m: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        m.into_string(),
    )
        .into_response()
}

fn unavailable() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        pages::message(
            "Unavailable",
            None,
            "A store is not answering; retry later.",
        ),
    )
}

fn forbidden() -> Response {
    page(
        StatusCode::FORBIDDEN,
        pages::message(
            "Refused",
            None,
            "This form was refused: it did not come from a page of this portal's session.",
        ),
    )
}

/// The request's live session, with its idle clock reset; expired ones are deleted.
async fn current(p: &Portal, headers: &HeaderMap) -> Result<Option<Session>, Response> {
    let Some(id) = session_cookie(headers) else {
        return Ok(None);
    };
    let Some(mut s) = p.sessions.load(&id).await.map_err(|_| unavailable())? else {
        return Ok(None);
    };
    let now = SystemTime::now();
    if s.is_expired(now) {
        let _ = p.sessions.delete(&id).await;
        return Ok(None);
    }
    s.last_seen = now;
    p.sessions.save(&s).await.map_err(|_| unavailable())?;
    Ok(Some(s))
}

/// A signed-in session, or a redirect to the sign-in page.
async fn signed_in(p: &Portal, headers: &HeaderMap) -> Result<(Session, SignedIn), Response> {
    match current(p, headers).await? {
        Some(s) => match s.user.clone() {
            Some(u) => Ok((s, u)),
            None => Err(Redirect::to("/portal/sign-in").into_response()),
        },
        None => Err(Redirect::to("/portal/sign-in").into_response()),
    }
}

/// For a form post: the session, if the post carries its CSRF token and no foreign
/// `Origin`; else 403.
async fn posted(
    p: &Portal,
    headers: &HeaderMap,
    form: &BTreeMap<String, Vec<String>>,
) -> Result<Session, Response> {
    if !same_origin(headers, p.tls) {
        return Err(forbidden());
    }
    let token = first(form, "csrf");
    match current(p, headers).await? {
        Some(s) if csrf_matches(&s.csrf, token) => Ok(s),
        _ => Err(forbidden()),
    }
}

/// A signed-in session for a form post.
async fn posted_signed_in(
    p: &Portal,
    headers: &HeaderMap,
    form: &BTreeMap<String, Vec<String>>,
) -> Result<(Session, SignedIn), Response> {
    let s = posted(p, headers, form).await?;
    match s.user.clone() {
        Some(u) => Ok((s, u)),
        None => Err(forbidden()),
    }
}

/// A url-encoded form, each name with all its values.
fn parse_form(body: &[u8]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(body) {
        out.entry(k.into_owned()).or_default().push(v.into_owned());
    }
    out
}

fn first<'a>(form: &'a BTreeMap<String, Vec<String>>, name: &str) -> &'a str {
    form.get(name)
        .and_then(|v| v.first())
        .map_or("", String::as_str)
}

/// Answer with a (new) session cookie.
fn with_cookie(mut res: Response, id: &str, tls: bool) -> Response {
    res.headers_mut()
        .append(header::SET_COOKIE, security::set_cookie(id, tls));
    res
}

pub async fn home(State(p): St, headers: HeaderMap) -> Response {
    match signed_in(&p, &headers).await {
        Ok(_) => Redirect::to("/portal/keys").into_response(),
        Err(res) => res,
    }
}

pub async fn sign_in_form(State(p): St, headers: HeaderMap) -> Response {
    let existing = match current(&p, &headers).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    if existing.as_ref().is_some_and(|s| s.user.is_some()) {
        return Redirect::to("/portal/keys").into_response();
    }
    // A visitor gets a session (no user) so the sign-in form has a CSRF token too.
    let (s, fresh) = match existing {
        Some(s) => (s, false),
        None => (Session::new(None, SystemTime::now()), true),
    };
    if fresh && p.sessions.save(&s).await.is_err() {
        return unavailable();
    }
    let res = page(StatusCode::OK, pages::sign_in(&s, None));
    if fresh {
        with_cookie(res, &s.id, p.tls)
    } else {
        res
    }
}

pub async fn sign_in(
    State(p): St,
    headers: HeaderMap,
    ext: Extensions,
    body: axum::body::Bytes,
) -> Response {
    let form = parse_form(&body);
    let old = match posted(&p, &headers, &form).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let username = first(&form, "username");
    let password = first(&form, "password");
    // The password goes through the same Basic authenticator as the admin API: argon2id,
    // the same store and the same lock-out counters.
    let Ok(value) =
        BasicCredentials::new(username, password).to_header_value(CredentialEncoding::Plain)
    else {
        return page(
            StatusCode::UNAUTHORIZED,
            pages::sign_in(&old, Some("Wrong username or password.")),
        );
    };
    let mut req = Request::new(Body::empty());
    *req.extensions_mut() = ext;
    *req.uri_mut() = axum::http::Uri::from_static("/portal/sign-in");
    req.headers_mut().insert(header::AUTHORIZATION, value);
    let verified = match p.basic.extract(&req) {
        Ok(Some(c)) => p.basic.verify(c, &mut req).await,
        Ok(None) => Err(apiauth::AuthError::invalid_credentials("missing")),
        Err(e) => Err(e),
    };
    let principal = match verified {
        Ok(principal) => principal,
        Err(e) => {
            audit::rejected(AuthMethod::BASIC, &e, &req);
            let (status, msg) = match e.status() {
                StatusCode::TOO_MANY_REQUESTS => (
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "Too many failed sign-ins: this account is locked. Try again in {} seconds.",
                        e.retry_after().unwrap_or(Duration::from_secs(60)).as_secs()
                    ),
                ),
                StatusCode::SERVICE_UNAVAILABLE => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Sign-in is unavailable; retry later.".to_owned(),
                ),
                _ => (
                    StatusCode::UNAUTHORIZED,
                    "Wrong username or password.".to_owned(),
                ),
            };
            return page(status, pages::sign_in(&old, Some(&msg)));
        }
    };
    audit::accepted(&principal, &req);
    let Some(tenant) = principal.tenant() else {
        return page(
            StatusCode::FORBIDDEN,
            pages::sign_in(&old, Some("This user belongs to no tenant.")),
        );
    };
    let user = SignedIn {
        subject: principal.subject().to_owned(),
        tenant: tenant.to_owned(),
        admin: principal.scopes().contains("admin"),
    };
    // A new id at sign-in: an id planted before it (session fixation) is worth nothing.
    let _ = p.sessions.delete(&old.id).await;
    let s = Session::new(Some(user), SystemTime::now());
    if p.sessions.save(&s).await.is_err() {
        return unavailable();
    }
    with_cookie(Redirect::to("/portal/keys").into_response(), &s.id, p.tls)
}

pub async fn sign_out(State(p): St, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let form = parse_form(&body);
    let s = match posted(&p, &headers, &form).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let _ = p.sessions.delete(&s.id).await;
    let mut res = Redirect::to("/portal/sign-in").into_response();
    res.headers_mut()
        .append(header::SET_COOKIE, security::clear_cookie(p.tls));
    res
}

async fn tenant_keys(p: &Portal, tenant: &str) -> Result<Vec<KeySummary>, Response> {
    p.keys
        .list(&KeyFilter::all().tenant(tenant.to_owned()))
        .await
        .map_err(|_| unavailable())
}

fn grantable(p: &Portal) -> Vec<&str> {
    p.grantable.iter().collect()
}

async fn keys_page(
    p: &Portal,
    s: &Session,
    u: &SignedIn,
    status: StatusCode,
    notice: Option<Markup>,
) -> Response {
    let keys = match tenant_keys(p, &u.tenant).await {
        Ok(k) => k,
        Err(res) => return res,
    };
    let g = grantable(p);
    page(
        status,
        pages::keys(&KeysPage {
            session: s,
            keys: &keys,
            plans: &p.plans,
            grantable: &g,
            notice,
            grace_secs: p.grace.as_secs(),
        }),
    )
}

pub async fn keys(State(p): St, headers: HeaderMap) -> Response {
    match signed_in(&p, &headers).await {
        Ok((s, u)) => keys_page(&p, &s, &u, StatusCode::OK, None).await,
        Err(res) => res,
    }
}

/// A name for keys and clients: lowercase letters, digits and dashes.
fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The chosen scopes, if every one is grantable.
fn chosen_scopes(p: &Portal, form: &BTreeMap<String, Vec<String>>) -> Option<ScopeSet> {
    let chosen: Vec<&str> = form
        .get("scope")
        .map(|v| v.iter().map(String::as_str).collect())
        .unwrap_or_default();
    if chosen.iter().any(|c| !p.grantable.contains(c)) {
        return None;
    }
    ScopeSet::parse(&chosen.join(" ")).ok()
}

pub async fn create_key(State(p): St, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let form = parse_form(&body);
    let (s, u) = match posted_signed_in(&p, &headers, &form).await {
        Ok(x) => x,
        Err(res) => return res,
    };
    let name = first(&form, "name");
    let plan = first(&form, "plan");
    let bad = |msg: &str| html! { p class="error" role="alert" { (msg) } };
    if !valid_name(name) {
        return keys_page(
            &p,
            &s,
            &u,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(bad(
                "A name is 1 to 32 lowercase letters, digits or dashes.",
            )),
        )
        .await;
    }
    if !p.plans.iter().any(|known| known == plan) {
        return keys_page(
            &p,
            &s,
            &u,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(bad("Unknown plan.")),
        )
        .await;
    }
    let Some(scopes) = chosen_scopes(&p, &form) else {
        return keys_page(
            &p,
            &s,
            &u,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(bad("A scope this portal cannot grant was asked for.")),
        )
        .await;
    };
    let mut spec = NewKey::new(format!("{}-{name}", u.tenant))
        .tenant(u.tenant.clone())
        .plan(plan.to_owned())
        .scopes(scopes);
    match first(&form, "expires_days").parse::<u64>() {
        Ok(days) if (1..=3650).contains(&days) => {
            spec = spec.expires_in(Duration::from_secs(days * 86_400))
        }
        _ => {}
    }
    match p.keys.create(spec).await {
        Ok(created) => {
            let notice = html! {
                p { "Key " code { (created.summary.id) } " created:" }
                (pages::secret("new-key", created.key.expose_secret()))
            };
            keys_page(&p, &s, &u, StatusCode::CREATED, Some(notice)).await
        }
        Err(_) => unavailable(),
    }
}

/// Whether key `id` is in the user's tenant (another tenant's key is no key at all).
async fn own_key(p: &Portal, u: &SignedIn, id: &str) -> Result<(), Response> {
    match p.keys.get(id).await {
        Ok(Some(k)) if k.tenant.as_deref() == Some(u.tenant.as_str()) => Ok(()),
        Ok(_) => Err(page(
            StatusCode::NOT_FOUND,
            pages::message("Not found", None, "No such key."),
        )),
        Err(_) => Err(unavailable()),
    }
}

pub async fn rotate_key(
    State(p): St,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = parse_form(&body);
    let (s, u) = match posted_signed_in(&p, &headers, &form).await {
        Ok(x) => x,
        Err(res) => return res,
    };
    if let Err(res) = own_key(&p, &u, &id).await {
        return res;
    }
    match p.keys.rotate(&id, p.grace).await {
        Ok(created) => {
            let until = SystemTime::now() + p.grace;
            let notice = html! {
                p { "Key " code { (id) } " rotated to " code { (created.summary.id) } ". The old key keeps working until "
                    span id="grace-until" { (pages::time(until)) } " (" (p.grace.as_secs()) " seconds)." }
                (pages::secret("new-key", created.key.expose_secret()))
            };
            keys_page(&p, &s, &u, StatusCode::CREATED, Some(notice)).await
        }
        Err(_) => {
            keys_page(
                &p,
                &s,
                &u,
                StatusCode::CONFLICT,
                Some(html! { p class="error" { "This key cannot be rotated." } }),
            )
            .await
        }
    }
}

pub async fn revoke_key(
    State(p): St,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = parse_form(&body);
    let (_, u) = match posted_signed_in(&p, &headers, &form).await {
        Ok(x) => x,
        Err(res) => return res,
    };
    if let Err(res) = own_key(&p, &u, &id).await {
        return res;
    }
    match p.keys.revoke(&id).await {
        // Post/redirect/get: a reload does not post again.
        Ok(_) => Redirect::to("/portal/keys").into_response(),
        Err(_) => unavailable(),
    }
}

fn tenant_clients(p: &Portal, tenant: &str) -> Vec<ClientInfo> {
    let map = p.client_list.lock().unwrap_or_else(|e| e.into_inner());
    map.get(tenant).cloned().unwrap_or_default()
}

fn clients_page(
    p: &Portal,
    s: &Session,
    u: &SignedIn,
    status: StatusCode,
    notice: Option<Markup>,
) -> Response {
    let list = tenant_clients(p, &u.tenant);
    page(status, pages::clients(s, &list, &grantable(p), notice))
}

pub async fn clients(State(p): St, headers: HeaderMap) -> Response {
    match signed_in(&p, &headers).await {
        Ok((s, u)) => clients_page(&p, &s, &u, StatusCode::OK, None),
        Err(res) => res,
    }
}

/// A new client secret and its argon2id hash (hashed off the async threads).
async fn new_secret(p: &Portal) -> Option<(String, String)> {
    let secret = format!("ocs_{}", super::session::random_hex());
    let hasher = p.hasher.clone();
    let s = secret.clone();
    let hash = tokio::task::spawn_blocking(move || hasher.hash(&s))
        .await
        .ok()?;
    Some((secret, hash))
}

pub async fn create_client(State(p): St, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let form = parse_form(&body);
    let (s, u) = match posted_signed_in(&p, &headers, &form).await {
        Ok(x) => x,
        Err(res) => return res,
    };
    let name = first(&form, "name");
    let scopes = chosen_scopes(&p, &form);
    let (true, Some(scopes)) = (valid_name(name), scopes) else {
        return clients_page(
            &p,
            &s,
            &u,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(
                html! { p class="error" role="alert" { "A name is 1 to 32 lowercase letters, digits or dashes; scopes only those listed." } },
            ),
        );
    };
    let client_id = format!("{}-{name}", u.tenant);
    if tenant_clients(&p, &u.tenant)
        .iter()
        .any(|c| c.client_id == client_id)
    {
        return clients_page(
            &p,
            &s,
            &u,
            StatusCode::CONFLICT,
            Some(html! { p class="error" role="alert" { "A client of that name exists." } }),
        );
    }
    let Some((secret, hash)) = new_secret(&p).await else {
        return unavailable();
    };
    if p.clients
        .put(
            RegisteredClient::new(client_id.as_str(), hash, scopes.clone())
                .tenant(u.tenant.as_str()),
        )
        .await
        .is_err()
    {
        return unavailable();
    }
    p.own_client(
        &u.tenant,
        ClientInfo {
            client_id: client_id.clone(),
            scopes: scopes.to_string(),
            created_at: SystemTime::now(),
            secret_rotated_at: None,
        },
    );
    let notice = html! { p { "Client " code { (client_id) } " created; its secret:" } (pages::secret("new-secret", &secret)) };
    clients_page(&p, &s, &u, StatusCode::CREATED, Some(notice))
}

pub async fn rotate_client(
    State(p): St,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = parse_form(&body);
    let (s, u) = match posted_signed_in(&p, &headers, &form).await {
        Ok(x) => x,
        Err(res) => return res,
    };
    let Some(mut info) = tenant_clients(&p, &u.tenant)
        .into_iter()
        .find(|c| c.client_id == id)
    else {
        return page(
            StatusCode::NOT_FOUND,
            pages::message("Not found", None, "No such client."),
        );
    };
    let Ok(scopes) = ScopeSet::parse(&info.scopes) else {
        return unavailable();
    };
    let Some((secret, hash)) = new_secret(&p).await else {
        return unavailable();
    };
    // The old secret stops working at once: a client secret has no grace period here.
    if p.clients
        .put(RegisteredClient::new(id.as_str(), hash, scopes).tenant(u.tenant.as_str()))
        .await
        .is_err()
    {
        return unavailable();
    }
    info.secret_rotated_at = Some(SystemTime::now());
    p.own_client(&u.tenant, info);
    let notice = html! { p { "New secret of " code { (id) } " (the old one no longer works):" } (pages::secret("new-secret", &secret)) };
    clients_page(&p, &s, &u, StatusCode::CREATED, Some(notice))
}

pub async fn usage(State(p): St, headers: HeaderMap) -> Response {
    let (s, u) = match signed_in(&p, &headers).await {
        Ok(x) => x,
        Err(res) => return res,
    };
    // Every chart comes from the tenant's billing history (in the database when there is
    // one, so it survives a restart): every credential of the tenant, not only its keys.
    let rows = match p.ledger.history() {
        Some(history) => match history.export(Some(&u.tenant)).await {
            Ok(rows) => rows,
            Err(_) => return unavailable(),
        },
        None => Vec::new(),
    };
    let today = usage::day_of(SystemTime::now());
    let from = today + 1 - DAYS;
    let requests = |r: &apiauth::quota::UsageRow| {
        r.requests_2xx + r.requests_4xx + r.requests_5xx + r.requests_other
    };
    let series = |value: &dyn Fn(&apiauth::quota::UsageRow) -> u64| -> Vec<(String, u64)> {
        (from..=today)
            .map(|d| {
                let day = usage::date(d);
                let n = rows.iter().filter(|r| r.day == day).map(value).sum();
                (day[5..].to_owned(), n)
            })
            .collect()
    };
    let per_day = series(&requests);
    let mut routes: BTreeMap<String, u64> = BTreeMap::new();
    for r in &rows {
        *routes.entry(r.route.clone()).or_default() += requests(r);
    }
    let per_route: Vec<(String, u64)> = routes.into_iter().collect();
    let credits = p.credits(&u.tenant).await;
    let credits_per_day_svg = p.ledger.history().map(|_| {
        usage::bar_chart(
            "credits-per-day",
            "Credits charged per day, last 30 days",
            &series(&|r| r.credits),
        )
    });
    page(
        StatusCode::OK,
        pages::usage(&UsagePage {
            session: &s,
            per_day_svg: usage::bar_chart(
                "requests-per-day",
                "Requests per day, last 30 days",
                &per_day,
            ),
            per_route: &per_route,
            per_route_svg: usage::bar_chart("requests-per-route", "Requests per route", &per_route),
            credits,
            credits_per_day_svg,
        }),
    )
}

pub async fn audit(State(p): St, headers: HeaderMap) -> Response {
    let (s, u) = match signed_in(&p, &headers).await {
        Ok(x) => x,
        Err(res) => return res,
    };
    let keys = match tenant_keys(&p, &u.tenant).await {
        Ok(k) => k,
        Err(res) => return res,
    };
    // Rejections name no tenant: they are the tenant's when they name one of its keys,
    // clients or users.
    let mut names: Vec<String> = keys
        .iter()
        .flat_map(|k| [k.id.to_string(), k.owner.to_string()])
        .collect();
    names.extend(
        tenant_clients(&p, &u.tenant)
            .into_iter()
            .map(|c| c.client_id),
    );
    names.push(u.subject.clone());
    let events = super::audit::recent(200, |e| {
        e.field("tenant") == u.tenant
            || names
                .iter()
                .any(|n| n == e.field("subject") || n == e.field("credential_id"))
    });
    page(StatusCode::OK, pages::audit(&s, &events))
}

pub async fn admin(State(p): St, headers: HeaderMap) -> Response {
    let (s, u) = match signed_in(&p, &headers).await {
        Ok(x) => x,
        Err(res) => return res,
    };
    if !u.admin {
        return page(
            StatusCode::FORBIDDEN,
            pages::message("Refused", Some(&s), "The admin view needs the admin scope."),
        );
    }
    let Ok(all) = p.keys.list(&KeyFilter::all()).await else {
        return unavailable();
    };
    let mut by_tenant: BTreeMap<String, Vec<&KeySummary>> =
        p.tenants.iter().map(|t| (t.clone(), Vec::new())).collect();
    for k in &all {
        by_tenant
            .entry(k.tenant.as_deref().unwrap_or("—").to_owned())
            .or_default()
            .push(k);
    }
    let mut rows = Vec::new();
    for (tenant, keys) in by_tenant {
        let mut plans: Vec<&str> = keys.iter().filter_map(|k| k.plan.as_deref()).collect();
        plans.sort_unstable();
        plans.dedup();
        rows.push(TenantRow {
            credits: p.credits(&tenant).await,
            keys: keys.len(),
            active: keys.iter().filter(|k| k.status.is_usable()).count(),
            plans: plans.join(", "),
            tenant,
        });
    }
    page(StatusCode::OK, pages::admin(&s, &rows, &p.plans))
}

/// A top-up from the admin view: adds credits to a tenant's current period, through the same
/// ledger the API charges.
pub async fn top_up(
    State(p): St,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = parse_form(&body);
    let (s, u) = match posted_signed_in(&p, &headers, &form).await {
        Ok(x) => x,
        Err(res) => return res,
    };
    if !u.admin {
        return page(
            StatusCode::FORBIDDEN,
            pages::message("Refused", Some(&s), "Top-ups need the admin scope."),
        );
    }
    if !p.tenants.contains(&tenant) {
        return page(
            StatusCode::NOT_FOUND,
            pages::message("Not found", Some(&s), "No such tenant."),
        );
    }
    let amount = match first(&form, "add").parse::<u64>() {
        Ok(n) if (1..=1_000_000_000).contains(&n) => n,
        _ => {
            return page(
                StatusCode::UNPROCESSABLE_ENTITY,
                pages::message(
                    "Not added",
                    Some(&s),
                    "Give a whole number of credits from 1 to 1,000,000,000.",
                ),
            );
        }
    };
    match p.ledger.add_to_tenant(&tenant, amount).await {
        Ok(Some(_)) => Redirect::to("/portal/admin").into_response(),
        Ok(None) => page(
            StatusCode::UNPROCESSABLE_ENTITY,
            pages::message("Not added", Some(&s), "This tenant's plan has no credits."),
        ),
        Err(_) => unavailable(),
    }
}

pub async fn script() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        )],
        include_str!("static/portal.js"),
    )
        .into_response()
}

pub async fn style() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        )],
        include_str!("static/portal.css"),
    )
        .into_response()
}
