//! Scenario `failback` of the bundled plan `plans/failback.yaml` on the embedded simulated
//! cloud: after a region failover to us-west-2, with us-east-1 back, replicate towards home,
//! freeze writes, check the home replica caught up, promote it, bring the workloads home,
//! switch DNS back, and restore the DR replica — forecast, live progress, report.
//!
//! ```text
//! cargo run --example failback
//! ```

use std::process::ExitCode;

use dr_examples::{init_tracing, plans_dir, run_scenario, Console, RunOptions};

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> ExitCode {
    init_tracing();
    let plan = plans_dir().join("failback.yaml");
    let opts = RunOptions::default();
    ExitCode::from(run_scenario(&plan, "failback", &opts, &Console::stdio()).await)
}
