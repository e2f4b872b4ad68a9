//! The recovery graph: typed steps with dependencies, idempotency keys and estimates, as the
//! planner produces them and the executor runs them.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

pub use crate::step::cluster::SecretSource;
pub use crate::step::Action;
use crate::RetryPolicy;

/// A hash map for the planner's and validation's internal indexes: foldhash, seeded per
/// process (several times faster than SipHash on short names, and still not predictable
/// from a plan's text).
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
/// A hash set of the same kind as [`FastMap`].
pub(crate) type FastSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;

/// A step's id (`api/switch-dns`): its text, shared, so that the step, the dependency lists
/// naming it and the executor's indexes hold one copy of it. It compares, orders, hashes and
/// serializes as its text, and converts from and to `String` and `&str`.
///
/// # Examples
///
/// ```
/// use dr_core::graph::StepId;
///
/// let id = StepId::from("api/switch-dns");
/// let again = id.clone(); // the same text, not a copy of it
/// assert_eq!(again, "api/switch-dns");
/// assert!(id.starts_with("api/"));
/// assert_eq!(String::from(id), "api/switch-dns");
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StepId(Arc<str>);

impl StepId {
    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id made of `parts`, one after the other: what `format!` would make of them, with
    /// one allocation and without the formatting machinery (the planner makes ids by the
    /// tens of thousands).
    pub(crate) fn concat(parts: &[&str]) -> StepId {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let mut buf = [0u8; 128];
        if let Some(out) = buf.get_mut(..len) {
            let mut at = 0;
            for p in parts {
                out[at..at + p.len()].copy_from_slice(p.as_bytes());
                at += p.len();
            }
            // Valid UTF-8 one part after the other is valid UTF-8.
            if let Ok(text) = std::str::from_utf8(out) {
                return StepId(Arc::from(text));
            }
        }
        StepId(Arc::from(parts.concat()))
    }

    /// Where the shared text lives: equal for a step's id and every clone of it, so an
    /// index can find a dependency without reading its text.
    pub(crate) fn addr(&self) -> usize {
        Arc::as_ptr(&self.0).cast::<u8>() as usize
    }
}

impl std::ops::Deref for StepId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for StepId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for StepId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl Serialize for StepId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for StepId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(StepId::from)
    }
}

impl From<&str> for StepId {
    fn from(s: &str) -> Self {
        StepId(Arc::from(s))
    }
}

impl From<String> for StepId {
    fn from(s: String) -> Self {
        StepId(Arc::from(s))
    }
}

impl From<&String> for StepId {
    fn from(s: &String) -> Self {
        StepId(Arc::from(s.as_str()))
    }
}

impl From<&StepId> for StepId {
    fn from(s: &StepId) -> Self {
        s.clone()
    }
}

impl From<StepId> for String {
    fn from(s: StepId) -> Self {
        s.0.to_string()
    }
}

impl PartialEq<str> for StepId {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for StepId {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for StepId {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<StepId> for str {
    fn eq(&self, other: &StepId) -> bool {
        *self == *other.0
    }
}

impl PartialEq<StepId> for &str {
    fn eq(&self, other: &StepId) -> bool {
        **self == *other.0
    }
}

impl PartialEq<StepId> for String {
    fn eq(&self, other: &StepId) -> bool {
        **self == *other.0
    }
}

/// One step of a recovery graph.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// Unique id within the graph (`api/switch-dns`).
    pub id: StepId,
    /// What it does.
    pub action: Action,
    /// The service it recovers, if any: the name's text, shared by the steps of one service
    /// (a graph of tens of thousands of steps holds one copy of each service's name).
    pub service: Option<Arc<str>>,
    /// Steps that must succeed first.
    pub depends_on: Vec<StepId>,
    /// Stable key identifying the step's effect across runs and resumes
    /// (plan, scenario, step and target), for the journal and for read-backs.
    pub idempotency_key: String,
    /// Forecast duration.
    #[serde(with = "crate::duration::seconds")]
    pub estimate: Duration,
    /// Deadline for one attempt.
    #[serde(with = "crate::duration::seconds")]
    pub timeout: Duration,
    /// A critical failure stops its dependants and fails the run; an optional one degrades.
    pub critical: bool,
    /// How this step's temporary failures are retried, when it differs from the run's policy
    /// (a plan's own step can set one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
}

/// Something that puts a target at risk, found before execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Risk {
    /// The service concerned, if any.
    pub service: Option<String>,
    /// What is at risk and why.
    pub message: String,
}

/// The forecast for one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceForecast {
    /// Service name.
    pub name: String,
    /// RTO target.
    #[serde(rename = "rto_target_seconds", with = "crate::duration::seconds")]
    pub rto_target: Duration,
    /// Forecast time until the service is recovered (longest estimated path to its last step).
    #[serde(rename = "forecast_rto_seconds", with = "crate::duration::seconds")]
    pub forecast_rto: Duration,
    /// RPO target.
    #[serde(rename = "rpo_target_seconds", with = "crate::duration::seconds")]
    pub rpo_target: Duration,
    /// Forecast data-loss window from the observed replication lag or snapshot age, when the
    /// service holds data.
    #[serde(rename = "forecast_rpo_seconds", with = "crate::duration::seconds_opt")]
    pub forecast_rpo: Option<Duration>,
    /// Whether the forecasts are within the targets.
    pub within_targets: bool,
}

/// The executable plan for one scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecoveryGraph {
    /// Plan name.
    pub plan: String,
    /// Scenario name.
    pub scenario: String,
    /// Steps in a topological order: every step after its dependencies.
    pub steps: Vec<Step>,
    /// Step ids of the longest estimated chain.
    pub critical_path: Vec<String>,
    /// Length of the critical path: the forecast recovery time of the whole scenario.
    #[serde(rename = "forecast_rto_seconds", with = "crate::duration::seconds")]
    pub forecast: Duration,
    /// Per-service forecasts.
    pub services: Vec<ServiceForecast>,
    /// What is at risk before anything runs.
    pub risks: Vec<Risk>,
    /// The plan's traffic interlocks, checked before the steps that could break them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interlocks: Vec<crate::plan::Interlock>,
    /// Whether the scenario asks, on a critical failure, to undo what already ran.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub compensate_on_failure: bool,
    /// The plan's concurrency limits on provider calls, which the executor applies over its
    /// own ([`Limits::with_plan`](crate::executor::Limits::with_plan)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<crate::plan::PlanLimits>,
}

impl RecoveryGraph {
    /// A step by id.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// The steps that recover `service`.
    pub fn service_steps<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a Step> + 'a {
        self.steps
            .iter()
            .filter(move |s| s.service.as_deref() == Some(service))
    }

    /// Earliest finish time of every step when each starts as soon as its dependencies
    /// finished and takes its estimate (unbounded concurrency). Steps must be in topological
    /// order.
    pub fn earliest_finish(&self) -> HashMap<&str, Duration> {
        let mut finish: HashMap<&str, Duration> = HashMap::with_capacity(self.steps.len());
        for step in &self.steps {
            let start = step
                .depends_on
                .iter()
                .filter_map(|d| finish.get(d.as_str()).copied())
                .max()
                .unwrap_or_default();
            finish.insert(step.id.as_str(), start + step.estimate);
        }
        finish
    }

    /// Sum of every step's estimate: the time a strictly sequential runbook would take.
    pub fn sequential_estimate(&self) -> Duration {
        self.steps.iter().map(|s| s.estimate).sum()
    }

    /// Number of steps per step kind.
    pub fn kind_counts(&self) -> BTreeMap<&str, usize> {
        let mut counts = BTreeMap::new();
        for s in &self.steps {
            *counts.entry(s.action.kind()).or_insert(0) += 1;
        }
        counts
    }
}

/// The forecast, as a person reads it before anything runs: per-service targets against
/// forecasts, the critical path and the risks.
impl std::fmt::Display for RecoveryGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::duration::human;
        writeln!(
            f,
            "Forecast: plan {} / scenario {}: {} steps, recovery in {} (a sequential runbook: {})",
            self.plan,
            self.scenario,
            self.steps.len(),
            human(self.forecast),
            human(self.sequential_estimate())
        )?;
        if !self.services.is_empty() {
            writeln!(
                f,
                "{:<20} {:>10} {:>10} {:>10} {:>10}  ok",
                "service", "RTO target", "forecast", "RPO target", "forecast"
            )?;
            for s in &self.services {
                writeln!(
                    f,
                    "{:<20} {:>10} {:>10} {:>10} {:>10}  {}",
                    s.name,
                    human(s.rto_target),
                    human(s.forecast_rto),
                    human(s.rpo_target),
                    s.forecast_rpo.map_or_else(|| "-".to_string(), human),
                    if s.within_targets { "✓" } else { "at risk" }
                )?;
            }
        }
        writeln!(f, "Critical path: {}", self.critical_path.join(" → "))?;
        for r in &self.risks {
            match &r.service {
                Some(s) => writeln!(f, "Risk ({s}): {}", r.message)?,
                None => writeln!(f, "Risk: {}", r.message)?,
            }
        }
        Ok(())
    }
}
