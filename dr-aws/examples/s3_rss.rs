//! Streams a generated 1 GiB object up to S3 (multipart) and back down, verifying its
//! SHA-256, and prints the peak resident memory (VmHWM): memory stays bounded by the part
//! size, not by the object's size.
//!
//! ```text
//! source scripts/standins/moto.sh && moto_start
//! cargo run --release -p dr-aws --example s3-rss            # 1 GiB
//! RSS_MIB=256 cargo run --release -p dr-aws --example s3-rss
//! ```

use dr_aws::AwsConfig;
use dr_core::provider::SnapshotStore;
use dr_core::testkit::rss::{round_trip, size_from_env};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let aws = AwsConfig::from_env().await?;
    let bucket = format!("dr-rss-{}", std::process::id());
    let store = aws.build_s3_for(&bucket);
    store
        .client()
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await?;
    println!(
        "{}",
        round_trip(&store, "rss/object", size_from_env()).await?
    );
    store.delete("rss/object").await?;
    Ok(())
}
