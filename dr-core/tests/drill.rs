//! Drills on the simulated cloud: a scenario rehearsed on an isolated copy never changes
//! production (every call listed and checked), cleans up, and reports; the
//! backup-verification drill; the drill history's trend.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dr_core::backup::{Backups, RetentionClass, WriteOptions};
use dr_core::drill::{
    BackupDrill, DrillHistory, Production, ProductionGuard, ScenarioDrill, StartsWith,
};
use dr_core::layer::CallLog;
use dr_core::plan::Plan;
use dr_core::provider::{
    DatabaseReplica, DbRef, DbRole, DnsFailover, SnapshotStore, SnapshotStoreExt,
};
use dr_core::sim::SimConfig;
use dr_core::simulation::Simulation;
use dr_core::store::InMemoryStore;
use dr_core::{Error, Providers};
use futures::StreamExt;

fn bundled() -> Plan {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/plans/region-failover.yaml");
    Plan::load(&path).unwrap()
}

/// The part of a call's target that names what it changes: the first database
/// (`us-east-1/shop-prod`), the `cluster/namespace/…` path, or the `zone/record`.
fn addressed(call: &str) -> String {
    // "{at} {role} {operation} on {target}: {result}"
    let target = call.split_once(" on ").map_or("", |(_, t)| t);
    let target = target.rsplit_once(": ").map_or(target, |(t, _)| t);
    let target = target.strip_prefix("database ").unwrap_or(target);
    let first = target.split_whitespace();
    let words: Vec<&str> = first.collect();
    // Workload targets are "{kind} {cluster}/{ns}/{name}".
    match words.as_slice() {
        [kind, path, ..] if !kind.contains('/') && path.contains('/') => path.to_string(),
        [t, ..] => t.to_string(),
        [] => String::new(),
    }
}

const READS: [&str; 11] = [
    " describe ",
    " describe_cache ",
    " list_cache_backups ",
    " list_snapshots ",
    " describe_snapshot ",
    " get_record ",
    " wait_change ",
    " rollout_status ",
    " read_secret ",
    " probe ",
    " health_check_status ",
];

#[tokio::test(start_paused = true)]
async fn region_failover_drill_never_changes_production() {
    let plan = bundled();
    let sim = Simulation::new(&plan, 7, SimConfig::default());
    // What production looks like, less the restore point (it moves with time).
    let production_state = || async {
        let mut dbs = sim.observe().await.databases;
        for o in dbs.values_mut() {
            if let Some(p) = o.primary.as_mut() {
                p.latest_restorable_time = None;
            }
        }
        format!("{dbs:?}")
    };
    let before = production_state().await;
    let api_record = || async {
        sim.cloud()
            .dns()
            .get_record("Z0SHOP", "api.shop.example.com")
            .await
            .unwrap()
            .values
    };
    let api_before = api_record().await;
    let report = ScenarioDrill::new(&plan, "region-failover")
        .tag("d1")
        .run_in(&sim)
        .await
        .unwrap();
    assert!(report.passed, "{}", report.to_markdown());
    assert!(report.run.succeeded());
    assert!(report.production_changed.is_empty());
    assert!(report.refused.is_empty());
    // The session cache was restored under the drill's own id from production's backup
    // (read only), then removed; production's cache is still the only one.
    assert!(
        report
            .cleaned_up
            .iter()
            .any(|c| c == "cache us-west-2/shop-sessions-dr-d1"),
        "{:?}",
        report.cleaned_up
    );
    let caches: Vec<String> = sim
        .cloud()
        .caches_restored()
        .iter()
        .map(|(c, _)| format!("{}/{}", c.region, c.id))
        .collect();
    assert_eq!(caches, ["us-east-1/shop-sessions"]);
    assert!(!report.calls.is_empty());

    // Every call, listed by the call log: none that changes anything addresses a
    // production resource.
    let production = Production::of(&plan);
    let prod_ns: Vec<String> = production.namespaces.iter().cloned().collect();
    for call in &report.calls {
        if READS.iter().any(|r| call.contains(r)) {
            continue;
        }
        let what = addressed(call);
        assert!(!what.is_empty(), "{call}");
        assert!(
            !production.databases.contains(&what),
            "changed production: {call}"
        );
        assert!(
            !production.records.contains(&what),
            "changed production: {call}"
        );
        assert!(
            !prod_ns
                .iter()
                .any(|ns| what == *ns || what.starts_with(&format!("{ns}/"))),
            "changed production: {call}"
        );
        assert!(
            what.contains("-d1") || what.contains("/d1."),
            "a change outside the drill's copy: {call}"
        );
    }
    // Production reads as before: same DNS answers, same database roles.
    assert_eq!(before, production_state().await);
    assert_eq!(api_before, api_record().await);
    let db = sim.cloud().database();
    let primary = db
        .describe(&DbRef::new("us-east-1", "shop-prod"))
        .await
        .unwrap();
    assert_eq!(primary.role, DbRole::Primary);
    let replica = db
        .describe(&DbRef::new("us-west-2", "shop-prod-west"))
        .await
        .unwrap();
    assert!(matches!(replica.role, DbRole::Replica { .. }));

    // Everything created was removed.
    assert!(report.not_cleaned.is_empty(), "{:?}", report.not_cleaned);
    assert_eq!(report.cleaned_up.len(), report.created.len());
    for test_db in [
        DbRef::new("us-east-1", "shop-prod-d1"),
        DbRef::new("us-west-2", "shop-prod-west-d1"),
    ] {
        assert!(matches!(
            db.describe(&test_db).await,
            Err(Error::NotFound { .. })
        ));
    }
    let dns = sim.cloud().dns();
    assert!(dns
        .get_record("Z0SHOP", "d1.api.shop.example.com")
        .await
        .is_err());

    // The evidence reads on its own.
    let md = report.to_markdown();
    for part in [
        "# Drill `d1`: shop-web / region-failover — ✅ passed",
        "## Targets against achieved",
        "## Isolation",
        "## Cleanup",
        "## Recovery run: shop-web-d1 / region-failover",
        "### Timeline",
        "### Critical path",
        "### Post-incident review",
    ] {
        assert!(md.contains(part), "no {part} in\n{md}");
    }
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["passed"], true);
    assert_eq!(json["production_changed"].as_array().unwrap().len(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_guard_refuses_changes_to_production() {
    let plan = bundled();
    let sim = Simulation::new(&plan, 7, SimConfig::default());
    let log = Arc::new(CallLog::with_clock(sim.cloud().clock()));
    let providers = sim
        .providers()
        .layer(Arc::new(ProductionGuard::new(Production::of(&plan))))
        .layer(log.clone());
    let db = providers.database("us-west-2").unwrap();
    let replica = DbRef::new("us-west-2", "shop-prod-west");
    assert!(db.describe(&replica).await.is_ok());
    let refused = db.promote(&replica).await.unwrap_err();
    assert!(matches!(refused, Error::Unauthorized { .. }), "{refused}");
    assert!(refused.to_string().contains("never changes production"));
    // The log saw the attempt; it never took effect and the replica is still one.
    let calls = log.calls();
    let promote = calls
        .iter()
        .find(|c| c.operation.name() == "promote")
        .unwrap();
    assert!(!promote.took_effect);
    let status = sim.cloud().database().describe(&replica).await.unwrap();
    assert!(matches!(status.role, DbRole::Replica { .. }));
    let _: &Providers = &providers;
}

#[tokio::test(start_paused = true)]
async fn database_failure_drill_and_history_trend() {
    let plan = bundled();
    let dir = tempfile::tempdir().unwrap();
    let history = DrillHistory::open(dir.path()).unwrap();
    for (i, seed) in [3u64, 4, 5].into_iter().enumerate() {
        let report = ScenarioDrill::new(&plan, "database-failure")
            .tag(&format!("h{i}"))
            .seed(seed)
            .run_on_sim()
            .await
            .unwrap();
        assert!(report.production_changed.is_empty());
        assert!(report.not_cleaned.is_empty(), "{:?}", report.not_cleaned);
        history.append(&report).unwrap();
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let trend = history.trend(2).unwrap();
    let api = trend.iter().find(|t| t.service == "api").unwrap();
    assert_eq!(api.points.len(), 2, "the last two drills only");
    assert_eq!(api.points[0].tag, "h1");
    assert_eq!(api.points[1].tag, "h2");
    assert!(api.points.iter().all(|p| p.achieved_rto.is_some()));
    let summary = history.summary(3).unwrap();
    assert!(summary.contains("| api | 15m |"), "{summary}");
    assert!(summary.contains(" → "), "{summary}");
    assert!(summary.contains("/3 |"), "{summary}");
    // Each drill's evidence is kept beside its record.
    let files = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(files, 9);
}

async fn backups_with(n: usize) -> (Backups, Arc<InMemoryStore>) {
    let store = Arc::new(InMemoryStore::new());
    let backups = Backups::new(store.clone());
    for i in 0..n {
        let body = format!("PGDMP orders dump {i} {}", "x".repeat(1000 + i));
        let data = futures::stream::iter([Ok(Bytes::from(body))]).boxed();
        backups
            .write(
                &format!("db/orders/{i:02}.dump"),
                data,
                "database orders-db",
                RetentionClass::Daily,
                WriteOptions::default(),
            )
            .await
            .unwrap();
    }
    (backups, store)
}

#[tokio::test]
async fn backup_drill_restores_verifies_and_cleans_up() {
    let (backups, _) = backups_with(5).await;
    let target = Arc::new(InMemoryStore::new());
    let drill = BackupDrill::new(backups, target.clone())
        .prefix("db/orders/")
        .seed(11)
        .data_check(Arc::new(StartsWith {
            prefix: b"PGDMP".to_vec(),
            min_size: 1000,
        }));
    let report = drill.run().await;
    assert!(report.passed, "{}", report.to_markdown());
    assert_eq!(report.candidates, 5);
    let chosen = report.backup.clone().unwrap();
    assert_eq!(report.restored_sha256, chosen.sha256);
    assert!(report.restore_time.is_some());
    assert!(report.data_check.as_ref().unwrap().contains("5 bytes"));
    // The same seed picks the same backup; the copy is gone from the target.
    assert_eq!(drill.run().await.backup.unwrap().key, chosen.key);
    assert!(target.list_all("").await.unwrap().is_empty());
    assert_eq!(report.cleaned_up.len(), 1);
    // Other seeds reach other backups.
    let mut keys = std::collections::BTreeSet::new();
    for seed in 0..20 {
        let (b, _) = backups_with(5).await;
        let r = BackupDrill::new(b, Arc::new(InMemoryStore::new()))
            .seed(seed)
            .run()
            .await;
        keys.insert(r.backup.unwrap().key);
    }
    assert!(keys.len() >= 3, "{keys:?}");
    let md = report.to_markdown();
    assert!(
        md.starts_with("# Backup verification drill: ✅ passed"),
        "{md}"
    );
    assert!(md.contains("| Checksums | ✅ SHA-256 of"), "{md}");
}

#[tokio::test]
async fn a_corrupt_backup_fails_the_drill_and_is_still_cleaned_up() {
    let (backups, store) = backups_with(1).await;
    // Same size, other bytes: only the checksum can tell.
    let key = "db/orders/00.dump";
    let original = store.get_bytes(key).await.unwrap();
    let mut bad = original.to_vec();
    bad[10] ^= 0xFF;
    store.put_bytes(key, Bytes::from(bad)).await.unwrap();
    let target = Arc::new(InMemoryStore::new());
    let report = BackupDrill::new(backups, target.clone()).run().await;
    assert!(!report.passed);
    let err = report.checksums.clone().unwrap_err();
    assert!(
        err.to_lowercase().contains("checksum") || err.contains("sha256"),
        "{err}"
    );
    assert!(target.list_all("").await.unwrap().is_empty());
    assert!(report.not_cleaned.is_empty());
    assert!(report.to_markdown().contains("❌ failed"));
}

#[tokio::test]
async fn no_recent_backup_is_a_failed_drill() {
    let (backups, _) = backups_with(2).await;
    let report = BackupDrill::new(backups, Arc::new(InMemoryStore::new()))
        .max_age(Duration::ZERO)
        .clock(dr_core::Clock::starting_at(
            chrono::Utc::now() + chrono::Duration::days(30),
        ))
        .run()
        .await;
    assert!(!report.passed);
    assert_eq!(report.candidates, 0);
    assert!(report.checksums.unwrap_err().contains("no backup"));
}

#[test]
fn the_copy_renames_every_resource() {
    let plan = bundled();
    let copy = ScenarioDrill::new(&plan, "region-failover")
        .tag("x9")
        .isolated_plan();
    let prod = Production::of(&plan);
    let test = Production::of(&copy);
    assert!(prod.databases.is_disjoint(&test.databases), "{test:?}");
    assert!(prod.namespaces.is_disjoint(&test.namespaces), "{test:?}");
    assert!(prod.records.is_disjoint(&test.records), "{test:?}");
    assert!(copy.scenarios.iter().all(|s| s.notify.is_empty()));
    let _ = SnapshotStore::name(&InMemoryStore::new());
}

#[tokio::test(start_paused = true)]
async fn every_bundled_scenario_drills_without_touching_production() {
    let plan = bundled();
    let mut drilled = 0;
    for sc in &plan.scenarios {
        let result = ScenarioDrill::new(&plan, &sc.name)
            .tag("all")
            .run_on_sim()
            .await;
        let report = match result {
            Ok(r) => r,
            // Kinds whose incident writes the shared stores, or that scale and drain the
            // shared node groups, are refused up front, named.
            Err(e @ dr_core::drill::DrillError::Unsupported { .. })
                if matches!(
                    sc.kind.name(),
                    "dump-restore" | "backup" | "node-group-failure"
                ) =>
            {
                assert!(e.to_string().contains(sc.kind.name()), "{e}");
                continue;
            }
            Err(e) => panic!("{}: {e}", sc.name),
        };
        drilled += 1;
        assert!(report.passed, "{}:\n{}", sc.name, report.to_markdown());
        assert!(report.production_changed.is_empty(), "{}", sc.name);
        assert!(
            report.refused.is_empty(),
            "{}: {:?}",
            sc.name,
            report.refused
        );
        assert!(
            report.not_cleaned.is_empty(),
            "{}: {:?}",
            sc.name,
            report.not_cleaned
        );
        println!(
            "{}: passed {} ({} of {} services met)",
            sc.name,
            report.passed,
            report.run.services.iter().filter(|s| s.met).count(),
            report.run.services.len()
        );
    }
    assert!(drilled >= 7, "only {drilled} scenarios drilled");
}
