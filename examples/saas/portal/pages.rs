//! The page templates (maud escapes every interpolated value).

use std::time::{SystemTime, UNIX_EPOCH};

use apiauth::api_key::KeySummary;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::ClientInfo;
use super::audit::AuditEntry;
use super::session::Session;

/// `YYYY-MM-DD HH:MM UTC`.
pub fn time(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    format!(
        "{} {:02}:{:02} UTC",
        super::usage::date(secs / 86_400),
        secs % 86_400 / 3600,
        secs % 3600 / 60
    )
}

fn opt_time(t: Option<SystemTime>) -> String {
    t.map_or_else(|| "—".to_owned(), time)
}

/// The hidden CSRF field every form carries.
fn csrf(s: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(s.csrf); }
}

/// The frame of every page: navigation for a signed-in user, the sign-out form.
pub fn layout(title: &str, session: Option<&Session>, body: Markup) -> Markup {
    let user = session.and_then(|s| s.user.as_ref().map(|u| (s, u)));
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · apiauth portal" }
                link rel="stylesheet" href="/portal/static/portal.css";
                script src="/portal/static/portal.js" defer {}
            }
            body {
                header {
                    strong { "apiauth portal" }
                    @if let Some((s, u)) = user {
                        nav aria-label="Portal" {
                            a href="/portal/keys" { "API keys" } " · "
                            a href="/portal/clients" { "OAuth clients" } " · "
                            a href="/portal/usage" { "Usage" } " · "
                            a href="/portal/audit" { "Audit" }
                            @if u.admin { " · " a href="/portal/admin" { "Admin" } }
                        }
                        form method="post" action="/portal/sign-out" {
                            (csrf(s))
                            span { (u.subject) " (" (u.tenant) ") " }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="portal-main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

pub fn sign_in(session: &Session, message: Option<&str>) -> Markup {
    layout(
        "Sign in",
        None,
        html! {
            @if let Some(m) = message { p class="error" role="alert" id="sign-in-error" { (m) } }
            form method="post" action="/portal/sign-in" {
                (csrf(session))
                p { label for="username" { "Username" } br;
                    input id="username" name="username" type="text" autocomplete="username" required; }
                p { label for="password" { "Password" } br;
                    input id="password" name="password" type="password" autocomplete="current-password" required; }
                p { button id="sign-in" type="submit" { "Sign in" } }
            }
        },
    )
}

/// A secret shown once, with a copy button (revealed by the script; without it, select
/// the text).
pub fn secret(id: &str, value: &str) -> Markup {
    html! {
        p { code class="secret" id=(id) { (value) } " "
            button type="button" data-copy=(id) hidden { "Copy" } }
        p { "Copy it now: it is shown only this once." }
    }
}

pub struct KeysPage<'a> {
    pub session: &'a Session,
    pub keys: &'a [KeySummary],
    pub plans: &'a [String],
    pub grantable: &'a [&'a str],
    pub notice: Option<Markup>,
    pub grace_secs: u64,
}

pub fn keys(p: &KeysPage<'_>) -> Markup {
    let s = p.session;
    layout(
        "API keys",
        Some(s),
        html! {
            @if let Some(n) = &p.notice { div class="notice" role="status" { (n) } }
            table id="keys" {
                caption { "Keys of this tenant (no key is ever shown again after it is made)" }
                thead { tr { th scope="col" { "Prefix / id" } th scope="col" { "Owner" } th scope="col" { "Plan" }
                    th scope="col" { "Scopes" } th scope="col" { "Status" } th scope="col" { "Created" }
                    th scope="col" { "Last used" } th scope="col" { "Expires" } th scope="col" { "Actions" } } }
                tbody {
                    @for k in p.keys {
                        tr data-key-id=(k.id) {
                            td { code { (k.id) } }
                            td { (k.owner) }
                            td { (k.plan.as_deref().unwrap_or("—")) }
                            td { (k.scopes.to_string()) }
                            td class="status" { (format!("{:?}", k.status).to_lowercase())
                                @if let Some(g) = k.grace_until { br; "valid until " (time(g)) } }
                            td { (time(k.created_at)) }
                            td { (opt_time(k.last_used_at)) }
                            td { (opt_time(k.expires_at)) }
                            td {
                                @if k.status.is_usable() {
                                    @if k.rotated_to.is_none() {
                                        form class="inline" method="post" action={ "/portal/keys/" (k.id) "/rotate" } {
                                            (csrf(s)) button type="submit" aria-label={ "Rotate key " (k.id) } { "Rotate" } }
                                        " "
                                    }
                                    form class="inline" method="post" action={ "/portal/keys/" (k.id) "/revoke" } {
                                        (csrf(s)) button type="submit" class="revoke" aria-label={ "Revoke key " (k.id) } { "Revoke" } }
                                }
                            }
                        }
                    }
                }
            }
            form method="post" action="/portal/keys" {
                (csrf(s))
                fieldset {
                    legend { "Create a key" }
                    label for="key-name" { "Name" }
                    input id="key-name" name="name" type="text" pattern="[a-z0-9-]{1,32}" value="portal" required;
                    label for="key-plan" { "Plan" }
                    select id="key-plan" name="plan" { @for plan in p.plans { option value=(plan) { (plan) } } }
                    label for="key-days" { "Expires after (days, empty: never)" }
                    input id="key-days" name="expires_days" type="number" min="1" max="3650";
                    br;
                    @for (i, scope) in p.grantable.iter().enumerate() {
                        input id={ "scope-" (i) } type="checkbox" name="scope" value=(scope) checked;
                        label for={ "scope-" (i) } { (scope) }
                    }
                    br;
                    button id="create-key" type="submit" { "Create key" }
                }
            }
            p { "A rotated key keeps working for " (p.grace_secs) " seconds beside its successor." }
        },
    )
}

pub fn clients(
    s: &Session,
    list: &[ClientInfo],
    grantable: &[&str],
    notice: Option<Markup>,
) -> Markup {
    layout(
        "OAuth clients",
        Some(s),
        html! {
            @if let Some(n) = &notice { div class="notice" role="status" { (n) } }
            table id="clients" {
                caption { "OAuth 2.0 clients (client credentials grant)" }
                thead { tr { th scope="col" { "Client id" } th scope="col" { "Scopes" } th scope="col" { "Created" }
                    th scope="col" { "Secret rotated" } th scope="col" { "Actions" } } }
                tbody {
                    @for c in list {
                        tr {
                            td { code { (c.client_id) } }
                            td { (c.scopes) }
                            td { (time(c.created_at)) }
                            td { (opt_time(c.secret_rotated_at)) }
                            td { form class="inline" method="post" action={ "/portal/clients/" (c.client_id) "/rotate" } {
                                (csrf(s)) button type="submit" aria-label={ "Rotate the secret of " (c.client_id) } { "Rotate secret" } } }
                        }
                    }
                }
            }
            form method="post" action="/portal/clients" {
                (csrf(s))
                fieldset {
                    legend { "Create a client" }
                    label for="client-name" { "Name" }
                    input id="client-name" name="name" type="text" pattern="[a-z0-9-]{1,32}" required;
                    br;
                    @for (i, scope) in grantable.iter().enumerate() {
                        input id={ "cscope-" (i) } type="checkbox" name="scope" value=(scope) checked;
                        label for={ "cscope-" (i) } { (scope) }
                    }
                    br;
                    button id="create-client" type="submit" { "Create client" }
                }
            }
        },
    )
}

pub struct UsagePage<'a> {
    pub session: &'a Session,
    pub per_day_svg: String,
    pub per_route: &'a [(String, u64)],
    pub per_route_svg: String,
    pub credits: Option<super::Credits>,
    pub credits_per_day_svg: Option<String>,
}

pub fn usage(p: &UsagePage<'_>) -> Markup {
    layout(
        "Usage",
        Some(p.session),
        html! {
            h2 { "Requests per day, last 30 days" }
            (PreEscaped(&p.per_day_svg))
            h2 { "Requests per route, all time" }
            (PreEscaped(&p.per_route_svg))
            table id="per-route" {
                thead { tr { th scope="col" { "Route" } th scope="col" { "Requests" } } }
                tbody { @for (route, n) in p.per_route { tr { td { code { (route) } } td { (n) } } } }
            }
            h2 { "Credits" }
            @match &p.credits {
                Some(c) => p id="credits" { (c.remaining) " credits left; next refill " (time(c.next_refill)) "." },
                None => p id="credits" { "No credit ledger is configured for this deployment: requests are limited by rate only." },
            }
            @if let Some(svg) = &p.credits_per_day_svg {
                (PreEscaped(svg))
            }
        },
    )
}

pub fn audit(s: &Session, events: &[AuditEntry]) -> Markup {
    layout(
        "Audit",
        Some(s),
        html! {
            table id="audit" {
                caption { "Recent authentication events of this tenant, newest first" }
                thead { tr { th scope="col" { "Time" } th scope="col" { "Outcome" } th scope="col" { "Method" }
                    th scope="col" { "Subject" } th scope="col" { "Credential" } th scope="col" { "Reason" }
                    th scope="col" { "Route" } th scope="col" { "Client" } } }
                tbody {
                    @for e in events {
                        tr { td { (time(e.at)) } td { (e.field("outcome")) } td { (e.field("method")) }
                            td { (e.field("subject")) } td { (e.field("credential_id")) } td { (e.field("reason")) }
                            td { (e.field("route")) } td { (e.field("client")) } }
                    }
                }
            }
        },
    )
}

pub struct TenantRow {
    pub tenant: String,
    pub keys: usize,
    pub active: usize,
    pub plans: String,
    pub credits: Option<super::Credits>,
}

pub fn admin(s: &Session, tenants: &[TenantRow], plans: &[String]) -> Markup {
    layout(
        "Admin",
        Some(s),
        html! {
            table id="tenants" {
                caption { "Tenants" }
                thead { tr { th scope="col" { "Tenant" } th scope="col" { "Keys" } th scope="col" { "Active" }
                    th scope="col" { "Plans in use" } th scope="col" { "Credit balance" } th scope="col" { "Top-up" } } }
                tbody { @for t in tenants { tr { td { (t.tenant) } td { (t.keys) } td { (t.active) } td { (t.plans) }
                    td id={ "balance-" (t.tenant) } { @match &t.credits { Some(c) => { (c.remaining) }, None => "—" } }
                    td { @if t.credits.is_some() {
                        form method="post" action={ "/portal/admin/tenants/" (t.tenant) "/credits" } {
                            (csrf(s))
                            label for={ "add-" (t.tenant) } { "Credits to add for " (t.tenant) }
                            input id={ "add-" (t.tenant) } name="add" type="number" min="1" max="1000000000" required;
                            button type="submit" { "Add" }
                        }
                    } } } } }
            }
            p { "Plans: " (plans.join(", ")) "." }
        },
    )
}

pub fn message(title: &str, session: Option<&Session>, text: &str) -> Markup {
    layout(
        title,
        session,
        html! { p id="message" { (text) } p { a href="/portal/" { "Back to the portal" } } },
    )
}
