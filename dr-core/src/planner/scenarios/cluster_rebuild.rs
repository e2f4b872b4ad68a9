//! `cluster-rebuild`: a cluster is lost.

use crate::graph::StepId;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::common::{
    dns_steps, manifest, or_else, ordered, preamble, scale_nodes, secret_step, unknown,
    verify_step, workload_ref,
};
use super::{Kind, Result};
use crate::graph::Action;
use crate::plan::validate::ScenarioChecks;
use crate::plan::{Plan, Workload};
use crate::planner::build::GraphBuilder;
use crate::provider::DbRef;
use crate::simulation::Simulation;

/// A cluster is lost: scale the other cluster's node groups from standby to serving, apply
/// the workloads there (secrets first), wait until they are ready, switch DNS to the new
/// cluster, verify.
///
/// ```yaml
/// - { name: cluster-rebuild, kind: cluster-rebuild, cluster: prod-east, to_cluster: dr-west }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterRebuild {
    /// The failed cluster.
    pub cluster: String,
    /// The cluster to rebuild on.
    pub to_cluster: String,
}

impl Kind for ClusterRebuild {
    fn build(&self, g: &mut GraphBuilder<'_>) -> Result<()> {
        let (from, to) = (self.cluster.as_str(), self.to_cluster.as_str());
        let failed = g
            .plan
            .cluster(from)
            .ok_or_else(|| unknown("cluster", from))?;
        let target = g.plan.cluster(to).ok_or_else(|| unknown("cluster", to))?;
        let gate = preamble(g);
        // The new cluster's node groups from standby to serving, before its workloads.
        let capacity = scale_nodes(g, target, &gate);
        let mut done: BTreeMap<String, Vec<StepId>> = BTreeMap::new();
        for svc in ordered(g) {
            let on_failed: Vec<&Workload> = failed
                .workloads
                .iter()
                .filter(|w| svc.workloads.contains(&w.name))
                .collect();
            if on_failed.is_empty() {
                continue;
            }
            let mut deps = gate.clone();
            for d in &svc.depends_on {
                deps.extend(done.get(d).cloned().unwrap_or_default());
            }
            let db = svc
                .database
                .as_deref()
                .and_then(|d| g.plan.database(d))
                .map(|d| DbRef::new(&d.region, d.instance()));
            let mut secret = None;
            let mut ready = Vec::new();
            for w in on_failed {
                if let (None, Some(db)) = (&secret, &db) {
                    secret = secret_step(g, svc, target, &w.namespace, db, deps.clone());
                }
                let mut apply_deps = deps.clone();
                apply_deps.extend(secret.clone());
                apply_deps.extend(capacity.iter().cloned());
                let apply = g.add(
                    format!("{}/apply:{}", svc.name, w.name),
                    Action::new(crate::step::cluster::ApplyManifests {
                        cluster: target.name.clone(),
                        namespace: w.namespace.clone(),
                        manifests: vec![manifest(w)],
                    }),
                    Some(&svc.name),
                    apply_deps,
                );
                ready.push(g.add(
                    format!("{}/wait:{}", svc.name, w.name),
                    Action::new(crate::step::cluster::WaitWorkload {
                        workload: workload_ref(target, w),
                    }),
                    Some(&svc.name),
                    vec![apply],
                ));
            }
            let cross_region = target.region != failed.region;
            let switched = dns_steps(
                g,
                svc,
                |r| {
                    r.targets
                        .get(&target.region)
                        .filter(|_| cross_region)
                        .cloned()
                        .or_else(|| Some(target.ingress.clone()))
                },
                &ready,
            )?;
            verify_step(g, svc, or_else(switched, &ready));
            done.insert(svc.name.clone(), g.service_sinks(&svc.name));
        }
        Ok(())
    }

    fn validate(&self, c: &mut ScenarioChecks<'_>) {
        c.cluster("cluster", &self.cluster);
        c.cluster("to_cluster", &self.to_cluster);
        if self.cluster == self.to_cluster {
            c.problem("to_cluster", "a cluster cannot be rebuilt onto itself");
        }
    }

    async fn inject(&self, sim: &Simulation) {
        // A cluster rebuilt in another region was lost with its region.
        let plan = sim.plan();
        if let (Some(f), Some(t)) = (plan.cluster(&self.cluster), plan.cluster(&self.to_cluster)) {
            if f.region != t.region {
                sim.cloud().fail_region(&f.region);
            }
        }
    }

    fn incident(&self, _plan: &Plan) -> String {
        format!("cluster {} is lost", self.cluster)
    }
}
