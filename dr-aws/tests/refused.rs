//! A request to a port nobody listens on (127.0.0.1:1) is refused before it is sent: the
//! error says so (`Refused`, certainly not applied), after the SDK's own attempts.

use dr_core::provider::SnapshotStore;
use dr_core::{Effect, Error};

#[tokio::test]
async fn a_closed_port_is_refused_not_unavailable() {
    let aws = dr_aws::AwsBuilder::new()
        .with_region("us-east-1")
        .with_endpoint("http://127.0.0.1:1")
        .with_credentials("testing", "testing")
        .load()
        .await
        .expect("config");
    let err = aws
        .build_s3_for("nobody")
        .head("k")
        .await
        .expect_err("nothing listens on port 1");
    assert!(matches!(err, Error::Refused { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(err.effect(), Effect::NotApplied);
}
