//! `point-in-time-restore`: bad writes corrupted a database.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::{
    home_cluster, ordered, owner, preamble, secret_step, unknown, verify_data, verify_step,
    workload_ref,
};
use super::{Kind, Result};
use crate::graph::Action;
use crate::plan::validate::ScenarioChecks;
use crate::plan::{Plan, Service};
use crate::planner::build::GraphBuilder;
use crate::planner::PlanningError;
use crate::provider::{DbRef, RestorePoint};
use crate::simulation::Simulation;

/// Bad writes corrupted a database: scale its users down (no writes to the instance being
/// abandoned), restore a new instance to a point in time, repoint, scale up, verify.
///
/// ```yaml
/// - { name: point-in-time-restore, kind: point-in-time-restore, database: orders-db, rto: 1h }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointInTimeRestore {
    /// The database (by plan name); it needs `pitr` settings.
    pub database: String,
    /// The point in time to restore to (default: the latest restorable time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
}

impl Kind for PointInTimeRestore {
    fn build(&self, g: &mut GraphBuilder<'_>) -> Result<()> {
        let name = self.database.as_str();
        let db = g
            .plan
            .database(name)
            .ok_or_else(|| unknown("database", name))?;
        let pitr = db
            .pitr
            .as_ref()
            .ok_or_else(|| PlanningError::Unrecoverable {
                what: format!("database `{}`", db.name),
                why: "point-in-time recovery is not enabled (`pitr`)".into(),
            })?;
        let gate = preamble(g);
        let owner = owner(g, &db.name);
        let users: Vec<&Service> = ordered(g)
            .into_iter()
            .filter(|s| s.database.as_deref() == Some(name) && !s.workloads.is_empty())
            .collect();

        // Stop writes first, so nothing is written to the instance being abandoned.
        let mut stopped = gate.clone();
        for svc in &users {
            for w in &svc.workloads {
                let (cluster, w) = home_cluster(g, w)?;
                stopped.push(g.add(
                    format!("{}/scale-down:{}", svc.name, w.name),
                    Action::new(crate::step::cluster::Scale {
                        workload: workload_ref(cluster, w),
                        replicas: 0,
                    }),
                    Some(&svc.name),
                    gate.clone(),
                ));
            }
        }
        let target = DbRef::new(&db.region, format!("{}-pitr", db.instance()));
        let at = self.at.map_or(RestorePoint::Latest, RestorePoint::At);
        let loss = match self.at {
            Some(t) => (g.observed.observed_at - t).to_std().unwrap_or_default(),
            None => g
                .observed
                .databases
                .get(&db.name)
                .and_then(|o| o.primary.as_ref()?.latest_restorable_time)
                .and_then(|t| (g.observed.observed_at - t).to_std().ok())
                .unwrap_or(pitr.lag.get()),
        };
        if loss > pitr.window.get() {
            return Err(PlanningError::Unrecoverable {
                what: format!("database `{}`", db.name),
                why: "the restore point is older than the point-in-time window".into(),
            });
        }
        let waited = Action::new(crate::step::database::RestorePointInTime {
            source: DbRef::new(&db.region, db.instance()),
            target: target.clone(),
            at,
        });
        let r = g.add_call(
            format!("{}/restore-pitr", db.name),
            waited.clone(),
            owner,
            stopped,
        );
        let wait = g.add_wait(
            format!("{}/wait", db.name),
            Action::new(crate::step::database::WaitDatabase { db: target.clone() }),
            &waited,
            owner,
            vec![r],
        );
        g.db_loss.insert(db.name.clone(), loss);
        let wait = verify_data(g, db, &target, owner, wait);
        for svc in users {
            let mut ready = Vec::new();
            let mut secret = None;
            for name in &svc.workloads {
                let (cluster, w) = home_cluster(g, name)?;
                if secret.is_none() {
                    secret =
                        secret_step(g, svc, cluster, &w.namespace, &target, vec![wait.clone()]);
                }
                let wref = workload_ref(cluster, w);
                let mut deps = vec![wait.clone()];
                deps.extend(secret.clone());
                let up = g.add(
                    format!("{}/scale-up:{}", svc.name, w.name),
                    Action::new(crate::step::cluster::Scale {
                        workload: wref.clone(),
                        replicas: w.replicas,
                    }),
                    Some(&svc.name),
                    deps,
                );
                ready.push(g.add(
                    format!("{}/wait:{}", svc.name, w.name),
                    Action::new(crate::step::cluster::WaitWorkload { workload: wref }),
                    Some(&svc.name),
                    vec![up],
                ));
            }
            verify_step(g, svc, ready);
        }
        Ok(())
    }

    fn validate(&self, c: &mut ScenarioChecks<'_>) {
        c.database("database", &self.database);
        if let Some(db) = c.plan.database(&self.database) {
            if db.pitr.is_none() {
                let message = format!("database `{}` has no `pitr` settings", db.name);
                c.problem("database", message);
            }
        }
    }

    async fn inject(&self, _sim: &Simulation) {
        // Corrupted data: the infrastructure stays up, as in real incidents.
    }

    fn incident(&self, _plan: &Plan) -> String {
        format!(
            "bad writes corrupted database {}: restore it to a point in time",
            self.database
        )
    }
}
