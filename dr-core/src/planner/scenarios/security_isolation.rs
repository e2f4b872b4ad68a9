//! `security-isolation`: a service is compromised.

use crate::graph::StepId;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::common::{home_cluster, manifest, preamble, unknown, workload_ref};
use super::{Kind, Result};
use crate::graph::{Action, SecretSource};
use crate::plan::validate::ScenarioChecks;
use crate::plan::Plan;
use crate::planner::build::{databases_of, service_index, GraphBuilder};
use crate::provider::{DbRef, Severity};
use crate::simulation::Simulation;
use crate::step::security::{CopyCredential, DenyAllTraffic, RotateCredential, SnapshotVolume};

/// A service is compromised: cut its workloads off (the Service selector pointed away and a
/// deny-all `NetworkPolicy` on its pods), scale them to zero, keep evidence (the namespace's
/// objects written once to the evidence store, a snapshot of its databases, snapshots of its
/// block volumes tagged with the incident), rotate the cloud credential it used, and after
/// an approval redeploy clean workloads into a new namespace (`<namespace>-recovery`) with
/// the new credential in their secret.
///
/// Evidence is never overwritten or deleted by the run, and nothing is rotated or
/// redeployed unless every piece of evidence was kept.
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

/// The namespace clean workloads are redeployed into.
pub(crate) fn recovery_namespace(namespace: &str) -> String {
    format!("{namespace}-recovery")
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
        // What the incident's evidence is tagged and keyed with.
        let incident = format!("{}/{}/{stamp}", g.plan.name, g.scenario.name);
        let mut contained = Vec::new();
        let mut evidence = Vec::new();
        let mut exported: BTreeMap<(String, String), StepId> = BTreeMap::new();
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
            let deny = g.add(
                format!("{}/deny-all:{}", svc.name, w.name),
                Action::new(DenyAllTraffic {
                    cluster: cluster.name.clone(),
                    namespace: w.namespace.clone(),
                    workload: w.name.clone(),
                    // The pod template labels of the workload's manifest.
                    selector: BTreeMap::from([("app".to_string(), w.name.clone())]),
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
                        vec![iso.clone(), deny.clone()],
                    );
                    exported.insert(key, id.clone());
                    evidence.push(id.clone());
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
                vec![iso, deny, export],
            ));
        }
        for db in databases_of(&service_index(g.plan), svc) {
            let Some(db) = g.plan.database(&db) else {
                continue;
            };
            let me = DbRef::new(&db.region, db.instance());
            let snap_id = format!("{}-evidence-{stamp}", db.instance());
            evidence.push(g.add_call(
                format!("{}/evidence-snapshot", db.name),
                Action::new(crate::step::database::CreateDbSnapshot {
                    db: me,
                    snapshot_id: snap_id,
                }),
                Some(&svc.name),
                gate.clone(),
            ));
        }
        // Block volumes once the pods are stopped: their disks no longer change.
        let home_region = homes.first().map(|(c, _)| c.region.clone());
        for v in &svc.volumes {
            let Some(region) = v.region.clone().or_else(|| home_region.clone()) else {
                return Err(unknown("region of volume", &v.id));
            };
            let deps = if contained.is_empty() {
                gate.clone()
            } else {
                contained.clone()
            };
            evidence.push(g.add(
                format!("{}/snapshot-volume:{}", svc.name, v.id),
                Action::new(SnapshotVolume {
                    region,
                    volume: v.id.clone(),
                    tags: BTreeMap::from([
                        ("incident".to_string(), incident.clone()),
                        ("service".to_string(), svc.name.clone()),
                    ]),
                    description: format!("Security incident {incident}: {}", svc.name),
                }),
                Some(&svc.name),
                deps,
            ));
        }
        // The credential is rotated only once every piece of evidence is kept.
        let mut before_approval = contained;
        before_approval.extend(evidence.iter().cloned());
        let rotated = svc.credential.as_ref().map(|c| {
            g.add(
                format!("{}/rotate-credential", svc.name),
                Action::new(RotateCredential {
                    region: c.region.clone(),
                    secret: c.secret.clone(),
                    incident: incident.clone(),
                }),
                Some(&svc.name),
                before_approval.clone(),
            )
        });
        before_approval.extend(rotated.clone());
        let approve = g.add(
            format!("{}/approve-redeploy", svc.name),
            Action::new(crate::step::approval::Approval {
                prompt: format!(
                    "Evidence of `{}` is kept, its workloads are stopped and its credential rotated: redeploy clean workloads into a new namespace?",
                    svc.name
                ),
            }),
            Some(&svc.name),
            before_approval,
        );
        // Clean workloads into `<namespace>-recovery`, created by the apply; then the
        // secrets they read, then a restart so their pods read them.
        let mut applied: BTreeMap<(String, String), Vec<StepId>> = BTreeMap::new();
        for (cluster, w) in &homes {
            let ns = recovery_namespace(&w.namespace);
            let mut clean = (*w).clone();
            clean.namespace = ns.clone();
            let apply = g.add(
                format!("{}/redeploy:{}", svc.name, w.name),
                Action::new(crate::step::cluster::ApplyManifests {
                    cluster: cluster.name.clone(),
                    namespace: ns.clone(),
                    manifests: vec![manifest(&clean)],
                }),
                Some(&svc.name),
                vec![approve.clone()],
            );
            applied
                .entry((cluster.name.clone(), ns))
                .or_default()
                .push(apply);
        }
        let mut secrets_of: BTreeMap<(String, String), Vec<StepId>> = BTreeMap::new();
        for ((cluster, ns), applies) in &applied {
            let mut written = Vec::new();
            if let (Some(b), Some(db)) = (
                &svc.secret,
                svc.database.as_deref().and_then(|d| g.plan.database(d)),
            ) {
                written.push(g.add(
                    format!("{}/set-secret:{cluster}/{ns}", svc.name),
                    Action::new(crate::step::cluster::SetSecret {
                        cluster: cluster.clone(),
                        namespace: ns.clone(),
                        secret: b.name.clone(),
                        key: b.key.clone(),
                        value: SecretSource::DatabaseEndpoint {
                            db: DbRef::new(&db.region, db.instance()),
                            template: b.template.clone(),
                        },
                    }),
                    Some(&svc.name),
                    applies.clone(),
                ));
            }
            if let Some(c) = &svc.credential {
                if let Some(target) = c.cluster_secret(svc) {
                    let mut deps = applies.clone();
                    deps.extend(rotated.clone());
                    written.push(g.add(
                        format!("{}/copy-credential:{cluster}/{ns}", svc.name),
                        Action::new(CopyCredential {
                            region: c.region.clone(),
                            secret: c.secret.clone(),
                            cluster: cluster.clone(),
                            namespace: ns.clone(),
                            cluster_secret: target.to_string(),
                            key: c.key.clone(),
                        }),
                        Some(&svc.name),
                        deps,
                    ));
                }
            }
            secrets_of.insert((cluster.clone(), ns.clone()), written);
        }
        for (cluster, w) in &homes {
            let ns = recovery_namespace(&w.namespace);
            let mut clean = workload_ref(cluster, w);
            clean.namespace = ns.clone();
            let written = secrets_of
                .get(&(cluster.name.clone(), ns))
                .cloned()
                .unwrap_or_default();
            let ready_after = if written.is_empty() {
                vec![format!("{}/redeploy:{}", svc.name, w.name).into()]
            } else {
                vec![g.add(
                    format!("{}/restart:{}", svc.name, w.name),
                    Action::new(crate::step::cluster::RolloutRestart {
                        workload: clean.clone(),
                    }),
                    Some(&svc.name),
                    written,
                )]
            };
            g.add(
                format!("{}/wait:{}", svc.name, w.name),
                Action::new(crate::step::cluster::WaitWorkload { workload: clean }),
                Some(&svc.name),
                ready_after,
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
