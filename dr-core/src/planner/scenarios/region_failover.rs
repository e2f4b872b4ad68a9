//! `region-failover`: a whole region is lost.

use crate::graph::StepId;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::common::{
    bring_up_on, dns_steps, or_else, ordered, preamble, recover_db_in, scale_nodes, verify_step,
};
use super::{Kind, Result};
use crate::graph::{Action, FastMap};
use crate::plan::validate::ScenarioChecks;
use crate::plan::Plan;
use crate::planner::build::GraphBuilder;
use crate::planner::PlanningError;
use crate::provider::{DbRef, Severity};
use crate::simulation::Simulation;

/// A whole region is lost: promote the replica (or restore the newest snapshot) of each
/// database of `from` in `to`, scale the node groups of the cluster of `to` from standby
/// to serving and wait until they are ready, bring the workloads up there; alongside the
/// DNS switch, move each service's load balancer targets to `to` (the old ones leave only
/// once the new ones are healthy), then point its CDN distributions at their origin in `to`
/// and wait until they are deployed; verify health; then, outside the RTO, create a new
/// replica of each promoted database so it is not left without redundancy.
///
/// Each managed cache of `from` is restored in `to` from its newest backup there, under
/// the id its `restore` names, alongside the promotion (`cache:NAME/restore`, then
/// `cache:NAME/wait` until it answers); a service that lists the cache moves its traffic
/// only once the cache is back, so the recovered database is not met by a cold cache. Both
/// steps are optional: a cache that cannot be restored (no backup in `to`) degrades the run,
/// and its services' traffic then moves with a cold cache rather than not at all.
///
/// ```yaml
/// - { name: region-failover, kind: region-failover, from: us-east-1, to: us-west-2 }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionFailover {
    /// The region that failed.
    pub from: String,
    /// The region to recover into.
    pub to: String,
}

impl Kind for RegionFailover {
    fn build(&self, g: &mut GraphBuilder<'_>) -> Result<()> {
        let (from, to) = (self.from.as_str(), self.to.as_str());
        let gate = preamble(g);

        // Databases: promote or restore those of the failed region; the others keep serving.
        let mut serving: BTreeMap<String, (DbRef, Vec<StepId>)> = BTreeMap::new();
        let mut promoted = Vec::new();
        for db in &g.plan.databases {
            if db.region == from {
                let (r, wait) = recover_db_in(g, db, to, &gate)?;
                if db.replicas.iter().any(|x| x.id == r.id) {
                    promoted.push((db, r.clone(), wait.clone()));
                }
                serving.insert(db.name.clone(), (r, vec![wait]));
            } else {
                serving.insert(
                    db.name.clone(),
                    (DbRef::new(&db.region, db.instance()), vec![]),
                );
            }
        }

        // Managed caches: restored from their newest backup in `to`, alongside the rest.
        let mut caches: BTreeMap<&str, StepId> = BTreeMap::new();
        for c in g.plan.caches.iter().filter(|c| c.region == from) {
            let id = c
                .restore
                .get(to)
                .ok_or_else(|| PlanningError::Unrecoverable {
                    what: format!("cache `{}`", c.name),
                    why: format!("no id to restore it under in region `{to}`"),
                })?;
            let restore = Action::new(crate::step::cache::RestoreCache {
                region: to.to_string(),
                source: c.id.clone(),
                target: id.clone(),
                node_type: c.node_type.clone(),
            });
            let call = g.add_call(
                format!("cache:{}/restore", c.name),
                restore.clone(),
                None,
                gate.clone(),
            );
            let wait = g.add_wait(
                format!("cache:{}/wait", c.name),
                Action::new(crate::step::cache::WaitCache {
                    region: to.to_string(),
                    id: id.clone(),
                }),
                &restore,
                None,
                vec![call.clone()],
            );
            g.make_optional(&call);
            g.make_optional(&wait);
            caches.insert(c.name.as_str(), wait);
            // What the restore will find there, when it was observed.
            if let Some(obs) = g.observed.caches.get(&c.name) {
                let owner = g
                    .plan
                    .services
                    .iter()
                    .find(|s| s.caches.contains(&c.name))
                    .map(|s| s.name.as_str());
                let at = g.observed.observed_at;
                match (obs.has_backup.get(to), obs.newest_backup.get(to)) {
                    (Some(false), _) => g.risk(
                        owner,
                        format!(
                            "cache `{}`: no available backup of {} in {to} to restore from (its \
                             services would move with a cold cache)",
                            c.name, c.id
                        ),
                    ),
                    (_, Some(Some(taken))) => {
                        let age = (at - *taken).to_std().unwrap_or_default();
                        // One interval late is still on schedule; beyond, a copy was missed.
                        if age > c.backup_interval() * 2 {
                            g.risk(
                                owner,
                                format!(
                                    "cache `{}`: the newest backup in {to} is {} old (backups \
                                     every {})",
                                    c.name,
                                    crate::duration::human(age),
                                    crate::duration::human(c.backup_interval())
                                ),
                            );
                        }
                    }
                    _ => {}
                }
            }
        }

        let target = g.plan.cluster_in(to);
        // Node capacity first: the recovery cluster's node groups from standby to serving.
        let capacity = target.map(|c| scale_nodes(g, c, &gate)).unwrap_or_default();
        let mut done: FastMap<&str, Vec<StepId>> =
            FastMap::with_capacity_and_hasher(g.plan.services.len(), Default::default());
        for svc in ordered(g) {
            let mut deps = gate.clone();
            for d in &svc.depends_on {
                if let Some(sinks) = done.get(d.as_str()) {
                    deps.extend(sinks.iter().cloned());
                }
            }
            let db = svc.database.as_ref().and_then(|d| serving.get(d));
            if let Some((_, waits)) = db {
                deps.extend(waits.iter().cloned());
            }
            let mut ready = Vec::new();
            if !svc.workloads.is_empty() {
                let cluster = target.ok_or_else(|| PlanningError::Unrecoverable {
                    what: format!("service `{}`", svc.name),
                    why: format!("no cluster in region `{to}`"),
                })?;
                ready = bring_up_on(g, svc, cluster, db.map(|(r, _)| r), &deps, &capacity)?;
            }
            let mut before_dns = or_else(ready, &deps);
            before_dns.extend(
                svc.caches
                    .iter()
                    .filter_map(|c| caches.get(c.as_str()).cloned()),
            );
            let mut switched = dns_steps(g, svc, |r| g.plan.dns_target(r, to), &before_dns)?;
            switched.extend(edge_steps(g, svc, from, to, &before_dns)?);
            let before_verify = or_else(switched, &before_dns);
            verify_step(g, svc, before_verify);
            let sinks = g.service_sinks(&svc.name);
            done.insert(svc.name.as_str(), or_else(sinks, &deps));
        }

        // Redundancy: the promoted replica is a primary without a replica of its own. A new
        // one in the recovery region (the failed region is down) is optional and outside the
        // RTO: its failure degrades the run, and its own report line says so.
        for (db, new, wait) in promoted {
            let owner = g.owner_of(&db.name);
            g.add_optional(
                StepId::concat(&[&db.name, "/new-replica"]),
                Action::new(crate::step::database::CreateReplica {
                    source: new.clone(),
                    replica: DbRef::new(to, format!("{}-replica", new.id)),
                }),
                owner,
                vec![wait],
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
                format!("region `{}` cannot both fail and recover", self.from),
            );
        } else if c.plan.cluster_in(&self.to).is_none()
            && c.plan.services.iter().any(|s| !s.workloads.is_empty())
        {
            c.problem(
                "to",
                format!("no cluster in region `{}` to run the workloads on", self.to),
            );
        }
        if self.from != self.to {
            c.edge_in("to", &self.to);
            c.caches_restorable("to", &self.from, &self.to);
        }
    }

    async fn inject(&self, sim: &Simulation) {
        sim.cloud().fail_region(&self.from);
    }

    fn incident(&self, _plan: &Plan) -> String {
        format!("region {} is down", self.from)
    }

    fn severity(&self) -> Severity {
        Severity::Critical
    }
}

/// The edge of `svc` moved from `from` to `to` once `deps` are done: each load balancer's
/// targets moved (`SVC/targets:NAME`), then each CDN distribution's origin switched
/// (`SVC/origin:NAME`) and waited until deployed (`SVC/deployed:NAME`). Returns the steps
/// after which the edge serves from `to`.
pub(super) fn edge_steps(
    g: &mut GraphBuilder<'_>,
    svc: &crate::plan::Service,
    from: &str,
    to: &str,
    deps: &[StepId],
) -> Result<Vec<StepId>> {
    let unrecoverable = |what: String, why: String| PlanningError::Unrecoverable { what, why };
    let mut moved = Vec::new();
    for name in &svc.load_balancers {
        let lb = g
            .plan
            .load_balancer(name)
            .ok_or_else(|| super::common::unknown("load balancer", name))?;
        let parse = |region: &str| {
            lb.targets_in(region)
                .map_err(|e| unrecoverable(format!("load balancer `{name}`"), e.to_string()))
        };
        let register = parse(to)?;
        if register.is_empty() {
            return Err(unrecoverable(
                format!("load balancer `{name}`"),
                format!("no targets in region `{to}` to move the traffic to"),
            ));
        }
        let deregister = parse(from)?;
        moved.push(g.add(
            StepId::concat(&[&svc.name, "/targets:", &lb.name]),
            Action::new(crate::step::edge::MoveTargets {
                group: lb.target_group.clone(),
                register,
                deregister,
            }),
            Some(&svc.name),
            deps.to_vec(),
        ));
    }
    let before_origin = or_else(moved.clone(), deps);
    let mut out = moved;
    for name in &svc.cdn {
        let cdn = g
            .plan
            .cdn_distribution(name)
            .ok_or_else(|| super::common::unknown("CDN distribution", name))?;
        let origin = cdn.origins.get(to).cloned().ok_or_else(|| {
            unrecoverable(
                format!("CDN distribution `{name}`"),
                format!("no origin for region `{to}`"),
            )
        })?;
        let switch = g.add(
            StepId::concat(&[&svc.name, "/origin:", &cdn.name]),
            Action::new(crate::step::edge::SwitchOrigin {
                distribution: cdn.distribution.clone(),
                origin: origin.clone(),
            }),
            Some(&svc.name),
            before_origin.clone(),
        );
        out.push(g.add(
            StepId::concat(&[&svc.name, "/deployed:", &cdn.name]),
            Action::new(crate::step::edge::WaitDistribution {
                distribution: cdn.distribution.clone(),
                origin,
            }),
            Some(&svc.name),
            vec![switch],
        ));
    }
    Ok(out)
}
