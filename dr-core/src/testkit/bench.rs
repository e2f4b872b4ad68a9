//! Throughput and peak memory of a store's `put`, `get` and `verify`, side by side with the
//! command-line tool a user would otherwise run on the same target (`cp`, `aws s3 cp`,
//! `curl`, `openssl dgst`), in the same process run: the runs alternate (ours, the tool,
//! ours, …) and the fastest of each is kept.
//!
//! A provider's bench example builds its store, says which commands are its baselines and
//! calls [`run`]; its test calls the same function on a tiny object, so the bench cannot rot.
//!
//! Commands are argument lists (no shell); `{src}` stands for the generated source file and
//! `{dst}` for the file a download writes. A baseline whose program is not installed is
//! reported as missing, not as a failure.

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;

use crate::provider::{ByteStream, DynSnapshotStore, PutOptions, SnapshotStoreExt};
use crate::testkit::rss::peak_rss_mib;
use crate::testkit::store::pattern_chunk;
use crate::{Error, Result};

const MIB: u64 = 1024 * 1024;
/// Bytes per chunk read from the source file for a `put`.
const SOURCE_CHUNK: usize = 1024 * 1024;

/// One timed run: seconds and the peak resident memory of the process that did the work.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    /// Wall-clock time.
    pub elapsed: Duration,
    /// Peak RSS (VmHWM) during the run, in MiB; `None` where the kernel does not tell.
    pub peak_rss_mib: Option<f64>,
}

impl Measured {
    /// Keeps the faster time and the larger peak of two runs.
    fn merge(self, other: Measured) -> Measured {
        Measured {
            elapsed: self.elapsed.min(other.elapsed),
            peak_rss_mib: match (self.peak_rss_mib, other.peak_rss_mib) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            },
        }
    }
}

/// A command run as a baseline: one or more programs run one after the other
/// (`cp {src} {dst}`, then `sync`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baseline {
    /// How the table names it (`cp + sync`).
    pub name: String,
    /// The programs and their arguments, run in order.
    pub steps: Vec<Vec<String>>,
    /// Extra environment variables for every step.
    pub env: Vec<(String, String)>,
}

impl Baseline {
    /// A baseline of one or more commands, each given as a `;`-free, space-separated string
    /// (`"cp {src} {dst}"`). Arguments cannot contain spaces; use [`Baseline::step`] for those.
    pub fn new(name: &str, commands: &[&str]) -> Self {
        Baseline {
            name: name.to_string(),
            steps: commands
                .iter()
                .map(|c| c.split_whitespace().map(str::to_string).collect())
                .collect(),
            env: Vec::new(),
        }
    }

    /// Adds a step given as an argument list.
    pub fn step<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.steps.push(args.into_iter().map(Into::into).collect());
        self
    }

    /// Sets an environment variable for every step.
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// The commands as one shell-like line, for the report, with the value of any
    /// `sig=` query parameter (a SAS signature) replaced by `…`.
    pub fn command_line(&self) -> String {
        self.steps
            .iter()
            .map(|s| {
                s.iter()
                    .map(|a| redact_sig(a))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join(" && ")
    }

    /// Runs every step with `{src}` and `{dst}` replaced; the time is the total, the peak
    /// the largest of the steps' (sampled every 2 ms from `/proc/<pid>/status`).
    ///
    /// # Errors
    /// `Io` when a program cannot be started; `Other` when one exits unsuccessfully.
    pub fn run(&self, src: &Path, dst: &Path) -> Result<Measured> {
        let mut total = Duration::ZERO;
        let mut peak: Option<f64> = None;
        for step in &self.steps {
            let args: Vec<String> = step
                .iter()
                .map(|a| {
                    a.replace("{src}", &src.display().to_string())
                        .replace("{dst}", &dst.display().to_string())
                })
                .collect();
            let Some((program, rest)) = args.split_first() else {
                continue;
            };
            let start = Instant::now();
            let mut child = Command::new(program)
                .args(rest)
                .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .stdout(std::process::Stdio::null())
                .spawn()
                .map_err(|e| Error::io(format!("starting {program}"), e))?;
            let status = loop {
                if let Some(p) = child_peak_mib(child.id()) {
                    peak = Some(peak.map_or(p, |q: f64| q.max(p)));
                }
                match child.try_wait() {
                    Ok(Some(status)) => break status,
                    Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                    Err(e) => return Err(Error::io(format!("waiting for {program}"), e)),
                }
            };
            total += start.elapsed();
            if !status.success() {
                return Err(Error::Other {
                    provider: "bench".into(),
                    operation: args.join(" "),
                    retry: crate::Retry::Permanent,
                    source: format!("exited with {status}").into(),
                });
            }
        }
        Ok(Measured {
            elapsed: total,
            peak_rss_mib: peak,
        })
    }
}

fn redact_sig(arg: &str) -> String {
    let Some(at) = arg.find("sig=") else {
        return arg.to_string();
    };
    let start = at + "sig=".len();
    let end = arg[start..].find('&').map_or(arg.len(), |i| start + i);
    format!("{}…{}", &arg[..start], &arg[end..])
}

fn child_peak_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// Resets this process's peak RSS (VmHWM) to its current RSS, so the next run's peak is its
/// own. Returns whether the kernel allowed it (`/proc/self/clear_refs`, Linux 4.0+).
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// One line of the comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The store's name.
    pub store: String,
    /// `put`, `get` or `verify`.
    pub operation: String,
    /// Object size.
    pub bytes: u64,
    /// Our fastest run.
    pub ours: Measured,
    /// The baseline's name and command line.
    pub baseline: String,
    /// The baseline's fastest run, or why there is none.
    pub theirs: std::result::Result<Measured, String>,
}

impl Row {
    /// Our throughput over the baseline's (≥ 1 means at least as fast).
    pub fn ratio(&self) -> Option<f64> {
        let theirs = self.theirs.as_ref().ok()?;
        Some(theirs.elapsed.as_secs_f64() / self.ours.elapsed.as_secs_f64().max(1e-9))
    }

    /// The Markdown table header matching [`Row`]'s `Display`.
    pub fn header() -> &'static str {
        "| store | op | size | ours MiB/s | ours peak RSS | baseline | baseline MiB/s | baseline peak RSS | ours / baseline |\n\
         |---|---|---|---|---|---|---|---|---|"
    }
}

fn rate(bytes: u64, d: Duration) -> String {
    format!(
        "{:.0}",
        bytes as f64 / MIB as f64 / d.as_secs_f64().max(1e-9)
    )
}

fn mib(v: Option<f64>) -> String {
    v.map_or_else(|| "?".into(), |v| format!("{v:.1} MiB"))
}

impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let size = if self.bytes >= 1024 * MIB {
            format!("{} GiB", self.bytes / (1024 * MIB))
        } else {
            format!("{} MiB", self.bytes / MIB)
        };
        let (their_rate, their_rss, ratio) = match &self.theirs {
            Ok(m) => (
                rate(self.bytes, m.elapsed),
                mib(m.peak_rss_mib),
                self.ratio().map_or("?".into(), |r| format!("{r:.2}")),
            ),
            Err(why) => (format!("n/a ({why})"), "n/a".into(), "n/a".into()),
        };
        write!(
            f,
            "| {} | {} | {size} | {} | {} | `{}` | {their_rate} | {their_rss} | {ratio} |",
            self.store,
            self.operation,
            rate(self.bytes, self.ours.elapsed),
            mib(self.ours.peak_rss_mib),
            self.baseline,
        )
    }
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Object size in bytes.
    pub bytes: u64,
    /// Runs of each side (the fastest is kept); at least 1.
    pub runs: usize,
    /// A directory on the disk to use for the source and downloaded files.
    pub dir: PathBuf,
    /// The key the store's runs write and read.
    pub key: String,
    /// Baseline of `put`: uploads `{src}` to the same target under another name.
    pub put: Option<Baseline>,
    /// Baseline of `get`: downloads the object (written by our `put`) to `{dst}`.
    pub get: Option<Baseline>,
    /// Baseline of `verify`: hashes the object; `None` skips `verify`.
    pub verify: Option<Baseline>,
}

impl Plan {
    /// A plan for `bytes` bytes, 3 runs, files under `dir`, key `bench/object`, no baselines.
    pub fn new(bytes: u64, dir: impl Into<PathBuf>) -> Self {
        Plan {
            bytes,
            runs: 3,
            dir: dir.into(),
            key: "bench/object".into(),
            put: None,
            get: None,
            verify: None,
        }
    }
}

/// The size from `BENCH_MIB` (MiB) in the environment, else `default_mib`.
pub fn mib_from_env(default_mib: u64) -> u64 {
    std::env::var("BENCH_MIB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(default_mib)
        * MIB
}

/// Runs from `BENCH_RUNS` in the environment, else 3.
pub fn runs_from_env() -> usize {
    std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(3)
        .max(1)
}

/// Writes a `bytes`-byte pattern file at `path` (kept when it already has that size).
///
/// # Errors
/// `Io`.
pub fn source_file(path: &Path, bytes: u64) -> Result<()> {
    if std::fs::metadata(path).is_ok_and(|m| m.len() == bytes) {
        return Ok(());
    }
    let io = |e| Error::io(format!("writing {}", path.display()), e);
    let mut file = std::fs::File::create(path).map_err(io)?;
    let mut at = 0u64;
    while at < bytes {
        let n = (bytes - at).min(MIB) as usize;
        file.write_all(&pattern_chunk(7, at as usize, n))
            .map_err(io)?;
        at += n as u64;
    }
    file.sync_all().map_err(io)
}

/// Streams a file in 1 MiB chunks read by one blocking thread, two chunks ahead.
pub fn file_stream(path: &Path) -> ByteStream {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes>>(2);
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                let _ = tx.blocking_send(Err(Error::io(format!("opening {}", path.display()), e)));
                return;
            }
        };
        loop {
            let mut buf = Vec::with_capacity(SOURCE_CHUNK);
            let item = match (&mut file).take(SOURCE_CHUNK as u64).read_to_end(&mut buf) {
                Ok(0) => return,
                Ok(_) => Ok(Bytes::from(buf)),
                Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
            };
            let last = item.is_err();
            if tx.blocking_send(item).is_err() || last {
                return;
            }
        }
    });
    futures::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        Some((item, rx))
    })
    .boxed()
}

/// Writes a stream to a new file at `path` from one blocking thread (as `cp` would, without
/// fsync); returns the bytes written.
///
/// # Errors
/// The stream's error, or `Io`.
pub async fn stream_to_file(mut stream: ByteStream, path: &Path) -> Result<u64> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let target = path.to_path_buf();
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&target)?;
        while let Some(chunk) = rx.blocking_recv() {
            for piece in chunk.chunks(128 * 1024) {
                file.write_all(piece)?;
            }
        }
        Ok(())
    });
    let mut size = 0u64;
    let mut fed = Ok(());
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => {
                size += c.len() as u64;
                if tx.send(c).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                fed = Err(e);
                break;
            }
        }
    }
    drop(tx);
    let io = |e| Error::io(format!("writing {}", path.display()), e);
    writer
        .await
        .map_err(|e| io(std::io::Error::other(e)))?
        .map_err(io)?;
    fed.map(|()| size)
}

async fn timed<F, T>(work: F) -> Result<(Measured, T)>
where
    F: std::future::Future<Output = Result<T>>,
{
    reset_peak_rss();
    let start = Instant::now();
    let out = work.await?;
    Ok((
        Measured {
            elapsed: start.elapsed(),
            peak_rss_mib: peak_rss_mib(),
        },
        out,
    ))
}

fn baseline_run(b: &Baseline, src: &Path, dst: &Path) -> std::result::Result<Measured, String> {
    let _ = std::fs::remove_file(dst);
    let r = b.run(src, dst).map_err(|e| match e {
        Error::Io { context, .. } => format!("{context}: not installed?"),
        e => e.to_string(),
    });
    let _ = std::fs::remove_file(dst);
    r
}

fn fold(
    acc: Option<std::result::Result<Measured, String>>,
    run: std::result::Result<Measured, String>,
) -> Option<std::result::Result<Measured, String>> {
    Some(match (acc, run) {
        (Some(Ok(a)), Ok(b)) => Ok(a.merge(b)),
        (Some(Err(e)), _) | (_, Err(e)) => Err(e),
        (None, r) => r,
    })
}

/// Measures `put` (from a generated file), `get` (to a file) and, when the plan has a
/// baseline for it, `verify`, each against its baseline; alternating runs, fastest kept.
/// Every run of ours is checked: the object read back must have the source's size, and
/// `verify` must pass. The object is deleted at the end.
///
/// # Errors
/// Store errors; `Io` for the local files; `ChecksumMismatch` when a read returns other
/// content than was written.
pub async fn run(store: &DynSnapshotStore, plan: &Plan) -> Result<Vec<Row>> {
    std::fs::create_dir_all(&plan.dir)
        .map_err(|e| Error::io(format!("creating {}", plan.dir.display()), e))?;
    let src = plan.dir.join(format!("bench-src-{}", plan.bytes));
    let dst = plan.dir.join(format!("bench-dst-{}", std::process::id()));
    source_file(&src, plan.bytes)?;
    let runs = plan.runs.max(1);
    let mut rows = Vec::new();
    let row = |operation: &str,
               ours: Measured,
               b: &Option<Baseline>,
               theirs: Option<std::result::Result<Measured, String>>| Row {
        store: store.name().to_string(),
        operation: operation.to_string(),
        bytes: plan.bytes,
        ours,
        baseline: b
            .as_ref()
            .map_or_else(|| "none".into(), Baseline::command_line),
        theirs: theirs.unwrap_or_else(|| Err("no baseline".into())),
    };

    let mut ours: Option<Measured> = None;
    let mut theirs = None;
    for _ in 0..runs {
        let (m, meta) =
            timed(store.put(&plan.key, file_stream(&src), PutOptions::default())).await?;
        if meta.size != plan.bytes {
            return Err(mismatch(store, &plan.key, plan.bytes, meta.size));
        }
        ours = Some(ours.map_or(m, |o| o.merge(m)));
        if let Some(b) = &plan.put {
            theirs = fold(theirs, baseline_run(b, &src, &dst));
        }
    }
    if let Some(m) = ours {
        rows.push(row("put", m, &plan.put, theirs));
    }

    let mut ours: Option<Measured> = None;
    let mut theirs = None;
    for _ in 0..runs {
        let (m, size) = timed(async {
            let got = store.get(&plan.key).await?;
            stream_to_file(got.stream, &dst).await
        })
        .await?;
        let _ = std::fs::remove_file(&dst);
        if size != plan.bytes {
            return Err(mismatch(store, &plan.key, plan.bytes, size));
        }
        ours = Some(ours.map_or(m, |o| o.merge(m)));
        if let Some(b) = &plan.get {
            theirs = fold(theirs, baseline_run(b, &src, &dst));
        }
    }
    if let Some(m) = ours {
        rows.push(row("get", m, &plan.get, theirs));
    }

    if plan.verify.is_some() {
        let mut ours: Option<Measured> = None;
        let mut theirs = None;
        for _ in 0..runs {
            let (m, _) = timed(store.verify(&plan.key)).await?;
            ours = Some(ours.map_or(m, |o| o.merge(m)));
            if let Some(b) = &plan.verify {
                theirs = fold(theirs, baseline_run(b, &src, &dst));
            }
        }
        if let Some(m) = ours {
            rows.push(row("verify", m, &plan.verify, theirs));
        }
    }
    store.delete(&plan.key).await?;
    Ok(rows)
}

fn mismatch(store: &DynSnapshotStore, key: &str, expected: u64, actual: u64) -> Error {
    Error::ChecksumMismatch {
        provider: store.name().to_string(),
        resource: format!("object {key}"),
        expected: format!("{expected} bytes"),
        actual: format!("{actual} bytes"),
    }
}

/// The local-disk baselines: `cp {src} {dst}` then `sync` for a durable `put`, `cp` of the
/// stored file for `get`, `openssl dgst -sha256` of it for `verify`.
///
/// # Errors
/// `InvalidRequest` for an invalid key in the plan.
pub fn local_disk_baselines(mut plan: Plan, store: &crate::store::LocalDiskStore) -> Result<Plan> {
    let obj = store.object_path(&plan.key)?.display().to_string();
    plan.put = Some(Baseline::new("cp + sync", &["cp {src} {dst}", "sync"]));
    plan.get = Some(Baseline::new("cp", &[]).step(["cp", obj.as_str(), "{dst}"]));
    plan.verify =
        Some(Baseline::new("openssl", &[]).step(["openssl", "dgst", "-sha256", obj.as_str()]));
    Ok(plan)
}

/// Prints rows as a Markdown table.
pub fn print(rows: &[Row]) {
    println!("{}", Row::header());
    for r in rows {
        println!("{r}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The local-disk bench, once, on a tiny object: it cannot rot.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_local_disk_bench_runs_on_a_tiny_object() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::LocalDiskStore::new(dir.path().join("store")).unwrap();
        let mut plan = Plan::new(3 * MIB + 5, dir.path());
        plan.runs = 1;
        let plan = local_disk_baselines(plan, &store).unwrap();
        let rows = run(&store, &plan).await.unwrap();
        let ops: Vec<&str> = rows.iter().map(|r| r.operation.as_str()).collect();
        assert_eq!(ops, ["put", "get", "verify"]);
        for r in &rows {
            assert_eq!(r.bytes, 3 * MIB + 5);
            assert!(r.ours.elapsed > Duration::ZERO, "{r}");
            // cp, sync and openssl are on every machine the tests run on.
            assert!(r.theirs.is_ok(), "{r}");
            assert!(r.ratio().is_some_and(|x| x > 0.0), "{r}");
        }
        print(&rows);
    }

    #[test]
    fn signatures_are_not_reported() {
        let b = Baseline::new("curl", &[]).step(["curl", "http://h/b?sv=1&sig=SECRET&se=2"]);
        assert_eq!(b.command_line(), "curl http://h/b?sv=1&sig=…&se=2");
        let b = Baseline::new("curl", &[]).step(["curl", "http://h/b?sig=SECRET"]);
        assert_eq!(b.command_line(), "curl http://h/b?sig=…");
    }

    #[test]
    fn a_missing_program_is_reported_not_fatal() {
        let b = Baseline::new("nope", &["dr-no-such-program-here {src}"]);
        let err = baseline_run(&b, Path::new("/nonexistent"), Path::new("/nonexistent2"));
        assert!(err.is_err_and(|e| e.contains("dr-no-such-program-here")));
    }
}
