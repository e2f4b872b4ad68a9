//! Throughput and peak memory of the local-disk store's `put` (durable: fsynced), `get` and
//! `verify` against `cp` + `sync`, `cp` and `openssl dgst -sha256` on the same disk
//! (alternating runs, fastest kept; see `dr_core::testkit::bench`).
//!
//! ```text
//! cargo run --release -p dr-core --features testkit --example store-bench           # 1 GiB
//! BENCH_MIB=8192 cargo run --release -p dr-core --features testkit --example store-bench
//! ```
//!
//! `BENCH_DIR` chooses the directory (default: `target/bench` under the current directory),
//! `BENCH_RUNS` the runs of each side (default 3).

use dr_core::store::LocalDiskStore;
use dr_core::testkit::bench::{self, Plan};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::PathBuf::from(
        std::env::var("BENCH_DIR").unwrap_or_else(|_| "target/bench".into()),
    );
    let store = LocalDiskStore::new(dir.join("store"))?;
    let mut plan = Plan::new(bench::mib_from_env(1024), dir);
    plan.runs = bench::runs_from_env();
    let plan = bench::local_disk_baselines(plan, &store)?;
    bench::print(&bench::run(&store, &plan).await?);
    Ok(())
}
