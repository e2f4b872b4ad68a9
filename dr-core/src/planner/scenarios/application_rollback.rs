//! `application-rollback`: a release went bad.

use serde::{Deserialize, Serialize};

use super::common::{service_with_workloads, workload_action, WorkloadOp};
use super::{Kind, Result};
use crate::plan::validate::ScenarioChecks;
use crate::plan::Plan;
use crate::planner::build::GraphBuilder;
use crate::provider::ClusterDeployer as _;
use crate::simulation::Simulation;

/// A release went bad: roll the service's workloads back (to `revision`, default the
/// previous one), wait until they are ready, verify.
///
/// ```yaml
/// - { name: application-rollback, kind: application-rollback, service: api }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationRollback {
    /// The service whose release went bad.
    pub service: String,
    /// The revision to roll back to (default: the previous one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
}

impl Kind for ApplicationRollback {
    fn build(&self, g: &mut GraphBuilder<'_>) -> Result<()> {
        workload_action(g, &self.service, WorkloadOp::Undo(self.revision))
    }

    fn validate(&self, c: &mut ScenarioChecks<'_>) {
        service_with_workloads(c, &self.service);
    }

    async fn inject(&self, sim: &Simulation) {
        // A bad release: a new revision of every workload of the service.
        let Some(svc) = sim.plan().service(&self.service) else {
            return;
        };
        let cluster = sim.cloud().cluster();
        for w in sim.home_workloads(&svc.workloads) {
            let image = format!("{}:bad-release", w.name);
            if let Err(e) = cluster.set_image(&w, &w.name, &image).await {
                tracing::warn!(workload = %w, error = %e, "could not inject a bad release");
            }
        }
    }

    fn incident(&self, _plan: &Plan) -> String {
        format!("a bad release of service {} is live", self.service)
    }
}
