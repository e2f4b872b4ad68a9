//! The security incident on the simulated cloud, through the public API: isolation by the
//! Service selector and a deny-all NetworkPolicy, evidence written once and listed with its
//! checksums, volume snapshots tagged with the incident, the credential rotated in the
//! secret manager and the cluster, a clean redeploy into a new namespace — and the value of
//! the credential nowhere in the report, the journal, the events or the logs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dr_core::executor::{AutoApprove, Executor, RunEvent, StepStatus};
use dr_core::journal::{InMemoryJournal, Record};
use dr_core::plan::Plan;
use dr_core::planner;
use dr_core::provider::{
    ClusterDeployer, Operation, Precondition, SecretManager, SnapshotStore, VolumeSnapshotState,
};
use dr_core::sim::{FaultConfig, FaultRule, SimConfig};
use dr_core::simulation::Simulation;
use dr_core::step::security::Evidence;
use dr_core::testkit::journal::{crash_after_trip, Tripwire};
use dr_core::{RecoveryGraph, Secret};
use sha2::Digest;

const SCENARIO: &str = "security-isolation";
const CLUSTER: &str = "prod-east";
const SECRET_REGION: &str = "us-east-1";
const SECRET: &str = "shop/voice/speech-api-key";
/// The credential's value before the incident: planted, and searched for afterwards.
const PLANTED: &str = "planted-speech-key-3f9c2a7e51";

fn plan() -> Plan {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/plans/region-failover.yaml");
    Plan::load(path).unwrap()
}

async fn setup(config: SimConfig) -> (Simulation, RecoveryGraph) {
    let plan = plan();
    let sim = Simulation::new(&plan, 9, config);
    sim.cloud()
        .add_secret(SECRET_REGION, SECRET, &Secret::new(PLANTED));
    sim.inject(plan.scenario(SCENARIO).unwrap()).await;
    let observed = sim.observe().await;
    let graph = planner::plan(&plan, SCENARIO, &observed).unwrap();
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

fn step_of<'g>(graph: &'g RecoveryGraph, kind: &str) -> &'g dr_core::graph::Step {
    graph
        .steps
        .iter()
        .find(|s| s.action.kind() == kind)
        .unwrap_or_else(|| panic!("no {kind} step"))
}

/// The evidence object's key, as planned.
fn evidence_key(graph: &RecoveryGraph) -> String {
    let p = step_of(graph, "export_resources").action.params();
    p["key"].as_str().unwrap().to_string()
}

/// Everything tracing prints while it is set, at every level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Everything tracing prints in this test binary, at every level. A global subscriber,
/// set once: a thread's own (`set_default`) can miss events whose callsites another test
/// thread, without a subscriber, registered first.
fn captured() -> Captured {
    static LOGS: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in this test binary");
        logs
    })
    .clone()
}

#[tokio::test(start_paused = true)]
async fn the_incident_is_contained_evidenced_rotated_and_redeployed_without_the_secret_leaking() {
    let logs = captured();

    let (sim, graph) = setup(SimConfig::default()).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<RunEvent>();
    let journal = Arc::new(InMemoryJournal::new());
    let report = executor(&sim)
        .events(tx)
        .journal(journal.clone())
        .start(&graph)
        .await
        .unwrap();
    assert!(report.succeeded(), "{report}");
    let cloud = sim.cloud();
    let k8s = cloud.cluster();

    // Isolated by the selector and by a deny-all NetworkPolicy on the voice pods.
    let voice = dr_core::provider::WorkloadRef::deployment(CLUSTER, "shop", "voice");
    assert!(k8s.rollout_status(&voice).await.unwrap().isolated);
    assert_eq!(k8s.rollout_status(&voice).await.unwrap().replicas, 0);
    let objects = k8s.export(CLUSTER, "shop", &[]).await.unwrap();
    let policy = objects
        .iter()
        .find(|m| m.kind == "NetworkPolicy" && m.name == "voice-deny-all")
        .expect("the deny-all policy is applied");
    let body: serde_yaml_ng::Value = serde_yaml_ng::from_str(&policy.body).unwrap();
    assert_eq!(
        body["spec"]["podSelector"]["matchLabels"]["app"].as_str(),
        Some("voice")
    );

    // The volume snapshot: tagged with the incident, completed, listed in the report.
    let snaps = cloud.volume_snapshots();
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    let snap = &snaps[0];
    assert_eq!(snap.volume, "vol-0a1b2c3d4e5f60718");
    assert_eq!(snap.state, VolumeSnapshotState::Completed);
    let incident = snap.tags.get("incident").expect("tagged with the incident");
    assert!(
        incident.starts_with("shop-web/security-isolation/"),
        "{incident}"
    );

    // The evidence object: written once, listed with its size and SHA-256.
    let key = evidence_key(&graph);
    let store = cloud.store("evidence");
    let (bytes, _) = store.get_versioned(&key).await.unwrap().unwrap();
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    let listed: Vec<&Evidence> = report.evidence.iter().map(|e| &e.evidence).collect();
    assert!(
        listed.contains(&&Evidence::Object {
            store: "evidence".into(),
            key: key.clone(),
            size: bytes.len() as u64,
            sha256: sha.clone(),
        }),
        "{listed:?}"
    );
    assert!(listed.contains(&&Evidence::VolumeSnapshot {
        region: snap.region.clone(),
        volume: snap.volume.clone(),
        id: snap.id.clone(),
    }));
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["evidence"].as_array().unwrap().len(), 2);
    assert!(report.to_string().contains(&sha), "{report}");
    assert!(report.to_markdown().contains(&snap.id));
    // Nothing of the evidence was deleted.
    assert_eq!(effects(&sim, Operation::Delete), 0);

    // Rotated once in the manager, under the step's version, then copied into the clean
    // namespace's secret, and the clean workload restarted to read it.
    let versions = cloud.secret_versions(SECRET_REGION, SECRET);
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert!(versions[1].starts_with("dr-"), "{versions:?}");
    let now = cloud
        .secrets()
        .get_secret_value(SECRET_REGION, SECRET)
        .await
        .unwrap();
    assert_ne!(now.value.expose(), PLANTED);
    assert_eq!(now.value.expose().len(), 64);
    let in_cluster = k8s
        .read_secret(CLUSTER, "shop-recovery", "voice-secrets", "SPEECH_API_KEY")
        .await
        .unwrap();
    assert_eq!(in_cluster, now.value);
    let clean = dr_core::provider::WorkloadRef::deployment(CLUSTER, "shop-recovery", "voice");
    let status = k8s.rollout_status(&clean).await.unwrap();
    assert!(status.is_complete() && status.replicas == 2, "{status:?}");
    assert!(
        status.revision >= 2,
        "restarted after the secret: {status:?}"
    );
    assert!(k8s
        .read_secret(CLUSTER, "shop-recovery", "voice-secrets", "DATABASE_URL")
        .await
        .is_ok());

    // Neither the old value nor the new one appears anywhere the run wrote.
    let mut events = String::new();
    while let Ok(e) = rx.try_recv() {
        events.push_str(&serde_json::to_string(&e).unwrap());
        events.push_str(&format!("{e:?}\n"));
    }
    assert!(!events.is_empty());
    let journal_text = String::from_utf8_lossy(&journal.bytes()).into_owned();
    assert!(
        journal_text.contains("rotate_credential") || journal_text.contains("rotate-credential")
    );
    let logs = logs.text();
    assert!(
        logs.contains("voice/rotate-credential"),
        "the logs were not captured"
    );
    for (what, text) in [
        ("JSON report", report.to_json()),
        ("text report", report.to_string()),
        ("Markdown report", report.to_markdown()),
        ("journal", journal_text),
        ("events", events),
        ("logs", logs),
        ("graph", serde_json::to_string(&graph).unwrap()),
    ] {
        for value in [PLANTED, now.value.expose()] {
            assert!(!text.contains(value), "the credential is in the {what}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_evidence_write_rotates_and_redeploys_nothing_and_names_the_object() {
    let plan = plan();
    let (_, nominal) = setup(SimConfig::default()).await;
    let key = evidence_key(&nominal);
    let faults = FaultConfig::default().with_permanent(FaultRule::new(
        Some(Operation::PutIf),
        format!("evidence/{key}"),
    ));
    let (sim, graph) = setup(SimConfig::default().with_faults(faults)).await;
    assert_eq!(evidence_key(&graph), key);
    let report = executor(&sim).run(&graph).await;
    assert!(!report.succeeded(), "{report}");
    let export = report
        .steps
        .iter()
        .find(|s| s.action == "export_resources")
        .unwrap();
    assert_eq!(export.status, StepStatus::Failed);
    assert!(
        export.error.as_deref().unwrap().contains(&key),
        "{:?}",
        export.error
    );
    for kind in [
        "rotate_credential",
        "approval",
        "apply_manifests",
        "copy_credential",
    ] {
        for s in report.steps.iter().filter(|s| s.action == kind) {
            assert_ne!(s.status, StepStatus::Succeeded, "{} ran", s.id);
        }
    }
    assert_eq!(effects(&sim, Operation::PutSecretValue), 0);
    assert_eq!(effects(&sim, Operation::Apply), 1, "only the NetworkPolicy");
    assert_eq!(
        sim.cloud().secret_versions(SECRET_REGION, SECRET),
        ["initial"]
    );
    assert!(plan.scenario(SCENARIO).is_some());
}

#[tokio::test(start_paused = true)]
async fn an_existing_evidence_object_is_never_overwritten() {
    let (sim, graph) = setup(SimConfig::default()).await;
    let key = evidence_key(&graph);
    let store = sim.cloud().store("evidence");
    store
        .put_if(&key, "someone else's object".into(), Precondition::Absent)
        .await
        .unwrap();
    let report = executor(&sim).run(&graph).await;
    assert!(!report.succeeded(), "{report}");
    let export = report
        .steps
        .iter()
        .find(|s| s.action == "export_resources")
        .unwrap();
    let error = export.error.as_deref().unwrap();
    assert!(
        error.contains(&key) && error.contains("written once"),
        "{error}"
    );
    let (bytes, _) = store.get_versioned(&key).await.unwrap().unwrap();
    assert_eq!(&bytes[..], b"someone else's object");
    assert_eq!(effects(&sim, Operation::PutSecretValue), 0);
    assert!(report.evidence.iter().all(|e| !matches!(
        &e.evidence,
        Evidence::Object { key: k, .. } if *k == key
    )));
}

#[tokio::test(start_paused = true)]
async fn a_crash_after_the_rotation_resumes_without_rotating_twice() {
    let (sim, graph) = setup(SimConfig::default()).await;
    let rotate = step_of(&graph, "rotate_credential").id.clone();
    let wire = {
        let rotate = rotate.clone();
        Arc::new(Tripwire::when(
            move |r| matches!(r, Record::Intent { step, .. } if *step == rotate),
        ))
    };
    let first = executor(&sim).journal(wire.clone());
    // After the rotation's intent the run goes on until its next append, which never
    // returns: the new version is written, its outcome never journaled. Then it dies.
    assert!(crash_after_trip(&first, &graph, &wire, Duration::from_secs(600)).await);
    drop(first);
    assert_eq!(effects(&sim, Operation::PutSecretValue), 1);
    let before = sim
        .cloud()
        .secrets()
        .get_secret_value(SECRET_REGION, SECRET)
        .await
        .unwrap();

    let survivor = wire.survivor();
    let report = executor(&sim)
        .journal(survivor.clone())
        .resume(&graph)
        .await
        .unwrap();
    assert!(report.succeeded(), "{report}");
    assert!(report.resumed);
    assert_eq!(effects(&sim, Operation::PutSecretValue), 1, "rotated twice");
    let versions = sim.cloud().secret_versions(SECRET_REGION, SECRET);
    assert_eq!(versions.len(), 2, "{versions:?}");
    let after = sim
        .cloud()
        .secrets()
        .get_secret_value(SECRET_REGION, SECRET)
        .await
        .unwrap();
    assert_eq!(after, before);
    // The cluster holds the value written before the crash.
    let in_cluster = sim
        .cloud()
        .cluster()
        .read_secret(CLUSTER, "shop-recovery", "voice-secrets", "SPEECH_API_KEY")
        .await
        .unwrap();
    assert_eq!(in_cluster, before.value);
    // One volume snapshot, one evidence object, whatever was resumed.
    assert_eq!(sim.cloud().volume_snapshots().len(), 1);
    assert_eq!(effects(&sim, Operation::CreateVolumeSnapshot), 1);
    let text = String::from_utf8_lossy(&survivor.bytes()).into_owned();
    assert!(!text.contains(before.value.expose()));
}

#[tokio::test(start_paused = true)]
async fn a_resumed_snapshot_step_finds_the_snapshot_by_its_tag() {
    // The snapshot is taken, then its answer is lost: the retry finds it by its tags.
    let faults = FaultConfig::default()
        .with_fail_after_effect(FaultRule::new(Some(Operation::CreateVolumeSnapshot), "").times(1));
    let (sim, graph) = setup(SimConfig::default().with_faults(faults)).await;
    let report = executor(&sim).run(&graph).await;
    assert!(report.succeeded(), "{report}");
    assert_eq!(sim.cloud().volume_snapshots().len(), 1);
    let snap = report
        .steps
        .iter()
        .find(|s| s.action == "snapshot_volume")
        .unwrap();
    assert!(snap.attempts >= 2, "{report}");
}

#[test]
fn volumes_and_credential_are_validated_naming_the_field() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/plans/region-failover.yaml"),
    )
    .unwrap();
    let broken = text
        .replace(
            "volumes: [vol-0a1b2c3d4e5f60718]",
            "volumes: [vol-0a1b2c3d4e5f60718, { id: vol-2, region: us-east-9 }]",
        )
        .replace(
            "credential: { secret: shop/voice/speech-api-key, region: us-east-1, key: SPEECH_API_KEY }",
            "credential: { secret: shop/voice/speech-api-key, region: us-east-1, key: DATABASE_URL }",
        );
    let plan = Plan::from_yaml_str(&broken).unwrap();
    let err = plan.validate().unwrap_err().to_string();
    assert!(err.contains("services[voice].volumes[1].region"), "{err}");
    assert!(err.contains("services[voice].credential.key"), "{err}");

    // The same fields in TOML and JSON.
    let plan = Plan::from_yaml_str(&text).unwrap();
    let voice = plan.service("voice").unwrap();
    assert_eq!(voice.volumes[0].id, "vol-0a1b2c3d4e5f60718");
    let json = serde_json::to_string(&plan).unwrap();
    let back = Plan::from_json_str(&json).unwrap();
    assert_eq!(back.service("voice"), Some(voice));
    let toml = toml::to_string(&plan).unwrap();
    let back = Plan::from_toml_str(&toml).unwrap();
    assert_eq!(back.service("voice"), Some(voice));
}
