//! Measurements behind `BENCHMARKS.md`:
//!
//! 1. every scenario of the bundled plan on the simulated cloud: achieved recovery time
//!    against the critical-path bound of the steps' actual durations (how close the executor
//!    comes to the best any scheduler could do), against the same steps run one after the
//!    other (a runbook by hand), and against the forecast;
//! 2. the same region failover under injected faults;
//! 3. the real time a simulated failover takes;
//! 4. planner throughput on a large generated plan.
//!
//! ```text
//! cargo run --release --example bench
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dr_core::duration::human;
use dr_core::executor::{Executor, RunReport};
use dr_core::plan::Plan;
use dr_core::planner::{self, ObservedState};
use dr_core::sim::{FaultConfig, SimConfig};
use dr_core::simulation::Simulation;
use dr_core::RecoveryGraph;
use dr_examples::{plans_dir, SimulatedOnCall};

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Longest chain of actual step durations ending in a critical step: no scheduler can finish
/// sooner given how long each step really took.
fn actual_bound(graph: &RecoveryGraph, report: &RunReport) -> Duration {
    let took: HashMap<&str, Duration> = report
        .steps
        .iter()
        .filter_map(|s| {
            Some((
                s.id.as_str(),
                (s.finished_at? - s.started_at?).to_std().ok()?,
            ))
        })
        .collect();
    let mut finish: HashMap<&str, Duration> = HashMap::new();
    let mut bound = Duration::ZERO;
    for step in &graph.steps {
        let start = step
            .depends_on
            .iter()
            .filter_map(|d| finish.get(d.as_str()).copied())
            .max()
            .unwrap_or_default();
        let end = start + took.get(step.id.as_str()).copied().unwrap_or_default();
        finish.insert(&step.id, end);
        if step.critical {
            bound = bound.max(end);
        }
    }
    bound
}

fn sequential(report: &RunReport) -> Duration {
    report
        .steps
        .iter()
        .filter_map(|s| (s.finished_at? - s.started_at?).to_std().ok())
        .sum()
}

async fn run(
    plan: &Plan,
    scenario: &str,
    fault_rate: f64,
    seed: u64,
) -> (RecoveryGraph, RunReport, Duration) {
    let (graph, report, real, _) = run_sim(plan, scenario, fault_rate, seed).await;
    (graph, report, real)
}

/// Non-idempotent effects that took place more than once on the same target.
fn repeated_effects(sim: &Simulation) -> usize {
    use dr_core::provider::Operation as O;
    let mut seen = std::collections::HashMap::new();
    for c in sim.cloud().calls() {
        let destructive = matches!(
            c.operation,
            O::Promote
                | O::Reboot
                | O::RestoreSnapshot
                | O::RestorePointInTime
                | O::CreateSnapshot
                | O::CreateReplica
                | O::RolloutRestart
                | O::RolloutUndo
        );
        if destructive && c.took_effect {
            *seen.entry((c.operation, c.target)).or_insert(0usize) += 1;
        }
    }
    seen.values().filter(|&&n| n > 1).count()
}

async fn run_sim(
    plan: &Plan,
    scenario: &str,
    fault_rate: f64,
    seed: u64,
) -> (RecoveryGraph, RunReport, Duration, Simulation) {
    let config = SimConfig::default().with_faults(FaultConfig::default().with_rate(fault_rate));
    let sim = Simulation::new(plan, seed, config);
    let sc = plan.scenario(scenario).expect("scenario");
    sim.inject(sc).await;
    let observed = sim.observe().await;
    let graph = planner::plan(plan, scenario, &observed).expect("plan");
    let real = Instant::now();
    let report = Executor::new(sim.providers())
        .clock(sim.cloud().clock())
        .seed(seed)
        .approvals(Arc::new(SimulatedOnCall {
            delay: Duration::from_secs(60),
        }))
        .run(&graph)
        .await;
    (graph, report, real.elapsed(), sim)
}

/// CPU time of this process so far (user + system), from `/proc/self/stat`; zero elsewhere.
fn cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the command name (which is in parentheses and may contain spaces).
    let Some(rest) = stat.rsplit(')').next() else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let total = ticks(11) + ticks(12);
    // Clock ticks are 100 per second on Linux.
    Duration::from_millis(total * 10)
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let plan = Plan::load(plans_dir().join("region-failover.yaml")).expect("bundled plan");
    println!(
        "## Scenarios of examples/plans/region-failover.yaml on the simulated cloud (seed 42)\n"
    );
    println!("| scenario | steps | achieved | critical-path bound (actual durations) | achieved / bound | sequential runbook | sequential / achieved | forecast | achieved / forecast | real time |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for sc in &plan.scenarios {
        let (graph, report, real) = run(&plan, &sc.name, 0.0, 42).await;
        assert!(report.succeeded(), "{}: {report}", sc.name);
        let bound = actual_bound(&graph, &report);
        let seq = sequential(&report);
        println!(
            "| {} | {} | {} | {} | {:.3} | {} | {:.2} | {} | {:.2} | {:.1} ms |",
            sc.name,
            graph.steps.len(),
            human(report.achieved_rto),
            human(bound),
            secs(report.achieved_rto) / secs(bound),
            human(seq),
            secs(seq) / secs(report.achieved_rto),
            human(graph.forecast),
            secs(report.achieved_rto) / secs(graph.forecast),
            real.as_secs_f64() * 1000.0
        );
    }

    println!("\n## Region failover under injected temporary faults (20 seeds each)\n");
    println!("| fault rate | succeeded | mean achieved | mean achieved / fault-free | mean attempts per step | retries per run | non-idempotent effects issued twice |");
    println!("|---|---|---|---|---|---|---|");
    let (_, clean, _) = run(&plan, "region-failover", 0.0, 42).await;
    for rate in [0.0, 0.1, 0.2, 0.3, 0.5] {
        let (mut ok, mut total, mut attempts, mut steps) = (0, Duration::ZERO, 0u64, 0u64);
        let (mut retries, mut twice) = (0u64, 0usize);
        for seed in 1..=20 {
            let (_, report, _, sim) = run_sim(&plan, "region-failover", rate, seed).await;
            retries += report.retries;
            twice += repeated_effects(&sim);
            if report.succeeded() {
                ok += 1;
                total += report.achieved_rto;
            }
            attempts += report
                .steps
                .iter()
                .map(|s| u64::from(s.attempts))
                .sum::<u64>();
            steps += report.steps.len() as u64;
        }
        let mean = total / ok.max(1);
        println!(
            "| {rate} | {ok}/20 | {} | {:.2} | {:.2} | {:.1} | {twice} |",
            human(mean),
            secs(mean) / secs(clean.achieved_rto),
            attempts as f64 / steps as f64,
            retries as f64 / 20.0
        );
    }

    println!("\n## Scheduling large failovers (fixed 300 ms per call, default limits)\n");
    println!("| services | steps | achieved | critical-path bound (actual durations) | achieved / bound | achieved without limits | achieved / without limits | sequential / achieved | real time | CPU per step |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut per_step = Vec::new();
    for n in [200, 1000] {
        let big = dr_examples::generated_plan(n);
        let config = SimConfig::default().with_latency(Duration::from_millis(300));
        let sim = Simulation::new(&big, 42, config);
        sim.inject(big.scenario("failover").expect("scenario"))
            .await;
        let observed = sim.observe().await;
        let graph = planner::plan(&big, "failover", &observed).expect("plan");
        let cpu = cpu_time();
        let real = Instant::now();
        let report = Executor::new(sim.providers())
            .clock(sim.cloud().clock())
            .seed(42)
            .run(&graph)
            .await;
        let (real, cpu) = (real.elapsed(), cpu_time().saturating_sub(cpu));
        assert!(report.succeeded(), "{report}");
        // The same failover on a fresh cloud with no per-target limits: what they cost.
        let free = {
            let config = SimConfig::default().with_latency(Duration::from_millis(300));
            let sim = Simulation::new(&big, 42, config);
            sim.inject(big.scenario("failover").expect("scenario"))
                .await;
            Executor::new(sim.providers())
                .clock(sim.cloud().clock())
                .seed(42)
                .limits(dr_core::executor::Limits::unlimited())
                .run(&graph)
                .await
        };
        assert!(free.succeeded(), "{free}");
        let bound = actual_bound(&graph, &report);
        let step_cpu = cpu.as_secs_f64() * 1e6 / graph.steps.len() as f64;
        per_step.push(step_cpu);
        println!(
            "| {n} | {} | {} | {} | {:.3} | {} | {:.3} | {:.1} | {:.0} ms | {step_cpu:.0} µs |",
            graph.steps.len(),
            human(report.achieved_rto),
            human(bound),
            secs(report.achieved_rto) / secs(bound),
            human(free.achieved_rto),
            secs(report.achieved_rto) / secs(free.achieved_rto),
            secs(sequential(&report)) / secs(report.achieved_rto),
            real.as_secs_f64() * 1000.0,
        );
    }
    println!(
        "\nCPU per step at 1,000 services / at 200: {:.2}",
        per_step[1] / per_step[0]
    );

    println!("\n## Planner throughput\n");
    println!("| services | steps | plans per second | steps planned per second |");
    println!("|---|---|---|---|");
    for n in [10, 100, 500] {
        let big = dr_examples::generated_plan(n);
        let observed = ObservedState::nominal(&big, chrono::Utc::now());
        let start = Instant::now();
        let mut count = 0u32;
        let mut steps = 0usize;
        while start.elapsed() < Duration::from_secs(1) || count < 3 {
            let g = planner::plan(&big, "failover", &observed).expect("plan");
            steps = g.steps.len();
            count += 1;
        }
        let per_sec = f64::from(count) / start.elapsed().as_secs_f64();
        println!(
            "| {n} | {steps} | {per_sec:.1} | {:.0} |",
            per_sec * steps as f64
        );
    }
}
