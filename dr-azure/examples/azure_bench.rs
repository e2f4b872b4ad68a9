//! Throughput and peak memory of `AzureBlobStore` `put` (blocks staged in parallel, then
//! committed) and `get` against `curl` on the same Azurite endpoint, authorised with an
//! account SAS (alternating runs, fastest kept; see `dr_core::testkit::bench`). `put` is
//! compared three times: with one Put Blob streamed from the file (`curl -T`), and with the
//! same chunking as ours — the file cut into blocks of the store's block size, staged by
//! one `curl` with Put Block (as many in parallel as the store stages), then one Put Block
//! List — without and with each block's Content-MD5 (computed beforehand), as ours are
//! sent. Azurite is slower for blocks than for one Put Blob (it computes a CRC-64 of each
//! block without a Content-MD5), and a stream of unknown length can only be uploaded in
//! blocks. The same-chunking rows reuse our runs of the first row (see
//! `SAME_CHUNKING_RUNS`). `get` is compared with one Get Blob.
//!
//! ```text
//! source scripts/standins/azurite.sh && azurite_start
//! cargo run --release -p dr-azure --example azure-bench            # 1 GiB
//! BENCH_MIB=256 cargo run --release -p dr-azure --example azure-bench
//! ```
//!
//! `BENCH_DIR` chooses the directory of the local files (default `target/bench`),
//! `BENCH_RUNS` the runs of each side (default 3); `AZURE_BLOCK_SIZE_MIB`,
//! `AZURE_UPLOAD_CONCURRENCY`, `AZURE_BLOCK_MD5` (`0` for off), `AZURE_DOWNLOAD_CONCURRENCY`
//! and `AZURE_DOWNLOAD_PARTITION_KIB` override the store's settings.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use dr_azure::AzureBlobBuilder;
use dr_core::provider::SnapshotStore;
use dr_core::testkit::bench::{self, Baseline, Measured, Plan, Row};

/// The store's default block size and upload concurrency (see `AzureBlobBuilder`).
const DEFAULT_BLOCK_MIB: usize = 8;
const DEFAULT_UPLOAD_CONCURRENCY: usize = 3;

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
    let block_size = knob("AZURE_BLOCK_SIZE_MIB").unwrap_or(DEFAULT_BLOCK_MIB) * 1024 * 1024;
    let concurrency = knob("AZURE_UPLOAD_CONCURRENCY").unwrap_or(DEFAULT_UPLOAD_CONCURRENCY);
    builder = builder
        .with_block_size(block_size)
        .with_upload_concurrency(concurrency);
    if let Ok(v) = std::env::var("AZURE_BLOCK_MD5") {
        builder = builder.with_block_md5(v != "0");
    }
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
    let base = format!("{}/{container}", url.trim_end_matches('/'));
    let blob = |name: &str| format!("{base}/{name}?{sas}");
    let blob_q = |name: &str, query: &str| format!("{base}/{name}?{query}&{sas}");
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
    let src = plan.dir.join(format!("bench-src-{bytes}"));
    std::fs::create_dir_all(&plan.dir)?;
    bench::source_file(&src, bytes)?;
    let blocks = plan.dir.join(format!("bench-blocks-{bytes}-{block_size}"));
    let parts = split_into_blocks(&src, &blocks, bytes, block_size)?;
    let list = blocks.join("blocklist.xml");
    let mut xml = String::from(r#"<?xml version="1.0" encoding="utf-8"?><BlockList>"#);
    for (id, _) in &parts {
        xml.push_str(&format!("<Latest>{id}</Latest>"));
    }
    xml.push_str("</BlockList>");
    std::fs::write(&list, xml)?;
    let commit = [
        "curl".to_string(),
        "-sS".into(),
        "-f".into(),
        "-o".into(),
        "/dev/null".into(),
        "-X".into(),
        "PUT".into(),
        "-H".into(),
        "content-type: application/xml".into(),
        "--data-binary".into(),
        format!("@{}", list.display()),
        blob_q("bench/baseline-blocks", "comp=blocklist"),
    ];
    // One curl stages every block, `concurrency` at a time, each transfer with its own
    // options (`--next`); with `md5`, each block with its Content-MD5, as ours are sent
    // (computed here beforehand, outside the timing).
    let stage = |md5: bool| {
        // (`-s` does not silence the progress meter of `--parallel`)
        let mut args = vec!["curl".to_string(), "--no-progress-meter".into()];
        if concurrency > 1 {
            args.extend([
                "-Z".into(),
                "--parallel-max".into(),
                concurrency.to_string(),
            ]);
        }
        for (i, (id, sum)) in parts.iter().enumerate() {
            if i > 0 {
                args.push("--next".into());
            }
            args.extend(["-sS".into(), "-f".into(), "-o".into(), "/dev/null".into()]);
            if md5 {
                args.extend(["-H".into(), format!("content-md5: {sum}")]);
            }
            let id = id
                .replace('+', "%2B")
                .replace('/', "%2F")
                .replace('=', "%3D");
            args.push("-T".into());
            args.push(part(&blocks, i).display().to_string());
            args.push(blob_q(
                "bench/baseline-blocks",
                &format!("comp=block&blockid={id}"),
            ));
        }
        args
    };
    // Described, not listed: the command names every block.
    let describe = |md5: bool| {
        format!(
            "curl{} -T part.000000{} {base}/bench/baseline-blocks?comp=block&blockid=…&… \
             (×{}) && curl -X PUT --data-binary @blocklist.xml \
             {base}/bench/baseline-blocks?comp=blocklist&…",
            if concurrency > 1 {
                format!(" -Z --parallel-max {concurrency}")
            } else {
                String::new()
            },
            if md5 { " -H content-md5:…" } else { "" },
            parts.len(),
        )
    };
    let same = [false, true].map(|md5| {
        (
            Baseline::new("curl Put Block ×N + Put Block List", &[])
                .step(stage(md5))
                .step(commit.clone()),
            describe(md5),
        )
    });
    let rows = bench::run(&store, &plan).await;
    store.delete("bench/baseline").await?;
    let mut rows = rows?;
    let ours = rows.first().map(|r| r.ours).ok_or("no put row")?;
    let extra = same_chunking(&plan, &src, &same, ours);
    store.delete("bench/baseline-blocks").await?;
    let _ = std::fs::remove_dir_all(&blocks);
    for (i, row) in extra.into_iter().enumerate() {
        rows.insert(1 + i, row);
    }
    Ok(rows)
}

/// Runs of each same-chunking baseline, at most: Azurite keeps the extents of overwritten
/// and deleted blobs in memory until its garbage collection (every 10 minutes), and stops
/// taking writes at half the machine's memory; 3 runs of everything at 1 GiB on a 24 GiB
/// machine would pass that.
const SAME_CHUNKING_RUNS: usize = 2;

/// Rows comparing our `put` (the first row's runs) with the curl baselines of the same
/// chunking (each with its description), run alternately, fastest kept.
fn same_chunking(
    plan: &Plan,
    src: &Path,
    baselines: &[(Baseline, String)],
    ours: Measured,
) -> Vec<Row> {
    let mut theirs: Vec<Option<Result<Measured, String>>> = vec![None; baselines.len()];
    let dst = plan.dir.join(format!("bench-dst-{}", std::process::id()));
    for _ in 0..plan.runs.clamp(1, SAME_CHUNKING_RUNS) {
        for ((baseline, _), theirs) in baselines.iter().zip(theirs.iter_mut()) {
            // (the error names the command, and with it the signature)
            let run = baseline.run(src, &dst).map_err(|e| match e {
                dr_core::Error::Other { source, .. } => format!("curl: {source}"),
                dr_core::Error::Io { context, .. } => format!("{context}: not installed?"),
                _ => "curl failed".into(),
            });
            *theirs = Some(match (theirs.take(), run) {
                (Some(Ok(a)), Ok(b)) => Ok(merge(a, b)),
                (Some(Err(e)), _) | (_, Err(e)) => Err(e),
                (None, r) => r,
            });
        }
    }
    baselines
        .iter()
        .zip(theirs)
        .map(|((_, described), theirs)| Row {
            store: dr_azure::PROVIDER.to_string(),
            operation: "put".into(),
            bytes: plan.bytes,
            ours,
            baseline: described.clone(),
            theirs: theirs.unwrap_or_else(|| Err("no baseline".into())),
        })
        .collect()
}

/// The faster time and the larger peak of two runs.
fn merge(a: Measured, b: Measured) -> Measured {
    Measured {
        elapsed: a.elapsed.min(b.elapsed),
        peak_rss_mib: match (a.peak_rss_mib, b.peak_rss_mib) {
            (Some(x), Some(y)) => Some(x.max(y)),
            (x, y) => x.or(y),
        },
    }
}

fn part(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("part.{i:06}"))
}

/// Cuts `src` into `block`-byte files under `dir` (kept when already there) and returns
/// their block ids (base64 of equal-length names, as Put Block wants) and MD5s (base64).
fn split_into_blocks(
    src: &Path,
    dir: &Path,
    bytes: u64,
    block: usize,
) -> std::io::Result<Vec<(String, String)>> {
    let count = usize::try_from(bytes.div_ceil(block as u64).max(1)).unwrap_or(usize::MAX);
    std::fs::create_dir_all(dir)?;
    let mut file = std::fs::File::open(src)?;
    let mut buf = Vec::with_capacity(block);
    let mut parts = Vec::with_capacity(count);
    for i in 0..count {
        buf.clear();
        (&mut file).take(block as u64).read_to_end(&mut buf)?;
        let path = part(dir, i);
        if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(buf.len() as u64) {
            std::fs::File::create(&path)?.write_all(&buf)?;
        }
        let id = azure_core::base64::encode(format!("block-{i:06}"));
        parts.push((id, azure_core::base64::encode(md5::compute(&buf).0)));
    }
    Ok(parts)
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
