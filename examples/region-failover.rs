//! The main job: a full region failover of the bundled two-region web shop
//! (`plans/region-failover.yaml`) on the embedded simulated cloud.
//!
//! It loads and checks the plan, loses `us-east-1`, observes what is left, prints the
//! forecast, runs the recovery with live progress (simulated time: the whole failover takes
//! well under a second of real time) and prints the report.
//!
//! ```text
//! cargo run --example region-failover
//! ```
#![allow(clippy::print_stdout)]

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use dr_core::executor::Executor;
use dr_core::plan::Plan;
use dr_core::planner;
use dr_core::sim::SimConfig;
use dr_core::simulation::Simulation;
use dr_examples::{init_tracing, plans_dir, print_progress, SimulatedOnCall, Sink};

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> ExitCode {
    init_tracing();
    let path = plans_dir().join("region-failover.yaml");
    let plan = match Plan::load(&path) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let Some(scenario) = plan.scenario("region-failover") else {
        eprintln!("{}: no scenario `region-failover`", path.display());
        return ExitCode::from(2);
    };

    let sim = Simulation::new(&plan, 42, SimConfig::default());
    println!(
        "Incident: region {} is down.\n",
        scenario.from.as_deref().unwrap_or("?")
    );
    sim.inject(scenario).await;
    let observed = sim.observe().await;
    let graph = match planner::plan(&plan, &scenario.name, &observed) {
        Ok(graph) => graph,
        Err(e) => {
            eprintln!("cannot plan {}: {e}", scenario.name);
            return ExitCode::FAILURE;
        }
    };
    println!("{graph}");

    let clock = sim.cloud().clock();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let printer = tokio::spawn(print_progress(rx, clock.now(), Sink::Stdout));
    let executor = Executor::new(sim.providers())
        .clock(clock)
        .seed(42)
        .approvals(Arc::new(SimulatedOnCall {
            delay: Duration::from_secs(60),
        }))
        .events(tx);
    println!("Progress (simulated time):");
    let report = executor.run(&graph).await;
    drop(executor);
    let _ = printer.await;

    println!("\n{report}");
    if report.succeeded() && report.targets_met() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
