//! Least privilege: every provider call a run can make — provider-agnostic, from the same
//! [`Call`] lists the dry run and preflight use — with the resources each acts on, so that a
//! platform's own permission documents (an IAM policy, a Kubernetes `Role`) can be written
//! from it (`dr-providers` renders them).
//!
//! A [`PermissionSet`] holds, for one or more recovery graphs of a plan:
//!
//! * [`Phase::Observe`]: the reads the run makes before planning (every database and replica
//!   described, snapshots listed in every region that may hold one, each managed cache's
//!   backups listed where it can be restored);
//! * [`Phase::Preflight`]: the read-only call each mapped provider answers before the first
//!   change (a record read per zone, a workload's status per cluster, a store listing, a
//!   probe per health check);
//! * [`Phase::Step`]: every call of every step, read-backs included;
//! * [`Phase::Gate`]: what a safety gate reads right before a step (the old primary, when the
//!   plan asks for `no-split-brain`);
//! * [`Phase::Compensation`]: the calls that undo a step that can be undone, when
//!   compensation is on.
//!
//! # Examples
//!
//! ```no_run
//! use dr_core::permissions::{PermissionOptions, PermissionSet};
//! use dr_core::plan::Plan;
//! use dr_core::planner::{self, ObservedState};
//!
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let plan = Plan::load("dr-plan.yaml")?;
//! let observed = ObservedState::nominal(&plan, chrono::Utc::now());
//! let graph = planner::plan(&plan, "region-failover", &observed)?;
//! let set = PermissionSet::for_graphs(&plan, [&graph], &PermissionOptions::default());
//! for need in set.needs() {
//!     println!("{} {} {}", need.role.name(), need.operation, need.target);
//! }
//! # Ok(()) }
//! ```

use std::collections::BTreeSet;

use serde::Serialize;

use crate::graph::RecoveryGraph;
use crate::plan::{Interlock, Plan};
use crate::planner::{ObservedState, PlanningError};
use crate::provider::{DbRef, Manifest, Operation, WorkloadKind, WorkloadRef};
use crate::step::{self, Call, Role, StepAction, StepRegistry};

/// When in a run a call is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Reading the state the planner plans from.
    Observe,
    /// The read-only call each mapped provider answers before the first change.
    Preflight,
    /// A step's own call (read-backs included).
    Step,
    /// A safety gate's read right before a step's call.
    Gate,
    /// Undoing a step after a critical failure.
    Compensation,
}

/// One Kubernetes object of a manifest: what applying it touches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjectRef {
    /// `apiVersion` (`apps/v1`, `v1`).
    pub api_version: String,
    /// `kind` (`Deployment`).
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
}

/// What a call acts on, as far as the plan says.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Resource {
    /// A database instance.
    Database {
        /// Its region.
        region: String,
        /// Its instance id.
        id: String,
    },
    /// A database snapshot of a region: one by id, or any (`None`: which one is chosen when
    /// the step runs, such as the newest).
    Snapshot {
        /// The region holding it.
        region: String,
        /// Its id, when the plan names it.
        id: Option<String>,
    },
    /// A DNS record of a hosted zone.
    Record {
        /// The zone.
        zone: String,
        /// The record's name.
        name: String,
    },
    /// A change submitted to a zone (waited on until in sync).
    Change {
        /// The zone.
        zone: String,
    },
    /// A workload.
    Workload {
        /// Cluster.
        cluster: String,
        /// Namespace.
        namespace: String,
        /// Deployment or StatefulSet.
        workload: WorkloadKind,
        /// Name.
        name: String,
    },
    /// A Secret.
    Secret {
        /// Cluster.
        cluster: String,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// Objects applied into a namespace (created when missing).
    Applied {
        /// Cluster.
        cluster: String,
        /// Namespace.
        namespace: String,
        /// The objects of the manifests.
        objects: Vec<ObjectRef>,
    },
    /// The objects of a namespace, listed for an export.
    Exported {
        /// Cluster.
        cluster: String,
        /// Namespace.
        namespace: String,
        /// The kinds listed (empty: the default kinds of an export).
        kinds: Vec<String>,
    },
    /// The objects of a store whose keys start with `prefix` (a whole key is its own prefix:
    /// a backup's manifest, `KEY.manifest.json`, starts with its key).
    Objects {
        /// The store.
        store: String,
        /// The key prefix (empty: the whole store).
        prefix: String,
    },
    /// A health check's target.
    Check {
        /// The check's name.
        check: String,
        /// What it probes.
        target: String,
    },
    /// A notification channel.
    Channel {
        /// The channel.
        channel: String,
    },
    /// A CDN distribution (its configuration, read and updated).
    Distribution {
        /// The distribution id.
        id: String,
    },
    /// A load balancer target group (its targets, read, registered and deregistered).
    TargetGroup {
        /// The target group ARN or name.
        group: String,
    },
    /// A node group of a cluster (its scaling bounds).
    NodeGroup {
        /// Cluster.
        cluster: String,
        /// The group's name.
        name: String,
    },
    /// The nodes of a node group (listed, cordoned, drained), with the pods bound to them
    /// (evicted).
    Nodes {
        /// Cluster.
        cluster: String,
        /// The node label that names the group.
        label: String,
        /// The group's name.
        node_group: String,
    },
    /// A block volume (snapshotted as evidence).
    Volume {
        /// Its region.
        region: String,
        /// Its id.
        id: String,
    },
    /// The volume snapshots of a region (created tagged, found by tag, described).
    VolumeSnapshots {
        /// The region.
        region: String,
        /// The tags the snapshots carry.
        tags: std::collections::BTreeMap<String, String>,
    },
    /// A managed cache (described; created from a backup).
    Cache {
        /// Its region.
        region: String,
        /// Its id.
        id: String,
    },
    /// The backups of a managed cache held in a region (listed; restored from).
    CacheBackups {
        /// The region holding them.
        region: String,
        /// The cache they were taken of.
        cache: String,
    },
    /// A secret of a cloud secret manager.
    CloudSecret {
        /// Its region.
        region: String,
        /// Its name.
        name: String,
    },
    /// What a custom step names only in words: anything of its role.
    Any {
        /// The call's target, as the dry run shows it.
        target: String,
    },
}

/// One call a run can make, and what it acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Need {
    /// When it is made.
    pub phase: Phase,
    /// The step making it (`None` for observation and preflight).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The scenario whose graph holds the step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    /// Where it goes.
    #[serde(flatten)]
    pub role: Role,
    /// The operation, as the dry run names it.
    pub operation: String,
    /// What it acts on, for people (the dry run's target).
    pub target: String,
    /// What it acts on, for permission documents.
    pub resources: Vec<Resource>,
    #[serde(skip)]
    op: Option<Operation>,
}

impl Need {
    /// The provider operation (`None` for an approval, a webhook, a command or a custom
    /// service, which no provider serves).
    pub fn provider_operation(&self) -> Option<Operation> {
        self.op
    }
}

/// What [`PermissionSet`] includes besides the steps' own calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PermissionOptions {
    /// The reads before planning (default on).
    pub observe: bool,
    /// The providers' read-only preflight calls (default on).
    pub preflight: bool,
    /// The calls that undo a compensable step (default on: a run with
    /// [`compensate_on_failure`](crate::executor::Executor::compensate_on_failure) makes
    /// them).
    pub compensation: bool,
}

impl Default for PermissionOptions {
    fn default() -> Self {
        PermissionOptions {
            observe: true,
            preflight: true,
            compensation: true,
        }
    }
}

/// Every provider call the runs of one or more recovery graphs of a plan can make. See the
/// [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PermissionSet {
    /// The plan's name.
    pub plan: String,
    /// The scenarios covered.
    pub scenarios: Vec<String>,
    needs: Vec<Need>,
}

impl PermissionSet {
    /// The calls of the runs of `graphs` (graphs of `plan`), with the observation and
    /// preflight reads of `plan` and the gates' and compensations' calls `opts` asks for.
    pub fn for_graphs<'a>(
        plan: &Plan,
        graphs: impl IntoIterator<Item = &'a RecoveryGraph>,
        opts: &PermissionOptions,
    ) -> Self {
        let mut set = PermissionSet {
            plan: plan.name.clone(),
            scenarios: Vec::new(),
            needs: Vec::new(),
        };
        if opts.observe {
            observe_needs(plan, &mut set.needs);
        }
        if opts.preflight {
            preflight_needs(plan, &mut set.needs);
        }
        for graph in graphs {
            if !set.scenarios.contains(&graph.scenario) {
                set.scenarios.push(graph.scenario.clone());
            }
            for s in &graph.steps {
                let action = s.action.get();
                let calls = action.calls();
                let mut push = |phase: Phase, call: &Call| {
                    let need = Need {
                        phase,
                        step: Some(s.id.to_string()),
                        scenario: Some(graph.scenario.clone()),
                        role: call.role.clone(),
                        operation: call.operation.clone(),
                        target: call.target.clone(),
                        resources: resources_of(action, call),
                        op: call.provider_operation(),
                    };
                    if !set.needs.contains(&need) {
                        set.needs.push(need);
                    }
                };
                for c in &calls {
                    push(Phase::Step, c);
                }
                for c in gate_calls(plan, graph, action) {
                    push(Phase::Gate, &c);
                }
                if opts.compensation && action.compensable() {
                    for c in &calls {
                        push(Phase::Compensation, c);
                    }
                }
            }
        }
        set
    }

    /// The calls of every run `scenario` (every scenario of `plan` when `None`) can make
    /// from `observed`, and from the states an incident may leave instead (every primary
    /// unreachable, every replica unreachable, no snapshot): a scenario that chooses its
    /// recovery from the observed state (a reboot, a promotion or a restore) needs what
    /// each choice calls.
    ///
    /// # Errors
    /// The planning error of the scenario as observed (an unknown scenario, an invalid plan);
    /// an alternative state the scenario cannot recover from is left out.
    pub fn for_plan(
        plan: &Plan,
        scenario: Option<&str>,
        observed: &ObservedState,
        registry: &StepRegistry,
        opts: &PermissionOptions,
    ) -> Result<Self, PlanningError> {
        let names: Vec<&str> = match scenario {
            Some(s) => vec![s],
            None => plan.scenarios.iter().map(|s| s.name.as_str()).collect(),
        };
        let mut graphs = Vec::new();
        for name in names {
            graphs.extend(scenario_graphs(plan, name, observed, registry)?);
        }
        Ok(Self::for_graphs(plan, &graphs, opts))
    }

    /// Every call, in the order found (observation, preflight, then each graph's steps).
    pub fn needs(&self) -> &[Need] {
        &self.needs
    }

    /// Whether the set holds `call` of step `step` (as the dry run lists it).
    pub fn covers(&self, step: &str, role: &str, operation: &str, target: &str) -> bool {
        self.needs.iter().any(|n| {
            n.step.as_deref() == Some(step)
                && n.role.name() == role
                && n.operation == operation
                && n.target == target
        })
    }
}

/// The graphs of `scenario` from `observed` and from the states an incident may leave
/// instead (every primary unreachable, every replica unreachable, no snapshot): what
/// [`PermissionSet::for_plan`] covers for one scenario.
///
/// # Errors
/// The planning error of the scenario as observed; an alternative state the scenario
/// cannot recover from is left out.
pub fn scenario_graphs(
    plan: &Plan,
    scenario: &str,
    observed: &ObservedState,
    registry: &StepRegistry,
) -> Result<Vec<RecoveryGraph>, PlanningError> {
    let mut graphs = vec![crate::planner::plan_with(
        plan, scenario, observed, registry,
    )?];
    for alt in alternatives(observed) {
        if let Ok(g) = crate::planner::plan_with(plan, scenario, &alt, registry) {
            graphs.push(g);
        }
    }
    Ok(graphs)
}

/// The observed state with every primary, then every replica, unreachable, then without
/// snapshots.
fn alternatives(observed: &ObservedState) -> Vec<ObservedState> {
    let mut no_primary = observed.clone();
    let mut no_replica = observed.clone();
    let mut no_snapshot = observed.clone();
    for db in no_primary.databases.values_mut() {
        db.primary = None;
    }
    for db in no_replica.databases.values_mut() {
        for r in db.replicas.values_mut() {
            r.state = None;
            r.lag = None;
        }
    }
    for db in no_snapshot.databases.values_mut() {
        db.latest_snapshot.clear();
    }
    vec![no_primary, no_replica, no_snapshot]
}

fn provider_need(phase: Phase, role: Role, op: Operation, target: String, r: Resource) -> Need {
    Need {
        phase,
        step: None,
        scenario: None,
        role,
        operation: op.name().to_string(),
        target,
        resources: vec![r],
        op: Some(op),
    }
}

/// `ObservedState::observe`: every primary and replica described, snapshots listed in the
/// database's region and every region its backups are copied to, each managed cache's
/// backups listed in every region it can be restored into.
fn observe_needs(plan: &Plan, out: &mut Vec<Need>) {
    for c in &plan.caches {
        for region in c.restore.keys() {
            out.push(provider_need(
                Phase::Observe,
                Role::Caches {
                    region: region.clone(),
                },
                Operation::ListCacheBackups,
                format!("{region}/{} (backups)", c.id),
                Resource::CacheBackups {
                    region: region.clone(),
                    cache: c.id.clone(),
                },
            ));
        }
    }
    for db in &plan.databases {
        let mut refs = vec![DbRef::new(&db.region, db.instance())];
        refs.extend(db.replicas.iter().map(|r| DbRef::new(&r.region, &r.id)));
        for r in refs {
            out.push(provider_need(
                Phase::Observe,
                Role::Database {
                    region: r.region.clone(),
                },
                Operation::Describe,
                r.to_string(),
                Resource::Database {
                    region: r.region.clone(),
                    id: r.id.clone(),
                },
            ));
        }
        let mut regions = vec![db.region.clone()];
        if let Some(b) = &db.backups {
            regions.extend(b.copy_to.iter().cloned());
        }
        for region in regions {
            out.push(Need {
                resources: vec![
                    Resource::Database {
                        region: region.clone(),
                        id: db.instance().to_string(),
                    },
                    Resource::Snapshot {
                        region: region.clone(),
                        id: None,
                    },
                ],
                ..provider_need(
                    Phase::Observe,
                    Role::Database {
                        region: region.clone(),
                    },
                    Operation::ListSnapshots,
                    format!("{}/{} (snapshots in {region})", db.region, db.instance()),
                    Resource::Any {
                        target: String::new(),
                    },
                )
            });
        }
    }
}

/// The providers' reachability calls: a record read per zone, a workload's status per
/// cluster, a store listing, a probe per health check (databases are described above).
fn preflight_needs(plan: &Plan, out: &mut Vec<Need>) {
    let mut zones = BTreeSet::new();
    for r in &plan.dns {
        if zones.insert(r.zone.clone()) {
            out.push(provider_need(
                Phase::Preflight,
                Role::Dns {
                    zone: r.zone.clone(),
                },
                Operation::GetRecord,
                format!("{}/{}", r.zone, r.name),
                Resource::Record {
                    zone: r.zone.clone(),
                    name: r.name.clone(),
                },
            ));
        }
    }
    for c in &plan.clusters {
        if let Some(w) = c.workloads.first() {
            let wr = WorkloadRef {
                cluster: c.name.clone(),
                namespace: w.namespace.clone(),
                kind: w.kind,
                name: w.name.clone(),
            };
            out.push(provider_need(
                Phase::Preflight,
                Role::Cluster {
                    cluster: c.name.clone(),
                },
                Operation::RolloutStatus,
                wr.to_string(),
                workload(&wr),
            ));
        }
    }
    for s in &plan.stores {
        out.push(provider_need(
            Phase::Preflight,
            Role::Store {
                store: s.name.clone(),
            },
            Operation::List,
            format!("{} (first object)", s.name),
            Resource::Objects {
                store: s.name.clone(),
                prefix: String::new(),
            },
        ));
    }
    for h in &plan.health_checks {
        out.push(provider_need(
            Phase::Preflight,
            Role::Probe,
            Operation::Probe,
            format!("{} ({})", h.name, h.target),
            Resource::Check {
                check: h.name.clone(),
                target: h.target.clone(),
            },
        ));
    }
}

/// What the gates read right before a step: with `no-split-brain`, a promotion reads the
/// replica's source, the old primary (found in the plan).
fn gate_calls(plan: &Plan, graph: &RecoveryGraph, action: &dyn StepAction) -> Vec<Call> {
    let mut out = Vec::new();
    let any = action.type_erased();
    if let Some(p) = any.downcast_ref::<step::database::PromoteReplica>() {
        if graph.interlocks.contains(&Interlock::NoSplitBrain) {
            let sources = plan.databases.iter().filter(|d| {
                d.replicas
                    .iter()
                    .any(|r| r.id == p.db.id && r.region == p.db.region)
            });
            for d in sources {
                let primary = DbRef::new(&d.region, d.instance());
                out.push(Call::provider(
                    Role::Database {
                        region: primary.region.clone(),
                    },
                    Operation::Describe,
                    format!("{primary} (the old primary, before promoting {})", p.db),
                ));
            }
        }
    }
    out
}

fn db(r: &DbRef) -> Resource {
    Resource::Database {
        region: r.region.clone(),
        id: r.id.clone(),
    }
}

fn snapshot(region: &str, id: Option<&str>) -> Resource {
    Resource::Snapshot {
        region: region.to_string(),
        id: id.map(str::to_string),
    }
}

fn workload(w: &WorkloadRef) -> Resource {
    Resource::Workload {
        cluster: w.cluster.clone(),
        namespace: w.namespace.clone(),
        workload: w.kind,
        name: w.name.clone(),
    }
}

fn node_group(g: &crate::provider::NodeGroupRef) -> Resource {
    Resource::NodeGroup {
        cluster: g.cluster.clone(),
        name: g.name.clone(),
    }
}

fn objects(store: &str, prefix: &str) -> Resource {
    Resource::Objects {
        store: store.to_string(),
        prefix: prefix.to_string(),
    }
}

/// The objects of `manifests` (every document; `kind: List` flattened). A document that
/// does not parse is left out: the apply refuses it before calling anything.
pub fn manifest_objects(manifests: &[Manifest]) -> Vec<ObjectRef> {
    fn push(v: &serde_json::Value, out: &mut Vec<ObjectRef>) {
        let field = |p: &str| v.pointer(p).and_then(|x| x.as_str()).map(str::to_string);
        if field("/kind").as_deref() == Some("List") {
            if let Some(items) = v.get("items").and_then(|i| i.as_array()) {
                items.iter().for_each(|i| push(i, out));
            }
            return;
        }
        if let (Some(api_version), Some(kind), Some(name)) = (
            field("/apiVersion"),
            field("/kind"),
            field("/metadata/name"),
        ) {
            out.push(ObjectRef {
                api_version,
                kind,
                name,
            });
        }
    }
    let mut out = Vec::new();
    for m in manifests {
        for doc in serde_yaml_ng::Deserializer::from_str(&m.body) {
            if let Ok(v) = <serde_json::Value as serde::Deserialize>::deserialize(doc) {
                push(&v, &mut out);
            }
        }
    }
    out
}

/// The resources `call` of `action` acts on: from the built-in kinds' own fields, or the
/// role's every resource for a kind this module does not know.
fn resources_of(action: &dyn StepAction, call: &Call) -> Vec<Resource> {
    use step::backup::*;
    use step::cluster::*;
    use step::database::*;
    use Operation as O;
    let Some(op) = call.provider_operation() else {
        return Vec::new();
    };
    let any = action.type_erased();
    if let Some(s) = any.downcast_ref::<RebootDatabase>() {
        return vec![db(&s.db)];
    }
    if let Some(s) = any.downcast_ref::<PromoteReplica>() {
        return vec![db(&s.db)];
    }
    if let Some(s) = any.downcast_ref::<WaitDatabase>() {
        return vec![db(&s.db)];
    }
    if let Some(s) = any.downcast_ref::<RestoreSnapshot>() {
        return match op {
            O::ListSnapshots => vec![
                db(&DbRef::new(&s.snapshot_region, &s.source.id)),
                snapshot(&s.snapshot_region, None),
            ],
            O::RestoreSnapshot => vec![db(&s.target), snapshot(&s.target.region, None)],
            _ => vec![db(&s.target)],
        };
    }
    if let Some(s) = any.downcast_ref::<RestorePointInTime>() {
        return match op {
            O::RestorePointInTime => vec![db(&s.target), db(&s.source)],
            _ if call.target == s.source.to_string() => vec![db(&s.source)],
            _ => vec![db(&s.target)],
        };
    }
    if let Some(s) = any.downcast_ref::<CreateDbSnapshot>() {
        let snap = snapshot(&s.db.region, Some(&s.snapshot_id));
        return match op {
            O::CreateSnapshot => vec![db(&s.db), snap],
            _ => vec![snap],
        };
    }
    if let Some(s) = any.downcast_ref::<CreateReplica>() {
        return match op {
            O::CreateReplica => vec![db(&s.replica), db(&s.source)],
            _ => vec![db(&s.replica)],
        };
    }
    if let Some(s) = any.downcast_ref::<step::replication::VerifyCaughtUp>() {
        return vec![db(&s.replica)];
    }
    if let Some(s) = any.downcast_ref::<WaitDbSnapshot>() {
        return vec![snapshot(&s.region, Some(&s.id))];
    }
    if let Some(s) = any.downcast_ref::<CopyDbSnapshot>() {
        let source = snapshot(&s.region, Some(&s.id));
        let target = snapshot(&s.target_region, Some(&s.target_id));
        return match op {
            O::CopySnapshot => vec![source, target],
            _ if matches!(&call.role, Role::Database { region } if *region == s.target_region)
                && call
                    .target
                    .starts_with(&format!("{}/{}", s.target_region, s.target_id)) =>
            {
                vec![target]
            }
            _ => vec![source],
        };
    }
    if let Some(s) = any.downcast_ref::<step::dump::RestoreDump>() {
        return match op {
            O::RestoreSnapshot => vec![db(&s.target), snapshot(&s.target.region, None)],
            O::Describe => vec![db(&s.target)],
            _ => vec![objects(&s.store, s.key.as_deref().unwrap_or(&s.prefix))],
        };
    }
    if let Some(s) = any.downcast_ref::<step::dump::VerifyDump>() {
        return vec![objects(&s.store, s.key.as_deref().unwrap_or(&s.prefix))];
    }
    if let Some(s) = any.downcast_ref::<step::dns::SwitchDns>() {
        return match op {
            O::WaitChange => vec![Resource::Change {
                zone: s.zone.clone(),
            }],
            _ => vec![Resource::Record {
                zone: s.zone.clone(),
                name: s.name.clone(),
            }],
        };
    }
    if let Some(s) = any.downcast_ref::<ApplyManifests>() {
        return vec![Resource::Applied {
            cluster: s.cluster.clone(),
            namespace: s.namespace.clone(),
            objects: manifest_objects(&s.manifests),
        }];
    }
    if let Some(s) = any.downcast_ref::<Scale>() {
        return vec![workload(&s.workload)];
    }
    if let Some(s) = any.downcast_ref::<RolloutRestart>() {
        return vec![workload(&s.workload)];
    }
    if let Some(s) = any.downcast_ref::<RolloutUndo>() {
        return vec![workload(&s.workload)];
    }
    if let Some(s) = any.downcast_ref::<WaitWorkload>() {
        return vec![workload(&s.workload)];
    }
    if let Some(s) = any.downcast_ref::<IsolateWorkload>() {
        return vec![workload(&s.workload)];
    }
    if let Some(s) = any.downcast_ref::<step::config::SetEnv>() {
        return vec![workload(&s.workload)];
    }
    if let Some(s) = any.downcast_ref::<SetSecret>() {
        return match (&s.value, op) {
            (SecretSource::DatabaseEndpoint { db: d, .. }, O::Describe) => vec![db(d)],
            _ => vec![Resource::Secret {
                cluster: s.cluster.clone(),
                namespace: s.namespace.clone(),
                name: s.secret.clone(),
            }],
        };
    }
    if let Some(s) = any.downcast_ref::<step::store::ExportResources>() {
        return match op {
            O::Export => vec![Resource::Exported {
                cluster: s.cluster.clone(),
                namespace: s.namespace.clone(),
                kinds: s.kinds.clone(),
            }],
            _ => vec![objects(&s.store, &s.key)],
        };
    }
    if let Some(r) = security_resources(any, op) {
        return r;
    }
    if let Some(s) = any.downcast_ref::<BackupResources>() {
        return match op {
            O::Export => vec![Resource::Exported {
                cluster: s.cluster.clone(),
                namespace: s.namespace.clone(),
                kinds: Vec::new(),
            }],
            _ => vec![objects(&s.store, &s.key)],
        };
    }
    if let Some(s) = any.downcast_ref::<VerifyBackups>() {
        return vec![objects(&s.store, &s.prefix)];
    }
    if let Some(s) = any.downcast_ref::<PruneBackups>() {
        return vec![objects(&s.store, &s.prefix)];
    }
    if let Some(s) = any.downcast_ref::<step::health::VerifyHealth>() {
        return vec![Resource::Check {
            check: s.check.clone(),
            target: s.target.clone(),
        }];
    }
    if let Some(s) = any.downcast_ref::<step::breaker::TripBreaker>() {
        return vec![Resource::Check {
            check: s.check.clone(),
            target: s.target.clone(),
        }];
    }
    if let Some(s) = any.downcast_ref::<step::breaker::HalfOpen>() {
        return vec![Resource::Check {
            check: s.check.clone(),
            target: s.target.clone(),
        }];
    }
    if let Some(s) = any.downcast_ref::<step::edge::SwitchOrigin>() {
        return vec![Resource::Distribution {
            id: s.distribution.clone(),
        }];
    }
    if let Some(s) = any.downcast_ref::<step::edge::WaitDistribution>() {
        return vec![Resource::Distribution {
            id: s.distribution.clone(),
        }];
    }
    if let Some(s) = any.downcast_ref::<step::edge::MoveTargets>() {
        return vec![Resource::TargetGroup {
            group: s.group.clone(),
        }];
    }
    if let Some(s) = any.downcast_ref::<step::nodes::ScaleNodeGroup>() {
        return vec![node_group(&s.group)];
    }
    if let Some(s) = any.downcast_ref::<step::nodes::WaitNodeGroup>() {
        return vec![node_group(&s.group)];
    }
    if let Some(s) = any.downcast_ref::<step::nodes::DrainNodes>() {
        return vec![Resource::Nodes {
            cluster: s.cluster.clone(),
            label: s.label.clone(),
            node_group: s.node_group.clone(),
        }];
    }
    if let Some(s) = any.downcast_ref::<step::cache::RestoreCache>() {
        let cache = Resource::Cache {
            region: s.region.clone(),
            id: s.target.clone(),
        };
        let backups = Resource::CacheBackups {
            region: s.region.clone(),
            cache: s.source.clone(),
        };
        return match call.provider_operation() {
            Some(Operation::DescribeCache) => vec![cache],
            Some(Operation::ListCacheBackups) => vec![backups],
            _ => vec![cache, backups],
        };
    }
    if let Some(s) = any.downcast_ref::<step::cache::WaitCache>() {
        return vec![Resource::Cache {
            region: s.region.clone(),
            id: s.id.clone(),
        }];
    }
    if let Some(s) = any.downcast_ref::<step::notify::Notify>() {
        return vec![Resource::Channel {
            channel: s.channel.clone(),
        }];
    }
    vec![Resource::Any {
        target: call.target.clone(),
    }]
}

/// The resources of the security-incident steps' calls.
fn security_resources(any: &dyn std::any::Any, op: Operation) -> Option<Vec<Resource>> {
    use step::security::*;
    use Operation as O;
    let cloud_secret = |region: &str, name: &str| Resource::CloudSecret {
        region: region.to_string(),
        name: name.to_string(),
    };
    if let Some(s) = any.downcast_ref::<DenyAllTraffic>() {
        return Some(vec![Resource::Applied {
            cluster: s.cluster.clone(),
            namespace: s.namespace.clone(),
            objects: manifest_objects(&[s.manifest()]),
        }]);
    }
    if let Some(s) = any.downcast_ref::<SnapshotVolume>() {
        let snapshots = Resource::VolumeSnapshots {
            region: s.region.clone(),
            tags: s.tags.clone(),
        };
        return Some(match op {
            O::CreateVolumeSnapshot => vec![
                Resource::Volume {
                    region: s.region.clone(),
                    id: s.volume.clone(),
                },
                snapshots,
            ],
            _ => vec![snapshots],
        });
    }
    if let Some(s) = any.downcast_ref::<RotateCredential>() {
        return Some(vec![cloud_secret(&s.region, &s.secret)]);
    }
    if let Some(s) = any.downcast_ref::<CopyCredential>() {
        return Some(match op {
            O::GetSecretValue => vec![cloud_secret(&s.region, &s.secret)],
            _ => vec![Resource::Secret {
                cluster: s.cluster.clone(),
                namespace: s.namespace.clone(),
                name: s.cluster_secret.clone(),
            }],
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner;

    const PLAN: &str = include_str!("../../examples/plans/region-failover.yaml");

    fn plan() -> Plan {
        Plan::from_yaml_str(PLAN).expect("the bundled plan loads")
    }

    #[test]
    fn every_step_call_of_every_scenario_is_in_the_set_with_its_resources() {
        let plan = plan();
        let observed = ObservedState::nominal(&plan, chrono::Utc::now());
        let set = PermissionSet::for_plan(
            &plan,
            None,
            &observed,
            &StepRegistry::builtin(),
            &PermissionOptions::default(),
        )
        .expect("plans");
        assert_eq!(set.scenarios.len(), plan.scenarios.len());
        for sc in &plan.scenarios {
            let graph = planner::plan(&plan, &sc.name, &observed).expect("plans");
            for s in &graph.steps {
                for c in s.action.calls() {
                    assert!(
                        set.covers(&s.id, c.role.name(), &c.operation, &c.target),
                        "{} {c:?}",
                        s.id
                    );
                }
            }
        }
        for n in set.needs() {
            if n.provider_operation().is_some() {
                assert!(!n.resources.is_empty(), "{n:?}");
                assert!(
                    !n.resources
                        .iter()
                        .any(|r| matches!(r, Resource::Any { .. })),
                    "a built-in kind without its resources: {n:?}"
                );
            }
        }
    }

    #[test]
    fn the_region_failover_needs_its_promotion_its_dns_switch_and_the_reads_before() {
        let plan = plan();
        let observed = ObservedState::nominal(&plan, chrono::Utc::now());
        let set = PermissionSet::for_plan(
            &plan,
            Some("region-failover"),
            &observed,
            &StepRegistry::builtin(),
            &PermissionOptions::default(),
        )
        .expect("plans");
        let has = |phase: Phase, op: &str, r: &Resource| {
            set.needs()
                .iter()
                .any(|n| n.phase == phase && n.operation == op && n.resources.contains(r))
        };
        let west = Resource::Database {
            region: "us-west-2".into(),
            id: "shop-prod-west".into(),
        };
        assert!(has(Phase::Step, "promote", &west), "{set:#?}");
        assert!(has(Phase::Observe, "describe", &west));
        // The session cache: its backups read before planning and by the restore, which
        // creates the DR cache from one; the wait reads the DR cache.
        let backups = Resource::CacheBackups {
            region: "us-west-2".into(),
            cache: "shop-sessions".into(),
        };
        let dr_cache = Resource::Cache {
            region: "us-west-2".into(),
            id: "shop-sessions-dr".into(),
        };
        assert!(has(Phase::Observe, "list_cache_backups", &backups));
        assert!(has(Phase::Step, "list_cache_backups", &backups));
        assert!(has(Phase::Step, "restore_cache", &dr_cache));
        assert!(has(Phase::Step, "restore_cache", &backups));
        assert!(has(Phase::Step, "describe_cache", &dr_cache));
        let record = Resource::Record {
            zone: "Z0SHOP".into(),
            name: "api.shop.example.com".into(),
        };
        assert!(has(Phase::Step, "switch_record", &record));
        assert!(has(Phase::Compensation, "switch_record", &record));
        let without = PermissionSet::for_plan(
            &plan,
            Some("region-failover"),
            &observed,
            &StepRegistry::builtin(),
            &PermissionOptions {
                observe: false,
                preflight: false,
                compensation: false,
            },
        )
        .expect("plans");
        assert!(without
            .needs()
            .iter()
            .all(|n| matches!(n.phase, Phase::Step | Phase::Gate)));
    }

    #[test]
    fn manifests_name_their_objects() {
        let m = Manifest {
            kind: "bundle".into(),
            name: "api".into(),
            body: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\n---\n\
                   apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Service, metadata: {name: api}}\n"
                .into(),
        };
        let objs = manifest_objects(&[m]);
        let kinds: Vec<_> = objs.iter().map(|o| o.kind.as_str()).collect();
        assert_eq!(kinds, ["Deployment", "Service"]);
    }
}
