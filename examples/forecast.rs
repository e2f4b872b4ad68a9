//! The forecast as a distribution: the bundled region failover (or any plan and scenario)
//! run 1,000 times on the simulated cloud with step latencies drawn from the plan's
//! distributions (or the documented defaults), then the recovery time per service at p50,
//! p95 and p99 against its RTO, the probability of meeting each RTO, and the criticality
//! index of each step.
//!
//! ```text
//! cargo run --release --example forecast
//! cargo run --release --example forecast -- PLAN_FILE SCENARIO [--runs N] [--seed N] [--json]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use dr_core::forecast::{forecast, ForecastOptions};
use dr_core::plan::Plan;
use dr_examples::plans_dir;

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> ExitCode {
    // No log: a thousand runs would log every failed step (see the report instead).
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let positional: Vec<&String> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| {
            !a.starts_with("--")
                && (*i == 0 || !matches!(args[i - 1].as_str(), "--runs" | "--seed"))
        })
        .map(|(_, a)| a)
        .collect();
    let path = positional
        .first()
        .map_or_else(|| plans_dir().join("region-failover.yaml"), PathBuf::from);
    let scenario = positional.get(1).map_or("region-failover", |s| s.as_str());
    let opts = ForecastOptions {
        runs: flag("--runs").map_or(1000, |n| n as usize),
        seed: flag("--seed").unwrap_or(42),
    };
    let plan = match Plan::load(&path) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    match forecast(&plan, scenario, &opts).await {
        Ok(f) => {
            if args.iter().any(|a| a == "--json") {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&f).unwrap_or_else(|e| e.to_string())
                );
            } else {
                println!("{f}");
                println!(
                    "({} runs in {:.2} s of real time)",
                    f.runs,
                    started.elapsed().as_secs_f64()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            ExitCode::from(2)
        }
    }
}
