//! Issue 18 against the example binary over loopback: costs per route, a free tenant running
//! out of credits (429 problem) and an operator's top-up, the pro tenant's API key and OAuth
//! client drawing on one balance, its API key, OAuth client and HMAC partner sharing pro's
//! rate bucket, `/v1/usage` showing balance and refill, the billing export as JSON and CSV,
//! the Prometheus label set staying bounded, and two instances on one real Redis admitting
//! exactly 50 of 200.
//!
//! Run `cargo build --example saas` before `cargo test --test credits`.

mod support;

use std::collections::BTreeSet;

use apiauth_hmac::{HmacSecret, Signer};
use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Redis, Saas};

fn cred<'a>(s: &'a Saas, path: &[&str]) -> &'a str {
    let mut v = &s.creds;
    for p in path {
        v = &v[*p];
    }
    v.as_str()
        .unwrap_or_else(|| panic!("credentials lack {path:?}"))
}

async fn token(s: &Saas) -> String {
    let res = s
        .http
        .post(s.url("/oauth/token"))
        .basic_auth(
            cred(s, &["oauth_client", "client_id"]),
            Some(cred(s, &["oauth_client", "client_secret"])),
        )
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

fn key(s: &Saas, plan: &str) -> String {
    cred(s, &["api_keys", plan, "key"]).to_owned()
}

async fn usage(s: &Saas, key: &str) -> Value {
    let res = s
        .http
        .get(s.url("/v1/usage"))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn operator(s: &Saas, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    req.basic_auth(
        cred(s, &["operator", "username"]),
        Some(cred(s, &["operator", "password"])),
    )
}

async fn company(s: &Saas, key: &str) -> reqwest::Response {
    s.http
        .get(s.url("/v1/companies/acme.com"))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap()
}

/// A GET of `path` signed by the HMAC partner (RFC 9421) for the instance's public URL.
async fn signed_get(s: &Saas, path: &str) -> reqwest::Response {
    let secret = base64::engine::general_purpose::STANDARD
        .decode(cred(s, &["hmac", "secret_base64"]))
        .unwrap();
    let signer = Signer::builder(
        cred(s, &["hmac", "key_id"]),
        HmacSecret::new(secret).unwrap(),
    )
    .build()
    .unwrap();
    let mut req = http::Request::builder()
        .method("GET")
        .uri(format!("{}{path}", cred(s, &["base_url"])))
        .body(Vec::new())
        .unwrap();
    signer.sign(&mut req).unwrap();
    *req.uri_mut() = s.url(path).parse().unwrap();
    s.http
        .execute(reqwest::Request::try_from(req).unwrap())
        .await
        .unwrap()
}

fn header(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_api_key_oauth_client_and_hmac_partner_of_acme_share_the_pro_rate_bucket() {
    // pro's rate limit made small (burst 4, one request back every 100 s) to see the bucket.
    let s = Saas::start(&["--quota", "pro=4:0.01"]).await;
    let pro = key(&s, "pro");
    let bearer = token(&s).await;
    let pro_policy = r#""plan:pro";q=4;w=400"#;
    for left in [3, 2] {
        let res = company(&s, &pro).await;
        assert_eq!(res.status(), 200);
        assert_eq!(
            header(&res, "ratelimit-policy").split(", ").next(),
            Some(pro_policy)
        );
        assert!(
            header(&res, "ratelimit").starts_with(&format!("\"plan:pro\";r={left};")),
            "{}",
            header(&res, "ratelimit")
        );
    }
    // The OAuth client (a member of acme) and the HMAC partner (tenant acme) get pro's
    // limits, not the default plan's, and draw on the same bucket.
    let res = s
        .http
        .get(s.url("/v1/companies/acme.com"))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        header(&res, "ratelimit-policy").split(", ").next(),
        Some(pro_policy)
    );
    assert!(header(&res, "ratelimit").starts_with("\"plan:pro\";r=1;"));
    let res = signed_get(&s, "/v1/companies/acme.com").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        header(&res, "ratelimit-policy").split(", ").next(),
        Some(pro_policy)
    );
    assert!(header(&res, "ratelimit").starts_with("\"plan:pro\";r=0;"));
    // The bucket is empty for every credential of acme.
    assert_eq!(company(&s, &pro).await.status(), 429);
    let res = s
        .http
        .get(s.url("/v1/companies/acme.com"))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(signed_get(&s, "/v1/companies/acme.com").await.status(), 429);
    // Another tenant's credential has its own plan and bucket.
    let res = company(&s, &key(&s, "free")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        header(&res, "ratelimit-policy").split(", ").next(),
        Some(r#""plan:free";q=20;w=60"#)
    );
}

#[tokio::test]
async fn without_overrides_the_oauth_client_and_hmac_partner_get_pros_limits() {
    let s = Saas::start(&[]).await;
    let bearer = token(&s).await;
    let res = s
        .http
        .get(s.url("/v1/companies/acme.com"))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let policy = header(&res, "ratelimit-policy");
    assert!(policy.starts_with(r#""plan:pro";q=200;w=2, "#), "{policy}");
    let res = signed_get(&s, "/v1/companies/acme.com").await;
    assert_eq!(res.status(), 200);
    let policy = header(&res, "ratelimit-policy");
    assert!(policy.starts_with(r#""plan:pro";q=200;w=2, "#), "{policy}");
}

/// Every value of label `name` on the lines of metric `metric`.
fn label_values(text: &str, metric: &str, name: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")))
        .filter_map(|l| {
            let start = l.find(&format!("{name}=\""))? + name.len() + 2;
            let end = start + l[start..].find('"')?;
            Some(l[start..end].to_owned())
        })
        .collect()
}

#[tokio::test]
async fn prometheus_labels_stay_bounded_whatever_identities_and_paths_call() {
    let s = Saas::start(&["--quota", "pro=1000:1000"]).await;
    let admin = |req: reqwest::RequestBuilder| {
        req.basic_auth("admin", Some(cred(&s, &["admin", "password"]).to_owned()))
    };
    // Twelve identities of acme, each on many distinct paths of one route template.
    let mut keys = vec![key(&s, "pro"), key(&s, "free")];
    for i in 0..10 {
        let res = admin(s.http.post(s.url("/admin/api-keys")))
            .json(&json!({ "owner": format!("owner-{i}-zz"), "scopes": "companies:read", "plan": "pro" }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let v: Value = res.json().await.unwrap();
        keys.push(v["key"].as_str().unwrap().to_owned());
    }
    for (i, k) in keys.iter().enumerate() {
        for j in 0..5 {
            let res = s
                .http
                .get(s.url(&format!("/v1/companies/domain-{i}-{j}-zz.example")))
                .header("x-api-key", k)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
        }
        // Unknown paths, with and without a credential.
        let res = s
            .http
            .get(s.url(&format!("/v1/nowhere-{i}-zz")))
            .header("x-api-key", k)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
    }
    let res = admin(s.http.get(s.url("/metrics"))).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    // No identity, owner, domain or raw path became a label value anywhere.
    assert!(!text.contains("-zz"), "{text}");
    assert!(!text.contains("api_key::"), "{text}");
    let usage = "apiauth_usage_requests_total";
    let routes = label_values(&text, usage, "route");
    let policies = label_values(&text, usage, "policy");
    let classes = label_values(&text, usage, "status_class");
    let templates: BTreeSet<String> = [
        "/v1/companies/{domain}",
        "/v1/contacts/search",
        "/v1/enrichments",
        "/v1/usage",
    ]
    .map(str::to_owned)
    .into();
    assert!(routes.is_subset(&templates), "{routes:?}");
    assert!(routes.contains("/v1/companies/{domain}"));
    let plan_policies: BTreeSet<String> = ["plan:free", "plan:pro", "default", "anonymous"]
        .map(str::to_owned)
        .into();
    assert!(policies.is_subset(&plan_policies), "{policies:?}");
    assert!(
        classes
            .iter()
            .all(|c| ["1xx", "2xx", "3xx", "4xx", "5xx"].contains(&c.as_str()))
    );
    let series = text
        .lines()
        .filter(|l| l.starts_with(&format!("{usage}{{")))
        .count();
    assert!(
        series <= templates.len() * plan_policies.len() * 5,
        "{series}"
    );
    // Credits: route × plan, from configuration.
    let charged = "apiauth_credits_charged_total";
    assert!(label_values(&text, charged, "route").is_subset(&templates));
    let plans: BTreeSet<String> = ["free", "pro"].map(str::to_owned).into();
    assert_eq!(label_values(&text, charged, "plan"), plans);
}

#[tokio::test]
async fn each_route_charges_its_cost_and_only_2xx_answers_are_charged() {
    let s = Saas::start(&[]).await;
    let pro = key(&s, "pro");
    assert_eq!(cred(&s, &["api_keys", "pro", "tenant"]), "acme");
    assert_eq!(cred(&s, &["api_keys", "free", "tenant"]), "initech");
    let before = usage(&s, &pro).await["credits"]["remaining"]
        .as_u64()
        .unwrap();
    assert_eq!(before, 100_000);
    assert_eq!(company(&s, &pro).await.status(), 200);
    let res = s
        .http
        .post(s.url("/v1/contacts/search"))
        .header("x-api-key", &pro)
        .json(&json!({ "company_domain": "acme.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = s
        .http
        .post(s.url("/v1/enrichments"))
        .header("x-api-key", &pro)
        .json(&json!({ "email": "ada@acme.com" }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    // The answer carries the credit policy beside the rate policy.
    let state = res.headers()["ratelimit"].to_str().unwrap().to_owned();
    assert!(state.contains("\"credits:pro\";r=99992;"), "{state}");
    let policy = res.headers()["ratelimit-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        policy.starts_with("\"plan:pro\";q=200;w=2, \"credits:pro\";q=100000;w="),
        "{policy}"
    );
    // A 4xx answer (bad JSON) is not charged; neither is /v1/usage itself.
    let res = s
        .http
        .post(s.url("/v1/contacts/search"))
        .header("x-api-key", &pro)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let after = usage(&s, &pro).await;
    let after = usage(&s, &pro).await["credits"]["remaining"]
        .as_u64()
        .unwrap_or_else(|| {
            panic!("{after}");
        });
    assert_eq!(before - after, 1 + 2 + 5);
}

#[tokio::test]
async fn free_tenant_runs_out_then_an_operator_top_up_lets_it_call_again() {
    // A rate limit high enough to reach the credit limit quickly.
    let s = Saas::start(&["--quota", "free=500:500"]).await;
    let free = key(&s, "free");
    let u = usage(&s, &free).await;
    assert_eq!(u["tenant"], "initech");
    assert_eq!(u["credits"]["plan"], "free");
    assert_eq!(u["credits"]["allowance"], 100);
    assert_eq!(u["credits"]["period"], "month");
    let refills_at = u["credits"]["refills_at"].as_str().unwrap().to_owned();
    assert!(refills_at.ends_with("-01T00:00:00Z"), "{refills_at}");
    for i in 0..100 {
        assert_eq!(company(&s, &free).await.status(), 200, "request {i}");
    }
    let res = company(&s, &free).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let until = u["credits"]["seconds_until_refill"].as_u64().unwrap();
    assert!(retry <= until && retry + 60 >= until, "{retry} vs {until}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["type"], "urn:apiauth:problem:credits-exhausted");
    assert_eq!(body["title"], "Credits exhausted");
    assert_eq!(body["refills_at"], refills_at.as_str());
    // The balance is still readable at no cost.
    assert_eq!(usage(&s, &free).await["credits"]["remaining"], 0);

    // Tenant administrators cannot grant credits; the operator can.
    let res = s
        .http
        .post(s.url("/admin/tenants/initech/credits"))
        .basic_auth("admin", Some(cred(&s, &["admin", "password"])))
        .json(&json!({ "add": 1000 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = operator(&s, s.http.post(s.url("/admin/tenants/initech/credits")))
        .json(&json!({ "add": 3 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let b: Value = res.json().await.unwrap();
    assert_eq!(
        (b["remaining"].as_u64(), b["plan"].as_str()),
        (Some(3), Some("free"))
    );
    for _ in 0..3 {
        assert_eq!(company(&s, &free).await.status(), 200);
    }
    assert_eq!(company(&s, &free).await.status(), 429);
    let res = operator(&s, s.http.post(s.url("/admin/tenants/initech/credits")))
        .json(&json!({ "set": 10 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let b: Value = operator(&s, s.http.get(s.url("/admin/tenants/initech/credits")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(b["remaining"], 10);
    let res = operator(&s, s.http.post(s.url("/admin/tenants/initech/credits")))
        .json(&json!({ "add": 1, "set": 2 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let res = operator(&s, s.http.get(s.url("/admin/tenants/nobody/credits")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn the_pro_key_and_the_oauth_client_draw_on_one_tenant_balance() {
    let s = Saas::start(&["--credits", "pro=10"]).await;
    let pro = key(&s, "pro");
    let bearer = token(&s).await;
    assert_eq!(cred(&s, &["oauth_client", "tenant"]), "acme");
    for _ in 0..5 {
        assert_eq!(company(&s, &pro).await.status(), 200);
        let res = s
            .http
            .get(s.url("/v1/companies/acme.com"))
            .bearer_auth(&bearer)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    // Ten credits, five spent by each: both are out.
    assert_eq!(company(&s, &pro).await.status(), 429);
    let res = s
        .http
        .get(s.url("/v1/usage"))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let u: Value = res.json().await.unwrap();
    assert_eq!(u["tenant"], "acme");
    assert_eq!(u["credits"]["remaining"], 0);
    assert_eq!(u["credits"]["allowance"], 10);
}

#[tokio::test]
async fn usage_export_lists_requests_and_credits_per_tenant_identity_route_and_day() {
    let s = Saas::start(&[]).await;
    let pro = key(&s, "pro");
    let free = key(&s, "free");
    assert_eq!(company(&s, &pro).await.status(), 200);
    assert_eq!(company(&s, &pro).await.status(), 200);
    assert_eq!(company(&s, &free).await.status(), 200);
    let res = s
        .http
        .post(s.url("/v1/enrichments"))
        .header("x-api-key", &free)
        .json(&json!({ "email": "ada@acme.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "the free key lacks enrich:write");

    let res = operator(&s, s.http.get(s.url("/admin/usage/export?tenant=acme")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    let rows = doc["rows"].as_array().unwrap();
    let today = rows[0]["day"].as_str().unwrap().to_owned();
    assert_eq!(today.len(), 10);
    assert!(rows.iter().all(|r| r["tenant"] == "acme"));
    let company_row = rows
        .iter()
        .find(|r| r["route"] == "/v1/companies/{domain}")
        .unwrap();
    assert_eq!(company_row["identity"], "api_key::acme-pro");
    assert_eq!(company_row["requests_2xx"], 2);
    assert_eq!(company_row["credits"], 2);

    let res = operator(&s, s.http.get(s.url("/admin/usage/export?format=csv")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = res.text().await.unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "day,tenant,identity,route,requests_2xx,requests_4xx,requests_5xx,requests_other,credits"
        )
    );
    let lines: Vec<&str> = lines.collect();
    assert!(
        lines.contains(
            &format!("{today},initech,api_key::acme-free,/v1/companies/{{domain}},1,0,0,0,1")
                .as_str()
        ),
        "{csv}"
    );
    assert!(
        // Refused inside the route (scope): counted as 4xx, not charged.
        lines.contains(
            &format!("{today},initech,api_key::acme-free,/v1/enrichments,0,1,0,0,0").as_str()
        ),
        "{csv}"
    );
    // Tenant administrators do not see the billing history.
    let res = s
        .http
        .get(s.url("/admin/usage/export"))
        .basic_auth("admin", Some(cred(&s, &["admin", "password"])))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_redis_admit_exactly_fifty_of_two_hundred_at_cost_one() {
    let redis = Redis::start().await;
    let args = [
        "--redis-url",
        redis.url.as_str(),
        "--demo-seed",
        "credits-demo",
        "--public-url",
        "http://api.example.test",
        // The rate limit out of the way: only credits limit here.
        "--quota",
        "pro=1000:1000",
    ];
    let a = Saas::start(&args).await;
    let b = Saas::start(&args).await;
    // A known starting balance, whatever an earlier run left in a shared Redis.
    let res = operator(&a, a.http.post(a.url("/admin/tenants/acme/credits")))
        .json(&json!({ "set": 50 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let pro = key(&a, "pro");
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (http, url) = if i % 2 == 0 {
            (a.http.clone(), a.url("/v1/companies/acme.com"))
        } else {
            (b.http.clone(), b.url("/v1/companies/acme.com"))
        };
        let pro = pro.clone();
        tasks.push(tokio::spawn(async move {
            http.get(url)
                .header("x-api-key", pro)
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let (mut ok, mut out) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => out += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((ok, out), (50, 150));
    assert_eq!(usage(&b, &pro).await["credits"]["remaining"], 0);
}
