//! The generic runner: plans and runs one scenario of any plan file on the simulated cloud.
//!
//! ```text
//! run-plan PLAN_FILE --scenario NAME [--dry-run] [--json] [--seed N] [--fault-rate F]
//! cargo run --example run-plan -- examples/plans/region-failover.yaml --scenario database-failure
//! ```
//!
//! Exit status: 0 when the run succeeded and every target was met (or a dry run was
//! planned), 1 when it failed or a target was missed, 2 for invalid input (the message on
//! stderr names the fault). With `--json`, stdout holds only the JSON report; progress goes
//! to stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use dr_core::executor::Executor;
use dr_core::plan::Plan;
use dr_core::planner::{self, PlanningError};
use dr_core::sim::{FaultConfig, SimConfig};
use dr_core::simulation::Simulation;
use dr_examples::{init_tracing, print_progress, SimulatedOnCall, Sink};

/// Plan and run one scenario of a DR plan on the simulated cloud.
#[derive(Debug, Parser)]
#[command(name = "run-plan")]
struct Args {
    /// The plan (.yaml, .yml, .toml or .json).
    plan: PathBuf,
    /// The scenario to run.
    #[arg(long)]
    scenario: String,
    /// List the provider calls the run would make, in order, and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print only the JSON report on stdout.
    #[arg(long)]
    json: bool,
    /// Seed of the simulated cloud (latencies, injected faults, retry jitter).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Probability in [0, 1] that a simulated call fails with a temporary error.
    #[arg(long, default_value_t = 0.0, value_parser = fault_rate)]
    fault_rate: f64,
    /// Steps run at once, at most.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

fn fault_rate(s: &str) -> Result<f64, String> {
    let f: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&f) {
        Ok(f)
    } else {
        Err(format!("{f} is not a probability in [0, 1]"))
    }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> ExitCode {
    init_tracing();
    let args = Args::parse();
    let plan = match Plan::load(&args.plan) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(scenario) = plan.scenario(&args.scenario) else {
        let known: Vec<&str> = plan.scenarios.iter().map(|s| s.name.as_str()).collect();
        eprintln!(
            "error: {}: unknown scenario `{}` (the plan has: {})",
            args.plan.display(),
            args.scenario,
            known.join(", ")
        );
        return ExitCode::from(2);
    };

    let config =
        SimConfig::default().with_faults(FaultConfig::default().with_rate(args.fault_rate));
    let sim = Simulation::new(&plan, args.seed, config);
    sim.inject(scenario).await;
    let observed = sim.observe().await;
    let graph = match planner::plan(&plan, &scenario.name, &observed) {
        Ok(graph) => graph,
        Err(e @ PlanningError::Unrecoverable { .. }) => {
            eprintln!("error: {}: {e}", args.plan.display());
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("error: {}: {e}", args.plan.display());
            return ExitCode::from(2);
        }
    };
    let human = if args.json {
        Sink::Stderr
    } else {
        Sink::Stdout
    };
    let say = |text: &str| match human {
        Sink::Stdout => println!("{text}"),
        Sink::Stderr => eprintln!("{text}"),
    };

    let clock = sim.cloud().clock();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let executor = Executor::new(sim.providers())
        .clock(clock)
        .seed(args.seed)
        .concurrency(args.concurrency)
        .approvals(Arc::new(SimulatedOnCall {
            delay: Duration::from_secs(60),
        }))
        .events(tx);

    if args.dry_run {
        let dry = executor.dry_run(&graph);
        if args.json {
            match serde_json::to_string_pretty(&dry) {
                Ok(json) => println!("{json}"),
                Err(e) => {
                    eprintln!("error: cannot serialise the dry run: {e}");
                    return ExitCode::FAILURE;
                }
            }
        } else {
            println!("{graph}\n{dry}");
        }
        return ExitCode::SUCCESS;
    }

    say(&graph.to_string());
    let printer = tokio::spawn(print_progress(rx, clock.now(), human));
    let report = executor.run(&graph).await;
    drop(executor);
    let _ = printer.await;
    if args.json {
        println!("{}", report.to_json());
    } else {
        println!("\n{report}");
    }
    if report.succeeded() && report.targets_met() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
