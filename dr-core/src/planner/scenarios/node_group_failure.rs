//! `node-group-failure`: a node group of a cluster stops serving.

use serde::{Deserialize, Serialize};

use super::common::{preamble, unknown, verify_step, workload_ref};
use super::{Kind, Result};
use crate::graph::Action;
use crate::plan::validate::ScenarioChecks;
use crate::plan::{Cluster, NodeGroup, Plan};
use crate::planner::build::GraphBuilder;
use crate::provider::{NodeGroupRef, Severity};
use crate::simulation::Simulation;

/// A node group of `cluster` fails (its nodes NotReady: an instance type's capacity lost,
/// a bad AMI, an availability zone down): scale the `replacement` group of the same cluster
/// to its serving bounds and wait until it is ready, then cordon and drain the nodes of
/// `node_group` that are NotReady — a node still Ready keeps serving and is not touched —
/// so their pods are rescheduled on the replacement; then wait for the workloads of the
/// cluster and verify its services.
///
/// If the replacement never becomes ready, nothing is drained and the run fails naming it.
///
/// ```yaml
/// - { name: nodes-lost, kind: node-group-failure, cluster: prod-east, node_group: general, replacement: general-b }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeGroupFailure {
    /// The cluster.
    pub cluster: String,
    /// The node group that failed.
    pub node_group: String,
    /// The node group of the same cluster that takes its pods.
    pub replacement: String,
}

/// Whether node group `group` of `cluster` is the replacement of a `node-group-failure`
/// scenario of `plan`: a spare, standing by until that scenario scales it.
pub(crate) fn is_spare(plan: &Plan, cluster: &str, group: &str) -> bool {
    plan.scenarios.iter().any(|s| {
        matches!(&s.kind, crate::plan::ScenarioKind::NodeGroupFailure(k)
            if k.cluster == cluster && k.replacement == group)
    })
}

fn group<'a>(cluster: &'a Cluster, name: &str) -> Result<&'a NodeGroup> {
    cluster
        .node_groups
        .iter()
        .find(|g| g.name == name)
        .ok_or_else(|| unknown("node group", name))
}

impl Kind for NodeGroupFailure {
    fn build(&self, g: &mut GraphBuilder<'_>) -> Result<()> {
        let cluster = g
            .plan
            .clusters
            .iter()
            .find(|c| c.name == self.cluster)
            .ok_or_else(|| unknown("cluster", &self.cluster))?;
        let failed = group(cluster, &self.node_group)?;
        let replacement = group(cluster, &self.replacement)?;
        let gate = preamble(g);

        // The replacement up and ready first: only then is anything drained.
        let gref = NodeGroupRef::new(&cluster.name, &replacement.name);
        let scale = Action::new(crate::step::nodes::ScaleNodeGroup {
            group: gref.clone(),
            scaling: replacement.serving(),
        });
        let id = format!("nodes:{}/{}", cluster.name, replacement.name);
        let call = g.add_call(format!("{id}/scale"), scale.clone(), None, gate);
        let ready = g.add_wait(
            format!("{id}/wait"),
            Action::new(crate::step::nodes::WaitNodeGroup { group: gref }),
            &scale,
            None,
            vec![call],
        );
        let drained = g.add(
            format!("nodes:{}/{}/drain", cluster.name, failed.name),
            Action::new(crate::step::nodes::DrainNodes {
                cluster: cluster.name.clone(),
                node_group: failed.name.clone(),
                label: failed.label().to_string(),
            }),
            None,
            vec![ready],
        );

        // The services running on the cluster: their workloads back to ready, then healthy.
        for svc in &g.plan.services {
            let on_cluster: Vec<_> = cluster
                .workloads
                .iter()
                .filter(|w| svc.workloads.contains(&w.name))
                .collect();
            if on_cluster.is_empty() {
                continue;
            }
            let mut waits = Vec::new();
            for w in on_cluster {
                waits.push(g.add(
                    format!("{}/wait:{}", svc.name, w.name),
                    Action::new(crate::step::cluster::WaitWorkload {
                        workload: workload_ref(cluster, w),
                    }),
                    Some(&svc.name),
                    vec![drained.clone()],
                ));
            }
            verify_step(g, svc, waits);
        }
        Ok(())
    }

    fn validate(&self, c: &mut ScenarioChecks<'_>) {
        c.cluster("cluster", &self.cluster);
        let Some(cluster) = c.plan.clusters.iter().find(|cl| cl.name == self.cluster) else {
            return;
        };
        let declared = |name: &str| cluster.node_groups.iter().any(|g| g.name == name);
        for (field, name) in [
            ("node_group", &self.node_group),
            ("replacement", &self.replacement),
        ] {
            if !declared(name) {
                let known: Vec<&str> = cluster
                    .node_groups
                    .iter()
                    .map(|g| g.name.as_str())
                    .collect();
                let known = if known.is_empty() {
                    "it declares none".to_string()
                } else {
                    format!("it declares {}", known.join(", "))
                };
                c.problem(
                    field,
                    format!(
                        "cluster `{}` has no node group `{name}` ({known})",
                        cluster.name
                    ),
                );
            }
        }
        if self.node_group == self.replacement {
            c.problem(
                "replacement",
                format!(
                    "node group `{}` cannot replace itself: name another group of `{}`",
                    self.node_group, cluster.name
                ),
            );
        }
    }

    async fn inject(&self, sim: &Simulation) {
        sim.cloud()
            .fail_node_group(&NodeGroupRef::new(&self.cluster, &self.node_group));
    }

    fn incident(&self, _plan: &Plan) -> String {
        format!(
            "node group {}/{} stopped serving: its nodes are NotReady",
            self.cluster, self.node_group
        )
    }

    fn severity(&self) -> Severity {
        Severity::Critical
    }
}
