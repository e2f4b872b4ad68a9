//! The runbook's cluster rebuild on real Kubernetes clusters: apply the failed cluster's
//! workloads to the DR cluster, restore the secret with the database endpoint, wait until
//! ready, switch DNS. The clusters are reached through kubeconfig contexts (kube-rs);
//! databases and DNS stay on the simulated cloud.
//!
//! ```text
//! cargo run --example k8s-cluster-rebuild --features k8s -- \
//!     --context prod-east=CONTEXT_A --context dr-west=CONTEXT_B [--namespace-prefix drill-]
//! ```
//!
//! `--namespace-prefix` puts every namespace of the plan under a prefix (`drill-shop`), to
//! rehearse on a shared cluster. Without `--context`, use the simulated cloud: `cargo run
//! --example cluster-rebuild`. Health checks are not verified here: the simulated probe could
//! not see a real cluster. Exit status as `run-plan`: 0, 1, or 2 for invalid input.
//!
//! `scripts/test.sh` runs it (`examples/tests/k8s_cluster_rebuild.rs`) against the local
//! Kubernetes control plane, both plan clusters on that one API server.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use dr_core::executor::{Executor, RunReport};
use dr_core::plan::{Interlock, Plan};
use dr_core::planner;
use dr_core::simulation::Simulation;
use dr_examples::{
    init_tracing, plans_dir, print_progress, real_time_sim, Console, SimulatedOnCall, EXIT_FAILED,
    EXIT_INVALID, EXIT_OK,
};
use dr_k8s::KubeDeployer;

/// Rebuild a lost cluster on another, real, cluster.
#[derive(Debug, Parser)]
#[command(name = "k8s-cluster-rebuild")]
pub(crate) struct Args {
    /// A plan cluster and the kubeconfig context reaching it: `CLUSTER=CONTEXT`, for the
    /// failed cluster and the one to rebuild on.
    #[arg(long = "context", value_parser = cluster_context, required = true)]
    pub(crate) contexts: Vec<(String, String)>,
    /// The plan (default: the bundled web shop).
    #[arg(long)]
    pub(crate) plan: Option<PathBuf>,
    /// The cluster-rebuild scenario of the plan.
    #[arg(long, default_value = "cluster-rebuild")]
    pub(crate) scenario: String,
    /// A prefix for every namespace of the plan (`drill-` puts `shop` in `drill-shop`).
    #[arg(long, default_value = "")]
    pub(crate) namespace_prefix: String,
}

fn cluster_context(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(c, x)| (c.to_string(), x.to_string()))
        .ok_or_else(|| format!("`{s}` is not CLUSTER=CONTEXT"))
}

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    let args = Args::parse();
    let (code, _) = run(args, &Console::stdio()).await;
    ExitCode::from(code)
}

/// Plans and runs the rebuild; returns the exit status and, when it ran, the report.
pub(crate) async fn run(args: Args, console: &Console) -> (u8, Option<RunReport>) {
    let path = args
        .plan
        .unwrap_or_else(|| plans_dir().join("region-failover.yaml"));
    let mut plan = match Plan::load(&path) {
        Ok(plan) => plan,
        Err(e) => {
            console.err(&format!("error: {e}"));
            return (EXIT_INVALID, None);
        }
    };
    // The simulated probe cannot see a real cluster: verify nothing rather than pretend, and
    // so no DNS target can be judged healthy either (the `healthy-target` interlock is off).
    for s in &mut plan.services {
        s.health_check = None;
    }
    if plan.interlocks.contains(&Interlock::HealthyTarget) {
        plan.interlocks.retain(|i| *i != Interlock::HealthyTarget);
        console.err(
            "note: health checks and the healthy-target interlock are off: the simulated probe cannot see a real cluster",
        );
    }
    // Node groups are EKS's, not the cluster API's: the clusters keep the nodes they have.
    if plan.clusters.iter().any(|c| !c.node_groups.is_empty()) {
        for c in &mut plan.clusters {
            c.node_groups.clear();
        }
        console.err("note: node groups are left as they are: no node capacity provider here");
    }
    for w in plan
        .clusters
        .iter_mut()
        .flat_map(|c| c.workloads.iter_mut())
    {
        w.namespace = format!("{}{}", args.namespace_prefix, w.namespace);
    }
    let mut builder = KubeDeployer::builder();
    for (cluster, context) in &args.contexts {
        builder = builder.cluster_from_context(cluster, context);
    }
    let k8s = match builder.build().await {
        Ok(k8s) => Arc::new(k8s),
        Err(e) => {
            console.err(&format!("error: {e}"));
            return (EXIT_INVALID, None);
        }
    };
    let sim = Simulation::new(&plan, 42, real_time_sim());
    let mut providers = sim.providers();
    for (cluster, _) in &args.contexts {
        providers = providers.with_cluster_named(cluster, k8s.clone());
    }
    let observed = sim.observe().await;
    let graph = match planner::plan(&plan, &args.scenario, &observed) {
        Ok(g) => g,
        Err(e) => {
            console.err(&format!("error: {}: {e}", path.display()));
            return (EXIT_INVALID, None);
        }
    };
    console.out(&graph.to_string());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let clock = dr_core::Clock::new();
    let executor = Executor::new(providers)
        .clock(clock)
        .approvals(Arc::new(SimulatedOnCall {
            delay: Duration::from_secs(1),
        }))
        .events(tx);
    let problems = executor.preflight(&graph);
    if !problems.is_empty() {
        for p in problems {
            console.err(&format!("error: preflight: {p}"));
        }
        return (EXIT_INVALID, None);
    }
    let printer = tokio::spawn(print_progress(rx, clock.now(), console.clone(), false));
    let report = executor.run(&graph).await;
    drop(executor);
    let _ = printer.await;
    console.out(&format!("\n{report}"));
    let code = if report.succeeded() && report.targets_met() {
        EXIT_OK
    } else {
        EXIT_FAILED
    };
    (code, Some(report))
}
