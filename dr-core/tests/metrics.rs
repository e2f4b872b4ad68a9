//! Metrics scraped after runs of the bundled region failover on the simulated cloud.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use dr_core::executor::{AutoApprove, Executor, RunReport};
use dr_core::metrics::RecoveryMetrics;
use dr_core::plan::Plan;
use dr_core::planner;
use dr_core::sim::{FaultConfig, SimConfig};
use dr_core::simulation::Simulation;

async fn run(metrics: &RecoveryMetrics, faults: FaultConfig, seed: u64) -> RunReport {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/plans/region-failover.yaml");
    let plan = Plan::load(&path).unwrap();
    let sim = Simulation::new(&plan, seed, SimConfig::default().with_faults(faults));
    sim.inject(plan.scenario("region-failover").unwrap()).await;
    let graph = planner::plan(&plan, "region-failover", &sim.observe().await).unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let follower = tokio::spawn(metrics.clone().follow(rx));
    let report = Executor::new(sim.providers())
        .clock(sim.cloud().clock())
        .seed(seed)
        .approvals(Arc::new(AutoApprove))
        .events(tx)
        .run(&graph)
        .await;
    follower.await.unwrap();
    metrics.observe_report(&report);
    report
}

/// The value of the sample `name{labels}` in the exposition text.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn scrape_after_runs() {
    let metrics = RecoveryMetrics::new();
    let clean = run(&metrics, FaultConfig::default(), 7).await;
    assert!(clean.targets_met(), "{clean}");
    let text = metrics.encode();

    let labels = "{plan=\"shop-web\",scenario=\"region-failover\"}";
    assert_eq!(
        sample(&text, &format!("failover_time_seconds{labels}")),
        clean.achieved_rto.as_secs_f64()
    );
    assert_eq!(
        sample(&text, &format!("recovery_test_results{labels}")),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "recovery_runs_total{plan=\"shop-web\",scenario=\"region-failover\",outcome=\"succeeded\"}"
        ),
        1.0
    );
    assert_eq!(sample(&text, "recovery_runs_in_progress"), 0.0);
    let api = clean.service("api").unwrap();
    assert_eq!(
        sample(
            &text,
            "recovery_rto_seconds{service=\"api\",value=\"target\"}"
        ),
        900.0
    );
    assert_eq!(
        sample(
            &text,
            "recovery_rto_seconds{service=\"api\",value=\"achieved\"}"
        ),
        api.achieved_rto.unwrap().as_secs_f64()
    );
    assert_eq!(
        sample(
            &text,
            "recovery_rpo_seconds{service=\"api\",value=\"achieved\"}"
        ),
        api.achieved_rpo.unwrap().as_secs_f64()
    );
    assert_eq!(sample(&text, "recovery_targets_met{service=\"api\"}"), 1.0);
    let promotes = clean
        .steps
        .iter()
        .filter(|s| s.action == "promote_replica")
        .count();
    assert_eq!(
        sample(
            &text,
            "recovery_step_duration_seconds_count{kind=\"promote_replica\"}"
        ),
        promotes as f64
    );
    assert!(text.contains("# TYPE recovery_step_duration_seconds histogram"));
    assert!(text.contains("# TYPE backup_success_rate gauge"));

    // A second run with temporary faults: retries are counted, live and by kind.
    let flaky = run(&metrics, FaultConfig::default().with_rate(0.3), 11).await;
    let text = metrics.encode();
    let retried: u64 = flaky
        .steps
        .iter()
        .map(|s| u64::from(s.attempts.saturating_sub(1)))
        .sum();
    assert!(retried > 0, "{flaky}");
    let by_kind: f64 = text
        .lines()
        .filter(|l| l.starts_with("recovery_step_retries_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(by_kind, retried as f64, "{text}");
    assert!(sample(&text, "recovery_retries_total") >= retried as f64);
    let runs = if flaky.succeeded() { 2.0 } else { 1.0 };
    assert_eq!(
        sample(
            &text,
            "recovery_runs_total{plan=\"shop-web\",scenario=\"region-failover\",outcome=\"succeeded\"}"
        ),
        runs
    );
}
