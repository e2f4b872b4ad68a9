//! Property tests of crash and resume: random scenarios of the bundled plan × random fault
//! schedules × a crash right after a random journal record (the run is dropped where it
//! stands, at once or after the calls it had announced were made, its journal holding
//! exactly the records written so far), followed by a resume on
//! a fresh executor. Whatever the crash point: no step starts before its dependencies, no
//! non-idempotent operation takes effect twice, no journal record is lost, and a resumed run
//! that succeeds leaves the cloud with the same effects as an uninterrupted one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use dr_core::executor::{AutoApprove, Executor, RunReport};
use dr_core::plan::Plan;
use dr_core::planner;
use dr_core::provider::Operation;
use dr_core::sim::{FaultConfig, FaultRule, SimCall, SimConfig};
use dr_core::simulation::Simulation;
use dr_core::testkit::journal::Tripwire;
use dr_tests::{bundled_plan, NON_IDEMPOTENT, SCENARIOS};
use proptest::prelude::*;

const READS: [Operation; 18] = [
    Operation::Get,
    Operation::Head,
    Operation::List,
    Operation::GetRecord,
    Operation::WaitChange,
    Operation::HealthCheckStatus,
    Operation::ReadSecret,
    Operation::RolloutStatus,
    Operation::Describe,
    Operation::Probe,
    Operation::DescribeSnapshot,
    Operation::ListSnapshots,
    Operation::GetVersioned,
    Operation::FindVolumeSnapshots,
    Operation::DescribeVolumeSnapshot,
    Operation::GetSecretValue,
    Operation::DescribeCache,
    Operation::ListCacheBackups,
];

fn executor(sim: &Simulation, seed: u64, plan: &Plan) -> Executor {
    let mut e = Executor::new(sim.providers())
        .clock(sim.cloud().clock())
        .seed(seed)
        .approvals(Arc::new(AutoApprove));
    for s in &plan.services {
        e = e.accept_data_loss(&s.name, Duration::from_secs(7 * 86_400));
    }
    e
}

fn effects(calls: &[SimCall]) -> BTreeMap<(Operation, String), usize> {
    let mut out = BTreeMap::new();
    for c in calls.iter().filter(|c| c.took_effect) {
        if READS.contains(&c.operation) {
            continue;
        }
        *out.entry((c.operation, c.target.clone())).or_default() += 1;
    }
    out
}

struct Case {
    report: RunReport,
    calls: Vec<SimCall>,
    records: usize,
    records_at_crash: Option<usize>,
}

async fn run_case(
    plan: &Plan,
    scenario: &str,
    seed: u64,
    faults: FaultConfig,
    crash_after: Option<usize>,
    grace: Duration,
) -> (Case, dr_core::RecoveryGraph) {
    let sim = Simulation::new(plan, seed, SimConfig::default().with_faults(faults));
    sim.inject(plan.scenario(scenario).unwrap()).await;
    let observed = sim.observe().await;
    let graph = planner::plan(plan, scenario, &observed).unwrap();
    let wire = Arc::new(Tripwire::new(crash_after.unwrap_or(usize::MAX)));
    let first = executor(&sim, seed, plan).journal(wire.clone());
    let finished = tokio::select! {
        r = first.start(&graph) => Some(r.unwrap()),
        // After the wire trips, the run goes on for `grace` (calls already announced are
        // made; every further append hangs), then dies.
        () = async {
            wire.tripped().await;
            tokio::time::sleep(grace).await;
        } => None,
    };
    drop(first);
    let (report, records_at_crash) = match finished {
        Some(report) => (report, None),
        None => {
            // The crash: what is in the journal is all that survives of the run.
            let n = wire.records().await;
            let again = wire.survivor();
            let report = executor(&sim, seed ^ 1, plan)
                .journal(again)
                .resume(&graph)
                .await
                .unwrap();
            (report, Some(n))
        }
    };
    let records = wire.records().await;
    (
        Case {
            report,
            calls: sim.cloud().calls(),
            records,
            records_at_crash,
        },
        graph,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn a_crash_at_any_record_then_resume_is_safe(
        seed in any::<u64>(),
        scenario in 0..SCENARIOS.len(),
        rate in 0.0f64..0.3,
        lost_replies in prop::collection::vec(0..NON_IDEMPOTENT.len(), 0..3),
        crash_at_f in 0.0f64..1.0,
        grace in prop_oneof![Just(0u64), 1u64..600],
    ) {
        let plan = bundled_plan();
        let mut faults = FaultConfig::default().with_rate(rate);
        for i in lost_replies {
            faults = faults.with_fail_after_effect(FaultRule::new(Some(NON_IDEMPOTENT[i]), "").times(1));
        }
        let scenario = SCENARIOS[scenario];
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let mut crash_at = 0;
        let ((base, _), (case, graph)) = rt.block_on(async {
            let base = run_case(&plan, scenario, seed, faults.clone(), None, Duration::ZERO).await;
            // A crash after any record but the run's last, which ends it.
            crash_at = 1 + (crash_at_f * (base.0.records - 1) as f64) as usize;
            let case = run_case(&plan, scenario, seed, faults, Some(crash_at), Duration::from_secs(grace)).await;
            (base, case)
        });

        // The run crashed where asked, and no journal record was lost.
        prop_assert_eq!(case.records_at_crash, Some(crash_at), "{} records in all", base.records);
        prop_assert!(case.report.resumed);

        // No step before its dependencies (across the crash: finished steps keep their times).
        let steps: HashMap<&str, _> = case.report.steps.iter().map(|s| (s.id.as_str(), s)).collect();
        for step in &graph.steps {
            let Some(started) = steps[step.id.as_str()].started_at else { continue };
            for dep in &step.depends_on {
                let d = steps[dep.as_str()];
                let finished = d.finished_at.ok_or_else(|| TestCaseError::fail(format!("{} started before {dep} finished", step.id)))?;
                prop_assert!(finished <= started, "{} started at {started} before {dep} finished at {finished}", step.id);
            }
        }

        // No non-idempotent effect twice.
        let got = effects(&case.calls);
        for ((op, target), n) in &got {
            if NON_IDEMPOTENT.contains(op) {
                prop_assert!(*n <= 1, "{op} took effect {n} times on {target} in {scenario} (seed {seed}, crash at {crash_at})");
            }
        }

        // Both succeeded: the same effects on the cloud.
        if base.report.succeeded() && case.report.succeeded() {
            let keys = |m: &BTreeMap<(Operation, String), usize>| m.keys().cloned().collect::<BTreeSet<_>>();
            prop_assert_eq!(keys(&got), keys(&effects(&base.calls)), "{} (seed {}, crash at {})", scenario, seed, crash_at);
        }
        // Without faults, a crash changes nothing about the outcome.
        if rate == 0.0 {
            prop_assert_eq!(base.report.succeeded(), case.report.succeeded());
        }
    }
}
