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

/// The region failover on moto, its process "crashing" right after the first DNS switch was
/// sent to Route 53 (its intent durable, its outcome never written), then resumed by a new
/// executor from the journal: the state is read back from the emulator, which outlived the
/// run, so the switch is found done and not sent again, and the promotion is issued once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_failover_resumes_from_what_the_emulator_holds() {
    use dr_core::executor::RunEvent;
    use dr_core::journal::Record;
    use dr_core::layer::CallLog;
    use dr_core::provider::Operation;
    use dr_core::testkit::journal::Tripwire;
    use dr_examples::aws::prepare_aws_failover;
    use std::sync::Arc;

    if !moto_available() {
        return;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let opts = AwsRunOptions {
        suffix: Some(format!("c{}-{nanos:x}", std::process::id())),
        approval_delay: Duration::from_millis(100),
        ..AwsRunOptions::default()
    };
    let console = Console::captured();
    let prepared = prepare_aws_failover(
        &plans_dir().join("aws-region-failover.yaml"),
        "region-failover",
        &opts,
        &console,
    )
    .await
    .unwrap_or_else(|run| panic!("exit {}: {}", run.exit, console.stderr()));
    let switch = prepared
        .graph
        .steps
        .iter()
        .find(|s| s.action.kind() == "switch_dns")
        .expect("a DNS switch")
        .id
        .clone();
    let log = Arc::new(CallLog::new());
    let providers = prepared.providers.clone().layer(log.clone());

    let target = switch.clone();
    let wire = Arc::new(Tripwire::when(
        move |r| matches!(r, Record::Intent { step, .. } if *step == target),
    ));
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel::<RunEvent>();
    let first = prepared
        .executor(providers.clone(), &opts)
        .journal(wire.clone())
        .events(tx);
    tokio::select! {
        _ = first.start(&prepared.graph) => panic!("the run should have stopped at the switch"),
        () = async {
            wire.tripped().await;
            // The switch's call goes to Route 53; its outcome append never returns.
            tokio::time::sleep(Duration::from_secs(3)).await;
        } => {}
    }
    drop(first);
    let switches = |log: &CallLog| {
        log.calls()
            .iter()
            .filter(|c| c.operation == Operation::SwitchRecord && c.target.contains("api"))
            .count()
    };
    let sent_before = switches(&log);
    assert!(sent_before >= 1, "the switch was sent before the crash");

    let report = prepared
        .executor(providers, &opts)
        .journal(wire.survivor())
        .resume(&prepared.graph)
        .await
        .expect("resume");
    assert!(report.succeeded(), "{report}");
    assert!(report.resumed);
    let step = report.step(&switch).expect("the switch step");
    assert!(step.already_done, "read back from Route 53: {report}");
    assert_eq!(switches(&log), sent_before, "the switch was sent again");
    let promotes = log
        .calls()
        .iter()
        .filter(|c| c.operation == Operation::Promote && c.took_effect)
        .count();
    assert_eq!(promotes, 1, "one promotion across the crash");
    let (records, _) = prepared.read_back(&report, &console).await;
    assert!(
        !records.is_empty() && records.iter().all(|r| r.points_to_recovery()),
        "{records:?}"
    );
}
