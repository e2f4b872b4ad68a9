//! Configuration steps: switch an application's behaviour (degraded mode, a fallback
//! provider) through environment variables of its workload.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use super::{to_json, Call, Role, StepAction, StepContext};
use crate::provider::{Operation as O, WorkloadRef};
use crate::Result;

/// Sets environment variables on a workload (its pods roll to pick them up): degraded mode
/// on or off, a fallback provider's endpoint. Setting the same values again changes
/// nothing, so the step is idempotent.
///
/// # Examples
///
/// ```
/// use dr_core::provider::{WorkloadKind, WorkloadRef};
/// use dr_core::step::{config::SetEnv, StepAction};
///
/// let step = SetEnv {
///     workload: WorkloadRef {
///         cluster: "prod".into(),
///         namespace: "shop".into(),
///         kind: WorkloadKind::Deployment,
///         name: "api".into(),
///     },
///     env: [("CACHE_DEGRADED".to_string(), "true".to_string())].into(),
/// };
/// assert_eq!(step.kind(), "set_env");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetEnv {
    /// The workload.
    pub workload: WorkloadRef,
    /// Variables and their values.
    pub env: BTreeMap<String, String>,
}

#[async_trait]
impl StepAction for SetEnv {
    fn kind(&self) -> &str {
        "set_env"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        let vars: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        vec![Call::provider(
            Role::Cluster {
                cluster: self.workload.cluster.clone(),
            },
            O::SetEnv,
            format!("{} ({})", self.workload, vars.join(", ")),
        )]
    }
    fn idempotent(&self) -> bool {
        true
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(10)
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        ctx.cluster(&self.workload.cluster)?
            .set_env(&self.workload, &self.env)
            .await
    }
}
