//! Scenario `payments-outage` of the bundled plan `plans/provider-outage.yaml` on the
//! embedded simulated cloud: the payment provider is down for twenty minutes; a circuit
//! breaker confirms it, checkout falls back to the backup provider, the status page is told,
//! and checkout switches back once the provider has answered five probes in a row.
//!
//! ```text
//! cargo run --example provider-outage
//! ```

use std::process::ExitCode;

use dr_examples::{init_tracing, plans_dir, run_scenario, Console, RunOptions};

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> ExitCode {
    init_tracing();
    let plan = plans_dir().join("provider-outage.yaml");
    let opts = RunOptions::default();
    ExitCode::from(run_scenario(&plan, "payments-outage", &opts, &Console::stdio()).await)
}
