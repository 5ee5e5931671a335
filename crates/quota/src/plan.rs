//! Plans as data: what a tenant (or identity) may do, and how a [`Principal`] finds its plan.

use std::collections::HashMap;
use std::sync::Arc;

use apiauth_core::{AuthMethod, Principal};

use crate::credits::{CreditAllowance, Scope};
use crate::policy::QuotaPolicy;

/// A plan: a GCRA rate limit, optionally a credit allowance, and whose they are.
///
/// The rate limit is what [`QuotaLayerBuilder::plans`](crate::QuotaLayerBuilder::plans)
/// applies to the plan's principals; the allowance is what [`Credits`](crate::Credits)
/// charges; the [`Scope`] keys both (one bucket and one balance per tenant, or per identity).
///
/// ```
/// use apiauth_quota::{CreditAllowance, Plan, QuotaPolicy, Scope};
///
/// let free = Plan::new(QuotaPolicy::per_minute(20).burst(20))
///     .credits(CreditAllowance::per_month(100));
/// assert_eq!(free.scope(), Scope::Tenant);
/// assert_eq!(free.allowance().unwrap().amount, 100);
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Plan {
    rate: QuotaPolicy,
    credits: Option<CreditAllowance>,
    scope: Scope,
}

impl Plan {
    /// A plan with this rate limit, no credits, shared by every credential of a tenant.
    pub fn new(rate: QuotaPolicy) -> Self {
        Self {
            rate,
            credits: None,
            scope: Scope::Tenant,
        }
    }

    /// Gives the plan a credit allowance.
    pub fn credits(mut self, allowance: CreditAllowance) -> Self {
        self.credits = Some(allowance);
        self
    }

    /// Whose limits they are. Default: [`Scope::Tenant`].
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// Sets whose limits they are.
    pub fn with_scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }

    /// The GCRA rate limit.
    pub fn rate(&self) -> &QuotaPolicy {
        &self.rate
    }

    /// The credit allowance, if the plan sells credits.
    pub fn allowance(&self) -> Option<CreditAllowance> {
        self.credits
    }
}

/// The plans of a deployment and who is on which.
///
/// A principal's plan is found in this order: the plan assigned to its tenant
/// ([`tenant`](Self::tenant)), else the plan it carries ([`Principal::plan`], from its key
/// record or token). Its tenant is [`Principal::tenant`], else the tenant a
/// [`member`](Self::member) assignment names for its method and subject (for credentials
/// whose records carry no tenant, such as OAuth clients).
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct Plans {
    plans: HashMap<String, Arc<Plan>>,
    tenants: HashMap<String, String>,
    /// Method → subject → tenant: looked up by borrowed strings, no allocation per request.
    members: HashMap<&'static str, HashMap<String, String>>,
}

/// A principal's plan, as [`Plans::resolve`] found it.
#[derive(Debug, Clone)]
pub struct Resolved<'a> {
    /// The plan's name.
    pub name: &'a str,
    /// The plan.
    pub plan: &'a Arc<Plan>,
    /// The principal's tenant, if known.
    pub tenant: Option<&'a str>,
}

impl Resolved<'_> {
    /// The key of the balance (and bucket) the principal draws on: `tenant:<t>` under
    /// [`Scope::Tenant`] (its identity when it has no tenant), else `id:<identity>`.
    #[must_use]
    pub fn key(&self, principal: &Principal) -> String {
        match (self.plan.scope(), self.tenant) {
            (Scope::Tenant, Some(t)) => tenant_key(t),
            _ => format!("id:{}", crate::layer::usage_key(principal)),
        }
    }
}

/// The balance key of a tenant under [`Scope::Tenant`].
#[must_use]
pub fn tenant_key(tenant: &str) -> String {
    format!("tenant:{tenant}")
}

impl Plans {
    /// No plans.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) plan `name`.
    pub fn plan(mut self, name: impl Into<String>, plan: Plan) -> Self {
        self.plans.insert(name.into(), Arc::new(plan));
        self
    }

    /// Puts `tenant` on plan `plan`.
    pub fn tenant(mut self, tenant: impl Into<String>, plan: impl Into<String>) -> Self {
        self.tenants.insert(tenant.into(), plan.into());
        self
    }

    /// Names the tenant of principals of `method` with `subject` that carry none.
    pub fn member(
        mut self,
        method: AuthMethod,
        subject: impl Into<String>,
        tenant: impl Into<String>,
    ) -> Self {
        self.members
            .entry(method.as_str())
            .or_default()
            .insert(subject.into(), tenant.into());
        self
    }

    /// Changes the credit allowance of plan `name` (no-op for an unknown plan).
    pub fn set_allowance(mut self, name: &str, amount: u64) -> Self {
        if let Some(p) = self.plans.get_mut(name) {
            let mut plan = Plan::clone(p);
            let period = plan
                .credits
                .map_or(crate::RefillPeriod::Month, |c| c.period);
            plan.credits = Some(CreditAllowance { amount, period });
            *p = Arc::new(plan);
        }
        self
    }

    /// Changes the rate limit of plan `name`, or adds a plan with only this rate limit
    /// when there is none of that name.
    pub fn set_rate(mut self, name: &str, rate: QuotaPolicy) -> Self {
        let plan = match self.plans.get(name) {
            Some(p) => {
                let mut plan = Plan::clone(p);
                plan.rate = rate;
                plan
            }
            None => Plan::new(rate),
        };
        self.plans.insert(name.to_owned(), Arc::new(plan));
        self
    }

    /// Plan `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Plan>> {
        self.plans.get(name)
    }

    /// Every plan, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Plan)> {
        self.plans.iter().map(|(n, p)| (n.as_str(), &**p))
    }

    /// The plan tenant `tenant` is on.
    pub fn plan_of_tenant(&self, tenant: &str) -> Option<(&str, &Arc<Plan>)> {
        let name = self.tenants.get(tenant)?;
        Some((name.as_str(), self.plans.get(name)?))
    }

    /// The tenant of `principal`: its own, else its [`member`](Self::member) assignment.
    pub fn tenant_of<'a>(&'a self, principal: &'a Principal) -> Option<&'a str> {
        principal.tenant().or_else(|| {
            self.members
                .get(principal.method().as_str())
                .and_then(|m| m.get(principal.subject()))
                .map(String::as_str)
        })
    }

    /// The plan of `principal`, or `None` when neither its tenant nor itself names a known
    /// plan.
    pub fn resolve<'a>(&'a self, principal: &'a Principal) -> Option<Resolved<'a>> {
        let tenant = self.tenant_of(principal);
        let (name, plan) = tenant
            .and_then(|t| self.tenants.get_key_value(t))
            .and_then(|(_, n)| self.plans.get_key_value(n))
            .or_else(|| principal.plan().and_then(|n| self.plans.get_key_value(n)))?;
        Some(Resolved {
            name: name.as_str(),
            plan,
            tenant,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_plan_wins_over_the_principals_and_members_find_their_tenant() {
        let plans = Plans::new()
            .plan("free", Plan::new(QuotaPolicy::per_minute(20)))
            .plan("pro", Plan::new(QuotaPolicy::per_second(100)))
            .tenant("acme", "pro")
            .member(AuthMethod::JWT, "crm", "acme");
        let key = Principal::builder("k", AuthMethod::API_KEY)
            .tenant("acme")
            .plan("free")
            .build();
        assert_eq!(plans.resolve(&key).unwrap().name, "pro");
        let client = Principal::builder("crm", AuthMethod::JWT).build();
        let r = plans.resolve(&client).unwrap();
        assert_eq!((r.name, r.tenant), ("pro", Some("acme")));
        assert_eq!(r.key(&client), "tenant:acme");
        let loner = Principal::builder("x", AuthMethod::API_KEY)
            .plan("free")
            .build();
        let r = plans.resolve(&loner).unwrap();
        assert_eq!(r.key(&loner), "id:api_key::x");
        assert!(
            plans
                .resolve(&Principal::builder("y", AuthMethod::BASIC).build())
                .is_none()
        );
    }
}
