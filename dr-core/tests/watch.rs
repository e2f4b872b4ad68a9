//! The watcher on the simulated cloud: detection with hysteresis, the decision (start, ask,
//! decline, already running), the triggered run, re-arming, readiness and its metrics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use dr_core::executor::{ApprovalHook, ApprovalRequest, AutoApprove, Decision, Executor};
use dr_core::plan::{Plan, Trigger, TriggerStart};
use dr_core::provider::{DbRef, InMemoryLease, Lease};
use dr_core::sim::SimConfig;
use dr_core::simulation::Simulation;
use dr_core::watch::{WatchDecision, WatchEvent, WatchMetrics, Watcher};

const MINUTE: Duration = Duration::from_secs(60);

/// The bundled plan's region failover.
fn failover(plan: &mut Plan) -> &mut dr_core::plan::Scenario {
    plan.scenarios
        .iter_mut()
        .find(|s| s.name == "region-failover")
        .unwrap()
}

fn plan(start: TriggerStart) -> Plan {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/plans/region-failover.yaml");
    let mut plan = Plan::load(path).unwrap();
    failover(&mut plan).trigger = Some(Trigger {
        failures: 3,
        recover_after: 2,
        start,
        ..Trigger::on_health_checks(["api-health", "www-health"])
    });
    plan
}

fn watcher(plan: Plan, sim: &Simulation) -> Watcher {
    let (providers, clock) = (sim.providers(), sim.cloud().clock());
    let factory = {
        let (providers, clock) = (providers.clone(), clock);
        move || {
            Executor::new(providers.clone())
                .clock(clock)
                .approvals(Arc::new(AutoApprove))
        }
    };
    Watcher::new(plan, providers)
        .unwrap()
        .clock(clock)
        .interval(MINUTE)
        .executor(factory)
}

#[derive(Debug)]
struct Refuse;

#[async_trait]
impl ApprovalHook for Refuse {
    async fn decide(&self, request: &ApprovalRequest) -> dr_core::Result<Decision> {
        assert!(
            request.prompt.contains("trigger fired"),
            "{}",
            request.prompt
        );
        Ok(Decision::Reject {
            reason: "change freeze".into(),
        })
    }
}

#[tokio::test(start_paused = true)]
async fn an_outage_is_detected_with_hysteresis_failed_over_once_and_the_trigger_rearms() {
    let plan = plan(TriggerStart::Auto);
    let sim = Simulation::new(&plan, 7, SimConfig::default());
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = WatchMetrics::register_in(&mut registry);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let w = watcher(plan.clone(), &sim).metrics(metrics).events(tx);

    // Healthy: nothing fires, and every scenario is ready on the nominal state.
    let tick = w.tick().await;
    assert!(tick.decisions().is_empty());
    let rf = tick
        .readiness
        .iter()
        .find(|r| r.scenario == "region-failover")
        .unwrap();
    assert!(rf.ready, "{rf:?}");

    // The home region goes down: two failed samples do not fire, the third does.
    sim.inject(plan.scenario("region-failover").unwrap()).await;
    for _ in 0..2 {
        tokio::time::sleep(MINUTE).await;
        let tick = w.tick().await;
        assert!(tick.decisions().is_empty(), "{:?}", tick.events);
    }
    tokio::time::sleep(MINUTE).await;
    let tick = w.tick().await;
    let decisions = tick.decisions();
    assert_eq!(decisions.len(), 1, "{:?}", tick.events);
    assert_eq!(decisions[0].0, "region-failover");
    assert!(
        matches!(
            decisions[0].1,
            WatchDecision::Started {
                approved: false,
                ..
            }
        ),
        "{:?}",
        decisions[0].1
    );
    assert_eq!(w.running().as_deref(), Some("region-failover"));

    // Still failing while the run is under way: it does not fire again.
    let tick = w.tick().await;
    assert!(tick.decisions().is_empty(), "{:?}", tick.events);

    let reports = w.wait_runs().await;
    assert_eq!(reports.len(), 1);
    assert!(reports[0].succeeded(), "{}", reports[0]);
    assert_eq!(w.running(), None);

    // After the failover the checks answer from the DR region: two healthy samples re-arm.
    let mut rearmed = false;
    for _ in 0..2 {
        tokio::time::sleep(MINUTE).await;
        let tick = w.tick().await;
        rearmed |= tick
            .events
            .iter()
            .any(|e| matches!(e, WatchEvent::Rearmed { .. }));
    }
    assert!(rearmed);

    // Every event went to the channel too, in order: fired, decided, run finished.
    let mut seen = Vec::new();
    while let Ok(e) = rx.try_recv() {
        seen.push(match e {
            WatchEvent::Fired { .. } => "fired",
            WatchEvent::Decided { .. } => "decided",
            WatchEvent::RunFinished {
                succeeded: true, ..
            } => "finished",
            WatchEvent::Rearmed { .. } => "rearmed",
            _ => continue,
        });
    }
    assert_eq!(seen, ["fired", "decided", "finished", "rearmed"]);

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains("dr_watch_triggers_fired_total{scenario=\"region-failover\"} 1"),
        "{text}"
    );
    assert!(
        text.contains(
            "dr_watch_decisions_total{scenario=\"region-failover\",decision=\"started\"} 1"
        ),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn approval_is_asked_and_a_refusal_or_a_missing_hook_starts_nothing() {
    for hook in [Some(Arc::new(Refuse) as Arc<dyn ApprovalHook>), None] {
        let plan = plan(TriggerStart::Approval);
        let sim = Simulation::new(&plan, 7, SimConfig::default());
        let mut w = watcher(plan.clone(), &sim);
        if let Some(h) = &hook {
            w = w.approvals(h.clone());
        }
        sim.inject(plan.scenario("region-failover").unwrap()).await;
        let mut decided = Vec::new();
        for _ in 0..3 {
            let tick = w.tick().await;
            decided.extend(tick.decisions().into_iter().map(|(_, d)| d.clone()));
            tokio::time::sleep(MINUTE).await;
        }
        assert_eq!(decided.len(), 1, "{decided:?}");
        let WatchDecision::Declined { reason } = &decided[0] else {
            panic!("{decided:?}")
        };
        let want = if hook.is_some() {
            "rejected: change freeze"
        } else {
            "no approval hook"
        };
        assert!(reason.contains(want), "{reason}");
        assert!(w.wait_runs().await.is_empty());
        // Nothing was promoted.
        let promotions = sim
            .cloud()
            .calls()
            .iter()
            .filter(|c| c.took_effect && c.operation == dr_core::provider::Operation::Promote)
            .count();
        assert_eq!(promotions, 0);
    }
}

#[tokio::test(start_paused = true)]
async fn another_runner_holding_the_lease_means_already_running() {
    let plan = plan(TriggerStart::Auto);
    let sim = Simulation::new(&plan, 7, SimConfig::default());
    let lease = Arc::new(InMemoryLease::new());
    let _held = lease
        .acquire("runner-on-host-b", Duration::from_secs(3600))
        .await
        .unwrap()
        .unwrap();
    let w = watcher(plan.clone(), &sim).lease(lease, "watcher-a", Duration::from_secs(30));
    sim.inject(plan.scenario("region-failover").unwrap()).await;
    let mut decided = Vec::new();
    for _ in 0..3 {
        decided.extend(
            w.tick()
                .await
                .decisions()
                .into_iter()
                .map(|(_, d)| d.clone()),
        );
        tokio::time::sleep(MINUTE).await;
    }
    let [WatchDecision::AlreadyRunning { by }] = &decided[..] else {
        panic!("{decided:?}")
    };
    assert!(by.contains("runner-on-host-b"), "{by}");
    assert!(w.wait_runs().await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn readiness_shows_what_is_at_risk_and_changes_are_events() {
    let plan = plan(TriggerStart::Auto);
    let sim = Simulation::new(&plan, 7, SimConfig::default());
    let mut registry = prometheus_client::registry::Registry::default();
    let w = watcher(plan, &sim).metrics(WatchMetrics::register_in(&mut registry));
    let first = w.tick().await;
    let changed = |t: &dr_core::watch::Tick| {
        t.events
            .iter()
            .filter(|e| matches!(e, WatchEvent::ReadinessChanged { .. }))
            .count()
    };
    assert_eq!(
        changed(&first),
        first.readiness.len(),
        "every scenario on the first pass"
    );
    assert_eq!(changed(&w.tick().await), 0, "nothing changed");

    // The DR replica falls 20 minutes behind: the region failover would lose more than the
    // RPOs allow.
    sim.cloud().set_replication_lag(
        &DbRef::new("us-west-2", "shop-prod-west"),
        Duration::from_secs(1200),
    );
    let tick = w.tick().await;
    let rf = tick
        .readiness
        .iter()
        .find(|r| r.scenario == "region-failover")
        .unwrap();
    assert!(!rf.ready);
    assert!(
        rf.at_risk.iter().any(|r| r.contains("RPO")),
        "{:?}",
        rf.at_risk
    );
    assert!(changed(&tick) >= 1);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains("dr_scenario_ready{scenario=\"region-failover\"} 0"),
        "{text}"
    );
}

#[test]
fn a_trigger_naming_what_the_plan_lacks_is_invalid_input() {
    let mut plan = plan(TriggerStart::Auto);
    failover(&mut plan).trigger = Some(Trigger {
        failures: 0,
        ..Trigger::on_health_checks(["api-helth"])
    });
    let err = Watcher::new(plan, dr_core::Providers::new()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("scenarios[region-failover].trigger.health_checks"),
        "{msg}"
    );
    assert!(msg.contains("did you mean `api-health`"), "{msg}");
    assert!(msg.contains("trigger.failures"), "{msg}");
}
