//! Health steps: probe until healthy.

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use super::{to_json, Call, Role, StepAction, StepContext};
use crate::provider::{HealthStatus, Operation as O};
use crate::Result;

/// How often [`VerifyHealth`] probes.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(10);

/// Probe a health endpoint until it reports healthy (within the step timeout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyHealth {
    /// Health check name, as in the plan.
    pub check: String,
    /// The probe target (URL).
    pub target: String,
}

#[async_trait]
impl StepAction for VerifyHealth {
    fn kind(&self) -> &str {
        "verify_health"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        vec![Call::provider(
            Role::Probe,
            O::Probe,
            format!("{} ({})", self.check, self.target),
        )]
    }
    fn idempotent(&self) -> bool {
        true
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(30)
    }
    fn milestone(&self) -> Option<&'static str> {
        Some("health verified")
    }
    fn describe(&self) -> String {
        format!(
            "health check {} ({}) to report healthy",
            self.check, self.target
        )
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        // Probes until healthy; the attempt's timeout (which names the check) ends it.
        let probe = ctx.probe()?;
        loop {
            if probe.check(&self.target).await? == HealthStatus::Healthy {
                return Ok(());
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    }
}
