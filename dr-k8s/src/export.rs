//! Export of a namespace's objects as manifests, and their restore from a snapshot store in
//! dependency order.

use std::collections::BTreeMap;

use bytes::Bytes;
use dr_core::provider::{ClusterDeployer, Manifest, PutOptions, SnapshotStore, SnapshotStoreExt};
use dr_core::Result;
use futures::StreamExt;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::ApiResource;
use kube::discovery::Scope;
use serde_json::Value;

use crate::apply::resolve;
use crate::config::Cluster;
use crate::error::{invalid_request, invalid_response, is_not_found, map};
use crate::kinds::{self, restore_phase, RestorePhase};

/// Page size of list calls.
const PAGE: u32 = 500;

/// Annotations that only make sense on the cluster that wrote them.
const CLUSTER_ANNOTATIONS: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
    "pv.kubernetes.io/",
    "volume.beta.kubernetes.io/",
    "volume.kubernetes.io/",
    "control-plane.alpha.kubernetes.io/",
];

/// Labels a Job's controller adds to it and its template.
const JOB_LABELS: &[&str] = &[
    "controller-uid",
    "job-name",
    "batch.kubernetes.io/controller-uid",
    "batch.kubernetes.io/job-name",
];

/// Resolves a kind as the user names it: `Deployment`, `deployments`, `deploy`, or a custom
/// kind as `Kind.version.group` (`Certificate.v1.cert-manager.io`).
async fn resolve_name(cl: &Cluster, name: &str) -> Result<(ApiResource, bool)> {
    if let Some(k) = kinds::by_name(name) {
        return Ok((k.api_resource(None), k.namespaced));
    }
    match name.split_once('.') {
        Some((kind, rest)) => match rest.split_once('.') {
            Some((version, group)) => resolve(cl, &format!("{group}/{version}"), kind).await,
            None => resolve(cl, rest, kind).await,
        },
        None => Err(invalid_request(
            "export",
            format!("unknown kind {name}: name custom kinds as Kind.version.group"),
        )),
    }
}

/// Lists the objects of `kinds` (the common kinds when empty) in `namespace`, without what
/// the cluster owns (status, managedFields, resourceVersion, uid, cluster IPs, bound volume
/// names) and without objects a controller recreates (those with a controller owner).
///
/// A kind the server does not serve at the table's version (CronJob in `batch/v1` before
/// Kubernetes 1.21, PodDisruptionBudget in `policy/v1` before 1.21, HorizontalPodAutoscaler
/// in `autoscaling/v2` before 1.23) is listed at the version its group serves it at; a
/// default kind the server does not serve at all is left out (logged), a named one is
/// `NotFound`.
pub(crate) async fn export(
    cl: &Cluster,
    namespace: &str,
    kinds: &[String],
) -> Result<Vec<Manifest>> {
    let names: Vec<String> = if kinds.is_empty() {
        kinds::DEFAULT_EXPORT
            .iter()
            .map(|k| k.to_string())
            .collect()
    } else {
        kinds.to_vec()
    };
    let mut out = Vec::new();
    for name in &names {
        let (ar, namespaced) = resolve_name(cl, name).await?;
        let what = format!("{} in {namespace} on {}", ar.plural, cl.name);
        let (ar, objects) = match list_all(cl, namespace, &ar, namespaced).await {
            Ok(objects) => (ar, objects),
            Err(e) if is_not_found(&e) => match served_version(cl, &ar).await? {
                Some((served, namespaced)) => {
                    tracing::info!(kind = %ar.kind, wanted = %ar.api_version, served = %served.api_version,
                        cluster = %cl.name, "exporting at the version the server serves");
                    let what = format!(
                        "{} ({}) in {namespace} on {}",
                        served.plural, served.api_version, cl.name
                    );
                    let objects = list_all(cl, namespace, &served, namespaced)
                        .await
                        .map_err(|e| map(e, "export", &what))?;
                    (served, objects)
                }
                None if kinds.is_empty() => {
                    tracing::info!(kind = %ar.kind, group = %ar.group, cluster = %cl.name,
                        "not served by this cluster: nothing to export");
                    continue;
                }
                None => return Err(map(e, "export", &what)),
            },
            Err(e) => return Err(map(e, "export", &what)),
        };
        for obj in objects {
            if let Some(m) = to_manifest(obj, &ar)? {
                out.push(m);
            }
        }
    }
    Ok(out)
}

/// Every object of `ar` in `namespace` (or the cluster), in pages of [`PAGE`].
async fn list_all(
    cl: &Cluster,
    namespace: &str,
    ar: &ApiResource,
    namespaced: bool,
) -> std::result::Result<Vec<DynamicObject>, kube::Error> {
    let api: Api<DynamicObject> = if namespaced {
        Api::namespaced_with(cl.client.clone(), namespace, ar)
    } else {
        Api::all_with(cl.client.clone(), ar)
    };
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default().limit(PAGE);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = api.list(&lp).await?;
        out.extend(page.items);
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// The resource of `ar`'s kind at another version its group serves (the group's preferred
/// version first), or `None` when the server does not serve the kind at all.
async fn served_version(cl: &Cluster, ar: &ApiResource) -> Result<Option<(ApiResource, bool)>> {
    let group = match kube::discovery::group(&cl.client, &ar.group).await {
        Ok(group) => group,
        Err(kube::Error::Discovery(_)) => return Ok(None),
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => {
            return Err(map(
                e,
                "discover",
                &format!("API group {} on {}", ar.group, cl.name),
            ))
        }
    };
    for version in group.versions() {
        if let Some((found, caps)) = group
            .versioned_resources(version)
            .into_iter()
            .find(|(r, _)| r.kind == ar.kind)
        {
            return Ok(Some((found, caps.scope == Scope::Namespaced)));
        }
    }
    Ok(None)
}

fn to_manifest(obj: DynamicObject, ar: &ApiResource) -> Result<Option<Manifest>> {
    let controlled = obj
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true));
    let name = obj.metadata.name.clone().unwrap_or_default();
    let generated = match ar.kind.as_str() {
        "ConfigMap" => name == "kube-root-ca.crt",
        "Secret" => {
            obj.data.get("type").and_then(Value::as_str)
                == Some("kubernetes.io/service-account-token")
        }
        _ => false,
    };
    if controlled || generated {
        return Ok(None);
    }
    let mut body =
        serde_json::to_value(&obj).map_err(|e| invalid_response("export", e.to_string()))?;
    if let Some(map) = body.as_object_mut() {
        map.insert("apiVersion".into(), Value::String(ar.api_version.clone()));
        map.insert("kind".into(), Value::String(ar.kind.clone()));
    }
    clean(&mut body, &ar.kind);
    let yaml =
        serde_yaml_ng::to_string(&body).map_err(|e| invalid_response("export", e.to_string()))?;
    Ok(Some(Manifest {
        kind: ar.kind.clone(),
        name,
        body: yaml,
    }))
}

/// Strips what belongs to the source cluster, so the manifest applies anywhere.
pub(crate) fn clean(body: &mut Value, kind: &str) {
    let Some(obj) = body.as_object_mut() else {
        return;
    };
    obj.remove("status");
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in [
            "namespace",
            "uid",
            "resourceVersion",
            "managedFields",
            "creationTimestamp",
            "generation",
            "selfLink",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "ownerReferences",
        ] {
            meta.remove(key);
        }
        if let Some(ann) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            ann.retain(|k, _| !CLUSTER_ANNOTATIONS.iter().any(|p| k.starts_with(p)));
            if ann.is_empty() {
                meta.remove("annotations");
            }
        }
    }
    if kind == "ServiceAccount" {
        // Before Kubernetes 1.24 a ServiceAccount lists its generated token Secrets
        // (`{name}-token-{random}`), which are not exported.
        let prefix = obj
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .map(|n| format!("{n}-token-"));
        if let (Some(prefix), Some(Value::Array(secrets))) = (prefix, obj.get_mut("secrets")) {
            secrets.retain(|s| {
                !s.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.starts_with(&prefix))
            });
            if secrets.is_empty() {
                obj.remove("secrets");
            }
        }
    }
    let spec = obj.get_mut("spec").and_then(Value::as_object_mut);
    match (kind, spec) {
        ("Service", Some(spec)) => {
            for key in ["clusterIP", "clusterIPs", "healthCheckNodePort"] {
                spec.remove(key);
            }
        }
        ("PersistentVolumeClaim", Some(spec)) => {
            spec.remove("volumeName");
        }
        ("Job", Some(spec)) => {
            spec.remove("selector");
            if let Some(labels) = spec
                .get_mut("template")
                .and_then(|t| t.pointer_mut("/metadata/labels"))
                .and_then(Value::as_object_mut)
            {
                labels.retain(|k, _| !JOB_LABELS.contains(&k.as_str()));
            }
        }
        _ => {}
    }
    if kind == "Job" {
        if let Some(labels) = obj
            .get_mut("metadata")
            .and_then(|m| m.get_mut("labels"))
            .and_then(Value::as_object_mut)
        {
            labels.retain(|k, _| !JOB_LABELS.contains(&k.as_str()));
        }
    }
}

/// Key of one exported manifest under `prefix`: `{prefix}/{Kind}/{name}.yaml`.
pub fn manifest_key(prefix: &str, manifest: &Manifest) -> String {
    format!(
        "{}/{}/{}.yaml",
        prefix.trim_end_matches('/'),
        manifest.kind,
        manifest.name
    )
}

/// Exports `kinds` of `namespace` from `cluster` and writes each manifest to `store` under
/// [`manifest_key`]; returns the keys written. Works with any [`ClusterDeployer`].
///
/// The export holds Secrets as the cluster does (base64, not encrypted): encrypt the store.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use dr_core::store::InMemoryStore;
/// use dr_k8s::{export_to_store, restore_from_store, KubeDeployer};
///
/// let k8s = KubeDeployer::builder()
///     .cluster_from_context("primary", "prod-east")
///     .cluster_from_context("dr", "prod-west")
///     .build()
///     .await?;
/// let store = InMemoryStore::new();
/// export_to_store(&k8s, "primary", "shop", &[], &store, "k8s/shop/2026-11-21").await?;
/// restore_from_store(&k8s, "dr", "shop", &store, "k8s/shop/2026-11-21").await?;
/// # Ok(()) }
/// ```
///
/// # Errors
/// As [`ClusterDeployer::export`] and [`SnapshotStore::put`].
pub async fn export_to_store(
    deployer: &dyn ClusterDeployer,
    cluster: &str,
    namespace: &str,
    kinds: &[String],
    store: &dyn SnapshotStore,
    prefix: &str,
) -> Result<Vec<String>> {
    let manifests = deployer.export(cluster, namespace, kinds).await?;
    let mut keys = Vec::with_capacity(manifests.len());
    for m in manifests {
        let key = manifest_key(prefix, &m);
        let data = Bytes::from(m.body.clone());
        let stream = futures::stream::once(async move { Ok(data) }).boxed();
        let opts = PutOptions::default()
            .with_metadata("kind", m.kind.clone())
            .with_metadata("name", m.name.clone());
        store.put(&key, stream, opts).await?;
        keys.push(key);
    }
    Ok(keys)
}

/// Reads every manifest under `prefix` of `store` (as [`export_to_store`] wrote them) and
/// applies them into `namespace` of `cluster`, one apply per [`RestorePhase`] in order:
/// namespaces, CRDs, configuration and secrets, storage, workloads, services, the rest.
/// Returns the phases applied, in order, with their manifests.
///
/// # Errors
/// As [`SnapshotStore::get`] and [`ClusterDeployer::apply`]; `InvalidRequest` for an object
/// whose kind cannot be read.
pub async fn restore_from_store(
    deployer: &dyn ClusterDeployer,
    cluster: &str,
    namespace: &str,
    store: &dyn SnapshotStore,
    prefix: &str,
) -> Result<Vec<(RestorePhase, Vec<Manifest>)>> {
    let dir = format!("{}/", prefix.trim_end_matches('/'));
    let mut phases: BTreeMap<RestorePhase, Vec<Manifest>> = BTreeMap::new();
    for meta in store.list_all(&dir).await? {
        let rest = &meta.key[dir.len()..];
        let (kind, file) = rest
            .split_once('/')
            .ok_or_else(|| invalid_request("restore", format!("unexpected key {}", meta.key)))?;
        let kind = meta
            .metadata
            .get("kind")
            .cloned()
            .unwrap_or_else(|| kind.to_string());
        let name = meta
            .metadata
            .get("name")
            .cloned()
            .unwrap_or_else(|| file.trim_end_matches(".yaml").to_string());
        let body = store.get_bytes(&meta.key).await?;
        let body = String::from_utf8(body.to_vec())
            .map_err(|_| invalid_request("restore", format!("{} is not UTF-8", meta.key)))?;
        phases
            .entry(restore_phase(&kind))
            .or_default()
            .push(Manifest { kind, name, body });
    }
    let mut done = Vec::new();
    for (phase, manifests) in phases {
        tracing::info!(?phase, count = manifests.len(), %cluster, %namespace, "restoring");
        deployer.apply(cluster, namespace, &manifests).await?;
        done.push((phase, manifests));
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn clean_strips_cluster_state() {
        let mut svc = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "api", "namespace": "shop", "uid": "u", "resourceVersion": "7",
                "managedFields": [], "creationTimestamp": "t",
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
                "labels": {"app": "api"}},
            "spec": {"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"], "ports": [{"port": 80}]},
            "status": {"loadBalancer": {}}
        });
        clean(&mut svc, "Service");
        assert_eq!(
            svc,
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "api", "labels": {"app": "api"}},
                "spec": {"ports": [{"port": 80}]}
            })
        );
        let mut sa = json!({"metadata": {"name": "api"},
            "secrets": [{"name": "api-token-x7k2p"}, {"name": "registry"}]});
        clean(&mut sa, "ServiceAccount");
        assert_eq!(
            sa,
            json!({"metadata": {"name": "api"}, "secrets": [{"name": "registry"}]})
        );
        let mut pvc =
            json!({"metadata": {"name": "data"}, "spec": {"volumeName": "pv-1", "resources": {}}});
        clean(&mut pvc, "PersistentVolumeClaim");
        assert_eq!(
            pvc,
            json!({"metadata": {"name": "data"}, "spec": {"resources": {}}})
        );
    }

    #[test]
    fn keys() {
        let m = Manifest {
            kind: "Deployment".into(),
            name: "api".into(),
            body: String::new(),
        };
        assert_eq!(
            manifest_key("k8s/shop/", &m),
            "k8s/shop/Deployment/api.yaml"
        );
    }
}
