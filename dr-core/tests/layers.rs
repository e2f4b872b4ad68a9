//! Layers wrap any provider — here a real local-disk store, not only the simulated cloud:
//! faults injected before a call refuse it (nothing written), a reply lost after the call is
//! an error whose effect the call log shows happened, and metrics count every call.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use bytes::Bytes;
use dr_core::layer::{CallLog, Faults, Metrics, Tracing};
use dr_core::provider::{Operation, SnapshotStore, SnapshotStoreExt};
use dr_core::sim::{FaultConfig, FaultRule};
use dr_core::store::LocalDiskStore;
use dr_core::{Effect, Providers};

#[tokio::test]
async fn faults_log_and_metrics_around_a_local_disk_store() {
    let dir = tempfile::tempdir().unwrap();
    let disk: Arc<dyn SnapshotStore> = Arc::new(LocalDiskStore::new(dir.path()).unwrap());
    let log = Arc::new(CallLog::new());
    let metrics = Arc::new(Metrics::new());
    let faults = FaultConfig::default()
        .with_fail_after_effect(FaultRule::new(Some(Operation::Put), "lost").times(1))
        .with_permanent(FaultRule::new(Some(Operation::Put), "refused").times(1));
    let providers = Providers::new()
        .with_store("backups", disk.clone())
        .layer(log.clone())
        .layer(Arc::new(Faults::new(1, faults)))
        .layer(metrics.clone())
        .layer(Arc::new(Tracing));
    let store = providers.store("backups").unwrap();

    // A reply lost after the write: an error of unknown effect, yet the object is there.
    let err = store
        .put_bytes("lost", Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.effect(), Effect::Unknown);
    assert_eq!(
        disk.get_bytes("lost").await.unwrap(),
        Bytes::from_static(b"x")
    );

    // A refusal before the write: nothing reaches the disk, nor the log inside the faults.
    let err = store
        .put_bytes("refused", Bytes::from_static(b"y"))
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
    assert!(disk.head("refused").await.unwrap_err().is_not_found());

    // And a call that goes through.
    store
        .put_bytes("fine", Bytes::from_static(b"z"))
        .await
        .unwrap();

    let calls = log.calls();
    let summary: Vec<(&str, bool)> = calls
        .iter()
        .map(|c| (c.target.as_str(), c.took_effect))
        .collect();
    assert_eq!(summary, [("lost", true), ("fine", true)]);
    assert!(calls
        .iter()
        .all(|c| c.role == "store" && c.operation == Operation::Put));

    let stats = metrics.snapshot();
    let put = stats[&("store", Operation::Put)];
    assert_eq!((put.calls, put.errors, put.temporary_errors), (3, 2, 1));
}
