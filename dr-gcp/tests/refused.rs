//! A request to a port nobody listens on (127.0.0.1:1) is refused before it is sent: the
//! error says so (`Refused`, certainly not applied), after the clients' own attempts.

use dr_core::provider::SnapshotStore;
use dr_core::{Effect, Error};

#[tokio::test]
async fn a_closed_port_is_refused_not_unavailable() {
    let store = dr_gcp::GcsBuilder::new()
        .with_endpoint("http://127.0.0.1:1")
        .with_bucket("nobody")
        .with_credentials(dr_gcp::GcsCredentials::Anonymous)
        .build()
        .await
        .expect("store");
    // A read goes over JSON/HTTP; `head` over gRPC.
    let err = store.get("k").await.expect_err("nothing listens on port 1");
    assert!(matches!(err, Error::Refused { .. }), "get: {err:?}");
    assert_eq!(err.effect(), Effect::NotApplied);
    let err = store
        .head("k")
        .await
        .expect_err("nothing listens on port 1");
    assert!(err.is_retryable(), "head: {err:?}");
}
