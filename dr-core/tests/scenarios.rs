//! Scenario kinds end to end on the simulated cloud: typed parameters, the new replica after
//! a promotion, and the failback (to completion, and refusing to demote a primary that still
//! holds writes the home replica has not replayed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use dr_core::executor::{AutoApprove, Executor, RunReport, StepStatus};
use dr_core::plan::{Plan, ScenarioKind};
use dr_core::planner::{self, ObservedState, PlanningError};
use dr_core::provider::{
    ClusterDeployer as _, DatabaseReplica as _, DbRef, DbRole, DnsFailover as _, Operation,
    WorkloadRef,
};
use dr_core::sim::SimConfig;
use dr_core::simulation::Simulation;
use dr_core::HumanDuration;

fn bundled(name: &str) -> Plan {
    let path = format!("{}/../examples/plans/{name}", env!("CARGO_MANIFEST_DIR"));
    Plan::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

async fn run(plan: &Plan, scenario: &str, config: SimConfig) -> (Simulation, RunReport) {
    let sim = Simulation::new(plan, 11, config);
    sim.inject(plan.scenario(scenario).unwrap()).await;
    let observed = sim.observe().await;
    let graph = planner::plan(plan, scenario, &observed).unwrap_or_else(|e| panic!("{e}"));
    let report = Executor::new(sim.providers())
        .clock(sim.cloud().clock())
        .approvals(Arc::new(AutoApprove))
        .run(&graph)
        .await;
    (sim, report)
}

fn workload(cluster: &str, name: &str) -> WorkloadRef {
    WorkloadRef {
        cluster: cluster.into(),
        namespace: "shop".into(),
        kind: dr_core::provider::WorkloadKind::Deployment,
        name: name.into(),
    }
}

async fn dns_value(sim: &Simulation, name: &str) -> String {
    let record = sim
        .cloud()
        .dns()
        .get_record("Z0SHOP", name)
        .await
        .expect("record");
    record.values.join(",")
}

#[test]
fn a_missing_parameter_is_a_parse_error_at_the_scenario() {
    let text = "name: shop\nregions: [{ name: east, role: primary }]\nservices: []\nscenarios:\n  - { name: failover, kind: region-failover, to: east }\n";
    let err = Plan::from_yaml_str(text).unwrap_err().to_string();
    assert!(err.contains(":5:"), "line of the scenario: {err}");
    assert!(err.contains("missing field `from`"), "{err}");
    assert!(err.contains("scenarios[0]"), "{err}");
}

#[test]
fn a_parameter_of_another_kind_is_refused_naming_the_kind_s_own() {
    let text = "name: shop\nregions: [{ name: east, role: primary }]\nservices: []\nscenarios:\n  - { name: restart, kind: service-restart, service: api, database: db }\n";
    let err = Plan::from_yaml_str(text).unwrap_err().to_string();
    assert!(err.contains("unknown field `database`"), "{err}");
    assert!(err.contains("`service`"), "the kind's own fields: {err}");
}

#[test]
fn scenarios_round_trip_through_every_format() {
    let plan = bundled("region-failover.yaml");
    let json = serde_json::to_string(&plan).unwrap();
    let again = Plan::from_json_str(&json).unwrap();
    assert_eq!(again.scenarios, plan.scenarios);
    let kinds: Vec<&str> = plan.scenarios.iter().map(|s| s.kind.name()).collect();
    for k in &kinds {
        assert!(ScenarioKind::NAMES.contains(k), "{k}");
    }
}

#[tokio::test(start_paused = true)]
async fn region_failover_restores_redundancy_outside_the_rto() {
    let plan = bundled("region-failover.yaml");
    let (sim, report) = run(&plan, "region-failover", SimConfig::default()).await;
    assert!(report.succeeded() && report.targets_met(), "{report}");
    let step = report
        .step("orders-db/new-replica")
        .expect("its own report line");
    assert_eq!(step.status, StepStatus::Succeeded, "{report}");
    assert!(
        !report
            .critical_path
            .iter()
            .any(|s| s == "orders-db/new-replica"),
        "outside the RTO: {:?}",
        report.critical_path
    );
    let replica = sim
        .cloud()
        .database()
        .describe(&DbRef::new("us-west-2", "shop-prod-west-replica"))
        .await
        .expect("the new replica exists");
    assert_eq!(
        replica.role,
        DbRole::Replica {
            source: DbRef::new("us-west-2", "shop-prod-west")
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_new_replica_degrades_the_failover_without_failing_it() {
    let plan = bundled("region-failover.yaml");
    let rule = dr_core::sim::FaultRule::new(Some(Operation::CreateReplica), "");
    let config =
        SimConfig::default().with_faults(dr_core::sim::FaultConfig::default().with_permanent(rule));
    let (_sim, report) = run(&plan, "region-failover", config).await;
    assert!(report.succeeded(), "{report}");
    assert!(report.degraded, "{report}");
    assert_eq!(
        report.step("orders-db/new-replica").map(|s| s.status),
        Some(StepStatus::Failed)
    );
}

#[tokio::test(start_paused = true)]
async fn failback_moves_home_in_order_and_restores_the_dr_replica() {
    let plan = bundled("failback.yaml");
    let (sim, report) = run(&plan, "failback", SimConfig::default()).await;
    assert!(report.succeeded() && report.targets_met(), "{report}");

    // Controlled order: replica, freeze, caught up, promote, then traffic.
    let finished = |id: &str| {
        report
            .step(id)
            .and_then(|s| s.finished_at)
            .unwrap_or_else(|| panic!("{id} did not finish: {report}"))
    };
    let started = |id: &str| report.step(id).and_then(|s| s.started_at).unwrap();
    assert!(finished("orders-db/replicate-home-wait") <= started("api/freeze:api"));
    assert!(finished("api/freeze:api") <= started("orders-db/caught-up"));
    assert!(finished("voice/freeze:voice") <= started("orders-db/caught-up"));
    assert!(finished("orders-db/caught-up") <= started("orders-db/promote"));
    assert!(finished("orders-db/wait") <= started("api/set-secret"));
    assert!(finished("api/wait:api") <= started("api/dns:api.shop.example.com"));

    // The world afterwards: home serves, the DR site stands by with a replica again.
    let db = sim.cloud().database();
    let home = db
        .describe(&DbRef::new("us-east-1", "shop-prod-failback"))
        .await
        .unwrap();
    assert_eq!(home.role, DbRole::Primary);
    let dr_replica = db
        .describe(&DbRef::new("us-west-2", "shop-prod-failback-replica"))
        .await
        .unwrap();
    assert_eq!(
        dr_replica.role,
        DbRole::Replica {
            source: DbRef::new("us-east-1", "shop-prod-failback")
        }
    );
    // Nothing was demoted in place or deleted: both former primaries are still there.
    for old in [
        DbRef::new("us-east-1", "shop-prod"),
        DbRef::new("us-west-2", "shop-prod-west"),
    ] {
        assert_eq!(
            db.describe(&old).await.unwrap().role,
            DbRole::Primary,
            "{old}"
        );
    }
    assert_eq!(
        dns_value(&sim, "api.shop.example.com").await,
        "lb.us-east-1.shop.example.com"
    );
    let k8s = sim.cloud().cluster();
    let api_home = k8s
        .rollout_status(&workload("prod-east", "api"))
        .await
        .unwrap();
    assert_eq!(api_home.available_replicas, 3);
    let api_dr = k8s
        .rollout_status(&workload("dr-west", "api"))
        .await
        .unwrap();
    assert_eq!(api_dr.replicas, 1, "back to its standby replicas");
    let secret = k8s
        .read_secret("prod-east", "shop", "shop-secrets", "DATABASE_URL")
        .await
        .unwrap();
    assert!(
        secret.expose().contains("shop-prod-failback.us-east-1"),
        "the app at home reads the home primary"
    );
    assert!(
        report
            .risks
            .iter()
            .any(|r| r.message.contains("old primary `shop-prod`")),
        "{:?}",
        report.risks
    );
}

#[tokio::test(start_paused = true)]
async fn failback_refuses_to_demote_a_primary_holding_newer_writes() {
    let plan = bundled("failback.yaml");
    // The serving primary keeps taking writes the new home replica does not replay in time
    // (a writer outside the plan, a replication slot stuck): its lag stays at 20 minutes.
    let mut config = SimConfig::default();
    config.replication_lag = HumanDuration::from_secs(20 * 60);
    let (sim, report) = run(&plan, "failback", config).await;
    assert!(!report.succeeded(), "{report}");
    let check = report.step("orders-db/caught-up").unwrap();
    assert_eq!(check.status, StepStatus::Failed, "{report}");
    let why = check.error.as_deref().unwrap_or_default();
    assert!(
        why.contains("us-west-2/shop-prod-west") && why.contains("holding writes"),
        "{why}"
    );
    // Nothing was promoted, DNS still points at the serving region, and the serving primary
    // is untouched.
    assert!(
        !sim.cloud()
            .calls()
            .iter()
            .any(|c| c.operation == Operation::Promote),
        "a promotion was attempted"
    );
    for id in ["orders-db/promote", "api/dns:api.shop.example.com"] {
        assert_ne!(
            report.step(id).map(|s| s.status),
            Some(StepStatus::Succeeded),
            "{id}"
        );
    }
    assert_eq!(
        dns_value(&sim, "api.shop.example.com").await,
        "lb.us-west-2.shop.example.com"
    );
    let serving = sim
        .cloud()
        .database()
        .describe(&DbRef::new("us-west-2", "shop-prod-west"))
        .await
        .unwrap();
    assert_eq!(serving.role, DbRole::Primary);
}

#[tokio::test(start_paused = true)]
async fn failback_without_a_failover_is_refused_before_anything_runs() {
    let plan = bundled("failback.yaml");
    // Nothing injected: the replica in us-west-2 still replicates from us-east-1.
    let sim = Simulation::new(&plan, 11, SimConfig::default());
    let observed = sim.observe().await;
    let err = planner::plan(&plan, "failback", &observed).unwrap_err();
    assert!(
        matches!(&err, PlanningError::Unrecoverable { why, .. } if why.contains("no failover to fail back from")),
        "{err}"
    );
}

#[test]
fn failback_onto_itself_is_invalid() {
    let mut plan = bundled("failback.yaml");
    if let ScenarioKind::Failback(k) = &mut plan.scenarios[0].kind {
        k.to = k.from.clone();
    }
    let err = plan.validate().unwrap_err().to_string();
    assert!(err.contains("scenarios[failback].to"), "{err}");
    assert!(err.contains("cannot fail back onto itself"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn restore_from_dump_verifies_restores_and_repoints() {
    let plan = bundled("region-failover.yaml");
    let (sim, report) = run(&plan, "restore-from-dump", SimConfig::default()).await;
    // The run succeeds; the hourly dumps cannot meet a 5-minute RPO, which the forecast
    // said before anything ran.
    assert!(report.succeeded(), "{report}");
    assert!(report
        .risks
        .iter()
        .any(|r| r.message.contains("forecast data loss 1h exceeds RPO 5m")));
    let verified = report.step("orders-db/verify-dump").unwrap();
    let output = verified.output.clone().expect("the dump picked");
    let key = output["dump"].as_str().unwrap().to_string();
    assert!(key.starts_with("dumps/orders-db/"), "{key}");
    // The newest of the two dumps: 0.6 of the hourly schedule old when the incident began.
    assert_eq!(
        verified.data_loss.map(|d| d.as_secs() / 60),
        Some(36),
        "{report}"
    );
    let db = sim.cloud().database();
    let restored = db
        .describe(&DbRef::new("us-east-1", "shop-prod-from-dump"))
        .await
        .unwrap();
    assert_eq!(restored.role, DbRole::Primary);
    let secret = sim
        .cloud()
        .cluster()
        .read_secret("prod-east", "shop", "shop-secrets", "DATABASE_URL")
        .await
        .unwrap();
    assert!(secret.expose().contains("shop-prod-from-dump.us-east-1"));
    // The old instance is kept (failed, not deleted) for a rollback.
    assert!(db
        .describe(&DbRef::new("us-east-1", "shop-prod"))
        .await
        .is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_corrupt_dump_is_refused_before_anything_is_restored() {
    let plan = bundled("region-failover.yaml");
    let sim = Simulation::new(&plan, 11, SimConfig::default());
    sim.inject(plan.scenario("restore-from-dump").unwrap())
        .await;
    // The newest dump's bytes change behind its manifest's back.
    let store = sim.cloud().store("backups-west");
    let backups = dr_core::backup::Backups::new(store.clone());
    let newest = backups
        .list("dumps/orders-db/")
        .await
        .unwrap()
        .into_iter()
        .max_by_key(|m| m.created)
        .unwrap();
    dr_core::provider::SnapshotStoreExt::put_bytes(&*store, &newest.key, "garbage".into())
        .await
        .unwrap();
    let observed = sim.observe().await;
    let graph = planner::plan(&plan, "restore-from-dump", &observed).unwrap();
    let before = sim.cloud().calls().len();
    let report = Executor::new(sim.providers())
        .clock(sim.cloud().clock())
        .approvals(Arc::new(AutoApprove))
        .run(&graph)
        .await;
    assert!(!report.succeeded(), "{report}");
    let verify = report.step("orders-db/verify-dump").unwrap();
    assert_eq!(verify.status, StepStatus::Failed);
    let why = verify.error.as_deref().unwrap_or_default();
    assert!(
        why.contains("corrupt") && why.contains(&newest.key),
        "{why}"
    );
    assert!(
        !sim.cloud().calls()[before..].iter().any(|c| matches!(
            c.operation,
            Operation::RestoreSnapshot | Operation::PatchSecret | Operation::RolloutRestart
        )),
        "something was touched"
    );
}

#[tokio::test(start_paused = true)]
async fn the_backup_procedure_snapshots_copies_exports_verifies_and_prunes() {
    let plan = bundled("region-failover.yaml");
    let (sim, report) = run(&plan, "nightly-backup", SimConfig::default()).await;
    assert!(report.succeeded(), "{report}");
    let db = sim.cloud().database();
    let copies = db
        .list_snapshots(&DbRef::new("us-east-1", "shop-prod"), "us-west-2")
        .await
        .unwrap();
    assert!(
        copies
            .iter()
            .any(|s| s.id.contains("-backup-") && s.available),
        "a copy in the DR region: {copies:?}"
    );
    let backups = dr_core::backup::Backups::new(sim.cloud().store("backups-west"));
    let all = backups.list("backups/shop-web/").await.unwrap();
    let shop: Vec<_> = all
        .iter()
        .filter(|m| m.key.starts_with("backups/shop-web/prod-east/shop/"))
        .collect();
    // 45 earlier nightly exports and tonight's, pruned to 7 daily + 4 weekly + 3 monthly at most.
    let policy = dr_core::backup::RetentionPolicy {
        daily: 7,
        weekly: 4,
        monthly: 3,
        yearly: 0,
    };
    assert!(shop.len() as u64 <= policy.max_kept(), "{}", shop.len());
    assert!(shop.len() >= 7, "{}", shop.len());
    let tonight = report
        .step("export:prod-east/shop")
        .and_then(|s| s.output.clone())
        .unwrap();
    let key = tonight["key"].as_str().unwrap();
    assert!(
        shop.iter().any(|m| m.key == key),
        "tonight's export is kept"
    );
    assert!(backups
        .verify_all("backups/shop-web/")
        .await
        .unwrap()
        .iter()
        .all(|r| r.is_ok()));
}

#[tokio::test(start_paused = true)]
async fn a_corrupt_backup_stops_the_prune() {
    let plan = bundled("region-failover.yaml");
    let sim = Simulation::new(&plan, 11, SimConfig::default());
    sim.inject(plan.scenario("nightly-backup").unwrap()).await;
    let store = sim.cloud().store("backups-west");
    let backups = dr_core::backup::Backups::new(store.clone());
    let victim = backups
        .list("backups/shop-web/prod-east/shop/")
        .await
        .unwrap()[3]
        .key
        .clone();
    dr_core::provider::SnapshotStoreExt::put_bytes(&*store, &victim, "tampered".into())
        .await
        .unwrap();
    let before = backups.list("backups/shop-web/").await.unwrap().len();
    let observed = sim.observe().await;
    let graph = planner::plan(&plan, "nightly-backup", &observed).unwrap();
    let report = Executor::new(sim.providers())
        .clock(sim.cloud().clock())
        .approvals(Arc::new(AutoApprove))
        .run(&graph)
        .await;
    assert!(!report.succeeded(), "{report}");
    let verify = report.step("verify-backups").unwrap();
    assert_eq!(verify.status, StepStatus::Failed);
    assert!(
        verify
            .error
            .as_deref()
            .unwrap_or_default()
            .contains(&victim),
        "{:?}",
        verify.error
    );
    assert_ne!(
        report.step("prune").map(|s| s.status),
        Some(StepStatus::Succeeded)
    );
    assert!(
        !sim.cloud()
            .calls()
            .iter()
            .any(|c| c.operation == Operation::Delete),
        "nothing was pruned"
    );
    // Tonight's exports were written; nothing was deleted.
    assert_eq!(
        backups.list("backups/shop-web/").await.unwrap().len(),
        before + 4
    );
}

#[tokio::test(start_paused = true)]
async fn a_cache_failure_runs_degraded_until_the_cache_is_back_and_warm() {
    let plan = bundled("cache-failure.yaml");
    let sim = Simulation::new(&plan, 11, SimConfig::default());
    sim.inject(plan.scenario("cache-failure").unwrap()).await;
    let probe = sim.cloud().probe();
    assert_eq!(
        probe.check("tcp://redis.shop.internal:6379").await.unwrap(),
        dr_core::provider::HealthStatus::Unhealthy,
        "the injected failure is visible"
    );
    let (sim, report) = run(&plan, "cache-failure", SimConfig::default()).await;
    assert!(report.succeeded() && report.targets_met(), "{report}");
    let at = |id: &str| report.step(id).and_then(|s| s.finished_at).unwrap();
    let start = |id: &str| report.step(id).and_then(|s| s.started_at).unwrap();
    assert!(at("api/wait-degraded:api") <= start("redis/scale"));
    assert!(at("redis/verify") <= start("warm-cache"));
    assert!(at("warm-cache") <= start("api/degraded-off:api"));
    let env_calls: Vec<String> = sim
        .cloud()
        .calls()
        .iter()
        .filter(|c| c.operation == Operation::SetEnv)
        .map(|c| c.target.clone())
        .collect();
    assert_eq!(env_calls.len(), 2, "on, then off: {env_calls:?}");
    assert_eq!(
        sim.cloud()
            .probe()
            .check("tcp://redis.shop.internal:6379")
            .await
            .unwrap(),
        dr_core::provider::HealthStatus::Healthy
    );
}

#[tokio::test(start_paused = true)]
async fn a_cache_that_does_not_come_back_leaves_degraded_mode_on() {
    let plan = bundled("cache-failure.yaml");
    let rule = dr_core::sim::FaultRule::new(Some(Operation::RolloutRestart), "redis");
    let config =
        SimConfig::default().with_faults(dr_core::sim::FaultConfig::default().with_permanent(rule));
    let (sim, report) = run(&plan, "cache-failure", config).await;
    assert!(!report.succeeded(), "{report}");
    assert_eq!(
        report.step("redis/restart").map(|s| s.status),
        Some(StepStatus::Failed)
    );
    assert_ne!(
        report.step("api/degraded-off:api").map(|s| s.status),
        Some(StepStatus::Succeeded)
    );
    let env_calls = sim
        .cloud()
        .calls()
        .iter()
        .filter(|c| c.operation == Operation::SetEnv)
        .count();
    assert_eq!(env_calls, 1, "degraded mode stays on");
}

#[test]
fn a_warm_up_that_waits_for_the_end_of_the_scenario_is_a_cycle_named_at_its_after() {
    let mut plan = bundled("cache-failure.yaml");
    // Degraded mode goes off after the scenario's own steps; a warm-up that waits for the
    // service's verification (which waits for degraded mode off) can never start.
    plan.scenarios[0].steps[0].after = vec!["api/verify".into()];
    let err = planner::plan(
        &plan,
        "cache-failure",
        &ObservedState::nominal(&plan, chrono::Utc::now()),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "scenarios[cache-failure].steps[warm-cache].after: waits for a step that, through the \
         scenario's own order, waits for it: a cycle warm-cache → api/degraded-off:api → \
         api/wait:api → api/verify → warm-cache"
    );
    // Two plan steps waiting for each other are named the same way.
    let mut plan = bundled("cache-failure.yaml");
    let mut second = plan.scenarios[0].steps[0].clone();
    second.id = "warm-search".into();
    second.after = vec!["warm-cache".into()];
    plan.scenarios[0].steps[0].after = vec!["warm-search".into()];
    plan.scenarios[0].steps.push(second);
    let err = planner::plan(
        &plan,
        "cache-failure",
        &ObservedState::nominal(&plan, chrono::Utc::now()),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("a cycle warm-"), "{err}");
    assert!(
        err.contains("warm-cache → warm-search → warm-cache")
            || err.contains("warm-search → warm-cache → warm-search"),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_provider_outage_trips_the_breaker_falls_back_and_switches_back_when_healthy() {
    let plan = bundled("provider-outage.yaml");
    let (sim, report) = run(&plan, "payments-outage", SimConfig::default()).await;
    assert!(report.succeeded() && report.targets_met(), "{report}");
    let at = |id: &str| report.step(id).and_then(|s| s.finished_at).unwrap();
    let start = |id: &str| report.step(id).and_then(|s| s.started_at).unwrap();
    assert!(at("breaker/trip") <= start("checkout/fallback:checkout"));
    assert!(at("checkout/wait-fallback:checkout") <= start("notify-degraded:status-page"));
    assert!(at("breaker/half-open") <= start("checkout/primary:checkout"));
    // Half-open: the provider was down 20 minutes; five healthy probes 30 s apart after that.
    let back = (at("breaker/half-open") - report.started_at).num_minutes();
    assert!(
        (20..=24).contains(&back),
        "switched back after {back} minutes"
    );
    let titles: Vec<String> = sim
        .cloud()
        .notifications()
        .iter()
        .map(|(_, n)| n.title.clone())
        .collect();
    assert!(
        titles.iter().any(|t| t == "checkout: degraded"),
        "{titles:?}"
    );
    assert!(
        titles.iter().any(|t| t == "checkout: restored"),
        "{titles:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_healthy_provider_does_not_trip_the_breaker_and_nothing_is_switched() {
    let plan = bundled("provider-outage.yaml");
    let sim = Simulation::new(&plan, 11, SimConfig::default());
    // A false alarm: the provider answers.
    sim.cloud().set_endpoint_health(
        "https://api.main-psp.example.net/v1/health",
        dr_core::provider::HealthStatus::Healthy,
    );
    let observed = sim.observe().await;
    let graph = planner::plan(&plan, "payments-outage", &observed).unwrap();
    let report = Executor::new(sim.providers())
        .clock(sim.cloud().clock())
        .approvals(Arc::new(AutoApprove))
        .run(&graph)
        .await;
    assert!(!report.succeeded(), "{report}");
    let trip = report.step("breaker/trip").unwrap();
    assert_eq!(trip.status, StepStatus::Failed);
    assert!(
        trip.error
            .as_deref()
            .unwrap_or_default()
            .contains("failing 0 of"),
        "{:?}",
        trip.error
    );
    assert!(
        !sim.cloud()
            .calls()
            .iter()
            .any(|c| c.operation == Operation::SetEnv),
        "nothing switched"
    );
}
