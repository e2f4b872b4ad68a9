//! The DR plan: data a user writes in YAML, TOML or JSON, or builds in Rust.
//!
//! # Examples
//!
//! ```
//! use dr_core::plan::Plan;
//!
//! let plan = Plan::from_yaml_str(r#"
//! name: shop
//! regions:
//!   - { name: us-east-1, role: primary }
//!   - { name: us-west-2, role: secondary }
//! databases:
//!   - name: orders-db
//!     region: us-east-1
//!     replicas: [{ id: orders-db-west, region: us-west-2 }]
//! services:
//!   - { name: orders, tier: critical, rto: 30m, rpo: 5m, database: orders-db }
//! scenarios:
//!   - { name: region-failover, kind: region-failover, from: us-east-1, to: us-west-2 }
//! "#).unwrap();
//! plan.validate().unwrap();
//! assert_eq!(plan.services[0].rto.to_string(), "30m");
//! ```

mod builder;
mod checks;
pub(crate) mod deps;
mod latency;
mod limits;
mod lint;
mod load;
mod lookup;
mod model;
mod trigger;
pub(crate) mod validate;

use std::path::Path;

use crate::step::StepRegistry;

pub use builder::PlanBuilder;
pub use checks::{DataCheck, DataCheckKind};
pub use latency::{ForecastConfig, LatencyDist};
pub use limits::{PlanLimits, LIMIT_ROLES};
pub use load::{Format, PlanError, Problem, MAX_DEPTH, MAX_PLAN_BYTES};
pub use model::{
    Backups, CacheDef, CdnDef, ChannelDef, Cluster, CredentialDef, Database, DbStrategy,
    DnsRecordDef, HealthCheckDef, Interlock, LoadBalancerDef, NodeGroup, Pitr, Plan, PlanStep,
    Region, RegionRole, Replica, Scenario, ScenarioKind, SecretBinding, Service, StandbyScaling,
    StepRetry, StoreDef, Tier, VolumeDef, Workload,
};
pub use trigger::{Trigger, TriggerStart, TriggerWhen};
pub use validate::{MAX_NAME_LEN, MAX_PROBLEMS};

/// The parameters of each scenario kind (one type per kind, a variant of [`ScenarioKind`]).
pub use crate::planner::scenarios::{
    ApplicationRollback, Backup, CacheFailure, ClusterRebuild, DatabaseFailure, DumpRestore,
    Failback, NodeGroupFailure, PointInTimeRestore, ProviderOutage, RegionFailover,
    SecurityIsolation, ServiceRestart,
};

use lookup::Section;

impl Plan {
    /// Parses a plan from text in `format`; `file` names the source in errors.
    ///
    /// Text longer than [`MAX_PLAN_BYTES`], nested deeper than [`MAX_DEPTH`] or empty is
    /// refused before it reaches the parser, so the cost stays linear in the input.
    ///
    /// # Errors
    /// [`PlanError::Parse`] with the line, column and field at fault and what to write
    /// instead; [`PlanError::TooLarge`].
    pub fn parse(text: &str, format: Format, file: &str) -> Result<Plan, PlanError> {
        load::parse(text, format, file)
    }

    /// Parses YAML.
    ///
    /// # Errors
    /// [`PlanError::Parse`].
    pub fn from_yaml_str(text: &str) -> Result<Plan, PlanError> {
        Self::parse(text, Format::Yaml, "<yaml>")
    }

    /// Parses TOML.
    ///
    /// # Errors
    /// [`PlanError::Parse`].
    pub fn from_toml_str(text: &str) -> Result<Plan, PlanError> {
        Self::parse(text, Format::Toml, "<toml>")
    }

    /// Parses JSON.
    ///
    /// # Errors
    /// [`PlanError::Parse`].
    pub fn from_json_str(text: &str) -> Result<Plan, PlanError> {
        Self::parse(text, Format::Json, "<json>")
    }

    /// Reads, parses and validates a plan file; the format follows the extension.
    ///
    /// # Errors
    /// [`PlanError::Read`], [`PlanError::UnknownFormat`], [`PlanError::Parse`] or
    /// [`PlanError::Invalid`] (every problem, naming the file).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let plan = dr_core::plan::Plan::load("examples/plans/region-failover.yaml")?;
    /// # Ok::<(), dr_core::plan::PlanError>(())
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<Plan, PlanError> {
        Self::load_with(path, &StepRegistry::builtin())
    }

    /// [`load`](Self::load), with the step kinds of `registry` allowed in the plan's own
    /// steps (an unknown kind is a problem naming the step and the registered kinds).
    ///
    /// # Errors
    /// As [`load`](Self::load).
    pub fn load_with(path: impl AsRef<Path>, registry: &StepRegistry) -> Result<Plan, PlanError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let format = Format::from_path(path)
            .ok_or_else(|| PlanError::UnknownFormat { file: file.clone() })?;
        let text = load::read(path, &file, format)?;
        let plan = Self::parse(&text, format, &file)?;
        let (problems, omitted) = validate::problems(&plan, registry);
        if problems.is_empty() && omitted == 0 {
            Ok(plan)
        } else {
            Err(PlanError::Invalid {
                file,
                problems,
                omitted,
            })
        }
    }

    /// Checks the plan's meaning and returns every problem at once: unknown references,
    /// duplicate names, dependency cycles (naming their members), zero or out-of-range
    /// durations, scenarios missing a parameter or failing over a region into itself, plan
    /// steps of unknown kinds or with bad parameters. Targets the plan's protection cannot
    /// meet are not problems of the plan: the planner's forecast reports them as risks.
    ///
    /// # Errors
    /// [`PlanError::Invalid`] listing all problems.
    pub fn validate(&self) -> Result<(), PlanError> {
        self.validate_with(&StepRegistry::builtin())
    }

    /// [`validate`](Self::validate), with the step kinds of `registry`.
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    pub fn validate_with(&self, registry: &StepRegistry) -> Result<(), PlanError> {
        let (problems, omitted) = validate::problems(self, registry);
        if problems.is_empty() && omitted == 0 {
            Ok(())
        } else {
            Err(PlanError::Invalid {
                file: format!("plan `{}`", self.name),
                problems,
                omitted,
            })
        }
    }

    /// Serialises to YAML.
    ///
    /// # Errors
    /// Never for a plan built from this crate's types; the serialiser's error otherwise.
    pub fn to_yaml(&self) -> Result<String, serde_yaml_ng::Error> {
        serde_yaml_ng::to_string(self)
    }

    /// The service named `name`.
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.lookup
            .find(Section::Services, &self.services, |x| &x.name, name)
    }

    /// The database named `name`.
    pub fn database(&self, name: &str) -> Option<&Database> {
        self.lookup
            .find(Section::Databases, &self.databases, |x| &x.name, name)
    }

    /// The region named `name`.
    pub fn region(&self, name: &str) -> Option<&Region> {
        self.lookup
            .find(Section::Regions, &self.regions, |x| &x.name, name)
    }

    /// The cluster named `name`.
    pub fn cluster(&self, name: &str) -> Option<&Cluster> {
        self.lookup
            .find(Section::Clusters, &self.clusters, |x| &x.name, name)
    }

    /// The DNS record named `name`.
    pub fn dns_record(&self, name: &str) -> Option<&DnsRecordDef> {
        self.lookup.find(Section::Dns, &self.dns, |x| &x.name, name)
    }

    /// The CDN distribution named `name` (its plan name, not its id).
    pub fn cdn_distribution(&self, name: &str) -> Option<&CdnDef> {
        self.cdn.iter().find(|c| c.name == name)
    }

    /// The managed cache named `name`.
    pub fn cache(&self, name: &str) -> Option<&CacheDef> {
        self.caches.iter().find(|c| c.name == name)
    }

    /// The load balancer target group named `name` (its plan name, not its ARN).
    pub fn load_balancer(&self, name: &str) -> Option<&LoadBalancerDef> {
        self.load_balancers.iter().find(|l| l.name == name)
    }

    /// The health check named `name`.
    pub fn health_check(&self, name: &str) -> Option<&HealthCheckDef> {
        self.lookup.find(
            Section::HealthChecks,
            &self.health_checks,
            |x| &x.name,
            name,
        )
    }

    /// The scenario named `name`.
    pub fn scenario(&self, name: &str) -> Option<&Scenario> {
        self.lookup
            .find(Section::Scenarios, &self.scenarios, |x| &x.name, name)
    }

    /// The workload `name` on the cluster named `cluster`.
    ///
    /// # Examples
    ///
    /// ```
    /// # let plan = dr_core::plan::Plan::from_yaml_str(r#"
    /// # name: shop
    /// # regions: [{ name: east, role: primary }]
    /// # clusters: [{ name: k8s, region: east, ingress: lb, workloads: [{ name: api, namespace: shop, replicas: 2 }] }]
    /// # services: []
    /// # scenarios: []
    /// # "#).unwrap();
    /// assert_eq!(plan.workload("k8s", "api").map(|w| w.replicas), Some(2));
    /// assert!(plan.workload("k8s", "web").is_none());
    /// ```
    pub fn workload(&self, cluster: &str, name: &str) -> Option<&Workload> {
        let c = self.cluster(cluster)?;
        let at = self.clusters.iter().position(|x| std::ptr::eq(x, c))?;
        self.lookup.workload(&self.clusters, at, name)
    }

    /// The first cluster in `region`.
    pub fn cluster_in(&self, region: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.region == region)
    }

    /// The primary region (the first region with role primary).
    pub fn primary_region(&self) -> Option<&Region> {
        self.regions.iter().find(|r| r.role == RegionRole::Primary)
    }

    /// The estimate for a step kind: the plan's (`estimates:`), else `default`.
    pub fn estimate(&self, kind: &str, default: std::time::Duration) -> std::time::Duration {
        self.estimates.get(kind).map(|d| d.get()).unwrap_or(default)
    }

    /// The timeout of one attempt of a step kind: the plan's (`timeouts:`), else `default`.
    pub fn timeout(&self, kind: &str, default: std::time::Duration) -> std::time::Duration {
        self.timeouts.get(kind).map(|d| d.get()).unwrap_or(default)
    }

    /// The estimate of `action`: the plan's for its kind, else the kind's default.
    pub fn estimate_of(&self, action: &crate::step::Action) -> std::time::Duration {
        self.estimate(action.kind(), action.default_estimate())
    }

    /// The timeout of one attempt of `action`: the plan's for its kind; else three times the
    /// plan's estimate when the plan gives one, at least a minute; else the kind's default.
    pub fn timeout_of(&self, action: &crate::step::Action) -> std::time::Duration {
        if let Some(t) = self.timeouts.get(action.kind()) {
            return t.get();
        }
        match self.estimates.get(action.kind()) {
            Some(e) => e
                .get()
                .saturating_mul(3)
                .max(std::time::Duration::from_secs(60)),
            None => action.default_timeout(),
        }
    }

    /// The value a DNS record takes when `region` serves: its explicit target, else the
    /// ingress of the region's cluster.
    pub fn dns_target(&self, record: &DnsRecordDef, region: &str) -> Option<String> {
        record
            .targets
            .get(region)
            .cloned()
            .or_else(|| self.cluster_in(region).map(|c| c.ingress.clone()))
    }
}
