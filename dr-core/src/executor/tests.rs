//! Executor tests on a scripted fake cloud and tokio's paused clock.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::*;
use crate::graph::{Action, SecretSource, ServiceForecast, Step};
use crate::provider::{
    Capabilities, ClusterDeployer, DatabaseReplica, DbRef, DbRole, DbSnapshot, DbState, DbStatus,
    HealthProbe, HealthStatus, Manifest, Notification, Notifier, RestorePoint, RolloutStatus,
    Severity, WorkloadRef,
};
use crate::{Error, Providers, RecoveryGraph, Secret};

/// A scripted failure for the next call of an operation.
#[derive(Debug, Clone, Copy)]
enum Fail {
    /// `Unavailable` (temporary), nothing done.
    Unavailable,
    /// `NotFound` (permanent).
    NotFound,
    /// Never answers.
    Hang,
    /// Does the work, then loses the reply (`Unavailable`).
    UnavailableAfterEffect,
}

#[derive(Debug, Clone)]
struct Call {
    op: String,
    target: String,
    start: Instant,
    end: Instant,
}

#[derive(Debug, Default)]
struct Fake {
    /// Panic on any provider call (dry-run test).
    panic_on_call: bool,
    calls: Mutex<Vec<Call>>,
    /// `op` or `op:target` → failures for the next calls.
    script: Mutex<HashMap<String, VecDeque<Fail>>>,
    /// target → how long a call on it takes.
    delays: Mutex<HashMap<String, Duration>>,
    dbs: Mutex<HashMap<String, DbStatus>>,
    secrets: Mutex<BTreeMap<String, Secret>>,
    health: Mutex<HashMap<String, HealthStatus>>,
    snapshots: Mutex<Vec<DbSnapshot>>,
    /// Snapshot id each restored instance came from.
    restored_from: Mutex<HashMap<String, String>>,
}

fn unavailable(op: &str) -> Error {
    Error::Unavailable {
        provider: "fake".into(),
        operation: op.into(),
        source: None,
    }
}

impl Fake {
    fn new() -> Arc<Self> {
        Arc::new(Fake::default())
    }

    fn fail(&self, key: &str, fails: &[Fail]) {
        self.script
            .lock()
            .unwrap()
            .entry(key.to_string())
            .or_default()
            .extend(fails.iter().copied());
    }

    fn delay(&self, target: &str, d: Duration) {
        self.delays.lock().unwrap().insert(target.to_string(), d);
    }

    fn add_replica(&self, id: &str, lag: Duration) {
        self.dbs.lock().unwrap().insert(
            id.to_string(),
            DbStatus {
                db: DbRef::new("west", id),
                state: DbState::Available,
                role: DbRole::Replica {
                    source: DbRef::new("east", "primary"),
                },
                endpoint: Some(format!("{id}.west.example:5432")),
                replication_lag: Some(lag),
                latest_restorable_time: None,
            },
        );
    }

    fn calls(&self, op: &str) -> Vec<Call> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.op == op)
            .cloned()
            .collect()
    }

    fn providers(self: &Arc<Self>) -> Providers {
        Providers::new()
            .with_database(self.clone())
            .with_cluster(self.clone())
            .with_notifier(self.clone())
            .with_probe(self.clone())
    }

    /// Records the call, takes its delay and its scripted failure. `effect` runs unless the
    /// script says the call fails before doing anything.
    async fn call<T>(
        &self,
        op: &str,
        target: &str,
        effect: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        assert!(!self.panic_on_call, "provider called: {op} {target}");
        let start = Instant::now();
        let delay = self.delays.lock().unwrap().get(target).copied();
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        let fail = {
            let mut script = self.script.lock().unwrap();
            let mut next = |k: &str| script.get_mut(k).and_then(VecDeque::pop_front);
            next(&format!("{op}:{target}")).or_else(|| next(op))
        };
        let result = match fail {
            None => effect(),
            Some(Fail::Unavailable) => Err(unavailable(op)),
            Some(Fail::NotFound) => Err(Error::not_found("fake", target)),
            Some(Fail::Hang) => {
                std::future::pending::<()>().await;
                Err(unavailable(op))
            }
            Some(Fail::UnavailableAfterEffect) => effect().and(Err(unavailable(op))),
        };
        self.calls.lock().unwrap().push(Call {
            op: op.to_string(),
            target: target.to_string(),
            start,
            end: Instant::now(),
        });
        result
    }

    fn db(&self, db: &DbRef) -> Result<DbStatus> {
        self.dbs
            .lock()
            .unwrap()
            .get(&db.id)
            .cloned()
            .ok_or_else(|| Error::not_found("fake", db.to_string()))
    }
}

fn ns(op: &str) -> Error {
    Error::not_supported("fake", op)
}

#[async_trait]
impl DatabaseReplica for Fake {
    fn name(&self) -> &str {
        "fake"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
    async fn describe(&self, db: &DbRef) -> Result<DbStatus> {
        self.call("describe", &db.id, || self.db(db)).await
    }
    async fn create_snapshot(&self, _db: &DbRef, _id: &str) -> Result<DbSnapshot> {
        Err(ns("create_snapshot"))
    }
    async fn describe_snapshot(&self, _region: &str, _id: &str) -> Result<DbSnapshot> {
        Err(ns("describe_snapshot"))
    }
    async fn list_snapshots(&self, db: &DbRef, region: &str) -> Result<Vec<DbSnapshot>> {
        self.call("list_snapshots", &db.id, || {
            Ok(self
                .snapshots
                .lock()
                .unwrap()
                .iter()
                .filter(|s| &s.source == db && s.region == region)
                .cloned()
                .collect())
        })
        .await
    }
    async fn copy_snapshot(&self, _s: &DbSnapshot, _r: &str, _id: &str) -> Result<DbSnapshot> {
        Err(ns("copy_snapshot"))
    }
    async fn restore_snapshot(&self, snap: &DbSnapshot, target: &DbRef) -> Result<DbStatus> {
        self.call("restore_snapshot", &target.id, || {
            let status = DbStatus {
                db: target.clone(),
                state: DbState::Creating,
                role: DbRole::Primary,
                endpoint: None,
                replication_lag: None,
                latest_restorable_time: None,
            };
            self.dbs
                .lock()
                .unwrap()
                .insert(target.id.clone(), status.clone());
            self.restored_from
                .lock()
                .unwrap()
                .insert(target.id.clone(), snap.id.clone());
            Ok(status)
        })
        .await
    }
    async fn restore_to_point_in_time(
        &self,
        _s: &DbRef,
        _t: &DbRef,
        _at: RestorePoint,
    ) -> Result<DbStatus> {
        Err(ns("restore_to_point_in_time"))
    }
    async fn promote(&self, replica: &DbRef) -> Result<DbStatus> {
        self.call("promote", &replica.id, || {
            let mut dbs = self.dbs.lock().unwrap();
            let db = dbs
                .get_mut(&replica.id)
                .ok_or_else(|| Error::not_found("fake", replica.to_string()))?;
            if db.role == DbRole::Primary {
                return Err(Error::InvalidState {
                    provider: "fake".into(),
                    resource: replica.to_string(),
                    state: "primary".into(),
                    operation: "promote".into(),
                });
            }
            db.role = DbRole::Primary;
            db.replication_lag = None;
            Ok(db.clone())
        })
        .await
    }
    async fn reboot(&self, _db: &DbRef, _f: bool) -> Result<DbStatus> {
        Err(ns("reboot"))
    }
    async fn create_replica(&self, _s: &DbRef, _r: &DbRef) -> Result<DbStatus> {
        Err(ns("create_replica"))
    }
}

#[async_trait]
impl ClusterDeployer for Fake {
    fn name(&self) -> &str {
        "fake"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
    async fn apply(&self, cluster: &str, _ns: &str, _m: &[Manifest]) -> Result<()> {
        self.call("apply", cluster, || Ok(())).await
    }
    async fn scale(&self, w: &WorkloadRef, _replicas: u32) -> Result<()> {
        self.call("scale", &w.name, || Ok(())).await
    }
    async fn rollout_restart(&self, w: &WorkloadRef) -> Result<u64> {
        self.call("rollout_restart", &w.name, || Ok(2)).await
    }
    async fn rollout_undo(&self, w: &WorkloadRef, _r: Option<u64>) -> Result<u64> {
        self.call("rollout_undo", &w.name, || Ok(2)).await
    }
    async fn set_image(&self, _w: &WorkloadRef, _c: &str, _i: &str) -> Result<()> {
        Err(ns("set_image"))
    }
    async fn set_env(&self, _w: &WorkloadRef, _e: &BTreeMap<String, String>) -> Result<()> {
        Err(ns("set_env"))
    }
    async fn patch_secret(
        &self,
        _cluster: &str,
        _ns: &str,
        name: &str,
        data: &BTreeMap<String, Secret>,
    ) -> Result<()> {
        self.call("patch_secret", name, || {
            let mut secrets = self.secrets.lock().unwrap();
            for (k, v) in data {
                secrets.insert(format!("{name}/{k}"), v.clone());
            }
            Ok(())
        })
        .await
    }
    async fn read_secret(&self, _c: &str, _n: &str, name: &str, key: &str) -> Result<Secret> {
        self.secrets
            .lock()
            .unwrap()
            .get(&format!("{name}/{key}"))
            .cloned()
            .ok_or_else(|| Error::not_found("fake", name))
    }
    async fn rollout_status(&self, w: &WorkloadRef) -> Result<RolloutStatus> {
        self.call("rollout_status", &w.name, || {
            Ok(RolloutStatus {
                workload: w.clone(),
                replicas: 1,
                updated_replicas: 1,
                available_replicas: 1,
                revision: 1,
                observed: true,
                isolated: false,
                env: BTreeMap::new(),
            })
        })
        .await
    }
    async fn isolate(&self, w: &WorkloadRef) -> Result<()> {
        self.call("isolate_workload", &w.name, || Ok(())).await
    }
    async fn delete_pod(&self, _c: &str, _n: &str, _p: &str) -> Result<()> {
        Err(ns("delete_pod"))
    }
    async fn export(&self, _c: &str, _n: &str, _k: &[String]) -> Result<Vec<Manifest>> {
        Err(ns("export"))
    }
}

#[async_trait]
impl Notifier for Fake {
    fn name(&self) -> &str {
        "fake"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
    async fn notify(&self, channel: &str, _n: &Notification) -> Result<()> {
        self.call("notify", channel, || Ok(())).await
    }
}

#[async_trait]
impl HealthProbe for Fake {
    fn name(&self) -> &str {
        "fake"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
    async fn check(&self, target: &str) -> Result<HealthStatus> {
        self.call("check", target, || {
            Ok(self
                .health
                .lock()
                .unwrap()
                .get(target)
                .copied()
                .unwrap_or(HealthStatus::Unknown))
        })
        .await
    }
}

// ---- graph helpers ----

fn step(id: &str, action: Action, deps: &[&str]) -> Step {
    Step {
        id: id.into(),
        action,
        service: None,
        depends_on: deps.iter().map(|&d| d.into()).collect(),
        idempotency_key: format!("test/{id}"),
        estimate: Duration::from_secs(60),
        timeout: Duration::from_secs(600),
        critical: true,
        retry: None,
    }
}

fn notify(id: &str, channel: &str, deps: &[&str]) -> Step {
    step(
        id,
        Action::new(crate::step::notify::Notify {
            channel: channel.into(),
            notification: Notification {
                severity: Severity::Info,
                title: id.into(),
                body: String::new(),
            },
        }),
        deps,
    )
}

fn graph(steps: Vec<Step>) -> RecoveryGraph {
    RecoveryGraph {
        plan: "shop".into(),
        scenario: "region-loss".into(),
        critical_path: steps.iter().map(|s| s.id.to_string()).collect(),
        forecast: Duration::from_secs(600),
        services: Vec::new(),
        risks: Vec::new(),
        interlocks: Vec::new(),
        compensate_on_failure: false,
        limits: None,
        steps,
    }
}

fn no_jitter() -> RetryPolicy {
    RetryPolicy {
        jitter: false,
        ..RetryPolicy::default()
    }
}

fn events() -> (
    tokio::sync::mpsc::UnboundedSender<RunEvent>,
    tokio::sync::mpsc::UnboundedReceiver<RunEvent>,
) {
    tokio::sync::mpsc::unbounded_channel()
}

fn drain(rx: &mut tokio::sync::mpsc::UnboundedReceiver<RunEvent>) -> Vec<RunEvent> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        out.push(e);
    }
    out
}

// ---- tests ----

#[tokio::test(start_paused = true)]
async fn independent_branches_overlap_and_dependants_wait() {
    let fake = Fake::new();
    fake.delay("a", Duration::from_secs(10));
    fake.delay("b", Duration::from_secs(20));
    fake.delay("c", Duration::from_secs(5));
    let g = graph(vec![
        notify("a", "a", &[]),
        notify("b", "b", &[]),
        notify("c", "c", &["a", "b"]),
    ]);
    let report = Executor::new(fake.providers()).run(&g).await;
    assert!(report.succeeded(), "{report}");
    let calls = fake.calls("notify");
    let by = |t: &str| calls.iter().find(|c| c.target == t).unwrap().clone();
    let (a, b, c) = (by("a"), by("b"), by("c"));
    // a and b ran at the same time.
    assert_eq!(a.start, b.start);
    assert!(a.start < b.end && b.start < a.end);
    // c waited for both.
    assert!(c.start >= a.end && c.start >= b.end);
    assert_eq!(report.achieved_rto, Duration::from_secs(25));
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["outcome"], "succeeded");
    assert_eq!(json["achieved_rto_seconds"], 25.0);
    assert_eq!(json["steps"][2]["status"], "succeeded");
    assert_eq!(json["steps"][2]["attempts"], 1);
}

#[tokio::test(start_paused = true)]
async fn bounded_concurrency_is_honoured() {
    let fake = Fake::new();
    let mut steps = Vec::new();
    for i in 0..5 {
        let id = format!("s{i}");
        fake.delay(&id, Duration::from_secs(10));
        steps.push(notify(&id, &id, &[]));
    }
    let report = Executor::new(fake.providers())
        .concurrency(2)
        .run(&graph(steps))
        .await;
    assert!(report.succeeded());
    let calls = fake.calls("notify");
    let max_overlap = calls
        .iter()
        .map(|c| {
            calls
                .iter()
                .filter(|o| o.start <= c.start && c.start < o.end)
                .count()
        })
        .max()
        .unwrap();
    assert_eq!(max_overlap, 2);
    assert_eq!(report.achieved_rto, Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn per_target_limits_hold_calls_not_steps() {
    // Four notifications on channel `pager` (limit 2) and two on `chat` (no limit applies).
    let fake = Fake::new();
    let mut steps = Vec::new();
    for i in 0..4 {
        let id = format!("p{i}");
        fake.delay("pager", Duration::from_secs(10));
        steps.push(notify(&id, "pager", &[]));
    }
    fake.delay("chat", Duration::from_secs(10));
    steps.push(notify("c0", "chat", &[]));
    steps.push(notify("c1", "chat", &[]));
    let report = Executor::new(fake.providers())
        .limits(Limits::unlimited().per_target("notifier", "pager", 2))
        .run(&graph(steps))
        .await;
    assert!(report.succeeded());
    let calls = fake.calls("notify");
    let overlap = |target: &str| {
        let on: Vec<&Call> = calls.iter().filter(|c| c.target == target).collect();
        on.iter()
            .map(|c| {
                on.iter()
                    .filter(|o| o.start <= c.start && c.start < o.end)
                    .count()
            })
            .max()
            .unwrap()
    };
    assert_eq!(overlap("pager"), 2);
    assert_eq!(overlap("chat"), 2);
    // Two rounds on the pager; the chat went alongside the first.
    assert_eq!(report.achieved_rto, Duration::from_secs(20));
}

#[tokio::test(start_paused = true)]
async fn temporary_error_on_idempotent_step_is_retried() {
    let fake = Fake::new();
    fake.fail("notify", &[Fail::Unavailable, Fail::Unavailable]);
    let (tx, mut rx) = events();
    let report = Executor::new(fake.providers())
        .retry(no_jitter())
        .events(tx)
        .run(&graph(vec![notify("n", "oncall", &[])]))
        .await;
    assert!(report.succeeded(), "{report}");
    assert_eq!(report.steps[0].attempts, 3);
    assert_eq!(fake.calls("notify").len(), 3);
    let backoffs: Vec<Duration> = drain(&mut rx)
        .into_iter()
        .filter_map(|e| match e {
            RunEvent::StepRetrying { backoff, .. } => Some(backoff),
            _ => None,
        })
        .collect();
    assert_eq!(backoffs, [Duration::from_secs(2), Duration::from_secs(4)]);
    // Virtual time: 2 s + 4 s of backoff.
    assert_eq!(report.achieved_rto, Duration::from_secs(6));
}

#[tokio::test(start_paused = true)]
async fn jitter_is_deterministic_per_seed() {
    let run = |seed| async move {
        let fake = Fake::new();
        fake.fail("notify", &[Fail::Unavailable, Fail::Unavailable]);
        Executor::new(fake.providers())
            .seed(seed)
            .run(&graph(vec![notify("n", "oncall", &[])]))
            .await
            .achieved_rto
    };
    let a = run(1).await;
    assert_eq!(a, run(1).await);
    assert!(a <= Duration::from_secs(6));
}

#[tokio::test(start_paused = true)]
async fn retries_run_out_as_persistent() {
    let fake = Fake::new();
    fake.fail("notify", &[Fail::Unavailable; 10]);
    let (tx, mut rx) = events();
    let report = Executor::new(fake.providers())
        .retry(no_jitter())
        .events(tx)
        .run(&graph(vec![notify("n", "oncall", &[])]))
        .await;
    assert!(!report.succeeded());
    assert_eq!(report.steps[0].attempts, 10);
    assert!(report.steps[0]
        .error
        .as_deref()
        .unwrap()
        .contains("gave up after 10 attempts"));
    assert!(drain(&mut rx).iter().any(|e| matches!(
        e,
        RunEvent::StepFailed {
            retry_class: Retry::Persistent,
            ..
        }
    )));
}

#[tokio::test(start_paused = true)]
async fn lost_reply_on_promotion_is_read_back_not_repeated() {
    let fake = Fake::new();
    fake.add_replica("orders-replica", Duration::from_secs(42));
    fake.fail("promote", &[Fail::UnavailableAfterEffect]);
    let g = graph(vec![step(
        "db/promote",
        Action::new(crate::step::database::PromoteReplica {
            db: DbRef::new("west", "orders-replica"),
        }),
        &[],
    )]);
    let report = Executor::new(fake.providers()).run(&g).await;
    assert!(report.succeeded(), "{report}");
    assert_eq!(
        fake.calls("promote").len(),
        1,
        "promotion must not be repeated"
    );
    let s = &report.steps[0];
    assert_eq!(s.attempts, 1);
    assert!(s.already_done);
    assert_eq!(s.data_loss, Some(Duration::from_secs(42)));
}

#[tokio::test(start_paused = true)]
async fn promotion_already_done_is_not_called() {
    let fake = Fake::new();
    fake.add_replica("orders-replica", Duration::from_secs(42));
    fake.dbs
        .lock()
        .unwrap()
        .get_mut("orders-replica")
        .unwrap()
        .role = DbRole::Primary;
    let g = graph(vec![step(
        "db/promote",
        Action::new(crate::step::database::PromoteReplica {
            db: DbRef::new("west", "orders-replica"),
        }),
        &[],
    )]);
    let report = Executor::new(fake.providers()).run(&g).await;
    assert!(report.succeeded());
    assert!(fake.calls("promote").is_empty());
    assert!(report.steps[0].already_done);
    assert_eq!(report.steps[0].attempts, 0);
}

#[tokio::test(start_paused = true)]
async fn promotion_data_loss_is_the_lag_read_before_promoting() {
    let fake = Fake::new();
    fake.add_replica("orders-replica", Duration::from_secs(42));
    let mut promote = step(
        "db/promote",
        Action::new(crate::step::database::PromoteReplica {
            db: DbRef::new("west", "orders-replica"),
        }),
        &[],
    );
    promote.service = Some("orders".into());
    let mut announce = notify("orders/announce", "oncall", &["db/promote"]);
    announce.service = Some("orders".into());
    let mut g = graph(vec![promote, announce]);
    g.services.push(ServiceForecast {
        name: "orders".into(),
        rto_target: Duration::from_secs(900),
        forecast_rto: Duration::from_secs(300),
        rpo_target: Duration::from_secs(60),
        forecast_rpo: Some(Duration::from_secs(42)),
        within_targets: true,
    });
    let report = Executor::new(fake.providers()).run(&g).await;
    assert!(report.succeeded(), "{report}");
    let describes = fake.calls("describe");
    let promotes = fake.calls("promote");
    assert!(describes[0].end <= promotes[0].start);
    assert_eq!(report.steps[0].data_loss, Some(Duration::from_secs(42)));
    assert_eq!(
        fake.db(&DbRef::new("west", "orders-replica")).unwrap().role,
        DbRole::Primary
    );
    let svc = report.service("orders").unwrap();
    assert_eq!(svc.achieved_rpo, Some(Duration::from_secs(42)));
    assert!(svc.met);
    assert!(report.targets_met());
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["services"][0]["achieved_rpo_seconds"], 42.0);
    assert_eq!(json["steps"][0]["data_loss_seconds"], 42.0);
    assert_eq!(
        json["steps"][1]["data_loss_seconds"],
        serde_json::Value::Null
    );
}

#[tokio::test(start_paused = true)]
async fn permanent_error_is_not_retried() {
    let fake = Fake::new();
    fake.fail("notify", &[Fail::NotFound]);
    let (tx, mut rx) = events();
    let report = Executor::new(fake.providers())
        .events(tx)
        .run(&graph(vec![notify("n", "oncall", &[])]))
        .await;
    assert!(!report.succeeded());
    assert_eq!(report.steps[0].attempts, 1);
    assert_eq!(fake.calls("notify").len(), 1);
    assert!(drain(&mut rx).iter().any(|e| matches!(
        e,
        RunEvent::StepFailed {
            retry_class: Retry::Permanent,
            ..
        }
    )));
}

#[tokio::test(start_paused = true)]
async fn critical_failure_skips_dependants_and_stops_the_run() {
    let fake = Fake::new();
    fake.fail("notify:a", &[Fail::NotFound]);
    let g = graph(vec![
        notify("a", "a", &[]),
        notify("b", "b", &["a"]),
        notify("c", "c", &["b"]),
        notify("d", "d", &[]),
    ]);
    let report = Executor::new(fake.providers()).concurrency(1).run(&g).await;
    assert_eq!(report.outcome, Outcome::Failed);
    let status = |id: &str| report.step(id).unwrap().status;
    assert_eq!(status("a"), StepStatus::Failed);
    assert_eq!(status("b"), StepStatus::Skipped);
    assert_eq!(status("c"), StepStatus::Skipped);
    assert!(report
        .step("b")
        .unwrap()
        .error
        .as_deref()
        .unwrap()
        .contains("`a` failed"));
    // Independent, but the run stopped before it could start.
    assert_eq!(status("d"), StepStatus::NotRun);
    assert!(fake.calls("notify").iter().all(|c| c.target == "a"));
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["outcome"], "failed");
    assert_eq!(json["steps"][3]["status"], "not_run");
    assert_eq!(json["steps"][3]["finished_at"], serde_json::Value::Null);
    let text = report.to_string();
    assert!(text.contains("FAILED"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn optional_failure_degrades_and_dependants_still_run() {
    let fake = Fake::new();
    fake.fail("notify:a", &[Fail::NotFound]);
    let mut a = notify("a", "a", &[]);
    a.critical = false;
    let g = graph(vec![a, notify("b", "b", &["a"])]);
    let report = Executor::new(fake.providers()).run(&g).await;
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert!(report.degraded);
    assert_eq!(report.step("b").unwrap().status, StepStatus::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn timeout_fires_on_a_hanging_call() {
    let fake = Fake::new();
    fake.fail("notify", &[Fail::Hang]);
    let mut s = notify("n", "oncall", &[]);
    s.timeout = Duration::from_secs(30);
    let report = Executor::new(fake.providers())
        .retry(RetryPolicy::none())
        .run(&graph(vec![s]))
        .await;
    assert!(!report.succeeded());
    let err = report.steps[0].error.clone().unwrap();
    assert!(err.contains("timed out after 30s"), "{err}");
    assert_eq!(report.achieved_rto, Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn health_check_timeout_names_the_check() {
    let fake = Fake::new();
    let mut s = step(
        "api/verify",
        Action::new(crate::step::health::VerifyHealth {
            check: "api-health".into(),
            target: "https://api.example/health".into(),
        }),
        &[],
    );
    s.timeout = Duration::from_secs(60);
    let report = Executor::new(fake.providers())
        .retry(RetryPolicy::none())
        .run(&graph(vec![s]))
        .await;
    let err = report.steps[0].error.clone().unwrap();
    assert!(
        err.contains("api-health") && err.contains("timed out"),
        "{err}"
    );
    // Probed every 10 s for a minute.
    assert_eq!(fake.calls("check").len(), 7);

    fake.health
        .lock()
        .unwrap()
        .insert("https://api.example/health".into(), HealthStatus::Healthy);
    let s = step(
        "api/verify",
        Action::new(crate::step::health::VerifyHealth {
            check: "api-health".into(),
            target: "https://api.example/health".into(),
        }),
        &[],
    );
    assert!(Executor::new(fake.providers())
        .run(&graph(vec![s]))
        .await
        .succeeded());
}

#[derive(Debug)]
struct RejectAll;

#[async_trait]
impl ApprovalHook for RejectAll {
    async fn decide(&self, request: &ApprovalRequest) -> Result<Decision> {
        Ok(Decision::Reject {
            reason: format!("not now ({})", request.prompt),
        })
    }
}

#[tokio::test(start_paused = true)]
async fn approvals() {
    let fake = Fake::new();
    let g = graph(vec![
        step(
            "gate",
            Action::new(crate::step::approval::Approval {
                prompt: "fail over to west?".into(),
            }),
            &[],
        ),
        notify("after", "oncall", &["gate"]),
    ]);
    // No hook: rejected, safely.
    let report = Executor::new(fake.providers()).run(&g).await;
    assert!(!report.succeeded());
    let err = report.steps[0].error.clone().unwrap();
    assert!(err.contains("no approval hook configured"), "{err}");
    assert_eq!(report.steps[1].status, StepStatus::Skipped);

    // A rejecting hook fails the run, no retry.
    let (tx, mut rx) = events();
    let report = Executor::new(fake.providers())
        .approvals(Arc::new(RejectAll))
        .events(tx)
        .run(&g)
        .await;
    assert_eq!(report.outcome, Outcome::Failed);
    assert_eq!(report.steps[0].attempts, 1);
    assert!(report.steps[0]
        .error
        .as_deref()
        .unwrap()
        .contains("not now"));
    assert!(drain(&mut rx)
        .iter()
        .any(|e| matches!(e, RunEvent::ApprovalRequested { prompt, .. } if prompt == "fail over to west?")));

    let report = Executor::new(fake.providers())
        .approvals(Arc::new(AutoApprove))
        .run(&g)
        .await;
    assert!(report.succeeded());
}

fn every_action() -> Vec<Step> {
    let db = DbRef::new("west", "orders-replica");
    let w = WorkloadRef::deployment("dr-west", "shop", "api");
    vec![
        notify("notify", "oncall", &[]),
        step(
            "gate",
            Action::new(crate::step::approval::Approval {
                prompt: "go?".into(),
            }),
            &[],
        ),
        step(
            "promote",
            Action::new(crate::step::database::PromoteReplica { db: db.clone() }),
            &[],
        ),
        step(
            "wait-db",
            Action::new(crate::step::database::WaitDatabase { db: db.clone() }),
            &["promote"],
        ),
        step(
            "restore",
            Action::new(crate::step::database::RestoreSnapshot {
                source: DbRef::new("east", "orders"),
                snapshot_region: "west".into(),
                target: DbRef::new("west", "orders-restored"),
            }),
            &[],
        ),
        step(
            "pitr",
            Action::new(crate::step::database::RestorePointInTime {
                source: DbRef::new("east", "orders"),
                target: DbRef::new("east", "orders-pitr"),
                at: RestorePoint::Latest,
            }),
            &[],
        ),
        step(
            "dns",
            Action::new(crate::step::dns::SwitchDns {
                zone: "z".into(),
                name: "api.example".into(),
                set_id: None,
                values: vec!["lb.west".into()],
                health: None,
            }),
            &[],
        ),
        step(
            "scale",
            Action::new(crate::step::cluster::Scale {
                workload: w.clone(),
                replicas: 3,
            }),
            &[],
        ),
        step(
            "restart",
            Action::new(crate::step::cluster::RolloutRestart {
                workload: w.clone(),
            }),
            &[],
        ),
        step(
            "secret",
            Action::new(crate::step::cluster::SetSecret {
                cluster: "dr-west".into(),
                namespace: "shop".into(),
                secret: "db".into(),
                key: "url".into(),
                value: SecretSource::DatabaseEndpoint {
                    db,
                    template: Some("postgres://app@{endpoint}/orders".into()),
                },
            }),
            &["promote"],
        ),
        step(
            "wait-api",
            Action::new(crate::step::cluster::WaitWorkload { workload: w }),
            &["scale"],
        ),
        step(
            "verify",
            Action::new(crate::step::health::VerifyHealth {
                check: "api".into(),
                target: "https://api.example/health".into(),
            }),
            &[],
        ),
    ]
}

#[tokio::test(start_paused = true)]
async fn dry_run_calls_nothing() {
    let fake = Arc::new(Fake {
        panic_on_call: true,
        ..Fake::default()
    });
    let g = graph(every_action());
    let executor = Executor::new(fake.providers()).approvals(Arc::new(AutoApprove));
    let dry = executor.dry_run(&g);
    assert!(fake.calls.lock().unwrap().is_empty());
    assert_eq!(dry.outcome, "planned");
    assert_eq!(dry.steps.len(), g.steps.len());
    let ops: Vec<(&str, &str)> = dry
        .calls()
        .filter(|c| c.step == "promote" || c.step == "dns")
        .map(|c| (c.provider_role.as_str(), c.operation.as_str()))
        .collect();
    assert_eq!(
        ops,
        [
            ("database", "describe"),
            ("database", "promote"),
            ("dns", "get_record"),
            ("dns", "get_record"),
            ("dns", "switch_record"),
            ("dns", "wait_change"),
        ]
    );
    assert!(dry.calls().any(|c| c.provider_role == "approval"));
    let json = serde_json::to_value(&dry).unwrap();
    assert_eq!(json["outcome"], "planned");
    assert_eq!(json["steps"][2]["calls"][1]["operation"], "promote");
    assert!(dry
        .to_string()
        .contains("database promote database west/orders-replica"));

    // A run against the same panicking provider does not panic: it reports.
    let report = executor.run(&graph(vec![notify("n", "oncall", &[])])).await;
    assert!(!report.succeeded());
    assert!(report.steps[0]
        .error
        .as_deref()
        .unwrap()
        .contains("panicked"));
}

#[tokio::test(start_paused = true)]
async fn dry_run_matches_the_calls_a_run_makes() {
    let fake = Fake::new();
    fake.add_replica("orders-replica", Duration::from_secs(3));
    let w = WorkloadRef::deployment("dr-west", "shop", "api");
    let g = graph(vec![
        step(
            "promote",
            Action::new(crate::step::database::PromoteReplica {
                db: DbRef::new("west", "orders-replica"),
            }),
            &[],
        ),
        step(
            "restart",
            Action::new(crate::step::cluster::RolloutRestart {
                workload: w.clone(),
            }),
            &["promote"],
        ),
        step(
            "isolate",
            Action::new(crate::step::cluster::IsolateWorkload { workload: w }),
            &["restart"],
        ),
    ]);
    let executor = Executor::new(fake.providers());
    let planned: Vec<String> = executor
        .dry_run(&g)
        .calls()
        .map(|c| c.operation.clone())
        .collect();
    let report = executor.run(&g).await;
    assert!(report.succeeded(), "{report}");
    let made: Vec<String> = fake
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.op.clone())
        .collect();
    assert_eq!(planned, made);
}

#[tokio::test(start_paused = true)]
async fn secret_values_never_appear() {
    const VALUE: &str = "hunter2-topsecret";
    let fake = Fake::new();
    fake.add_replica("orders-replica", Duration::ZERO);
    fake.fail("patch_secret", &[Fail::Unavailable, Fail::NotFound]);
    let literal = step(
        "literal",
        Action::new(crate::step::cluster::SetSecret {
            cluster: "dr-west".into(),
            namespace: "shop".into(),
            secret: "api-token".into(),
            key: "token".into(),
            value: SecretSource::Literal {
                value: Secret::new(VALUE),
            },
        }),
        &[],
    );
    let mut endpoint = step(
        "endpoint",
        Action::new(crate::step::cluster::SetSecret {
            cluster: "dr-west".into(),
            namespace: "shop".into(),
            secret: "db".into(),
            key: "url".into(),
            value: SecretSource::DatabaseEndpoint {
                db: DbRef::new("west", "orders-replica"),
                template: Some(format!("postgres://app:{VALUE}@{{endpoint}}/orders")),
            },
        }),
        &["literal"],
    );
    endpoint.critical = false;
    let (tx, mut rx) = events();
    let executor = Executor::new(fake.providers())
        .retry(no_jitter())
        .events(tx);
    let g = graph(vec![literal.clone(), endpoint.clone()]);
    let report = executor.run(&g).await;
    // First a retry, then a permanent failure: both carried in events and the report.
    assert_eq!(report.steps[0].status, StepStatus::Failed);
    let events = drain(&mut rx);
    assert!(events
        .iter()
        .any(|e| matches!(e, RunEvent::StepRetrying { .. })));
    let mut texts = vec![report.to_json(), report.to_string(), format!("{report:?}")];
    texts.push(serde_json::to_string(&events).unwrap());
    texts.push(format!("{events:?}"));
    texts.push(executor.dry_run(&g).to_string());
    texts.push(serde_json::to_string(&executor.dry_run(&g)).unwrap());
    for t in &texts {
        assert!(!t.contains(VALUE), "secret leaked into: {t}");
    }

    // And when it works, the right values are written.
    let report = executor.run(&graph(vec![literal, endpoint])).await;
    assert!(report.succeeded(), "{report}");
    assert!(!report.to_json().contains(VALUE));
    let secrets = fake.secrets.lock().unwrap();
    assert_eq!(secrets["api-token/token"].expose(), VALUE);
    assert_eq!(
        secrets["db/url"].expose(),
        format!("postgres://app:{VALUE}@orders-replica.west.example:5432/orders")
    );
}

#[tokio::test(start_paused = true)]
async fn missing_endpoint_names_the_database() {
    let fake = Fake::new();
    fake.add_replica("orders-replica", Duration::ZERO);
    fake.dbs
        .lock()
        .unwrap()
        .get_mut("orders-replica")
        .unwrap()
        .endpoint = None;
    let s = step(
        "endpoint",
        Action::new(crate::step::cluster::SetSecret {
            cluster: "dr-west".into(),
            namespace: "shop".into(),
            secret: "db".into(),
            key: "url".into(),
            value: SecretSource::DatabaseEndpoint {
                db: DbRef::new("west", "orders-replica"),
                template: None,
            },
        }),
        &[],
    );
    let report = Executor::new(fake.providers()).run(&graph(vec![s])).await;
    let err = report.steps[0].error.clone().unwrap();
    assert!(err.contains("west/orders-replica has no endpoint"), "{err}");
    assert_eq!(report.steps[0].attempts, 1);
}

#[tokio::test(start_paused = true)]
async fn events_are_ordered_and_timestamped() {
    let fake = Fake::new();
    fake.delay("a", Duration::from_secs(10));
    let (tx, mut rx) = events();
    let clock = crate::Clock::starting_at(chrono::DateTime::UNIX_EPOCH);
    let report = Executor::new(fake.providers())
        .clock(clock)
        .events(tx)
        .run(&graph(vec![notify("a", "a", &[])]))
        .await;
    let events = drain(&mut rx);
    assert!(matches!(
        events.first(),
        Some(RunEvent::RunStarted { steps: 1, .. })
    ));
    assert!(matches!(
        events.last(),
        Some(RunEvent::RunFinished {
            outcome: Outcome::Succeeded,
            ..
        })
    ));
    assert!(events.windows(2).all(|w| w[0].at() <= w[1].at()));
    assert_eq!(report.started_at, chrono::DateTime::UNIX_EPOCH);
    assert_eq!(
        report.finished_at,
        chrono::DateTime::UNIX_EPOCH + chrono::Duration::seconds(10)
    );
    let json = serde_json::to_value(&events[2]).unwrap();
    assert_eq!(json["event"], "step_succeeded");
    assert_eq!(json["elapsed_seconds"], 10.0);
    assert!(report.to_string().contains("+00:00:00  notify"));
}

#[tokio::test(start_paused = true)]
async fn snapshot_restore_uses_newest_available_and_measures_loss_from_incident() {
    let fake = Fake::new();
    let t0 = chrono::DateTime::UNIX_EPOCH + chrono::Duration::hours(1);
    let source = DbRef::new("east", "orders");
    let snap = |id: &str, mins_before: i64, available: bool| DbSnapshot {
        region: "west".into(),
        id: id.into(),
        source: source.clone(),
        created: t0 - chrono::Duration::minutes(mins_before),
        available,
    };
    fake.snapshots.lock().unwrap().extend([
        snap("old", 20, true),
        snap("newest-ready", 10, true),
        snap("copying", 2, false),
    ]);
    let g = graph(vec![step(
        "db/restore",
        Action::new(crate::step::database::RestoreSnapshot {
            source,
            snapshot_region: "west".into(),
            target: DbRef::new("west", "orders-restored"),
        }),
        &[],
    )]);
    let executor = Executor::new(fake.providers())
        // The run starts 5 minutes after the incident did.
        .clock(crate::Clock::starting_at(t0 + chrono::Duration::minutes(5)))
        .incident_started_at(t0);
    let report = executor.run(&g).await;
    assert!(report.succeeded(), "{report}");
    assert_eq!(
        fake.restored_from.lock().unwrap()["orders-restored"],
        "newest-ready"
    );
    assert_eq!(report.steps[0].data_loss, Some(Duration::from_secs(600)));
    // Run again (a resume): the restored instance exists, nothing is restored twice.
    let report = executor.run(&g).await;
    assert!(report.succeeded() && report.steps[0].already_done);
    assert_eq!(fake.calls("restore_snapshot").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn rollout_restart_retried_only_when_revision_did_not_advance() {
    let fake = Fake::new();
    // The fake's revision never advances: a lost reply is retried after the read-back.
    fake.fail("rollout_restart", &[Fail::Unavailable]);
    let w = WorkloadRef::deployment("dr-west", "shop", "api");
    let g = graph(vec![step(
        "restart",
        Action::new(crate::step::cluster::RolloutRestart {
            workload: w.clone(),
        }),
        &[],
    )]);
    let report = Executor::new(fake.providers()).run(&g).await;
    assert!(report.succeeded(), "{report}");
    assert_eq!(report.steps[0].attempts, 2);

    // When the revision before the first attempt could not be read (even patiently), no
    // blind retry.
    let fake = Fake::new();
    fake.fail("rollout_status", &[Fail::Unavailable; 12]);
    fake.fail("rollout_restart", &[Fail::Unavailable]);
    let report = Executor::new(fake.providers()).run(&g).await;
    assert!(!report.succeeded());
    assert_eq!(fake.calls("rollout_restart").len(), 1);
    assert!(report.steps[0]
        .error
        .as_deref()
        .unwrap()
        .contains("could not be read back, so it was not retried"));
}
