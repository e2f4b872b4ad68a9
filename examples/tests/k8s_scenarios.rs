//! The cache failure, the third-party provider outage, the application rollback and the
//! service restart on real Kubernetes, through a providers file (what `run-plan PLAN --scenario NAME --providers FILE` runs): the bundled
//! plans' cluster is the control plane `scripts/test.sh` starts (`DR_K8S_CONTEXT`, in
//! namespaces of this run's own), their health checks are HTTP requests to a server on
//! 127.0.0.1 whose answers each test sets, and the rest (DNS, notifications) stays simulated
//! or a log line. What the run did is read back through kube: the environment of the pod
//! templates, the revisions of the workloads.
//!
//! Without `DR_K8S_CONTEXT` each test prints a `skipped:` line and passes, unless `CI` is
//! set: then it fails, because the stand-in should have been started.
#![cfg(all(feature = "k8s", feature = "providers-k8s"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dr_core::executor::{RunReport, StepStatus};
use dr_core::plan::Plan;
use dr_core::provider::{ClusterDeployer, Manifest, WorkloadKind, WorkloadRef};
use dr_examples::providers::{run_with_providers, ProvidersRunOptions};
use dr_examples::{plans_dir, Console, EXIT_FAILED, EXIT_OK};
use dr_k8s::KubeDeployer;

/// How the health server answers one path.
#[derive(Debug, Clone, Copy)]
enum Answer {
    /// 200 `status: ok`.
    Healthy,
    /// 503.
    Unhealthy,
    /// 503 to the first `n` requests, then 200.
    FailFirst(u32),
}

/// A health endpoint on 127.0.0.1 answering each path as it was told; requests counted.
#[derive(Debug, Clone)]
struct HealthServer {
    addr: SocketAddr,
    answers: Arc<Mutex<HashMap<String, (Answer, u32)>>>,
}

impl HealthServer {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let answers: Arc<Mutex<HashMap<String, (Answer, u32)>>> = Arc::default();
        let seen = answers.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { return };
                let mut buf = [0u8; 4096];
                let n = s.read(&mut buf).unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let healthy = {
                    let mut answers = seen.lock().unwrap();
                    let entry = answers.entry(path).or_insert((Answer::Unhealthy, 0));
                    entry.1 += 1;
                    match entry.0 {
                        Answer::Healthy => true,
                        Answer::Unhealthy => false,
                        Answer::FailFirst(k) => entry.1 > k,
                    }
                };
                let reply: &[u8] = if healthy {
                    b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\nconnection: close\r\n\r\nstatus: ok"
                } else {
                    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\nconnection: close\r\n\r\ndown"
                };
                let _ = s.write_all(reply);
            }
        });
        HealthServer { addr, answers }
    }

    fn set(&self, path: &str, answer: Answer) {
        self.answers
            .lock()
            .unwrap()
            .insert(path.to_string(), (answer, 0));
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self, path: &str) -> u32 {
        self.answers.lock().unwrap().get(path).map_or(0, |e| e.1)
    }
}

/// A bundled plan with its workloads in a namespace of this run's own and its health checks
/// pointed at `server` (`/NAME` for check `NAME`), written where the run reads it.
fn plan_for(file: &str, ns: &str, server: &HealthServer, dir: &Path) -> (Plan, PathBuf) {
    let mut plan = Plan::load(plans_dir().join(file)).unwrap();
    for w in plan
        .clusters
        .iter_mut()
        .flat_map(|c| c.workloads.iter_mut())
    {
        w.namespace = ns.to_string();
    }
    for h in &mut plan.health_checks {
        h.target = server.url(&format!("/{}", h.name));
    }
    let path = dir.join("plan.json");
    std::fs::write(&path, serde_json::to_string_pretty(&plan).unwrap()).unwrap();
    (plan, path)
}

/// Every health check over HTTP, the plan's cluster on the stand-in, the rest simulated.
fn providers_file(plan: &Plan, context: &str, dir: &Path) -> PathBuf {
    let mut text = String::from("default: simulated\nclusters:\n");
    for c in &plan.clusters {
        text.push_str(&format!(
            "  {}: {{ kind: kubernetes, context: \"{context}\" }}\n",
            c.name
        ));
    }
    text.push_str("health_checks:\n");
    for h in &plan.health_checks {
        text.push_str(&format!(
            "  {}: {{ kind: http, expect_status: 200-299, timeout: 2s }}\n",
            h.name
        ));
    }
    text.push_str("notifications:\n");
    for n in &plan.notifications {
        text.push_str(&format!("  {}: {{ kind: log }}\n", n.name));
    }
    let path = dir.join("providers.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The plan's workloads created on the stand-in (a Deployment or StatefulSet each, with
/// the plan's replicas and image), as a cluster would hold them before the incident.
async fn deploy(k8s: &KubeDeployer, plan: &Plan) {
    deploy_clusters(k8s, plan, &[]).await;
}

/// [`deploy`] for the clusters named in `only` (every cluster when it is empty).
async fn deploy_clusters(k8s: &KubeDeployer, plan: &Plan, only: &[&str]) {
    for c in &plan.clusters {
        if !only.is_empty() && !only.contains(&c.name.as_str()) {
            continue;
        }
        for w in &c.workloads {
            let (kind, extra) = match w.kind {
                WorkloadKind::Deployment => ("Deployment", String::new()),
                WorkloadKind::StatefulSet => {
                    ("StatefulSet", format!("  serviceName: {}\n", w.name))
                }
            };
            let image = w.image.clone().unwrap_or_else(|| "example/app:1".into());
            let body = format!(
                "apiVersion: apps/v1\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  replicas: {replicas}\n{extra}  selector:\n    matchLabels: {{ app: {name} }}\n  template:\n    metadata:\n      labels: {{ app: {name} }}\n    spec:\n      containers:\n        - name: {name}\n          image: \"{image}\"\n",
                name = w.name,
                ns = w.namespace,
                replicas = w.replicas,
            );
            let manifest = Manifest {
                kind: kind.into(),
                name: w.name.clone(),
                body,
            };
            k8s.apply(&c.name, &w.namespace, &[manifest]).await.unwrap();
            let wref = WorkloadRef {
                cluster: c.name.clone(),
                namespace: w.namespace.clone(),
                kind: w.kind,
                name: w.name.clone(),
            };
            k8s.wait_ready(&wref, Duration::from_secs(120))
                .await
                .unwrap_or_else(|e| panic!("{wref} before the run: {e}"));
        }
    }
}

async fn client(plan: &Plan, context: &str) -> KubeDeployer {
    let mut builder = KubeDeployer::builder();
    for c in &plan.clusters {
        builder = builder.cluster_from_context(&c.name, context);
    }
    builder.build().await.unwrap()
}

async fn run(plan_path: &Path, scenario: &str, providers: &Path) -> (u8, RunReport, String) {
    let opts = ProvidersRunOptions {
        approval_delay: Duration::from_millis(100),
        ..ProvidersRunOptions::default()
    };
    let console = Console::captured();
    let run = run_with_providers(plan_path, scenario, providers, &opts, &console).await;
    let out = format!(
        "stdout:\n{}\nstderr:\n{}",
        console.stdout(),
        console.stderr()
    );
    let report = run.report.unwrap_or_else(|| panic!("no report\n{out}"));
    (run.exit, report, out)
}

fn status(report: &RunReport, step: &str) -> Option<StepStatus> {
    report.step(step).map(|s| s.status)
}

fn workload(plan: &Plan, cluster: &str, name: &str) -> WorkloadRef {
    let c = plan.clusters.iter().find(|c| c.name == cluster).unwrap();
    let w = c.workloads.iter().find(|w| w.name == name).unwrap();
    WorkloadRef {
        cluster: c.name.clone(),
        namespace: w.namespace.clone(),
        kind: w.kind,
        name: w.name.clone(),
    }
}

/// The image of the first container of a Deployment, read through kube.
async fn image_of(context: &str, w: &WorkloadRef) -> String {
    use dr_k8s::kube::api::{Api, DynamicObject};
    use dr_k8s::kube::core::{ApiResource, GroupVersionKind};
    let options = dr_k8s::kube::config::KubeConfigOptions {
        context: Some(context.to_string()),
        ..Default::default()
    };
    let config = dr_k8s::kube::Config::from_kubeconfig(&options)
        .await
        .unwrap();
    let client = dr_k8s::kube::Client::try_from(config).unwrap();
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"));
    let api: Api<DynamicObject> = Api::namespaced_with(client, &w.namespace, &ar);
    let obj = api.get(&w.name).await.unwrap();
    obj.data["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn env_of(k8s: &KubeDeployer, plan: &Plan, name: &str) -> HashMap<String, String> {
    let (c, w) = plan
        .clusters
        .iter()
        .find_map(|c| c.workloads.iter().find(|w| w.name == name).map(|w| (c, w)))
        .unwrap();
    let wref = WorkloadRef {
        cluster: c.name.clone(),
        namespace: w.namespace.clone(),
        kind: w.kind,
        name: w.name.clone(),
    };
    k8s.rollout_status(&wref)
        .await
        .unwrap()
        .env
        .into_iter()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_failure_on_kubernetes_runs_degraded_until_the_cache_answers() {
    let Some(context) = dr_core::testkit::standin("DR_K8S_CONTEXT", "Kubernetes") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = HealthServer::start();
    server.set("/api-health", Answer::Healthy);
    // The cache answers only after two refusals: the verification waits for it.
    server.set("/redis-health", Answer::FailFirst(2));
    let ns = dr_core::testkit::unique("cache");
    let (plan, plan_path) = plan_for("cache-failure.yaml", &ns, &server, dir.path());
    let providers = providers_file(&plan, &context, dir.path());
    let k8s = client(&plan, &context).await;
    deploy(&k8s, &plan).await;

    let (exit, report, out) = run(&plan_path, "cache-failure", &providers).await;
    assert_eq!(exit, EXIT_OK, "{report}\n{out}");
    for step in [
        "api/degraded-on:api",
        "api/wait-degraded:api",
        "redis/restart",
        "redis/wait",
        "redis/verify",
        "warm-cache",
        "api/degraded-off:api",
        "api/wait:api",
        "api/verify",
    ] {
        assert_eq!(
            status(&report, step),
            Some(StepStatus::Succeeded),
            "{step}: {report}"
        );
    }
    assert!(
        server.requests("/redis-health") >= 3,
        "the check was retried"
    );
    // Read back through kube: degraded mode is off, the cache's pods were rolled.
    let env = env_of(&k8s, &plan, "api").await;
    assert_eq!(
        env.get("CACHE_DEGRADED").map(String::as_str),
        Some("false"),
        "{env:?}"
    );
    let redis = WorkloadRef {
        cluster: "prod-east".into(),
        namespace: ns.clone(),
        kind: WorkloadKind::StatefulSet,
        name: "redis".into(),
    };
    let status = k8s.rollout_status(&redis).await.unwrap();
    assert!(status.is_complete(), "{status:?}");
    assert!(status.revision >= 2, "restarted: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_that_never_answers_leaves_degraded_mode_on_in_the_cluster() {
    let Some(context) = dr_core::testkit::standin("DR_K8S_CONTEXT", "Kubernetes") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = HealthServer::start();
    server.set("/api-health", Answer::Healthy);
    server.set("/redis-health", Answer::Unhealthy);
    let ns = dr_core::testkit::unique("cachefail");
    let (mut plan, _) = plan_for("cache-failure.yaml", &ns, &server, dir.path());
    // The verification gives up within seconds rather than the plan's default.
    plan.timeouts
        .insert("verify_health".into(), "5s".parse().unwrap());
    let plan_path = dir.path().join("plan.json");
    std::fs::write(&plan_path, serde_json::to_string_pretty(&plan).unwrap()).unwrap();
    let providers = providers_file(&plan, &context, dir.path());
    let k8s = client(&plan, &context).await;
    deploy(&k8s, &plan).await;

    let (exit, report, out) = run(&plan_path, "cache-failure", &providers).await;
    assert_eq!(exit, EXIT_FAILED, "{report}\n{out}");
    assert_eq!(
        status(&report, "redis/verify"),
        Some(StepStatus::Failed),
        "{report}"
    );
    assert_ne!(
        status(&report, "api/degraded-off:api"),
        Some(StepStatus::Succeeded),
        "{report}"
    );
    let env = env_of(&k8s, &plan, "api").await;
    assert_eq!(
        env.get("CACHE_DEGRADED").map(String::as_str),
        Some("true"),
        "degraded mode stays on: {env:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_outage_on_kubernetes_falls_back_and_switches_back_when_healthy() {
    let Some(context) = dr_core::testkit::standin("DR_K8S_CONTEXT", "Kubernetes") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = HealthServer::start();
    server.set("/checkout-health", Answer::Healthy);
    // The payment provider is down for its first four probes: the breaker trips on three,
    // half-open probing sees it fail once more, then healthy.
    server.set("/psp-health", Answer::FailFirst(4));
    let ns = dr_core::testkit::unique("psp");
    let (mut plan, _) = plan_for("provider-outage.yaml", &ns, &server, dir.path());
    let yaml = serde_yaml_ng::to_string(&plan.scenarios[0]).unwrap();
    // Seconds between probes rather than the bundled 30 s, so the test takes seconds.
    let yaml = yaml
        .replace("probe_interval: 30s", "probe_interval: 1s")
        .replace("window: 5m", "window: 1m")
        .replace("recover_after: 5", "recover_after: 2");
    plan.scenarios[0] = serde_yaml_ng::from_str(&yaml).unwrap();
    let plan_path = dir.path().join("plan.json");
    std::fs::write(&plan_path, serde_json::to_string_pretty(&plan).unwrap()).unwrap();
    let providers = providers_file(&plan, &context, dir.path());
    let k8s = client(&plan, &context).await;
    deploy(&k8s, &plan).await;

    let (exit, report, out) = run(&plan_path, "payments-outage", &providers).await;
    assert_eq!(exit, EXIT_OK, "{report}\n{out}");
    assert!(report.succeeded(), "{report}");
    let failed = report
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::Failed)
        .count();
    assert_eq!(failed, 0, "{report}");
    assert!(server.requests("/psp-health") >= 6, "{report}");
    // Back on the main provider, read back through kube.
    let env = env_of(&k8s, &plan, "checkout").await;
    assert_eq!(
        env.get("PAYMENT_PROVIDER").map(String::as_str),
        Some("main-psp"),
        "{env:?}\n{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_rollback_on_kubernetes_restores_the_previous_image() {
    let Some(context) = dr_core::testkit::standin("DR_K8S_CONTEXT", "Kubernetes") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = HealthServer::start();
    for h in ["/api-health", "/voice-health", "/www-health"] {
        server.set(h, Answer::Healthy);
    }
    let ns = dr_core::testkit::unique("rollback");
    let (plan, plan_path) = plan_for("region-failover.yaml", &ns, &server, dir.path());
    let providers = providers_file(&plan, &context, dir.path());
    let k8s = client(&plan, &context).await;
    deploy_clusters(&k8s, &plan, &["prod-east"]).await;
    // The bad release: a new image rolled out on top of the good one.
    let api = workload(&plan, "prod-east", "api");
    k8s.set_image(&api, "api", "shop/api:2.15.0-bad")
        .await
        .unwrap();
    let bad = k8s
        .wait_ready(&api, Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(image_of(&context, &api).await, "shop/api:2.15.0-bad");

    let (exit, report, out) = run(&plan_path, "application-rollback", &providers).await;
    assert_eq!(exit, EXIT_OK, "{report}\n{out}");
    assert!(report.succeeded() && report.targets_met(), "{report}");
    // Read back: the good image again, as a new revision, rolled out.
    assert_eq!(
        image_of(&context, &api).await,
        "shop/api:2.14.0",
        "{report}"
    );
    let after = k8s.rollout_status(&api).await.unwrap();
    assert!(after.is_complete(), "{after:?}");
    assert!(after.revision > bad.revision, "{after:?} after {bad:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_restart_on_kubernetes_rolls_new_pods_and_verifies() {
    let Some(context) = dr_core::testkit::standin("DR_K8S_CONTEXT", "Kubernetes") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = HealthServer::start();
    for h in ["/api-health", "/voice-health", "/www-health"] {
        server.set(h, Answer::Healthy);
    }
    let ns = dr_core::testkit::unique("restart");
    let (plan, plan_path) = plan_for("region-failover.yaml", &ns, &server, dir.path());
    let providers = providers_file(&plan, &context, dir.path());
    let k8s = client(&plan, &context).await;
    deploy_clusters(&k8s, &plan, &["prod-east"]).await;
    let api = workload(&plan, "prod-east", "api");
    let before = k8s.rollout_status(&api).await.unwrap();

    let (exit, report, out) = run(&plan_path, "service-restart", &providers).await;
    assert_eq!(exit, EXIT_OK, "{report}\n{out}");
    assert!(report.succeeded(), "{report}");
    assert!(server.requests("/api-health") >= 1, "verified: {report}");
    let after = k8s.rollout_status(&api).await.unwrap();
    assert!(after.is_complete(), "{after:?}");
    assert_eq!(
        after.revision,
        before.revision + 1,
        "one new rollout: {after:?}"
    );
    assert_eq!(image_of(&context, &api).await, "shop/api:2.14.0");
}
