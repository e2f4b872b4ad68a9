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

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use dr_examples::{init_tracing, run_scenario, Console, RunOptions};

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
    #[arg(long, default_value_t = 0.0)]
    fault_rate: f64,
    /// Steps run at once, at most.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> ExitCode {
    init_tracing();
    let args = Args::parse();
    let opts = RunOptions {
        dry_run: args.dry_run,
        json: args.json,
        seed: args.seed,
        fault_rate: args.fault_rate,
        concurrency: args.concurrency,
    };
    ExitCode::from(run_scenario(&args.plan, &args.scenario, &opts, &Console::stdio()).await)
}
