//! Server-side apply of manifests, with namespace creation and kind resolution.

use std::time::Duration;

use dr_core::provider::Manifest;
use dr_core::{Error, Result};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::Scope;
use serde::Deserialize;
use serde_json::Value;

use crate::config::Cluster;
use crate::error::{invalid_request, is_already_exists, map};
use crate::kinds::{self, restore_phase, split_api_version};

/// One object parsed from a manifest.
#[derive(Debug)]
pub(crate) struct Object {
    pub(crate) api_version: String,
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) body: Value,
}

/// Parses every document of every manifest (multi-document YAML or JSON; `kind: List`
/// is flattened).
///
/// # Errors
/// `InvalidRequest` for a document that does not parse or lacks `apiVersion`, `kind` or
/// `metadata.name`.
pub(crate) fn parse(manifests: &[Manifest]) -> Result<Vec<Object>> {
    let mut out = Vec::new();
    for m in manifests {
        for doc in serde_yaml_ng::Deserializer::from_str(&m.body) {
            let value = Value::deserialize(doc).map_err(|e| {
                invalid_request("apply", format!("manifest {} {}: {e}", m.kind, m.name))
            })?;
            push_object(value, m, &mut out)?;
        }
    }
    Ok(out)
}

fn push_object(value: Value, m: &Manifest, out: &mut Vec<Object>) -> Result<()> {
    if value.is_null() {
        return Ok(());
    }
    let field = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
    let kind = field(&value, "/kind");
    if kind.as_deref() == Some("List") {
        if let Some(Value::Array(items)) = value.get("items") {
            for item in items {
                push_object(item.clone(), m, out)?;
            }
        }
        return Ok(());
    }
    let missing = |what: &str| {
        invalid_request(
            "apply",
            format!("manifest {} {}: a document has no {what}", m.kind, m.name),
        )
    };
    let api_version = field(&value, "/apiVersion").ok_or_else(|| missing("apiVersion"))?;
    let kind = kind.ok_or_else(|| missing("kind"))?;
    let name = field(&value, "/metadata/name").ok_or_else(|| missing("metadata.name"))?;
    out.push(Object {
        api_version,
        kind,
        name,
        body: value,
    });
    Ok(())
}

/// The resource of `apiVersion`/`kind` and whether it is namespaced: from the table of
/// built-in kinds, else by discovery of that group version (cached per cluster).
pub(crate) async fn resolve(
    cl: &Cluster,
    api_version: &str,
    kind: &str,
) -> Result<(ApiResource, bool)> {
    let (group, version) = split_api_version(api_version);
    if let Some(k) = kinds::by_group_kind(group, kind) {
        return Ok((k.api_resource(Some(version)), k.namespaced));
    }
    let key = (api_version.to_string(), kind.to_string());
    if let Some(hit) = lock(cl).get(&key).cloned() {
        return Ok(hit);
    }
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (ar, caps) = kube::discovery::pinned_kind(&cl.client, &gvk)
        .await
        .map_err(|e| {
            map(
                e,
                "discover",
                &format!("kind {kind} ({api_version}) on {}", cl.name),
            )
        })?;
    let found = (ar, caps.scope == Scope::Namespaced);
    lock(cl).insert(key, found.clone());
    Ok(found)
}

fn lock(
    cl: &Cluster,
) -> std::sync::MutexGuard<'_, std::collections::HashMap<(String, String), (ApiResource, bool)>> {
    cl.discovered.lock().unwrap_or_else(|p| p.into_inner())
}

/// How long [`apply`] waits for the server to serve a kind whose CustomResourceDefinition the
/// same call applied.
const ESTABLISH_WAIT: Duration = Duration::from_secs(30);

/// [`resolve`] for a kind defined by a CustomResourceDefinition applied moments ago: retries
/// discovery (every 100 ms to 1 s) while the server does not serve it yet, up to
/// [`ESTABLISH_WAIT`]; then `Timeout` (temporary).
async fn resolve_when_established(
    cl: &Cluster,
    api_version: &str,
    kind: &str,
) -> Result<(ApiResource, bool)> {
    let deadline = tokio::time::Instant::now() + ESTABLISH_WAIT;
    let mut pause = Duration::from_millis(100);
    loop {
        match resolve(cl, api_version, kind).await {
            Err(e) if e.is_not_found() => {
                if tokio::time::Instant::now() + pause > deadline {
                    return Err(Error::Timeout {
                        operation: format!(
                            "apply: waiting until {} serves {kind} ({api_version}), defined by \
                             a CustomResourceDefinition of the same apply",
                            cl.name
                        ),
                        after: ESTABLISH_WAIT,
                    });
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            found => return found,
        }
    }
}

/// Creates `namespace` when it does not exist (a concurrent creation is fine).
pub(crate) async fn ensure_namespace(cl: &Cluster, namespace: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(cl.client.clone());
    let resource = format!("namespace {namespace} on {}", cl.name);
    if api
        .get_opt(namespace)
        .await
        .map_err(|e| map(e, "apply", &resource))?
        .is_some()
    {
        return Ok(());
    }
    let ns = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(namespace.to_string()),
            ..Default::default()
        },
        ..Default::default()
    };
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(e) if is_already_exists(&e) => Ok(()),
        Err(e) => Err(map(e, "apply", &resource)),
    }
}

/// Applies `manifests` into `namespace`, in restore order (namespaces, CRDs, configuration,
/// storage, workloads, services).
pub(crate) async fn apply(
    cl: &Cluster,
    namespace: &str,
    manifests: &[Manifest],
    field_manager: &str,
) -> Result<()> {
    let mut objects = parse(manifests)?;
    objects.sort_by_key(|o| restore_phase(&o.kind));
    ensure_namespace(cl, namespace).await?;
    let params = PatchParams::apply(field_manager).force();
    // Kinds defined by the CustomResourceDefinitions of this call: the server serves them
    // only once it has established the definition, shortly after the apply.
    let mut defined: Vec<(String, String)> = Vec::new();
    for mut obj in objects {
        let (group, _) = split_api_version(&obj.api_version);
        let pending = defined.iter().any(|(g, k)| g == group && *k == obj.kind);
        let (ar, namespaced) = if pending {
            resolve_when_established(cl, &obj.api_version, &obj.kind).await?
        } else {
            resolve(cl, &obj.api_version, &obj.kind).await?
        };
        if obj.kind == "CustomResourceDefinition" {
            if let (Some(g), Some(k)) = (
                obj.body.pointer("/spec/group").and_then(Value::as_str),
                obj.body.pointer("/spec/names/kind").and_then(Value::as_str),
            ) {
                defined.push((g.to_string(), k.to_string()));
            }
        }
        let resource = if namespaced {
            format!("{} {namespace}/{} on {}", obj.kind, obj.name, cl.name)
        } else {
            format!("{} {} on {}", obj.kind, obj.name, cl.name)
        };
        let meta = obj
            .body
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| invalid_request("apply", format!("{resource}: no metadata")))?;
        // What the server owns: never sent back (a stale resourceVersion would be a
        // precondition).
        for key in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "managedFields",
            "generation",
            "selfLink",
        ] {
            meta.remove(key);
        }
        let api: Api<DynamicObject> = if namespaced {
            match meta.get("namespace").and_then(Value::as_str) {
                Some(ns) if ns != namespace => {
                    return Err(invalid_request(
                        "apply",
                        format!("{resource}: the manifest names namespace {ns}"),
                    ))
                }
                _ => {}
            }
            meta.insert("namespace".into(), Value::String(namespace.to_string()));
            Api::namespaced_with(cl.client.clone(), namespace, &ar)
        } else {
            meta.remove("namespace");
            Api::all_with(cl.client.clone(), &ar)
        };
        default_port_protocols(&mut obj.body);
        tracing::debug!(%resource, "server-side apply");
        api.patch(&obj.name, &params, &Patch::Apply(&obj.body))
            .await
            .map_err(|e| map(e, "apply", &resource))?;
    }
    Ok(())
}

/// Sets `protocol: TCP` (the API's default) on every port of a `ports` list that names none:
/// Service ports and container ports are lists keyed by port and protocol, and before
/// Kubernetes 1.24 server-side apply refuses an element without the key (`associative list
/// with keys has an element that omits key field "protocol"`).
pub(crate) fn default_port_protocols(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key == "ports" {
                    if let Value::Array(ports) = v {
                        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                            let numbered =
                                port.contains_key("port") || port.contains_key("containerPort");
                            if numbered && !port.contains_key("protocol") {
                                port.insert("protocol".into(), Value::String("TCP".into()));
                            }
                        }
                    }
                } else {
                    default_port_protocols(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(default_port_protocols),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_get_the_default_protocol() {
        let mut svc = serde_json::json!({"spec": {"ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}],
            "template": {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 8080}]}]}}}});
        default_port_protocols(&mut svc);
        assert_eq!(
            svc,
            serde_json::json!({"spec": {"ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
                "template": {"spec": {"containers": [{"name": "a",
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}]}]}}}})
        );
    }

    #[test]
    fn parses_multi_document_yaml_and_lists() {
        let m = Manifest {
            kind: "bundle".into(),
            name: "app".into(),
            body: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\n\
                   apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Secret, metadata: {name: b}}\n"
                .into(),
        };
        let objs = parse(&[m]).expect("parses");
        let names: Vec<_> = objs
            .iter()
            .map(|o| (o.kind.as_str(), o.name.as_str()))
            .collect();
        assert_eq!(names, [("ConfigMap", "a"), ("Secret", "b")]);
        let bad = Manifest {
            kind: "x".into(),
            name: "y".into(),
            body: "kind: ConfigMap\nmetadata: {name: a}\n".into(),
        };
        let err = parse(&[bad]).expect_err("no apiVersion");
        assert!(err.to_string().contains("apiVersion"), "{err}");
    }
}
