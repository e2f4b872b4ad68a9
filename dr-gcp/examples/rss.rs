//! Streams a generated 1 GiB object up to Cloud Storage and back down, verifying its
//! SHA-256, and prints the peak resident memory (VmHWM): memory stays bounded by the
//! upload chunk, not by the object's size.
//!
//! ```text
//! source scripts/standins/fakegcs.sh && fakegcs_start
//! cargo run --release -p dr-gcp --example gcs-rss              # 1 GiB
//! RSS_MIB=256 cargo run --release -p dr-gcp --example gcs-rss
//! ```
//!
//! Reads `GCS_EMULATOR_URL` and `GCS_BUCKET`. Only the upload and the download are measured
//! against the emulator: the expected SHA-256 is given to `put`, so it is stored with the
//! object and no control call (gRPC, which the emulator lacks) is needed.

use std::time::Instant;

use dr_core::provider::{sha256_stream, PutOptions, SnapshotStore};
use dr_core::testkit::store::{pattern_sha256, pattern_stream};
use dr_gcp::{GcsBuilder, GcsCredentials};

const MIB: usize = 1024 * 1024;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("GCS_EMULATOR_URL").map_err(|_| "GCS_EMULATOR_URL is not set")?;
    let bucket = std::env::var("GCS_BUCKET").unwrap_or_else(|_| "dr-test".into());
    let mib: usize = std::env::var("RSS_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let len = mib * MIB;
    let store = GcsBuilder::new()
        .with_endpoint(url)
        .with_bucket(bucket)
        .with_credentials(GcsCredentials::Anonymous)
        .build()
        .await?;
    let key = format!("rss/{}", std::process::id());
    let expected = pattern_sha256(1, len);
    println!("baseline peak RSS: {:.1} MiB", peak_rss_mib());

    let start = Instant::now();
    let opts = PutOptions::default().with_expected_sha256(expected.clone());
    store.put(&key, pattern_stream(1, len, MIB), opts).await?;
    let up = start.elapsed();
    println!(
        "put {mib} MiB in {up:.1?}; peak RSS {:.1} MiB",
        peak_rss_mib()
    );

    let start = Instant::now();
    let got = store.get(&key).await?;
    let recorded = got.meta.sha256.clone();
    let (sha, size) = sha256_stream(got.stream).await?;
    let down = start.elapsed();
    println!(
        "get {mib} MiB in {down:.1?}; peak RSS {:.1} MiB",
        peak_rss_mib()
    );
    if sha != expected || size != len as u64 || recorded.as_deref() != Some(expected.as_str()) {
        return Err(
            format!("round trip mismatch: {sha} ({size} bytes), expected {expected}").into(),
        );
    }
    println!(
        "gcs: {mib} MiB round trip verified (sha256 {expected}); peak RSS {:.1} MiB",
        peak_rss_mib()
    );
    Ok(())
}
