//! `security-isolation`: a service is compromised.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::common::{home_cluster, manifest, preamble, unknown, workload_ref};
use super::{Kind, Result};
use crate::graph::Action;
use crate::plan::validate::ScenarioChecks;
use crate::plan::Plan;
use crate::planner::build::{databases_of, service_index, GraphBuilder};
use crate::provider::{DbRef, Severity};
use crate::simulation::Simulation;

/// A service is compromised: isolate its workloads, export the namespace's objects to the
/// evidence store, snapshot its databases, scale to zero, and after an approval redeploy
/// clean workloads.
///
/// ```yaml
/// - { name: security-isolation, kind: security-isolation, service: api, evidence_store: evidence }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityIsolation {
    /// The compromised service.
    pub service: String,
    /// The store evidence goes to.
    pub evidence_store: String,
}

impl Kind for SecurityIsolation {
    fn build(&self, g: &mut GraphBuilder<'_>) -> Result<()> {
        let name = self.service.as_str();
        let store = self.evidence_store.clone();
        let svc = g
            .plan
            .service(name)
            .ok_or_else(|| unknown("service", name))?;
        let gate = preamble(g);
        let stamp = g.observed.observed_at.format("%Y%m%d%H%M%S").to_string();
        let mut contained = Vec::new();
        let mut exported: BTreeMap<(String, String), String> = BTreeMap::new();
        let mut homes = Vec::new();
        for w in &svc.workloads {
            homes.push(home_cluster(g, w)?);
        }
        for (cluster, w) in &homes {
            let wref = workload_ref(cluster, w);
            let iso = g.add(
                format!("{}/isolate:{}", svc.name, w.name),
                Action::new(crate::step::cluster::IsolateWorkload {
                    workload: wref.clone(),
                }),
                Some(&svc.name),
                gate.clone(),
            );
            // Evidence of the namespace before anything is torn down.
            let key = (cluster.name.clone(), w.namespace.clone());
            let export = match exported.get(&key) {
                Some(id) => id.clone(),
                None => {
                    let id = g.add(
                        format!("{}/export:{}/{}", svc.name, cluster.name, w.namespace),
                        Action::new(crate::step::store::ExportResources {
                            cluster: cluster.name.clone(),
                            namespace: w.namespace.clone(),
                            kinds: Vec::new(),
                            store: store.clone(),
                            key: format!(
                                "evidence/{}/{}/{stamp}/{}/{}.yaml",
                                g.plan.name, g.scenario.name, cluster.name, w.namespace
                            ),
                        }),
                        Some(&svc.name),
                        vec![iso.clone()],
                    );
                    exported.insert(key, id.clone());
                    id
                }
            };
            contained.push(g.add(
                format!("{}/scale-to-zero:{}", svc.name, w.name),
                Action::new(crate::step::cluster::Scale {
                    workload: wref,
                    replicas: 0,
                }),
                Some(&svc.name),
                vec![iso, export],
            ));
        }
        for db in databases_of(&service_index(g.plan), svc) {
            let Some(db) = g.plan.database(&db) else {
                continue;
            };
            let me = DbRef::new(&db.region, db.instance());
            let snap_id = format!("{}-evidence-{stamp}", db.instance());
            contained.push(g.add_call(
                format!("{}/evidence-snapshot", db.name),
                Action::new(crate::step::database::CreateDbSnapshot {
                    db: me,
                    snapshot_id: snap_id,
                }),
                Some(&svc.name),
                gate.clone(),
            ));
        }
        let approve = g.add(
        format!("{}/approve-redeploy", svc.name),
        Action::new(crate::step::approval::Approval {
            prompt: format!(
                "Evidence of `{}` is captured and its workloads are stopped: redeploy clean workloads?",
                svc.name
            ),
        }),
        Some(&svc.name),
        contained,
    );
        for (cluster, w) in &homes {
            let apply = g.add(
                format!("{}/redeploy:{}", svc.name, w.name),
                Action::new(crate::step::cluster::ApplyManifests {
                    cluster: cluster.name.clone(),
                    namespace: w.namespace.clone(),
                    manifests: vec![manifest(w)],
                }),
                Some(&svc.name),
                vec![approve.clone()],
            );
            g.add(
                format!("{}/wait:{}", svc.name, w.name),
                Action::new(crate::step::cluster::WaitWorkload {
                    workload: workload_ref(cluster, w),
                }),
                Some(&svc.name),
                vec![apply],
            );
        }
        Ok(())
    }

    fn validate(&self, c: &mut ScenarioChecks<'_>) {
        c.service("service", &self.service);
        c.store("evidence_store", &self.evidence_store);
    }

    async fn inject(&self, _sim: &Simulation) {
        // A compromise leaves the infrastructure up, as in real incidents.
    }

    fn incident(&self, _plan: &Plan) -> String {
        format!("service {} is compromised", self.service)
    }

    fn severity(&self) -> Severity {
        Severity::Critical
    }
}
