//! Concurrency limits per target: how many provider calls may be in flight at once against
//! one database region, DNS zone, cluster API server, store or channel.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::Semaphore;

use crate::layer::{CallInfo, Guard, Layer};
use crate::Result;

/// Concurrency limits per target, applied to provider calls (not to steps: a step waiting
/// for a promotion to finish holds no slot between its polls). The executor puts them around
/// its providers as a [`Layer`].
///
/// Defaults, from the providers' documented rate limits and what one client can keep in
/// flight without being throttled: 8 calls per database region (RDS throttles its API per
/// account and region), 5 per DNS zone (Route 53 accepts five requests a second per
/// account), 50 per cluster (a kube API server admits 200 mutating requests in flight by
/// default; clients commonly keep well under), 16 per store, 4 per notification channel, 16
/// health probes, 2 per CDN distribution (CloudFront's update API allows a few calls a
/// second per account), 10 per load balancer target group (ELBv2 register/deregister),
/// 4 per cluster's node groups (EKS throttles its control-plane API per account), 10
/// volume snapshot calls per region (EC2 `CreateSnapshot` is rate limited per region),
/// 10 secret manager calls per region and 4 managed cache calls per region (ElastiCache
/// throttles its control-plane API per account and region). A plan's `limits:` section ([`PlanLimits`](crate::plan::PlanLimits))
/// is applied over these for the runs of its graphs ([`with_plan`](Self::with_plan)).
///
/// # Examples
///
/// ```
/// use dr_core::executor::Limits;
///
/// let limits = Limits::default()
///     .per_kind("dns", 2)
///     .per_target("cluster", "dr-west", 200);
/// assert_eq!(limits.limit("dns", "Z1"), 2);
/// assert_eq!(limits.limit("cluster", "dr-west"), 200);
/// assert_eq!(limits.limit("cluster", "other"), 50);
/// assert_eq!(Limits::unlimited().limit("database", "us-east-1"), usize::MAX);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    per_kind: BTreeMap<String, usize>,
    per_target: BTreeMap<(String, String), usize>,
}

impl Default for Limits {
    fn default() -> Self {
        let per_kind = [
            ("database", 8),
            ("dns", 5),
            ("cluster", 50),
            ("store", 16),
            ("notifier", 4),
            ("probe", 16),
            ("cdn", 2),
            ("load_balancer", 10),
            ("nodes", 4),
            ("volumes", 10),
            ("secrets", 10),
            ("caches", 4),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Limits {
            per_kind,
            per_target: BTreeMap::new(),
        }
    }
}

impl Limits {
    /// No limit on any target.
    pub fn unlimited() -> Self {
        Limits {
            per_kind: BTreeMap::new(),
            per_target: BTreeMap::new(),
        }
    }

    /// Sets the limit of every target of a provider role (`database`, `dns`, `cluster`,
    /// `store`, `notifier`, `probe`), at least 1.
    pub fn per_kind(mut self, role: impl Into<String>, limit: usize) -> Self {
        self.per_kind.insert(role.into(), limit.max(1));
        self
    }

    /// Sets the limit of one target (`"database", "us-east-1"`; `"dns", "Z0SHOP"`), at
    /// least 1.
    pub fn per_target(
        mut self,
        role: impl Into<String>,
        key: impl Into<String>,
        limit: usize,
    ) -> Self {
        self.per_target
            .insert((role.into(), key.into()), limit.max(1));
        self
    }

    /// These limits with a plan's `limits:` section applied over them: its per-role entries
    /// replace the role's limit and drop this value's per-target ones for that role (the
    /// plan's role-wide figure is the newer word), then its per-target entries are set.
    ///
    /// # Examples
    ///
    /// ```
    /// use dr_core::executor::Limits;
    /// use dr_core::plan::PlanLimits;
    ///
    /// let mut plan = PlanLimits::default();
    /// plan.defaults.insert("cluster".into(), 100);
    /// plan.targets.entry("dns".into()).or_default().insert("Z1".into(), 1);
    /// let limits = Limits::default().with_plan(&plan);
    /// assert_eq!(limits.limit("cluster", "dr-west"), 100);
    /// assert_eq!(limits.limit("dns", "Z1"), 1);
    /// assert_eq!(limits.limit("dns", "Z2"), 5);
    /// ```
    pub fn with_plan(mut self, plan: &crate::plan::PlanLimits) -> Self {
        for (role, &limit) in &plan.defaults {
            self.per_target.retain(|(r, _), _| r != role);
            self = self.per_kind(role.clone(), limit as usize);
        }
        for (role, targets) in &plan.targets {
            for (target, &limit) in targets {
                self = self.per_target(role.clone(), target.clone(), limit as usize);
            }
        }
        self
    }

    /// The limit of `role`'s target `key`.
    pub fn limit(&self, role: &str, key: &str) -> usize {
        self.per_target
            .get(&(role.to_string(), key.to_string()))
            .or_else(|| self.per_kind.get(role))
            .copied()
            .unwrap_or(usize::MAX)
    }

    /// A layer enforcing these limits for one run.
    pub(crate) fn start(&self) -> Arc<dyn Layer> {
        Arc::new(LiveLimits {
            limits: self.clone(),
            open: Mutex::new(HashMap::new()),
        })
    }
}

/// [`Limits`] being enforced: one semaphore per target.
#[derive(Debug)]
struct LiveLimits {
    limits: Limits,
    open: Mutex<HashMap<(&'static str, String), Arc<Semaphore>>>,
}

#[async_trait]
impl Layer for LiveLimits {
    async fn before(&self, call: &CallInfo) -> Result<Guard> {
        let limit = self.limits.limit(call.role, &call.key);
        if limit == usize::MAX {
            return Ok(None);
        }
        let sem = {
            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            open.entry((call.role, call.key.clone()))
                .or_insert_with(|| Arc::new(Semaphore::new(limit.min(Semaphore::MAX_PERMITS))))
                .clone()
        };
        match sem.acquire_owned().await {
            Ok(permit) => Ok(Some(Box::new(permit))),
            // Never closed; without a permit the call goes ahead unlimited.
            Err(_) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use async_trait::async_trait;
    use tokio::time::Instant;

    use crate::executor::Executor;
    use crate::layer::{CallInfo, Layer};
    use crate::plan::Plan;
    use crate::planner;
    use crate::sim::SimConfig;
    use crate::simulation::Simulation;

    /// Every call's role, key, start and end on the paused clock.
    #[derive(Debug, Default)]
    struct Spans(Mutex<Vec<(&'static str, String, Instant, Instant)>>);

    #[async_trait]
    impl Layer for Spans {
        fn after(
            &self,
            call: &CallInfo,
            _outcome: std::result::Result<(), &crate::Error>,
            elapsed: Duration,
        ) -> Option<crate::Error> {
            let end = Instant::now();
            self.0
                .lock()
                .unwrap()
                .push((call.role, call.key.clone(), end - elapsed, end));
            None
        }
    }

    impl Spans {
        /// The most calls on `role`'s target `key` in flight at one time, and how many
        /// calls there were.
        fn overlap(&self, role: &str, key: &str) -> (usize, usize) {
            let spans = self.0.lock().unwrap();
            let on: Vec<_> = spans
                .iter()
                .filter(|(r, k, ..)| *r == role && k == key)
                .collect();
            let most = on
                .iter()
                .map(|(_, _, start, _)| {
                    on.iter()
                        .filter(|(_, _, s, e)| s <= start && start < e)
                        .count()
                })
                .max()
                .unwrap_or(0);
            (most, on.len())
        }
    }

    /// Four services whose records are in zone Z1, four in Z2; region failover.
    fn plan(limits: &str) -> Plan {
        let mut yaml = String::from(
            "name: zones\nregions: [{ name: east, role: primary }, { name: west, role: secondary }]\ndns:\n",
        );
        let names: Vec<String> = (0..4)
            .flat_map(|i| [format!("a{i}"), format!("b{i}")])
            .collect();
        for n in &names {
            let zone = if n.starts_with('a') { "Z1" } else { "Z2" };
            yaml.push_str(&format!(
                "  - {{ name: {n}.example.com, zone: {zone}, targets: {{ east: lb.east.example.com, west: lb.west.example.com }} }}\n"
            ));
        }
        yaml.push_str("services:\n");
        for n in &names {
            yaml.push_str(&format!(
                "  - {{ name: {n}, rto: 1h, rpo: 1h, dns: [{n}.example.com] }}\n"
            ));
        }
        yaml.push_str(
            "scenarios: [{ name: failover, kind: region-failover, from: east, to: west }]\n",
        );
        yaml.push_str(limits);
        let plan = Plan::from_yaml_str(&yaml).unwrap_or_else(|e| panic!("{e}"));
        plan.validate().unwrap_or_else(|e| panic!("{e}"));
        plan
    }

    async fn run(plan: &Plan) -> Arc<Spans> {
        let sim = Simulation::new(plan, 3, SimConfig::default());
        sim.inject(plan.scenario("failover").unwrap()).await;
        let observed = sim.observe().await;
        let graph = planner::plan(plan, "failover", &observed).unwrap();
        let spans = Arc::new(Spans::default());
        let report = Executor::new(sim.providers().layer(spans.clone()))
            .clock(sim.cloud().clock())
            .run(&graph)
            .await;
        assert!(report.succeeded(), "{report}");
        spans
    }

    #[tokio::test(start_paused = true)]
    async fn a_plan_limit_of_one_serialises_its_target_while_others_run_concurrently() {
        let limited = run(&plan("limits: { targets: { dns: { Z1: 1 } } }\n")).await;
        let (z1, calls) = limited.overlap("dns", "Z1");
        assert!(calls >= 4, "every switch calls zone Z1: {calls}");
        assert_eq!(z1, 1, "zone Z1's calls one at a time");
        let (z2, _) = limited.overlap("dns", "Z2");
        assert!(z2 >= 2, "zone Z2 keeps its default limit: {z2} at once");

        // Without the section, zone Z1 runs as Z2 does: the limit is what serialised it.
        let free = run(&plan("")).await;
        let (z1, _) = free.overlap("dns", "Z1");
        assert!(z1 >= 2, "{z1}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_forecast_runs_within_the_plan_limits() {
        let opts = crate::forecast::ForecastOptions { runs: 5, seed: 9 };
        let free = crate::forecast::forecast(&plan(""), "failover", &opts)
            .await
            .unwrap();
        let limited = crate::forecast::forecast(
            &plan("limits: { defaults: { dns: 1 } }\n"),
            "failover",
            &opts,
        )
        .await
        .unwrap();
        let (free, limited) = (free.recovery.p50.unwrap(), limited.recovery.p50.unwrap());
        // Eight switches, one call at a time instead of all at once.
        assert!(limited > free, "{limited:?} against {free:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_role_wide_plan_limit_holds_every_target_of_the_role() {
        let limited = run(&plan("limits: { defaults: { dns: 1 } }\n")).await;
        assert_eq!(limited.overlap("dns", "Z1").0, 1);
        assert_eq!(limited.overlap("dns", "Z2").0, 1);
    }
}
