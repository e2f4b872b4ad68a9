//! A step kind of the program's own, used from a plan file: the region failover of
//! `plans/custom-step.yaml` flips a feature flag (`feature_flag`, a Rust type implementing
//! `StepAction` in `feature_flag.rs`, registered under that name) once the database is
//! promoted, then runs a smoke test (`command`, built in). Both show in the forecast, the dry
//! run and the report, like the built-in steps.
//!
//! ```text
//! cargo run --example custom-step
//! cargo run --example custom-step -- --dry-run
//! ```

use std::process::ExitCode;

use dr_examples::feature_flag::{flags, registry};
use dr_examples::{init_tracing, plans_dir, run_scenario_with, Console, RunOptions};

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> ExitCode {
    init_tracing();
    let opts = RunOptions {
        dry_run: std::env::args().any(|a| a == "--dry-run"),
        ..RunOptions::default()
    };
    let plan = plans_dir().join("custom-step.yaml");
    let code = run_scenario_with(
        &plan,
        "region-failover",
        &opts,
        &Console::stdio(),
        &registry(),
    )
    .await;
    if !opts.dry_run {
        let flag = flags()
            .lock()
            .map(|f| f.get("checkout-maintenance-banner").copied())
            .unwrap_or(None);
        println!("feature flag checkout-maintenance-banner: {flag:?}");
    }
    ExitCode::from(code)
}
