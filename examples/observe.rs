//! What people hear and what monitoring scrapes: a run with incident comms (status-page
//! phases, escalation, RTO warnings, updates) and recovery metrics, served in the
//! Prometheus text format over HTTP on 127.0.0.1.

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dr_core::executor::{Executor, RunReport};
use dr_core::metrics::RecoveryMetrics;
use dr_core::notify::{fan_out, CommsConfig, IncidentComms, Sent};
use dr_core::plan::Plan;
use dr_core::planner;
use dr_core::sim::SimConfig;
use dr_core::simulation::Simulation;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};

use crate::SimulatedOnCall;

/// What [`run_observed`] returns.
#[derive(Debug)]
pub struct Observed {
    /// The run's report.
    pub report: RunReport,
    /// Every notification sent, in order.
    pub sent: Vec<Sent>,
}

/// Runs `scenario` of the plan at `plan_path` on the simulated cloud, with incident comms
/// (`config`) through the simulated notifier and `metrics` fed from the events and the
/// report. Must run on a paused tokio clock.
///
/// # Errors
/// The plan does not load, or the scenario cannot be planned.
pub async fn run_observed(
    plan_path: &Path,
    scenario: &str,
    seed: u64,
    config: CommsConfig,
    metrics: &RecoveryMetrics,
) -> Result<Observed, String> {
    let plan = Plan::load(plan_path).map_err(|e| e.to_string())?;
    let sc = plan
        .scenario(scenario)
        .ok_or_else(|| format!("unknown scenario `{scenario}`"))?;
    let sim = Simulation::new(&plan, seed, SimConfig::default());
    sim.inject(sc).await;
    let graph = planner::plan(&plan, scenario, &sim.observe().await).map_err(|e| e.to_string())?;
    let clock = sim.cloud().clock();
    let comms = IncidentComms::new(&graph, sim.cloud().notifier(), config).clock(clock);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut outs = fan_out(rx, 2);
    let (for_comms, for_metrics) = (outs.remove(0), outs.remove(0));
    let told = tokio::spawn(comms.run(for_comms));
    let follower = tokio::spawn(metrics.clone().follow(for_metrics));
    let report = Executor::new(sim.providers())
        .clock(clock)
        .seed(seed)
        .approvals(Arc::new(SimulatedOnCall {
            delay: Duration::from_secs(60),
        }))
        .events(tx)
        .run(&graph)
        .await;
    let _ = follower.await;
    metrics.observe_report(&report);
    let sent = told.await.map_err(|e| e.to_string())?;
    Ok(Observed { report, sent })
}

/// Serves `metrics` at `/metrics` (and 404 elsewhere) on `listener` until the task is
/// dropped.
pub async fn serve_metrics(listener: tokio::net::TcpListener, metrics: RecoveryMetrics) {
    while let Ok((stream, _)) = listener.accept().await {
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                let metrics = metrics.clone();
                async move {
                    let response = if req.uri().path() == "/metrics" {
                        Response::builder()
                            .header(
                                "content-type",
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )
                            .body(Full::new(Bytes::from(metrics.encode())))
                    } else {
                        Response::builder()
                            .status(404)
                            .body(Full::new(Bytes::from_static(b"not found\n")))
                    };
                    Ok::<_, Infallible>(
                        response.unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))),
                    )
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, svc)
                .await;
        });
    }
}
