//! The flows of `flows.rs` against a real cluster, opt-in: they are `#[ignore]`d (cargo
//! prints the reason) and run with `--ignored` and `DR_K8S_CONTEXT` set to a kubeconfig
//! context of a disposable cluster. Each test works in its own namespace `dr-k8s-live-…` and
//! deletes it at the end. Run with `--ignored` but without the variable, they fail saying so.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dr_core::provider::{ClusterDeployer, Manifest, WorkloadRef};
use dr_core::store::InMemoryStore;
use dr_core::Secret;
use dr_k8s::{export_to_store, restore_from_store, KubeDeployer, KubeLease, Lease};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams};

const CLUSTER: &str = "live";

/// The deployer and a fresh namespace name.
async fn setup(test: &str) -> (KubeDeployer, String) {
    let Ok(context) = std::env::var("DR_K8S_CONTEXT") else {
        panic!("{test} needs a cluster: set DR_K8S_CONTEXT to a kubeconfig context");
    };
    let k8s = KubeDeployer::builder()
        .cluster_from_context(CLUSTER, context)
        .build()
        .await
        .expect("kubeconfig context loads");
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (k8s, format!("dr-k8s-live-{}-{nanos:x}", std::process::id()))
}

async fn teardown(k8s: &KubeDeployer, namespace: &str) {
    let api: Api<Namespace> = Api::all(k8s.client(CLUSTER).expect("cluster"));
    if let Err(e) = api.delete(namespace, &DeleteParams::default()).await {
        eprintln!("could not delete namespace {namespace}: {e}");
    }
}

fn app(image: &str) -> Manifest {
    Manifest {
        kind: "Deployment".into(),
        name: "api".into(),
        body: format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: api}}\nspec:\n  replicas: 1\n\
             \x20 selector: {{matchLabels: {{app: api}}}}\n  template:\n    metadata: {{labels: {{app: api}}}}\n\
             \x20   spec:\n      containers: [{{name: app, image: \"{image}\"}}]\n"
        ),
    }
}

#[tokio::test]
#[ignore = "needs a real cluster: DR_K8S_CONTEXT=… cargo test -p dr-k8s --test live -- --ignored"]
async fn live_deploy_wait_undo() {
    let (k8s, ns) = setup("live_deploy_wait_undo").await;
    let api = WorkloadRef::deployment(CLUSTER, &ns, "api");
    let wait = Duration::from_secs(300);
    k8s.apply(CLUSTER, &ns, &[app("registry.k8s.io/pause:3.9")])
        .await
        .expect("apply");
    assert_eq!(k8s.wait_ready(&api, wait).await.expect("ready").revision, 1);
    k8s.set_env(&api, &BTreeMap::from([("MODE".into(), "dr".into())]))
        .await
        .expect("set env");
    assert_eq!(k8s.wait_ready(&api, wait).await.expect("ready").revision, 2);
    assert_eq!(k8s.rollout_undo(&api, None).await.expect("undo"), 3);
    let s = k8s.wait_ready(&api, wait).await.expect("ready");
    assert!(!s.env.contains_key("MODE"), "{s:?}");
    assert_eq!(k8s.rollout_restart(&api).await.expect("restart"), 4);
    k8s.wait_ready(&api, wait).await.expect("ready");
    teardown(&k8s, &ns).await;
}

#[tokio::test]
#[ignore = "needs a real cluster: DR_K8S_CONTEXT=… cargo test -p dr-k8s --test live -- --ignored"]
async fn live_secret_and_isolation() {
    let (k8s, ns) = setup("live_secret_and_isolation").await;
    k8s.apply(CLUSTER, &ns, &[app("registry.k8s.io/pause:3.9")])
        .await
        .expect("apply");
    let data = BTreeMap::from([("DATABASE_URL".to_string(), Secret::new("postgres://dr"))]);
    k8s.patch_secret(CLUSTER, &ns, "app-secrets", &data)
        .await
        .expect("patch");
    let back = k8s
        .read_secret(CLUSTER, &ns, "app-secrets", "DATABASE_URL")
        .await
        .expect("read");
    assert_eq!(back.expose(), "postgres://dr");
    let api = WorkloadRef::deployment(CLUSTER, &ns, "api");
    k8s.isolate(&api).await.expect("isolate");
    k8s.isolate(&api).await.expect("isolate again");
    assert!(k8s.rollout_status(&api).await.expect("status").isolated);
    teardown(&k8s, &ns).await;
}

#[tokio::test]
#[ignore = "needs a real cluster: DR_K8S_CONTEXT=… cargo test -p dr-k8s --test live -- --ignored"]
async fn live_lease() {
    let (k8s, ns) = setup("live_lease").await;
    k8s.apply(CLUSTER, &ns, &[]).await.expect("namespace");
    let a: KubeLease = k8s.lease(CLUSTER, &ns, "leader").expect("lease");
    let b: KubeLease = k8s.lease(CLUSTER, &ns, "leader").expect("lease");
    let ttl = Duration::from_secs(2);
    let (ra, rb) = futures::future::join(a.acquire("a", ttl), b.acquire("b", ttl)).await;
    let (ra, rb) = (ra.expect("a"), rb.expect("b"));
    assert!(ra.is_some() != rb.is_some(), "exactly one leader");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (winner, loser, loser_name) = if ra.is_some() {
        (ra, &b, "b")
    } else {
        (rb, &a, "a")
    };
    let taken = loser
        .acquire(loser_name, ttl)
        .await
        .expect("ok")
        .expect("expired lease taken");
    assert_eq!(
        taken.fencing_token,
        winner.map(|g| g.fencing_token).unwrap_or(0) + 1
    );
    teardown(&k8s, &ns).await;
}

#[tokio::test]
#[ignore = "needs a real cluster: DR_K8S_CONTEXT=… cargo test -p dr-k8s --test live -- --ignored"]
async fn live_export_restore() {
    let (k8s, ns) = setup("live_export_restore").await;
    let cfg = Manifest {
        kind: "ConfigMap".into(),
        name: "cfg".into(),
        body: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {a: '1'}\n".into(),
    };
    k8s.apply(CLUSTER, &ns, &[cfg, app("registry.k8s.io/pause:3.9")])
        .await
        .expect("apply");
    let store = InMemoryStore::new();
    let keys = export_to_store(&k8s, CLUSTER, &ns, &[], &store, "live")
        .await
        .expect("export");
    assert!(
        keys.iter().any(|k| k.ends_with("Deployment/api.yaml")),
        "{keys:?}"
    );
    let target = format!("{ns}-restored");
    restore_from_store(&k8s, CLUSTER, &target, &store, "live")
        .await
        .expect("restore");
    let api = WorkloadRef::deployment(CLUSTER, &target, "api");
    k8s.wait_ready(&api, Duration::from_secs(300))
        .await
        .expect("restored and ready");
    teardown(&k8s, &ns).await;
    teardown(&k8s, &target).await;
}
