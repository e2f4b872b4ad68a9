//! The cluster rebuild on real Kubernetes (`k8s-cluster-rebuild`), run through the function
//! the example's `main` calls, then read back through kube: the failed cluster `prod-east` and
//! the DR cluster `dr-west` of the bundled plan are both reached through `DR_K8S_CONTEXT` (the
//! control plane `scripts/test.sh` starts), in namespaces of this run's own; the database and
//! DNS stay simulated.
//!
//! Without `DR_K8S_CONTEXT` the test prints a `skipped:` line and passes, unless `CI` is set:
//! then it fails, because the stand-in should have been started.
#![cfg(feature = "k8s")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../k8s-cluster-rebuild.rs"]
#[allow(dead_code)]
mod rebuild;

use dr_core::executor::StepStatus;
use dr_core::provider::{ClusterDeployer, WorkloadRef};
use dr_examples::{plans_dir, Console, EXIT_OK};
use dr_k8s::kube::api::{Api, DeleteParams, DynamicObject};
use dr_k8s::kube::core::{ApiResource, GroupVersionKind};
use dr_k8s::KubeDeployer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_rebuild_brings_the_workloads_up_on_the_dr_cluster() {
    let Some(context) = dr_core::testkit::standin("DR_K8S_CONTEXT", "Kubernetes") else {
        return;
    };
    let prefix = format!("{}-", dr_core::testkit::unique("rebuild"));
    let args = rebuild::Args {
        contexts: vec![
            ("prod-east".into(), context.clone()),
            ("dr-west".into(), context.clone()),
        ],
        plan: Some(plans_dir().join("region-failover.yaml")),
        scenario: "cluster-rebuild".into(),
        namespace_prefix: prefix.clone(),
    };
    let console = Console::captured();
    let (exit, report) = rebuild::run(args, &console).await;
    let (out, err) = (console.stdout(), console.stderr());
    assert_eq!(exit, EXIT_OK, "stdout:\n{out}\nstderr:\n{err}");
    let report = report.expect("a report");
    assert!(report.succeeded() && report.targets_met(), "{report}");
    for step in [
        "api/set-secret",
        "api/apply:api",
        "api/wait:api",
        "voice/apply:voice",
        "static-assets/wait:static",
    ] {
        let s = report
            .step(step)
            .unwrap_or_else(|| panic!("{step}: {report}"));
        assert_eq!(s.status, StepStatus::Succeeded, "{step}: {report}");
    }

    // Read back through kube, on the DR cluster's context.
    let k8s = KubeDeployer::builder()
        .cluster_from_context("dr-west", &context)
        .build()
        .await
        .expect("the context loads");
    let shop = format!("{prefix}shop");
    let web = format!("{prefix}web");
    for (ns, name, replicas, image) in [
        (&shop, "api", 3, "shop/api:2.14.0"),
        (&shop, "voice", 2, "shop/voice:1.9.3"),
        (&web, "static", 2, "shop/static:5.0.1"),
    ] {
        let w = WorkloadRef::deployment("dr-west", ns, name);
        let s = k8s.rollout_status(&w).await.expect("rolled out");
        assert!(s.is_complete(), "{s:?}");
        assert_eq!(
            (s.replicas, s.available_replicas),
            (replicas, replicas),
            "{s:?}"
        );
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apps", "v1", "Deployment"),
            "deployments",
        );
        let api: Api<DynamicObject> =
            Api::namespaced_with(k8s.client("dr-west").expect("client"), ns, &ar);
        let d = api.get(name).await.expect("the deployment");
        assert_eq!(
            d.data["spec"]["template"]["spec"]["containers"][0]["image"], image,
            "{name}"
        );
    }
    for (secret, user) in [("shop-secrets", "shop"), ("voice-secrets", "voice")] {
        let url = k8s
            .read_secret("dr-west", &shop, secret, "DATABASE_URL")
            .await
            .expect("the secret");
        let url = url.expose();
        assert!(
            url.starts_with(&format!("postgres://{user}@")) && url.ends_with("/orders"),
            "{secret}: {url}"
        );
    }

    let namespaces: Api<DynamicObject> = Api::all_with(
        k8s.client("dr-west").expect("client"),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("", "v1", "Namespace"),
            "namespaces",
        ),
    );
    for ns in [&shop, &web] {
        if let Err(e) = namespaces.delete(ns, &DeleteParams::default()).await {
            eprintln!("could not delete namespace {ns}: {e}");
        }
    }
}
