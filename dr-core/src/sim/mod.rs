//! The simulated cloud: every provider trait on one deterministic, in-process model.
//!
//! [`SimCloud`] models databases with replicas, snapshots and point-in-time restore, DNS
//! with propagation delays, Kubernetes-like clusters with rollouts, health probes,
//! notifications, snapshot stores, CDN distributions whose changes take time to deploy, and
//! load balancer target groups whose targets pass health checks only while what stands
//! behind them serves. Everything runs on tokio time: under a paused clock
//! (`#[tokio::test(start_paused = true)]`) a 40-minute failover takes milliseconds, and
//! for a given seed, driven from a single-threaded runtime, every run is identical —
//! including the injected faults ([`FaultConfig`]).
//!
//! Long operations complete in the background: an instance is `Modifying` until its
//! promotion's duration has passed, a DNS change is pending until propagated, a rollout
//! incomplete until its pods are ready. State is computed when read, so nothing runs
//! between calls.
//!
//! Regions fail with [`SimCloud::fail_region`]: its databases report `Failed`, its clusters
//! serve nothing, and mutating calls addressed to it return `Unavailable` (reads still
//! answer, as a global control plane would).
//!
//! # Examples
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
//! use dr_core::provider::{DatabaseReplica, DbRef, DbState};
//! use dr_core::sim::SimCloud;
//!
//! tokio::time::pause();
//! let cloud = SimCloud::new(42);
//! let db = DbRef::new("us-east-1", "orders");
//! cloud.add_database(&db, None);
//! cloud.fail_region("us-east-1");
//! assert_eq!(cloud.database().describe(&db).await?.state, DbState::Failed);
//! assert!(cloud.database().reboot(&db, false).await.is_err());
//! # Ok(()) }
//! ```

mod caches;
mod cdn;
mod cluster;
mod config;
mod database;
mod dns;
pub(crate) mod fault;
mod health;
mod load_balancer;
mod nodes;
mod secrets;
mod store;
mod volumes;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, TimeZone, Utc};
use std::time::Duration;

pub use caches::SimCaches;
pub use cdn::SimCdn;
pub use cluster::SimCluster;
pub use config::{FaultConfig, FaultRule, SimConfig};
pub use database::SimDatabase;
pub use dns::SimDns;
pub use health::{EndpointBinding, SimNotifier, SimProbe};
pub use load_balancer::SimLoadBalancer;
pub use nodes::SimNodes;
pub use secrets::{SimSecrets, INITIAL_VERSION};
pub use store::SimStore;
pub use volumes::SimVolumes;

use crate::provider::{
    CdnOrigin, ClusterDeployer, DatabaseReplica, DnsFailover, HealthProbe, LoadBalancer,
    Notification, Notifier, Operation, SnapshotStore,
};
use crate::store::InMemoryStore;
use crate::{Clock, Error, Result, Retry};
use fault::{Fault, Faults};

/// The provider name every simulated service reports.
pub const PROVIDER: &str = "sim";

/// One call made to the simulated cloud, as recorded in its [call log](SimCloud::calls).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SimCall {
    /// Simulated time the call completed.
    pub at: DateTime<Utc>,
    /// The service called: `database`, `dns`, `cluster`, `probe`, `notifier`, `store`, `cdn`,
    /// `load_balancer`.
    pub provider_role: String,
    /// The operation.
    pub operation: Operation,
    /// What it addressed (`us-east-1/orders`, `zone-1/api.example.com`).
    pub target: String,
    /// How it ended.
    pub outcome: SimOutcome,
    /// Whether its effect happened: `true` for a success, and for a call failed by an
    /// injected fault *after* its effect (the case read-backs exist for).
    pub took_effect: bool,
}

/// How a simulated call ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SimOutcome {
    /// It succeeded.
    Ok,
    /// It failed.
    Err {
        /// The error's retry class.
        retry: Retry,
        /// The error message.
        message: String,
    },
}

impl SimOutcome {
    /// Whether the call succeeded.
    pub fn is_ok(&self) -> bool {
        matches!(self, SimOutcome::Ok)
    }
}

/// A point in the simulated cloud's time: how long after its epoch (2026-01-01T00:00:00Z).
/// Derived from the cloud's clock, so a cloud restored from its state file goes on where it
/// stopped.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub(crate) struct SimInstant(Duration);

impl std::ops::Add<Duration> for SimInstant {
    type Output = SimInstant;
    fn add(self, d: Duration) -> SimInstant {
        SimInstant(self.0.saturating_add(d))
    }
}

fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// The mutable state of the whole cloud.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct State {
    faults: Faults,
    calls: Vec<SimCall>,
    down: BTreeSet<String>,
    db: database::Databases,
    dns: dns::Dns,
    clusters: cluster::Clusters,
    health: health::Health,
    #[serde(default)]
    cdn: cdn::Cdn,
    #[serde(default)]
    lb: load_balancer::Balancers,
    #[serde(default)]
    nodes: nodes::NodeGroups,
    volumes: volumes::Volumes,
    #[serde(default)]
    secrets: secrets::Secrets,
    #[serde(default)]
    caches: caches::Caches,
    #[serde(skip)]
    stores: BTreeMap<String, InMemoryStore>,
}

#[derive(Debug, serde::Serialize)]
struct SavedRef<'a> {
    format: u32,
    now: DateTime<Utc>,
    state: &'a State,
    stores: BTreeMap<String, Vec<crate::store::ExportedObject>>,
}

/// What the state file holds: the clock, the state, and the stores' objects.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Saved {
    format: u32,
    now: DateTime<Utc>,
    state: State,
    stores: BTreeMap<String, Vec<crate::store::ExportedObject>>,
}

/// What a state transition may read besides the state.
#[derive(Debug)]
struct Env<'a> {
    now: SimInstant,
    wall: DateTime<Utc>,
    cfg: &'a SimConfig,
}

#[derive(Debug)]
struct Inner {
    config: SimConfig,
    clock: Clock,
    state: Mutex<State>,
    /// Where the state is saved after every call, if anywhere.
    persist: Mutex<Option<std::path::PathBuf>>,
}

/// A deterministic simulated cloud. Cheap to clone: clones share one state.
///
/// Seed it with [`add_database`](Self::add_database), [`add_record`](Self::add_record),
/// [`add_cluster`](Self::add_cluster), [`add_workload`](Self::add_workload),
/// [`add_distribution`](Self::add_distribution), [`add_target_group`](Self::add_target_group)
/// and friends, then hand its services ([`database`](Self::database), [`dns`](Self::dns),
/// [`cluster`](Self::cluster), [`probe`](Self::probe), [`notifier`](Self::notifier),
/// [`store`](Self::store), [`cdn`](Self::cdn), [`load_balancer`](Self::load_balancer)) to
/// the executor, and read back what happened with [`calls`](Self::calls).
///
/// Its clock starts at 2026-01-01T00:00:00Z.
#[derive(Debug, Clone)]
pub struct SimCloud {
    inner: Arc<Inner>,
}

impl SimCloud {
    /// A cloud with default durations and no faults.
    pub fn new(seed: u64) -> Self {
        Self::with_config(seed, SimConfig::default())
    }

    /// A cloud with the given durations and faults.
    pub fn with_config(seed: u64, config: SimConfig) -> Self {
        let start = epoch();
        SimCloud {
            inner: Arc::new(Inner {
                config,
                clock: Clock::starting_at(start),
                persist: Mutex::new(None),
                state: Mutex::new(State {
                    faults: Faults::new(seed),
                    calls: Vec::new(),
                    down: BTreeSet::new(),
                    db: database::Databases::default(),
                    dns: dns::Dns::default(),
                    clusters: cluster::Clusters::default(),
                    health: health::Health::default(),
                    cdn: cdn::Cdn::default(),
                    lb: load_balancer::Balancers::default(),
                    nodes: nodes::NodeGroups::default(),
                    volumes: volumes::Volumes::default(),
                    secrets: secrets::Secrets::default(),
                    caches: caches::Caches::default(),
                    stores: BTreeMap::new(),
                }),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.inner.config
    }

    /// The simulated clock (timestamps of snapshots, calls and objects).
    pub fn clock(&self) -> Clock {
        self.inner.clock
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn env(&self) -> Env<'_> {
        let wall = self.inner.clock.now();
        Env {
            now: SimInstant((wall - epoch()).to_std().unwrap_or_default()),
            wall,
            cfg: &self.inner.config,
        }
    }

    /// Runs `f` on the state outside of any call (seeding, inspection).
    fn with_state<T>(&self, f: impl FnOnce(&mut State, &Env<'_>) -> T) -> T {
        let env = self.env();
        f(&mut self.lock(), &env)
    }

    /// The database service.
    pub fn database(&self) -> Arc<dyn DatabaseReplica> {
        Arc::new(SimDatabase::new(self.clone()))
    }

    /// The DNS service.
    pub fn dns(&self) -> Arc<dyn DnsFailover> {
        Arc::new(SimDns::new(self.clone()))
    }

    /// The cluster service (every cluster of the cloud).
    pub fn cluster(&self) -> Arc<dyn ClusterDeployer> {
        Arc::new(SimCluster::new(self.clone()))
    }

    /// The health probe.
    pub fn probe(&self) -> Arc<dyn HealthProbe> {
        Arc::new(SimProbe::new(self.clone()))
    }

    /// The CDN service (every distribution of the cloud).
    pub fn cdn(&self) -> Arc<dyn CdnOrigin> {
        Arc::new(SimCdn::new(self.clone()))
    }

    /// The load balancer service (every target group of the cloud).
    pub fn load_balancer(&self) -> Arc<dyn LoadBalancer> {
        Arc::new(SimLoadBalancer::new(self.clone()))
    }

    /// The notifier (accepts every channel).
    pub fn notifier(&self) -> Arc<dyn Notifier> {
        Arc::new(SimNotifier::new(self.clone()))
    }

    /// The snapshot store `name`, created empty on first use. Calls to it have latency and
    /// faults like every other service.
    pub fn store(&self, name: &str) -> Arc<dyn SnapshotStore> {
        let inner = self.store_backend(name);
        Arc::new(SimStore::new(self.clone(), name, inner))
    }

    fn store_backend(&self, name: &str) -> InMemoryStore {
        let clock = self.inner.clock;
        self.lock()
            .stores
            .entry(name.to_string())
            .or_insert_with(|| InMemoryStore::with_clock(clock))
            .clone()
    }

    /// Corrupts an object of store `name` behind its back, keeping its recorded checksum.
    ///
    /// # Errors
    /// `NotFound`.
    #[cfg(any(test, feature = "testkit"))]
    pub fn corrupt_object(&self, name: &str, key: &str) -> Result<()> {
        self.store_backend(name).corrupt(key)
    }

    /// Every call made so far, in order.
    pub fn calls(&self) -> Vec<SimCall> {
        self.lock().calls.clone()
    }

    /// Every notification sent so far, with its channel.
    pub fn notifications(&self) -> Vec<(String, Notification)> {
        self.lock().health.notifications.clone()
    }

    /// Fails a whole region: its databases report `Failed`, its clusters serve nothing, and
    /// mutating calls addressed to it return `Unavailable`.
    pub fn fail_region(&self, region: &str) {
        self.lock().down.insert(region.to_string());
    }

    /// Brings a failed region back.
    pub fn recover_region(&self, region: &str) {
        self.lock().down.remove(region);
    }

    /// Whether `region` is failed.
    pub fn is_region_down(&self, region: &str) -> bool {
        self.lock().down.contains(region)
    }

    /// Admits a call: sleeps its latency, applies faults decided before any effect, and
    /// refuses calls addressed to a failed region. Returns whether the call must fail after
    /// its effect.
    async fn admit(
        &self,
        role: &'static str,
        op: Operation,
        target: &str,
        regions: &[&str],
    ) -> Result<bool> {
        let cfg = &self.inner.config;
        let (latency, fault) = {
            let mut st = self.lock();
            let latency = st
                .faults
                .rng()
                .duration_between(cfg.latency_min.get(), cfg.latency_max.get());
            (latency, st.faults.decide(&cfg.faults, op, target))
        };
        tokio::time::sleep(latency).await;
        let unavailable = || Error::Unavailable {
            provider: PROVIDER.into(),
            operation: op.name().into(),
            source: None,
        };
        // A pre-call timeout took the call's latency.
        let refused = match fault::refusal(fault, PROVIDER, op, target, cfg.hang.get()).await {
            Some(Error::Timeout { operation, after }) if after.is_zero() => Some(Error::Timeout {
                operation,
                after: latency,
            }),
            other => other,
        };
        let refused = refused.or_else(|| {
            let st = self.lock();
            regions
                .iter()
                .any(|r| st.down.contains(*r))
                .then(unavailable)
        });
        match refused {
            Some(e) => {
                self.record(role, op, target, Err(&e), false);
                Err(e)
            }
            None => Ok(fault == Fault::AfterEffect),
        }
    }

    /// Records a call's outcome, turning it into `Unavailable` for fail-after-effect faults.
    fn finish<T>(
        &self,
        role: &'static str,
        op: Operation,
        target: &str,
        fail_after: bool,
        result: Result<T>,
    ) -> Result<T> {
        let took_effect = result.is_ok();
        let result = match result {
            Ok(_) if fail_after => Err(Error::Unavailable {
                provider: PROVIDER.into(),
                operation: op.name().into(),
                source: Some("injected fault after the call took effect".into()),
            }),
            r => r,
        };
        self.record(role, op, target, result.as_ref().map(|_| ()), took_effect);
        result
    }

    fn record(
        &self,
        role: &'static str,
        op: Operation,
        target: &str,
        result: Result<(), &Error>,
        took_effect: bool,
    ) {
        let at = self.inner.clock.now();
        let outcome = match result {
            Ok(()) => SimOutcome::Ok,
            Err(e) => SimOutcome::Err {
                retry: e.retry(),
                message: e.to_string(),
            },
        };
        self.lock().calls.push(SimCall {
            at,
            provider_role: role.to_string(),
            operation: op,
            target: target.to_string(),
            outcome,
            took_effect,
        });
        self.autosave();
    }

    /// Saves the whole cloud — clock, databases, DNS, clusters, health, faults, the call
    /// log and every store's objects — to `path` (written to a temporary file, synced, then
    /// renamed over it, so a crash leaves the old file or the new one). The file holds what
    /// the simulated cloud holds, secret values included, like a real cloud's storage: it is
    /// created readable by its owner only.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path.
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        let bytes = {
            let st = self.lock();
            let stores = st
                .stores
                .iter()
                .map(|(name, s)| (name.clone(), s.export()))
                .collect();
            let saved = SavedRef {
                format: 1,
                now: self.inner.clock.now(),
                state: &st,
                stores,
            };
            let mut out = Vec::new();
            ciborium::into_writer(&saved, &mut out).map_err(|e| Error::InvalidRequest {
                provider: PROVIDER.into(),
                operation: "save".into(),
                message: format!("cannot encode the simulated cloud: {e}"),
            })?;
            out
        };
        crate::store::write_atomically(path, &bytes)
    }

    /// A cloud restored from a file written by [`save`](Self::save): its clock goes on from
    /// the saved time (on this process's tokio time), and its state is as saved.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path; [`Error::InvalidResponse`] for a file that is not a
    /// saved cloud.
    pub fn load(path: &std::path::Path, config: SimConfig) -> Result<Self> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::io(format!("reading the simulated cloud {}", path.display()), e))?;
        let saved: Saved =
            ciborium::from_reader(bytes.as_slice()).map_err(|e| Error::InvalidResponse {
                provider: PROVIDER.into(),
                operation: "load".into(),
                message: format!("{}: not a saved simulated cloud: {e}", path.display()),
            })?;
        let clock = Clock::starting_at(saved.now);
        let mut state = saved.state;
        for (name, objects) in saved.stores {
            let store = InMemoryStore::with_clock(clock);
            store.import(objects);
            state.stores.insert(name, store);
        }
        Ok(SimCloud {
            inner: Arc::new(Inner {
                config,
                clock,
                persist: Mutex::new(None),
                state: Mutex::new(state),
            }),
        })
    }

    /// Saves the cloud to `path` now and after every call from now on (see
    /// [`save`](Self::save)), so that a process that crashes leaves the cloud as its last
    /// call left it.
    ///
    /// # Errors
    /// The first save's error.
    pub fn persist_to(&self, path: impl Into<std::path::PathBuf>) -> Result<()> {
        let path = path.into();
        self.save(&path)?;
        *self.inner.persist.lock().unwrap_or_else(|e| e.into_inner()) = Some(path);
        Ok(())
    }

    fn autosave(&self) {
        let path = self
            .inner
            .persist
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(path) = path {
            if let Err(e) = self.save(&path) {
                tracing::error!(error = %e, "saving the simulated cloud failed");
            }
        }
    }

    /// One call whose effect is a synchronous state transition.
    async fn call<T>(
        &self,
        role: &'static str,
        op: Operation,
        target: &str,
        regions: &[&str],
        f: impl FnOnce(&mut State, &Env<'_>) -> Result<T>,
    ) -> Result<T> {
        let fail_after = self.admit(role, op, target, regions).await?;
        let result = self.with_state(f);
        self.finish(role, op, target, fail_after, result)
    }
}

#[cfg(test)]
mod tests;
