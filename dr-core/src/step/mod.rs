//! Steps described once: one type per step kind implements [`StepAction`], and everything the
//! library knows about the kind comes from it — the provider calls it makes (so preflight and
//! the dry run are derived from the same list the run follows), whether it is idempotent, how
//! to read its effect back, what it must remember from before its call, how to execute and
//! (optionally) compensate it, and its estimate and timeout defaults.
//!
//! Built-in kinds live in one small module per family ([`database`], [`dns`], [`cluster`],
//! [`config`], [`breaker`], [`edge`], [`nodes`],
//! [`replication`], [`dump`], [`backup`], [`store`], [`security`], [`notify`], [`approval`], [`health`]), and two kinds are meant for plans'
//! own steps: [`webhook`] and [`command`]. An embedding service adds its own kinds by
//! implementing [`StepAction`] and registering a factory under a name in a
//! [`StepRegistry`]; plans address them by that name.
//!
//! # Examples
//!
//! A custom step that warms a cache, made by the service itself:
//!
//! ```
//! use std::time::Duration;
//! use async_trait::async_trait;
//! use dr_core::step::{Action, Call, Role, StepAction, StepContext, StepRegistry};
//!
//! #[derive(Debug)]
//! struct WarmCache { url: String }
//!
//! #[async_trait]
//! impl StepAction for WarmCache {
//!     fn kind(&self) -> &str { "warm_cache" }
//!     fn params(&self) -> serde_json::Value { serde_json::json!({ "url": self.url }) }
//!     fn calls(&self) -> Vec<Call> {
//!         vec![Call::new(Role::External { service: "cache".into() }, "warm", &self.url)]
//!     }
//!     fn idempotent(&self) -> bool { true }
//!     fn default_estimate(&self) -> Duration { Duration::from_secs(30) }
//!     async fn execute(&self, _ctx: &mut StepContext<'_>) -> dr_core::Result<()> {
//!         Ok(()) // call the cache here
//!     }
//! }
//!
//! let mut registry = StepRegistry::builtin();
//! registry.register("warm_cache", |params| {
//!     let url = params.get("url").and_then(|v| v.as_str()).ok_or("`url` is required")?;
//!     Ok(Action::new(WarmCache { url: url.to_string() }))
//! });
//! assert!(registry.kinds().any(|k| k == "warm_cache"));
//! ```

pub mod approval;
pub mod backup;
pub mod breaker;
pub mod cache;
pub mod cluster;
pub mod command;
pub mod config;
pub mod data;
pub mod database;
pub mod dns;
pub mod dump;
pub mod edge;
pub mod health;
pub mod nodes;
pub mod notify;
mod registry;
pub mod replication;
pub mod security;
pub mod store;
pub mod webhook;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::executor::{ApprovalHook, RunEvent};
use crate::provider::{
    CacheRestore, CdnOrigin, ClusterDeployer, DatabaseReplica, DnsFailover, HealthProbe,
    LoadBalancer, NodeCapacity, Notifier, Operation, SecretManager, SnapshotStore, VolumeSnapshots,
};
use crate::{Clock, Error, Providers, Result};

pub use registry::{StepFactory, StepRegistry};

/// The step kinds the planner builds, by name: what a plan's `estimates:` and `timeouts:` may
/// name besides the kinds of its own steps. Adding a built-in kind means adding its module
/// and its name here.
pub const BUILTIN_KINDS: &[&str] = &[
    "notify",
    "approval",
    "reboot_database",
    "promote_replica",
    "restore_snapshot",
    "restore_point_in_time",
    "wait_database",
    "create_db_snapshot",
    "create_replica",
    "verify_caught_up",
    "verify_dump",
    "restore_dump",
    "switch_dns",
    "switch_origin",
    "wait_distribution",
    "move_targets",
    "apply_manifests",
    "scale",
    "rollout_restart",
    "rollout_undo",
    "set_env",
    "set_secret",
    "wait_workload",
    "isolate_workload",
    "scale_node_group",
    "wait_node_group",
    "restore_cache",
    "wait_cache",
    "drain_nodes",
    "export_resources",
    "deny_all_traffic",
    "snapshot_volume",
    "rotate_credential",
    "copy_credential",
    "wait_db_snapshot",
    "copy_db_snapshot",
    "backup_resources",
    "verify_backups",
    "prune_backups",
    "verify_health",
    "trip_breaker",
    "half_open",
    "webhook",
    "command",
];

/// Which provider a call goes to, with the key it is routed by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case", tag = "role")]
pub enum Role {
    /// The database provider of a region.
    Database {
        /// The region.
        region: String,
    },
    /// The DNS provider of a hosted zone.
    Dns {
        /// The zone.
        zone: String,
    },
    /// The provider (client) of a cluster.
    Cluster {
        /// The cluster name.
        cluster: String,
    },
    /// A snapshot store, by name.
    Store {
        /// The store name.
        store: String,
    },
    /// The health probe.
    Probe,
    /// The notifier of a channel.
    Notifier {
        /// The channel.
        channel: String,
    },
    /// The CDN provider of a distribution.
    Cdn {
        /// The distribution id.
        distribution: String,
    },
    /// The load balancer provider of a target group.
    LoadBalancer {
        /// The target group (name or ARN).
        group: String,
    },
    /// The node capacity provider of a cluster.
    Nodes {
        /// The cluster name.
        cluster: String,
    },
    /// The volume snapshot provider of a region.
    Volumes {
        /// The region.
        region: String,
    },
    /// The secret manager of a region.
    Secrets {
        /// The region.
        region: String,
    },
    /// The managed cache provider of a region.
    Caches {
        /// The region.
        region: String,
    },
    /// The embedding service's approval hook.
    Approval,
    /// An HTTP endpoint called directly by the step (a webhook).
    Http,
    /// A local program run by the step.
    Process,
    /// Anything else a custom step calls (a CDN, a feature-flag service).
    External {
        /// What is called.
        service: String,
    },
}

impl Role {
    /// The role's name in listings (`database`, `dns`, `cluster`, `store`, `probe`,
    /// `notifier`, `cdn`, `load_balancer`, `nodes`, `volumes`, `secrets`, `caches`, `approval`, `http`,
    /// `process`, or the external service's name).
    pub fn name(&self) -> &str {
        match self {
            Role::Database { .. } => "database",
            Role::Dns { .. } => "dns",
            Role::Cluster { .. } => "cluster",
            Role::Store { .. } => "store",
            Role::Probe => "probe",
            Role::Notifier { .. } => "notifier",
            Role::Cdn { .. } => "cdn",
            Role::LoadBalancer { .. } => "load_balancer",
            Role::Nodes { .. } => "nodes",
            Role::Volumes { .. } => "volumes",
            Role::Secrets { .. } => "secrets",
            Role::Caches { .. } => "caches",
            Role::Approval => "approval",
            Role::Http => "http",
            Role::Process => "process",
            Role::External { service } => service,
        }
    }
}

/// One call a step makes, as preflight checks it and the dry run lists it.
///
/// # Examples
///
/// ```
/// use dr_core::provider::Operation;
/// use dr_core::step::{Call, Role};
///
/// let call = Call::provider(Role::Dns { zone: "Z1".into() }, Operation::SwitchRecord, "Z1/api");
/// assert_eq!(call.operation, "switch_record");
/// assert_eq!(call.provider_operation(), Some(Operation::SwitchRecord));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Call {
    /// Where it goes.
    #[serde(flatten)]
    pub role: Role,
    /// The operation ([`Operation`] names for provider roles).
    pub operation: String,
    /// What it acts on, for people (`us-west-2/orders-west`, `Z1/api.example.com -> lb`).
    pub target: String,
    /// For provider roles: the operation the provider must support.
    #[serde(skip)]
    op: Option<Operation>,
}

impl Call {
    /// A call to a provider role, checked against the provider's capabilities.
    pub fn provider(role: Role, op: Operation, target: impl Into<String>) -> Self {
        Call {
            role,
            operation: op.name().to_string(),
            target: target.into(),
            op: Some(op),
        }
    }

    /// Any other call (an HTTP request, a program, an external service).
    pub fn new(role: Role, operation: impl Into<String>, target: impl Into<String>) -> Self {
        Call {
            role,
            operation: operation.into(),
            target: target.into(),
            op: None,
        }
    }

    /// The provider operation, for calls to provider roles.
    pub fn provider_operation(&self) -> Option<Operation> {
        self.op
    }
}

/// What a read-back says about a step's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Observed {
    /// The effect is in place: the step need not (and must not) run again.
    Done,
    /// The effect is not there: the step may be executed.
    NotDone,
    /// Cannot tell: a non-idempotent step is not retried blindly.
    Unknown,
}

/// What a step remembers across its attempts (and, with a journal, across a resume): values
/// read before its first call (the rollout revision before a rollback, the record before a
/// DNS switch), and what it measured (the data-loss window), and what it produced for the
/// report (a command's exit status and output).
///
/// # Examples
///
/// ```
/// use dr_core::step::Memory;
///
/// let mut m = Memory::default();
/// m.set("revision_before", 7u64);
/// assert_eq!(m.get::<u64>("revision_before"), Some(7));
/// assert_eq!(m.get::<u64>("missing"), None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Memory {
    values: BTreeMap<String, serde_json::Value>,
}

impl Memory {
    /// Stores `value` under `key`.
    pub fn set(&mut self, key: &str, value: impl Serialize) {
        if let Ok(v) = serde_json::to_value(value) {
            self.values.insert(key.to_string(), v);
        }
    }

    /// The value under `key`, if present and of type `T`.
    pub fn get<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.values
            .get(key)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Everything a step may use while it runs: the providers (routed once, by the step's own
/// [`Call`] roles), the clock, the incident start, its deadline, the approval hook and the
/// progress channel, and its [`Memory`].
#[derive(Debug)]
pub struct StepContext<'a> {
    pub(crate) providers: &'a Providers,
    pub(crate) approvals: Option<&'a Arc<dyn ApprovalHook>>,
    pub(crate) events: Option<&'a tokio::sync::mpsc::UnboundedSender<RunEvent>>,
    pub(crate) clock: Clock,
    pub(crate) incident: DateTime<Utc>,
    pub(crate) plan: &'a str,
    pub(crate) scenario: &'a str,
    pub(crate) step_id: &'a str,
    pub(crate) idempotency_key: &'a str,
    pub(crate) service: Option<&'a str>,
    pub(crate) timeout: Duration,
    pub(crate) started: tokio::time::Instant,
    pub(crate) reads: &'a crate::executor::Retrier,
    pub(crate) gates: &'a crate::executor::Gates,
    /// What the step remembers across attempts.
    pub memory: Memory,
    /// Data-loss window the step measured (replica lag, snapshot or restore-point age).
    pub data_loss: Option<Duration>,
    /// What the step produced for the report (a command's exit status and output).
    pub output: Option<serde_json::Value>,
}

impl<'a> StepContext<'a> {
    /// The database provider of `region`.
    ///
    /// # Errors
    /// `NotFound` when none is configured.
    pub fn database(&self, region: &str) -> Result<&'a Arc<dyn DatabaseReplica>> {
        self.providers.database(region)
    }

    /// The DNS provider of `zone`.
    ///
    /// # Errors
    /// `NotFound` when none is configured.
    pub fn dns(&self, zone: &str) -> Result<&'a Arc<dyn DnsFailover>> {
        self.providers.dns(zone)
    }

    /// The provider of `cluster`.
    ///
    /// # Errors
    /// `NotFound` when none is configured.
    pub fn cluster(&self, cluster: &str) -> Result<&'a Arc<dyn ClusterDeployer>> {
        self.providers.cluster(cluster)
    }

    /// The CDN provider of `distribution`.
    ///
    /// # Errors
    /// `NotFound` when none is configured.
    pub fn cdn(&self, distribution: &str) -> Result<&'a Arc<dyn CdnOrigin>> {
        self.providers.cdn(distribution)
    }

    /// The load balancer provider of target group `group`.
    ///
    /// # Errors
    /// `NotFound` when none is configured.
    pub fn load_balancer(&self, group: &str) -> Result<&'a Arc<dyn LoadBalancer>> {
        self.providers.load_balancer(group)
    }

    /// The node capacity provider of `cluster`.
    ///
    /// # Errors
    /// `NotFound` when none is configured.
    pub fn nodes(&self, cluster: &str) -> Result<&'a Arc<dyn NodeCapacity>> {
        self.providers.nodes(cluster)
    }

    /// The snapshot store `name`.
    ///
    /// # Errors
    /// `NotFound` when none is configured.
    pub fn store(&self, name: &str) -> Result<&'a Arc<dyn SnapshotStore>> {
        self.providers.store(name)
    }

    /// The volume snapshot provider of `region`.
    ///
    /// # Errors
    /// `NotFound` when none is configured.
    pub fn volumes(&self, region: &str) -> Result<&'a Arc<dyn VolumeSnapshots>> {
        self.providers.volumes(region)
    }

    /// The secret manager of `region`.
    ///
    /// # Errors
    /// `NotFound` when none is configured.
    pub fn secrets(&self, region: &str) -> Result<&'a Arc<dyn SecretManager>> {
        self.providers.secrets(region)
    }

    /// The managed cache provider of `region`.
    ///
    /// # Errors
    /// `NotFound` when none is configured.
    pub fn caches(&self, region: &str) -> Result<&'a Arc<dyn CacheRestore>> {
        self.providers.caches(region)
    }

    /// The health probe.
    ///
    /// # Errors
    /// `NotFound` when none is configured.
    pub fn probe(&self) -> Result<&'a Arc<dyn HealthProbe>> {
        self.providers.probe()
    }

    /// The notifier of `channel`.
    ///
    /// # Errors
    /// `NotFound` when none is configured.
    pub fn notifier(&self, channel: &str) -> Result<&'a Arc<dyn Notifier>> {
        self.providers.notifier(channel)
    }

    /// The approval hook, if the embedding service configured one.
    pub fn approvals(&self) -> Option<&'a Arc<dyn ApprovalHook>> {
        self.approvals
    }

    /// Sends a progress event.
    pub fn emit(&self, event: RunEvent) {
        crate::executor::emit(self.events, event);
    }

    /// The current time on the run's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// When the outage began: data-loss windows are measured against it.
    pub fn incident_started_at(&self) -> DateTime<Utc> {
        self.incident
    }

    /// The RPO gate: call it right before the call that loses data, with the window just
    /// read (replica lag, age of the snapshot or restore point; `None` when unknown) and
    /// what it is (`replica lag`). A window beyond the service's RPO is refused with
    /// [`Error::GateRefused`] unless the user accepted that loss explicitly (the override
    /// is then journaled and reported).
    ///
    /// # Errors
    /// [`Error::GateRefused`]; a journal error when the override cannot be recorded.
    pub async fn check_data_loss(&self, window: Option<Duration>, what: &str) -> Result<()> {
        self.gates
            .data_loss(self.step_id, self.service, window, what)
            .await
    }

    /// Whether the plan asks for `interlock` (so the step reads what it needs to check it).
    pub fn interlock(&self, interlock: crate::plan::Interlock) -> bool {
        self.gates.interlocks.contains(&interlock)
    }

    /// The interlock gate: call it right before the call that could break `interlock`, with
    /// how it would (`None`: it would not). Refused with [`Error::GateRefused`] naming the
    /// invariant, unless the run waived it (the override is then journaled and reported).
    ///
    /// # Errors
    /// [`Error::GateRefused`]; a journal error when the override cannot be recorded.
    pub async fn check_interlock(
        &self,
        interlock: crate::plan::Interlock,
        violation: Option<String>,
    ) -> Result<()> {
        if !self.interlock(interlock) {
            return Ok(());
        }
        self.gates
            .interlock(self.step_id, interlock, violation)
            .await
    }

    /// The age of `at` at the incident's start (zero for a later instant).
    pub fn age_at_incident(&self, at: DateTime<Utc>) -> Duration {
        (self.incident - at).to_std().unwrap_or_default()
    }

    /// The plan's name.
    pub fn plan(&self) -> &str {
        self.plan
    }

    /// The scenario's name.
    pub fn scenario(&self) -> &str {
        self.scenario
    }

    /// The step's id.
    pub fn step_id(&self) -> &str {
        self.step_id
    }

    /// The step's idempotency key (`plan:scenario:step`): the same on every attempt and
    /// after a resume, so a write keyed by it is made once.
    pub fn idempotency_key(&self) -> &str {
        self.idempotency_key
    }

    /// The service the step recovers, if any.
    pub fn service(&self) -> Option<&str> {
        self.service
    }

    /// Time left of the current attempt's timeout.
    pub fn remaining(&self) -> Duration {
        self.timeout.saturating_sub(self.started.elapsed())
    }

    /// Runs a read (describe, status, list) through the run's retry layer: temporary errors
    /// are retried within the run's budget, so one throttled read does not make a healthy
    /// resource look unreachable.
    ///
    /// # Errors
    /// The read's last error (marked persistent once retries are exhausted).
    pub async fn read<T, F, Fut>(&self, read: F) -> Result<T>
    where
        F: FnMut() -> Fut + Send,
        Fut: std::future::Future<Output = Result<T>> + Send,
        T: Send,
    {
        self.reads.read(self.step_id, read).await
    }
}

/// One step kind, described once. See the [module docs](self) for an example.
///
/// Required: the kind's name, its parameters (for reports, the journal and equality), the
/// calls it makes, whether it is idempotent, its default estimate, and how to execute it.
/// The rest has defaults: a timeout of three estimates (at least a minute), nothing to
/// remember, a read-back that cannot tell (for a non-idempotent step), no compensation.
#[async_trait]
pub trait StepAction: TypeErased + fmt::Debug + Send + Sync + 'static {
    /// The kind's name in plans and reports (`promote_replica`, `webhook`).
    fn kind(&self) -> &str;

    /// The step's parameters as JSON, secrets redacted: shown in reports and the dry run and
    /// used to compare two steps.
    fn params(&self) -> serde_json::Value;

    /// The calls the step makes, in order, when every call succeeds the first time — the
    /// read-backs included. Preflight checks every provider call against the provider's
    /// capabilities, and the dry run lists them.
    fn calls(&self) -> Vec<Call>;

    /// Whether executing the step again after an unknown outcome is safe without reading
    /// back its effect first.
    fn idempotent(&self) -> bool;

    /// The forecast duration when the plan gives none.
    fn default_estimate(&self) -> Duration;

    /// The timeout of one attempt when the plan gives none: three estimates, at least 1 min.
    fn default_timeout(&self) -> Duration {
        (self.default_estimate().saturating_mul(3)).max(Duration::from_secs(60))
    }

    /// Whether the step, on success, leaves a service's data at an earlier point in time
    /// (a promotion, a restore): its measured data-loss window counts towards the RPO, and
    /// a missing measurement makes the achieved RPO unknown.
    fn loses_data(&self) -> bool {
        false
    }

    /// The plan interlocks the step checks before its call when the plan asks for them
    /// (a promotion checks `no-split-brain`); shown by the dry run.
    fn interlocks(&self) -> &'static [crate::plan::Interlock] {
        &[]
    }

    /// A milestone a plan's own steps can be ordered after (`database promoted`,
    /// `dns switched`), if the step marks one.
    fn milestone(&self) -> Option<&'static str> {
        None
    }

    /// Whether the step is an approval gate (never retried; needs a hook).
    fn is_approval(&self) -> bool {
        false
    }

    /// Before the first attempt: reads and remembers (into `ctx.memory`) what the step needs
    /// from before its call — the rollout revision before a rollback, the record values before
    /// a DNS switch — and says whether the effect is already in place. A step whose memory is
    /// already filled (a resumed run) is judged by [`observe`](Self::observe) instead.
    ///
    /// The default reads nothing for an idempotent step, and runs
    /// [`observe`](Self::observe) for the others.
    async fn prepare(&self, ctx: &mut StepContext<'_>) -> Observed {
        if self.idempotent() {
            Observed::NotDone
        } else {
            self.observe(ctx).await
        }
    }

    /// Reads back whether the step's effect is in place, judging with what was remembered.
    /// Runs before the first attempt of a non-idempotent step and after an attempt whose
    /// outcome is unknown.
    async fn observe(&self, ctx: &mut StepContext<'_>) -> Observed {
        let _ = ctx;
        if self.idempotent() {
            Observed::NotDone
        } else {
            Observed::Unknown
        }
    }

    /// Runs one attempt.
    ///
    /// # Errors
    /// A provider error; its [`retry`](Error::retry) and [`effect`](Error::effect) classes
    /// tell the executor whether and how it may try again.
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()>;

    /// Whether [`compensate`](Self::compensate) can undo the step.
    fn compensable(&self) -> bool {
        false
    }

    /// Undoes the step's effect (switch DNS back, scale back up), with what it remembered.
    ///
    /// # Errors
    /// `NotSupported` by default.
    async fn compensate(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let _ = ctx;
        Err(Error::not_supported(
            "executor",
            format!("compensating {}", self.kind()),
        ))
    }

    /// One line saying what the step does, for errors and timeouts (`promote us-west-2/db`).
    fn describe(&self) -> String {
        self.calls()
            .last()
            .map(|c| format!("{} {}", c.operation, c.target))
            .unwrap_or_else(|| self.kind().to_string())
    }
}

/// A step's action: a shared handle on a [`StepAction`]. Two actions are equal when their
/// kinds and parameters are; it serialises as `{"type": kind, ...params}`.
///
/// # Examples
///
/// ```
/// use dr_core::provider::DbRef;
/// use dr_core::step::{database::PromoteReplica, Action};
///
/// let a = Action::new(PromoteReplica { db: DbRef::new("west", "db-west") });
/// assert_eq!(a.kind(), "promote_replica");
/// assert!(!a.is_idempotent());
/// assert_eq!(serde_json::to_value(&a).unwrap()["type"], "promote_replica");
/// ```
#[derive(Clone)]
pub struct Action(Arc<dyn StepAction>);

impl Action {
    /// Wraps a step description.
    pub fn new(step: impl StepAction) -> Self {
        Action(Arc::new(step))
    }

    /// Wraps a shared step description.
    pub fn from_arc(step: Arc<dyn StepAction>) -> Self {
        Action(step)
    }

    /// The kind's name.
    pub fn kind(&self) -> &str {
        self.0.kind()
    }

    /// Whether the step is idempotent.
    pub fn is_idempotent(&self) -> bool {
        self.0.idempotent()
    }

    /// The description.
    pub fn get(&self) -> &dyn StepAction {
        &*self.0
    }

    /// The description as `T`, when it is one (for tests and custom tooling).
    pub fn downcast_ref<T: StepAction>(&self) -> Option<&T> {
        self.0.type_erased().downcast_ref::<T>()
    }
}

/// Implemented for every type: the value as [`std::any::Any`], so a shared
/// [`StepAction`] can be looked at as its concrete type.
pub trait TypeErased {
    /// The value as `Any`.
    fn type_erased(&self) -> &dyn std::any::Any;
}

impl<T: std::any::Any> TypeErased for T {
    fn type_erased(&self) -> &dyn std::any::Any {
        self
    }
}

impl std::ops::Deref for Action {
    type Target = dyn StepAction;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.0.kind(), self.0.params())
    }
}

impl PartialEq for Action {
    fn eq(&self, other: &Self) -> bool {
        self.0.kind() == other.0.kind() && self.0.params() == other.0.params()
    }
}

impl Eq for Action {}

impl Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut obj = serde_json::Map::new();
        obj.insert("type".into(), self.0.kind().into());
        if let serde_json::Value::Object(params) = self.0.params() {
            for (k, v) in params {
                obj.entry(k).or_insert(v);
            }
        }
        obj.serialize(s)
    }
}

/// The JSON of a value that is known to serialise (steps' own parameter structs).
pub(crate) fn to_json(value: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// Runs real I/O (an HTTP request, a program) on a runtime of its own in a blocking thread,
/// bounded by `limit` of real time. The run's clock may be the simulated cloud's paused one:
/// a blocking task holds it still, so the I/O neither races nor advances virtual time.
pub(crate) async fn off_clock<T, F, Fut>(what: String, limit: Duration, make: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T>>,
{
    let op = what.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io(format!("starting a runtime for {what}"), e))?;
        rt.block_on(async move {
            match tokio::time::timeout(limit, make()).await {
                Ok(r) => r,
                Err(_) => Err(Error::Timeout {
                    operation: what,
                    after: limit,
                }),
            }
        })
    })
    .await;
    joined.unwrap_or_else(|e| {
        Err(Error::Other {
            provider: "executor".into(),
            operation: op,
            retry: crate::Retry::Permanent,
            source: format!("the I/O task failed: {e}").into(),
        })
    })
}

/// `scheme://user:***@…`: hides the password of every URL-like part of `text`.
pub(crate) fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        // The authority ends at the first '/', '?', '#' or whitespace.
        let end = tail
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at_sign) => {
                let userinfo = &authority[..at_sign];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at_sign..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// The clock of a polling wait: the first poll again after 5 s, each pause twice the last up
/// to `cap`, never past `limit` from its start.
#[derive(Debug)]
pub(crate) struct Backoff {
    start: tokio::time::Instant,
    limit: Duration,
    delay: Duration,
    cap: Duration,
}

impl Backoff {
    /// A wait that may last `limit`, starting now.
    pub(crate) fn new(limit: Duration, cap: Duration) -> Self {
        Backoff {
            start: tokio::time::Instant::now(),
            limit,
            delay: Duration::from_secs(5),
            cap,
        }
    }

    /// How long it has waited.
    pub(crate) fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Whether its time is up.
    pub(crate) fn expired(&self) -> bool {
        self.elapsed() >= self.limit
    }

    /// Sleeps until the next poll (at most until the limit), and doubles the next pause.
    pub(crate) async fn sleep(&mut self) {
        let left = self.limit.saturating_sub(self.elapsed());
        tokio::time::sleep(self.delay.min(left)).await;
        self.delay = (self.delay * 2).min(self.cap);
    }
}

/// `NotFound`-means-absent: the read-back of a create.
pub(crate) fn exists<T>(r: Result<T>) -> Observed {
    match r {
        Ok(_) => Observed::Done,
        Err(e) if e.is_not_found() => Observed::NotDone,
        Err(_) => Observed::Unknown,
    }
}

#[cfg(test)]
mod backoff_tests {
    use super::Backoff;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn pauses_double_up_to_the_cap_and_never_pass_the_limit() {
        let s = Duration::from_secs;
        let mut wait = Backoff::new(s(60), s(15));
        let mut at = Vec::new();
        while !wait.expired() {
            wait.sleep().await;
            at.push(wait.elapsed().as_secs());
        }
        // 5, then 10, then 15 (the cap) each time, the last pause cut short at the limit.
        assert_eq!(at, [5, 15, 30, 45, 60]);
    }
}
