//! State-machine tests of the simulated cloud, on a paused tokio clock.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::provider::{
    DbRef, DbRole, DbState, DnsRecord, HealthStatus, Manifest, RestorePoint, Routing, WorkloadRef,
};

const MIN: Duration = Duration::from_secs(60);

fn pair(cloud: &SimCloud) -> (DbRef, DbRef) {
    let primary = DbRef::new("us-east-1", "orders");
    let replica = DbRef::new("us-west-2", "orders-replica");
    cloud.add_database(&primary, None);
    cloud.add_database(&replica, Some(&primary));
    (primary, replica)
}

#[tokio::test(start_paused = true)]
async fn promotion_takes_five_simulated_minutes() -> Result<()> {
    let cloud = SimCloud::new(1);
    let (primary, replica) = pair(&cloud);
    let db = cloud.database();
    let before = db.describe(&replica).await?;
    assert_eq!(before.replication_lag, Some(Duration::from_secs(30)));
    assert_eq!(
        before.endpoint.as_deref(),
        Some("orders-replica.us-west-2.sim.internal:5432")
    );
    let started = tokio::time::Instant::now();
    let s = db.promote(&replica).await?;
    assert_eq!(s.state, DbState::Modifying);
    tokio::time::sleep(4 * MIN).await;
    let s = db.describe(&replica).await?;
    assert_eq!((s.state, s.role.clone()), (DbState::Modifying, before.role));
    let s = db.wait_available(&replica, 60 * MIN).await?;
    assert_eq!(s.role, DbRole::Primary);
    let took = started.elapsed();
    assert!(took >= 5 * MIN && took < 6 * MIN, "{took:?}");
    assert!(s.latest_restorable_time.is_some());
    // Promoting a primary is refused, and a refused call changes nothing.
    for target in [&primary, &replica] {
        let err = db.promote(target).await.err();
        assert!(matches!(err, Some(Error::InvalidState { .. })), "{err:?}");
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn snapshots_restores_and_point_in_time() -> Result<()> {
    let cloud = SimCloud::new(2);
    let (primary, _) = pair(&cloud);
    let db = cloud.database();
    cloud.add_snapshot(&primary, "us-east-1", "nightly", 6 * 60 * MIN);
    let snap = db.create_snapshot(&primary, "manual").await?;
    assert!(!snap.available);
    let listed = db.list_snapshots(&primary, "us-east-1").await?;
    assert_eq!(
        listed.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["manual", "nightly"]
    );
    let nightly = db.describe_snapshot("us-east-1", "nightly").await?;
    // Restoring in another region needs a copy first.
    let west = DbRef::new("us-west-2", "orders-restored");
    let err = db.restore_snapshot(&nightly, &west).await.err();
    assert!(matches!(err, Some(Error::InvalidRequest { .. })), "{err:?}");
    let copy = db
        .copy_snapshot(&nightly, "us-west-2", "nightly-copy")
        .await?;
    assert_eq!((copy.available, copy.created), (false, nightly.created));
    let err = db.restore_snapshot(&copy, &west).await.err();
    assert!(matches!(err, Some(Error::InvalidState { .. })), "{err:?}");
    tokio::time::sleep(10 * MIN).await;
    let copy = db.describe_snapshot("us-west-2", "nightly-copy").await?;
    let s = db.restore_snapshot(&copy, &west).await?;
    assert_eq!((s.state, s.endpoint), (DbState::Creating, None));
    let s = db.wait_available(&west, 60 * MIN).await?;
    assert_eq!(s.role, DbRole::Primary);
    // Point in time: inside the window, outside it, latest.
    let latest = db.describe(&primary).await?.latest_restorable_time;
    let Some(latest) = latest else {
        panic!("a primary has a latest restorable time")
    };
    let too_late = latest + chrono::Duration::minutes(1);
    let err = db
        .restore_to_point_in_time(
            &primary,
            &DbRef::new("us-east-1", "x"),
            RestorePoint::At(too_late),
        )
        .await
        .err();
    assert!(matches!(err, Some(Error::InvalidRequest { .. })), "{err:?}");
    let too_old = latest - chrono::Duration::days(8);
    let err = db
        .restore_to_point_in_time(
            &primary,
            &DbRef::new("us-east-1", "x"),
            RestorePoint::At(too_old),
        )
        .await
        .err();
    assert!(matches!(err, Some(Error::InvalidRequest { .. })), "{err:?}");
    let pitr = DbRef::new("us-east-1", "orders-pitr");
    let at = RestorePoint::At(latest - chrono::Duration::hours(1));
    assert_eq!(
        db.restore_to_point_in_time(&primary, &pitr, at)
            .await?
            .state,
        DbState::Creating
    );
    let err = db
        .restore_to_point_in_time(&primary, &pitr, RestorePoint::Latest)
        .await
        .err();
    assert!(matches!(err, Some(Error::AlreadyExists { .. })), "{err:?}");
    tokio::time::sleep(24 * MIN).await;
    assert_eq!(db.describe(&pitr).await?.state, DbState::Creating);
    tokio::time::sleep(2 * MIN).await;
    assert_eq!(db.describe(&pitr).await?.state, DbState::Available);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn dns_changes_propagate() -> Result<()> {
    let cloud = SimCloud::new(3);
    cloud.add_record("zone-1", "api.example.com", "lb.east.example.com");
    let dns = cloud.dns();
    let mut record = dns.get_record("zone-1", "api.example.com").await?;
    assert_eq!(record.record_type, "CNAME");
    let same = dns.switch_record(&record).await?;
    assert!(
        same.in_sync,
        "a switch to identical values is in sync at once"
    );
    record.values = vec!["lb.west.example.com".into()];
    let change = dns.switch_record(&record).await?;
    assert!(!change.in_sync);
    assert_eq!(
        dns.get_record("zone-1", "api.example.com").await?.values,
        record.values
    );
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(!dns.get_change(&change.id).await?.in_sync);
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert!(dns.get_change(&change.id).await?.in_sync);
    let err = dns.get_record("zone-1", "missing.example.com").await.err();
    assert!(err.as_ref().is_some_and(Error::is_not_found), "{err:?}");
    let mut other = record.clone();
    other.zone = "no-such-zone".into();
    assert!(dns
        .switch_record(&other)
        .await
        .err()
        .is_some_and(|e| e.is_not_found()));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn rollouts_revisions_and_undo() -> Result<()> {
    let cloud = SimCloud::new(4);
    let api = WorkloadRef::deployment("west", "shop", "api");
    cloud.add_workload(&api, 2);
    let k8s = cloud.cluster();
    let s = k8s.rollout_status(&api).await?;
    assert!(s.is_complete() && s.revision == 1);
    k8s.set_image(&api, "main", "api:2").await?;
    let s = k8s.rollout_status(&api).await?;
    assert_eq!(
        (s.revision, s.updated_replicas, s.available_replicas),
        (2, 0, 2)
    );
    assert!(!s.is_complete());
    // Setting the same image again is no new revision.
    k8s.set_image(&api, "main", "api:2").await?;
    assert_eq!(k8s.wait_ready(&api, 5 * MIN).await?.revision, 2);
    let env = BTreeMap::from([("DB_HOST".to_string(), "west-db".to_string())]);
    k8s.set_env(&api, &env).await?;
    assert_eq!(k8s.rollout_status(&api).await?.env, env);
    assert_eq!(k8s.rollout_undo(&api, None).await?, 4);
    assert!(k8s.rollout_status(&api).await?.env.is_empty());
    assert_eq!(k8s.rollout_undo(&api, Some(1)).await?, 5);
    let err = k8s.rollout_undo(&api, Some(99)).await.err();
    assert!(err.as_ref().is_some_and(Error::is_not_found), "{err:?}");
    assert_eq!(k8s.rollout_restart(&api).await?, 6);
    // Scaling: to zero at once, up after the rollout duration.
    k8s.scale(&api, 0).await?;
    assert!(k8s.rollout_status(&api).await?.is_complete());
    k8s.scale(&api, 3).await?;
    assert_eq!(k8s.rollout_status(&api).await?.available_replicas, 0);
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert_eq!(k8s.rollout_status(&api).await?.available_replicas, 3);
    k8s.delete_pod("west", "shop", "api-1").await?;
    assert_eq!(k8s.rollout_status(&api).await?.available_replicas, 2);
    assert!(k8s.delete_pod("west", "shop", "api-7").await.is_err());
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn apply_export_and_secrets() -> Result<()> {
    let cloud = SimCloud::new(5);
    cloud.add_cluster("west", "us-west-2", "lb.west.example.com");
    let k8s = cloud.cluster();
    let deployment = Manifest {
        kind: "Deployment".into(),
        name: "web".into(),
        body: "kind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers:\n      - name: web\n        image: web:7\n".into(),
    };
    let config = Manifest {
        kind: "ConfigMap".into(),
        name: "settings".into(),
        body: "kind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: b\n".into(),
    };
    k8s.apply("west", "shop", &[deployment.clone(), config.clone()])
        .await?;
    let web = WorkloadRef::deployment("west", "shop", "web");
    assert_eq!(k8s.wait_ready(&web, 5 * MIN).await?.replicas, 2);
    let exported = k8s.export("west", "shop", &[]).await?;
    let kinds: Vec<&str> = exported.iter().map(|m| m.kind.as_str()).collect();
    assert_eq!(kinds, ["ConfigMap", "Deployment"]);
    assert!(exported[1].body.contains("web:7"), "{}", exported[1].body);
    assert_eq!(
        k8s.export("west", "shop", &["configmap".into()]).await?,
        [config]
    );
    let bad = Manifest {
        name: "other".into(),
        ..deployment
    };
    assert!(matches!(
        k8s.apply("west", "shop", &[bad]).await,
        Err(Error::InvalidRequest { .. })
    ));
    assert!(k8s
        .apply("nowhere", "shop", &[])
        .await
        .err()
        .is_some_and(|e| e.is_not_found()));
    let data = BTreeMap::from([("password".to_string(), crate::Secret::new("s3cr3t"))]);
    k8s.patch_secret("west", "shop", "db", &data).await?;
    assert_eq!(
        k8s.read_secret("west", "shop", "db", "password")
            .await?
            .expose(),
        "s3cr3t"
    );
    assert!(k8s.patch_secret("west", "nope", "db", &data).await.is_err());
    assert!(!format!("{:?}", cloud.calls()).contains("s3cr3t"));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn region_failure_and_recovery() -> Result<()> {
    let cloud = SimCloud::new(6);
    let (primary, replica) = pair(&cloud);
    cloud.add_cluster("east", "us-east-1", "lb.east.example.com");
    let api = WorkloadRef::deployment("east", "shop", "api");
    cloud.add_workload(&api, 2);
    cloud.fail_region("us-east-1");
    let db = cloud.database();
    assert_eq!(db.describe(&primary).await?.state, DbState::Failed);
    let err = db.reboot(&primary, false).await.err();
    assert!(matches!(err, Some(Error::Unavailable { .. })), "{err:?}");
    assert_eq!(db.describe(&replica).await?.state, DbState::Available);
    let k8s = cloud.cluster();
    assert_eq!(k8s.rollout_status(&api).await?.available_replicas, 0);
    assert!(matches!(
        k8s.scale(&api, 3).await,
        Err(Error::Unavailable { .. })
    ));
    cloud.recover_region("us-east-1");
    assert_eq!(db.describe(&primary).await?.state, DbState::Available);
    assert_eq!(k8s.rollout_status(&api).await?.available_replicas, 2);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn bound_endpoint_follows_dns_and_workloads() -> Result<()> {
    let cloud = SimCloud::new(7);
    cloud.add_cluster("east", "us-east-1", "lb.east.example.com");
    cloud.add_cluster("west", "us-west-2", "lb.west.example.com");
    let east = WorkloadRef::deployment("east", "shop", "api");
    let west = WorkloadRef::deployment("west", "shop", "api");
    cloud.add_workload(&east, 3);
    cloud.add_workload(&west, 0);
    cloud.add_record("zone-1", "api.example.com", "lb.east.example.com");
    cloud.add_health_check("hc-api", "https://api.example.com/health");
    let binding = EndpointBinding {
        zone: "zone-1".into(),
        record: "api.example.com".into(),
        workloads: vec![east.clone(), west.clone()],
        via: None,
    };
    cloud.bind_endpoint("https://api.example.com/health", binding);
    let probe = cloud.probe();
    let check = || probe.check("https://api.example.com/health");
    assert_eq!(check().await?, HealthStatus::Healthy);
    cloud.fail_region("us-east-1");
    assert_eq!(check().await?, HealthStatus::Unhealthy);
    assert_eq!(
        cloud.dns().health_check_status("hc-api").await?,
        HealthStatus::Unhealthy
    );
    // Switching DNS without scaling up the west is still unhealthy.
    let dns = cloud.dns();
    let mut record = dns.get_record("zone-1", "api.example.com").await?;
    record.values = vec!["lb.west.example.com".into()];
    let change = dns.switch_record(&record).await?;
    dns.wait_change(&change.id, 10 * MIN).await?;
    assert_eq!(check().await?, HealthStatus::Unhealthy);
    cloud.cluster().scale(&west, 2).await?;
    assert_eq!(
        check().await?,
        HealthStatus::Unhealthy,
        "pods not ready yet"
    );
    cloud.cluster().wait_ready(&west, 5 * MIN).await?;
    assert_eq!(check().await?, HealthStatus::Healthy);
    cloud.cluster().isolate(&west).await?;
    assert_eq!(check().await?, HealthStatus::Unhealthy);
    assert_eq!(probe.check("unknown").await?, HealthStatus::Unknown);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn failover_routing_answers_the_secondary() -> Result<()> {
    let cloud = SimCloud::new(8);
    cloud.add_cluster("east", "us-east-1", "lb.east");
    cloud.add_cluster("west", "us-west-2", "lb.west");
    let (e, w) = (
        WorkloadRef::deployment("east", "ns", "api"),
        WorkloadRef::deployment("west", "ns", "api"),
    );
    cloud.add_workload(&e, 1);
    cloud.add_workload(&w, 1);
    for (primary, host) in [(true, "lb.east"), (false, "lb.west")] {
        cloud.add_record_set(DnsRecord {
            zone: "z".into(),
            name: "api".into(),
            record_type: "CNAME".into(),
            values: vec![host.into()],
            ttl: 60,
            routing: Routing::Failover {
                primary,
                set_id: host.into(),
            },
        });
    }
    let binding = EndpointBinding {
        zone: "z".into(),
        record: "api".into(),
        workloads: vec![e, w.clone()],
        via: None,
    };
    cloud.bind_endpoint("api", binding);
    cloud.fail_region("us-east-1");
    assert_eq!(cloud.probe().check("api").await?, HealthStatus::Healthy);
    cloud.cluster().isolate(&w).await?;
    assert_eq!(cloud.probe().check("api").await?, HealthStatus::Unhealthy);
    let set = cloud
        .dns()
        .get_record_set("z", "api", Some("lb.west"))
        .await?;
    assert_eq!(set.values, ["lb.west"]);
    Ok(())
}

async fn outcomes(seed: u64) -> Vec<(Operation, SimOutcome, DateTime<Utc>)> {
    let config = SimConfig::default().with_faults(
        FaultConfig::default()
            .with_rate(0.3)
            .with_throttle_rate(0.1),
    );
    let cloud = SimCloud::with_config(seed, config);
    let (primary, _) = pair(&cloud);
    let db = cloud.database();
    for _ in 0..40 {
        let _ = db.describe(&primary).await;
    }
    cloud
        .calls()
        .into_iter()
        .map(|c| (c.operation, c.outcome, c.at))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn faults_are_deterministic_per_seed() {
    let a = outcomes(11).await;
    let b = tokio::spawn(async { outcomes(11).await });
    let b = b.await.ok();
    let c = outcomes(12).await;
    let failures = a.iter().filter(|(_, o, _)| !o.is_ok()).count();
    assert!((5..35).contains(&failures), "{failures} of 40 calls failed");
    assert_eq!(Some(&a), b.as_ref(), "same seed, same outcomes and timings");
    assert_ne!(a, c, "another seed, other outcomes");
    let kinds: std::collections::BTreeSet<String> = a
        .iter()
        .filter_map(|(_, o, _)| match o {
            SimOutcome::Err { message, retry } => {
                assert_eq!(*retry, Retry::Temporary);
                Some(
                    message
                        .split(':')
                        .next_back()
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                )
            }
            SimOutcome::Ok => None,
        })
        .collect();
    assert!(kinds.len() >= 2, "{kinds:?}");
}

#[tokio::test(start_paused = true)]
async fn fail_after_effect_takes_effect() -> Result<()> {
    let rule = FaultRule::new(Some(Operation::Promote), "orders-replica").times(1);
    let config =
        SimConfig::default().with_faults(FaultConfig::default().with_fail_after_effect(rule));
    let cloud = SimCloud::with_config(9, config);
    let (_, replica) = pair(&cloud);
    let db = cloud.database();
    let err = db.promote(&replica).await.err();
    assert!(matches!(err, Some(Error::Unavailable { .. })), "{err:?}");
    // The read-back shows the promotion happened: do not promote again.
    assert_eq!(db.describe(&replica).await?.state, DbState::Modifying);
    let calls = cloud.calls();
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.operation == Operation::Promote)
            .count(),
        1
    );
    assert!(!calls[0].outcome.is_ok() && calls[1].outcome.is_ok());
    assert!(calls[0].at < calls[1].at);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn permanent_and_hanging_faults() -> Result<()> {
    let faults = FaultConfig::default()
        .with_permanent(FaultRule::new(Some(Operation::Reboot), ""))
        .with_hang(FaultRule::new(Some(Operation::Promote), "orders-replica"));
    let cloud = SimCloud::with_config(10, SimConfig::default().with_faults(faults));
    let (primary, replica) = pair(&cloud);
    let db = cloud.database();
    let err = db.reboot(&primary, false).await.err();
    assert_eq!(err.map(|e| e.retry()), Some(Retry::Permanent));
    assert_eq!(db.describe(&primary).await?.state, DbState::Available);
    let timed = tokio::time::timeout(10 * MIN, db.promote(&replica)).await;
    assert!(timed.is_err(), "the hanging call outlives the step timeout");
    assert_eq!(db.describe(&replica).await?.state, DbState::Available);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn notifications_are_recorded() -> Result<()> {
    use crate::provider::{Notification, Severity};
    let cloud = SimCloud::with_config(1, SimConfig::default().with_latency(Duration::ZERO));
    let note = Notification {
        severity: Severity::Critical,
        title: "down".into(),
        body: "east".into(),
    };
    cloud.notifier().notify("pager", &note).await?;
    assert_eq!(cloud.notifications(), [("pager".to_string(), note)]);
    assert_eq!(cloud.calls()[0].at, cloud.clock().now());
    Ok(())
}

#[cfg(feature = "testkit")]
#[tokio::test(start_paused = true)]
async fn sim_store_conforms() -> Result<()> {
    let cloud = SimCloud::new(12);
    let store = cloud.store("backups");
    let target = cloud.clone();
    let corrupt = move |key: String| {
        let target = target.clone();
        async move { target.corrupt_object("backups", &key) }
    };
    crate::testkit::store::run_all(&store, "sim/", &corrupt).await?;
    let calls = cloud.calls();
    assert!(calls.len() > 2200, "every store call is logged");
    assert!(calls.iter().all(|c| c.provider_role == "store"));
    // The only failures are the ones the suite provokes (not found, checksum mismatch).
    assert!(calls.iter().all(|c| matches!(
        &c.outcome,
        SimOutcome::Ok
            | SimOutcome::Err {
                retry: Retry::Permanent,
                ..
            }
    )));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_saved_cloud_loads_as_it_was_and_goes_on_in_time() {
    use crate::provider::DbState;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.cbor");
    let cloud = SimCloud::new(7);
    let db = DbRef::new("east", "orders");
    let replica = DbRef::new("west", "orders-west");
    cloud.add_database(&db, None);
    cloud.add_database(&replica, Some(&db));
    cloud.set_replication_lag(&replica, Duration::from_secs(20));
    cloud.persist_to(&path).unwrap();
    cloud.database().promote(&replica).await.unwrap();
    let store = cloud.store("backups");
    store
        .put(
            "a/b",
            futures::StreamExt::boxed(futures::stream::iter([Ok(bytes::Bytes::from_static(
                b"hello",
            ))])),
            crate::provider::PutOptions::default(),
        )
        .await
        .unwrap();
    cloud.fail_region("east");
    cloud.save(&path).unwrap();
    let calls = cloud.calls();
    let at = cloud.clock().now();

    let back = SimCloud::load(&path, SimConfig::default()).unwrap();
    assert_eq!(back.calls(), calls);
    assert!(back.is_region_down("east"));
    assert!(back.clock().now() >= at);
    // The promotion goes on from where it was: modifying, then a primary.
    let st = back.database().describe(&replica).await.unwrap();
    assert_eq!(st.state, DbState::Modifying);
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let st = back.database().describe(&replica).await.unwrap();
    assert_eq!(st.role, crate::provider::DbRole::Primary);
    let got = back.store("backups").get("a/b").await.unwrap();
    assert_eq!(got.meta.size, 5);
    // Not a saved cloud: a clear error naming the file.
    std::fs::write(&path, b"not a cloud").unwrap();
    let err = SimCloud::load(&path, SimConfig::default()).unwrap_err();
    assert!(err.to_string().contains("sim.cbor"), "{err}");
}
