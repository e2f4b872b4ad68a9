//! The layer that keeps a drill off production.

use std::collections::BTreeSet;

use async_trait::async_trait;

use crate::layer::{CallInfo, Guard, Layer};
use crate::plan::Plan;
use crate::provider::Operation;
use crate::{Error, Result};

/// The resources of a plan that are production: every database instance and replica, every
/// namespace its workloads run in, every DNS record, every notification channel, every CDN
/// distribution and load balancer target group, every cluster's nodes and node groups, every
/// managed cache and the ids its restores would take.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Production {
    /// `region/instance`.
    pub databases: BTreeSet<String>,
    /// `cluster/namespace`.
    pub namespaces: BTreeSet<String>,
    /// `zone/name`.
    pub records: BTreeSet<String>,
    /// Channel names.
    pub channels: BTreeSet<String>,
    /// CDN distribution ids.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub distributions: BTreeSet<String>,
    /// Target group ARNs or names.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub target_groups: BTreeSet<String>,
    /// Clusters whose nodes and node groups are production (every cluster of the plan).
    pub clusters: BTreeSet<String>,
    /// `region/id` of every managed cache and of every id a restore of one would create.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub caches: BTreeSet<String>,
}

impl Production {
    /// Everything `plan` declares.
    pub fn of(plan: &Plan) -> Self {
        let mut p = Production::default();
        for db in &plan.databases {
            p.databases
                .insert(format!("{}/{}", db.region, db.instance()));
            for r in &db.replicas {
                p.databases.insert(format!("{}/{}", r.region, r.id));
            }
        }
        for c in &plan.clusters {
            p.clusters.insert(c.name.clone());
            for w in &c.workloads {
                p.namespaces.insert(format!("{}/{}", c.name, w.namespace));
            }
        }
        for r in &plan.dns {
            p.records.insert(format!("{}/{}", r.zone, r.name));
        }
        for n in &plan.notifications {
            p.channels.insert(n.name.clone());
        }
        p.distributions
            .extend(plan.cdn.iter().map(|c| c.distribution.clone()));
        p.target_groups
            .extend(plan.load_balancers.iter().map(|l| l.target_group.clone()));
        for c in &plan.caches {
            p.caches.insert(format!("{}/{}", c.region, c.id));
            for (region, id) in &c.restore {
                p.caches.insert(format!("{region}/{id}"));
            }
        }
        p
    }

    /// The production resource `call` would change, if any. Reads (describe, list, get,
    /// status, probe, export, copying a snapshot) change nothing and are never flagged.
    pub fn changed_by(&self, call: &CallInfo) -> Option<String> {
        use Operation::*;
        let first = call.target.split_whitespace();
        let db = || {
            call.target
                .strip_prefix("database ")
                .and_then(|t| t.split_whitespace().next())
                .map(str::to_string)
        };
        let namespace_of = |path: &str| {
            let mut parts = path.splitn(3, '/');
            match (parts.next(), parts.next()) {
                (Some(c), Some(ns)) => Some(format!("{c}/{ns}")),
                _ => None,
            }
        };
        match call.operation {
            CreateSnapshot | RestoreSnapshot | RestorePointInTime | Promote | Reboot
            | CreateReplica => db().filter(|d| self.databases.contains(d)),
            SwitchRecord => Some(call.target.clone()).filter(|r| self.records.contains(r)),
            Scale | RolloutRestart | RolloutUndo | SetImage | SetEnv | IsolateWorkload => first
                .last()
                .and_then(namespace_of)
                .filter(|ns| self.namespaces.contains(ns)),
            Apply | PatchSecret | DeletePod => {
                namespace_of(&call.target).filter(|ns| self.namespaces.contains(ns))
            }
            Notify => Some(call.target.clone()).filter(|c| self.channels.contains(c)),
            // `ID -> ORIGIN`, `GROUP [TARGETS]`.
            SetOrigin => call
                .target
                .split_whitespace()
                .next()
                .filter(|d| self.distributions.contains(*d))
                .map(|d| format!("distribution {d}")),
            RegisterTargets | DeregisterTargets => call
                .target
                .split_whitespace()
                .next()
                .filter(|g| self.target_groups.contains(*g))
                .map(|g| format!("target group {g}")),
            ScaleNodeGroup | CordonNode | DrainNode => {
                Some(call.target.clone()).filter(|_| self.clusters.contains(&call.key))
            }
            // `REGION/ID`.
            RestoreCache => Some(call.target.clone())
                .filter(|c| self.caches.contains(c))
                .map(|c| format!("cache {c}")),
            _ => None,
        }
    }
}

/// A [`Layer`] that refuses, before it is sent, every call that would change a production
/// resource ([`Production::changed_by`]): the call fails with [`Error::Unauthorized`]
/// (permanent, so nothing retries it) and never reaches the provider.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::sync::Arc;
/// use dr_core::drill::{Production, ProductionGuard};
/// use dr_core::provider::{DbRef, DatabaseReplica};
/// use dr_core::sim::SimCloud;
/// use dr_core::Providers;
///
/// let cloud = SimCloud::new(1);
/// let prod = DbRef::new("east", "orders");
/// cloud.add_database(&prod, None);
/// let mut production = Production::default();
/// production.databases.insert("east/orders".into());
/// let guarded = Providers::new()
///     .with_database(cloud.database())
///     .layer(Arc::new(ProductionGuard::new(production)));
/// let db = guarded.database("east").unwrap();
/// assert!(db.describe(&prod).await.is_ok());          // a read
/// assert!(db.reboot(&prod, false).await.is_err());    // a change: refused
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ProductionGuard {
    production: Production,
}

impl ProductionGuard {
    /// A guard of `production`.
    pub fn new(production: Production) -> Self {
        ProductionGuard { production }
    }
}

#[async_trait]
impl Layer for ProductionGuard {
    async fn before(&self, call: &CallInfo) -> Result<Guard> {
        match self.production.changed_by(call) {
            Some(resource) => Err(Error::Unauthorized {
                provider: "drill".into(),
                message: format!(
                    "a drill never changes production: {} on {resource} refused",
                    call.operation
                ),
            }),
            None => Ok(None),
        }
    }
}
