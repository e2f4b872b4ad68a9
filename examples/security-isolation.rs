//! Scenario `security-isolation` of the bundled web shop plan (`plans/region-failover.yaml`) on the
//! embedded simulated cloud: forecast, live progress, report.
//!
//! The voice service is compromised: its pods are cut off (Service selector and a deny-all
//! NetworkPolicy) and scaled to zero; the namespace's objects are written once to the
//! evidence store, the database and the recordings volume are snapshotted (the volume
//! snapshot tagged with the incident); the speech API key is rotated in the secret manager;
//! after the approval clean workloads go into `shop-recovery`, the new key is copied into
//! their secret and they restart to read it. The report ends with the evidence it kept:
//! each object with its size and SHA-256, each volume snapshot id.
//!
//! ```text
//! cargo run --example security-isolation
//! ```

use std::process::ExitCode;

use dr_examples::{init_tracing, plans_dir, run_scenario, Console, RunOptions};

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> ExitCode {
    init_tracing();
    let plan = plans_dir().join("region-failover.yaml");
    let opts = RunOptions::default();
    ExitCode::from(run_scenario(&plan, "security-isolation", &opts, &Console::stdio()).await)
}
