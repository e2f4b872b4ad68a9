//! Workload operations: scale, restart, undo, image and env changes, status, isolation.
//!
//! Deployments and StatefulSets share the field names this module reads (`spec.replicas`,
//! `spec.selector`, `spec.template`, `status.updatedReplicas`, …), so both are handled as
//! dynamic objects. Revisions follow kubectl: a Deployment's revisions are its ReplicaSets'
//! `deployment.kubernetes.io/revision` annotations, a StatefulSet's are its
//! ControllerRevisions.

use std::collections::BTreeMap;

use dr_core::provider::{RolloutStatus, WorkloadKind, WorkloadRef};
use dr_core::{Error, Result};
use k8s_openapi::api::apps::v1::{ControllerRevision, ReplicaSet};
use k8s_openapi::api::core::v1::{EnvVar, PodTemplateSpec};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{json, Value};

use crate::config::Cluster;
use crate::error::{invalid_response, map, PROVIDER};

/// Annotation holding a Deployment's (and its ReplicaSets') revision.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// Pod-template annotation `kubectl rollout restart` sets.
pub const RESTARTED_AT_ANNOTATION: &str = "kubectl.kubernetes.io/restartedAt";
/// Prefix of the deny-all NetworkPolicy [`ClusterDeployer::isolate`](dr_core::provider::ClusterDeployer::isolate) applies: `dr-isolate-{workload}`.
pub const ISOLATION_POLICY_PREFIX: &str = "dr-isolate-";

/// Name of the isolation NetworkPolicy of workload `name`.
pub fn isolation_policy_name(name: &str) -> String {
    format!("{ISOLATION_POLICY_PREFIX}{name}")
}

fn resource(w: &WorkloadRef) -> ApiResource {
    let (kind, plural) = match w.kind {
        WorkloadKind::Deployment => ("Deployment", "deployments"),
        WorkloadKind::StatefulSet => ("StatefulSet", "statefulsets"),
    };
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("apps", "v1", kind), plural)
}

fn api(cl: &Cluster, w: &WorkloadRef) -> Api<DynamicObject> {
    Api::namespaced_with(cl.client.clone(), &w.namespace, &resource(w))
}

/// Reads the workload as JSON.
async fn get(cl: &Cluster, w: &WorkloadRef, op: &str) -> Result<Value> {
    let obj = api(cl, w)
        .get(&w.name)
        .await
        .map_err(|e| map(e, op, &w.to_string()))?;
    serde_json::to_value(obj).map_err(|e| invalid_response(op, format!("{w}: {e}")))
}

fn template(obj: &Value, w: &WorkloadRef, op: &str) -> Result<PodTemplateSpec> {
    let t = obj
        .pointer("/spec/template")
        .cloned()
        .ok_or_else(|| invalid_response(op, format!("{w} has no pod template")))?;
    serde_json::from_value(t).map_err(|e| invalid_response(op, format!("{w}: template: {e}")))
}

fn selector(obj: &Value, w: &WorkloadRef, op: &str) -> Result<LabelSelector> {
    let s = obj
        .pointer("/spec/selector")
        .cloned()
        .ok_or_else(|| invalid_response(op, format!("{w} has no selector")))?;
    serde_json::from_value(s).map_err(|e| invalid_response(op, format!("{w}: selector: {e}")))
}

fn uid(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/uid").and_then(Value::as_str)
}

fn u64_at(obj: &Value, p: &str) -> u64 {
    obj.pointer(p).and_then(Value::as_u64).unwrap_or(0)
}

fn annotation_revision(annotations: Option<&BTreeMap<String, String>>) -> Option<u64> {
    annotations?.get(REVISION_ANNOTATION)?.parse().ok()
}

/// `matchLabels` as a label-selector query (`app=api,tier=web`).
fn label_query(sel: &LabelSelector) -> String {
    sel.match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn owned_by(
    owners: Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>>,
    uid: Option<&str>,
) -> bool {
    match (owners, uid) {
        (Some(owners), Some(uid)) => owners.iter().any(|o| o.uid == uid),
        _ => false,
    }
}

/// Sets `spec.replicas` through the scale subresource (a merge patch).
pub(crate) async fn scale(cl: &Cluster, w: &WorkloadRef, replicas: u32) -> Result<()> {
    let patch = json!({ "spec": { "replicas": replicas } });
    api(cl, w)
        .patch_scale(&w.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
        .map_err(|e| map(e, "scale", &w.to_string()))
}

/// `kubectl rollout restart`: stamps the pod template with the restart time.
///
/// The new revision is read before the patch (the controller may act on the patch before its
/// answer arrives): a restart template is always new, so it gets the next revision.
pub(crate) async fn restart(cl: &Cluster, w: &WorkloadRef) -> Result<u64> {
    let op = "rollout_restart";
    let obj = get(cl, w, op).await?;
    let current = match w.kind {
        WorkloadKind::Deployment => deployment_revision(&obj),
        WorkloadKind::StatefulSet => {
            let history = sts_history(cl, w, &obj, op).await?;
            history.last().map_or(0, |(r, _)| *r)
        }
    };
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let patch = json!({ "spec": { "template": { "metadata": { "annotations": {
        RESTARTED_AT_ANNOTATION: now
    } } } } });
    api(cl, w)
        .patch(&w.name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .map_err(|e| map(e, op, &w.to_string()))?;
    Ok(current + 1)
}

fn deployment_revision(obj: &Value) -> u64 {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(REVISION_ANNOTATION))
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The ReplicaSets of a Deployment by revision, ascending.
async fn deployment_history(
    cl: &Cluster,
    w: &WorkloadRef,
    obj: &Value,
    op: &str,
) -> Result<Vec<(u64, ReplicaSet)>> {
    let sel = selector(obj, w, op)?;
    let rs_api: Api<ReplicaSet> = Api::namespaced(cl.client.clone(), &w.namespace);
    let list = rs_api
        .list(&ListParams::default().labels(&label_query(&sel)))
        .await
        .map_err(|e| map(e, op, &format!("replicasets of {w}")))?;
    let uid = uid(obj);
    let mut history: Vec<(u64, ReplicaSet)> = list
        .items
        .into_iter()
        .filter(|rs| owned_by(rs.metadata.owner_references.as_ref(), uid))
        .filter_map(|rs| Some((annotation_revision(rs.metadata.annotations.as_ref())?, rs)))
        .collect();
    history.sort_by_key(|(r, _)| *r);
    Ok(history)
}

/// The ControllerRevisions of a StatefulSet by revision, ascending.
async fn sts_history(
    cl: &Cluster,
    w: &WorkloadRef,
    obj: &Value,
    op: &str,
) -> Result<Vec<(u64, ControllerRevision)>> {
    let sel = selector(obj, w, op)?;
    let cr_api: Api<ControllerRevision> = Api::namespaced(cl.client.clone(), &w.namespace);
    let list = cr_api
        .list(&ListParams::default().labels(&label_query(&sel)))
        .await
        .map_err(|e| map(e, op, &format!("controllerrevisions of {w}")))?;
    let uid = uid(obj);
    let mut history: Vec<(u64, ControllerRevision)> = list
        .items
        .into_iter()
        .filter(|cr| owned_by(cr.metadata.owner_references.as_ref(), uid))
        .filter_map(|cr| Some((u64::try_from(cr.revision).ok()?, cr)))
        .collect();
    history.sort_by_key(|(r, _)| *r);
    Ok(history)
}

/// Picks the revision to roll back to: `revision`, or the newest one older than `current`.
fn pick<T>(
    history: Vec<(u64, T)>,
    current: u64,
    revision: Option<u64>,
    w: &WorkloadRef,
) -> Result<T> {
    let found = match revision {
        Some(r) => history.into_iter().find(|(rev, _)| *rev == r),
        None => history.into_iter().rev().find(|(rev, _)| *rev < current),
    };
    found.map(|(_, t)| t).ok_or_else(|| {
        Error::not_found(
            PROVIDER,
            match revision {
                Some(r) => format!("revision {r} of {w}"),
                None => format!("a revision before {current} of {w}"),
            },
        )
    })
}

/// `kubectl rollout undo [--to-revision]`.
///
/// Deployment: the pod template of the ReplicaSet with that revision (without its
/// `pod-template-hash` label) replaces the Deployment's. StatefulSet: the ControllerRevision's
/// `data` (a strategic merge patch replacing the template) is applied, as kubectl does. Both
/// replace the template with the strategic-merge `$patch: replace` directive.
pub(crate) async fn undo(cl: &Cluster, w: &WorkloadRef, revision: Option<u64>) -> Result<u64> {
    let op = "rollout_undo";
    let obj = get(cl, w, op).await?;
    let current_template = obj
        .pointer("/spec/template")
        .cloned()
        .unwrap_or(Value::Null);
    let (patch, current, newest) = match w.kind {
        WorkloadKind::Deployment => {
            let history = deployment_history(cl, w, &obj, op).await?;
            let current = match deployment_revision(&obj) {
                0 => history.last().map_or(0, |(r, _)| *r),
                r => r,
            };
            let newest = history.last().map_or(current, |(r, _)| *r).max(current);
            let rs = pick(history, current, revision, w)?;
            let mut tmpl = rs.spec.and_then(|s| s.template).ok_or_else(|| {
                invalid_response(op, format!("replicaset of {w} has no template"))
            })?;
            if let Some(labels) = tmpl.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
                labels.remove("pod-template-hash");
            }
            let mut tmpl =
                serde_json::to_value(tmpl).map_err(|e| invalid_response(op, e.to_string()))?;
            if tmpl == current_template {
                tracing::info!(%w, "rollback skipped: the template already matches");
                return Ok(current);
            }
            if let Some(t) = tmpl.as_object_mut() {
                t.insert("$patch".into(), json!("replace"));
            }
            (json!({ "spec": { "template": tmpl } }), current, newest)
        }
        WorkloadKind::StatefulSet => {
            let history = sts_history(cl, w, &obj, op).await?;
            let newest = history.last().map_or(0, |(r, _)| *r);
            let cr = pick(history, newest, revision, w)?;
            let data = cr.data.map(|d| d.0).ok_or_else(|| {
                invalid_response(op, format!("controllerrevision of {w} has no data"))
            })?;
            let mut target = data
                .pointer("/spec/template")
                .cloned()
                .unwrap_or(Value::Null);
            if let Some(t) = target.as_object_mut() {
                t.remove("$patch");
            }
            if target == current_template {
                return Ok(newest);
            }
            (data, newest, newest)
        }
    };
    tracing::info!(%w, from = current, "rolling back");
    api(cl, w)
        .patch(&w.name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .map_err(|e| map(e, op, &w.to_string()))?;
    Ok(newest + 1)
}

/// `kubectl set image`: a strategic merge patch on the named container.
pub(crate) async fn set_image(
    cl: &Cluster,
    w: &WorkloadRef,
    container: &str,
    image: &str,
) -> Result<()> {
    let op = "set_image";
    let obj = get(cl, w, op).await?;
    let spec = template(&obj, w, op)?.spec.unwrap_or_default();
    let list = if spec.containers.iter().any(|c| c.name == container) {
        "containers"
    } else if spec
        .init_containers
        .iter()
        .flatten()
        .any(|c| c.name == container)
    {
        "initContainers"
    } else {
        return Err(Error::not_found(
            PROVIDER,
            format!("container {container} of {w}"),
        ));
    };
    let patch = json!({ "spec": { "template": { "spec": {
        list: [ { "name": container, "image": image } ]
    } } } });
    api(cl, w)
        .patch(&w.name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .map(|_| ())
        .map_err(|e| map(e, op, &w.to_string()))
}

/// `kubectl set env`: sets each variable on every container (a strategic merge patch keyed by
/// container and variable name; a `valueFrom` of the same name is replaced).
pub(crate) async fn set_env(
    cl: &Cluster,
    w: &WorkloadRef,
    env: &BTreeMap<String, String>,
) -> Result<()> {
    let op = "set_env";
    if env.is_empty() {
        return Ok(());
    }
    let obj = get(cl, w, op).await?;
    let spec = template(&obj, w, op)?.spec.unwrap_or_default();
    let vars: Vec<Value> = env
        .iter()
        .map(|(k, v)| json!({ "name": k, "value": v, "valueFrom": null }))
        .collect();
    let containers: Vec<Value> = spec
        .containers
        .iter()
        .map(|c| json!({ "name": c.name, "env": vars }))
        .collect();
    let patch = json!({ "spec": { "template": { "spec": { "containers": containers } } } });
    api(cl, w)
        .patch(&w.name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .map(|_| ())
        .map_err(|e| map(e, op, &w.to_string()))
}

fn env_value(var: &EnvVar) -> String {
    if let Some(v) = &var.value {
        return v.clone();
    }
    match &var.value_from {
        Some(from) => {
            if let Some(s) = &from.secret_key_ref {
                format!("<secret {}/{}>", s.name, s.key)
            } else if let Some(c) = &from.config_map_key_ref {
                format!("<configmap {}/{}>", c.name, c.key)
            } else if let Some(f) = &from.field_ref {
                format!("<field {}>", f.field_path)
            } else {
                "<valueFrom>".to_string()
            }
        }
        None => String::new(),
    }
}

/// The rollout status, read as `kubectl rollout status` judges it.
pub(crate) async fn status(cl: &Cluster, w: &WorkloadRef) -> Result<RolloutStatus> {
    let op = "rollout_status";
    let obj = get(cl, w, op).await?;
    let replicas = obj
        .pointer("/spec/replicas")
        .and_then(Value::as_u64)
        .unwrap_or(1);
    let generation = u64_at(&obj, "/metadata/generation");
    let observed_generation = u64_at(&obj, "/status/observedGeneration");
    let updated = u64_at(&obj, "/status/updatedReplicas");
    let mut available = match obj
        .pointer("/status/availableReplicas")
        .and_then(Value::as_u64)
    {
        Some(n) => n,
        // StatefulSets report available replicas from Kubernetes 1.22 on; before, the ready
        // ones are what `kubectl rollout status` counts.
        None if w.kind == WorkloadKind::StatefulSet => u64_at(&obj, "/status/readyReplicas"),
        None => 0,
    };
    let current = u64_at(&obj, "/status/replicas");
    if current > updated {
        // Old pods still run: only the updated ones count as available at this revision.
        available = available.min(updated);
    }
    let revision = match w.kind {
        WorkloadKind::Deployment => deployment_revision(&obj),
        WorkloadKind::StatefulSet => match obj
            .pointer("/status/updateRevision")
            .and_then(Value::as_str)
        {
            Some(name) => {
                let cr_api: Api<ControllerRevision> =
                    Api::namespaced(cl.client.clone(), &w.namespace);
                cr_api
                    .get_opt(name)
                    .await
                    .map_err(|e| map(e, op, &format!("controllerrevision {name} of {w}")))?
                    .and_then(|cr| u64::try_from(cr.revision).ok())
                    .unwrap_or(0)
            }
            None => 0,
        },
    };
    let np_api: Api<NetworkPolicy> = Api::namespaced(cl.client.clone(), &w.namespace);
    let policy = isolation_policy_name(&w.name);
    let isolated = np_api
        .get_opt(&policy)
        .await
        .map_err(|e| {
            map(
                e,
                op,
                &format!("networkpolicy {}/{policy} on {}", w.namespace, w.cluster),
            )
        })?
        .is_some();
    let spec = template(&obj, w, op)?.spec.unwrap_or_default();
    let env = spec
        .containers
        .iter()
        .flat_map(|c| c.env.iter().flatten())
        .map(|v| (v.name.clone(), env_value(v)))
        .collect();
    let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    Ok(RolloutStatus {
        workload: w.clone(),
        replicas: clamp(replicas),
        updated_replicas: clamp(updated),
        available_replicas: clamp(available),
        revision,
        observed: observed_generation >= generation,
        isolated,
        env,
    })
}

/// Applies the deny-all NetworkPolicy `dr-isolate-{name}` selecting the workload's pods.
pub(crate) async fn isolate(cl: &Cluster, w: &WorkloadRef, field_manager: &str) -> Result<()> {
    let op = "isolate_workload";
    let obj = get(cl, w, op).await?;
    let sel = selector(&obj, w, op)?;
    let name = isolation_policy_name(&w.name);
    let policy = json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": name,
            "namespace": w.namespace,
            "labels": { "app.kubernetes.io/managed-by": field_manager },
        },
        "spec": {
            "podSelector": sel,
            "policyTypes": ["Ingress", "Egress"],
        },
    });
    let np_api: Api<NetworkPolicy> = Api::namespaced(cl.client.clone(), &w.namespace);
    np_api
        .patch(
            &name,
            &PatchParams::apply(field_manager).force(),
            &Patch::Apply(&policy),
        )
        .await
        .map(|_| ())
        .map_err(|e| {
            map(
                e,
                op,
                &format!("networkpolicy {}/{name} on {}", w.namespace, w.cluster),
            )
        })
}
