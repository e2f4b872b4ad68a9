//! Node operations: a node group's nodes (by label), cordon (`spec.unschedulable`), drain
//! (the Eviction API for each pod bound to the node, DaemonSet and mirror pods aside, as
//! `kubectl drain` does).

use dr_core::provider::NodeInfo;
use dr_core::Result;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, EvictParams, ListParams, Patch, PatchParams};
use serde_json::json;

use crate::config::Cluster;
use crate::error::{is_not_found, map};

/// The annotation of a static pod's mirror: the kubelet owns it, it cannot be evicted.
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The pods bound to `node` that are not being deleted already.
async fn pods_on(cl: &Cluster, node: &str, op: &str) -> Result<Vec<Pod>> {
    let api: Api<Pod> = Api::all(cl.client.clone());
    let params = ListParams::default().fields(&format!("spec.nodeName={node}"));
    let pods = api
        .list(&params)
        .await
        .map_err(|e| map(e, op, &format!("pods of node {node} on {}", cl.name)))?;
    Ok(pods
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect())
}

fn pod_name(p: &Pod) -> String {
    format!(
        "{}/{}",
        p.metadata.namespace.as_deref().unwrap_or_default(),
        p.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Whether a drain leaves `p` where it is: a DaemonSet's pod (its controller would put it
/// back at once) or a static pod's mirror.
fn stays(p: &Pod) -> bool {
    let daemon = p
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "DaemonSet");
    let mirror = p
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(MIRROR_ANNOTATION));
    daemon || mirror
}

pub(crate) async fn list(cl: &Cluster, label: &str, group: &str) -> Result<Vec<NodeInfo>> {
    let api: Api<Node> = Api::all(cl.client.clone());
    let selector = format!("{label}={group}");
    let nodes = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| map(e, "list_nodes", &format!("nodes {selector} on {}", cl.name)))?;
    let mut out = Vec::with_capacity(nodes.items.len());
    for n in &nodes.items {
        let Some(name) = n.metadata.name.clone() else {
            continue;
        };
        let mut pods: Vec<String> = pods_on(cl, &name, "list_nodes")
            .await?
            .iter()
            .map(pod_name)
            .collect();
        pods.sort();
        out.push(NodeInfo {
            ready: is_ready(n),
            unschedulable: n
                .spec
                .as_ref()
                .and_then(|s| s.unschedulable)
                .unwrap_or(false),
            pods,
            name,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

pub(crate) async fn cordon(cl: &Cluster, node: &str) -> Result<()> {
    let api: Api<Node> = Api::all(cl.client.clone());
    let patch = json!({ "spec": { "unschedulable": true } });
    api.patch(node, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
        .map_err(|e| map(e, "cordon_node", &format!("node {node} on {}", cl.name)))
}

pub(crate) async fn drain(cl: &Cluster, node: &str) -> Result<Vec<String>> {
    // The node must exist: draining a misspelled name must not look like an empty node.
    let nodes: Api<Node> = Api::all(cl.client.clone());
    nodes
        .get(node)
        .await
        .map_err(|e| map(e, "drain_node", &format!("node {node} on {}", cl.name)))?;
    let mut evicted = Vec::new();
    for p in pods_on(cl, node, "drain_node").await? {
        if stays(&p) {
            continue;
        }
        let (Some(ns), Some(name)) = (p.metadata.namespace.as_deref(), p.metadata.name.as_deref())
        else {
            continue;
        };
        let api: Api<Pod> = Api::namespaced(cl.client.clone(), ns);
        match api.evict(name, &EvictParams::default()).await {
            Ok(_) => evicted.push(pod_name(&p)),
            // Gone in between: nothing left to evict.
            Err(e) if is_not_found(&e) => {}
            // 429: a disruption budget refuses it now (Throttled, retryable).
            Err(e) => {
                return Err(map(
                    e,
                    "drain_node",
                    &format!("eviction of pod {ns}/{name} on node {node} of {}", cl.name),
                ))
            }
        }
    }
    evicted.sort();
    Ok(evicted)
}
