//! Configuration of the simulated cloud: API latency, operation durations and faults.

use std::time::Duration;

use crate::HumanDuration;

/// How long each simulated operation takes, on tokio time.
///
/// Deserializes from human durations (`promote: 5m`); missing fields keep their defaults,
/// so a plan file can carry only what it changes.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use dr_core::sim::SimConfig;
///
/// let config: SimConfig = serde_json::from_str(r#"{"promote": "90s"}"#).unwrap();
/// assert_eq!(config.promote.get(), Duration::from_secs(90));
/// assert_eq!(config.reboot, SimConfig::default().reboot);
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SimConfig {
    /// Shortest API call latency.
    pub latency_min: HumanDuration,
    /// Longest API call latency (each call draws between the two, from the seed).
    pub latency_max: HumanDuration,
    /// Promoting a replica.
    pub promote: HumanDuration,
    /// Rebooting an instance.
    pub reboot: HumanDuration,
    /// Restoring an instance from a snapshot.
    pub restore: HumanDuration,
    /// Point-in-time restore.
    pub pitr: HumanDuration,
    /// How far back point-in-time restore reaches (backup retention).
    pub pitr_retention: HumanDuration,
    /// How far behind now the latest restorable time of a primary is.
    pub pitr_lag: HumanDuration,
    /// Taking a snapshot.
    pub snapshot: HumanDuration,
    /// Copying a snapshot to another region.
    pub copy_snapshot: HumanDuration,
    /// Creating a read replica.
    pub create_replica: HumanDuration,
    /// Default replication lag of replicas.
    pub replication_lag: HumanDuration,
    /// DNS change propagation.
    pub dns_propagation: HumanDuration,
    /// Pods becoming ready after a rollout, scale-up or pod deletion.
    pub rollout: HumanDuration,
    /// A node group's scaling update, until its new nodes are Ready.
    pub node_scaling: HumanDuration,
    /// How long a call matching a `hang` fault rule sleeps before failing.
    pub hang: HumanDuration,
    /// A CDN distribution's change reaching every edge location (`Deployed`).
    pub cdn_deploy: HumanDuration,
    /// A registered load balancer target passing its first health checks.
    pub lb_health_check: HumanDuration,
    /// A deregistered load balancer target draining its connections.
    pub lb_drain: HumanDuration,
    /// A managed cache restored from a backup becoming available.
    pub cache_restore: HumanDuration,
    /// Injected faults.
    pub faults: FaultConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        let m = |mins: u64| HumanDuration::from_secs(mins * 60);
        SimConfig {
            latency_min: Duration::from_millis(100).into(),
            latency_max: Duration::from_millis(500).into(),
            promote: m(5),
            reboot: m(3),
            restore: m(20),
            pitr: m(25),
            pitr_retention: m(7 * 24 * 60),
            pitr_lag: m(5),
            snapshot: m(5),
            copy_snapshot: m(10),
            create_replica: m(15),
            replication_lag: HumanDuration::from_secs(30),
            dns_propagation: HumanDuration::from_secs(60),
            rollout: HumanDuration::from_secs(30),
            node_scaling: m(4),
            hang: m(60),
            cdn_deploy: m(3),
            lb_health_check: HumanDuration::from_secs(30),
            lb_drain: m(5),
            cache_restore: m(4),
            faults: FaultConfig::default(),
        }
    }
}

impl SimConfig {
    /// Sets the injected faults.
    pub fn with_faults(mut self, faults: FaultConfig) -> Self {
        self.faults = faults;
        self
    }

    /// Sets a fixed API latency (zero makes calls instant).
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency_min = latency.into();
        self.latency_max = latency.into();
        self
    }
}

/// Faults injected into simulated calls, decided from the cloud's seed so that a run is
/// reproducible.
///
/// Faults are decided before a call has any effect (a failed call changes nothing), except
/// for [`fail_after_effect`](Self::fail_after_effect) rules.
///
/// # Examples
///
/// ```
/// use dr_core::provider::Operation;
/// use dr_core::sim::{FaultConfig, FaultRule};
///
/// let faults = FaultConfig::default()
///     .with_rate(0.05)
///     .with_permanent(FaultRule::new(Some(Operation::Promote), "orders"));
/// assert_eq!(faults.permanent.len(), 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct FaultConfig {
    /// Probability that a call fails with a temporary error (in turn `Throttled`,
    /// `Unavailable`, `Timeout`).
    pub rate: f64,
    /// Probability that a call is throttled (in addition to `rate`).
    pub throttle_rate: f64,
    /// Calls matching these rules fail with a permanent error.
    pub permanent: Vec<FaultRule>,
    /// Calls matching these rules hang for [`SimConfig::hang`] and then time out, so that
    /// step timeouts fire.
    pub hang: Vec<FaultRule>,
    /// Calls matching these rules take effect, but the caller gets `Unavailable` (the case
    /// read-backs exist for).
    pub fail_after_effect: Vec<FaultRule>,
}

impl FaultConfig {
    /// Sets the temporary-failure rate.
    pub fn with_rate(mut self, rate: f64) -> Self {
        self.rate = rate;
        self
    }

    /// Sets the throttling rate.
    pub fn with_throttle_rate(mut self, rate: f64) -> Self {
        self.throttle_rate = rate;
        self
    }

    /// Adds a permanent-failure rule.
    pub fn with_permanent(mut self, rule: FaultRule) -> Self {
        self.permanent.push(rule);
        self
    }

    /// Adds a hang rule.
    pub fn with_hang(mut self, rule: FaultRule) -> Self {
        self.hang.push(rule);
        self
    }

    /// Adds a fail-after-effect rule.
    pub fn with_fail_after_effect(mut self, rule: FaultRule) -> Self {
        self.fail_after_effect.push(rule);
        self
    }
}

/// Which calls a fault applies to.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct FaultRule {
    /// The operation's name ([`Operation::name`](crate::provider::Operation::name),
    /// `promote`); `None` matches every operation.
    pub operation: Option<String>,
    /// A substring of the call's target (`us-east-1/orders`); empty matches every target.
    pub target: String,
    /// How many matching calls fail; `None` for all of them.
    pub times: Option<u32>,
}

impl FaultRule {
    /// A rule for `operation` (every operation when `None`) on targets containing `target`.
    pub fn new(operation: Option<crate::provider::Operation>, target: impl Into<String>) -> Self {
        FaultRule {
            operation: operation.map(|op| op.name().to_string()),
            target: target.into(),
            times: None,
        }
    }

    /// Limits the rule to the first `times` matching calls.
    pub fn times(mut self, times: u32) -> Self {
        self.times = Some(times);
        self
    }

    pub(crate) fn matches(&self, op: crate::provider::Operation, target: &str) -> bool {
        self.operation.as_deref().is_none_or(|o| o == op.name()) && target.contains(&self.target)
    }
}
