//! The managed cache of a region failover on the simulated cloud: restored in the recovery
//! region from its newest backup there, the service's traffic moved only once it answers,
//! a run without a backup to restore from failing before any traffic moves, a crash after
//! the restore call resumed without a second cache, and the plan's `caches:` section
//! validated.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use dr_core::executor::{AutoApprove, Executor, StepStatus};
use dr_core::plan::Plan;
use dr_core::planner;
use dr_core::provider::{CacheState, Operation};
use dr_core::sim::SimConfig;
use dr_core::simulation::Simulation;
use dr_core::RecoveryGraph;

const RESTORE: &str = "cache:sessions/restore";
const WAIT: &str = "cache:sessions/wait";

fn bundled() -> Plan {
    let path = format!(
        "{}/../examples/plans/region-failover.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    Plan::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

async fn setup(plan: &Plan) -> (Simulation, RecoveryGraph) {
    let sim = Simulation::new(plan, 5, SimConfig::default());
    sim.inject(plan.scenario("region-failover").unwrap()).await;
    let observed = sim.observe().await;
    let graph = planner::plan(plan, "region-failover", &observed).unwrap_or_else(|e| panic!("{e}"));
    (sim, graph)
}

fn executor(sim: &Simulation) -> Executor {
    Executor::new(sim.providers())
        .clock(sim.cloud().clock())
        .approvals(Arc::new(AutoApprove))
}

fn restores(sim: &Simulation) -> usize {
    sim.cloud()
        .calls()
        .iter()
        .filter(|c| c.took_effect && c.operation == Operation::RestoreCache)
        .count()
}

#[tokio::test(start_paused = true)]
async fn the_cache_is_restored_from_the_newest_backup_before_the_api_s_traffic_moves() {
    let plan = bundled();
    let (sim, graph) = setup(&plan).await;
    // An older backup too: the newest one (the simulation's, 3.6 h old) is chosen.
    sim.cloud().add_cache_backup(
        "us-west-2",
        "shop-sessions",
        "shop-sessions-old",
        Duration::from_secs(30 * 3600),
    );
    // The steps: restore alongside the promotion, after the approval; the API's DNS switch
    // and target move after the cache answers.
    let restore = graph.step(RESTORE).expect("a restore step");
    assert_eq!(restore.depends_on, ["approval"]);
    for id in ["api/dns:api.shop.example.com", "api/targets:api-targets"] {
        assert!(
            graph.step(id).unwrap().depends_on.iter().any(|d| d == WAIT),
            "{id} does not wait for the cache"
        );
    }
    // The voice service does not use the cache: its traffic does not wait for it.
    assert!(!graph
        .step("voice/dns:voice.shop.example.com")
        .unwrap()
        .depends_on
        .iter()
        .any(|d| d == WAIT));

    let report = executor(&sim).run(&graph).await;
    assert!(report.succeeded(), "{report}");
    let restored = sim.cloud().caches_restored();
    let dr = restored
        .iter()
        .find(|(c, _)| c.id == "shop-sessions-dr")
        .expect("the DR cache");
    assert_eq!(dr.0.region, "us-west-2");
    assert_eq!(dr.0.state, CacheState::Available);
    assert_eq!(dr.1.as_deref(), Some("shop-sessions-auto"));
    assert_eq!(restores(&sim), 1);

    // The report says which backup and how old it was at the incident.
    let step = report.step(RESTORE).unwrap();
    let out = step.output.as_ref().expect("the restore's output");
    assert_eq!(out["backup"], "shop-sessions-auto");
    let age = out["age_at_incident_s"].as_u64().unwrap();
    assert!((3 * 3600..4 * 3600).contains(&age), "{out}");
    let wait = report.step(WAIT).unwrap();
    assert_eq!(wait.status, StepStatus::Succeeded);
    assert_eq!(
        wait.output.as_ref().unwrap()["endpoint"],
        "shop-sessions-dr.us-west-2.cache.sim:6379"
    );
    // The API's DNS switch started only once the cache answered.
    let dns = report.step("api/dns:api.shop.example.com").unwrap();
    assert!(
        dns.started_at.unwrap() >= wait.finished_at.unwrap(),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn without_a_backup_in_the_recovery_region_the_run_is_degraded_and_moves_the_api_cold() {
    let plan = bundled();
    let (sim, graph) = setup(&plan).await;
    // The backups never reached us-west-2.
    assert_eq!(sim.cloud().remove_cache_backups("us-west-2"), 1);
    let report = executor(&sim).run(&graph).await;
    // Degraded, not failed: every service recovered, the API with a cold cache.
    assert!(report.succeeded(), "{report}");
    assert!(report.degraded, "{report}");
    let restore = report.step(RESTORE).unwrap();
    assert_eq!(restore.status, StepStatus::Failed, "{report}");
    let error = restore.error.as_deref().unwrap();
    assert!(
        error.contains("available backup of cache shop-sessions in us-west-2"),
        "{error}"
    );
    // Nothing was restored; the wait (optional too) found no cache; the API's traffic
    // moved all the same.
    assert_eq!(restores(&sim), 0);
    let wait = report.step(WAIT).unwrap();
    assert_eq!(wait.status, StepStatus::Failed);
    assert!(
        wait.error.as_deref().unwrap().contains("shop-sessions-dr"),
        "{report}"
    );
    for id in ["api/dns:api.shop.example.com", "api/verify", "voice/verify"] {
        assert_eq!(
            report.step(id).unwrap().status,
            StepStatus::Succeeded,
            "{id}: {report}"
        );
    }
    assert!(
        report
            .to_string()
            .contains("available backup of cache shop-sessions"),
        "{report}"
    );
}

#[cfg(feature = "testkit")]
#[tokio::test(start_paused = true)]
async fn a_crash_after_the_restore_call_resumes_without_a_second_cache() {
    use dr_core::journal::Record;
    use dr_core::testkit::journal::{crash_after_trip, Tripwire};

    let plan = bundled();
    let (sim, graph) = setup(&plan).await;
    // The restore is sent right after its intent is journaled, then the process dies before
    // its outcome is.
    let wire = Arc::new(Tripwire::when(
        |r| matches!(r, Record::Intent { step, .. } if step == RESTORE),
    ));
    let first = executor(&sim).journal(wire.clone());
    assert!(crash_after_trip(&first, &graph, &wire, Duration::from_secs(60)).await);
    drop(first);
    assert_eq!(restores(&sim), 1);

    let report = executor(&sim)
        .journal(wire.survivor())
        .resume(&graph)
        .await
        .unwrap();
    assert!(report.succeeded(), "{report}");
    assert!(report.resumed);
    assert!(report.step(RESTORE).unwrap().already_done, "{report}");
    assert_eq!(restores(&sim), 1, "the cache was restored twice");
    assert_eq!(report.step(WAIT).unwrap().status, StepStatus::Succeeded);
}

#[test]
fn the_caches_section_is_validated_naming_what_is_wrong() {
    let text = std::fs::read_to_string(format!(
        "{}/../examples/plans/region-failover.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let broken = |from: &str, to: &str| {
        let t = text.replacen(from, to, 1);
        assert_ne!(t, text, "{from}");
        match Plan::from_yaml_str(&t) {
            Ok(p) => p.validate().map(|_| ()).unwrap_err().to_string(),
            Err(e) => e.to_string(),
        }
    };
    let e = broken(
        "restore: { us-west-2: shop-sessions-dr }",
        "restore: { us-central-9: shop-sessions-dr }",
    );
    assert!(
        e.contains("caches[sessions].restore") && e.contains("us-central-9"),
        "{e}"
    );
    // Without an id in us-west-2 the region failover cannot restore it.
    assert!(
        e.contains(
            "cache `sessions` of region `us-east-1` has no id to restore it under in `us-west-2`"
        ),
        "{e}"
    );
    let e = broken(
        "restore: { us-west-2: shop-sessions-dr }",
        "restore: { us-east-1: shop-sessions-dr }",
    );
    assert!(e.contains("home region cannot be a recovery region"), "{e}");
    let e = broken(
        "restore: { us-west-2: shop-sessions-dr }",
        "restore: { us-west-2: \"\" }",
    );
    assert!(
        e.contains("caches[sessions].restore.us-west-2") && e.contains("empty"),
        "{e}"
    );
    let e = broken("caches: [sessions]", "caches: [sesions]");
    assert!(
        e.contains("services[api].caches") && e.contains("sesions"),
        "{e}"
    );
    let e = broken("backup_every: 6h", "backup_every: 0s");
    assert!(e.contains("caches[sessions].backup_every"), "{e}");
    let e = broken("    backup_every: 6h", "    backup_every: 6h\n    size: 3");
    assert!(e.contains("size"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn planning_names_a_missing_or_stale_backup_as_a_risk() {
    async fn plan_now(sim: Simulation) -> RecoveryGraph {
        let observed = sim.observe().await;
        planner::plan(sim.plan(), "region-failover", &observed).unwrap()
    }
    let risks = |g: &RecoveryGraph| -> Vec<String> {
        g.risks
            .iter()
            .filter(|r| r.message.contains("cache"))
            .map(|r| format!("{:?}: {}", r.service, r.message))
            .collect()
    };
    // As provisioned: a backup 3.6 h old, within its 6 h schedule.
    let sim = Simulation::new(&bundled(), 5, SimConfig::default());
    assert_eq!(risks(&plan_now(sim.clone()).await), Vec::<String>::new());

    // The copies stopped: the newest is 20 h old.
    sim.cloud().remove_cache_backups("us-west-2");
    sim.cloud().add_cache_backup(
        "us-west-2",
        "shop-sessions",
        "shop-sessions-stale",
        Duration::from_secs(20 * 3600),
    );
    assert_eq!(
        risks(&plan_now(sim.clone()).await),
        [
            r#"Some("api"): cache `sessions`: the newest backup in us-west-2 is 20h old (backups every 6h)"#
        ]
    );

    // None at all.
    sim.cloud().remove_cache_backups("us-west-2");
    assert_eq!(
        risks(&plan_now(sim).await),
        [
            r#"Some("api"): cache `sessions`: no available backup of shop-sessions in us-west-2 to restore from (its services would move with a cold cache)"#
        ]
    );
}
