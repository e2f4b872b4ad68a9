//! Scenario `cache-failure` of the bundled plan `plans/cache-failure.yaml` on the embedded
//! simulated cloud: the Redis cache stops answering; the API is switched to degraded mode,
//! the cache is brought back and verified, the plan's own step warms it up, degraded mode is
//! switched off — forecast, live progress, report.
//!
//! ```text
//! cargo run --example cache-failure
//! ```

use std::process::ExitCode;

use dr_examples::{init_tracing, plans_dir, run_scenario, Console, RunOptions};

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> ExitCode {
    init_tracing();
    let plan = plans_dir().join("cache-failure.yaml");
    let opts = RunOptions::default();
    ExitCode::from(run_scenario(&plan, "cache-failure", &opts, &Console::stdio()).await)
}
