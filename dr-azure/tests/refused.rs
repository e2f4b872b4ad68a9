//! A request to a port nobody listens on (127.0.0.1:1) is refused before it is sent: the
//! error says so (`Refused`, certainly not applied), after the SDK's own attempts.

use dr_core::provider::SnapshotStore;
use dr_core::{Effect, Error};

#[tokio::test]
async fn a_closed_port_is_refused_not_unavailable() {
    let store = dr_azure::AzureBlobBuilder::new()
        .with_endpoint("http://127.0.0.1:1/devstoreaccount1")
        .with_account("devstoreaccount1")
        .with_access_key("c2VjcmV0a2V5")
        .with_container("nobody")
        .build()
        .expect("store");
    let err = store
        .head("k")
        .await
        .expect_err("nothing listens on port 1");
    assert!(matches!(err, Error::Refused { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(err.effect(), Effect::NotApplied);
}
