//! The scenario kinds, one module each: its parameters (a typed variant of
//! [`ScenarioKind`], so a missing or misspelled parameter is a parse error with its line and
//! column), its checks against the rest of the plan, its recovery graph as the runbooks
//! perform it, the incident it recovers from on the simulated cloud, and a sentence on that
//! incident.
//!
//! Adding a kind means adding its module (a parameter struct implementing [`Kind`]) and one
//! line in the [`kinds!`] registration below.

mod common;

mod application_rollback;
mod backup;
mod cache_failure;
mod cluster_rebuild;
mod database_failure;
mod dump_restore;
mod failback;
mod node_group_failure;
mod point_in_time_restore;
mod provider_outage;
mod region_failover;
mod security_isolation;
mod service_restart;

pub use application_rollback::ApplicationRollback;
pub use backup::Backup;
pub use cache_failure::CacheFailure;
pub use cluster_rebuild::ClusterRebuild;
pub use database_failure::DatabaseFailure;
pub use dump_restore::DumpRestore;
pub use failback::Failback;
pub(crate) use node_group_failure::is_spare;
pub use node_group_failure::NodeGroupFailure;
pub use point_in_time_restore::PointInTimeRestore;
pub use provider_outage::ProviderOutage;
pub use region_failover::RegionFailover;
pub use security_isolation::SecurityIsolation;
pub use service_restart::ServiceRestart;

use std::future::Future;

use super::build::GraphBuilder;
use super::PlanningError;
use crate::plan::validate::ScenarioChecks;
use crate::plan::Plan;
use crate::provider::Severity;
use crate::simulation::Simulation;

pub(crate) type Result<T, E = PlanningError> = std::result::Result<T, E>;

/// What one scenario kind knows about itself.
pub(crate) trait Kind {
    /// Adds the kind's steps to `g` (the approval gate and notifications included; the
    /// end notifications and the plan's own steps are added after).
    fn build(&self, g: &mut GraphBuilder<'_>) -> Result<()>;

    /// Checks the parameters against the rest of the plan: every name they refer to is
    /// declared, and the combination makes sense.
    fn validate(&self, c: &mut ScenarioChecks<'_>);

    /// Breaks, on the simulated cloud, what the scenario recovers from.
    fn inject(&self, sim: &Simulation) -> impl Future<Output = ()> + Send;

    /// One sentence on the incident the scenario recovers from.
    fn incident(&self, plan: &Plan) -> String;

    /// How loud its start notification is.
    fn severity(&self) -> Severity {
        Severity::Warning
    }
}

/// The registration: one line per kind, `Variant(Type) = "name-in-plans"`.
macro_rules! kinds {
    ($( $(#[$doc:meta])* $variant:ident($ty:ty) = $name:literal, )*) => {
        /// A scenario's kind with its parameters, written in plans as `kind: NAME` beside
        /// the parameters of that kind.
        ///
        /// # Examples
        ///
        /// ```
        /// use dr_core::plan::{Plan, ScenarioKind};
        ///
        /// let plan = Plan::from_yaml_str(r#"
        /// name: shop
        /// regions: [{ name: east, role: primary }, { name: west, role: secondary }]
        /// services: []
        /// scenarios: [{ name: failover, kind: region-failover, from: east, to: west }]
        /// "#).unwrap();
        /// let ScenarioKind::RegionFailover(k) = &plan.scenarios[0].kind else { panic!() };
        /// assert_eq!((k.from.as_str(), k.to.as_str()), ("east", "west"));
        /// assert_eq!(plan.scenarios[0].kind.name(), "region-failover");
        ///
        /// // A missing parameter is a parse error at the scenario.
        /// let err = Plan::from_yaml_str(r#"
        /// name: shop
        /// regions: [{ name: east, role: primary }]
        /// services: []
        /// scenarios: [{ name: failover, kind: region-failover, from: east }]
        /// "#).unwrap_err();
        /// assert!(err.to_string().contains("missing field `to`"), "{err}");
        /// ```
        #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(tag = "kind")]
        #[non_exhaustive]
        pub enum ScenarioKind {
            $(
                $(#[$doc])*
                #[serde(rename = $name)]
                $variant($ty),
            )*
        }

        impl ScenarioKind {
            /// Every kind's name, as written in plans.
            pub const NAMES: &'static [&'static str] = &[$($name),*];

            /// The kind's name as written in plans (`region-failover`).
            pub fn name(&self) -> &'static str {
                match self {
                    $(ScenarioKind::$variant(_) => $name,)*
                }
            }

            /// One sentence on the incident the scenario recovers from.
            pub fn incident(&self, plan: &Plan) -> String {
                match self {
                    $(ScenarioKind::$variant(k) => k.incident(plan),)*
                }
            }

            pub(crate) fn severity(&self) -> Severity {
                match self {
                    $(ScenarioKind::$variant(k) => k.severity(),)*
                }
            }

            pub(crate) fn validate(&self, c: &mut ScenarioChecks<'_>) {
                match self {
                    $(ScenarioKind::$variant(k) => k.validate(c),)*
                }
            }

            pub(crate) async fn inject(&self, sim: &Simulation) {
                match self {
                    $(ScenarioKind::$variant(k) => k.inject(sim).await,)*
                }
            }

            fn build(&self, g: &mut GraphBuilder<'_>) -> Result<()> {
                match self {
                    $(ScenarioKind::$variant(k) => k.build(g),)*
                }
            }
        }

        $(
            impl From<$ty> for ScenarioKind {
                fn from(k: $ty) -> Self {
                    ScenarioKind::$variant(k)
                }
            }
        )*
    };
}

kinds! {
    /// A whole region is lost: promote or restore in the DR region, bring workloads up there,
    /// switch DNS, then create a new replica of each promoted database.
    RegionFailover(RegionFailover) = "region-failover",
    /// A database fails: reboot, or promote a replica or restore a snapshot, then repoint the
    /// app.
    DatabaseFailure(DatabaseFailure) = "database-failure",
    /// Data was corrupted: scale the app down, restore to a point in time, repoint, scale up.
    PointInTimeRestore(PointInTimeRestore) = "point-in-time-restore",
    /// A cluster is lost: apply the workloads on another cluster, restore secrets, switch DNS.
    ClusterRebuild(ClusterRebuild) = "cluster-rebuild",
    /// A release went bad: roll the service's workloads back.
    ApplicationRollback(ApplicationRollback) = "application-rollback",
    /// A service is compromised: isolate, take evidence, scale to 0, redeploy clean after
    /// approval.
    SecurityIsolation(SecurityIsolation) = "security-isolation",
    /// Pods misbehave: restart the service's workloads.
    ServiceRestart(ServiceRestart) = "service-restart",
    /// After a region failover, with the home region back: replicate towards it, freeze
    /// writes, switch back once nothing newer is left behind, restore the DR replica.
    Failback(Failback) = "failback",
    /// A database is lost or unusable: verify its newest dump in a store, restore it into a
    /// new instance, repoint the app.
    DumpRestore(DumpRestore) = "dump-restore",
    /// The backup procedure: snapshot, copy to the DR region, export the clusters' objects,
    /// verify every manifest, prune by retention.
    Backup(Backup) = "backup",
    /// The cache stops answering: degraded mode on, the cache back and warmed up, degraded
    /// mode off.
    CacheFailure(CacheFailure) = "cache-failure",
    /// A third-party provider is down: a circuit breaker trips, the service falls back,
    /// users are told, and it switches back once the provider is healthy again.
    ProviderOutage(ProviderOutage) = "provider-outage",
    /// A node group stops serving: a replacement group is scaled up and ready, then only
    /// the NotReady nodes of the failed group are cordoned and drained.
    NodeGroupFailure(NodeGroupFailure) = "node-group-failure",
}

/// Adds the scenario's steps and its end notifications.
pub(super) fn build(g: &mut GraphBuilder<'_>) -> Result<()> {
    let scenario = g.scenario;
    scenario.kind.build(g)?;
    common::epilogue(g);
    Ok(())
}
