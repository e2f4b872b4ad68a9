//! Throughput and peak memory of `S3Store` `put` (multipart, parts in parallel) and `get`
//! against the AWS CLI on the same S3 endpoint: `aws s3 cp` (8 MiB parts, 10 in parallel by
//! default) and `aws s3api get-object` (alternating runs, fastest kept; see
//! `dr_core::testkit::bench`).
//!
//! ```text
//! source scripts/standins/moto.sh && moto_start
//! python3 -m venv target/awscli && target/awscli/bin/pip install awscli
//! cargo run --release -p dr-aws --example s3-bench                 # 1 GiB
//! BENCH_MIB=256 S3_UPLOAD_CONCURRENCY=8 cargo run --release -p dr-aws --example s3-bench
//! ```
//!
//! `AWS_CLI` names the CLI (default `target/awscli/bin/aws`, else `aws` on the `PATH`);
//! `BENCH_DIR` the directory of the local files (default `target/bench`); `BENCH_RUNS` the
//! runs of each side (default 3).

use std::path::PathBuf;

use dr_aws::AwsConfig;
use dr_core::provider::SnapshotStore;
use dr_core::testkit::bench::{self, Baseline, Plan, Row};

/// The AWS CLI to compare with.
fn aws_cli() -> String {
    if let Ok(cli) = std::env::var("AWS_CLI") {
        return cli;
    }
    let venv = PathBuf::from("target/awscli/bin/aws");
    if venv.exists() {
        return venv.display().to_string();
    }
    "aws".into()
}

/// Runs the comparison on a new bucket of the S3 endpoint in `AWS_ENDPOINT_URL`, then
/// deletes the objects and the bucket.
pub async fn s3_bench(
    bytes: u64,
    runs: usize,
    dir: PathBuf,
) -> Result<Vec<Row>, Box<dyn std::error::Error>> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .map_err(|_| "AWS_ENDPOINT_URL is not set (start moto: scripts/standins/moto.sh)")?;
    let aws = AwsConfig::from_env().await?;
    let bucket = dr_core::testkit::unique("dr-bench");
    let mut store = aws.build_s3_for(&bucket);
    if let Some(n) = std::env::var("S3_UPLOAD_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        store = store.with_upload_concurrency(n);
    }
    store
        .client()
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await?;
    let cli = aws_cli();
    let mut plan = Plan::new(bytes, dir);
    plan.runs = runs;
    let target = format!("s3://{bucket}/bench/baseline");
    plan.put = Some(Baseline::new("aws s3 cp", &[]).step([
        cli.as_str(),
        "s3",
        "cp",
        "--quiet",
        "--endpoint-url",
        &endpoint,
        "{src}",
        &target,
    ]));
    plan.get = Some(Baseline::new("aws s3api get-object", &[]).step([
        cli.as_str(),
        "s3api",
        "get-object",
        "--endpoint-url",
        &endpoint,
        "--bucket",
        &bucket,
        "--key",
        &plan.key,
        "{dst}",
    ]));
    let rows = bench::run(&store, &plan).await;
    store.delete("bench/baseline").await?;
    store
        .client()
        .delete_bucket()
        .bucket(&bucket)
        .send()
        .await?;
    Ok(rows?)
}

#[allow(dead_code)] // The test includes this file for `s3_bench`.
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::var("BENCH_DIR").unwrap_or_else(|_| "target/bench".into());
    let rows = s3_bench(
        bench::mib_from_env(1024),
        bench::runs_from_env(),
        dir.into(),
    )
    .await?;
    bench::print(&rows);
    Ok(())
}
