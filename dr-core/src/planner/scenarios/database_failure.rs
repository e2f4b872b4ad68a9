//! `database-failure`: a database's primary instance fails.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::common::{ordered, owner, preamble, promote, repoint, restore, unknown, verify_step};
use super::{Kind, Result};
use crate::graph::{Action, StepId};
use crate::plan::validate::ScenarioChecks;
use crate::plan::{DbStrategy, Plan};
use crate::planner::build::GraphBuilder;
use crate::planner::PlanningError;
use crate::provider::{DbRef, DbState};
use crate::simulation::Simulation;

/// A database's primary instance fails: reboot it (failing over to its Multi-AZ standby),
/// or promote a replica within the RPO, or restore the newest snapshot — chosen from the
/// observed state unless `strategy` says — then repoint the application and, after a
/// promotion, create a new replica of the promoted instance (optional, outside the RTO).
///
/// ```yaml
/// - { name: database-failure, kind: database-failure, database: orders-db, strategy: auto }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseFailure {
    /// The database (by plan name).
    pub database: String,
    /// How the failure is handled.
    #[serde(default)]
    pub strategy: DbStrategy,
}

impl Kind for DatabaseFailure {
    fn build(&self, g: &mut GraphBuilder<'_>) -> Result<()> {
        let name = self.database.as_str();
        let db = g
            .plan
            .database(name)
            .ok_or_else(|| unknown("database", name))?;
        let gate = preamble(g);
        let owner = owner(g, &db.name);
        let rpo = owner
            .and_then(|o| g.plan.service(o))
            .map(|s| s.rpo.get())
            .unwrap_or(Duration::MAX);
        let obs = g.observed.databases.get(&db.name);
        let primary_up = obs.and_then(|o| o.primary.as_ref()).is_some_and(|p| {
            matches!(
                p.state,
                DbState::Available | DbState::Rebooting | DbState::Modifying
            )
        });
        // Healthy replicas, the primary's region first.
        let mut replicas: Vec<(DbRef, Duration)> = db
            .replicas
            .iter()
            .filter_map(|r| {
                let ro = obs.and_then(|o| o.replicas.get(&r.id));
                let ok = ro.is_none_or(|o| o.state == Some(DbState::Available));
                ok.then(|| {
                    let lag = ro.and_then(|o| o.lag).unwrap_or(r.expected_lag.get());
                    (DbRef::new(&r.region, &r.id), lag)
                })
            })
            .collect();
        replicas.sort_by_key(|(r, _)| r.region != db.region);
        let snapshot = g.observed.snapshot_age(&db.name, &db.region);

        let strategy = match self.strategy {
            DbStrategy::Auto if primary_up => DbStrategy::Reboot,
            DbStrategy::Auto => {
                if replicas.iter().any(|(_, lag)| *lag <= rpo) {
                    DbStrategy::Promote
                } else if snapshot.is_some() {
                    DbStrategy::Restore
                } else {
                    DbStrategy::Promote
                }
            }
            s => s,
        };
        match strategy {
            DbStrategy::Reboot | DbStrategy::Auto => {
                let me = DbRef::new(&db.region, db.instance());
                let waited = Action::new(crate::step::database::RebootDatabase {
                    db: me.clone(),
                    force_failover: db.multi_az,
                });
                let r = g.add_call(
                    StepId::concat(&[&db.name, "/reboot"]),
                    waited.clone(),
                    owner,
                    gate.clone(),
                );
                let w = g.add_wait(
                    StepId::concat(&[&db.name, "/wait"]),
                    Action::new(crate::step::database::WaitDatabase { db: me }),
                    &waited,
                    owner,
                    vec![r],
                );
                // Committed data survives a reboot.
                g.db_loss.insert(db.name.clone(), Duration::ZERO);
                for svc in ordered(g) {
                    if svc.database.as_deref() == Some(db.name.as_str()) {
                        verify_step(g, svc, vec![w.clone()]);
                    }
                }
            }
            DbStrategy::Promote => {
                let (replica, lag) = replicas
                    .into_iter()
                    .find(|(_, lag)| *lag <= rpo)
                    .or_else(|| {
                        db.replicas
                            .first()
                            .map(|r| (DbRef::new(&r.region, &r.id), r.expected_lag.get()))
                    })
                    .ok_or_else(|| PlanningError::Unrecoverable {
                        what: format!("database `{}`", db.name),
                        why: "no replica to promote".into(),
                    })?;
                let (new, wait) = promote(g, db, replica.clone(), lag, owner, &gate);
                repoint(g, db, &new, std::slice::from_ref(&wait))?;
                // Restore redundancy: a new replica of the promoted instance (optional).
                g.add_optional(
                    StepId::concat(&[&db.name, "/new-replica"]),
                    Action::new(crate::step::database::CreateReplica {
                        source: new,
                        replica: DbRef::new(&db.region, format!("{}-replica", replica.id)),
                    }),
                    owner,
                    vec![wait],
                );
            }
            DbStrategy::Restore => {
                let age = snapshot.ok_or_else(|| PlanningError::Unrecoverable {
                    what: format!("database `{}`", db.name),
                    why: format!("no snapshot in region `{}`", db.region),
                })?;
                let (new, wait) = restore(g, db, &db.region, age, owner, &gate);
                repoint(g, db, &new, &[wait])?;
            }
        }
        Ok(())
    }

    fn validate(&self, c: &mut ScenarioChecks<'_>) {
        c.database("database", &self.database);
    }

    async fn inject(&self, sim: &Simulation) {
        // The primary instance breaks; its region stays up.
        if let Some(db) = sim.plan().database(&self.database) {
            sim.cloud()
                .fail_database(&DbRef::new(&db.region, db.instance()));
        }
    }

    fn incident(&self, _plan: &Plan) -> String {
        format!(
            "the primary instance of database {} has failed",
            self.database
        )
    }
}
