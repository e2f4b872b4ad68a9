//! Scenario `nightly-backup` of the bundled web shop plan (`plans/region-failover.yaml`) on
//! the embedded simulated cloud: the backup procedure the runbooks run from cron — snapshot
//! the database, copy it to the DR region, export every namespace to the backup store with a
//! manifest, verify every backup, prune by retention — with a report.
//!
//! ```text
//! cargo run --example backup
//! ```

use std::process::ExitCode;

use dr_examples::{init_tracing, plans_dir, run_scenario, Console, RunOptions};

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> ExitCode {
    init_tracing();
    let plan = plans_dir().join("region-failover.yaml");
    let opts = RunOptions::default();
    ExitCode::from(run_scenario(&plan, "nightly-backup", &opts, &Console::stdio()).await)
}
