//! `service-restart`: pods misbehave.

use serde::{Deserialize, Serialize};

use super::common::{service_with_workloads, workload_action, WorkloadOp};
use super::{Kind, Result};
use crate::plan::validate::ScenarioChecks;
use crate::plan::Plan;
use crate::planner::build::GraphBuilder;
use crate::simulation::Simulation;

/// Pods misbehave (a leak, a wedged connection pool): restart the service's workloads, wait
/// until they are ready, verify.
///
/// ```yaml
/// - { name: service-restart, kind: service-restart, service: api }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceRestart {
    /// The service to restart.
    pub service: String,
}

impl Kind for ServiceRestart {
    fn build(&self, g: &mut GraphBuilder<'_>) -> Result<()> {
        workload_action(g, &self.service, WorkloadOp::Restart)
    }

    fn validate(&self, c: &mut ScenarioChecks<'_>) {
        service_with_workloads(c, &self.service);
    }

    async fn inject(&self, _sim: &Simulation) {
        // Misbehaving pods leave the infrastructure up.
    }

    fn incident(&self, plan: &Plan) -> String {
        format!(
            "the pods of service {} misbehave (plan {})",
            self.service, plan.name
        )
    }
}
