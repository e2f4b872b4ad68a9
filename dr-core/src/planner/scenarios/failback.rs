//! `failback`: after a region failover, the home region is back; move home in a controlled
//! order, leaving no write behind.

use crate::graph::StepId;
use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::common::{bring_up, dns_steps, or_else, ordered, preamble, promote, verify_step};
use super::{Kind, Result};
use crate::graph::Action;
use crate::plan::validate::ScenarioChecks;
use crate::plan::{Database, Plan};
use crate::planner::build::GraphBuilder;
use crate::planner::PlanningError;
use crate::provider::{DbRef, DbState, Severity, WorkloadRef};
use crate::simulation::Simulation;
use crate::HumanDuration;

/// After a region failover from `to` to `from`, with `to` back: fail back home.
///
/// For each database of `to` that was failed over to its replica in `from`:
///
/// 1. re-establish replication towards the home region: a new replica of the serving
///    primary in `to` (`INSTANCE-failback`), waited until available;
/// 2. freeze writes: scale the users' workloads in `from` to zero;
/// 3. check that the new replica has caught up (a lag of at most `max_lag`) — if the
///    serving primary still holds writes the replica has not replayed, the run stops here,
///    before anything is promoted or demoted;
/// 4. promote the home replica, write its endpoint into the users' secrets, bring the
///    workloads up in `to`, switch DNS back, verify health;
/// 5. outside the RTO: scale the workloads in `from` back to their standby replicas and
///    create a new replica in `from` of the new home primary (the DR site's redundancy).
///
/// Nothing is deleted or demoted in place: the old home primary (which may hold writes from
/// before the failover that never reached the replica) and the former DR primary are kept,
/// and the forecast's risks name them for reconciliation and retirement.
///
/// ```yaml
/// - { name: failback, kind: failback, from: us-west-2, to: us-east-1, max_lag: 1m, approval: true }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failback {
    /// The region serving since the failover (the DR region).
    pub from: String,
    /// The home region, back.
    pub to: String,
    /// The largest replication lag, once writes are frozen, at which the home replica counts
    /// as caught up (default `1m`, the granularity of the providers' lag metrics).
    #[serde(default = "default_max_lag")]
    pub max_lag: HumanDuration,
}

fn default_max_lag() -> HumanDuration {
    HumanDuration::from_secs(60)
}

impl Failback {
    /// A failback from `from` to `to` with the default `max_lag`.
    pub fn new(from: impl Into<String>, to: impl Into<String>) -> Self {
        Failback {
            from: from.into(),
            to: to.into(),
            max_lag: default_max_lag(),
        }
    }
}

/// A database being failed back: its serving primary in `from` and its new home replica.
struct Moving<'a> {
    db: &'a Database,
    serving: DbRef,
    home: DbRef,
}

/// The replica of `db` in `region`, if the plan declares one.
fn replica_in<'a>(db: &'a Database, region: &str) -> Option<&'a crate::plan::Replica> {
    db.replicas.iter().find(|r| r.region == region)
}

fn wref(cluster: &crate::plan::Cluster, w: &crate::plan::Workload) -> WorkloadRef {
    super::common::workload_ref(cluster, w)
}

impl Kind for Failback {
    fn build(&self, g: &mut GraphBuilder<'_>) -> Result<()> {
        let (from, to) = (self.from.as_str(), self.to.as_str());
        let gate = preamble(g);

        // Which databases move, and from which instance.
        let mut moving: Vec<Moving<'_>> = Vec::new();
        for db in g.plan.databases.iter().filter(|d| d.region == to) {
            let Some(r) = replica_in(db, from) else {
                continue;
            };
            let obs = g.observed.databases.get(&db.name);
            let serving = obs.and_then(|o| o.replicas.get(&r.id));
            match serving {
                Some(o) if o.state == Some(DbState::Available) && o.lag.is_none() => {}
                Some(o) if o.lag.is_some() => {
                    return Err(PlanningError::Unrecoverable {
                        what: format!("database `{}`", db.name),
                        why: format!(
                            "`{}` in `{from}` still replicates from the home primary: there was no failover to fail back from",
                            r.id
                        ),
                    })
                }
                _ => {
                    let state = serving
                        .and_then(|o| o.state)
                        .map_or("unreachable".to_string(), |s| s.to_string());
                    return Err(PlanningError::Unrecoverable {
                        what: format!("database `{}`", db.name),
                        why: format!("its serving primary `{}` in `{from}` is {state}", r.id),
                    });
                }
            }
            let owner = g.owner_of(&db.name);
            let old_up = obs
                .and_then(|o| o.primary.as_ref())
                .is_some_and(|p| p.state == DbState::Available);
            if old_up {
                g.risk(
                    owner,
                    format!(
                        "the old primary `{}` in `{to}` is kept as it is: it may hold writes from before the failover that never reached `{}`; reconcile them before retiring it",
                        db.instance(),
                        r.id
                    ),
                );
            }
            g.risk(
                owner,
                format!(
                    "`{}` in `{from}` is kept after the failback, with the data as of the write freeze, for a rollback; retire it once the failback is verified",
                    r.id
                ),
            );
            moving.push(Moving {
                db,
                serving: DbRef::new(from, &r.id),
                home: DbRef::new(to, format!("{}-failback", db.instance())),
            });
        }

        let home_cluster = g.plan.cluster_in(to);
        let dr_cluster = g.plan.cluster_in(from);

        // 1. Replication towards home.
        let mut replicated: BTreeMap<&str, StepId> = BTreeMap::new();
        for m in &moving {
            let owner = g.owner_of(&m.db.name);
            let waited = Action::new(crate::step::database::CreateReplica {
                source: m.serving.clone(),
                replica: m.home.clone(),
            });
            let c = g.add_call(
                format!("{}/replicate-home", m.db.name),
                waited.clone(),
                owner,
                gate.clone(),
            );
            let w = g.add_wait(
                format!("{}/replicate-home-wait", m.db.name),
                Action::new(crate::step::database::WaitDatabase { db: m.home.clone() }),
                &waited,
                owner,
                vec![c],
            );
            replicated.insert(m.db.name.as_str(), w);
        }

        // 2. Write freeze: the users of each moving database stop in the DR region once the
        // home replica exists (so the freeze is as short as it can be).
        let mut frozen: BTreeMap<&str, Vec<StepId>> = BTreeMap::new();
        for svc in ordered(g) {
            let Some(m) = moving
                .iter()
                .find(|m| svc.database.as_deref() == Some(m.db.name.as_str()))
            else {
                continue;
            };
            let Some(dr) = dr_cluster else { continue };
            for name in &svc.workloads {
                let Some(w) = g.plan.workload(&dr.name, name) else {
                    continue;
                };
                let deps = vec![replicated[m.db.name.as_str()].clone()];
                let id = g.add(
                    StepId::concat(&[&svc.name, "/freeze:", &w.name]),
                    Action::new(crate::step::cluster::Scale {
                        workload: wref(dr, w),
                        replicas: 0,
                    }),
                    Some(&svc.name),
                    deps,
                );
                frozen.entry(m.db.name.as_str()).or_default().push(id);
            }
        }

        // 3. Caught up, then 4. promote at home.
        let mut serving: BTreeMap<String, (DbRef, Vec<StepId>)> = BTreeMap::new();
        for m in &moving {
            let owner = g.owner_of(&m.db.name);
            let mut deps = vec![replicated[m.db.name.as_str()].clone()];
            deps.extend(frozen.get(m.db.name.as_str()).cloned().unwrap_or_default());
            let check = g.add(
                format!("{}/caught-up", m.db.name),
                Action::new(crate::step::replication::VerifyCaughtUp {
                    replica: m.home.clone(),
                    primary: m.serving.clone(),
                    max_lag: self.max_lag.get(),
                }),
                owner,
                deps,
            );
            // Writes were frozen and replayed: the promotion loses none.
            let (new, wait) = promote(g, m.db, m.home.clone(), Duration::ZERO, owner, &[check]);
            serving.insert(m.db.name.clone(), (new, vec![wait]));
        }
        for db in &g.plan.databases {
            serving
                .entry(db.name.clone())
                .or_insert_with(|| (DbRef::new(&db.region, db.instance()), vec![]));
        }

        // Services home: secrets, workloads, DNS, health; then the DR side back to standby.
        let mut done: BTreeMap<String, Vec<StepId>> = BTreeMap::new();
        for svc in ordered(g) {
            let mut deps = gate.clone();
            for d in &svc.depends_on {
                deps.extend(done.get(d).cloned().unwrap_or_default());
            }
            let db = svc.database.as_ref().and_then(|d| serving.get(d)).cloned();
            if let Some((_, waits)) = &db {
                deps.extend(waits.iter().cloned());
            }
            let mut ready = Vec::new();
            if !svc.workloads.is_empty() {
                let cluster = home_cluster.ok_or_else(|| PlanningError::Unrecoverable {
                    what: format!("service `{}`", svc.name),
                    why: format!("no cluster in region `{to}`"),
                })?;
                ready = bring_up(g, svc, cluster, db.as_ref().map(|(r, _)| r), &deps)?;
            }
            let before_dns = or_else(ready, &deps);
            let mut switched = dns_steps(g, svc, |r| g.plan.dns_target(r, to), &before_dns)?;
            switched.extend(super::region_failover::edge_steps(
                g,
                svc,
                from,
                to,
                &before_dns,
            )?);
            let before_verify = or_else(switched.clone(), &before_dns);
            verify_step(g, svc, before_verify.clone());
            let sinks = g.service_sinks(&svc.name);
            done.insert(svc.name.clone(), or_else(sinks, &deps));

            // The DR side stands by again once traffic has moved (optional: a failure leaves
            // extra capacity, not an outage).
            if let Some(dr) = dr_cluster {
                for name in &svc.workloads {
                    let Some(w) = g.plan.workload(&dr.name, name) else {
                        continue;
                    };
                    g.add_optional(
                        StepId::concat(&[&svc.name, "/standby:", &w.name]),
                        Action::new(crate::step::cluster::Scale {
                            workload: wref(dr, w),
                            replicas: w.standby_replicas,
                        }),
                        None,
                        before_verify.clone(),
                    );
                }
            }
        }

        // 5. The DR site's redundancy: a replica in `from` of the new home primary.
        for m in &moving {
            let wait = serving
                .get(&m.db.name)
                .map(|(_, w)| w.clone())
                .unwrap_or_default();
            g.add_optional(
                format!("{}/new-replica", m.db.name),
                Action::new(crate::step::database::CreateReplica {
                    source: m.home.clone(),
                    replica: DbRef::new(from, format!("{}-replica", m.home.id)),
                }),
                g.owner_of(&m.db.name),
                wait,
            );
        }
        Ok(())
    }

    fn validate(&self, c: &mut ScenarioChecks<'_>) {
        c.region("from", &self.from);
        c.region("to", &self.to);
        if self.from == self.to {
            c.problem(
                "to",
                format!("region `{}` cannot fail back onto itself", self.from),
            );
            return;
        }
        if c.plan.cluster_in(&self.to).is_none()
            && c.plan.services.iter().any(|s| !s.workloads.is_empty())
        {
            c.problem(
                "to",
                format!("no cluster in region `{}` to run the workloads on", self.to),
            );
        }
        c.edge_in("to", &self.to);
        let homed: Vec<&Database> = c
            .plan
            .databases
            .iter()
            .filter(|d| d.region == self.to)
            .collect();
        if !homed.is_empty() && homed.iter().all(|d| replica_in(d, &self.from).is_none()) {
            c.problem(
                "from",
                format!(
                    "no database of `{}` has a replica in `{}` that a failover could have promoted",
                    self.to, self.from
                ),
            );
        }
    }

    async fn inject(&self, sim: &Simulation) {
        // The world after a region failover from `to` to `from`, with `to` back: each
        // database's replica in `from` is a primary serving the application, the old home
        // primary is up again but no longer replicated to, workloads serve from `from`
        // and stand by in `to`, and DNS points at `from`.
        let plan = sim.plan();
        let cloud = sim.cloud();
        for db in plan.databases.iter().filter(|d| d.region == self.to) {
            if let Some(r) = replica_in(db, &self.from) {
                cloud.add_database(&DbRef::new(&r.region, &r.id), None);
            }
        }
        for c in &plan.clusters {
            let serving = c.region == self.from;
            let standing_by = c.region == self.to;
            if !(serving || standing_by) {
                continue;
            }
            for w in &c.workloads {
                let replicas = if serving {
                    w.replicas
                } else {
                    w.standby_replicas
                };
                cloud.add_workload(&wref(c, w), replicas);
            }
            for n in &c.node_groups {
                let scaling = if serving {
                    n.serving()
                } else {
                    n.standing_by()
                };
                let group = crate::provider::NodeGroupRef::new(&c.name, &n.name);
                cloud.add_node_group(&group, scaling, n.pods_per_node);
            }
        }
        for record in &plan.dns {
            if let Some(value) = plan.dns_target(record, &self.from) {
                cloud.add_record(&record.zone, &record.name, &value);
            }
        }
        // The edge serves from `from`: each distribution's origin there, each target group
        // with the targets of `from` only.
        for c in &plan.cdn {
            if let Some(origin) = c.origins.get(&self.from) {
                cloud.add_distribution(&c.distribution, origin);
            }
        }
        for l in &plan.load_balancers {
            let Ok(serving) = l.targets_in(&self.from) else {
                continue;
            };
            cloud.add_target_group(&l.target_group);
            cloud.add_registered_targets(&l.target_group, &serving);
        }
    }

    fn incident(&self, _plan: &Plan) -> String {
        format!(
            "region {} is back after a failover to {}: fail back home",
            self.to, self.from
        )
    }

    fn severity(&self) -> Severity {
        Severity::Warning
    }
}
