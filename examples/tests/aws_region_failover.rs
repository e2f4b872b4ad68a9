//! The AWS region failover (`aws-region-failover`) against moto: provisioning, the run and
//! the read-back, through the function the example calls.
//!
//! It reads `AWS_ENDPOINT_URL`. Without it the test prints a `skipped:` line and passes,
//! unless `CI` is set: then it fails, because the moto stand-in should have been started
//! (`scripts/test.sh` starts it).
#![cfg(feature = "aws")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use dr_core::executor::StepStatus;
use dr_examples::aws::{run_aws_failover, targets_met_where_measured, AwsRunOptions};
use dr_examples::{plans_dir, Console, EXIT_OK};

/// Whether the moto stand-in is configured (in CI, it must be).
fn moto_available() -> bool {
    dr_core::testkit::standin("AWS_ENDPOINT_URL", "moto").is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn region_failover_switches_route53_to_the_dr_region() {
    if !moto_available() {
        return;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let opts = AwsRunOptions {
        suffix: Some(format!("t{}-{nanos:x}", std::process::id())),
        approval_delay: Duration::from_millis(100),
        ..AwsRunOptions::default()
    };
    let console = Console::captured();
    let run = run_aws_failover(
        &plans_dir().join("aws-region-failover.yaml"),
        "region-failover",
        &opts,
        &console,
    )
    .await;
    let (out, err) = (console.stdout(), console.stderr());
    assert_eq!(run.exit, EXIT_OK, "stdout:\n{out}\nstderr:\n{err}");

    let report = run.report.expect("a report");
    assert!(report.succeeded(), "{report}");
    assert!(targets_met_where_measured(&report), "{report}");
    // RDS reports no replica lag: the data loss of the promotion is unknown, not zero.
    let database = report.service("database").expect("the database service");
    assert_eq!(database.achieved_rpo, None, "{report}");
    let promote = report.step("orders-db/promote").expect("a promotion step");
    assert_eq!(promote.status, StepStatus::Succeeded, "{report}");
    // Redundancy restored through RDS: a new read replica of the promoted instance.
    let new_replica = report
        .step("orders-db/new-replica")
        .expect("a new replica step");
    assert_eq!(new_replica.status, StepStatus::Succeeded, "{report}");
    assert!(!report.degraded, "{report}");

    // Both records, read back through Route 53, point at the us-west-2 ingress.
    assert_eq!(run.records.len(), 2, "{out}");
    for r in &run.records {
        assert!(
            r.points_to_recovery(),
            "{r:?} does not point to the DR region"
        );
        assert!(r.expected.contains("us-west-2"), "{r:?}");
    }
    // The replica exists in us-west-2 under this run's suffixed id.
    let provisioned = run.provisioned.expect("provisioned");
    let replica = &provisioned.plan.databases[0].replicas[0];
    assert!(replica.id.ends_with(opts.suffix.as_deref().unwrap()));
    assert_eq!(run.replicas.len(), 1);
    assert_eq!(run.replicas[0].db.id, replica.id);
    assert!(out.contains("rds CreateDBInstanceReadReplica"), "{out}");
    assert!(out.contains("route53 CreateHostedZone"), "{out}");
    assert!(out.contains("s3 PutObject"), "{out}");
}
