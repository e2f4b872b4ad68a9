//! The scenario drill: a recovery rehearsed on an isolated copy of a plan's resources.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{cell, write_cleanup, NotCleaned, Production, ProductionGuard};
use crate::duration::human;
use crate::executor::{AutoApprove, Executor, RunReport};
use crate::layer::{CallLog, CallRecord};
use crate::plan::{Plan, RegionRole, ScenarioKind};
use crate::planner::{self, ObservedState, PlanningError};
use crate::provider::{DbRef, Operation, WorkloadRef};
use crate::sim::SimConfig;
use crate::simulation::Simulation;
use crate::Providers;

/// Why a drill could not run (its setup failed before the recovery started). Whatever was
/// created before is cleaned up all the same.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DrillError {
    /// The plan has no such scenario.
    #[error("unknown scenario `{0}`")]
    UnknownScenario(String),
    /// The isolated copy could not be set up.
    #[error("drill setup failed: {message}")]
    Setup {
        /// What failed.
        message: String,
        /// What was cleaned up after it, and what could not be.
        not_cleaned: Vec<NotCleaned>,
    },
    /// The scenario cannot be planned on the copy.
    #[error(transparent)]
    Planning(#[from] PlanningError),
    /// The drill cannot stage this kind's incident on an isolated copy (its incident or its
    /// steps write to stores the copy shares with production): nothing was done.
    #[error("a `{kind}` scenario cannot be drilled on an isolated copy: {why}")]
    Unsupported {
        /// The scenario kind.
        kind: String,
        /// Why.
        why: String,
    },
}

/// A resource the drill created.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Created {
    Database(DbRef),
    Namespace {
        cluster: String,
        namespace: String,
    },
    Record {
        zone: String,
        name: String,
    },
    Endpoint(String),
    Distribution(String),
    TargetGroup(String),
    NodeGroup(crate::provider::NodeGroupRef),
    /// `region/id` of a restored cache.
    Cache(String),
}

impl std::fmt::Display for Created {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Created::Database(db) => write!(f, "{db}"),
            Created::Namespace { cluster, namespace } => {
                write!(f, "namespace {cluster}/{namespace}")
            }
            Created::Record { zone, name } => write!(f, "DNS record {zone}/{name}"),
            Created::Endpoint(t) => write!(f, "health endpoint {t}"),
            Created::Distribution(id) => write!(f, "CDN distribution {id}"),
            Created::TargetGroup(g) => write!(f, "target group {g}"),
            Created::NodeGroup(g) => write!(f, "node group {g}"),
            Created::Cache(c) => write!(f, "cache {c}"),
        }
    }
}

/// A drill's evidence: the recovery's report, targets against what was achieved, what was
/// created and cleaned up, and every provider call it made.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DrillReport {
    /// The drill's tag (suffix of every resource it created).
    pub tag: String,
    /// Plan name.
    pub plan: String,
    /// Scenario name.
    pub scenario: String,
    /// When the drill started (setup included).
    pub started_at: DateTime<Utc>,
    /// Setup: restoring the test databases and creating the test namespaces and records.
    #[serde(rename = "setup_seconds", with = "crate::duration::seconds")]
    pub setup: Duration,
    /// `true` when the recovery succeeded, every service met its targets, nothing touched
    /// production and everything was cleaned up.
    pub passed: bool,
    /// The recovery run on the copy.
    pub run: RunReport,
    /// What the drill created.
    pub created: Vec<String>,
    /// What it removed afterwards.
    pub cleaned_up: Vec<String>,
    /// What it could not remove, and why.
    pub not_cleaned: Vec<NotCleaned>,
    /// Calls that would have changed production and were refused (none in a sound plan).
    pub refused: Vec<String>,
    /// Calls that changed a production resource (always empty: the guard refuses them).
    pub production_changed: Vec<String>,
    /// Every provider call, in order.
    pub calls: Vec<String>,
}

impl DrillReport {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\": \"report serialisation failed: {e}\"}}"))
    }

    /// The report as Markdown, readable on its own: verdict, targets against achieved,
    /// isolation, cleanup, then the recovery's own report (timeline, critical path,
    /// retries, review).
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let verdict = if self.passed {
            "✅ passed"
        } else {
            "❌ failed"
        };
        let _ = writeln!(
            out,
            "# Drill `{}`: {} / {} — {verdict}\n",
            cell(&self.tag),
            cell(&self.plan),
            cell(&self.scenario)
        );
        let _ = writeln!(out, "| | |\n|---|---|");
        let _ = writeln!(out, "| Started | {} |", self.started_at.to_rfc3339());
        let _ = writeln!(out, "| Setup | {} |", human(self.setup));
        let _ = writeln!(
            out,
            "| Recovery | **{}**, {} (forecast {}) |",
            self.run.outcome,
            human(self.run.achieved_rto),
            human(self.run.forecast_rto)
        );
        let _ = writeln!(out, "| Retries | {} |", self.run.retries);
        let _ = writeln!(out, "| Provider calls | {} |", self.calls.len());
        let _ = writeln!(
            out,
            "| Production changed | {} |\n",
            if self.production_changed.is_empty() {
                "nothing".to_string()
            } else {
                format!("**{}**", self.production_changed.len())
            }
        );
        let _ = writeln!(out, "## Targets against achieved\n");
        let _ = writeln!(
            out,
            "| Service | RTO target | Achieved RTO | RPO target | Achieved RPO | Result |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|:---:|");
        for s in &self.run.services {
            let opt = |d: Option<Duration>| d.map_or_else(|| "—".into(), human);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                cell(&s.name),
                human(s.rto_target),
                opt(s.achieved_rto),
                human(s.rpo_target),
                opt(s.achieved_rpo),
                if s.met { "✅ met" } else { "❌ missed" }
            );
        }
        let _ = writeln!(out, "\n## Isolation\n");
        let _ = writeln!(
            out,
            "Every resource the drill created carries the suffix `-{}`. A guard refused any call that would change a production resource.\n",
            cell(&self.tag)
        );
        for c in &self.created {
            let _ = writeln!(out, "- created {}", cell(c));
        }
        if !self.refused.is_empty() {
            let _ = writeln!(out, "\nRefused calls:\n");
            for r in &self.refused {
                let _ = writeln!(out, "- {}", cell(r));
            }
        }
        out.push('\n');
        write_cleanup(&mut out, &self.cleaned_up, &self.not_cleaned, "##");
        out.push_str(&self.run.to_markdown_at(2));
        out
    }
}

/// A drill of one scenario on the simulated cloud: see the [module docs](super).
///
/// The copy: every database instance and replica gets the suffix `-{tag}` (the primary is
/// restored from production's newest snapshot, the replicas created from it), every
/// workload runs in the namespace `{namespace}-{tag}`, every DNS record is
/// `{tag}.{name}` (health-check targets follow), every CDN distribution `{id}-{tag}` and
/// every load balancer target group `{group}-{tag}`, and the scenario's notifications go
/// nowhere (a drill pages no one). The scenario's incident is injected into the copy only
/// (its primary databases fail for a region failover or a database failure, a bad release
/// of its workloads is rolled out for an application rollback): production keeps serving.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// use dr_core::drill::ScenarioDrill;
/// use dr_core::plan::Plan;
///
/// let plan = Plan::load(std::path::Path::new("examples/plans/region-failover.yaml")).unwrap();
/// let report = ScenarioDrill::new(&plan, "region-failover").tag("drill1").run_on_sim().await.unwrap();
/// assert!(report.production_changed.is_empty());
/// std::fs::write("drill.md", report.to_markdown()).unwrap();
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ScenarioDrill {
    plan: Plan,
    scenario: String,
    tag: String,
    seed: u64,
    config: SimConfig,
}

impl ScenarioDrill {
    /// A drill of `scenario` of `plan`, tagged `drill`, seed 42.
    pub fn new(plan: &Plan, scenario: &str) -> Self {
        ScenarioDrill {
            plan: plan.clone(),
            scenario: scenario.to_string(),
            tag: "drill".into(),
            seed: 42,
            config: SimConfig::default(),
        }
    }

    /// The suffix of every resource the drill creates (ASCII letters, digits and `-`).
    pub fn tag(mut self, tag: &str) -> Self {
        self.tag = tag
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if self.tag.is_empty() {
            self.tag = "drill".into();
        }
        self
    }

    /// Seed of the simulated cloud and the executor.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The simulated cloud's configuration (durations, faults).
    pub fn sim_config(mut self, config: SimConfig) -> Self {
        self.config = config;
        self
    }

    /// The isolated copy of the plan the drill recovers. Its services keep no block volumes
    /// and no cloud credential: the copy would share production's own volumes and secret
    /// manager entries, so a drill neither snapshots those volumes nor rotates that
    /// credential.
    pub fn isolated_plan(&self) -> Plan {
        let tag = &self.tag;
        let mut p = self.plan.clone();
        p.name = format!("{}-{tag}", p.name);
        for db in &mut p.databases {
            db.instance_id = Some(format!("{}-{tag}", db.instance()));
            for r in &mut db.replicas {
                r.id = format!("{}-{tag}", r.id);
            }
        }
        for c in &mut p.clusters {
            for w in &mut c.workloads {
                w.namespace = format!("{}-{tag}", w.namespace);
            }
            // Node groups are production's capacity, shared by every namespace: the copy
            // leaves them as they are (the guard refuses to scale or drain them).
            c.node_groups.clear();
        }
        let renamed: Vec<(String, String)> = p
            .dns
            .iter()
            .map(|r| (r.name.clone(), format!("{tag}.{}", r.name)))
            .collect();
        for r in &mut p.dns {
            r.name = format!("{tag}.{}", r.name);
        }
        for h in &mut p.health_checks {
            for (old, new) in &renamed {
                if h.target.contains(old.as_str()) {
                    h.target = h.target.replace(old.as_str(), new);
                    break;
                }
            }
        }
        for s in &mut p.services {
            s.volumes.clear();
            s.credential = None;
            for d in &mut s.dns {
                if let Some((_, new)) = renamed.iter().find(|(old, _)| old == d) {
                    *d = new.clone();
                }
            }
        }
        for c in &mut p.cdn {
            c.distribution = format!("{}-{tag}", c.distribution);
        }
        for l in &mut p.load_balancers {
            l.target_group = format!("{}-{tag}", l.target_group);
        }
        // A cache is restored from production's backups (read only) under an id of the
        // drill's own.
        for c in &mut p.caches {
            for id in c.restore.values_mut() {
                *id = format!("{id}-{tag}");
            }
        }
        for sc in &mut p.scenarios {
            sc.notify.clear();
        }
        p
    }

    /// Provisions the production plan on a new simulated cloud and drills on it.
    ///
    /// # Errors
    /// See [`run_in`](Self::run_in).
    pub async fn run_on_sim(&self) -> Result<DrillReport, DrillError> {
        let sim = Simulation::new(&self.plan, self.seed, self.config.clone());
        self.run_in(&sim).await
    }

    /// Drills on `sim`, a simulated cloud where production (this plan) is provisioned.
    /// Must run on a paused tokio clock.
    ///
    /// # Errors
    /// The scenario is unknown, the copy cannot be set up (no snapshot to restore from, a
    /// refused call), or it cannot be planned; what was created is removed first.
    pub async fn run_in(&self, sim: &Simulation) -> Result<DrillReport, DrillError> {
        let copy = self.isolated_plan();
        let sc = copy
            .scenario(&self.scenario)
            .cloned()
            .ok_or_else(|| DrillError::UnknownScenario(self.scenario.clone()))?;
        if matches!(sc.kind, ScenarioKind::NodeGroupFailure(_)) {
            return Err(DrillError::Unsupported {
                kind: sc.kind.name().into(),
                why: "it scales and drains the cluster's node groups, which a copy shares with production"
                    .into(),
            });
        }
        if !matches!(
            sc.kind,
            ScenarioKind::RegionFailover(_)
                | ScenarioKind::DatabaseFailure(_)
                | ScenarioKind::PointInTimeRestore(_)
                | ScenarioKind::ClusterRebuild(_)
                | ScenarioKind::ApplicationRollback(_)
                | ScenarioKind::SecurityIsolation(_)
                | ScenarioKind::ServiceRestart(_)
        ) {
            return Err(DrillError::Unsupported {
                kind: sc.kind.name().into(),
                why: "its incident and steps read and write the plan's stores (dumps, backups) or \
                      depend on a prior run, which the copy shares with production; drill the \
                      backups with BackupDrill instead"
                    .into(),
            });
        }
        let cloud = sim.cloud();
        let clock = cloud.clock();
        let started_at = clock.now();
        let t0 = tokio::time::Instant::now();

        let production = Production::of(&self.plan);
        let log = Arc::new(CallLog::with_clock(clock));
        let mut providers = Providers::new()
            .with_database(cloud.database())
            .with_dns(cloud.dns())
            .with_cluster(cloud.cluster())
            .with_probe(cloud.probe())
            .with_notifier(cloud.notifier())
            .with_cdn(cloud.cdn())
            .with_load_balancer(cloud.load_balancer())
            .with_caches(cloud.caches());
        for s in &copy.stores {
            providers = providers.with_store(&s.name, cloud.store(&s.name));
        }
        // The log outside the guard: it sees every call, the refused ones too.
        let providers = providers
            .layer(Arc::new(ProductionGuard::new(production.clone())))
            .layer(log.clone());

        let mut created: Vec<Created> = Vec::new();
        if let Err(message) = self.setup(sim, &copy, &providers, &mut created).await {
            let (_, not_cleaned) = cleanup(sim, &created);
            return Err(DrillError::Setup {
                message,
                not_cleaned,
            });
        }
        let setup = t0.elapsed();

        // The incident, on the copy only.
        let (database, from): (Option<&str>, Option<&str>) = match &sc.kind {
            ScenarioKind::RegionFailover(k) => (None, Some(k.from.as_str())),
            ScenarioKind::DatabaseFailure(k) => (Some(k.database.as_str()), None),
            _ => (None, None),
        };
        if matches!(
            sc.kind,
            ScenarioKind::RegionFailover(_) | ScenarioKind::DatabaseFailure(_)
        ) {
            for db in &copy.databases {
                let in_scope = database.is_none_or(|d| d == db.name);
                if in_scope && from.is_none_or(|r| r == db.region) {
                    cloud.fail_database(&DbRef::new(&db.region, db.instance()));
                }
            }
        }

        if let ScenarioKind::ApplicationRollback(rollback) = &sc.kind {
            // A bad release of the service's workloads, in the copy's namespaces.
            let primary = copy.primary_region().map(|r| r.name.clone());
            let svc = copy.service(&rollback.service);
            for c in copy
                .clusters
                .iter()
                .filter(|c| Some(&c.region) == primary.as_ref())
            {
                for w in c
                    .workloads
                    .iter()
                    .filter(|w| svc.is_some_and(|s| s.workloads.contains(&w.name)))
                {
                    let wref = WorkloadRef {
                        cluster: c.name.clone(),
                        namespace: w.namespace.clone(),
                        kind: w.kind,
                        name: w.name.clone(),
                    };
                    if let Ok(cluster) = providers.cluster(&c.name) {
                        let image = format!("{}:bad-release", w.name);
                        if let Err(e) = cluster.set_image(&wref, &w.name, &image).await {
                            tracing::warn!(workload = %wref, error = %e, "could not inject a bad release");
                        }
                    }
                }
            }
        }

        let observed = ObservedState::observe(&copy, &providers, clock.now()).await;
        let graph = match planner::plan(&copy, &sc.name, &observed) {
            Ok(g) => g,
            Err(e) => {
                cleanup(sim, &created);
                return Err(e.into());
            }
        };
        let run = Executor::new(providers.clone())
            .clock(clock)
            .seed(self.seed)
            .approvals(Arc::new(AutoApprove))
            .run(&graph)
            .await;

        // What the run itself created (restores into new instances, new replicas, the
        // namespace a clean redeploy goes into).
        for c in log.calls() {
            if c.took_effect && c.operation == Operation::Apply {
                if let Some((cluster, namespace)) = c.target.split_once('/') {
                    let ns = Created::Namespace {
                        cluster: cluster.to_string(),
                        namespace: namespace.to_string(),
                    };
                    if !created.contains(&ns) {
                        created.push(ns);
                    }
                }
            }
            if c.took_effect && c.operation == Operation::RestoreCache {
                let cache = Created::Cache(c.target.clone());
                if !created.contains(&cache) {
                    created.push(cache);
                }
            }
            if c.took_effect
                && matches!(
                    c.operation,
                    Operation::RestoreSnapshot
                        | Operation::RestorePointInTime
                        | Operation::CreateReplica
                )
            {
                if let Some(db) = db_of(&c) {
                    if !created.contains(&Created::Database(db.clone())) {
                        created.push(Created::Database(db));
                    }
                }
            }
        }
        let (cleaned_up, not_cleaned) = cleanup(sim, &created);

        let calls = log.calls();
        let refused: Vec<String> = calls
            .iter()
            .filter(|c| !c.ok && production.changed_by(&info(c)).is_some())
            .map(show)
            .collect();
        let production_changed: Vec<String> = calls
            .iter()
            .filter(|c| c.took_effect && production.changed_by(&info(c)).is_some())
            .map(show)
            .collect();
        let passed = run.targets_met()
            && production_changed.is_empty()
            && refused.is_empty()
            && not_cleaned.is_empty();
        Ok(DrillReport {
            tag: self.tag.clone(),
            plan: self.plan.name.clone(),
            scenario: self.scenario.clone(),
            started_at,
            setup,
            passed,
            run,
            created: created.iter().map(ToString::to_string).collect(),
            cleaned_up,
            not_cleaned,
            refused,
            production_changed,
            calls: calls.iter().map(show).collect(),
        })
    }

    /// Restores the test databases from production's newest snapshots, creates their
    /// replicas, the test namespaces, records and health endpoints.
    async fn setup(
        &self,
        sim: &Simulation,
        copy: &Plan,
        providers: &Providers,
        created: &mut Vec<Created>,
    ) -> Result<(), String> {
        let cloud = sim.cloud();
        let wait = Duration::from_secs(6 * 3600);
        for (prod, test) in self.plan.databases.iter().zip(&copy.databases) {
            let db = providers
                .database(&prod.region)
                .map_err(|e| e.to_string())?
                .clone();
            let source = DbRef::new(&prod.region, prod.instance());
            let newest = db
                .list_snapshots(&source, &prod.region)
                .await
                .map_err(|e| format!("listing the snapshots of {source}: {e}"))?
                .into_iter()
                .filter(|s| s.available)
                .max_by_key(|s| s.created)
                .ok_or_else(|| {
                    format!(
                        "{source} has no snapshot in {} to restore from",
                        prod.region
                    )
                })?;
            let primary = DbRef::new(&test.region, test.instance());
            db.restore_snapshot(&newest, &primary)
                .await
                .map_err(|e| format!("restoring {} into {primary}: {e}", newest.id))?;
            created.push(Created::Database(primary.clone()));
            db.wait_available(&primary, wait)
                .await
                .map_err(|e| format!("waiting for {primary}: {e}"))?;
            for r in &test.replicas {
                let replica = DbRef::new(&r.region, &r.id);
                let rdb = providers
                    .database(&r.region)
                    .map_err(|e| e.to_string())?
                    .clone();
                rdb.create_replica(&primary, &replica)
                    .await
                    .map_err(|e| format!("creating {replica}: {e}"))?;
                created.push(Created::Database(replica.clone()));
                rdb.wait_available(&replica, wait)
                    .await
                    .map_err(|e| format!("waiting for {replica}: {e}"))?;
                cloud.set_replication_lag(&replica, r.expected_lag.get());
            }
        }
        // Test namespaces, records and endpoints exist only on the simulated cloud's own
        // API (no provider trait creates a namespace or a record).
        // The copy's pods need nodes of their own: production's node groups hold
        // production's pods. One test group per production group, at its serving size.
        for c in &self.plan.clusters {
            for g in &c.node_groups {
                let group =
                    crate::provider::NodeGroupRef::new(&c.name, format!("{}-{}", g.name, self.tag));
                cloud.add_node_group(&group, g.serving(), g.pods_per_node);
                created.push(Created::NodeGroup(group));
            }
        }
        let primary_region = copy.primary_region().map(|r| r.name.clone());
        let mut namespaces = BTreeSet::new();
        for c in &copy.clusters {
            let serving = copy
                .region(&c.region)
                .is_some_and(|r| r.role == RegionRole::Primary);
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
                if namespaces.insert((c.name.clone(), w.namespace.clone())) {
                    created.push(Created::Namespace {
                        cluster: c.name.clone(),
                        namespace: w.namespace.clone(),
                    });
                }
            }
        }
        for record in &copy.dns {
            if let Some(value) = primary_region
                .as_deref()
                .and_then(|r| copy.dns_target(record, r))
            {
                cloud.add_record(&record.zone, &record.name, &value);
                created.push(Created::Record {
                    zone: record.zone.clone(),
                    name: record.name.clone(),
                });
            }
        }
        for (target, binding) in crate::simulation::endpoint_bindings(copy) {
            cloud.bind_endpoint(&target, binding);
            created.push(Created::Endpoint(target));
        }
        // The copy's distributions and target groups, serving from the primary region.
        crate::simulation::provision_edge(cloud, copy, primary_region.as_deref());
        for c in &copy.cdn {
            created.push(Created::Distribution(c.distribution.clone()));
        }
        for l in &copy.load_balancers {
            created.push(Created::TargetGroup(l.target_group.clone()));
        }
        Ok(())
    }
}

/// The database a create call addressed (`database region/id …`).
fn db_of(c: &CallRecord) -> Option<DbRef> {
    let t = c.target.strip_prefix("database ")?;
    let first = t.split_whitespace().next()?;
    let (region, id) = first.split_once('/')?;
    Some(DbRef::new(region, id))
}

fn info(c: &CallRecord) -> crate::layer::CallInfo {
    crate::layer::CallInfo {
        role: c.role,
        key: String::new(),
        provider: c.provider.clone(),
        operation: c.operation,
        target: c.target.clone(),
    }
}

fn show(c: &CallRecord) -> String {
    format!(
        "{} {} {} on {}: {}",
        c.at.to_rfc3339(),
        c.role,
        c.operation,
        c.target,
        if c.took_effect {
            "done"
        } else if c.ok {
            "ok"
        } else {
            "failed"
        }
    )
}

/// Removes what the drill created, newest first.
fn cleanup(sim: &Simulation, created: &[Created]) -> (Vec<String>, Vec<NotCleaned>) {
    let cloud = sim.cloud();
    let (mut done, mut not) = (Vec::new(), Vec::new());
    for c in created.iter().rev() {
        let removed = match c {
            Created::Database(db) => cloud.remove_database(db),
            Created::Namespace { cluster, namespace } => cloud.remove_namespace(cluster, namespace),
            Created::Record { zone, name } => cloud.remove_record(zone, name),
            Created::Endpoint(t) => cloud.unbind_endpoint(t),
            Created::Distribution(id) => cloud.remove_distribution(id),
            Created::TargetGroup(g) => cloud.remove_target_group(g),
            Created::NodeGroup(g) => cloud.remove_node_group(g),
            Created::Cache(c) => c
                .split_once('/')
                .is_some_and(|(region, id)| cloud.remove_cache(region, id)),
        };
        if removed {
            done.push(c.to_string());
        } else {
            not.push(NotCleaned {
                resource: c.to_string(),
                reason: "it was no longer there to remove".into(),
            });
        }
    }
    (done, not)
}
