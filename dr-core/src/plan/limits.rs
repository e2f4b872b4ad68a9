//! The plan's `limits:` section: how many provider calls may be in flight at once, per
//! provider role and per target, over the executor's documented defaults
//! ([`Limits`](crate::executor::Limits)).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The provider roles a limit can name, and what a target of each is.
pub const LIMIT_ROLES: &[(&str, &str)] = &[
    ("database", "database region"),
    ("dns", "DNS zone"),
    ("cluster", "cluster"),
    ("store", "store"),
    ("notifier", "notification channel"),
    ("probe", "health probe"),
    ("cdn", "CDN distribution"),
    ("load_balancer", "load balancer target group"),
    ("nodes", "cluster"),
    ("volumes", "region"),
    ("secrets", "region"),
    ("caches", "region"),
];

/// Concurrency limits on provider calls, as a plan states them: a limit per provider role
/// (every target of the role) and per target (one database region, DNS zone, cluster API
/// server, store or notification channel). Whatever the plan leaves out keeps the
/// executor's default ([`Limits::default`](crate::executor::Limits)): 8 calls per database
/// region, 5 per DNS zone, 50 per cluster, 16 per store, 4 per notification channel, 16
/// health probes, 2 per CDN distribution, 10 per load balancer target group, 4 per
/// cluster's node groups, 10 volume snapshot and 10 secret manager calls per region, 4
/// managed cache calls per region.
///
/// A graph planned from the plan carries the section, and the executor (so also the dry
/// run's executor and the forecast's runs) applies it over its own limits.
///
/// ```yaml
/// limits:
///   defaults: { dns: 2, cluster: 100 }   # every DNS zone, every cluster
///   targets:
///     dns: { Z0SHOP: 1 }                 # this hosted zone: one change at a time
///     database: { us-east-1: 4 }         # RDS calls in this region
///     cluster: { dr-west: 200 }          # this cluster's API server
/// ```
///
/// Roles are `database` (targets: regions), `dns` (zones of the plan's DNS records),
/// `cluster` (clusters), `store` (stores), `notifier` (notification channels) and `probe`
/// (no targets). Validation refuses an unknown role or target and a limit of 0, naming the
/// entry (`limits.targets.dns.Z9: unknown DNS zone `Z9` …`).
///
/// # Examples
///
/// ```
/// use dr_core::plan::Plan;
///
/// let plan = Plan::from_yaml_str(r#"
/// name: shop
/// regions: [{ name: east, role: primary }, { name: west, role: secondary }]
/// dns: [{ name: api.example.com, zone: Z1 }]
/// services: []
/// scenarios: []
/// limits:
///   defaults: { cluster: 100 }
///   targets: { dns: { Z1: 1 } }
/// "#).unwrap();
/// plan.validate().unwrap();
/// let limits = plan.limits.as_ref().unwrap();
/// assert_eq!(limits.targets["dns"]["Z1"], 1);
///
/// let executor_limits = dr_core::executor::Limits::default().with_plan(limits);
/// assert_eq!(executor_limits.limit("dns", "Z1"), 1);
/// assert_eq!(executor_limits.limit("dns", "Z2"), 5);
/// assert_eq!(executor_limits.limit("cluster", "dr-west"), 100);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanLimits {
    /// Limit per provider role, for every target of the role (`dns: 2`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub defaults: BTreeMap<String, u32>,
    /// Limit per target, by role then target (`dns: { Z0SHOP: 1 }`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub targets: BTreeMap<String, BTreeMap<String, u32>>,
}

impl PlanLimits {
    /// No limit stated.
    pub fn is_empty(&self) -> bool {
        self.defaults.is_empty() && self.targets.values().all(BTreeMap::is_empty)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use crate::plan::{Plan, PlanBuilder, RegionRole};

    const BASE: &str = "name: shop
regions: [{ name: east, role: primary }, { name: west, role: secondary }]
clusters: [{ name: dr-west, region: west, ingress: lb.west.example.com }]
dns: [{ name: api.example.com, zone: Z0SHOP }]
notifications: [{ name: oncall }]
services: []
scenarios: []
";

    fn invalid(limits: &str) -> String {
        let plan =
            Plan::from_yaml_str(&format!("{BASE}{limits}")).unwrap_or_else(|e| panic!("{e}"));
        plan.validate().expect_err(limits).to_string()
    }

    #[test]
    fn every_format_reads_the_section() {
        let yaml = Plan::from_yaml_str(&format!(
            "{BASE}limits:\n  defaults: {{ dns: 2, cluster: 100 }}\n  targets:\n    dns: {{ Z0SHOP: 1 }}\n    database: {{ east: 4 }}\n"
        ))
        .unwrap();
        yaml.validate().unwrap();
        let limits = yaml.limits.clone().unwrap();
        assert_eq!(limits.defaults["cluster"], 100);
        assert_eq!(limits.targets["dns"]["Z0SHOP"], 1);
        assert_eq!(limits.targets["database"]["east"], 4);

        let json = Plan::from_json_str(&serde_json::to_string(&yaml).unwrap()).unwrap();
        assert_eq!(json.limits, yaml.limits);
        let again = Plan::from_yaml_str(&yaml.to_yaml().unwrap()).unwrap();
        assert_eq!(again.limits, yaml.limits);

        let toml = Plan::from_toml_str(
            "name = \"shop\"\nservices = []\nscenarios = []\n[[regions]]\nname = \"east\"\nrole = \"primary\"\n[[dns]]\nname = \"api.example.com\"\nzone = \"Z0SHOP\"\n[limits.defaults]\ncluster = 100\n[limits.targets.dns]\nZ0SHOP = 1\n",
        )
        .unwrap();
        toml.validate().unwrap();
        assert_eq!(toml.limits.unwrap().targets["dns"]["Z0SHOP"], 1);

        let built = PlanBuilder::new("shop")
            .region("east", RegionRole::Primary)
            .dns("api.example.com", "Z0SHOP")
            .limit("cluster", 100)
            .target_limit("dns", "Z0SHOP", 1)
            .build()
            .unwrap();
        assert_eq!(built.limits.unwrap().targets["dns"]["Z0SHOP"], 1);
    }

    #[test]
    fn a_malformed_section_is_a_parse_error_at_its_line() {
        let err = Plan::from_yaml_str(&format!("{BASE}limits:\n  defaults: {{ dns: two }}\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("limits.defaults.dns"), "{err}");
        assert!(err.contains(":9:"), "line of the entry: {err}");

        let err = Plan::from_yaml_str(&format!("{BASE}limits:\n  defaults: {{ dns: -1 }}\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("limits.defaults.dns"), "{err}");

        let err = Plan::from_yaml_str(&format!("{BASE}limits:\n  default: {{ dns: 1 }}\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `default`"), "{err}");
        assert!(err.contains("`defaults`"), "the fields it takes: {err}");
    }

    #[test]
    fn unknown_roles_and_targets_and_zero_are_refused_naming_the_entry() {
        let err = invalid("limits:\n  defaults: { dnz: 2, cluster: 0 }\n");
        assert!(
            err.contains("limits.defaults.dnz: unknown provider role `dnz` (did you mean `dns`?"),
            "{err}"
        );
        assert!(
            err.contains("limits.defaults.cluster: must be at least 1"),
            "{err}"
        );

        let err = invalid(
            "limits:\n  targets:\n    dns: { Z9: 1, Z0SHOP: 0 }\n    cluster: { dr-wst: 5 }\n    database: { mars: 2 }\n    notifier: { pager: 1 }\n    probe: { x: 1 }\n    kube: { dr-west: 1 }\n",
        );
        for needle in [
            "limits.targets.dns.Z9: unknown DNS zone `Z9` (known: Z0SHOP)",
            "limits.targets.dns.Z0SHOP: must be at least 1",
            "limits.targets.cluster.dr-wst: unknown cluster `dr-wst` (did you mean `dr-west`?",
            "limits.targets.database.mars: unknown database region `mars`",
            "limits.targets.notifier.pager: unknown notification channel `pager`",
            "limits.targets.probe: health probes have no targets",
            "limits.targets.kube: unknown provider role `kube`",
        ] {
            assert!(err.contains(needle), "missing `{needle}` in {err}");
        }
        assert!(err.contains("(7 problems)"), "{err}");
    }
}
