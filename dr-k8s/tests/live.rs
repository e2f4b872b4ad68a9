//! The flows of `flows.rs` against a real API server: the control plane `scripts/test.sh`
//! starts (Kubernetes 1.20.2: etcd, kube-apiserver, the real controller-manager and
//! scheduler, and one hollow kubelet on which pods become Ready without containers), or any
//! cluster named by `DR_K8S_CONTEXT` (a context of `$KUBECONFIG`).
//!
//! Without `DR_K8S_CONTEXT` each test prints a `skipped:` line and passes, unless `CI` is set:
//! then it fails, because the stand-in should have been started. Each test works in its own
//! namespaces `dr-live-…` (and a CustomResourceDefinition of its own group) and deletes them
//! at the end. Nothing here reads logs, execs or port-forwards: the hollow node's address is
//! fake.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use dr_core::provider::{ClusterDeployer, Manifest, WorkloadKind, WorkloadRef};
use dr_core::store::InMemoryStore;
use dr_core::Secret;
use dr_k8s::{export_to_store, restore_from_store, KubeDeployer, KubeLease, Lease, RestorePhase};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use kube::core::GroupVersionKind;

const CLUSTER: &str = "live";
/// Long enough for a rollout on a loaded two-core machine; a healthy one takes seconds.
const WAIT: Duration = Duration::from_secs(180);

/// The deployer on `DR_K8S_CONTEXT` and a fresh namespace name, or `None` (skipped) when no
/// cluster is configured outside CI.
async fn setup(test: &str) -> Option<(KubeDeployer, String)> {
    let context = dr_core::testkit::standin("DR_K8S_CONTEXT", "Kubernetes")?;
    let k8s = KubeDeployer::builder()
        .cluster_from_context(CLUSTER, context)
        .build()
        .await
        .expect("the kubeconfig context loads");
    let ns = dr_core::testkit::unique(&format!("dr-live-{test}"));
    // Namespace names are at most 63 characters.
    let ns = ns[ns.len().saturating_sub(63)..]
        .trim_start_matches('-')
        .to_string();
    Some((k8s, ns))
}

fn client(k8s: &KubeDeployer) -> kube::Client {
    k8s.client(CLUSTER).expect("the cluster is configured")
}

async fn teardown(k8s: &KubeDeployer, namespaces: &[&str]) {
    let api: Api<Namespace> = Api::all(client(k8s));
    for ns in namespaces {
        if let Err(e) = api.delete(ns, &DeleteParams::default()).await {
            eprintln!("could not delete namespace {ns}: {e}");
        }
    }
}

fn deployment(name: &str, replicas: u32, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, labels: {{app: {name}}}}}\n\
         spec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n\
         \x20   metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers:\n\
         \x20     - {{name: app, image: \"{image}\", env: [{{name: MODE, value: primary}}]}}\n"
    )
}

fn manifest(name: &str, body: String) -> Manifest {
    Manifest {
        kind: "bundle".into(),
        name: name.into(),
        body,
    }
}

async fn image_of(k8s: &KubeDeployer, ns: &str, name: &str) -> String {
    let api: Api<Deployment> = Api::namespaced(client(k8s), ns);
    let d = api.get(name).await.expect("the deployment");
    d.spec
        .and_then(|s| s.template.spec)
        .and_then(|s| s.containers.into_iter().next())
        .and_then(|c| c.image)
        .unwrap_or_default()
}

async fn pods(k8s: &KubeDeployer, ns: &str, selector: &str) -> BTreeSet<String> {
    let api: Api<Pod> = Api::namespaced(client(k8s), ns);
    api.list(&ListParams::default().labels(selector))
        .await
        .expect("pods")
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.metadata.name)
        .collect()
}

/// One multi-document manifest: a CustomResourceDefinition and an object of its kind (found
/// by discovery once the server establishes the definition), a ConfigMap, a Deployment and
/// a Service; applied twice (server-side apply is idempotent).
#[tokio::test]
async fn live_apply_multi_document_with_discovery() {
    let Some((k8s, ns)) = setup("apply").await else {
        return;
    };
    // A group of this test's own: CRDs are cluster-wide.
    let group = format!("{ns}.example.com");
    let crd = format!("widgets.{group}");
    let body = format!(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {{name: {crd}}}\n\
         spec:\n  group: {group}\n  scope: Namespaced\n\
         \x20 names: {{plural: widgets, singular: widget, kind: Widget}}\n  versions:\n\
         \x20 - name: v1\n    served: true\n    storage: true\n\
         \x20   schema: {{openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}}}\n\
         ---\napiVersion: {group}/v1\nkind: Widget\nmetadata: {{name: gear}}\nspec: {{teeth: 12}}\n\
         ---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cfg}}\ndata: {{mode: dr}}\n\
         ---\n{}---\napiVersion: v1\nkind: Service\nmetadata: {{name: api}}\n\
         spec: {{selector: {{app: api}}, ports: [{{port: 80}}]}}\n",
        deployment("api", 1, "registry.k8s.io/pause:3.2")
    );
    let bundle = [manifest("bundle", body)];
    k8s.apply(CLUSTER, &ns, &bundle).await.expect("apply");
    k8s.apply(CLUSTER, &ns, &bundle).await.expect("apply again");

    let gvk = GroupVersionKind::gvk(&group, "v1", "Widget");
    let (ar, _) = kube::discovery::pinned_kind(&client(&k8s), &gvk)
        .await
        .expect("Widget is served");
    let widgets: Api<DynamicObject> = Api::namespaced_with(client(&k8s), &ns, &ar);
    let gear = widgets.get("gear").await.expect("the widget");
    assert_eq!(gear.data["spec"]["teeth"], 12, "{gear:?}");
    let cm: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client(&k8s), &ns);
    let cfg = cm.get("cfg").await.expect("the configmap");
    assert_eq!(cfg.data.unwrap_or_default()["mode"], "dr");
    let svc: Api<Service> = Api::namespaced(client(&k8s), &ns);
    svc.get("api").await.expect("the service");
    let api = WorkloadRef::deployment(CLUSTER, &ns, "api");
    let status = k8s.wait_ready(&api, WAIT).await.expect("ready");
    assert_eq!(status.revision, 1, "{status:?}");
    assert_eq!(status.available_replicas, 1, "{status:?}");

    let crds: Api<CustomResourceDefinition> = Api::all(client(&k8s));
    if let Err(e) = crds.delete(&crd, &DeleteParams::default()).await {
        eprintln!("could not delete {crd}: {e}");
    }
    teardown(&k8s, &[&ns]).await;
}

/// Scale, set image, set env, rollout undo to the previous and to a given revision, rollout
/// restart, each waited for until complete: revisions come from the real controller-manager's
/// ReplicaSets (which it reuses on a rollback, renumbering them).
#[tokio::test]
async fn live_scale_set_image_env_undo_restart() {
    let Some((k8s, ns)) = setup("rollout").await else {
        return;
    };
    let api = WorkloadRef::deployment(CLUSTER, &ns, "api");
    k8s.apply(
        CLUSTER,
        &ns,
        &[manifest("api", deployment("api", 1, "shop/api:1"))],
    )
    .await
    .expect("apply");
    assert_eq!(k8s.wait_ready(&api, WAIT).await.expect("ready").revision, 1);

    k8s.scale(&api, 3).await.expect("scale");
    let s = k8s.wait_ready(&api, WAIT).await.expect("scaled");
    assert_eq!(
        (s.replicas, s.available_replicas, s.revision),
        (3, 3, 1),
        "{s:?}"
    );
    assert_eq!(pods(&k8s, &ns, "app=api").await.len(), 3);

    k8s.set_image(&api, "app", "shop/api:2")
        .await
        .expect("set image");
    assert_eq!(k8s.wait_ready(&api, WAIT).await.expect("ready").revision, 2);
    assert_eq!(image_of(&k8s, &ns, "api").await, "shop/api:2");
    let missing = k8s.set_image(&api, "sidecar", "x").await;
    assert!(missing.expect_err("no such container").is_not_found());

    k8s.set_env(&api, &BTreeMap::from([("MODE".into(), "dr".into())]))
        .await
        .expect("set env");
    let s = k8s.wait_ready(&api, WAIT).await.expect("ready");
    assert_eq!(s.revision, 3, "{s:?}");
    assert_eq!(s.env.get("MODE").map(String::as_str), Some("dr"), "{s:?}");

    // Back to the previous template (revision 2's ReplicaSet, renumbered 4).
    assert_eq!(k8s.rollout_undo(&api, None).await.expect("undo"), 4);
    let s = k8s.wait_ready(&api, WAIT).await.expect("ready");
    assert_eq!(s.revision, 4, "{s:?}");
    assert_eq!(
        s.env.get("MODE").map(String::as_str),
        Some("primary"),
        "{s:?}"
    );
    assert_eq!(image_of(&k8s, &ns, "api").await, "shop/api:2");

    // To a given revision: the first one.
    assert_eq!(k8s.rollout_undo(&api, Some(1)).await.expect("undo"), 5);
    let s = k8s.wait_ready(&api, WAIT).await.expect("ready");
    assert_eq!((s.revision, s.available_replicas), (5, 3), "{s:?}");
    assert_eq!(image_of(&k8s, &ns, "api").await, "shop/api:1");
    let rs: Api<ReplicaSet> = Api::namespaced(client(&k8s), &ns);
    let revisions: BTreeSet<String> = rs
        .list(&ListParams::default().labels("app=api"))
        .await
        .expect("replicasets")
        .items
        .into_iter()
        .filter_map(|r| r.metadata.annotations?.remove(dr_k8s::REVISION_ANNOTATION))
        .collect();
    assert_eq!(
        revisions,
        BTreeSet::from(["3".into(), "4".into(), "5".into()])
    );
    let unknown = k8s.rollout_undo(&api, Some(2)).await;
    assert!(unknown
        .expect_err("revision 2 was renumbered")
        .is_not_found());

    assert_eq!(k8s.rollout_restart(&api).await.expect("restart"), 6);
    let s = k8s.wait_ready(&api, WAIT).await.expect("restarted");
    assert_eq!((s.revision, s.available_replicas), (6, 3), "{s:?}");
    teardown(&k8s, &[&ns]).await;
}

/// A StatefulSet's rollouts and rollbacks through its ControllerRevisions: the real
/// controller replaces pods one ordinal at a time; Kubernetes 1.20 reports ready, not
/// available, replicas for StatefulSets.
#[tokio::test]
async fn live_statefulset_set_image_and_undo() {
    let Some((k8s, ns)) = setup("sts").await else {
        return;
    };
    let body = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\n\
                spec:\n  replicas: 2\n  serviceName: db\n  selector: {matchLabels: {app: db}}\n\
                \x20 template:\n    metadata: {labels: {app: db}}\n\
                \x20   spec: {containers: [{name: db, image: 'shop/db:1'}]}\n"
        .to_string();
    k8s.apply(CLUSTER, &ns, &[manifest("db", body)])
        .await
        .expect("apply");
    let db = WorkloadRef {
        kind: WorkloadKind::StatefulSet,
        ..WorkloadRef::deployment(CLUSTER, &ns, "db")
    };
    let s = k8s.wait_ready(&db, WAIT).await.expect("ready");
    assert_eq!((s.revision, s.available_replicas), (1, 2), "{s:?}");
    k8s.set_image(&db, "db", "shop/db:2")
        .await
        .expect("set image");
    let s = k8s.wait_ready(&db, WAIT).await.expect("rolled");
    assert_eq!((s.revision, s.available_replicas), (2, 2), "{s:?}");
    assert_eq!(k8s.rollout_undo(&db, None).await.expect("undo"), 3);
    let s = k8s.wait_ready(&db, WAIT).await.expect("rolled back");
    assert_eq!((s.revision, s.available_replicas), (3, 2), "{s:?}");
    let sts: Api<k8s_openapi::api::apps::v1::StatefulSet> = Api::namespaced(client(&k8s), &ns);
    let image = sts
        .get("db")
        .await
        .expect("the statefulset")
        .spec
        .and_then(|s| s.template.spec)
        .and_then(|s| s.containers.into_iter().next())
        .and_then(|c| c.image);
    assert_eq!(image.as_deref(), Some("shop/db:1"));
    teardown(&k8s, &[&ns]).await;
}

/// A Secret created by the patch, patched again, read back key by key.
#[tokio::test]
async fn live_patch_and_read_secret() {
    let Some((k8s, ns)) = setup("secret").await else {
        return;
    };
    k8s.apply(CLUSTER, &ns, &[]).await.expect("namespace");
    let data = BTreeMap::from([(
        "DATABASE_URL".to_string(),
        Secret::new("postgres://shop@east/orders"),
    )]);
    k8s.patch_secret(CLUSTER, &ns, "app-secrets", &data)
        .await
        .expect("created");
    let data = BTreeMap::from([
        (
            "DATABASE_URL".to_string(),
            Secret::new("postgres://shop@west/orders"),
        ),
        ("REDIS_URL".to_string(), Secret::new("redis://west")),
    ]);
    k8s.patch_secret(CLUSTER, &ns, "app-secrets", &data)
        .await
        .expect("patched");
    let read = |key: &'static str| k8s.read_secret(CLUSTER, &ns, "app-secrets", key);
    assert_eq!(
        read("DATABASE_URL").await.expect("read").expose(),
        "postgres://shop@west/orders"
    );
    assert_eq!(
        read("REDIS_URL").await.expect("read").expose(),
        "redis://west"
    );
    let err = read("NOPE").await.expect_err("no such key");
    assert!(err.is_not_found(), "{err}");
    assert!(!err.to_string().contains("west"), "{err}");
    teardown(&k8s, &[&ns]).await;
}

/// The deny-all NetworkPolicy selects exactly the pods the workload's Service routes to, and
/// no other workload's.
#[tokio::test]
async fn live_isolate_with_the_service_selector() {
    let Some((k8s, ns)) = setup("isolate").await else {
        return;
    };
    let body = format!(
        "{}---\n{}---\napiVersion: v1\nkind: Service\nmetadata: {{name: api}}\n\
         spec: {{selector: {{app: api}}, ports: [{{port: 80}}]}}\n",
        deployment("api", 2, "shop/api:1"),
        deployment("worker", 1, "shop/worker:1")
    );
    k8s.apply(CLUSTER, &ns, &[manifest("bundle", body)])
        .await
        .expect("apply");
    let api = WorkloadRef::deployment(CLUSTER, &ns, "api");
    let worker = WorkloadRef::deployment(CLUSTER, &ns, "worker");
    k8s.wait_ready(&api, WAIT).await.expect("ready");
    k8s.wait_ready(&worker, WAIT).await.expect("ready");
    assert!(!k8s.rollout_status(&api).await.expect("status").isolated);

    k8s.isolate(&api).await.expect("isolate");
    k8s.isolate(&api).await.expect("isolate again");
    assert!(k8s.rollout_status(&api).await.expect("status").isolated);
    assert!(!k8s.rollout_status(&worker).await.expect("status").isolated);

    let np: Api<NetworkPolicy> = Api::namespaced(client(&k8s), &ns);
    let policies = np.list(&ListParams::default()).await.expect("policies");
    assert_eq!(policies.items.len(), 1, "one policy after two isolations");
    let spec = policies.items[0].spec.clone().expect("a spec");
    assert_eq!(
        spec.policy_types,
        Some(vec!["Ingress".into(), "Egress".into()])
    );
    assert!(spec.ingress.unwrap_or_default().is_empty(), "deny all in");
    assert!(spec.egress.unwrap_or_default().is_empty(), "deny all out");
    let policy_selector: Vec<String> = spec
        .pod_selector
        .and_then(|s| s.match_labels)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let svc: Api<Service> = Api::namespaced(client(&k8s), &ns);
    let service_selector: Vec<String> = svc
        .get("api")
        .await
        .expect("the service")
        .spec
        .and_then(|s| s.selector)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let isolated = pods(&k8s, &ns, &policy_selector.join(",")).await;
    let served = pods(&k8s, &ns, &service_selector.join(",")).await;
    assert_eq!(isolated.len(), 2, "{isolated:?}");
    assert_eq!(isolated, served);
    assert!(pods(&k8s, &ns, "app=worker").await.is_disjoint(&isolated));

    let ghost = WorkloadRef::deployment(CLUSTER, &ns, "ghost");
    assert!(k8s
        .isolate(&ghost)
        .await
        .expect_err("no such")
        .is_not_found());
    teardown(&k8s, &[&ns]).await;
}

/// The security incident's deny-all `NetworkPolicy` (`dr_core::step::security::DenyAllTraffic`),
/// applied through `ClusterDeployer::apply` twice: one policy, selecting the workload's pods
/// and allowing no traffic in or out.
#[tokio::test]
async fn live_deny_all_network_policy_through_apply() {
    let Some((k8s, ns)) = setup("deny-all").await else {
        return;
    };
    k8s.apply(
        CLUSTER,
        &ns,
        &[manifest("bundle", deployment("api", 2, "shop/api:1"))],
    )
    .await
    .expect("apply");
    let api = WorkloadRef::deployment(CLUSTER, &ns, "api");
    k8s.wait_ready(&api, WAIT).await.expect("ready");
    let step = dr_core::step::security::DenyAllTraffic {
        cluster: CLUSTER.into(),
        namespace: ns.clone(),
        workload: "api".into(),
        selector: BTreeMap::from([("app".to_string(), "api".to_string())]),
    };
    k8s.apply(CLUSTER, &ns, &[step.manifest()])
        .await
        .expect("apply the policy");
    k8s.apply(CLUSTER, &ns, &[step.manifest()])
        .await
        .expect("apply the policy again");

    let np: Api<NetworkPolicy> = Api::namespaced(client(&k8s), &ns);
    let policies = np.list(&ListParams::default()).await.expect("policies");
    assert_eq!(policies.items.len(), 1, "one policy after two applies");
    let policy = np.get("api-deny-all").await.expect("the policy");
    let spec = policy.spec.expect("a spec");
    assert_eq!(
        spec.policy_types,
        Some(vec!["Ingress".into(), "Egress".into()])
    );
    assert!(spec.ingress.unwrap_or_default().is_empty(), "deny all in");
    assert!(spec.egress.unwrap_or_default().is_empty(), "deny all out");
    let selector: Vec<String> = spec
        .pod_selector
        .and_then(|s| s.match_labels)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    assert_eq!(selector, ["app=api"]);
    assert_eq!(pods(&k8s, &ns, "app=api").await.len(), 2);
    teardown(&k8s, &[&ns]).await;
}

/// A deleted pod is gone (terminating, then removed by the hollow kubelet) and the real
/// ReplicaSet controller replaces it.
#[tokio::test]
async fn live_delete_pod() {
    let Some((k8s, ns)) = setup("delete-pod").await else {
        return;
    };
    k8s.apply(
        CLUSTER,
        &ns,
        &[manifest("api", deployment("api", 2, "shop/api:1"))],
    )
    .await
    .expect("apply");
    let api = WorkloadRef::deployment(CLUSTER, &ns, "api");
    k8s.wait_ready(&api, WAIT).await.expect("ready");
    let before = pods(&k8s, &ns, "app=api").await;
    assert_eq!(before.len(), 2, "{before:?}");
    let victim = before.iter().next().cloned().expect("a pod");
    k8s.delete_pod(CLUSTER, &ns, &victim)
        .await
        .expect("deleted");

    let deadline = tokio::time::Instant::now() + WAIT;
    let after = loop {
        let now = pods(&k8s, &ns, "app=api").await;
        if now.len() == 2 && !now.contains(&victim) {
            break now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not replaced: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(after.intersection(&before).count(), 1, "{after:?}");
    let s = k8s.wait_ready(&api, WAIT).await.expect("ready again");
    assert_eq!(s.available_replicas, 2, "{s:?}");
    let ghost = k8s.delete_pod(CLUSTER, &ns, "api-ghost").await;
    assert!(ghost.expect_err("no such pod").is_not_found());
    teardown(&k8s, &[&ns]).await;
}

/// The version at which this server serves `kind` of `group` (its preferred one first), if
/// any: CronJob and PodDisruptionBudget are `v1beta1` before Kubernetes 1.21.
async fn served(k8s: &KubeDeployer, group: &str, kind: &str) -> Option<String> {
    let g = kube::discovery::group(&client(k8s), group).await.ok()?;
    let versions: Vec<String> = g.versions().map(str::to_string).collect();
    versions.into_iter().find(|v| {
        g.versioned_resources(v)
            .iter()
            .any(|(ar, _)| ar.kind == kind)
    })
}

/// A namespace exported into a snapshot store (without what controllers and the cluster
/// create) and restored into another one, phase by phase in the Velero order.
#[tokio::test]
async fn live_export_restore_in_velero_order() {
    let Some((k8s, ns)) = setup("export").await else {
        return;
    };
    let cronjob = served(&k8s, "batch", "CronJob").await.expect("CronJob");
    let pdb = served(&k8s, "policy", "PodDisruptionBudget")
        .await
        .expect("PodDisruptionBudget");
    let body = format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: api}}\n\
         ---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cfg}}\ndata: {{mode: dr}}\n\
         ---\napiVersion: v1\nkind: Secret\nmetadata: {{name: app-secrets}}\n\
         stringData: {{DATABASE_URL: 'postgres://shop@east/orders'}}\n\
         ---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: data}}\n\
         spec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}\n\
         ---\n{}---\napiVersion: v1\nkind: Service\nmetadata: {{name: api}}\n\
         spec: {{selector: {{app: api}}, ports: [{{port: 80}}]}}\n\
         ---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: api-in}}\n\
         spec: {{podSelector: {{matchLabels: {{app: api}}}}, policyTypes: [Ingress]}}\n\
         ---\napiVersion: policy/{pdb}\nkind: PodDisruptionBudget\nmetadata: {{name: api}}\n\
         spec: {{minAvailable: 1, selector: {{matchLabels: {{app: api}}}}}}\n\
         ---\napiVersion: batch/{cronjob}\nkind: CronJob\nmetadata: {{name: report}}\n\
         spec:\n  schedule: '0 3 * * *'\n  suspend: true\n  jobTemplate:\n    spec:\n      template:\n\
         \x20       spec:\n          restartPolicy: Never\n\
         \x20         containers: [{{name: report, image: shop/report:1}}]\n",
        deployment("api", 2, "shop/api:1")
    );
    k8s.apply(CLUSTER, &ns, &[manifest("bundle", body)])
        .await
        .expect("apply");
    let api = WorkloadRef::deployment(CLUSTER, &ns, "api");
    k8s.wait_ready(&api, WAIT).await.expect("ready");

    let store = InMemoryStore::new();
    let mut keys = export_to_store(&k8s, CLUSTER, &ns, &[], &store, "live")
        .await
        .expect("export");
    keys.sort();
    let mut expected = vec![
        "live/ConfigMap/cfg.yaml",
        "live/CronJob/report.yaml",
        "live/Deployment/api.yaml",
        "live/NetworkPolicy/api-in.yaml",
        "live/PersistentVolumeClaim/data.yaml",
        "live/PodDisruptionBudget/api.yaml",
        "live/Secret/app-secrets.yaml",
        "live/Service/api.yaml",
        "live/ServiceAccount/api.yaml",
        "live/ServiceAccount/default.yaml",
    ];
    expected.sort();
    // No ReplicaSets or Pods (owned by a controller), no kube-root-ca.crt, no
    // service-account token Secrets.
    assert_eq!(keys, expected);

    let target = format!("{ns}-r");
    let phases = restore_from_store(&k8s, CLUSTER, &target, &store, "live")
        .await
        .expect("restore");
    let order: Vec<(RestorePhase, BTreeSet<String>)> = phases
        .iter()
        .map(|(p, ms)| (*p, ms.iter().map(|m| m.kind.clone()).collect()))
        .collect();
    let kinds = |ks: &[&str]| ks.iter().map(|k| k.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        order,
        vec![
            (
                RestorePhase::Config,
                kinds(&["ConfigMap", "Secret", "ServiceAccount"])
            ),
            (RestorePhase::Storage, kinds(&["PersistentVolumeClaim"])),
            (RestorePhase::Workloads, kinds(&["CronJob", "Deployment"])),
            (
                RestorePhase::Services,
                kinds(&["NetworkPolicy", "PodDisruptionBudget", "Service"])
            ),
        ]
    );
    let restored = WorkloadRef::deployment(CLUSTER, &target, "api");
    let s = k8s
        .wait_ready(&restored, WAIT)
        .await
        .expect("restored and ready");
    assert_eq!(s.available_replicas, 2, "{s:?}");
    let url = k8s
        .read_secret(CLUSTER, &target, "app-secrets", "DATABASE_URL")
        .await
        .expect("the restored secret");
    assert_eq!(url.expose(), "postgres://shop@east/orders");
    let cj_gvk = GroupVersionKind::gvk("batch", &cronjob, "CronJob");
    let (cj_ar, _) = kube::discovery::pinned_kind(&client(&k8s), &cj_gvk)
        .await
        .expect("CronJob");
    let cjs: Api<DynamicObject> = Api::namespaced_with(client(&k8s), &target, &cj_ar);
    let cj = cjs.get("report").await.expect("the restored cronjob");
    assert_eq!(cj.data["spec"]["schedule"], "0 3 * * *");
    teardown(&k8s, &[&ns, &target]).await;
}

/// Two runners on one Lease: exactly one leader; the other takes over once it expires, with
/// a higher fencing token; a released lease is taken at once.
#[tokio::test]
async fn live_lease_contention() {
    let Some((k8s, ns)) = setup("lease").await else {
        return;
    };
    k8s.apply(CLUSTER, &ns, &[]).await.expect("namespace");
    let a: KubeLease = k8s.lease(CLUSTER, &ns, "leader").expect("lease");
    let b: KubeLease = k8s.lease(CLUSTER, &ns, "leader").expect("lease");
    let ttl = Duration::from_secs(2);
    let (ra, rb) = futures::future::join(a.acquire("a", ttl), b.acquire("b", ttl)).await;
    let (ra, rb) = (ra.expect("a"), rb.expect("b"));
    assert!(ra.is_some() != rb.is_some(), "exactly one leader");
    let (winner, winner_lease, loser, loser_name) = match (ra, rb) {
        (Some(g), None) => (g, &a, &b, "b"),
        (None, Some(g)) => (g, &b, &a, "a"),
        _ => unreachable!(),
    };
    assert_eq!(winner.fencing_token, 1);
    let renewed = winner_lease.renew(&winner).await.expect("renewed");
    assert_eq!(renewed.fencing_token, 1);
    assert!(loser.acquire(loser_name, ttl).await.expect("ok").is_none());

    tokio::time::sleep(Duration::from_secs(3)).await;
    let taken = loser
        .acquire(loser_name, ttl)
        .await
        .expect("ok")
        .expect("the expired lease is taken");
    assert_eq!(taken.fencing_token, 2);
    let stale = winner_lease.renew(&renewed).await;
    assert!(stale.is_err(), "the old leader cannot renew: {stale:?}");

    loser.release(taken).await.expect("released");
    let again = winner_lease
        .acquire("again", ttl)
        .await
        .expect("ok")
        .expect("a released lease is free");
    assert_eq!(again.fencing_token, 3);
    teardown(&k8s, &[&ns]).await;
}
