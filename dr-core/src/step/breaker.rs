//! Circuit-breaker steps: confirm that a dependency is down (the breaker trips after N
//! failed probes in a window), and wait until it has been healthy for a while (half-open
//! probing: M consecutive successes, any failure starting the count again).

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use super::{to_json, Call, Role, StepAction, StepContext};
use crate::duration::human;
use crate::provider::{HealthStatus, Operation as O};
use crate::{Error, Result};

fn probe_call(check: &str, target: &str, what: &str) -> Call {
    Call::provider(Role::Probe, O::Probe, format!("{check} ({target}) {what}"))
}

/// Probes `target` every `interval` for at most `window`; succeeds (the breaker trips) once
/// `failures` probes failed, and fails permanently when the window ends with fewer: the
/// dependency is not down, and nothing is switched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TripBreaker {
    /// Health check name.
    pub check: String,
    /// Probe target.
    pub target: String,
    /// Failed probes that trip the breaker.
    pub failures: u32,
    /// How long to probe.
    #[serde(with = "crate::duration::seconds")]
    pub window: Duration,
    /// Time between probes.
    #[serde(with = "crate::duration::seconds")]
    pub interval: Duration,
}

#[async_trait]
impl StepAction for TripBreaker {
    fn kind(&self) -> &str {
        "trip_breaker"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        vec![probe_call(
            &self.check,
            &self.target,
            &format!("until {} failures in {}", self.failures, human(self.window)),
        )]
    }
    fn idempotent(&self) -> bool {
        true
    }
    fn default_estimate(&self) -> Duration {
        self.interval
            .saturating_mul(self.failures.saturating_sub(1))
    }
    fn default_timeout(&self) -> Duration {
        self.window.saturating_add(Duration::from_secs(60))
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let probe = ctx.probe()?;
        let start = tokio::time::Instant::now();
        let mut failed = 0u32;
        let mut probes = 0u32;
        loop {
            probes += 1;
            if probe.check(&self.target).await? != HealthStatus::Healthy {
                failed += 1;
                if failed >= self.failures {
                    ctx.output = Some(serde_json::json!({ "probes": probes, "failed": failed }));
                    return Ok(());
                }
            }
            if start.elapsed() + self.interval > self.window {
                return Err(Error::InvalidState {
                    provider: probe.name().to_string(),
                    resource: format!("health check {}", self.check),
                    state: format!(
                        "failing {failed} of {probes} probes in {} (the breaker trips at {})",
                        human(start.elapsed()),
                        self.failures
                    ),
                    operation: "switch to the fallback".into(),
                });
            }
            tokio::time::sleep(self.interval).await;
        }
    }
}

/// Probes `target` every `interval` until `successes` probes in a row are healthy (a failure
/// starts the count again), within the step's timeout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HalfOpen {
    /// Health check name.
    pub check: String,
    /// Probe target.
    pub target: String,
    /// Consecutive healthy probes that close the breaker.
    pub successes: u32,
    /// Time between probes.
    #[serde(with = "crate::duration::seconds")]
    pub interval: Duration,
}

#[async_trait]
impl StepAction for HalfOpen {
    fn kind(&self) -> &str {
        "half_open"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        vec![probe_call(
            &self.check,
            &self.target,
            &format!("until {} healthy probes in a row", self.successes),
        )]
    }
    fn idempotent(&self) -> bool {
        true
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(1800)
    }
    fn default_timeout(&self) -> Duration {
        Duration::from_secs(4 * 3600)
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let probe = ctx.probe()?;
        let mut streak = 0u32;
        loop {
            if probe.check(&self.target).await? == HealthStatus::Healthy {
                streak += 1;
                if streak >= self.successes {
                    return Ok(());
                }
            } else {
                streak = 0;
            }
            tokio::time::sleep(self.interval).await;
        }
    }
}
