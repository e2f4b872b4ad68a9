//! The cost of one watcher pass ([`dr_core::watch::Watcher::tick`]) against plan size:
//! observing every database, sampling a trigger, and the readiness of the region failover
//! (planned against the observed state, preflighted, forecast), on generated plans of 1,000
//! to 4,000 services on the simulated cloud with no API latency. The baseline is the planner
//! alone on the same plan and observed state (`planner::plan`), which a pass includes: the
//! ratio says what observing, sampling and preflight add to it.
//!
//! ```text
//! cargo run --release --example watch-bench [-- --quick]
//! ```

use std::time::{Duration, Instant};

use dr_core::executor::Executor;
use dr_core::plan::Trigger;
use dr_core::planner::{self, ObservedState};
use dr_core::sim::SimConfig;
use dr_core::simulation::Simulation;
use dr_core::watch::Watcher;

fn min_time(runs: usize, mut f: impl FnMut() -> Duration) -> Duration {
    (0..runs).map(|_| f()).min().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> std::process::ExitCode {
    let quick = std::env::args().any(|a| a == "--quick");
    let (sizes, runs): (&[usize], usize) = if quick {
        (&[20, 40], 1)
    } else {
        (&[1000, 2000, 4000], 5)
    };
    println!(
        "| services | steps | one pass | per 1,000 services | planner alone | pass / planner |"
    );
    println!("|---|---|---|---|---|---|");
    let mut first: Option<(usize, Duration)> = None;
    let mut last: Option<(usize, Duration)> = None;
    for &n in sizes {
        let mut plan = dr_examples::generated_plan(n);
        if let Some(sc) = plan.scenarios.first_mut() {
            // A trigger on the first database's primary: sampled on every pass.
            sc.trigger = Some(Trigger {
                databases: vec!["db0".into()],
                ..Trigger::on_health_checks(Vec::<String>::new())
            });
        }
        let config = SimConfig::default().with_latency(Duration::ZERO);
        let sim = Simulation::new(&plan, 1, config);
        let (providers, clock) = (sim.providers(), sim.cloud().clock());
        let factory = {
            let providers = providers.clone();
            move || Executor::new(providers.clone())
        };
        let watcher = match Watcher::new(plan.clone(), providers.clone()) {
            Ok(w) => w.clock(clock).executor(factory),
            Err(e) => {
                eprintln!("{e}");
                return std::process::ExitCode::FAILURE;
            }
        };
        let mut pass = Duration::MAX;
        let mut steps = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let tick = watcher.tick().await;
            pass = pass.min(t.elapsed());
            if tick.readiness.iter().any(|r| r.forecast.is_none()) {
                eprintln!("the generated plan did not plan: {:?}", tick.readiness);
                return std::process::ExitCode::FAILURE;
            }
        }
        let observed = ObservedState::observe(&plan, &providers, clock.now()).await;
        let planner_alone = min_time(runs, || {
            let t = Instant::now();
            if let Ok(g) = planner::plan(&plan, "failover", &observed) {
                steps = g.steps.len();
            }
            t.elapsed()
        });
        let per_k = pass.mul_f64(1000.0 / n as f64);
        println!(
            "| {n} | {steps} | {} | {} | {} | {:.2} |",
            ms(pass),
            ms(per_k),
            ms(planner_alone),
            pass.as_secs_f64() / planner_alone.as_secs_f64().max(1e-9)
        );
        first.get_or_insert((n, pass));
        last = Some((n, pass));
    }
    if let (Some((n0, t0)), Some((n1, t1))) = (first, last) {
        println!(
            "\nGrowth: t({n1})/t({n0}) = {:.2} for {:.1}x the services",
            t1.as_secs_f64() / t0.as_secs_f64().max(1e-9),
            n1 as f64 / n0 as f64
        );
    }
    std::process::ExitCode::SUCCESS
}
