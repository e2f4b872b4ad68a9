//! Reloading a journal of 10,000 records: the file journal (the baseline) against the store
//! journal on the in-memory and the local-disk stores, in the same run; and the cost of one
//! durable append on each.
//!
//! ```text
//! cargo run --release -p dr-core --example journal-bench
//! BENCH_RECORDS=10000 BENCH_RUNS=15 cargo run --release -p dr-core --example journal-bench
//! ```
//!
//! `BENCH_DIR` chooses the directory (default: `target/bench-journal` under the current
//! directory). Each load is timed on a fresh handle (as a resumed run opens the journal);
//! the median and the fastest of `BENCH_RUNS` runs are printed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dr_core::journal::{FileJournal, InMemoryJournal, Journal, Record, StoreJournal};
use dr_core::provider::{DynSnapshotStore, SnapshotStoreExt};
use dr_core::step::Memory;
use dr_core::store::{InMemoryStore, LocalDiskStore};
use futures::StreamExt;

/// The `i`-th record of a run: an intent and an outcome per step, each step remembering a
/// little state, as a real run's records do.
fn record(i: usize) -> Record {
    let step = format!("service-{}/db/promote-replica-{}", i / 40, i / 2);
    if i.is_multiple_of(2) {
        let mut memory = Memory::default();
        memory.set("previous_revision", i as u64);
        memory.set(
            "target",
            "arn:aws:rds:us-west-2:123456789012:db:shop-prod-west",
        );
        Record::Intent {
            key: format!("run-bench/{step}"),
            step,
            attempt: 1,
            at: chrono::Utc::now(),
            memory,
        }
    } else {
        Record::Outcome {
            step,
            succeeded: true,
            already_done: false,
            attempts: 1,
            started_at: chrono::Utc::now(),
            at: chrono::Utc::now(),
            data_loss: Some(Duration::from_secs(12)),
            output: None,
            error: None,
        }
    }
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Median and fastest of `runs` timings of `f`, after checking it loads `n` records.
async fn time_loads<F, Fut>(
    runs: usize,
    n: usize,
    mut f: F,
) -> dr_core::Result<(Duration, Duration)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = dr_core::Result<usize>>,
{
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let loaded = f().await?;
        times.push(start.elapsed());
        assert_eq!(loaded, n, "the load returned {loaded} records, not {n}");
    }
    times.sort();
    Ok((times[times.len() / 2], times[0]))
}

/// Copies the store journal's objects from memory to `dst`, many at a time (set-up only).
async fn copy_all(
    src: &InMemoryStore,
    dst: &DynSnapshotStore,
    prefix: &str,
) -> dr_core::Result<()> {
    let keys: Vec<String> = src
        .list_all(prefix)
        .await?
        .into_iter()
        .map(|m| m.key)
        .collect();
    let copies = keys.into_iter().map(|k| async move {
        let bytes = src.get_bytes(&k).await?;
        dst.put_bytes(&k, bytes).await.map(drop)
    });
    let results: Vec<dr_core::Result<()>> = futures::stream::iter(copies)
        .buffer_unordered(32)
        .collect()
        .await;
    results.into_iter().collect()
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n = env("BENCH_RECORDS", 10_000);
    let runs = env("BENCH_RUNS", 15).max(1);
    let dir = std::path::PathBuf::from(
        std::env::var("BENCH_DIR").unwrap_or_else(|_| "target/bench-journal".into()),
    );
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;

    // The same records in every journal.
    let framed = InMemoryJournal::new();
    let memory = InMemoryStore::new();
    let mem_journal = StoreJournal::new(Arc::new(memory.clone()), "journals/bench");
    for i in 0..n {
        framed.append(&record(i)).await?;
        mem_journal.append(&record(i)).await?;
    }
    let file = dir.join("run.journal");
    std::fs::write(&file, framed.bytes())?;
    let disk = LocalDiskStore::new(dir.join("store"))?;
    copy_all(&memory, &disk, "journals/bench/").await?;
    let disk: Arc<DynSnapshotStore> = Arc::new(disk);
    let memory_dyn: Arc<DynSnapshotStore> = Arc::new(memory.clone());

    let file_load = time_loads(runs, n, || async {
        Ok(FileJournal::open(&file).await?.load().await?.records.len())
    })
    .await?;
    let mem_load = time_loads(runs, n, || async {
        let j = StoreJournal::new(memory_dyn.clone(), "journals/bench");
        Ok(j.load().await?.records.len())
    })
    .await?;
    let disk_load = time_loads(runs, n, || async {
        let j = StoreJournal::new(disk.clone(), "journals/bench");
        Ok(j.load().await?.records.len())
    })
    .await?;

    // Durable appends: 200 records each, on fresh journals.
    let appends = 200;
    let file_j = FileJournal::open(dir.join("append.journal")).await?;
    let mem_j = StoreJournal::new(Arc::new(InMemoryStore::new()), "journals/append");
    let disk_j = StoreJournal::new(disk.clone(), "journals/append");
    let mut per_append = Vec::new();
    for j in [&file_j as &dyn Journal, &mem_j, &disk_j] {
        let start = Instant::now();
        for i in 0..appends {
            j.append(&record(i)).await?;
        }
        per_append.push(start.elapsed() / appends as u32);
    }

    let bytes = framed.bytes().len();
    println!(
        "{n} records ({bytes} bytes framed), {runs} runs each; load on a fresh handle; \
         median (fastest) in ms; ratio of medians against the file journal"
    );
    println!();
    println!("| journal | load median ms | fastest ms | ratio | one durable append ms |");
    println!("|---|---:|---:|---:|---:|");
    let base = file_load.0.as_secs_f64();
    for ((label, (median, fastest)), append) in [
        ("`FileJournal` (baseline)", file_load),
        ("`StoreJournal` on `InMemoryStore`", mem_load),
        ("`StoreJournal` on `LocalDiskStore`", disk_load),
    ]
    .into_iter()
    .zip(per_append)
    {
        println!(
            "| {label} | {} | {} | {:.2}× | {} |",
            ms(median),
            ms(fastest),
            median.as_secs_f64() / base,
            ms(append)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
