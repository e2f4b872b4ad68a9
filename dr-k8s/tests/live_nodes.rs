//! Node operations against a real API server (the control plane `scripts/test.sh` starts, or
//! the cluster of `DR_K8S_CONTEXT`): a node group's nodes listed by their label, a NotReady
//! node cordoned and drained through the Eviction API (its DaemonSet pod left in place), a
//! Ready node of the same group untouched.
//!
//! The stand-in's only kubelet is a hollow one, so the test creates its Node objects through
//! the API (their `Ready` condition set through the status subresource) and binds its pods to
//! them with `nodeName`. Without `DR_K8S_CONTEXT` the test prints a `skipped:` line and
//! passes, unless `CI` is set: then it fails. It deletes what it created at the end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dr_core::provider::{ClusterDeployer, NODE_GROUP_LABEL};
use dr_k8s::KubeDeployer;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};

const CLUSTER: &str = "live";

async fn setup() -> Option<(KubeDeployer, String)> {
    let context = dr_core::testkit::standin("DR_K8S_CONTEXT", "Kubernetes")?;
    let k8s = KubeDeployer::builder()
        .cluster_from_context(CLUSTER, context)
        .build()
        .await
        .expect("the kubeconfig context loads");
    let name = dr_core::testkit::unique("dr-nodes");
    // Label values and namespace names are at most 63 characters.
    let name = name[name.len().saturating_sub(50)..]
        .trim_start_matches('-')
        .to_string();
    Some((k8s, name))
}

async fn node(client: &kube::Client, name: &str, group: &str, ready: bool) {
    let api: Api<Node> = Api::all(client.clone());
    let obj: Node = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": { "name": name, "labels": { NODE_GROUP_LABEL: group } },
    }))
    .unwrap();
    api.create(&PostParams::default(), &obj)
        .await
        .expect("node created");
    let status = serde_json::json!({ "status": { "conditions": [{
        "type": "Ready",
        "status": if ready { "True" } else { "False" },
        "reason": if ready { "KubeletReady" } else { "KubeletNotReady" },
    }]}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("node status set");
}

async fn pod(client: &kube::Client, ns: &str, name: &str, node: &str, owner: Option<&DaemonSet>) {
    let mut meta = serde_json::json!({ "name": name, "labels": { "role": name } });
    if let Some(ds) = owner {
        // Not the DaemonSet's controller reference: its controller must not adopt or
        // delete the pod while the test runs; the drain skips any DaemonSet owner.
        meta["ownerReferences"] = serde_json::json!([{
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "name": ds.metadata.name,
            "uid": ds.metadata.uid,
        }]);
    }
    let obj: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {
            "nodeName": node,
            "containers": [{ "name": "app", "image": "registry.k8s.io/pause:3.2" }],
        },
    }))
    .unwrap();
    Api::<Pod>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &obj)
        .await
        .expect("pod created");
}

/// Gone, or being deleted.
async fn evicted(client: &kube::Client, ns: &str, name: &str) -> bool {
    match Api::<Pod>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
    {
        Ok(None) => true,
        Ok(Some(p)) => p.metadata.deletion_timestamp.is_some(),
        Err(e) => panic!("reading pod {ns}/{name}: {e}"),
    }
}

async fn unschedulable(client: &kube::Client, name: &str) -> bool {
    Api::<Node>::all(client.clone())
        .get(name)
        .await
        .expect("node")
        .spec
        .and_then(|s| s.unschedulable)
        .unwrap_or(false)
}

#[tokio::test]
async fn live_drain_evicts_only_the_pods_of_not_ready_nodes() {
    let Some((k8s, group)) = setup().await else {
        return;
    };
    let client = k8s.client(CLUSTER).unwrap();
    let ns = group.clone();
    let (up, down, other) = (
        format!("{group}-up"),
        format!("{group}-down"),
        format!("{group}-x"),
    );
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns_obj: Namespace =
        serde_json::from_value(serde_json::json!({ "metadata": { "name": ns } })).unwrap();
    namespaces
        .create(&PostParams::default(), &ns_obj)
        .await
        .expect("namespace");
    node(&client, &up, &group, true).await;
    node(&client, &down, &group, false).await;
    node(&client, &other, &format!("{group}-other"), false).await;
    // A DaemonSet that matches no node (it creates no pod of its own) owning one pod.
    let ds: DaemonSet = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "agent" },
        "spec": {
            "selector": { "matchLabels": { "app": "agent" } },
            "template": {
                "metadata": { "labels": { "app": "agent" } },
                "spec": {
                    "nodeSelector": { "dr-test/none": "none" },
                    "containers": [{ "name": "agent", "image": "registry.k8s.io/pause:3.2" }],
                },
            },
        },
    }))
    .unwrap();
    let ds = Api::<DaemonSet>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &ds)
        .await
        .expect("daemonset");
    pod(&client, &ns, "app-0", &down, None).await;
    pod(&client, &ns, "agent-0", &down, Some(&ds)).await;
    pod(&client, &ns, "app-1", &up, None).await;
    pod(&client, &ns, "app-2", &other, None).await;

    let nodes = k8s
        .list_nodes(CLUSTER, NODE_GROUP_LABEL, &group)
        .await
        .expect("list_nodes");
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        [down.as_str(), up.as_str()],
        "only the group's nodes"
    );
    assert!(!nodes[0].ready && nodes[1].ready, "{nodes:?}");
    assert_eq!(
        nodes[0].pods,
        [format!("{ns}/agent-0"), format!("{ns}/app-0")]
    );
    assert_eq!(nodes[1].pods, [format!("{ns}/app-1")]);

    k8s.cordon_node(CLUSTER, &down).await.expect("cordon");
    k8s.cordon_node(CLUSTER, &down).await.expect("cordon again");
    let out = k8s.drain_node(CLUSTER, &down).await.expect("drain");
    assert_eq!(out, [format!("{ns}/app-0")], "the DaemonSet's pod stays");
    assert!(evicted(&client, &ns, "app-0").await);
    assert!(!evicted(&client, &ns, "agent-0").await);
    assert!(
        !evicted(&client, &ns, "app-1").await,
        "a Ready node is not drained"
    );
    assert!(
        !evicted(&client, &ns, "app-2").await,
        "another group's node"
    );
    assert!(unschedulable(&client, &down).await);
    assert!(!unschedulable(&client, &up).await);
    // Drained already: nothing left to evict.
    assert!(k8s
        .drain_node(CLUSTER, &down)
        .await
        .expect("drain again")
        .is_empty());
    let listed = k8s
        .list_nodes(CLUSTER, NODE_GROUP_LABEL, &group)
        .await
        .unwrap();
    assert!(listed[0].unschedulable);
    assert_eq!(listed[0].pods, [format!("{ns}/agent-0")]);

    let missing = k8s
        .drain_node(CLUSTER, &format!("{group}-missing"))
        .await
        .unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
    assert!(k8s
        .cordon_node(CLUSTER, &format!("{group}-missing"))
        .await
        .unwrap_err()
        .is_not_found());

    let api: Api<Node> = Api::all(client.clone());
    for n in [&up, &down, &other] {
        if let Err(e) = api.delete(n, &DeleteParams::default()).await {
            eprintln!("could not delete node {n}: {e}");
        }
    }
    if let Err(e) = namespaces.delete(&ns, &DeleteParams::default()).await {
        eprintln!("could not delete namespace {ns}: {e}");
    }
}
