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
//! A third row, `put (sha256 given)`, is our `put` again with the source's SHA-256 given up
//! front (as `copy_between` does): the digest goes into the upload's metadata instead of an
//! object tag set after completion; its baseline is the same `aws s3 cp` runs.
//!
//! `AWS_CLI` names the CLI (default `target/awscli/bin/aws`, else `aws` on the `PATH`);
//! `BENCH_DIR` the directory of the local files (default `target/bench`); `BENCH_RUNS` the
//! runs of each side (default 3).

use std::io::Read;
use std::path::PathBuf;
use std::time::Instant;

use dr_aws::{AwsConfig, S3Store};
use dr_core::provider::{PutOptions, SnapshotStore};
use dr_core::testkit::bench::{self, Baseline, Measured, Plan, Row};
use sha2::{Digest, Sha256};

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
    let rows = match bench::run(&store, &plan).await {
        Ok(mut rows) => match rows.first().cloned() {
            Some(put) => match put_with_sha256(&store, &plan, &put).await {
                Ok(row) => {
                    rows.push(row);
                    Ok(rows)
                }
                Err(e) => Err(e),
            },
            None => Ok(rows),
        },
        Err(e) => Err(e.into()),
    };
    store.delete("bench/baseline").await?;
    store
        .client()
        .delete_bucket()
        .bucket(&bucket)
        .send()
        .await?;
    rows
}

/// Our `put` of the plan's source with its SHA-256 given up front, `plan.runs` times (the
/// fastest kept), next to the baseline of `put_row`; the object is deleted afterwards.
async fn put_with_sha256(
    store: &S3Store,
    plan: &Plan,
    put_row: &Row,
) -> Result<Row, Box<dyn std::error::Error>> {
    // The file `bench::run` generated (kept as is when it already has the size).
    let src = plan.dir.join(format!("bench-src-{}", plan.bytes));
    bench::source_file(&src, plan.bytes)?;
    let mut hasher = Sha256::new();
    let mut file = std::fs::File::open(&src)?;
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let sha = hex::encode(hasher.finalize());
    let mut ours: Option<Measured> = None;
    for _ in 0..plan.runs.max(1) {
        bench::reset_peak_rss();
        let start = Instant::now();
        let opts = PutOptions::default().with_expected_sha256(sha.clone());
        let meta = store.put(&plan.key, bench::file_stream(&src), opts).await?;
        let m = Measured {
            elapsed: start.elapsed(),
            peak_rss_mib: dr_core::testkit::rss::peak_rss_mib(),
        };
        if meta.size != plan.bytes || meta.sha256.as_deref() != Some(sha.as_str()) {
            return Err(format!("put wrote {} bytes, sha256 {:?}", meta.size, meta.sha256).into());
        }
        ours = Some(match ours {
            None => m,
            Some(o) => Measured {
                elapsed: o.elapsed.min(m.elapsed),
                peak_rss_mib: match (o.peak_rss_mib, m.peak_rss_mib) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                },
            },
        });
    }
    store.delete(&plan.key).await?;
    let ours = ours.ok_or("no run")?;
    Ok(Row {
        store: put_row.store.clone(),
        operation: "put (sha256 given)".into(),
        bytes: plan.bytes,
        ours,
        baseline: put_row.baseline.clone(),
        theirs: put_row.theirs.clone(),
    })
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
