//! The database-failure scenario run for real: the planner observes a real primary and
//! standby, the executor promotes the standby and repoints the application's secret (the
//! cluster and its secret store are the simulated cloud's), and the report's data-loss
//! window is compared with the rows that did not make it.

mod common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{caught_up, count, exec, fixture, primary_ref, standby_ref, writable, Fixture};
use dr_core::executor::Executor;
use dr_core::plan::Plan;
use dr_core::planner::{self, ObservedState};
use dr_core::provider::{DatabaseReplica, DbRef, DbRole};
use dr_core::sim::SimConfig;
use dr_core::simulation::Simulation;
use dr_core::HumanDuration;
use dr_postgres::PostgresDatabase;

const PLAN: &str = r#"
name: pg-shop
regions:
  - { name: dc1, role: primary, cloud: onprem }
  - { name: dc2, role: secondary, cloud: onprem }
databases:
  - name: orders-db
    region: dc1
    instance_id: primary
    replicas: [{ id: standby, region: dc2, expected_lag: 0s }]
clusters:
  - name: apps
    region: dc1
    ingress: apps.dc1.example.internal
    workloads:
      - { name: api, namespace: shop, replicas: 2 }
  - name: apps-dr
    region: dc2
    ingress: apps.dc2.example.internal
    workloads:
      - { name: api, namespace: shop, replicas: 2, standby_replicas: 1 }
services:
  - name: api
    tier: critical
    rto: 10m
    rpo: 1s
    database: orders-db
    workloads: [api]
    secret: { name: shop-secrets, key: DATABASE_URL, template: "postgres://postgres@{endpoint}/postgres" }
scenarios:
  - { name: database-failure, kind: database-failure, database: orders-db }
  - { name: region-failover, kind: region-failover, from: dc1, to: dc2 }
"#;

fn plan() -> Plan {
    Plan::from_yaml_str(PLAN).expect("the test plan is valid")
}

/// The test plan with the service's RPO set to `rpo` and `checks` (YAML flow sequences)
/// as the data checks of `orders-db`.
fn plan_with(rpo: &str, checks: &str) -> Plan {
    let text = PLAN.replace("rpo: 1s", &format!("rpo: {rpo}")).replace(
        "    instance_id: primary\n",
        &format!("    instance_id: primary\n    checks: [{checks}]\n"),
    );
    Plan::from_yaml_str(&text).expect("the test plan is valid")
}

/// The simulated cloud for the cluster, on real time with short latencies.
fn simulation(plan: &Plan) -> Simulation {
    let mut config = SimConfig::default().with_latency(Duration::from_millis(5));
    config.rollout = HumanDuration::from_secs(1);
    config.dns_propagation = HumanDuration::from_secs(1);
    Simulation::new(plan, 7, config)
}

fn providers(sim: &Simulation, pg: &PostgresDatabase) -> dr_core::Providers {
    sim.providers()
        .with_database(std::sync::Arc::new(pg.clone()))
}

async fn secret(sim: &Simulation) -> String {
    sim.cloud()
        .cluster()
        .read_secret("apps", "shop", "shop-secrets", "DATABASE_URL")
        .await
        .expect("the app's secret")
        .expose()
        .to_string()
}

/// The provider with a spare local server configured as the new standby the scenario
/// creates after the promotion (`dc1/standby-replica`).
fn provider_with_spare(fx: &Fixture) -> (PostgresDatabase, DbRef) {
    let spare = fx.pair.spare("standby-replica").expect("a spare server");
    let new_standby = DbRef::new("dc1", "standby-replica");
    let inst = spare.instance(Some(fx.password.clone()));
    let pg = fx
        .builder()
        .with_instance(new_standby.clone(), inst)
        .build()
        .expect("provider");
    (pg, new_standby)
}

/// The data checks of the promotion test: two rows, ids 1 and 2.
const CHECKS: &str = r#"{ row_count: t, min: 2 }, { name: ids, query: "SELECT string_agg(id::text, ',' ORDER BY id) FROM t", expected: "1,2" }"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_failure_promotes_the_standby_repoints_the_secret_and_rebuilds_a_standby() {
    let Some(fx) = fixture().await else { return };
    let (pg, new_standby) = provider_with_spare(&fx);
    exec(
        &pg,
        &primary_ref(),
        "CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2)",
    )
    .await;
    let written = Utc::now();
    // The provider sees the standby caught up with its primary (as a watcher does)...
    caught_up(&pg).await;
    let proven = pg
        .known_complete(&standby_ref())
        .expect("the standby was seen complete");
    assert!(proven >= written, "proven {proven}, written {written}");
    // ... then the incident: the primary crashes.
    let crashed = Utc::now();
    fx.pair
        .primary()
        .stop(true)
        .await
        .expect("crash the primary");

    let plan = plan_with("30s", CHECKS);
    let sim = simulation(&plan);
    let providers = providers(&sim, &pg);
    let observed = ObservedState::observe(&plan, &providers, Utc::now()).await;
    let obs = &observed.databases["orders-db"];
    assert!(obs.primary.is_none(), "the crashed primary is unreachable");
    let graph = planner::plan(&plan, "database-failure", &observed).expect("a graph");
    assert!(graph.step("orders-db/promote").is_some(), "{graph}");
    assert!(graph.step("orders-db/verify-data").is_some(), "{graph}");
    // With the primary gone, the window runs from the last instant the standby was seen
    // complete, not from its last replayed commit: no loss needs accepting.
    let run_start = Utc::now();
    let report = Executor::new(providers).run(&graph).await;
    let run_end = Utc::now();
    assert!(report.succeeded(), "{report}");
    assert!(report.overrides.is_empty(), "{report}");
    let window = report
        .step("orders-db/promote")
        .and_then(|s| s.data_loss)
        .expect("the promotion records its data-loss window");
    let w = chrono::Duration::from_std(window).expect("window");
    // The window covers the time from the proof to the promotion, crash included (the
    // standby cannot tell an idle primary from one still writing), and no more.
    assert!(proven + w >= run_start, "window {window:?} too short");
    assert!(proven + w <= run_end, "window {window:?} too long");
    assert!(
        w >= run_start - crashed,
        "window {window:?} shorter than the time since the crash"
    );
    assert!(report.service("api").is_some_and(|s| s.met), "{report}");

    // The plan's data checks ran against the promoted standby before the secret moved.
    let verify = report
        .step("orders-db/verify-data")
        .expect("verify-data step");
    assert_eq!(verify.error, None, "{report}");
    let out = serde_json::to_string(&verify.output).expect("output");
    assert!(
        out.contains("\"row count of t\"") && out.contains("\"1,2\""),
        "{out}"
    );

    let status = pg.describe(&standby_ref()).await.expect("describe");
    assert_eq!(status.role, DbRole::Primary);
    let endpoint = fx.pair.standby_instance().endpoint();
    assert_eq!(
        secret(&sim).await,
        format!("postgres://postgres@{endpoint}/postgres"),
        "the app's secret points at the promoted standby"
    );
    // The promoted standby takes writes and kept every replicated row.
    writable(&pg, &standby_ref()).await;
    exec(&pg, &standby_ref(), "INSERT INTO t VALUES (3)").await;
    assert_eq!(
        count(&pg, &standby_ref(), "SELECT count(*) FROM t").await,
        3
    );
    // The scenario built a new standby of it with pg_basebackup; it streams.
    let step = report
        .step("orders-db/new-replica")
        .expect("new-replica step");
    assert_eq!(step.error, None, "{report}");
    let s = pg
        .describe(&new_standby)
        .await
        .expect("describe new standby");
    assert_eq!(
        s.role,
        DbRole::Replica {
            source: standby_ref()
        }
    );
    for _ in 0..100 {
        if count(&pg, &new_standby, "SELECT count(*) FROM t").await == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count(&pg, &new_standby, "SELECT count(*) FROM t").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_data_check_stops_the_run_before_the_app_is_repointed() {
    let Some(fx) = fixture().await else { return };
    let pg = fx.provider();
    exec(
        &pg,
        &primary_ref(),
        "CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2)",
    )
    .await;
    caught_up(&pg).await;
    fx.pair
        .primary()
        .stop(true)
        .await
        .expect("crash the primary");
    // The runbook expects at least 1000 rows: the standby has two.
    let plan = plan_with(
        "30s",
        r#"{ checksum: t }, { row_count: t, min: 1000 }, { name: ids, query: "SELECT max(id) FROM t", expected: "2" }"#,
    );
    let sim = simulation(&plan);
    let providers = providers(&sim, &pg);
    let observed = ObservedState::observe(&plan, &providers, Utc::now()).await;
    let graph = planner::plan(&plan, "database-failure", &observed).expect("a graph");
    let report = Executor::new(providers).run(&graph).await;
    assert!(!report.succeeded(), "{report}");
    let verify = report
        .step("orders-db/verify-data")
        .expect("verify-data step");
    let error = verify.error.clone().unwrap_or_default();
    assert!(
        error.contains("row count of t is 2, expected at least 1000"),
        "{report}"
    );
    // Only the failed check is named as failed; the others' values are reported.
    assert!(!error.contains("ids"), "{error}");
    let out = serde_json::to_string(&verify.output).expect("output");
    assert!(out.contains("\"checksum of t\""), "{out}");
    assert!(
        report.to_string().contains("row count of t is 2"),
        "the text report names the failed check: {report}"
    );
    // The promotion happened (the checks run on the promoted instance); the secret was
    // never written.
    let set = report.step("api/set-secret").expect("set-secret step");
    assert!(
        set.error
            .as_deref()
            .is_some_and(|e| e.contains("skipped") || e.contains("dependency")),
        "{report}"
    );
    let written = sim
        .cloud()
        .cluster()
        .read_secret("apps", "shop", "shop-secrets", "DATABASE_URL")
        .await;
    assert!(written.is_err(), "the secret was written: {report}");
}

/// Inserts one row a tick on the primary for `ticks` ticks of `every`, recording each
/// row's commit time; returns (id, committed at) per row.
async fn write_rows(
    pg: &PostgresDatabase,
    from: i32,
    ticks: i32,
    every: Duration,
) -> Vec<(i32, DateTime<Utc>)> {
    let client = pg.client(&primary_ref()).await.expect("connect");
    let mut out = Vec::new();
    for id in from..from + ticks {
        let row = client
            .query_one(
                "INSERT INTO t (id, at) VALUES ($1, clock_timestamp()) RETURNING at",
                &[&id],
            )
            .await
            .expect("insert");
        out.push((id, row.get(0)));
        tokio::time::sleep(every).await;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_past_the_rpo_is_forecast_and_the_report_matches_the_rows_lost() {
    let Some(fx) = fixture().await else { return };
    let pg = fx.provider();
    exec(
        &pg,
        &primary_ref(),
        "CREATE TABLE t (id int PRIMARY KEY, at timestamptz NOT NULL)",
    )
    .await;
    let kept = write_rows(&pg, 0, 5, Duration::from_millis(20)).await;
    caught_up(&pg).await;

    // The standby stops receiving WAL (a network partition): it keeps what it has.
    exec(
        &pg,
        &standby_ref(),
        "ALTER SYSTEM SET primary_conninfo = ''",
    )
    .await;
    exec(&pg, &standby_ref(), "SELECT pg_reload_conf()").await;
    for _ in 0..50 {
        let streaming = count(
            &pg,
            &standby_ref(),
            "SELECT count(*) FROM pg_stat_wal_receiver",
        )
        .await;
        if streaming == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lost = write_rows(&pg, 100, 20, Duration::from_millis(100)).await;

    // The lag is measured for real, against the primary, and is past the 1 s RPO.
    let lag = pg
        .describe(&standby_ref())
        .await
        .expect("describe")
        .replication_lag
        .expect("a measured lag");
    assert!(lag > Duration::from_secs(1), "lag {lag:?}");

    // The planner sees it: the region failover's forecast misses the RPO, with a risk.
    let plan = plan();
    let sim = simulation(&plan);
    let providers = providers(&sim, &pg);
    let observed = ObservedState::observe(&plan, &providers, Utc::now()).await;
    let seen = observed.databases["orders-db"].replicas["standby"]
        .lag
        .expect("lag observed");
    assert!(seen > Duration::from_secs(1), "observed lag {seen:?}");
    let graph = planner::plan(&plan, "region-failover", &observed).expect("region failover");
    let api = graph
        .services
        .iter()
        .find(|s| s.name == "api")
        .expect("api forecast");
    assert!(
        api.forecast_rpo.is_some_and(|r| r > Duration::from_secs(1)),
        "forecast {api:?}"
    );
    assert!(!api.within_targets, "{api:?}");
    assert!(
        graph
            .risks
            .iter()
            .any(|r| r.service.as_deref() == Some("api")),
        "an RPO risk for api: {:?}",
        graph.risks
    );

    // The primary crashes; the database-failure scenario promotes the lagging standby.
    fx.pair
        .primary()
        .stop(true)
        .await
        .expect("crash the primary");
    let observed = ObservedState::observe(&plan, &providers, Utc::now()).await;
    let graph = planner::plan(&plan, "database-failure", &observed).expect("a graph");

    // Not accepted: the RPO gate re-reads the lag right before the promotion and refuses
    // it; the standby is not promoted.
    let refused = Executor::new(providers.clone()).run(&graph).await;
    assert!(!refused.succeeded(), "{refused}");
    let error = refused
        .step("orders-db/promote")
        .and_then(|s| s.error.clone())
        .unwrap_or_default();
    assert!(error.contains("rpo gate refused"), "{refused}");
    assert!(error.contains("--accept-data-loss api="), "{error}");
    let still = pg.describe(&standby_ref()).await.expect("describe");
    assert!(
        matches!(still.role, DbRole::Replica { .. }),
        "refused, yet promoted: {still:?}"
    );

    // Accepted explicitly: the promotion goes ahead and the override is reported.
    let run_start = Utc::now();
    let report = Executor::new(providers)
        .accept_data_loss("api", Duration::from_secs(3600))
        .run(&graph)
        .await;
    let run_end = Utc::now();
    assert!(report.succeeded(), "{report}");
    assert!(report.overrides.iter().any(|o| o.gate == "rpo"), "{report}");
    let window = report
        .step("orders-db/promote")
        .and_then(|s| s.data_loss)
        .expect("the promotion records its data-loss window");
    let svc = report.service("api").expect("api report");
    assert_eq!(svc.achieved_rpo, Some(window), "{report}");
    assert!(
        !svc.met,
        "a window past the RPO misses the target: {report}"
    );

    // Count what did not make it: the kept rows are there, the rows written after the
    // partition are not.
    let present = count(&pg, &standby_ref(), "SELECT count(*) FROM t").await;
    assert_eq!(present as usize, kept.len(), "rows on the promoted standby");
    let ids: Vec<i32> = pg
        .client(&standby_ref())
        .await
        .expect("connect")
        .query("SELECT id FROM t ORDER BY id", &[])
        .await
        .expect("ids")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, kept.iter().map(|k| k.0).collect::<Vec<_>>());
    assert_eq!(lost.len(), 20, "rows lost");

    // The window matches what was lost. It was measured (when the executor read the lag,
    // during the run) from the last instant the provider saw the standby complete: after
    // the last kept row, before the partition and so before every lost row.
    let proven = pg
        .known_complete(&standby_ref())
        .expect("the standby was seen complete before the partition");
    let last_kept = kept.last().expect("kept rows").1;
    assert!(
        proven >= last_kept,
        "the window starts at {proven}, before the last kept row {last_kept}"
    );
    let w = chrono::Duration::from_std(window).expect("window");
    let measured_at = proven + w;
    let slack = chrono::Duration::milliseconds(50);
    assert!(
        run_start - slack <= measured_at && measured_at <= run_end + slack,
        "window {window:?} measured at {measured_at}, outside the run {run_start} .. {run_end}"
    );
    for (id, at) in &lost {
        assert!(
            proven < *at && *at <= measured_at,
            "lost row {id} at {at} lies outside the window {proven} .. {measured_at}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_replay_is_forecast_past_the_rpo_and_promotion_replays_what_was_received() {
    let Some(fx) = fixture().await else { return };
    let pg = fx.provider();
    exec(
        &pg,
        &primary_ref(),
        "CREATE TABLE t (id int PRIMARY KEY, at timestamptz NOT NULL)",
    )
    .await;
    write_rows(&pg, 0, 3, Duration::from_millis(10)).await;
    caught_up(&pg).await;
    // Caught up in WAL position is not yet visible to a query on the standby: wait until
    // the three rows are, so that pausing keeps exactly them.
    for _ in 0..100 {
        if count(&pg, &standby_ref(), "SELECT count(*) FROM t").await == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    exec(&pg, &standby_ref(), "SELECT pg_wal_replay_pause()").await;
    let written = write_rows(&pg, 100, 15, Duration::from_millis(100)).await;
    assert_eq!(
        count(&pg, &standby_ref(), "SELECT count(*) FROM t").await,
        3
    );

    let plan = plan();
    let sim = simulation(&plan);
    let providers = providers(&sim, &pg);
    let observed = ObservedState::observe(&plan, &providers, Utc::now()).await;
    let lag = observed.databases["orders-db"].replicas["standby"]
        .lag
        .expect("lag");
    assert!(lag > Duration::from_secs(1), "paused replay: lag {lag:?}");
    let graph = planner::plan(&plan, "region-failover", &observed).expect("region failover");
    let api = graph
        .services
        .iter()
        .find(|s| s.name == "api")
        .expect("api");
    assert!(
        api.forecast_rpo.is_some_and(|r| r > Duration::from_secs(1)) && !api.within_targets,
        "{api:?}"
    );

    // PostgreSQL ends the pause on promotion and replays all WAL the standby received
    // first: the paused backlog is not lost, so the lag was an upper bound of the loss.
    pg.promote(&standby_ref()).await.expect("promote");
    assert_eq!(
        count(&pg, &standby_ref(), "SELECT count(*) FROM t").await as usize,
        3 + written.len()
    );
}
