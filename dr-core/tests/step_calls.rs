//! Every built-in step kind makes, when it runs, exactly the provider calls its description
//! lists — the list preflight checks and the dry run shows — on the simulated cloud.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::Arc;

use dr_core::executor::{AutoApprove, Executor};
use dr_core::plan::{DbStrategy, Plan, ScenarioKind};
use dr_core::planner;
use dr_core::sim::SimConfig;
use dr_core::simulation::Simulation;

/// Consecutive repeats collapsed: a wait polls the same read many times.
fn collapse(calls: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for c in calls {
        if out.last() != Some(&c) {
            out.push(c);
        }
    }
    out
}

#[tokio::test(start_paused = true)]
async fn every_kind_calls_what_it_declares() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/plans/region-failover.yaml"
    );
    let mut plan = Plan::load(path).unwrap();
    // The database failure by reboot and by restore too (the bundled one promotes).
    let db = plan.scenario("database-failure").unwrap().clone();
    for (name, strategy) in [
        ("by-reboot", DbStrategy::Reboot),
        ("by-restore", DbStrategy::Restore),
    ] {
        let mut sc = db.clone();
        sc.name = name.into();
        if let ScenarioKind::DatabaseFailure(k) = &mut sc.kind {
            k.strategy = strategy;
        }
        plan.scenarios.push(sc);
    }
    let mut kinds = BTreeSet::new();
    check_every_scenario(&plan, &mut kinds).await;
    let failback = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/plans/failback.yaml"
    );
    check_every_scenario(&Plan::load(failback).unwrap(), &mut kinds).await;
    let cache = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/plans/cache-failure.yaml"
    );
    check_every_scenario(&Plan::load(cache).unwrap(), &mut kinds).await;
    let outage = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/plans/provider-outage.yaml"
    );
    check_every_scenario(&Plan::load(outage).unwrap(), &mut kinds).await;
    let missing: Vec<&str> = dr_core::step::BUILTIN_KINDS
        .iter()
        .copied()
        .filter(|k| !kinds.contains(*k) && !["webhook", "command"].contains(k))
        .collect();
    assert!(
        missing.is_empty(),
        "kinds no bundled scenario covers: {missing:?}"
    );
}

/// Runs every scenario of `plan` one step at a time and compares each step's calls with its
/// description; adds the kinds seen to `kinds`.
async fn check_every_scenario(plan: &Plan, kinds: &mut BTreeSet<String>) {
    for sc in &plan.scenarios {
        let sim = Simulation::new(plan, 3, SimConfig::default());
        // A reboot recovers a database that is stuck, not one that is lost: nothing injected.
        if sc.name != "by-reboot" {
            sim.inject(sc).await;
        }
        let observed = sim.observe().await;
        let graph = planner::plan(plan, &sc.name, &observed).unwrap();
        let before = sim.cloud().calls().len();
        // One step at a time, so the cloud's call log is the steps' calls in order.
        let mut executor = Executor::new(sim.providers())
            .clock(sim.cloud().clock())
            .concurrency(1)
            .approvals(Arc::new(AutoApprove));
        // The restores lose more than the RPOs: accepted, since this test is about calls.
        for s in &plan.services {
            executor = executor.accept_data_loss(&s.name, std::time::Duration::from_secs(86_400));
        }
        assert!(executor.preflight(&graph).is_empty(), "{}", sc.name);
        let dry = executor.dry_run(&graph);
        let report = executor.run(&graph).await;
        assert!(report.succeeded(), "{}: {report}", sc.name);
        assert!(report.steps.iter().all(|s| !s.already_done), "{}", sc.name);
        // Steps ran one at a time: each call belongs to the step running when it completed.
        let mut by_start: Vec<_> = report.steps.iter().collect();
        by_start.sort_by_key(|s| s.started_at);
        let calls = sim.cloud().calls();
        for step in &dry.steps {
            let planned: Vec<(String, String)> = step
                .calls
                .iter()
                // Approvals, programs and HTTP requests do not go through the cloud.
                .filter(|c| !["approval", "process", "http"].contains(&c.provider_role.as_str()))
                .map(|c| (c.provider_role.clone(), c.operation.clone()))
                .collect();
            let made: Vec<(String, String)> = calls[before..]
                .iter()
                .filter(|c| {
                    by_start
                        .iter()
                        .find(|r| {
                            r.started_at.is_some_and(|t| t <= c.at)
                                && r.finished_at.is_some_and(|t| c.at <= t)
                        })
                        .is_some_and(|r| r.id == step.id)
                })
                .map(|c| (c.provider_role.clone(), c.operation.name().to_string()))
                .collect();
            assert_eq!(
                collapse(planned),
                collapse(made),
                "scenario {}, step {} [{}]: the calls made differ from the calls declared",
                sc.name,
                step.id,
                step.action
            );
        }
        kinds.extend(graph.steps.iter().map(|s| s.action.kind().to_string()));
    }
}
