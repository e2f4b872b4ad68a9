//! The security incident of the bundled plan through `run-plan --providers` with its volume
//! snapshots on EC2 (moto) and the rest simulated: the recordings volume is snapshotted on the
//! emulator, tagged with the incident, listed as evidence, and found there afterwards by the
//! provider built from the same file.
//!
//! It reads `AWS_ENDPOINT_URL`. Without it the test prints a `skipped:` line and passes,
//! unless `CI` is set: then it fails, because the moto stand-in should have been started.
#![cfg(all(feature = "aws", feature = "providers-aws"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use dr_core::executor::StepStatus;
use dr_core::provider::{VolumeSnapshotState, VolumeSnapshots};
use dr_examples::providers::{run_with_providers, ProvidersRunOptions};
use dr_examples::{plans_dir, Console, EXIT_OK};

/// The volume id the bundled plan names for the voice service's recordings.
const PLANNED_VOLUME: &str = "vol-0a1b2c3d4e5f60718";

/// A new EBS volume on the emulator (`CreateVolume`, the fixture's own request: the provider
/// only snapshots volumes).
async fn volume(endpoint: &str) -> String {
    let text = reqwest::Client::new()
        .post(format!("{}/", endpoint.trim_end_matches('/')))
        .header("content-type", "application/x-www-form-urlencoded")
        // moto routes a request to its service by the credential scope.
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20261201/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body("Action=CreateVolume&Version=2016-11-15&AvailabilityZone=us-east-1a&Size=8")
        .send()
        .await
        .expect("CreateVolume sent")
        .text()
        .await
        .expect("CreateVolume answered");
    let start = text.find("<volumeId>").expect("a volume id") + "<volumeId>".len();
    let end = text[start..].find('<').expect("the id ends") + start;
    text[start..end].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_incident_snapshots_the_volume_on_ec2_tagged_and_listed_as_evidence() {
    let Some(endpoint) = dr_core::testkit::standin("AWS_ENDPOINT_URL", "moto") else {
        return;
    };
    let vol = volume(&endpoint).await;
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(plans_dir().join("region-failover.yaml")).unwrap();
    assert!(
        text.contains(PLANNED_VOLUME),
        "the bundled plan names its volume"
    );
    let plan = dir.path().join("plan.yaml");
    std::fs::write(&plan, text.replace(PLANNED_VOLUME, &vol)).unwrap();
    let file = dir.path().join("providers.yaml");
    std::fs::write(
        &file,
        format!(
            "default: simulated\naws: {{ endpoint: \"{endpoint}\" }}\nvolumes:\n  us-east-1: {{ kind: ec2 }}\n"
        ),
    )
    .unwrap();
    let opts = ProvidersRunOptions {
        approval_delay: Duration::from_millis(100),
        ..ProvidersRunOptions::default()
    };
    let console = Console::captured();
    let run = run_with_providers(&plan, "security-isolation", &file, &opts, &console).await;
    let (out, err) = (console.stdout(), console.stderr());
    assert_eq!(run.exit, EXIT_OK, "stdout:\n{out}\nstderr:\n{err}");
    let built = run.built.expect("providers built");
    assert_eq!(
        built.route("volumes", "us-east-1").unwrap().provider,
        format!("ec2 us-east-1 at {endpoint}")
    );
    let report = run.report.expect("a report");
    let step = report
        .step(&format!("voice/snapshot-volume:{vol}"))
        .expect("the volume's snapshot step");
    assert_eq!(step.status, StepStatus::Succeeded, "{report}");
    let json = serde_json::to_value(&report).unwrap();
    let evidence = json["evidence"].as_array().expect("evidence listed");
    let listed = evidence
        .iter()
        .find(|e| e["kind"] == "volume_snapshot" && e["volume"] == vol.as_str())
        .unwrap_or_else(|| panic!("the snapshot is listed: {evidence:?}"));
    let id = listed["id"].as_str().unwrap().to_string();

    // On the emulator: the snapshot exists, of that volume, tagged when it was made.
    let ec2 = built.providers.volumes("us-east-1").unwrap();
    let snap = ec2
        .describe_volume_snapshot("us-east-1", &id)
        .await
        .unwrap();
    assert_eq!(snap.volume, vol);
    assert!(
        matches!(
            snap.state,
            VolumeSnapshotState::Completed | VolumeSnapshotState::Pending
        ),
        "{snap:?}"
    );
    assert!(!snap.tags.is_empty(), "tagged with the incident: {snap:?}");
    let found = ec2
        .find_volume_snapshots("us-east-1", &vol, &snap.tags)
        .await
        .unwrap();
    assert_eq!(
        found.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        [id.as_str()],
        "exactly one snapshot of the volume carries the incident's tags"
    );
}
