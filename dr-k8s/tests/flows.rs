//! Multi-step flows against the stateful fake API server (`fake_apiserver/`).

mod fake_apiserver;

use std::collections::BTreeMap;
use std::time::Duration;

use dr_core::provider::{ClusterDeployer, Manifest, SnapshotStoreExt, WorkloadRef};
use dr_core::store::InMemoryStore;
use dr_core::{Error, Secret};
use dr_k8s::{export_to_store, restore_from_store, KubeDeployer, KubeLease, Lease, RestorePhase};
use fake_apiserver::FakeApiServer;
use serde_json::{json, Value};

async fn deployer(name: &str, server: &FakeApiServer) -> KubeDeployer {
    KubeDeployer::builder()
        .cluster(name, server.client())
        .build()
        .await
        .expect("builds")
}

fn app_manifest(image: &str) -> Manifest {
    Manifest {
        kind: "bundle".into(),
        name: "api".into(),
        body: format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n  labels: {{app: api}}\n\
             spec:\n  replicas: 2\n  selector:\n    matchLabels: {{app: api}}\n  template:\n\
             \x20   metadata:\n      labels: {{app: api}}\n    spec:\n      containers:\n\
             \x20     - name: app\n        image: {image}\n        env:\n        - {{name: MODE, value: primary}}\n\
             ---\napiVersion: v1\nkind: Service\nmetadata: {{name: api}}\nspec:\n  selector: {{app: api}}\n\
             \x20 ports: [{{port: 80}}]\n"
        ),
    }
}

fn image(server: &FakeApiServer) -> Value {
    server
        .get("apis/apps/v1", "deployments", "shop", "api")
        .and_then(|d| d.pointer("/spec/template/spec/containers/0/image").cloned())
        .unwrap_or(Value::Null)
}

#[tokio::test(start_paused = true)]
async fn deploy_wait_change_undo() {
    let server = FakeApiServer::new(2);
    let k8s = deployer("dr", &server).await;
    let api = WorkloadRef::deployment("dr", "shop", "api");

    k8s.apply("dr", "shop", &[app_manifest("api:1")])
        .await
        .expect("applies");
    assert!(
        server.get("api/v1", "namespaces", "", "shop").is_some(),
        "namespace created"
    );
    let s = k8s
        .wait_ready(&api, Duration::from_secs(120))
        .await
        .expect("ready");
    assert_eq!((s.revision, s.available_replicas), (1, 2));
    // Applying the same manifests again changes nothing.
    k8s.apply("dr", "shop", &[app_manifest("api:1")])
        .await
        .expect("idempotent");
    assert_eq!(k8s.rollout_status(&api).await.expect("status").revision, 1);

    k8s.set_image(&api, "app", "api:2")
        .await
        .expect("set image");
    let env = BTreeMap::from([("MODE".to_string(), "dr".to_string())]);
    k8s.set_env(&api, &env).await.expect("set env");
    let s = k8s
        .wait_ready(&api, Duration::from_secs(120))
        .await
        .expect("ready");
    assert_eq!(s.revision, 3, "two template changes, two revisions");
    assert_eq!(s.env.get("MODE").map(String::as_str), Some("dr"));
    assert_eq!(image(&server), json!("api:2"));

    // Undo to revision 1: its ReplicaSet's template comes back, as revision 4.
    assert_eq!(k8s.rollout_undo(&api, Some(1)).await.expect("undo"), 4);
    let s = k8s
        .wait_ready(&api, Duration::from_secs(120))
        .await
        .expect("ready");
    assert_eq!(s.revision, 4);
    assert_eq!(image(&server), json!("api:1"));
    assert_eq!(s.env.get("MODE").map(String::as_str), Some("primary"));
    assert_eq!(
        server.all("replicasets").len(),
        3,
        "revision 1's ReplicaSet re-used"
    );
    let tmpl = server
        .get("apis/apps/v1", "deployments", "shop", "api")
        .expect("exists");
    assert!(tmpl
        .pointer("/spec/template/metadata/labels/pod-template-hash")
        .is_none());

    // Undo with no revision: back to the previous one (3: api:2 and MODE=dr).
    assert_eq!(k8s.rollout_undo(&api, None).await.expect("undo"), 5);
    k8s.wait_ready(&api, Duration::from_secs(120))
        .await
        .expect("ready");
    assert_eq!(image(&server), json!("api:2"));

    let err = k8s
        .rollout_undo(&api, Some(99))
        .await
        .expect_err("unknown revision");
    assert!(err.is_not_found(), "{err}");

    assert_eq!(k8s.rollout_restart(&api).await.expect("restart"), 6);
    let s = k8s
        .wait_ready(&api, Duration::from_secs(120))
        .await
        .expect("ready");
    assert_eq!(s.revision, 6);

    k8s.scale(&api, 5).await.expect("scale");
    let s = k8s.rollout_status(&api).await.expect("status");
    assert!(!s.is_complete(), "scaling in progress: {s:?}");
    let s = k8s
        .wait_ready(&api, Duration::from_secs(120))
        .await
        .expect("ready");
    assert_eq!((s.replicas, s.available_replicas, s.revision), (5, 5, 6));
}

#[tokio::test(start_paused = true)]
async fn wait_ready_times_out_with_progress() {
    let server = FakeApiServer::new(1_000);
    let k8s = deployer("dr", &server).await;
    k8s.apply("dr", "shop", &[app_manifest("api:1")])
        .await
        .expect("applies");
    let api = WorkloadRef::deployment("dr", "shop", "api");
    let err = k8s
        .wait_ready(&api, Duration::from_secs(60))
        .await
        .expect_err("never ready");
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("0/2 available"), "{err}");
}

#[tokio::test]
async fn patch_secret_then_read_back() {
    let server = FakeApiServer::new(0);
    let k8s = deployer("dr", &server).await;
    let one = BTreeMap::from([("DATABASE_URL".to_string(), Secret::new("postgres://old"))]);
    // A rebuild sets secrets before it applies workloads: the namespace is created too.
    assert!(server.get("api/v1", "namespaces", "", "shop").is_none());
    k8s.patch_secret("dr", "shop", "app-secrets", &one)
        .await
        .expect("created with its namespace");
    assert!(server.get("api/v1", "namespaces", "", "shop").is_some());
    k8s.patch_secret("dr", "shop", "app-secrets", &one)
        .await
        .expect("patched");
    let two = BTreeMap::from([
        (
            "DATABASE_URL".to_string(),
            Secret::new("postgres://dr-west"),
        ),
        ("REDIS_URL".to_string(), Secret::new("redis://dr-west")),
    ]);
    k8s.patch_secret("dr", "shop", "app-secrets", &two)
        .await
        .expect("merged");
    let read = |key: &'static str| k8s.read_secret("dr", "shop", "app-secrets", key);
    assert_eq!(
        read("DATABASE_URL").await.expect("read").expose(),
        "postgres://dr-west"
    );
    assert_eq!(
        read("REDIS_URL").await.expect("read").expose(),
        "redis://dr-west"
    );
    let stored = server
        .get("api/v1", "secrets", "shop", "app-secrets")
        .expect("stored");
    assert_eq!(
        stored["data"]["REDIS_URL"],
        json!("cmVkaXM6Ly9kci13ZXN0"),
        "base64 on the wire"
    );
    assert!(read("NOPE").await.expect_err("no key").is_not_found());
}

#[tokio::test(start_paused = true)]
async fn isolate_is_idempotent_and_reported() {
    let server = FakeApiServer::new(0);
    let k8s = deployer("dr", &server).await;
    k8s.apply("dr", "shop", &[app_manifest("api:1")])
        .await
        .expect("applies");
    let api = WorkloadRef::deployment("dr", "shop", "api");
    assert!(!k8s.rollout_status(&api).await.expect("status").isolated);
    k8s.isolate(&api).await.expect("isolated");
    let first = server.all("networkpolicies");
    k8s.isolate(&api).await.expect("again");
    let second = server.all("networkpolicies");
    assert_eq!(first.len(), 1);
    assert_eq!(second.len(), 1);
    assert_eq!(first[0]["spec"], second[0]["spec"]);
    assert_eq!(
        second[0]["spec"],
        json!({"podSelector": {"matchLabels": {"app": "api"}}, "policyTypes": ["Ingress", "Egress"]})
    );
    assert!(k8s.rollout_status(&api).await.expect("status").isolated);
    let missing = WorkloadRef::deployment("dr", "shop", "ghost");
    assert!(k8s
        .isolate(&missing)
        .await
        .expect_err("no workload")
        .is_not_found());
}

#[tokio::test(start_paused = true)]
async fn kube_lease_passes_the_lease_checks() {
    let server = FakeApiServer::new(0);
    server.insert(
        "api/v1",
        "namespaces",
        "",
        json!({"metadata": {"name": "dr-system"}}),
    );
    let runners: Vec<KubeLease> = (0..3)
        .map(|_| KubeLease::new(server.client(), "dr-system", "conformance"))
        .collect();
    let dyns: Vec<&dyn Lease> = runners.iter().map(|l| l as &dyn Lease).collect();
    dr_core::testkit::lease::run_all(&dyns)
        .await
        .expect("lease checks");
}

#[tokio::test(start_paused = true)]
async fn lease_elects_one_leader_and_expires() {
    let server = FakeApiServer::new(0);
    let lease = KubeLease::new(server.client(), "dr-system", "leader");
    let err = lease
        .acquire("runner-0", Duration::from_secs(15))
        .await
        .expect_err("no namespace");
    assert!(err.is_not_found(), "{err}");
    server.insert(
        "api/v1",
        "namespaces",
        "",
        json!({"metadata": {"name": "dr-system"}}),
    );
    let ttl = Duration::from_secs(15);
    let runners: Vec<KubeLease> = (0..6)
        .map(|_| KubeLease::new(server.client(), "dr-system", "leader"))
        .collect();

    let tries = runners
        .iter()
        .enumerate()
        .map(|(i, l)| async move { l.acquire(&format!("runner-{i}"), ttl).await });
    let results = futures::future::join_all(tries).await;
    let leaders: Vec<_> = results
        .into_iter()
        .filter_map(|r| r.expect("no error"))
        .collect();
    assert_eq!(leaders.len(), 1, "exactly one leader: {leaders:?}");
    let leader = leaders[0].clone();
    assert_eq!(leader.fencing_token, 1);
    let idx: usize = leader
        .holder
        .trim_start_matches("runner-")
        .parse()
        .expect("index");
    let other = (idx + 1) % runners.len();

    // Contended while the lease is fresh, even after renewals.
    tokio::time::advance(Duration::from_secs(10)).await;
    let leader = runners[idx].renew(&leader).await.expect("renewed");
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(runners[other]
        .acquire("runner-x", ttl)
        .await
        .expect("ok")
        .is_none());

    // Two runners at once on an updated lease: still one leader at most (the leader holds it).
    let both = futures::future::join(
        runners[other].acquire("runner-x", ttl),
        runners[(idx + 2) % runners.len()].acquire("runner-y", ttl),
    )
    .await;
    assert!(both.0.expect("ok").is_none() && both.1.expect("ok").is_none());

    // The leader stops renewing: after the ttl, another runner takes over with a higher token.
    tokio::time::advance(Duration::from_secs(16)).await;
    server.take_writes();
    let both = futures::future::join(
        runners[other].acquire("runner-x", ttl),
        runners[(idx + 2) % runners.len()].acquire("runner-y", ttl),
    )
    .await;
    let taken: Vec<_> = [both.0.expect("ok"), both.1.expect("ok")]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(taken.len(), 1, "one takeover: {taken:?}");
    // Both read the same expired lease and both replaced it: the second write was refused
    // with a resourceVersion conflict.
    assert_eq!(
        server.take_writes(),
        ["PUT Lease leader", "PUT Lease leader"]
    );
    let new = taken[0].clone();
    assert_eq!(new.fencing_token, 2);

    // The deposed leader learns it lost the lease; its release changes nothing.
    let err = runners[idx].renew(&leader).await.expect_err("lost");
    assert!(matches!(err, Error::InvalidState { .. }), "{err}");
    runners[idx].release(leader).await.expect("no-op");
    let stored = server
        .get(
            "apis/coordination.k8s.io/v1",
            "leases",
            "dr-system",
            "leader",
        )
        .expect("lease");
    assert_eq!(stored["spec"]["holderIdentity"], json!(new.holder));
    assert_eq!(stored["spec"]["leaseTransitions"], json!(1));

    // Released: free at once, and the token keeps increasing.
    runners[other].release(new).await.expect("released");
    let next = runners[idx]
        .acquire("runner-z", ttl)
        .await
        .expect("ok")
        .expect("free");
    assert_eq!(next.fencing_token, 3);
    // Re-acquiring under the same holder keeps the token (a renewal).
    let again = runners[idx]
        .acquire("runner-z", ttl)
        .await
        .expect("ok")
        .expect("ours");
    assert_eq!(again.fencing_token, 3);
}

#[tokio::test(start_paused = true)]
async fn export_to_store_then_restore_in_order() {
    let primary = FakeApiServer::new(0);
    let dr = FakeApiServer::new(0);
    let k8s = KubeDeployer::builder()
        .cluster("primary", primary.client())
        .cluster("dr", dr.client())
        .build()
        .await
        .expect("builds");
    let crd = Manifest {
        kind: "CustomResourceDefinition".into(),
        name: "widgets.example.com".into(),
        body: "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n\
               metadata: {name: widgets.example.com}\nspec:\n  group: example.com\n  scope: Namespaced\n\
               \x20 names: {plural: widgets, singular: widget, kind: Widget}\n\
               \x20 versions: [{name: v1, served: true, storage: true}]\n"
            .into(),
    };
    k8s.apply("primary", "shop", &[crd]).await.expect("crd");
    let rest = Manifest {
        kind: "bundle".into(),
        name: "rest".into(),
        body: "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 3}\n---\n\
               apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {a: '1'}\n---\n\
               apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\ndata: {p: cGFzcw==}\n---\n\
               apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\n\
               spec: {accessModes: [ReadWriteOnce], volumeName: pv-123, resources: {requests: {storage: 1Gi}}}\n"
            .into(),
    };
    k8s.apply("primary", "shop", &[rest, app_manifest("api:7")])
        .await
        .expect("apply");
    // The cluster assigns a service IP; it must not travel.
    let mut svc = primary
        .get("api/v1", "services", "shop", "api")
        .expect("svc");
    svc["spec"]["clusterIP"] = json!("10.0.0.10");
    primary.insert("api/v1", "services", "shop", svc);

    let store = InMemoryStore::new();
    let kinds: Vec<String> = [
        "crd",
        "Widget.v1.example.com",
        "services",
        "deployments",
        "pvc",
        "secrets",
        "configmaps",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let keys = export_to_store(&k8s, "primary", "shop", &kinds, &store, "k8s/shop/1")
        .await
        .expect("exported");
    assert_eq!(keys.len(), 7, "{keys:?}");
    assert!(keys.contains(&"k8s/shop/1/Deployment/api.yaml".to_string()));
    let dep = String::from_utf8(
        store
            .get_bytes("k8s/shop/1/Deployment/api.yaml")
            .await
            .expect("get")
            .to_vec(),
    )
    .expect("utf8");
    for gone in [
        "resourceVersion",
        "uid",
        "status",
        "deployment.kubernetes.io/revision",
        "namespace",
    ] {
        assert!(!dep.contains(gone), "{gone} left in:\n{dep}");
    }
    let svc = String::from_utf8(
        store
            .get_bytes("k8s/shop/1/Service/api.yaml")
            .await
            .expect("get")
            .to_vec(),
    )
    .expect("utf8");
    assert!(!svc.contains("10.0.0.10"), "{svc}");

    let phases = restore_from_store(&k8s, "dr", "shop", &store, "k8s/shop/1")
        .await
        .expect("restored");
    let order: Vec<RestorePhase> = phases.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        order,
        [
            RestorePhase::Definitions,
            RestorePhase::Config,
            RestorePhase::Storage,
            RestorePhase::Workloads,
            RestorePhase::Services,
            RestorePhase::Other
        ]
    );
    let writes: Vec<String> = dr.take_writes();
    let kinds_written: Vec<&str> = writes.iter().filter_map(|w| w.split(' ').nth(1)).collect();
    assert_eq!(
        kinds_written,
        [
            "Namespace",
            "CustomResourceDefinition",
            "ConfigMap",
            "Secret",
            "PersistentVolumeClaim",
            "Deployment",
            "Service",
            "Widget"
        ],
        "{writes:?}"
    );
    assert_eq!(
        dr.get("apis/example.com/v1", "widgets", "shop", "w1")
            .expect("widget")["spec"],
        json!({"size": 3})
    );
    let pvc = dr
        .get("api/v1", "persistentvolumeclaims", "shop", "data")
        .expect("pvc");
    assert!(pvc["spec"].get("volumeName").is_none(), "{pvc}");
    assert_eq!(
        dr.get("api/v1", "secrets", "shop", "creds")
            .expect("secret")["data"],
        json!({"p": "cGFzcw=="})
    );
    let api = WorkloadRef::deployment("dr", "shop", "api");
    let s = k8s
        .wait_ready(&api, Duration::from_secs(60))
        .await
        .expect("ready on dr");
    assert_eq!(s.revision, 1);
}
