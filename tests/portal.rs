//! Issue 21: the developer portal, against the example process. Plain-HTTP tests prove the
//! headers, the cookie, CSRF and session renewal; `browser_walk` drives Debian's chromium
//! through chromedriver (fantoccini) through sign-in, keys, usage, revocation, a cross-site
//! form post, a framed page and a lock-out, saving a screenshot of each page under
//! `$CARGO_TARGET_TMPDIR/portal-screenshots/` (under the target directory).

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use support::{Saas, free_port};

/// Audit accepts are INFO events; the portal's audit page shows them.
const LOG: (&str, &str) = ("RUST_LOG", "warn,apiauth::audit=info");

async fn start() -> Saas {
    Saas::start_with_env(&[], &[LOG]).await
}

fn cred<'a>(s: &'a Saas, path: &[&str]) -> &'a str {
    let mut v = &s.creds;
    for p in path {
        v = &v[*p];
    }
    v.as_str()
        .unwrap_or_else(|| panic!("credentials lack {path:?}"))
}

/// A client that follows no redirects and keeps no cookies: the test handles both.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .tls_danger_accept_invalid_certs(true)
        .build()
        .unwrap()
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("portal_session="))
        .map(str::to_owned)
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_owned())
        .unwrap()
}

/// The value of the first hidden `csrf` field in a page.
fn csrf_of(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a CSRF field");
    let rest = &html[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// A signed-in session over plain HTTP: (cookie value, CSRF token, the pre-sign-in id).
async fn sign_in_http(s: &Saas, http: &reqwest::Client) -> (String, String, String) {
    let (user, pass) = (
        cred(s, &["portal", "username"]),
        cred(s, &["portal", "password"]),
    );
    sign_in_as(s, http, user, pass).await
}

async fn sign_in_as(
    s: &Saas,
    http: &reqwest::Client,
    user: &str,
    pass: &str,
) -> (String, String, String) {
    let res = http.get(s.url("/portal/sign-in")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let before = cookie_value(&session_cookie(res.headers()).expect("a visitor cookie"));
    let csrf = csrf_of(&res.text().await.unwrap());
    let res = http
        .post(s.url("/portal/sign-in"))
        .header("cookie", format!("portal_session={before}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", user),
            ("password", pass),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let after = cookie_value(&session_cookie(res.headers()).expect("a session cookie"));
    let page = http
        .get(s.url("/portal/keys"))
        .header("cookie", format!("portal_session={after}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csrf = csrf_of(&page.text().await.unwrap());
    (after, csrf, before)
}

#[tokio::test]
async fn portal_pages_carry_csp_frame_and_cache_headers() {
    let s = start().await;
    let http = http();
    let (cookie, ..) = sign_in_http(&s, &http).await;
    for path in [
        "/portal/sign-in",
        "/portal/keys",
        "/portal/usage",
        "/portal/audit",
    ] {
        let res = http
            .get(s.url(path))
            .header("cookie", format!("portal_session={cookie}"))
            .send()
            .await
            .unwrap();
        assert!(
            res.status().is_success() || res.status().is_redirection(),
            "{path}"
        );
        let h = res.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
    }
}

#[tokio::test]
async fn session_cookie_is_httponly_strict_and_scoped_to_the_portal() {
    let s = start().await;
    let res = http().get(s.url("/portal/sign-in")).send().await.unwrap();
    let c = session_cookie(res.headers()).unwrap();
    assert!(c.contains("; HttpOnly"), "{c}");
    assert!(c.contains("; SameSite=Strict"), "{c}");
    assert!(c.contains("; Path=/portal"), "{c}");
    assert!(
        !c.contains("Secure"),
        "plain HTTP: no Secure, or no browser keeps it: {c}"
    );
    assert_eq!(cookie_value(&c).len(), 64, "256 random bits as hex: {c}");

    let tls = Saas::start(&["--dev-tls"]).await;
    let res = http().get(tls.url("/portal/sign-in")).send().await.unwrap();
    let c = session_cookie(res.headers()).unwrap();
    assert!(c.contains("; Secure"), "over TLS the cookie is Secure: {c}");
}

#[tokio::test]
async fn sign_in_renews_the_session_id_and_sign_out_ends_it() {
    let s = start().await;
    let http = http();
    let (after, csrf, before) = sign_in_http(&s, &http).await;
    assert_ne!(before, after, "sign-in issues a new session id");
    // The id planted before sign-in (session fixation) is not signed in.
    let res = http
        .get(s.url("/portal/keys"))
        .header("cookie", format!("portal_session={before}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[LOCATION], "/portal/sign-in");

    let res = http
        .post(s.url("/portal/sign-out"))
        .header("cookie", format!("portal_session={after}"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(session_cookie(res.headers()).unwrap().contains("Max-Age=0"));
    let res = http
        .get(s.url("/portal/keys"))
        .header("cookie", format!("portal_session={after}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "a signed-out id is dead"
    );
}

#[tokio::test]
async fn form_posts_without_the_csrf_token_or_from_another_origin_are_refused() {
    let s = start().await;
    let http = http();
    let (cookie, csrf, _) = sign_in_http(&s, &http).await;
    let key_id = cred(&s, &["api_keys", "pro", "id"]);
    let revoke = s.url(&format!("/portal/keys/{key_id}/revoke"));
    let attempts: [(&str, Option<&str>, &str); 4] = [
        ("no token", None, ""),
        ("wrong token", None, &"0".repeat(64)),
        ("foreign origin", Some("http://127.0.0.1:9"), &csrf),
        ("no session", None, &csrf),
    ];
    for (what, origin, token) in attempts {
        let mut req = http.post(&revoke).form(&[("csrf", token)]);
        if what != "no session" {
            req = req.header("cookie", format!("portal_session={cookie}"));
        }
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{what}");
    }
    // The key still works.
    let api = http
        .get(s.url("/v1/companies/acme.example"))
        .header("x-api-key", cred(&s, &["api_keys", "pro", "key"]))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::OK);
    // And the real form, with its token and our own origin, is accepted.
    let res = http
        .post(&revoke)
        .header("cookie", format!("portal_session={cookie}"))
        .header("origin", s.base.clone())
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn repeated_wrong_passwords_lock_the_portal_user_out() {
    let s = start().await;
    let http = http();
    let res = http.get(s.url("/portal/sign-in")).send().await.unwrap();
    let cookie = cookie_value(&session_cookie(res.headers()).unwrap());
    let csrf = csrf_of(&res.text().await.unwrap());
    let mut last = None;
    for _ in 0..6 {
        let res = http
            .post(s.url("/portal/sign-in"))
            .header("cookie", format!("portal_session={cookie}"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("username", cred(&s, &["portal", "username"])),
                ("password", "not-the-password"),
            ])
            .send()
            .await
            .unwrap();
        last = Some((res.status(), res.text().await.unwrap()));
    }
    let (status, body) = last.unwrap();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(body.contains("locked"), "{body}");
    // The right password is refused too while the lock lasts.
    let res = http
        .post(s.url("/portal/sign-in"))
        .header("cookie", format!("portal_session={cookie}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", cred(&s, &["portal", "username"])),
            ("password", cred(&s, &["portal", "password"])),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn the_usage_page_shows_the_tenants_remaining_credits_and_they_go_down_with_use() {
    let s = start().await;
    let http = http();
    let (cookie, _, _) = sign_in_http(&s, &http).await;
    let credits_line = |page: String| {
        let start = page.find(r#"id="credits""#).expect("the credits paragraph");
        let rest = &page[start..];
        rest[..rest.find("</p>").unwrap()].to_owned()
    };
    let page = || async {
        let res = http
            .get(s.url("/portal/usage"))
            .header("cookie", format!("portal_session={cookie}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.text().await.unwrap()
    };
    // Tenant acme is on `pro`: 100,000 credits a month.
    let before = credits_line(page().await);
    assert!(before.contains("100000 credits left"), "{before}");
    assert!(before.contains("next refill"), "{before}");
    // One enrichment costs 5 credits, drawn from the tenant's balance.
    let res = http
        .post(s.url("/v1/enrichments"))
        .header("x-api-key", cred(&s, &["api_keys", "pro", "key"]))
        .json(&serde_json::json!({ "email": "ada@acme.com" }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let html = page().await;
    let after = credits_line(html.clone());
    assert!(after.contains("99995 credits left"), "{after}");
    // The day's bar of the credits chart holds what was charged.
    let chart = &html[html
        .find(r#"<svg id="credits-per-day""#)
        .expect("a credits chart")..];
    assert!(
        chart[..chart.find('>').unwrap()].contains(r#"data-total="5""#),
        "{}",
        &chart[..200]
    );
}

/// The text of the element with `id` in a page (the first `>` after it to the next `<`).
fn element_text(html: &str, id: &str) -> String {
    let at = html
        .find(&format!(r#"id="{id}""#))
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let rest = &html[at..];
    let rest = &rest[rest.find('>').unwrap() + 1..];
    rest[..rest.find('<').unwrap()].to_owned()
}

/// Posts a portal form with the session's cookie, CSRF token and our own origin.
async fn post_form(
    s: &Saas,
    http: &reqwest::Client,
    cookie: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String) {
    let res = http
        .post(s.url(path))
        .header("cookie", format!("portal_session={cookie}"))
        .header("origin", s.base.clone())
        .form(fields)
        .send()
        .await
        .unwrap();
    (res.status(), res.text().await.unwrap())
}

async fn company_with_key(s: &Saas, http: &reqwest::Client, key: &str) -> StatusCode {
    http.get(s.url("/v1/companies/acme.example"))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn rotating_a_key_shows_its_successor_once_and_the_grace_period_both_keys_share() {
    let s = Saas::start_with_env(&["--rotation-grace", "600"], &[LOG]).await;
    let http = http();
    let (cookie, csrf, _) = sign_in_http(&s, &http).await;
    let (status, page) = post_form(
        &s,
        &http,
        &cookie,
        "/portal/keys",
        &[
            ("csrf", csrf.as_str()),
            ("name", "rotating"),
            ("plan", "pro"),
            ("scope", "companies:read"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{page}");
    let old = element_text(&page, "new-key");
    assert_eq!(company_with_key(&s, &http, &old).await, StatusCode::OK);
    // The notice names the new key's id: "Key <code>{id}</code> created".
    let row = {
        let at = page.find("Key <code>").expect("the created notice") + "Key <code>".len();
        page[at..at + page[at..].find('<').unwrap()].to_owned()
    };
    assert!(
        page.contains(&format!("<tr data-key-id=\"{row}\"")),
        "{page}"
    );

    let (status, page) = post_form(
        &s,
        &http,
        &cookie,
        &format!("/portal/keys/{row}/rotate"),
        &[("csrf", csrf.as_str())],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{page}");
    // The page names the end of the grace period and the configured 600 seconds.
    assert!(!element_text(&page, "grace-until").is_empty(), "{page}");
    assert!(page.contains("(600 seconds)"), "{page}");
    let new = element_text(&page, "new-key");
    assert_ne!(new, old);
    // Both keys work during the grace period; the old row says until when.
    assert_eq!(company_with_key(&s, &http, &new).await, StatusCode::OK);
    assert_eq!(company_with_key(&s, &http, &old).await, StatusCode::OK);
    let old_row = &page[page.find(&format!("<tr data-key-id=\"{row}\"")).unwrap()..];
    let old_row = &old_row[..old_row.find("</tr>").unwrap()];
    assert!(old_row.contains("valid until"), "{old_row}");
    // The successor is never shown again: the keys list holds no secret.
    let list = http
        .get(s.url("/portal/keys"))
        .header("cookie", format!("portal_session={cookie}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!list.contains(&new) && !list.contains(&old));
}

#[tokio::test]
async fn rotating_a_client_secret_shows_the_new_one_once_and_the_old_one_stops_working() {
    let s = start().await;
    let http = http();
    let (cookie, csrf, _) = sign_in_http(&s, &http).await;
    let (status, page) = post_form(
        &s,
        &http,
        &cookie,
        "/portal/clients",
        &[
            ("csrf", csrf.as_str()),
            ("name", "billing-sync"),
            ("scope", "companies:read"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{page}");
    let old = element_text(&page, "new-secret");
    let tenant_row = page
        .split("<td><code>")
        .skip(1)
        .map(|c| c[..c.find('<').unwrap()].to_owned())
        .find(|c| c.ends_with("-billing-sync"))
        .expect("the client's row");
    let token = |secret: String| {
        let (http, url, id) = (http.clone(), s.url("/oauth/token"), tenant_row.clone());
        async move {
            let res = http
                .post(url)
                .basic_auth(id, Some(secret))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("scope", "companies:read"),
                ])
                .send()
                .await
                .unwrap();
            let status = res.status();
            let body: Value = res.json().await.unwrap();
            (status, body)
        }
    };
    let (status, body) = token(old.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, page) = post_form(
        &s,
        &http,
        &cookie,
        &format!("/portal/clients/{tenant_row}/rotate"),
        &[("csrf", csrf.as_str())],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{page}");
    let new = element_text(&page, "new-secret");
    assert_ne!(new, old);
    assert!(page.contains("the old one no longer works"), "{page}");
    // RFC 6749 §5.2: a client that fails authentication is 401 invalid_client.
    let (status, body) = token(old).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client");
    let (status, body) = token(new.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let at = body["access_token"].as_str().unwrap();
    let api = http
        .get(s.url("/v1/companies/acme.example"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::OK);
    // The clients list shows when the secret was rotated and never the secret.
    let list = http
        .get(s.url("/portal/clients"))
        .header("cookie", format!("portal_session={cookie}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!list.contains(&new));
    let row = &list[list.find(&format!("<code>{tenant_row}</code>")).unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(!row.contains("—"), "rotation time missing: {row}");
}

/// A client made in the portal belongs to the user's tenant: its tokens name the tenant, so
/// what it calls is charged to the tenant's balance (no client passes uncharged).
#[tokio::test]
async fn a_client_made_in_the_portal_draws_on_its_tenants_credits() {
    let s = start().await;
    let http = http();
    let (cookie, csrf, _) = sign_in_http(&s, &http).await;
    let (status, page) = post_form(
        &s,
        &http,
        &cookie,
        "/portal/clients",
        &[
            ("csrf", csrf.as_str()),
            ("name", "enricher"),
            ("scope", "enrich:write"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{page}");
    let secret = element_text(&page, "new-secret");
    let res = http
        .post(s.url("/oauth/token"))
        .basic_auth("acme-enricher", Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "enrich:write"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let token = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let credits = || async {
        let page = http
            .get(s.url("/portal/usage"))
            .header("cookie", format!("portal_session={cookie}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        element_text(&page, "credits")
    };
    assert!(credits().await.starts_with("100000 credits left"));
    let res = http
        .post(s.url("/v1/enrichments"))
        .bearer_auth(&token)
        .json(&json!({ "email": "ada@acme.com" }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let after = credits().await;
    assert!(after.starts_with("99995 credits left"), "{after}");
}

#[tokio::test]
async fn list_pages_are_readable_without_javascript_and_every_control_is_labelled() {
    let s = start().await;
    let http = http();
    let (cookie, _, _) = sign_in_http(&s, &http).await;
    for (path, table) in [
        ("/portal/keys", "keys"),
        ("/portal/clients", "clients"),
        ("/portal/usage", "per-route"),
        ("/portal/audit", "audit"),
    ] {
        let page = http
            .get(s.url(path))
            .header("cookie", format!("portal_session={cookie}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        // The list is in the served HTML (no script builds it), with column headers.
        assert!(page.contains(&format!(r#"<table id="{table}""#)), "{path}");
        assert!(page.contains(r#"<th scope="col">"#), "{path}");
        // Every visible form control has a label; every action is a real button in a form,
        // so the keyboard reaches it, and nothing relies on inline script handlers.
        for piece in page.split("<input ").skip(1) {
            let tag = &piece[..piece.find('>').unwrap()];
            if tag.contains(r#"type="hidden""#) {
                continue;
            }
            let id = tag
                .split("id=\"")
                .nth(1)
                .map(|r| &r[..r.find('"').unwrap()])
                .unwrap_or_else(|| panic!("{path}: an input without an id: {tag}"));
            assert!(
                page.contains(&format!(r#"<label for="{id}""#)),
                "{path}: #{id} has no label"
            );
        }
        for piece in page.split("<button ").skip(1) {
            let tag = &piece[..piece.find('>').unwrap()];
            let text = &piece[piece.find('>').unwrap() + 1..piece.find("</button>").unwrap()];
            assert!(
                tag.contains("aria-label=") || !text.trim().is_empty(),
                "{path}: a button without a name: {tag}"
            );
        }
        assert!(!page.contains(" onclick="), "{path}");
    }
}

#[tokio::test]
async fn an_admin_tops_up_a_tenant_from_the_admin_view_and_a_tenant_user_cannot() {
    let s = start().await;
    let http = http();
    let top_up = s.url("/portal/admin/tenants/initech/credits");
    // A tenant's own user may not grant credits.
    let (cookie, csrf, _) = sign_in_http(&s, &http).await;
    let res = http
        .post(&top_up)
        .header("cookie", format!("portal_session={cookie}"))
        .form(&[("csrf", csrf.as_str()), ("add", "10")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // The admin sees tenant initech on `free` (100 credits) and adds 10.
    let (user, pass) = (
        cred(&s, &["admin", "username"]),
        cred(&s, &["admin", "password"]),
    );
    let (cookie, csrf, _) = sign_in_as(&s, &http, user, pass).await;
    let balance = || async {
        let page = http
            .get(s.url("/portal/admin"))
            .header("cookie", format!("portal_session={cookie}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let start = page
            .find(r#"id="balance-initech""#)
            .expect("a balance cell");
        let rest = &page[start..];
        let cell = &rest[rest.find('>').unwrap() + 1..rest.find("</td>").unwrap()];
        cell.trim().parse::<u64>().unwrap()
    };
    assert_eq!(balance().await, 100);
    for (add, status) in [("0", 422), ("lots", 422), ("10", 303)] {
        let res = http
            .post(&top_up)
            .header("cookie", format!("portal_session={cookie}"))
            .form(&[("csrf", csrf.as_str()), ("add", add)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), status, "add={add}");
    }
    assert_eq!(balance().await, 110);
    // Without the form's CSRF token nothing is added.
    let res = http
        .post(&top_up)
        .header("cookie", format!("portal_session={cookie}"))
        .form(&[("add", "10")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(balance().await, 110);
}

// ---------------------------------------------------------------------------------------
// The browser.

/// chromedriver on a free port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

async fn chromedriver() -> (Driver, std::path::PathBuf) {
    let driver = which("chromedriver").unwrap_or_else(|| {
        panic!(
            "chromedriver is not installed: apt-get install chromium chromium-driver (.ci/run does)"
        )
    });
    let browser = which("chromium").unwrap_or_else(|| {
        panic!("chromium is not installed: apt-get install chromium chromium-driver (.ci/run does)")
    });
    let port = free_port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (Driver { child, url }, browser)
}

async fn browser(driver: &Driver, binary: &std::path::Path) -> Client {
    let caps = json!({
        "goog:chromeOptions": {
            "binary": binary,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000"],
        }
    });
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a chromium session")
}

/// This test's output directory (cargo's per-target temporary directory, under the target
/// directory wherever `CARGO_TARGET_DIR` puts it).
fn shots_dir() -> std::path::PathBuf {
    let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("portal-screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(shots_dir().join(format!("{name}.png")), png).unwrap();
}

/// The text of the element at `css`, retried while a navigation replaces the page.
async fn text(c: &Client, css: &str) -> String {
    for _ in 0..50 {
        if let Ok(e) = c.find(Locator::Css(css)).await
            && let Ok(t) = e.text().await
        {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no element {css} on {}", c.current_url().await.unwrap())
}

/// The total the usage chart shows.
async fn chart_total(c: &Client, s: &Saas) -> u64 {
    c.goto(&s.url("/portal/usage")).await.unwrap();
    let svg = c.find(Locator::Css("#requests-per-day")).await.unwrap();
    svg.attr("data-total")
        .await
        .unwrap()
        .unwrap()
        .parse()
        .unwrap()
}

/// A second origin (127.0.0.1 on another port; the portal is on `localhost`): a page that
/// frames the portal and a page with a form that posts to it.
async fn other_origin(portal: &str, revoke_path: &str) -> String {
    use axum::response::Html;
    let framed = format!(
        r#"<!doctype html><title>framer</title><iframe id="f" src="{portal}/portal/sign-in" width="600" height="400"></iframe>"#
    );
    let forged = format!(
        r#"<!doctype html><title>forger</title><form method="post" action="{portal}{revoke_path}"><input type="hidden" name="csrf" value="guessed"><button id="go" type="submit">Win a prize</button></form>"#
    );
    let app = axum::Router::new()
        .route(
            "/frame",
            axum::routing::get(move || async move { Html(framed) }),
        )
        .route(
            "/forge",
            axum::routing::get(move || async move { Html(forged) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn browser_walk() {
    let (driver, binary) = chromedriver().await;
    let s = start().await;
    let c = browser(&driver, &binary).await;
    let http = http();

    // Sign in.
    c.goto(&s.url("/portal/")).await.unwrap();
    assert!(
        c.current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/portal/sign-in")
    );
    shot(&c, "sign-in").await;
    c.find(Locator::Id("username"))
        .await
        .unwrap()
        .send_keys(cred(&s, &["portal", "username"]))
        .await
        .unwrap();
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(cred(&s, &["portal", "password"]))
        .await
        .unwrap();
    c.find(Locator::Id("sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    if c.wait()
        .for_element(Locator::Css("table#keys"))
        .await
        .is_err()
    {
        panic!("not signed in: {}", c.source().await.unwrap());
    }
    let before = chart_total(&c, &s).await;

    // Create a key and read it from the page.
    c.goto(&s.url("/portal/keys")).await.unwrap();
    let name = c.find(Locator::Id("key-name")).await.unwrap();
    name.clear().await.unwrap();
    name.send_keys("browser").await.unwrap();
    c.find(Locator::Id("create-key"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let key = c
        .wait()
        .for_element(Locator::Id("new-key"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(key.starts_with("sk_test_"), "{key}");
    // The copy button is revealed by the script (allowed by the CSP: a file, not inline).
    let copy = c.find(Locator::Css("button[data-copy]")).await.unwrap();
    assert!(copy.is_displayed().await.unwrap());
    shot(&c, "keys-created").await;

    // Call the API with it.
    for _ in 0..3 {
        let res = http
            .get(s.url("/v1/companies/acme.example"))
            .header("x-api-key", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    let after = chart_total(&c, &s).await;
    assert_eq!(after, before + 3, "the chart counts the three calls");
    assert!(
        text(&c, "#per-route")
            .await
            .contains("/v1/companies/{domain}")
    );
    shot(&c, "usage").await;

    // Its events are on the audit page.
    c.goto(&s.url("/portal/audit")).await.unwrap();
    let audit = text(&c, "#audit").await;
    assert!(audit.contains("acme-browser"), "{audit}");
    shot(&c, "audit").await;

    // Clients: create one, its secret shown once.
    c.goto(&s.url("/portal/clients")).await.unwrap();
    c.find(Locator::Id("client-name"))
        .await
        .unwrap()
        .send_keys("reports")
        .await
        .unwrap();
    c.find(Locator::Id("create-client"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let secret = c
        .wait()
        .for_element(Locator::Id("new-secret"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = http
        .post(cred(&s, &["oauth_client", "token_endpoint"]))
        .basic_auth("acme-reports", Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), StatusCode::OK, "the new client gets tokens");
    shot(&c, "clients").await;

    // A cross-site form post is refused: the cookie stays home (SameSite=Strict) and the
    // token is a guess.
    c.goto(&s.url("/portal/keys")).await.unwrap();
    let rows = c.find_all(Locator::Css("tr[data-key-id]")).await.unwrap();
    let mut id = None;
    for r in rows {
        let rid = r.attr("data-key-id").await.unwrap().unwrap();
        if r.text().await.unwrap().contains("acme-browser") {
            id = Some(rid);
        }
    }
    let id = id.expect("the new key is listed");
    let other = other_origin(&s.base, &format!("/portal/keys/{id}/revoke")).await;
    c.goto(&format!("{other}/forge")).await.unwrap();
    c.find(Locator::Id("go"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let refused = c.wait().for_element(Locator::Id("message")).await.unwrap();
    assert!(refused.text().await.unwrap().contains("refused"));
    shot(&c, "cross-site-post-refused").await;
    let still = http
        .get(s.url("/v1/companies/acme.example"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        still.status(),
        StatusCode::OK,
        "the forged post revoked nothing"
    );

    // A framed portal page is blocked (CSP frame-ancestors 'none', X-Frame-Options DENY).
    c.goto(&format!("{other}/frame")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    shot(&c, "framed-blocked").await;
    c.enter_frame(0).await.unwrap();
    let inside = c
        .execute(
            "return document.getElementById('portal-main') !== null",
            vec![],
        )
        .await;
    let href = c.execute("return location.href", vec![]).await;
    assert!(
        matches!(inside, Ok(Value::Bool(false))),
        "the portal rendered inside another origin's frame: {inside:?}, {href:?}"
    );
    // Chromium shows its error page in place of the refused document.
    assert!(
        matches!(&href, Ok(Value::String(h)) if !h.starts_with(&s.base)),
        "the frame holds {href:?}"
    );
    c.enter_parent_frame().await.unwrap();

    // Revoke it in the portal; the API answers 401.
    c.goto(&s.url("/portal/keys")).await.unwrap();
    c.find(Locator::Css(&format!(
        "tr[data-key-id='{id}'] button.revoke"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    let revoked = format!("tr[data-key-id='{id}'] td.status");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !text(&c, &revoked).await.contains("revoked") {
        assert!(Instant::now() < deadline, "the key is not shown revoked");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shot(&c, "keys").await;
    let gone = http
        .get(s.url("/v1/companies/acme.example"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::UNAUTHORIZED);

    // Admin view, as the admin user (another session: sign out first).
    c.find(Locator::Css("header form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("username")).await.unwrap();
    c.find(Locator::Id("username"))
        .await
        .unwrap()
        .send_keys("admin")
        .await
        .unwrap();
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(cred(&s, &["admin", "password"]))
        .await
        .unwrap();
    c.find(Locator::Id("sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css("table#keys"))
        .await
        .unwrap();
    c.goto(&s.url("/portal/admin")).await.unwrap();
    assert!(text(&c, "#tenants").await.contains("globex"));
    shot(&c, "admin").await;
    c.find(Locator::Css("header form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // Wrong passwords: the lock-out message. The failures are posted over HTTP from the same
    // address (a browser loop would race its own page loads); the browser then signs in with
    // the right password and is shown the lock.
    let res = http.get(s.url("/portal/sign-in")).send().await.unwrap();
    let cookie = cookie_value(&session_cookie(res.headers()).unwrap());
    let csrf = csrf_of(&res.text().await.unwrap());
    for _ in 0..6 {
        http.post(s.url("/portal/sign-in"))
            .header("cookie", format!("portal_session={cookie}"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("username", cred(&s, &["portal", "username"])),
                ("password", "not-the-password"),
            ])
            .send()
            .await
            .unwrap();
    }
    c.wait().for_element(Locator::Id("username")).await.unwrap();
    c.find(Locator::Id("username"))
        .await
        .unwrap()
        .send_keys(cred(&s, &["portal", "username"]))
        .await
        .unwrap();
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(cred(&s, &["portal", "password"]))
        .await
        .unwrap();
    c.find(Locator::Id("sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let msg = c
        .wait()
        .for_element(Locator::Id("sign-in-error"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(msg.contains("locked"), "{msg}");
    shot(&c, "locked-out").await;
    c.close().await.unwrap();
}
