//! `UsageHistory`: the billing rows per UTC day, tenant, identity and route, exact under
//! concurrency, exported in one order and filtered by tenant.

use std::sync::Arc;

use apiauth_quota::{StatusClass, UsageEvent, UsageHistory, UsageRow};

fn event<'a>(
    day: u64,
    tenant: &'a str,
    identity: &'a str,
    route: &'a str,
    class: StatusClass,
    credits: u64,
) -> UsageEvent<'a> {
    UsageEvent {
        day,
        tenant,
        identity,
        route,
        class,
        credits,
    }
}

#[allow(clippy::too_many_arguments)]
fn row(
    day: &str,
    tenant: &str,
    identity: &str,
    route: &str,
    counts: [u64; 4],
    credits: u64,
) -> UsageRow {
    UsageRow {
        day: day.to_owned(),
        tenant: tenant.to_owned(),
        identity: identity.to_owned(),
        route: route.to_owned(),
        requests_2xx: counts[0],
        requests_4xx: counts[1],
        requests_5xx: counts[2],
        requests_other: counts[3],
        credits,
    }
}

/// 2026-12-03 and the day after, as days since the epoch.
const DAY: u64 = 20_790;

pub async fn usage_history_contract(history: Arc<dyn UsageHistory>) {
    assert!(history.export(None).await.unwrap().is_empty());
    let company = "/v1/companies/{domain}";
    for e in [
        event(
            DAY,
            "acme",
            "api_key::acme-pro",
            company,
            StatusClass::Success,
            1,
        ),
        event(
            DAY,
            "acme",
            "api_key::acme-pro",
            company,
            StatusClass::Success,
            1,
        ),
        event(
            DAY,
            "acme",
            "api_key::acme-pro",
            company,
            StatusClass::ClientError,
            0,
        ),
        event(
            DAY,
            "acme",
            "api_key::acme-pro",
            company,
            StatusClass::ServerError,
            0,
        ),
        event(
            DAY,
            "acme",
            "api_key::acme-pro",
            company,
            StatusClass::Redirection,
            0,
        ),
        event(
            DAY,
            "acme",
            "jwt:https://as:crm",
            "/v1/enrichments",
            StatusClass::Success,
            5,
        ),
        event(
            DAY,
            "initech",
            "api_key::acme-free",
            company,
            StatusClass::Success,
            1,
        ),
        event(
            DAY + 1,
            "acme",
            "api_key::acme-pro",
            company,
            StatusClass::Success,
            1,
        ),
        // A principal without a tenant.
        event(DAY, "", "basic::ops", "/v1/usage", StatusClass::Success, 0),
    ] {
        history.record(e).await.unwrap();
    }
    let all = history.export(None).await.unwrap();
    assert_eq!(
        all,
        [
            row("2026-12-03", "", "basic::ops", "/v1/usage", [1, 0, 0, 0], 0),
            row(
                "2026-12-03",
                "acme",
                "api_key::acme-pro",
                company,
                [2, 1, 1, 1],
                2
            ),
            row(
                "2026-12-03",
                "acme",
                "jwt:https://as:crm",
                "/v1/enrichments",
                [1, 0, 0, 0],
                5
            ),
            row(
                "2026-12-03",
                "initech",
                "api_key::acme-free",
                company,
                [1, 0, 0, 0],
                1
            ),
            row(
                "2026-12-04",
                "acme",
                "api_key::acme-pro",
                company,
                [1, 0, 0, 0],
                1
            ),
        ]
    );
    let initech = history.export(Some("initech")).await.unwrap();
    assert_eq!(
        initech,
        [row(
            "2026-12-03",
            "initech",
            "api_key::acme-free",
            company,
            [1, 0, 0, 0],
            1
        )]
    );
    assert!(history.export(Some("nobody")).await.unwrap().is_empty());

    // Exact under concurrency: 400 requests, half of them charged 2 credits.
    let mut tasks = Vec::new();
    for i in 0..400u64 {
        let h = history.clone();
        tasks.push(tokio::spawn(async move {
            let (class, credits) = if i % 2 == 0 {
                (StatusClass::Success, 2)
            } else {
                (StatusClass::ClientError, 0)
            };
            h.record(event(DAY + 2, "globex", "api_key::g", "/x", class, credits))
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        history.export(Some("globex")).await.unwrap(),
        [row(
            "2026-12-05",
            "globex",
            "api_key::g",
            "/x",
            [200, 200, 0, 0],
            400
        )]
    );
}
