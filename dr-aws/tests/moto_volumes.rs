//! The EC2 volume snapshot provider against a moto server (`scripts/standins/moto.sh`).
//!
//! It reads `AWS_ENDPOINT_URL`. Without it the tests print a `skipped:` line and pass, unless
//! `CI` is set: then they fail, because the stand-in should have been started.

use std::collections::BTreeMap;

#[path = "support/moto.rs"]
mod moto;

use dr_aws::Ec2Volumes;
use dr_core::provider::{VolumeSnapshotState, VolumeSnapshots};
use dr_core::Error;
use moto::{assert_unauthorized_and_refused, aws, refusing, volume};

const REGION: &str = "us-east-1";

fn tags(incident: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("dr-incident".to_string(), incident.to_string()),
        ("dr-purpose".to_string(), "evidence".to_string()),
    ])
}

#[tokio::test]
async fn a_snapshot_is_created_tagged_described_and_found_by_its_tags() {
    let Some(aws) = aws().await else { return };
    let ec2 = aws.build_ec2_volumes().expect("provider");
    let vol = volume().await;
    let other = volume().await;
    let incident = dr_core::testkit::unique("inc");
    let snap = ec2
        .create_volume_snapshot(
            REGION,
            &vol,
            &format!("evidence for {incident}"),
            &tags(&incident),
        )
        .await
        .expect("snapshot created");
    assert!(snap.id.starts_with("snap-"), "{snap:?}");
    assert_eq!(snap.volume, vol);
    assert_eq!(snap.region, REGION);
    assert_eq!(snap.tags, tags(&incident), "tagged in the same call");
    let described = ec2
        .describe_volume_snapshot(REGION, &snap.id)
        .await
        .expect("described");
    assert_eq!(described.id, snap.id);
    assert!(
        matches!(
            described.state,
            VolumeSnapshotState::Pending | VolumeSnapshotState::Completed
        ),
        "{described:?}"
    );
    assert_eq!(described.tags, tags(&incident));
    // Found by volume and every tag; nothing else matches.
    let found = ec2
        .find_volume_snapshots(REGION, &vol, &tags(&incident))
        .await
        .expect("found");
    assert_eq!(
        found.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        [snap.id.as_str()]
    );
    let by_one_tag = BTreeMap::from([("dr-incident".to_string(), incident.clone())]);
    assert_eq!(
        ec2.find_volume_snapshots(REGION, &vol, &by_one_tag)
            .await
            .expect("found by one tag")
            .len(),
        1
    );
    let other_incident = tags(&dr_core::testkit::unique("inc"));
    assert!(ec2
        .find_volume_snapshots(REGION, &vol, &other_incident)
        .await
        .expect("searched")
        .is_empty());
    assert!(ec2
        .find_volume_snapshots(REGION, &other, &tags(&incident))
        .await
        .expect("searched")
        .is_empty());
}

#[tokio::test]
async fn unknown_volumes_and_snapshots_are_not_found() {
    let Some(aws) = aws().await else { return };
    let ec2 = aws.build_ec2_volumes().expect("provider");
    let e = ec2
        .describe_volume_snapshot(REGION, "snap-00000000000000000")
        .await
        .expect_err("no such snapshot");
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("snap-00000000000000000"), "{e}");
    let e = ec2
        .create_volume_snapshot(REGION, "vol-00000000000000000", "x", &tags("inc"))
        .await
        .expect_err("no such volume");
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("vol-00000000000000000"), "{e}");
}

#[tokio::test]
async fn without_credentials_or_an_endpoint_the_call_is_refused_typed() {
    let Some(aws) = aws().await else { return };
    let [no_credentials, closed] = refusing(&aws).map(|(credentials, endpoint)| {
        Ec2Volumes::new(credentials, Some(endpoint), None).expect("provider")
    });
    let no_credentials = no_credentials
        .find_volume_snapshots(REGION, "vol-1", &BTreeMap::new())
        .await
        .expect_err("no credentials");
    let closed = closed
        .describe_volume_snapshot(REGION, "snap-1")
        .await
        .expect_err("nobody listens");
    assert_unauthorized_and_refused(&no_credentials, &closed);
}
