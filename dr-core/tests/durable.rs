//! A durable run on the simulated cloud: the journal, resume, the lease, the RPO gate and
//! compensation, through the public API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use dr_core::executor::{AutoApprove, Executor, StepStatus};
use dr_core::journal::{InMemoryJournal, Journal, Loaded, Record};
use dr_core::plan::Plan;
use dr_core::planner;
use dr_core::provider::{InMemoryLease, Lease, LeaseGuard, Operation};
use dr_core::sim::{FaultConfig, FaultRule, SimConfig};
use dr_core::simulation::Simulation;
use dr_core::testkit::journal::{crash_after_trip, Tripwire};
use dr_core::{Error, RecoveryGraph};

fn plan() -> Plan {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/plans/region-failover.yaml");
    Plan::load(path).unwrap()
}

async fn setup(scenario: &str, config: SimConfig) -> (Simulation, RecoveryGraph) {
    let plan = plan();
    let sim = Simulation::new(&plan, 5, config);
    sim.inject(plan.scenario(scenario).unwrap()).await;
    let observed = sim.observe().await;
    let graph = planner::plan(&plan, scenario, &observed).unwrap();
    (sim, graph)
}

fn executor(sim: &Simulation) -> Executor {
    Executor::new(sim.providers())
        .clock(sim.cloud().clock())
        .approvals(Arc::new(AutoApprove))
}

fn effects(sim: &Simulation, op: Operation) -> usize {
    sim.cloud()
        .calls()
        .iter()
        .filter(|c| c.took_effect && c.operation == op)
        .count()
}

#[tokio::test(start_paused = true)]
async fn a_journaled_run_records_intents_before_calls_and_every_outcome() {
    let (sim, graph) = setup("region-failover", SimConfig::default()).await;
    let journal = Arc::new(InMemoryJournal::new());
    let report = executor(&sim)
        .journal(journal.clone())
        .run_id("run-1")
        .start(&graph)
        .await
        .unwrap();
    assert!(report.succeeded(), "{report}");
    assert_eq!(report.run_id.as_deref(), Some("run-1"));
    let loaded = journal.load().await.unwrap();
    assert!(!loaded.torn_tail);
    let Record::Started { run_id, digest, .. } = &loaded.records[0] else {
        panic!("{:?}", loaded.records[0])
    };
    assert_eq!(run_id, "run-1");
    assert_eq!(*digest, dr_core::executor::graph_digest(&graph));
    assert!(matches!(
        loaded.records.last(),
        Some(Record::Finished { .. })
    ));
    // Every step that ran has an outcome, and an intent before it unless it was already done.
    for s in report
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::Succeeded)
    {
        let pos = |want: &str| {
            loaded
                .records
                .iter()
                .position(|r| r.step() == Some(&s.id) && record_kind(r) == want)
        };
        let outcome = pos("outcome").unwrap_or_else(|| panic!("no outcome for {}", s.id));
        if !s.already_done && s.action != "approval" {
            let intent = pos("intent").unwrap_or_else(|| panic!("no intent for {}", s.id));
            assert!(intent < outcome, "{}", s.id);
        }
    }
    // A journal already holding a run is not started again.
    let err = executor(&sim)
        .journal(journal)
        .start(&graph)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already holds run run-1"), "{err}");
}

fn record_kind(r: &Record) -> &'static str {
    match r {
        Record::Intent { .. } => "intent",
        Record::Outcome { .. } => "outcome",
        _ => "other",
    }
}

#[tokio::test(start_paused = true)]
async fn resume_refuses_a_journal_of_another_graph_or_none() {
    let (sim, graph) = setup("region-failover", SimConfig::default()).await;
    let journal = Arc::new(InMemoryJournal::new());
    executor(&sim)
        .journal(journal.clone())
        .start(&graph)
        .await
        .unwrap();
    let (_, other) = setup("database-failure", SimConfig::default()).await;
    let before = sim.cloud().calls().len();
    let err = executor(&sim)
        .journal(journal)
        .resume(&other)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("written for another graph"),
        "{err}"
    );
    assert_eq!(sim.cloud().calls().len(), before, "nothing was called");

    let err = executor(&sim)
        .journal(Arc::new(InMemoryJournal::new()))
        .resume(&graph)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("journal is empty"), "{err}");
    let err = executor(&sim).resume(&graph).await.unwrap_err();
    assert!(err.to_string().contains("no journal"), "{err}");
}

/// A journal whose appends fail after the first `ok`.
#[derive(Debug)]
struct Failing {
    inner: InMemoryJournal,
    ok: usize,
    count: AtomicUsize,
}

#[async_trait]
impl Journal for Failing {
    async fn append(&self, record: &Record) -> dr_core::Result<()> {
        if self.count.fetch_add(1, Ordering::SeqCst) >= self.ok {
            return Err(Error::io(
                "disk full",
                std::io::Error::other("no space left on device"),
            ));
        }
        self.inner.append(record).await
    }
    async fn load(&self) -> dr_core::Result<Loaded> {
        self.inner.load().await
    }
}

#[tokio::test(start_paused = true)]
async fn a_journal_that_cannot_be_written_stops_the_run_before_the_call() {
    let (sim, graph) = setup("region-failover", SimConfig::default()).await;
    let start = sim.cloud().calls().len();
    let report = executor(&sim)
        .journal(Arc::new(Failing {
            inner: InMemoryJournal::new(),
            ok: 1,
            count: AtomicUsize::new(0),
        }))
        .run(&graph)
        .await;
    assert!(!report.succeeded());
    assert!(
        report.error.as_deref().unwrap_or("").contains("journal"),
        "{report}"
    );
    // Only read-backs (prepare) may have run: no change was made without its intent.
    let changes: Vec<_> = sim.cloud().calls()[start..]
        .iter()
        .filter(|c| c.took_effect && !is_read(c.operation))
        .map(|c| format!("{} {}", c.operation, c.target))
        .collect();
    assert!(changes.is_empty(), "{changes:?}");
}

fn is_read(op: Operation) -> bool {
    matches!(
        op,
        Operation::Describe
            | Operation::Get
            | Operation::Head
            | Operation::List
            | Operation::GetRecord
            | Operation::ListSnapshots
            | Operation::DescribeSnapshot
            | Operation::RolloutStatus
            | Operation::ReadSecret
            | Operation::Probe
            | Operation::HealthCheckStatus
            | Operation::WaitChange
    )
}

#[tokio::test(start_paused = true)]
async fn a_second_runner_does_nothing_while_the_lease_is_held() {
    let (sim, graph) = setup("region-failover", SimConfig::default()).await;
    let lease = Arc::new(InMemoryLease::new());
    let _held = lease
        .acquire("runner-a@host-1", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    let before = sim.cloud().calls().len();
    let err = executor(&sim)
        .lease(lease.clone(), "runner-b@host-2", Duration::from_secs(60))
        .start(&graph)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("held by runner-a@host-1"), "{err}");
    assert_eq!(sim.cloud().calls().len(), before);
    // `run` says the same in a failed report, having called nothing.
    let report = executor(&sim)
        .lease(lease, "runner-b@host-2", Duration::from_secs(60))
        .run(&graph)
        .await;
    assert!(!report.succeeded());
    assert!(report.steps.iter().all(|s| s.status == StepStatus::NotRun));
    assert_eq!(sim.cloud().calls().len(), before);
}

/// A lease that is lost at its first renewal.
#[derive(Debug, Default)]
struct Stolen(InMemoryLease);

#[async_trait]
impl Lease for Stolen {
    async fn acquire(&self, holder: &str, ttl: Duration) -> dr_core::Result<Option<LeaseGuard>> {
        self.0.acquire(holder, ttl).await
    }
    async fn renew(&self, guard: &LeaseGuard) -> dr_core::Result<LeaseGuard> {
        Err(Error::InvalidState {
            provider: "test".into(),
            resource: "lease".into(),
            state: format!("taken from {}", guard.holder),
            operation: "renew".into(),
        })
    }
    async fn release(&self, guard: LeaseGuard) -> dr_core::Result<()> {
        self.0.release(guard).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_runner_that_loses_its_lease_stops_calling() {
    let (sim, graph) = setup("region-failover", SimConfig::default()).await;
    let clock = sim.cloud().clock();
    let ttl = Duration::from_secs(90);
    let report = executor(&sim)
        .lease(Arc::new(Stolen::default()), "runner-a", ttl)
        .run(&graph)
        .await;
    assert!(!report.succeeded(), "{report}");
    assert_eq!(report.fencing_token, Some(1));
    // The renewal at ttl/3 found the lease gone: nothing was called after it.
    let lost_at = report.started_at + chrono::Duration::from_std(ttl / 3).unwrap();
    let late: Vec<_> = sim
        .cloud()
        .calls()
        .into_iter()
        .filter(|c| c.at > lost_at + chrono::Duration::seconds(1))
        .map(|c| format!("{} {} at {}", c.operation, c.target, c.at))
        .collect();
    assert!(late.is_empty(), "{late:?}");
    assert!(clock.now() > lost_at);
    let refused = report
        .steps
        .iter()
        .filter_map(|s| s.error.as_deref())
        .any(|e| e.contains("lease"));
    assert!(refused, "{report}");
}

#[tokio::test(start_paused = true)]
async fn a_crash_after_a_call_resumes_against_what_the_step_remembered() {
    // The rollback's call is made, then the process dies before its outcome is journaled.
    // Read back afresh, "previous revision" would roll back once more and redeploy the bad
    // release; read back with the revision remembered before the call, it is done.
    let (sim, graph) = setup("application-rollback", SimConfig::default()).await;
    let undo = graph
        .steps
        .iter()
        .find(|s| s.action.kind() == "rollout_undo")
        .expect("a rollback step");
    let wire = {
        let undo = undo.id.clone();
        Arc::new(Tripwire::when(
            move |r| matches!(r, Record::Intent { step, .. } if *step == undo),
        ))
    };
    let first = executor(&sim).journal(wire.clone());
    // After the intent, the run goes on until its next append, which never returns: the
    // rollback's call is made, its outcome never written. Then the process dies.
    assert!(crash_after_trip(&first, &graph, &wire, Duration::from_secs(600)).await);
    drop(first);
    assert_eq!(effects(&sim, Operation::RolloutUndo), 1);

    let report = executor(&sim)
        .journal(wire.survivor())
        .resume(&graph)
        .await
        .unwrap();
    assert!(report.succeeded(), "{report}");
    assert!(report.resumed);
    let step = report.step(&undo.id).unwrap();
    assert!(step.already_done, "{report}");
    assert_eq!(
        effects(&sim, Operation::RolloutUndo),
        1,
        "rolled back twice"
    );
}

#[tokio::test(start_paused = true)]
async fn the_rpo_gate_refuses_a_promotion_beyond_the_rpo_unless_accepted() {
    let plan = plan();
    let lagging = || async {
        let sim = Simulation::new(&plan, 5, SimConfig::default());
        sim.inject(plan.scenario("region-failover").unwrap()).await;
        // The replica is 20 minutes behind right now.
        for db in &plan.databases {
            for r in &db.replicas {
                sim.cloud().set_replication_lag(
                    &dr_core::provider::DbRef::new(&r.region, &r.id),
                    Duration::from_secs(20 * 60),
                );
            }
        }
        let observed = sim.observe().await;
        let graph = planner::plan(&plan, "region-failover", &observed).unwrap();
        (sim, graph)
    };
    let (sim, graph) = lagging().await;
    let report = executor(&sim).run(&graph).await;
    assert!(!report.succeeded());
    let promote = report
        .steps
        .iter()
        .find(|s| s.action == "promote_replica")
        .unwrap_or_else(|| panic!("{report}"));
    let error = promote.error.as_deref().unwrap();
    assert!(error.contains("rpo gate refused"), "{error}");
    assert!(error.contains("20m"), "{error}");
    assert_eq!(effects(&sim, Operation::Promote), 0);

    let (sim, graph) = lagging().await;
    let journal = Arc::new(InMemoryJournal::new());
    let mut e = executor(&sim).journal(journal.clone());
    for s in &plan.services {
        e = e.accept_data_loss(&s.name, Duration::from_secs(25 * 60));
    }
    let report = e.run(&graph).await;
    assert!(report.succeeded(), "{report}");
    assert_eq!(effects(&sim, Operation::Promote), 1);
    assert!(!report.overrides.is_empty());
    assert!(report.to_string().contains("Overrides:"));
    let overrides = journal
        .load()
        .await
        .unwrap()
        .records
        .into_iter()
        .filter(|r| matches!(r, Record::Override { gate, .. } if gate == "rpo"))
        .count();
    assert_eq!(overrides, report.overrides.len());
}

#[tokio::test(start_paused = true)]
async fn compensation_undoes_what_ran_in_reverse_order() {
    // The API's public health check fails for good: its verification after the DNS switch
    // fails (the DNS targets themselves probe healthy, so the switch is allowed).
    let faults = FaultConfig::default().with_permanent(FaultRule::new(
        Some(Operation::Probe),
        "://api.shop.example.com",
    ));
    let (sim, graph) = setup("region-failover", SimConfig::default().with_faults(faults)).await;
    let zone_values = |sim: &Simulation| {
        let dns = sim.cloud().dns();
        async move {
            dns.get_record("Z0SHOP", "api.shop.example.com")
                .await
                .unwrap()
                .values
        }
    };
    let before = zone_values(&sim).await;
    let report = executor(&sim).compensate_on_failure(true).run(&graph).await;
    assert!(!report.succeeded(), "{report}");
    assert!(!report.compensated.is_empty(), "{report}");
    let undone: Vec<&str> = report
        .compensated
        .iter()
        .filter(|c| c.compensated)
        .map(|c| c.action.as_str())
        .collect();
    assert!(undone.contains(&"switch_dns"), "{report}");
    // What cannot be undone is listed with why.
    assert!(report.compensated.iter().any(|c| !c.compensated
        && c.reason
            .as_deref()
            .unwrap_or("")
            .contains("cannot be undone")));
    assert_eq!(zone_values(&sim).await, before, "the record points back");
    // Reverse order of completion.
    let finished = |id: &str| report.step(id).and_then(|s| s.finished_at);
    let order: Vec<_> = report
        .compensated
        .iter()
        .map(|c| finished(&c.step))
        .collect();
    assert!(order.windows(2).all(|w| w[0] >= w[1]), "{order:?}");
}

/// The plan, with `compensate_on_failure` set on `scenario`, planned on a simulation whose
/// API health check fails for good (its verification fails).
async fn compensating(scenario: &str) -> (Simulation, RecoveryGraph) {
    let mut plan = plan();
    plan.scenarios
        .iter_mut()
        .find(|s| s.name == scenario)
        .unwrap()
        .compensate_on_failure = true;
    let faults = FaultConfig::default().with_permanent(FaultRule::new(
        Some(Operation::Probe),
        "://api.shop.example.com",
    ));
    let sim = Simulation::new(&plan, 5, SimConfig::default().with_faults(faults));
    sim.inject(plan.scenario(scenario).unwrap()).await;
    let observed = sim.observe().await;
    let graph = planner::plan(&plan, scenario, &observed).unwrap();
    assert!(graph.compensate_on_failure);
    (sim, graph)
}

#[tokio::test(start_paused = true)]
async fn a_scenario_that_asks_for_compensation_scales_workloads_back() {
    let (sim, graph) = compensating("region-failover").await;
    let api = dr_core::provider::WorkloadRef::deployment("dr-west", "shop", "api");
    let cluster = sim.cloud().cluster();
    let before = cluster.rollout_status(&api).await.unwrap().replicas;
    // No compensate_on_failure call: the plan's scenario asks for it.
    let report = executor(&sim).run(&graph).await;
    assert!(!report.succeeded(), "{report}");
    let undone = |kind: &str| {
        report
            .compensated
            .iter()
            .filter(|c| c.action == kind && c.compensated)
            .count()
    };
    assert!(undone("switch_dns") >= 1, "{report}");
    assert!(undone("scale") >= 1, "{report}");
    // The standby's replica count from before the failover, read back from the cluster.
    assert_eq!(cluster.rollout_status(&api).await.unwrap().replicas, before);
    assert_ne!(
        before, 3,
        "the standby runs fewer replicas than the failover asks"
    );
    // The executor's own setting overrides the scenario's.
    let (sim, graph) = compensating("region-failover").await;
    let report = executor(&sim)
        .compensate_on_failure(false)
        .run(&graph)
        .await;
    assert!(report.compensated.is_empty(), "{report}");
}

#[tokio::test(start_paused = true)]
async fn compensating_a_rollback_rolls_forward_to_the_revision_from_before() {
    let (sim, graph) = compensating("application-rollback").await;
    let cluster = sim.cloud().cluster();
    let image = |sim: &Simulation| {
        let cluster = sim.cloud().cluster();
        async move {
            let manifests = cluster
                .export("prod-east", "shop", &["Deployment".to_string()])
                .await
                .unwrap();
            let api = manifests.iter().find(|m| m.name == "api").unwrap();
            api.body.contains("api:bad-release")
        }
    };
    let api = dr_core::provider::WorkloadRef::deployment("prod-east", "shop", "api");
    let revision = cluster.rollout_status(&api).await.unwrap().revision;
    assert!(image(&sim).await, "the bad release is live before the run");
    let report = executor(&sim).run(&graph).await;
    assert!(!report.succeeded(), "{report}");
    let undo = report
        .compensated
        .iter()
        .find(|c| c.action == "rollout_undo")
        .unwrap_or_else(|| panic!("{report}"));
    assert!(undo.compensated, "{undo:?}");
    // Rolled back (one revision), then forward again to the release from before (another).
    let after = cluster.rollout_status(&api).await.unwrap().revision;
    assert_eq!(after, revision + 2);
    assert!(
        image(&sim).await,
        "compensation restored the release from before"
    );
}

#[tokio::test(start_paused = true)]
async fn the_healthy_target_interlock_needs_a_health_check_and_probes_each_new_target() {
    // A service whose DNS record has no health check to judge its targets by: the plan
    // cannot promise the invariant, which is said before anything runs.
    let mut plan = plan();
    plan.services
        .iter_mut()
        .find(|s| s.name == "voice")
        .unwrap()
        .health_check = None;
    let sim = Simulation::new(&plan, 5, SimConfig::default());
    let observed = sim.observe().await;
    let err = planner::plan(&plan, "region-failover", &observed).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("service `voice`"), "{msg}");
    assert!(msg.contains("healthy-target"), "{msg}");
    assert!(msg.contains("voice.shop.example.com"), "{msg}");

    // With every check present, each switch probes its new target right before the switch:
    // the API's DR target fails its check, so its record is not switched; the others are.
    let (sim, graph) = setup("region-failover", SimConfig::default()).await;
    sim.cloud().set_endpoint_health(
        "https://lb.us-west-2.shop.example.com/health",
        dr_core::provider::HealthStatus::Unhealthy,
    );
    let dns = sim.cloud().dns();
    let before = dns
        .get_record("Z0SHOP", "api.shop.example.com")
        .await
        .unwrap()
        .values;
    let report = executor(&sim).run(&graph).await;
    assert!(!report.succeeded(), "{report}");
    // The API and the voice service share that target: whichever switch comes first is
    // refused (the run stops there), and neither record moves.
    let refused: Vec<&str> = [
        "api/dns:api.shop.example.com",
        "voice/dns:voice.shop.example.com",
    ]
    .into_iter()
    .filter(|id| {
        report
            .step(id)
            .and_then(|s| s.error.as_deref())
            .is_some_and(|e| e.contains("healthy-target gate refused"))
    })
    .collect();
    assert!(!refused.is_empty(), "{report}");
    for id in [
        "api/dns:api.shop.example.com",
        "voice/dns:voice.shop.example.com",
    ] {
        let status = report.step(id).map(|s| s.status);
        assert_ne!(status, Some(StepStatus::Succeeded), "{id}: {report}");
    }
    assert_eq!(
        dns.get_record("Z0SHOP", "api.shop.example.com")
            .await
            .unwrap()
            .values,
        before,
        "the record was not switched"
    );
    let probed = sim
        .cloud()
        .calls()
        .iter()
        .filter(|c| {
            c.operation == Operation::Probe
                && c.target == "https://lb.us-west-2.shop.example.com/health"
        })
        .count();
    assert!(probed >= 1);
}
