//! Scenario `node-group-failure` of the bundled web shop plan (`plans/region-failover.yaml`)
//! on the embedded simulated cloud: node group `general` of `prod-east` stops serving (its
//! nodes NotReady, the pods on them stranded); the spare group `general-b` is scaled from
//! zero to three nodes and waited for, only then are the NotReady nodes of `general`
//! cordoned and drained (a node still Ready would be left alone), the workloads come back on
//! the new nodes and the services are verified — forecast, live progress, report.
//!
//! ```text
//! cargo run --example node-group-failure
//! ```

use std::process::ExitCode;

use dr_examples::{init_tracing, plans_dir, run_scenario, Console, RunOptions};

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> ExitCode {
    init_tracing();
    let plan = plans_dir().join("region-failover.yaml");
    let opts = RunOptions::default();
    ExitCode::from(run_scenario(&plan, "node-group-failure", &opts, &Console::stdio()).await)
}
