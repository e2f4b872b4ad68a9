//! The region failover of the bundled plan through `run-plan --providers` with its edge on the
//! AWS emulator: the static site's CloudFront distribution, the API's ELBv2 target group and
//! the DR cluster's EKS node group live on moto, and so do the session cache's backup and its
//! restored copy (ElastiCache); databases, DNS and clusters are simulated.
//! After the run, read back on moto: the distribution's origin is the DR region's, the target
//! group holds the DR targets only, the node group was scaled from standby to serving, and
//! the session cache was restored on ElastiCache in the DR region from its backup there.
//!
//! The security incident's volume snapshots go to EC2 on moto the same way.
//!
//! They read `AWS_ENDPOINT_URL`. Without it each test prints a `skipped:` line and passes,
//! unless `CI` is set: then it fails, because the moto stand-in should have been started.
#![cfg(all(feature = "aws", feature = "providers-aws"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../dr-aws/tests/support/moto.rs"]
mod moto;

use std::path::{Path, PathBuf};
use std::time::Duration;

use dr_core::executor::StepStatus;
use dr_core::provider::{
    CacheRestore, CacheState, CdnOrigin, LbTarget, LoadBalancer, NodeCapacity, NodeGroupRef,
    VolumeSnapshotState, VolumeSnapshots,
};
use dr_examples::providers::{run_with_providers, ProvidersRun, ProvidersRunOptions};
use dr_examples::{plans_dir, Console, EXIT_OK};

/// What the bundled plan names, replaced by what this run made on moto.
const PLANNED_DISTRIBUTION: &str = "E2QWRUHAPOMQZL";
const PLANNED_TARGET_GROUP: &str = "target_group: shop-api";
const PLANNED_VOLUME: &str = "vol-0a1b2c3d4e5f60718";
const PLANNED_CACHE: &str = "id: shop-sessions";
const PLANNED_CACHE_RESTORE: &str = "restore: { us-west-2: shop-sessions-dr }";
/// The DR cluster's node group line: the simulated cluster runs the pods, so its own
/// capacity must not be what limits them (EKS is scaled, the simulated nodes are not).
const DR_NODE_GROUP: &str =
    "{ name: general, min: 3, desired: 3, max: 6, standby: { min: 1, desired: 1 }, pods_per_node: 3 }";

/// The bundled plan with `replace` applied, and a providers file with `sections`, in `dir`.
fn files(dir: &tempfile::TempDir, replace: &[(&str, &str)], sections: &str) -> (PathBuf, PathBuf) {
    let mut text = std::fs::read_to_string(plans_dir().join("region-failover.yaml")).unwrap();
    for (from, to) in replace {
        assert!(text.contains(from), "the bundled plan has {from}");
        text = text.replace(from, to);
    }
    let plan = dir.path().join("plan.yaml");
    std::fs::write(&plan, text).unwrap();
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let providers = dir.path().join("providers.yaml");
    std::fs::write(
        &providers,
        format!("default: simulated\naws: {{ endpoint: \"{endpoint}\" }}\n{sections}"),
    )
    .unwrap();
    (plan, providers)
}

async fn run(plan: &Path, scenario: &str, providers: &Path) -> ProvidersRun {
    let opts = ProvidersRunOptions {
        approval_delay: Duration::from_millis(100),
        ..ProvidersRunOptions::default()
    };
    let console = Console::captured();
    let run = run_with_providers(plan, scenario, providers, &opts, &console).await;
    let (out, err) = (console.stdout(), console.stderr());
    assert_eq!(run.exit, EXIT_OK, "stdout:\n{out}\nstderr:\n{err}");
    run
}

fn targets(list: &[&str]) -> Vec<LbTarget> {
    list.iter().map(|t| LbTarget::parse(t).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn region_failover_moves_the_cdn_origin_the_targets_and_the_node_group_on_moto() {
    let Some(aws) = moto::aws().await else { return };
    // What the plan expects on AWS before the failover: the distribution on the primary's
    // origin, the primary's targets registered, the DR node group at its standby size.
    let distribution = moto::distribution(&aws.build_cloudfront()).await;
    let (group, _arn) = moto::target_group(&aws).await;
    let east = targets(&["10.1.0.10:8080", "10.1.0.11:8080", "10.1.0.12:8080"]);
    let west = targets(&["10.2.0.10:8080", "10.2.0.11:8080", "10.2.0.12:8080"]);
    let lb = aws.build_elbv2();
    lb.register_targets(&group, &east).await.unwrap();
    // The DR cluster is in us-west-2, and so is its EKS node group.
    let west_aws = dr_aws::AwsBuilder::from_env()
        .with_region("us-west-2")
        .load()
        .await
        .unwrap();
    let eks_cluster = moto::unique("shop-dr");
    moto::cluster_with_node_group(&west_aws, &eks_cluster, "general", (1, 1, 6)).await;
    // The session cache's backup, copied to the DR region: moto needs a cluster there to
    // take it of, under the home cache's id.
    let (sessions, sessions_dr) = (moto::unique("shop-sessions"), moto::unique("sessions-dr"));
    let backup = moto::unique("shop-sessions-bk");
    moto::cache_with_snapshot("us-west-2", &sessions, &backup).await;

    let dir = tempfile::tempdir().unwrap();
    let serving_group = DR_NODE_GROUP.replace("pods_per_node: 3", "pods_per_node: 50");
    let (plan, providers) = files(
        &dir,
        &[
            (PLANNED_DISTRIBUTION, &distribution),
            (PLANNED_TARGET_GROUP, &format!("target_group: {group}")),
            (DR_NODE_GROUP, &serving_group),
            (PLANNED_CACHE, &format!("id: {sessions}")),
            (
                PLANNED_CACHE_RESTORE,
                &format!("restore: {{ us-west-2: {sessions_dr} }}"),
            ),
        ],
        &format!(
            "cdn:\n  {distribution}: {{ kind: cloudfront }}\n\
             load_balancers:\n  {group}: {{ kind: elbv2, region: us-east-1 }}\n\
             node_groups:\n  dr-west: {{ kind: eks, cluster_name: {eks_cluster} }}\n\
             caches:\n  us-west-2: {{ kind: elasticache }}\n"
        ),
    );
    let done = run(&plan, "region-failover", &providers).await;
    let built = done.built.expect("providers built");
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    assert_eq!(
        built.route("cdn", &distribution).unwrap().provider,
        format!("cloudfront at {endpoint}")
    );
    assert_eq!(
        built.route("nodes", "dr-west").unwrap().provider,
        format!("eks us-west-2 at {endpoint} cluster {eks_cluster}")
    );
    assert_eq!(
        built.route("caches", "us-west-2").unwrap().provider,
        format!("elasticache us-west-2 at {endpoint}")
    );
    let report = done.report.expect("a report");
    assert!(report.succeeded(), "{report}");
    let edge_or_cache = |id: &str| {
        ["origin", "targets", "node", "cache"]
            .iter()
            .any(|w| id.contains(w))
    };
    assert!(
        report.steps.iter().any(|s| s.id.contains("cache")),
        "the cache is restored: {report}"
    );
    for step in report.steps.iter().filter(|s| edge_or_cache(&s.id)) {
        assert_eq!(step.status, StepStatus::Succeeded, "{}: {report}", step.id);
    }

    // Read back on moto, through providers of its own.
    let cdn = aws.build_cloudfront();
    let d = cdn.describe_distribution(&distribution).await.unwrap();
    assert_eq!(d.origin, "lb.us-west-2.shop.example.com", "{d:?}");
    assert!(d.deployed, "{d:?}");
    let mut registered: Vec<LbTarget> = lb
        .target_health(&group)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.target)
        .collect();
    registered.sort_by_key(|t| t.to_string());
    let mut expected: Vec<LbTarget> = west
        .iter()
        .map(|t| LbTarget::parse(&t.to_string().replace(":8080", "")).unwrap())
        .collect();
    expected.sort_by_key(|t| t.to_string());
    assert_eq!(
        registered, expected,
        "only the DR targets remain registered"
    );
    let eks = west_aws
        .build_eks()
        .with_cluster_name("dr-west", &eks_cluster);
    let ng = eks
        .describe_node_group(&NodeGroupRef::new("dr-west", "general"))
        .await
        .unwrap();
    assert_eq!(
        ng.scaling.desired, 3,
        "scaled from standby to serving: {ng:?}"
    );
    assert_eq!(ng.scaling.min, 3, "{ng:?}");
    // The session cache restored in the DR region, from the backup there, and answering
    // (moto makes a cluster available at once).
    let elasticache = aws.build_elasticache_caches().unwrap();
    let restored = elasticache
        .describe_cache("us-west-2", &sessions_dr)
        .await
        .unwrap();
    assert_eq!(restored.state, CacheState::Available, "{restored:?}");
    let backups = elasticache
        .list_cache_backups("us-west-2", &sessions)
        .await
        .unwrap();
    assert_eq!(
        backups.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(),
        [backup.as_str()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_incident_snapshots_the_volume_on_ec2_tagged_and_listed_as_evidence() {
    let Some(_aws) = moto::aws().await else {
        return;
    };
    let vol = moto::volume().await;
    let dir = tempfile::tempdir().unwrap();
    let (plan, providers) = files(
        &dir,
        &[(PLANNED_VOLUME, &vol)],
        "volumes:\n  us-east-1: { kind: ec2 }\n",
    );
    let done = run(&plan, "security-isolation", &providers).await;
    let built = done.built.expect("providers built");
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    assert_eq!(
        built.route("volumes", "us-east-1").unwrap().provider,
        format!("ec2 us-east-1 at {endpoint}")
    );
    let report = done.report.expect("a report");
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
