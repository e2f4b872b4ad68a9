//! Scenario `restore-from-dump` of the bundled web shop plan (`plans/region-failover.yaml`)
//! on the embedded simulated cloud: the database is lost; its newest dump in the backup store
//! is verified against its manifest, restored into a new instance, and the application
//! repointed — forecast (the data loss the dump schedule allows is shown as a risk before
//! anything runs), live progress, report.
//!
//! ```text
//! cargo run --example restore-from-dump
//! ```

use std::process::ExitCode;

use dr_examples::{init_tracing, plans_dir, run_scenario, Console, RunOptions};

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> ExitCode {
    init_tracing();
    let plan = plans_dir().join("region-failover.yaml");
    let opts = RunOptions::default();
    ExitCode::from(run_scenario(&plan, "restore-from-dump", &opts, &Console::stdio()).await)
}
