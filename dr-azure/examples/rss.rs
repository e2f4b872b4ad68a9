//! Streams a generated 1 GiB object up to Blob Storage and back down, verifying its
//! SHA-256, and prints the peak resident memory (VmHWM): memory stays bounded by the block
//! size and concurrency, not by the object's size.
//!
//! ```text
//! source scripts/standins/azurite.sh && azurite_start
//! cargo run --release -p dr-azure --example azure-rss            # 1 GiB
//! RSS_MIB=256 cargo run --release -p dr-azure --example azure-rss
//! ```
//!
//! Reads `AZURITE_BLOB_URL`, `AZURITE_ACCOUNT` and `AZURITE_KEY`.

use std::time::Instant;

use dr_azure::AzureBlobBuilder;
use dr_core::provider::{sha256_stream, PutOptions, SnapshotStore};
use dr_core::testkit::store::{pattern_sha256, pattern_stream};

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
    let var = |n: &str| std::env::var(n).map_err(|_| format!("{n} is not set (start Azurite)"));
    let mib: usize = std::env::var("RSS_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let len = mib * MIB;
    let store = AzureBlobBuilder::new()
        .with_endpoint(var("AZURITE_BLOB_URL")?)
        .with_account(var("AZURITE_ACCOUNT")?)
        .with_access_key(var("AZURITE_KEY")?)
        .with_container("rss")
        .build()?;
    store.create_container().await?;
    let key = format!("rss/{}", std::process::id());
    let expected = pattern_sha256(1, len);
    println!("baseline peak RSS: {:.1} MiB", peak_rss_mib());

    let start = Instant::now();
    let opts = PutOptions::default().with_expected_sha256(expected.clone());
    let put = store.put(&key, pattern_stream(1, len, MIB), opts).await?;
    let up = start.elapsed();
    println!(
        "put {mib} MiB in {up:.1?}; peak RSS {:.1} MiB",
        peak_rss_mib()
    );

    let start = Instant::now();
    let got = store.get(&key).await?;
    let (sha, size) = sha256_stream(got.stream).await?;
    let down = start.elapsed();
    println!(
        "get {mib} MiB in {down:.1?}; peak RSS {:.1} MiB",
        peak_rss_mib()
    );
    if sha != expected || size != len as u64 || put.sha256.as_deref() != Some(expected.as_str()) {
        return Err(
            format!("round trip mismatch: {sha} ({size} bytes), expected {expected}").into(),
        );
    }
    store.delete(&key).await?;
    println!(
        "azure-blob: {mib} MiB round trip verified (sha256 {expected}); peak RSS {:.1} MiB",
        peak_rss_mib()
    );
    Ok(())
}
