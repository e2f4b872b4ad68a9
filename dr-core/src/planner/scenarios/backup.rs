//! `backup`: the backup procedure the runbooks run from cron, as a scenario with a report.

use serde::{Deserialize, Serialize};

use super::common::preamble;
use super::{Kind, Result};
use crate::backup::{Backups, RetentionClass, RetentionPolicy, WriteOptions};
use crate::graph::Action;
use crate::plan::validate::ScenarioChecks;
use crate::plan::Plan;
use crate::planner::build::GraphBuilder;
use crate::provider::DbRef;
use crate::simulation::Simulation;

/// The backup procedure: snapshot every database that has a `backups` schedule (or those
/// named), copy each snapshot to the regions of its `copy_to`, export every cluster
/// namespace of the plan's workloads into `store` as backups with manifests, verify every
/// backup under the prefix against its manifest, and — only when all are intact — prune
/// them by the grandfather-father-son `retention`.
///
/// ```yaml
/// - name: nightly-backup
///   kind: backup
///   store: backups-west
///   retention: { daily: 7, weekly: 4, monthly: 3 }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backup {
    /// The store the cluster exports go to, and whose backups are verified and pruned.
    pub store: String,
    /// The databases to snapshot (default: every database with a `backups` schedule).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub databases: Vec<String>,
    /// What is kept of the store's backups (default: 30 daily, 12 weekly, 12 monthly).
    #[serde(default)]
    pub retention: RetentionPolicy,
    /// Where the exports go in the store (default `backups/PLAN/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

impl Backup {
    fn prefix(&self, plan: &Plan) -> String {
        self.prefix
            .clone()
            .unwrap_or_else(|| format!("backups/{}/", plan.name))
    }

    /// The namespaces exported: every (cluster, namespace) holding a workload, in order.
    fn namespaces(plan: &Plan) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for c in &plan.clusters {
            for w in &c.workloads {
                let key = (c.name.clone(), w.namespace.clone());
                if !out.contains(&key) {
                    out.push(key);
                }
            }
        }
        out
    }
}

impl Kind for Backup {
    fn build(&self, g: &mut GraphBuilder<'_>) -> Result<()> {
        let gate = preamble(g);
        let stamp = g.observed.observed_at.format("%Y%m%dT%H%M%S").to_string();
        let prefix = self.prefix(g.plan);
        let mut written = Vec::new();
        for db in &g.plan.databases {
            let chosen = if self.databases.is_empty() {
                db.backups.is_some()
            } else {
                self.databases.contains(&db.name)
            };
            if !chosen {
                continue;
            }
            let id = format!("{}-backup-{stamp}", db.instance());
            let snap = g.add_call(
                format!("{}/snapshot", db.name),
                Action::new(crate::step::database::CreateDbSnapshot {
                    db: DbRef::new(&db.region, db.instance()),
                    snapshot_id: id.clone(),
                }),
                None,
                gate.clone(),
            );
            let ready = g.add(
                format!("{}/snapshot-wait", db.name),
                Action::new(crate::step::backup::WaitDbSnapshot {
                    region: db.region.clone(),
                    id: id.clone(),
                }),
                None,
                vec![snap],
            );
            written.push(ready.clone());
            let copies = db
                .backups
                .as_ref()
                .map(|b| b.copy_to.clone())
                .unwrap_or_default();
            for region in copies.iter().filter(|r| **r != db.region) {
                let copy_id = format!("{id}-{region}");
                let copy = g.add_call(
                    format!("{}/copy:{region}", db.name),
                    Action::new(crate::step::backup::CopyDbSnapshot {
                        region: db.region.clone(),
                        id: id.clone(),
                        target_region: region.clone(),
                        target_id: copy_id.clone(),
                    }),
                    None,
                    vec![ready.clone()],
                );
                written.push(g.add(
                    format!("{}/copy-wait:{region}", db.name),
                    Action::new(crate::step::backup::WaitDbSnapshot {
                        region: region.clone(),
                        id: copy_id,
                    }),
                    None,
                    vec![copy],
                ));
            }
        }
        let mut exports = Vec::new();
        for (cluster, ns) in Self::namespaces(g.plan) {
            exports.push(g.add(
                format!("export:{cluster}/{ns}"),
                Action::new(crate::step::backup::BackupResources {
                    cluster: cluster.clone(),
                    namespace: ns.clone(),
                    store: self.store.clone(),
                    key: format!("{prefix}{cluster}/{ns}/{stamp}.yaml"),
                }),
                None,
                gate.clone(),
            ));
        }
        written.extend(exports.iter().cloned());
        let verify = g.add(
            "verify-backups",
            Action::new(crate::step::backup::VerifyBackups {
                store: self.store.clone(),
                prefix: prefix.clone(),
            }),
            None,
            if exports.is_empty() {
                gate.clone()
            } else {
                exports
            },
        );
        let mut before_prune = written;
        before_prune.push(verify);
        g.add(
            "prune",
            Action::new(crate::step::backup::PruneBackups {
                store: self.store.clone(),
                prefix,
                policy: self.retention,
            }),
            None,
            before_prune,
        );
        Ok(())
    }

    fn validate(&self, c: &mut ScenarioChecks<'_>) {
        c.store("store", &self.store);
        for d in &self.databases {
            c.database("databases", d);
        }
    }

    async fn inject(&self, sim: &Simulation) {
        // No incident: the store already holds 45 days of nightly exports, so the retention
        // has something to prune.
        let plan = sim.plan();
        if plan.stores.iter().all(|s| s.name != self.store) {
            return;
        }
        let backups = Backups::new(sim.cloud().store(&self.store));
        let now = sim.cloud().clock().now();
        let prefix = self.prefix(plan);
        for (cluster, ns) in Self::namespaces(plan) {
            for days in 1..=45i64 {
                let created = now - chrono::Duration::days(days);
                let key = format!(
                    "{prefix}{cluster}/{ns}/{}.yaml",
                    created.format("%Y%m%dT%H%M%S")
                );
                let body = format!("# export of {cluster}/{ns} at {created}\n");
                let data = futures::stream::iter([Ok(bytes::Bytes::from(body))]);
                let opts = WriteOptions::default().with_created(created);
                let source = format!("namespace {cluster}/{ns}");
                if let Err(e) = backups
                    .write(&key, Box::pin(data), &source, RetentionClass::Daily, opts)
                    .await
                {
                    tracing::warn!(%key, error = %e, "could not write an earlier backup");
                }
            }
        }
    }

    fn incident(&self, plan: &Plan) -> String {
        format!(
            "scheduled backup of plan {}: snapshots, copies, exports to {}, verification, pruning",
            plan.name, self.store
        )
    }
}
