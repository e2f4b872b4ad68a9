//! Benchmark of the forecast: 1,000 runs of the bundled region failover on the simulated
//! cloud (goal: under 5 s), against a baseline measured in the same process — the same
//! 1,000 simulations (provision, inject, observe, plan, execute) with the nominal
//! durations and nothing drawn or aggregated.
//!
//! ```text
//! cargo run --release --example forecast-bench
//! ```

use std::sync::Arc;
use std::time::Instant;

use dr_core::executor::{AutoApprove, Executor};
use dr_core::forecast::{forecast, ForecastOptions};
use dr_core::plan::Plan;
use dr_core::planner;
use dr_core::sim::SimConfig;
use dr_core::simulation::Simulation;
use dr_examples::plans_dir;

const RUNS: usize = 1000;
const REPEATS: usize = 3;

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let plan = match Plan::load(plans_dir().join("region-failover.yaml")) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return;
        }
    };
    let sc = "region-failover";
    let mut forecast_s = Vec::new();
    let mut baseline_s = Vec::new();
    for _ in 0..REPEATS {
        let t = Instant::now();
        let f = forecast(
            &plan,
            sc,
            &ForecastOptions {
                runs: RUNS,
                seed: 42,
            },
        )
        .await;
        forecast_s.push(t.elapsed().as_secs_f64());
        if let Err(e) = f {
            eprintln!("error: {e}");
            return;
        }

        let t = Instant::now();
        for i in 0..RUNS {
            let sim = Simulation::new(&plan, 42 + i as u64, SimConfig::default());
            let Some(scenario) = plan.scenario(sc) else {
                return;
            };
            sim.inject(scenario).await;
            let observed = sim.observe().await;
            let Ok(graph) = planner::plan(&plan, sc, &observed) else {
                return;
            };
            let _ = Executor::new(sim.providers())
                .clock(sim.cloud().clock())
                .approvals(Arc::new(AutoApprove))
                .run(&graph)
                .await;
        }
        baseline_s.push(t.elapsed().as_secs_f64());
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (f, b) = (median(&mut forecast_s), median(&mut baseline_s));
    println!("| runs | forecast (median of {REPEATS}) | per run | baseline: plain simulations | forecast / baseline | goal |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {RUNS} | {f:.2} s | {:.2} ms | {b:.2} s | {:.2} | < 5 s: {} |",
        f * 1000.0 / RUNS as f64,
        f / b,
        if f < 5.0 { "met" } else { "missed" }
    );
}
