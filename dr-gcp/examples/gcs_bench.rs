//! Throughput and peak memory of `GcsStore` `put` (a resumable upload in 8 MiB chunks) and
//! `get` against `curl` on the same fake-gcs-server: a resumable upload with the same
//! chunking (one `curl` per chunk, fed by `dd`) and one media download (alternating runs,
//! fastest kept; see `dr_core::testkit::bench`).
//!
//! ```text
//! source scripts/standins/fakegcs.sh && fakegcs_start
//! cargo run --release -p dr-gcp --example gcs-bench                # 1 GiB
//! BENCH_MIB=256 cargo run --release -p dr-gcp --example gcs-bench
//! ```
//!
//! `BENCH_DIR` chooses the directory of the local files (default `target/bench`),
//! `BENCH_RUNS` the runs of each side (default 3).
//!
//! Reads and resumable writes are the client's own, over JSON/HTTP. fake-gcs-server does not
//! speak gRPC, so the control calls (the metadata update that records the SHA-256, the
//! metadata read of `get`, the final delete) go through the JSON control stub the emulator
//! tests use (`tests/support/json_control.rs`).

use std::path::PathBuf;

use dr_core::provider::SnapshotStore;
use dr_core::testkit::bench::{self, Baseline, Plan, Row};
use dr_gcp::{GcsBuilder, GcsCredentials};
use google_cloud_storage::client::StorageControl;

#[allow(unreachable_pub, dead_code)] // Shared with the emulator tests.
#[path = "../tests/support/json_control.rs"]
mod json_control;

/// A resumable upload of `$1` to object `$3` of bucket `$2` at `$GCS_EMULATOR_URL`, in
/// chunks of `$4` bytes, each sent by one `curl`.
const RESUMABLE: &str = r#"set -eu
src=$1 bucket=$2 name=$3 chunk=$4
loc=$(curl -sS -f -D - -o /dev/null -X POST -H 'content-type: application/json' \
  -d "{\"name\":\"$name\"}" \
  "$GCS_EMULATOR_URL/upload/storage/v1/b/$bucket/o?uploadType=resumable" \
  | tr -d '\r' | awk 'tolower($1)=="location:"{print $2}')
size=$(stat -c %s "$src")
off=0
while [ "$off" -lt "$size" ]; do
  n=$((size - off)); [ "$n" -gt "$chunk" ] && n=$chunk
  dd if="$src" iflag=skip_bytes,count_bytes skip="$off" count="$n" bs=1M status=none \
    | curl -sS -o /dev/null -X PUT -H "Content-Range: bytes $off-$((off + n - 1))/$size" \
        --data-binary @- "$loc"
  off=$((off + n))
done
"#;

/// Runs the comparison in bucket `GCS_BUCKET` (default `dr-test`) of the fake-gcs-server at
/// `GCS_EMULATOR_URL`, then deletes the objects.
pub async fn gcs_bench(
    bytes: u64,
    runs: usize,
    dir: PathBuf,
) -> Result<Vec<Row>, Box<dyn std::error::Error>> {
    let url = std::env::var("GCS_EMULATOR_URL").map_err(|_| "GCS_EMULATOR_URL is not set")?;
    let bucket = std::env::var("GCS_BUCKET").unwrap_or_else(|_| "dr-test".into());
    let store = GcsBuilder::new()
        .with_endpoint(&url)
        .with_bucket(&bucket)
        .with_credentials(GcsCredentials::Anonymous)
        .with_control_client(StorageControl::from_stub(json_control::JsonControl::new(
            &url,
        )))
        .build()
        .await?;
    let prefix = dr_core::testkit::unique("bench");
    let mut plan = Plan::new(bytes, dir);
    plan.runs = runs;
    plan.key = format!("{prefix}/object");
    let baseline = format!("{prefix}/baseline");
    let chunk = (8 * 1024 * 1024).to_string();
    plan.put = Some(
        Baseline::new("curl, resumable, 8 MiB chunks", &[])
            .step([
                "sh", "-c", RESUMABLE, "sh", "{src}", &bucket, &baseline, &chunk,
            ])
            .with_env("GCS_EMULATOR_URL", &url),
    );
    plan.get = Some(Baseline::new("curl (media download)", &[]).step([
        "curl".to_string(),
        "-sS".into(),
        "-f".into(),
        "-o".into(),
        "{dst}".into(),
        format!(
            "{url}/storage/v1/b/{bucket}/o/{}?alt=media",
            plan.key.replace('/', "%2F")
        ),
    ]));
    let rows = bench::run(&store, &plan).await?;
    // The baseline's object; a failure here does not undo the figures.
    if let Err(e) = store.delete(&baseline).await {
        eprintln!("could not delete {baseline}: {e}");
    }
    Ok(rows)
}

#[allow(dead_code)] // The test includes this file for `gcs_bench`.
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::var("BENCH_DIR").unwrap_or_else(|_| "target/bench".into());
    let rows = gcs_bench(
        bench::mib_from_env(1024),
        bench::runs_from_env(),
        dir.into(),
    )
    .await?;
    bench::print(&rows);
    Ok(())
}
