//! The main job: a full region failover of the bundled two-region web shop
//! (`plans/region-failover.yaml`) on the embedded simulated cloud.
//!
//! It loads and checks the plan, loses `us-east-1`, observes what is left, prints the
//! forecast, runs the recovery with live progress (in simulated time: the whole failover takes
//! well under a second of real time) and prints the report.
//!
//! ```text
//! cargo run --example region-failover
//! ```

use std::process::ExitCode;

use dr_examples::{init_tracing, plans_dir, run_scenario, Console, RunOptions};

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> ExitCode {
    init_tracing();
    let plan = plans_dir().join("region-failover.yaml");
    let opts = RunOptions::default();
    ExitCode::from(run_scenario(&plan, "region-failover", &opts, &Console::stdio()).await)
}
