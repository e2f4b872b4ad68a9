//! Scenario `database-failure` of the bundled web shop plan (`plans/region-failover.yaml`) on the
//! embedded simulated cloud: forecast, live progress, report.
//!
//! ```text
//! cargo run --example database-failure
//! ```

use std::process::ExitCode;

use dr_examples::{init_tracing, plans_dir, run_scenario, Console, RunOptions};

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> ExitCode {
    init_tracing();
    let plan = plans_dir().join("region-failover.yaml");
    let opts = RunOptions::default();
    ExitCode::from(run_scenario(&plan, "database-failure", &opts, &Console::stdio()).await)
}
