//! The plan's own steps — a webhook and a command after the database promotion — run on the
//! simulated cloud like built-in steps: in the dry run, the forecast and the report; a
//! failing critical hook stops its dependants, a failing optional one degrades the run, a
//! hook that hangs times out, and a secret header is never printed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use dr_core::executor::{AutoApprove, Executor, RunReport, StepStatus};
use dr_core::plan::Plan;
use dr_core::planner;
use dr_core::sim::SimConfig;
use dr_core::simulation::Simulation;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};

const TOKEN: &str = "hook-token-7d1f0e9c";

/// What the local server saw, and how it answers.
#[derive(Debug, Default)]
struct Seen {
    requests: Vec<(String, String, Option<String>, String)>,
}

/// A local HTTP server on 127.0.0.1: `/ok` answers 200, `/fail` 500, `/slow` after 30 s.
async fn server() -> (SocketAddr, Arc<Mutex<Seen>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let record = seen.clone();
    // The server runs on a thread and runtime of its own, on real time.
    let std_listener = listener.into_std().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let record = record.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let record = record.clone();
                        async move {
                            let method = req.method().to_string();
                            let path = req.uri().path().to_string();
                            let auth = req
                                .headers()
                                .get("authorization")
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_string);
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let body = String::from_utf8_lossy(&body).into_owned();
                            record.lock().unwrap().requests.push((
                                method,
                                path.clone(),
                                auth,
                                body,
                            ));
                            let status = match path.as_str() {
                                "/fail" => 500,
                                "/slow" => {
                                    tokio::time::sleep(Duration::from_secs(30)).await;
                                    200
                                }
                                _ => 200,
                            };
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::from_static(b"{\"warmed\": true}")))
                                    .unwrap(),
                            )
                        }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .await;
                });
            }
        });
    });
    (addr, seen)
}

fn plan(addr: SocketAddr, path: &str, critical: bool, timeout: &str) -> Plan {
    let yaml = format!(
        r#"
name: shop
regions: [{{ name: east, role: primary }}, {{ name: west, role: secondary }}]
databases: [{{ name: db, region: east, replicas: [{{ id: db-west, region: west }}] }}]
services: [{{ name: orders, rto: 1h, rpo: 5m, database: db }}]
scenarios:
  - name: failover
    kind: region-failover
    from: east
    to: west
    steps:
      - id: warm-cache
        kind: webhook
        after: [database promoted]
        service: orders
        critical: {critical}
        timeout: {timeout}
        retry: {{ max_attempts: 2, initial_backoff: 1s }}
        params:
          url: "http://127.0.0.1:{port}{path}"
          headers: {{ Authorization: "Bearer {TOKEN}" }}
          body: {{ cache: orders }}
      - id: smoke-test
        kind: command
        after: [warm-cache]
        service: orders
        params:
          program: sh
          args: ["-c", "echo smoke ok; echo $SECRET_VALUE"]
          env: {{ SECRET_VALUE: "{TOKEN}" }}
"#,
        port = addr.port()
    );
    let plan = Plan::from_yaml_str(&yaml).unwrap();
    plan.validate().unwrap();
    plan
}

async fn run(plan: &Plan) -> (RunReport, String) {
    let sim = Simulation::new(plan, 7, SimConfig::default());
    let sc = plan.scenario("failover").unwrap();
    sim.inject(sc).await;
    let observed = sim.observe().await;
    let graph = planner::plan(plan, "failover", &observed).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let executor = Executor::new(sim.providers())
        .clock(sim.cloud().clock())
        .approvals(Arc::new(AutoApprove))
        .events(tx);
    assert!(executor.preflight(&graph).is_empty());
    let dry = executor.dry_run(&graph);
    let report = executor.run(&graph).await;
    drop(executor);
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    let everything = format!(
        "{graph}\n{dry}\n{}\n{report}\n{}\n{report:?}\n{:?}\n{}",
        serde_json::to_string(&dry).unwrap(),
        report.to_json(),
        events,
        serde_json::to_string(&events).unwrap()
    );
    (report, everything)
}

#[tokio::test(start_paused = true)]
async fn webhook_and_command_after_the_promotion() {
    let (addr, seen) = server().await;
    let plan = plan(addr, "/ok", true, "30s");
    let observed = planner::ObservedState::nominal(&plan, chrono::Utc::now());
    let graph = planner::plan(&plan, "failover", &observed).unwrap();
    // Ordered after the promotion, in the forecast and on the critical path.
    let hook = graph.step("warm-cache").unwrap();
    assert_eq!(hook.depends_on, ["db/wait"]);
    assert_eq!(graph.step("smoke-test").unwrap().depends_on, ["warm-cache"]);
    assert_eq!(
        graph.critical_path,
        ["db/promote", "db/wait", "warm-cache", "smoke-test"]
    );
    assert!(graph.services[0].forecast_rto >= hook.estimate);

    let (report, everything) = run(&plan).await;
    assert!(report.succeeded(), "{report}");
    let hook = report.step("warm-cache").unwrap();
    assert_eq!(hook.status, StepStatus::Succeeded);
    assert_eq!(hook.depends_on, ["db/wait"]);
    assert_eq!(hook.output.as_ref().unwrap()["status"], 200);
    let smoke = report.step("smoke-test").unwrap();
    let out = smoke.output.as_ref().unwrap();
    assert_eq!(out["exit_status"], 0);
    assert!(out["stdout"].as_str().unwrap().starts_with("smoke ok"));
    // The request carried the header and the body; nothing printed the token.
    let seen = seen.lock().unwrap();
    assert_eq!(seen.requests.len(), 1);
    assert_eq!(seen.requests[0].0, "POST");
    assert_eq!(
        seen.requests[0].2.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(seen.requests[0].3, r#"{"cache":"orders"}"#);
    assert!(!everything.contains(TOKEN), "token leaked");
    assert!(everything.contains("warm-cache") && everything.contains("smoke-test"));
}

#[tokio::test(start_paused = true)]
async fn a_failing_critical_hook_skips_its_dependants() {
    let (addr, seen) = server().await;
    let (report, everything) = run(&plan(addr, "/fail", true, "30s")).await;
    assert!(!report.succeeded());
    let hook = report.step("warm-cache").unwrap();
    assert_eq!(hook.status, StepStatus::Failed);
    // A 500 after sending: an idempotent webhook is retried (max 2 attempts).
    assert_eq!(hook.attempts, 2);
    assert_eq!(seen.lock().unwrap().requests.len(), 2);
    assert_eq!(
        report.step("smoke-test").unwrap().status,
        StepStatus::Skipped
    );
    assert!(!everything.contains(TOKEN));
}

#[tokio::test(start_paused = true)]
async fn a_failing_optional_hook_degrades_the_run() {
    let (addr, _) = server().await;
    let (report, _) = run(&plan(addr, "/fail", false, "30s")).await;
    assert!(report.succeeded(), "{report}");
    assert!(report.degraded);
    assert_eq!(
        report.step("warm-cache").unwrap().status,
        StepStatus::Failed
    );
    // Its dependant runs degraded.
    assert_eq!(
        report.step("smoke-test").unwrap().status,
        StepStatus::Succeeded
    );
}

#[tokio::test(start_paused = true)]
async fn a_hook_that_hangs_times_out() {
    let (addr, _) = server().await;
    let (report, everything) = run(&plan(addr, "/slow", true, "1s")).await;
    assert!(!report.succeeded());
    let hook = report.step("warm-cache").unwrap();
    assert_eq!(hook.status, StepStatus::Failed);
    assert!(
        hook.error.as_deref().unwrap().contains("timed out"),
        "{hook:?}"
    );
    assert!(!everything.contains(TOKEN));
}

#[test]
fn an_unknown_kind_names_the_step_and_the_registered_kinds() {
    let mut plan = plan("127.0.0.1:9".parse().unwrap(), "/ok", true, "30s");
    plan.scenarios[0].steps[0].kind = "warm_cache".into();
    let err = plan.validate().unwrap_err().to_string();
    assert!(err.contains("steps[warm-cache].kind"), "{err}");
    assert!(
        err.contains("registered kinds: approval, command, webhook"),
        "{err}"
    );
    let mut registry = dr_core::step::StepRegistry::builtin();
    registry.register("warm_cache", dr_core::step::webhook::Webhook::from_params);
    plan.validate_with(&registry).unwrap();
}
