//! The executor against mockall providers: the order of provider calls in a region failover,
//! that a dry run calls nothing, and that a failed critical step stops its dependants.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use dr_core::executor::{AutoApprove, Executor, Outcome, RetryPolicy, StepStatus};
use dr_core::plan::Plan;
use dr_core::planner::{self, ObservedState};
use dr_core::provider::{
    Capabilities, ClusterDeployer, DatabaseReplica, DbRef, DbRole, DbSnapshot, DbState, DbStatus,
    DnsChange, DnsFailover, DnsRecord, HealthProbe, HealthStatus, Manifest, RestorePoint,
    RolloutStatus, Routing, WorkloadRef,
};
use dr_core::{Error, Providers, RecoveryGraph, Result, Secret};
use mockall::mock;

mock! {
    Db {}
    impl std::fmt::Debug for Db {
        fn fmt<'a>(&self, f: &mut std::fmt::Formatter<'a>) -> std::fmt::Result;
    }
    #[async_trait]
    impl DatabaseReplica for Db {
        fn name(&self) -> &str;
        fn capabilities(&self) -> Capabilities;
        async fn describe(&self, db: &DbRef) -> Result<DbStatus>;
        async fn create_snapshot(&self, db: &DbRef, snapshot_id: &str) -> Result<DbSnapshot>;
        async fn describe_snapshot(&self, region: &str, snapshot_id: &str) -> Result<DbSnapshot>;
        async fn list_snapshots(&self, db: &DbRef, region: &str) -> Result<Vec<DbSnapshot>>;
        async fn copy_snapshot(&self, snapshot: &DbSnapshot, target_region: &str, target_id: &str) -> Result<DbSnapshot>;
        async fn restore_snapshot(&self, snapshot: &DbSnapshot, target: &DbRef) -> Result<DbStatus>;
        async fn restore_to_point_in_time(&self, source: &DbRef, target: &DbRef, at: RestorePoint) -> Result<DbStatus>;
        async fn promote(&self, replica: &DbRef) -> Result<DbStatus>;
        async fn reboot(&self, db: &DbRef, force_failover: bool) -> Result<DbStatus>;
        async fn create_replica(&self, source: &DbRef, replica: &DbRef) -> Result<DbStatus>;
    }
}

mock! {
    Cluster {}
    impl std::fmt::Debug for Cluster {
        fn fmt<'a>(&self, f: &mut std::fmt::Formatter<'a>) -> std::fmt::Result;
    }
    #[async_trait]
    impl ClusterDeployer for Cluster {
        fn name(&self) -> &str;
        fn capabilities(&self) -> Capabilities;
        async fn apply(&self, cluster: &str, namespace: &str, manifests: &[Manifest]) -> Result<()>;
        async fn scale(&self, workload: &WorkloadRef, replicas: u32) -> Result<()>;
        async fn rollout_restart(&self, workload: &WorkloadRef) -> Result<u64>;
        async fn rollout_undo(&self, workload: &WorkloadRef, revision: Option<u64>) -> Result<u64>;
        async fn set_image(&self, workload: &WorkloadRef, container: &str, image: &str) -> Result<()>;
        async fn set_env(&self, workload: &WorkloadRef, env: &BTreeMap<String, String>) -> Result<()>;
        async fn patch_secret(&self, cluster: &str, namespace: &str, name: &str, data: &BTreeMap<String, Secret>) -> Result<()>;
        async fn read_secret(&self, cluster: &str, namespace: &str, name: &str, key: &str) -> Result<Secret>;
        async fn rollout_status(&self, workload: &WorkloadRef) -> Result<RolloutStatus>;
        async fn isolate(&self, workload: &WorkloadRef) -> Result<()>;
        async fn delete_pod(&self, cluster: &str, namespace: &str, pod: &str) -> Result<()>;
        async fn export(&self, cluster: &str, namespace: &str, kinds: &[String]) -> Result<Vec<Manifest>>;
    }
}

mock! {
    Probe {}
    impl std::fmt::Debug for Probe {
        fn fmt<'a>(&self, f: &mut std::fmt::Formatter<'a>) -> std::fmt::Result;
    }
    #[async_trait]
    impl HealthProbe for Probe {
        fn name(&self) -> &str;
        fn capabilities(&self) -> Capabilities;
        async fn check(&self, target: &str) -> Result<HealthStatus>;
    }
}

const PLAN: &str = r#"
name: mocked
regions:
  - { name: east, role: primary }
  - { name: west, role: secondary }
databases:
  - { name: db, region: east, replicas: [{ id: db-west, region: west }] }
clusters:
  - name: k8s-west
    region: west
    ingress: lb.west.example.com
    workloads: [{ name: api, namespace: shop, replicas: 2 }]
dns:
  - { name: api.example.com, zone: Z1 }
health_checks:
  - { name: api-health, target: "https://api.example.com/health" }
services:
  - { name: database, tier: critical, rto: 1h, rpo: 5m, database: db }
  - name: api
    rto: 30m
    rpo: 5m
    depends_on: [database]
    database: db
    workloads: [api]
    dns: [api.example.com]
    health_check: api-health
    secret: { name: api-secrets, key: DATABASE_URL }
scenarios:
  - { name: failover, kind: region-failover, from: east, to: west }
"#;

fn graph() -> RecoveryGraph {
    let plan = Plan::from_yaml_str(PLAN).unwrap();
    plan.validate().unwrap();
    let observed = ObservedState::nominal(&plan, chrono::Utc::now());
    planner::plan(&plan, "failover", &observed).unwrap()
}

type Log = Arc<Mutex<Vec<String>>>;

fn log(log: &Log, entry: impl Into<String>) {
    log.lock().unwrap().push(entry.into());
}

fn replica_status(promoted: bool) -> DbStatus {
    DbStatus {
        db: DbRef::new("west", "db-west"),
        state: DbState::Available,
        role: if promoted {
            DbRole::Primary
        } else {
            DbRole::Replica {
                source: DbRef::new("east", "db"),
            }
        },
        endpoint: Some("db-west.west.internal:5432".into()),
        replication_lag: (!promoted).then_some(Duration::from_secs(12)),
        latest_restorable_time: None,
    }
}

/// A database whose replica becomes primary once promoted, or whose promotion fails.
fn db(calls: &Log, promote_fails: bool) -> MockDb {
    let mut db = MockDb::new();
    let promoted = Arc::new(Mutex::new(false));
    db.expect_name().return_const("mock-db".to_string());
    let (l, p) = (calls.clone(), promoted.clone());
    db.expect_describe().returning(move |r| {
        let promoted = *p.lock().unwrap();
        log(&l, format!("db.describe {} promoted={promoted}", r.id));
        Ok(replica_status(promoted))
    });
    let (l, p) = (calls.clone(), promoted);
    db.expect_promote().times(1).returning(move |r| {
        log(&l, format!("db.promote {}", r.id));
        if promote_fails {
            return Err(Error::InvalidState {
                provider: "mock-db".into(),
                resource: r.to_string(),
                state: "incompatible-parameters".into(),
                operation: "promote".into(),
            });
        }
        *p.lock().unwrap() = true;
        Ok(replica_status(true))
    });
    db
}

fn cluster(calls: &Log, expect_calls: bool) -> MockCluster {
    let mut c = MockCluster::new();
    c.expect_name().return_const("mock-k8s".to_string());
    if !expect_calls {
        return c; // any call panics
    }
    let l = calls.clone();
    c.expect_patch_secret()
        .times(1)
        .returning(move |_, ns, name, data| {
            assert_eq!(
                data.get("DATABASE_URL").map(Secret::expose),
                Some("db-west.west.internal:5432"),
                "the secret holds the promoted replica's endpoint"
            );
            log(&l, format!("k8s.patch_secret {ns}/{name}"));
            Ok(())
        });
    let l = calls.clone();
    c.expect_scale().times(1).returning(move |w, n| {
        log(&l, format!("k8s.scale {} {n}", w.name));
        Ok(())
    });
    let l = calls.clone();
    c.expect_rollout_status().returning(move |w| {
        log(&l, format!("k8s.rollout_status {}", w.name));
        Ok(RolloutStatus {
            workload: w.clone(),
            replicas: 2,
            updated_replicas: 2,
            available_replicas: 2,
            revision: 4,
            observed: true,
            isolated: false,
            env: BTreeMap::new(),
        })
    });
    c
}

/// DNS is a hand-written recording fake: mockall cannot mock a method taking
/// `Option<&str>` through `async_trait`. It panics on any call when `expect_calls` is false.
#[derive(Debug)]
struct RecordingDns {
    calls: Log,
    expect_calls: bool,
}

impl RecordingDns {
    fn called(&self, entry: String) {
        assert!(self.expect_calls, "unexpected DNS call: {entry}");
        log(&self.calls, entry);
    }
}

#[async_trait]
impl DnsFailover for RecordingDns {
    fn name(&self) -> &str {
        "recording-dns"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
    async fn get_record_set(
        &self,
        zone: &str,
        name: &str,
        _set: Option<&str>,
    ) -> Result<DnsRecord> {
        self.called(format!("dns.get_record_set {name}"));
        Ok(DnsRecord {
            zone: zone.to_string(),
            name: name.to_string(),
            record_type: "CNAME".into(),
            values: vec!["lb.east.example.com".into()],
            ttl: 60,
            routing: Routing::Simple,
        })
    }
    async fn switch_record(&self, r: &DnsRecord) -> Result<DnsChange> {
        assert_eq!(r.values, ["lb.west.example.com"]);
        self.called(format!("dns.switch_record {}", r.name));
        Ok(DnsChange {
            id: "C1".into(),
            in_sync: false,
        })
    }
    async fn get_change(&self, id: &str) -> Result<DnsChange> {
        self.called(format!("dns.get_change {id}"));
        Ok(DnsChange {
            id: id.to_string(),
            in_sync: true,
        })
    }
    async fn health_check_status(&self, id: &str) -> Result<HealthStatus> {
        self.called(format!("dns.health_check_status {id}"));
        Ok(HealthStatus::Healthy)
    }
}

fn dns(calls: &Log, expect_calls: bool) -> RecordingDns {
    RecordingDns {
        calls: calls.clone(),
        expect_calls,
    }
}

fn probe(calls: &Log, expect_calls: bool) -> MockProbe {
    let mut p = MockProbe::new();
    p.expect_name().return_const("mock-probe".to_string());
    if expect_calls {
        let l = calls.clone();
        p.expect_check().returning(move |t| {
            log(&l, format!("probe.check {t}"));
            Ok(HealthStatus::Healthy)
        });
    }
    p
}

fn providers(db: MockDb, dns: RecordingDns, cluster: MockCluster, probe: MockProbe) -> Providers {
    Providers::new()
        .with_database(Arc::new(db))
        .with_dns(Arc::new(dns))
        .with_cluster(Arc::new(cluster))
        .with_probe(Arc::new(probe))
}

fn position(calls: &[String], prefix: &str) -> usize {
    calls
        .iter()
        .position(|c| c.starts_with(prefix))
        .unwrap_or_else(|| panic!("no call `{prefix}` in {calls:#?}"))
}

#[tokio::test(start_paused = true)]
async fn region_failover_calls_providers_in_dependency_order() {
    let calls: Log = Arc::default();
    let providers = providers(
        db(&calls, false),
        dns(&calls, true),
        cluster(&calls, true),
        probe(&calls, true),
    );
    let report = Executor::new(providers)
        .approvals(Arc::new(AutoApprove))
        .run(&graph())
        .await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    let calls = calls.lock().unwrap().clone();
    // The lag is read before the promotion, the promotion is awaited before the secret is
    // written, the workload is up before DNS moves, and health is probed last.
    let order = [
        "db.describe db-west promoted=false",
        "db.promote db-west",
        "db.describe db-west promoted=true",
        "k8s.patch_secret shop/api-secrets",
        "k8s.scale api 2",
        "dns.switch_record api.example.com",
        "dns.get_change C1",
        "probe.check https://api.example.com/health",
    ];
    for pair in order.windows(2) {
        assert!(
            position(&calls, pair[0]) < position(&calls, pair[1]),
            "`{}` must come before `{}` in {calls:#?}",
            pair[0],
            pair[1]
        );
    }
    // The scale reads the replica count first (what a compensation scales back to); the
    // wait after it polls the rollout until it is up, before DNS moves.
    let scale = position(&calls, "k8s.scale api 2");
    let ready = calls
        .iter()
        .rposition(|c| c.starts_with("k8s.rollout_status api"))
        .unwrap();
    assert!(
        scale < ready && ready < position(&calls, "dns.switch_record api.example.com"),
        "{calls:#?}"
    );
    // The data-loss window is the replica lag read before the promotion.
    let api = report.service("api").unwrap();
    assert_eq!(api.achieved_rpo, Some(Duration::from_secs(12)));
    assert!(api.met, "{report}");
}

#[tokio::test(start_paused = true)]
async fn dry_run_calls_no_provider() {
    // No expectations besides `name`: any provider call panics the test.
    let mut db = MockDb::new();
    db.expect_name().return_const("mock-db".to_string());
    let calls: Log = Arc::default();
    let providers = providers(
        db,
        dns(&calls, false),
        cluster(&calls, false),
        probe(&calls, false),
    );
    let executor = Executor::new(providers);
    let graph = graph();
    let dry = executor.dry_run(&graph);
    let listed: Vec<String> = dry
        .calls()
        .map(|c| format!("{}.{}", c.provider_role, c.operation))
        .collect();
    assert!(
        listed.contains(&"database.promote".to_string()),
        "{listed:?}"
    );
    assert!(
        listed.contains(&"dns.switch_record".to_string()),
        "{listed:?}"
    );
    assert!(
        listed.iter().position(|c| c == "database.promote")
            < listed.iter().position(|c| c == "dns.switch_record")
    );
    assert!(calls.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn failed_critical_step_stops_its_dependants() {
    let calls: Log = Arc::default();
    // The cluster, DNS and probe mocks expect no call at all: they panic on any.
    let providers = providers(
        db(&calls, true),
        dns(&calls, false),
        cluster(&calls, false),
        probe(&calls, false),
    );
    let report = Executor::new(providers)
        .retry(RetryPolicy::default())
        .run(&graph())
        .await;
    assert_eq!(report.outcome, Outcome::Failed);
    let promote = report.step("db/promote").unwrap();
    assert_eq!(promote.status, StepStatus::Failed);
    assert_eq!(promote.attempts, 1, "a permanent error is not retried");
    assert!(promote
        .error
        .as_deref()
        .unwrap_or("")
        .contains("cannot promote"));
    for id in [
        "db/wait",
        "api/set-secret",
        "api/scale:api",
        "api/dns:api.example.com",
        "api/verify",
    ] {
        let s = report.step(id).unwrap();
        assert_ne!(
            s.status,
            StepStatus::Succeeded,
            "{id} ran after its dependency failed"
        );
        assert!(s.started_at.is_none(), "{id} was started");
    }
    assert!(!report.service("api").unwrap().met);
}
