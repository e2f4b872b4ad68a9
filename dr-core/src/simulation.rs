//! A plan's world on the simulated cloud: provision every resource the plan declares, inject
//! the incident a scenario recovers from, and hand out the providers to run it with.
//!
//! This is what the examples and the `run-plan` runner use when no cloud is configured.
//!
//! # Examples
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! use std::sync::Arc;
//! use dr_core::executor::{AutoApprove, Executor};
//! use dr_core::plan::Plan;
//! use dr_core::planner;
//! use dr_core::simulation::Simulation;
//!
//! let plan = Plan::from_yaml_str(r#"
//! name: shop
//! regions:
//!   - { name: east, role: primary }
//!   - { name: west, role: secondary }
//! databases:
//!   - { name: db, region: east, replicas: [{ id: db-west, region: west }] }
//! services:
//!   - { name: orders, rto: 30m, rpo: 5m, database: db }
//! scenarios:
//!   - { name: failover, kind: region-failover, from: east, to: west }
//! "#).unwrap();
//! let sim = Simulation::new(&plan, 7, Default::default());
//! let scenario = plan.scenario("failover").unwrap();
//! sim.inject(scenario).await;
//! let observed = sim.observe().await;
//! let graph = planner::plan(&plan, "failover", &observed).unwrap();
//! let report = Executor::new(sim.providers())
//!     .clock(sim.cloud().clock())
//!     .approvals(Arc::new(AutoApprove))
//!     .run(&graph)
//!     .await;
//! assert!(report.succeeded(), "{report}");
//! # }
//! ```

use std::time::Duration;

use crate::plan::{Plan, RegionRole, Scenario};
use crate::planner::ObservedState;
use crate::provider::{DbRef, WorkloadRef};
use crate::sim::{EndpointBinding, SimCloud, SimConfig};
use crate::Providers;

/// Age of the newest automatic snapshot when the incident starts, as a fraction of the
/// backup interval (a snapshot is on average half an interval old; this is a bit worse).
const SNAPSHOT_AGE_FRACTION: f64 = 0.6;

/// A plan provisioned on a [`SimCloud`].
#[derive(Debug, Clone)]
pub struct Simulation {
    cloud: SimCloud,
    plan: Plan,
}

impl Simulation {
    /// Provisions every region, database (with replicas, snapshots and copies), cluster,
    /// node group and workload, DNS record, health check, store, CDN distribution and load
    /// balancer target group of `plan` on a new simulated cloud: the primary region serving,
    /// the secondary standing by (workloads at their standby replicas, node groups at their
    /// standby bounds, as are the replacement groups of node-group failures, no traffic from
    /// the edge). Each target answers its health checks while its region is up and a
    /// workload of a service using its target group has an available pod on that region's
    /// cluster. Each service's volumes and credential (in the secret manager) exist too, and
    /// each managed cache with its newest backup in every region it can be restored into.
    pub fn new(plan: &Plan, seed: u64, config: SimConfig) -> Self {
        let cloud = SimCloud::with_config(seed, config);
        provision(&cloud, plan);
        Simulation {
            cloud,
            plan: plan.clone(),
        }
    }

    /// The simulation of `plan` on a cloud that already exists — one restored from its state
    /// file ([`SimCloud::load`]) to resume a run after a crash. Provisions nothing.
    pub fn on(plan: &Plan, cloud: SimCloud) -> Self {
        Simulation {
            cloud,
            plan: plan.clone(),
        }
    }

    /// The simulated cloud (to inspect its call log, inject more faults, read its clock).
    pub fn cloud(&self) -> &SimCloud {
        &self.cloud
    }

    /// Providers for every role, all backed by the simulated cloud, one store per plan store.
    pub fn providers(&self) -> Providers {
        let mut p = Providers::new()
            .with_database(self.cloud.database())
            .with_dns(self.cloud.dns())
            .with_cluster(self.cloud.cluster())
            .with_probe(self.cloud.probe())
            .with_notifier(self.cloud.notifier())
            .with_cdn(self.cloud.cdn())
            .with_load_balancer(self.cloud.load_balancer())
            .with_nodes(self.cloud.nodes())
            .with_volumes(self.cloud.volumes())
            .with_secrets(self.cloud.secrets())
            .with_caches(self.cloud.caches());
        for s in &self.plan.stores {
            p = p.with_store(&s.name, self.cloud.store(&s.name));
        }
        p
    }

    /// Breaks what `scenario` recovers from, as its kind describes (see
    /// [`ScenarioKind`](crate::plan::ScenarioKind)): fails the region of a region failover,
    /// the primary instance of a database failure, the region of a cluster being rebuilt in
    /// another region; rolls out a bad release before a rollback; sets up the world after a
    /// region failover, the home region back, before a failback. Scenarios about data
    /// (point-in-time restore), a compromise or misbehaving pods leave the infrastructure up,
    /// as in real incidents.
    pub async fn inject(&self, scenario: &Scenario) {
        scenario.kind.inject(self).await;
    }

    /// The plan this simulation provisioned.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// What the planner sees now.
    pub async fn observe(&self) -> ObservedState {
        ObservedState::observe(&self.plan, &self.providers(), self.cloud.clock().now()).await
    }

    /// The workloads named `names` on the clusters of the primary region.
    pub(crate) fn home_workloads(&self, names: &[String]) -> Vec<WorkloadRef> {
        let primary = self.plan.primary_region().map(|r| r.name.as_str());
        names
            .iter()
            .filter_map(|n| {
                self.plan
                    .clusters
                    .iter()
                    .filter(|c| Some(c.region.as_str()) == primary)
                    .find_map(|c| c.workloads.iter().find(|w| &w.name == n).map(|w| (c, w)))
            })
            .map(|(c, w)| WorkloadRef {
                cluster: c.name.clone(),
                namespace: w.namespace.clone(),
                kind: w.kind,
                name: w.name.clone(),
            })
            .collect()
    }
}

fn provision(cloud: &SimCloud, plan: &Plan) {
    let primary_region = plan.primary_region().map(|r| r.name.clone());
    for db in &plan.databases {
        let primary = DbRef::new(&db.region, db.instance());
        cloud.add_database(&primary, None);
        for r in &db.replicas {
            let replica = DbRef::new(&r.region, &r.id);
            cloud.add_database(&replica, Some(&primary));
            cloud.set_replication_lag(&replica, r.expected_lag.get());
        }
        if let Some(b) = &db.backups {
            let age = Duration::from_secs_f64(b.every.get().as_secs_f64() * SNAPSHOT_AGE_FRACTION);
            let id = format!("{}-auto", db.instance());
            cloud.add_snapshot(&primary, &db.region, &id, age);
            for region in &b.copy_to {
                if region != &db.region {
                    cloud.add_snapshot(&primary, region, &format!("{id}-copy"), age);
                }
            }
        }
    }
    for c in &plan.clusters {
        cloud.add_cluster(&c.name, &c.region, &c.ingress);
        let serving = plan
            .region(&c.region)
            .is_some_and(|r| r.role == RegionRole::Primary);
        for g in &c.node_groups {
            // Standing by: outside the primary region, and a replacement group.
            let spare = crate::planner::scenarios::is_spare(plan, &c.name, &g.name);
            let scaling = if serving && !spare {
                g.serving()
            } else {
                g.standing_by()
            };
            cloud.add_node_group(
                &crate::provider::NodeGroupRef::new(&c.name, &g.name),
                scaling,
                g.pods_per_node,
            );
        }
        for w in &c.workloads {
            let wref = WorkloadRef {
                cluster: c.name.clone(),
                namespace: w.namespace.clone(),
                kind: w.kind,
                name: w.name.clone(),
            };
            cloud.add_workload(
                &wref,
                if serving {
                    w.replicas
                } else {
                    w.standby_replicas
                },
            );
        }
    }
    for record in &plan.dns {
        if let Some(value) = primary_region
            .as_deref()
            .and_then(|r| plan.dns_target(record, r))
        {
            cloud.add_record(&record.zone, &record.name, &value);
        }
    }
    for (target, binding) in endpoint_bindings(plan) {
        cloud.bind_endpoint(&target, binding);
    }
    for s in &plan.stores {
        // Creates the store.
        let _ = cloud.store(&s.name);
    }
    for svc in &plan.services {
        // A volume without a region is in the region of the service's serving cluster
        // (looked up by name, and only for a service with volumes: a scan of every
        // cluster's workloads per service is quadratic in a large plan).
        let home = || {
            svc.workloads.iter().find_map(|w| {
                plan.clusters
                    .iter()
                    .filter(|c| plan.workload(&c.name, w).is_some())
                    .min_by_key(|c| Some(c.region.as_str()) != primary_region.as_deref())
                    .map(|c| c.region.clone())
            })
        };
        let home = if svc.volumes.is_empty() { None } else { home() };
        for v in &svc.volumes {
            if let Some(region) = v.region.clone().or_else(|| home.clone()) {
                cloud.add_volume(&region, &v.id);
            }
        }
        if let Some(c) = &svc.credential {
            cloud.add_secret(
                &c.region,
                &c.secret,
                &crate::Secret::new(format!("sim-credential-of-{}", svc.name)),
            );
        }
    }
    for c in &plan.caches {
        cloud.add_cache(&c.region, &c.id);
        // The newest backup reached each recovery region part of an interval ago.
        let age =
            Duration::from_secs_f64(c.backup_interval().as_secs_f64() * SNAPSHOT_AGE_FRACTION);
        for region in c.restore.keys() {
            cloud.add_cache_backup(region, &c.id, &format!("{}-auto", c.id), age);
        }
    }
    provision_edge(cloud, plan, primary_region.as_deref());
}

/// Distributions serving from the primary region's origin; target groups with the primary
/// region's targets registered, every target bound to its region's workloads.
pub(crate) fn provision_edge(cloud: &SimCloud, plan: &Plan, primary: Option<&str>) {
    for c in &plan.cdn {
        let origin = primary
            .and_then(|r| c.origins.get(r))
            .or_else(|| c.origins.values().next());
        if let Some(origin) = origin {
            cloud.add_distribution(&c.distribution, origin);
        }
    }
    for l in &plan.load_balancers {
        cloud.add_target_group(&l.target_group);
        let users: Vec<&crate::plan::Service> = plan
            .services
            .iter()
            .filter(|s| s.load_balancers.contains(&l.name))
            .collect();
        for region in l.targets.keys() {
            // Invalid targets are refused by validation; a plan built unchecked skips them.
            let Ok(targets) = l.targets_in(region) else {
                continue;
            };
            let workloads: Vec<WorkloadRef> = plan
                .clusters
                .iter()
                .filter(|c| &c.region == region)
                .flat_map(|c| {
                    c.workloads
                        .iter()
                        .filter(|w| users.iter().any(|s| s.workloads.contains(&w.name)))
                        .map(|w| WorkloadRef {
                            cluster: c.name.clone(),
                            namespace: w.namespace.clone(),
                            kind: w.kind,
                            name: w.name.clone(),
                        })
                })
                .collect();
            for t in &targets {
                cloud.bind_target(&l.target_group, &t.id, region, workloads.clone());
            }
            if Some(region.as_str()) == primary {
                cloud.add_registered_targets(&l.target_group, &targets);
            }
        }
    }
}

/// What the health checks of `plan` probe, as the simulated cloud derives their health: each
/// service's health-check URL through its first DNS record, and that URL at every target
/// value of each of its records (host replaced, [`probe_url`](crate::step::dns::probe_url)),
/// for the `healthy-target` interlock.
pub(crate) fn endpoint_bindings(plan: &Plan) -> Vec<(String, EndpointBinding)> {
    // The endpoint is served by the service's workloads on whichever cluster DNS names.
    let workloads_of = |svc: &crate::plan::Service| -> Vec<WorkloadRef> {
        plan.clusters
            .iter()
            .flat_map(|c| {
                c.workloads
                    .iter()
                    .filter(|w| svc.workloads.contains(&w.name))
                    .map(|w| WorkloadRef {
                        cluster: c.name.clone(),
                        namespace: w.namespace.clone(),
                        kind: w.kind,
                        name: w.name.clone(),
                    })
            })
            .collect()
    };
    let mut out: Vec<(String, EndpointBinding)> = Vec::new();
    for svc in &plan.services {
        let (Some(check), Some(record)) = (
            svc.health_check
                .as_deref()
                .and_then(|h| plan.health_check(h)),
            svc.dns.first().and_then(|d| plan.dns_record(d)),
        ) else {
            continue;
        };
        out.push((
            check.target.clone(),
            EndpointBinding {
                zone: record.zone.clone(),
                record: record.name.clone(),
                workloads: workloads_of(svc),
                via: None,
            },
        ));
    }
    let mut at: std::collections::HashMap<String, usize> = out
        .iter()
        .enumerate()
        .map(|(i, (u, _))| (u.clone(), i))
        .collect();
    for t in crate::step::dns::target_probes(plan) {
        let workloads = plan
            .service(&t.service)
            .map(workloads_of)
            .unwrap_or_default();
        if let Some(&i) = at.get(&t.url) {
            // One load balancer in front of several services: any of them answers.
            let shared = &mut out[i].1;
            for w in workloads {
                if !shared.workloads.contains(&w) {
                    shared.workloads.push(w);
                }
            }
            continue;
        }
        at.insert(t.url.clone(), out.len());
        out.push((
            t.url,
            EndpointBinding {
                zone: t.zone,
                record: t.record,
                workloads,
                via: Some(t.value),
            },
        ));
    }
    out
}
