//! Streams a generated 1 GiB object up to Cloud Storage and back down, verifying its
//! SHA-256, and prints the peak resident memory (VmHWM): memory stays bounded by the upload
//! chunk, not by the object's size.
//!
//! ```text
//! source scripts/standins/fakegcs.sh && fakegcs_start
//! cargo run --release -p dr-gcp --example gcs-rss              # 1 GiB
//! RSS_MIB=256 cargo run --release -p dr-gcp --example gcs-rss
//! ```
//!
//! Reads `GCS_EMULATOR_URL` and `GCS_BUCKET`. Only the upload and the download are measured
//! against the emulator: the expected SHA-256 is given to `put`, so it is stored with the
//! object and no control call (gRPC, which the emulator lacks) is needed; the final delete
//! is a control call, so run it where one answers, or ignore a failing delete.

use dr_core::testkit::rss::{round_trip, size_from_env};
use dr_gcp::{GcsBuilder, GcsCredentials};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("GCS_EMULATOR_URL").map_err(|_| "GCS_EMULATOR_URL is not set")?;
    let bucket = std::env::var("GCS_BUCKET").unwrap_or_else(|_| "dr-test".into());
    let store = GcsBuilder::new()
        .with_endpoint(url)
        .with_bucket(bucket)
        .with_credentials(GcsCredentials::Anonymous)
        .build()
        .await?;
    let key = format!("rss/{}", std::process::id());
    println!("{}", round_trip(&store, &key, size_from_env()).await?);
    Ok(())
}
