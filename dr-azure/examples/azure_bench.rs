//! Throughput and peak memory of `AzureBlobStore` `put` (blocks staged in parallel, then
//! committed) and `get` (ranged reads in parallel) against `curl` on the same Azurite
//! endpoint: one Put Blob streamed from the file (`curl -T`) and one Get Blob, authorised
//! with an account SAS (alternating runs, fastest kept; see `dr_core::testkit::bench`).
//!
//! ```text
//! source scripts/standins/azurite.sh && azurite_start
//! cargo run --release -p dr-azure --example azure-bench            # 1 GiB
//! BENCH_MIB=256 cargo run --release -p dr-azure --example azure-bench
//! ```
//!
//! `BENCH_DIR` chooses the directory of the local files (default `target/bench`),
//! `BENCH_RUNS` the runs of each side (default 3); `AZURE_DOWNLOAD_CONCURRENCY` and
//! `AZURE_DOWNLOAD_PARTITION_KIB` override the store's download settings.

use std::path::PathBuf;

use dr_azure::AzureBlobBuilder;
use dr_core::provider::SnapshotStore;
use dr_core::testkit::bench::{self, Baseline, Plan, Row};

/// Runs the comparison in a new container of the Azurite account in `AZURITE_BLOB_URL`,
/// `AZURITE_ACCOUNT`, `AZURITE_KEY`, then deletes the objects.
pub async fn azure_bench(
    bytes: u64,
    runs: usize,
    dir: PathBuf,
) -> Result<Vec<Row>, Box<dyn std::error::Error>> {
    let var = |n: &str| std::env::var(n).map_err(|_| format!("{n} is not set (start Azurite)"));
    let (url, account, key) = (
        var("AZURITE_BLOB_URL")?,
        var("AZURITE_ACCOUNT")?,
        var("AZURITE_KEY")?,
    );
    let container = dr_core::testkit::unique("bench");
    let knob = |n: &str| std::env::var(n).ok().and_then(|v| v.parse::<usize>().ok());
    let mut builder = AzureBlobBuilder::new()
        .with_endpoint(&url)
        .with_account(&account)
        .with_access_key(&key)
        .with_container(&container);
    if let Some(n) = knob("AZURE_DOWNLOAD_CONCURRENCY") {
        builder = builder.with_download_concurrency(n);
    }
    if let Some(kib) = knob("AZURE_DOWNLOAD_PARTITION_KIB") {
        builder = builder.with_download_partition_size(kib * 1024);
    }
    let store = builder.build()?;
    store.create_container().await?;
    let sas = dr_azure::account_sas(
        &account,
        &key,
        "rwdlc",
        chrono::Utc::now() + chrono::Duration::hours(2),
    )?;
    let blob = |name: &str| format!("{}/{container}/{name}?{sas}", url.trim_end_matches('/'));
    let mut plan = Plan::new(bytes, dir);
    plan.runs = runs;
    plan.put = Some(Baseline::new("curl -T (Put Blob)", &[]).step([
        "curl",
        "-sS",
        "-f",
        "-o",
        "/dev/null",
        "-H",
        "x-ms-blob-type: BlockBlob",
        "-T",
        "{src}",
        &blob("bench/baseline"),
    ]));
    plan.get = Some(Baseline::new("curl (Get Blob)", &[]).step([
        "curl",
        "-sS",
        "-f",
        "-o",
        "{dst}",
        &blob(&plan.key),
    ]));
    let rows = bench::run(&store, &plan).await;
    store.delete("bench/baseline").await?;
    Ok(rows?)
}

#[allow(dead_code)] // The test includes this file for `azure_bench`.
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::var("BENCH_DIR").unwrap_or_else(|_| "target/bench".into());
    let rows = azure_bench(
        bench::mib_from_env(1024),
        bench::runs_from_env(),
        dir.into(),
    )
    .await?;
    bench::print(&rows);
    Ok(())
}
