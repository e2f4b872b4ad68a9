//! Resume cost: reload a run's journal of N records and continue it, behind the "Journal and
//! resume" section of BENCHMARKS.md.
//!
//! ```text
//! cargo run --release --example resume-bench              # the table
//! cargo run --release --example resume-bench -- --quick   # tiny sizes, a smoke run
//! ```
//!
//! A run of N/2 steps (each journals an intent and an outcome) is run once with a file
//! journal; its last outcome and end record are cut off, so the journal holds a run that
//! crashed with one step in flight. Each measurement copies that journal (not timed) and
//! times `Executor::resume`: load and check every record, check the graph's digest, mark
//! what finished, read the in-flight step back and run it, journal the end. The baseline is
//! `sha256sum` of the same file (reading it once); min of R runs each.

use std::hint::black_box;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use dr_core::executor::Executor;
use dr_core::graph::{RecoveryGraph, Step};
use dr_core::journal::FileJournal;
use dr_core::step::{Action, Call, StepAction, StepContext};
use dr_core::Providers;

/// A step that calls nothing: the bench measures the executor and the journal alone.
#[derive(Debug)]
struct Noop(usize);

#[async_trait]
impl StepAction for Noop {
    fn kind(&self) -> &str {
        "noop"
    }
    fn params(&self) -> serde_json::Value {
        serde_json::json!({ "n": self.0 })
    }
    fn calls(&self) -> Vec<Call> {
        Vec::new()
    }
    fn idempotent(&self) -> bool {
        true
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(1)
    }
    async fn execute(&self, _ctx: &mut StepContext<'_>) -> dr_core::Result<()> {
        Ok(())
    }
}

/// `steps` steps in chains of 10 (each waits for the one before it in its chain).
fn graph(steps: usize) -> RecoveryGraph {
    let steps: Vec<Step> = (0..steps)
        .map(|i| Step {
            id: format!("step-{i}").into(),
            action: Action::new(Noop(i)),
            service: None,
            depends_on: if i % 10 == 0 {
                Vec::new()
            } else {
                vec![format!("step-{}", i - 1).into()]
            },
            idempotency_key: format!("bench/step-{i}"),
            estimate: Duration::from_secs(1),
            timeout: Duration::from_secs(60),
            critical: true,
            retry: None,
        })
        .collect();
    RecoveryGraph {
        plan: "bench".into(),
        scenario: "resume".into(),
        critical_path: Vec::new(),
        forecast: Duration::ZERO,
        services: Vec::new(),
        risks: Vec::new(),
        compensate_on_failure: false,
        interlocks: Vec::new(),
        limits: None,
        steps,
    }
}

fn min_time(runs: usize, mut f: impl FnMut() -> Duration) -> Duration {
    (0..runs).map(|_| f()).min().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// A journal of a run of `graph` that crashed with its last step in flight.
async fn crashed_journal(graph: &RecoveryGraph, path: &Path) -> Result<usize, String> {
    let journal = FileJournal::open(path).await.map_err(|e| e.to_string())?;
    let report = Executor::new(Providers::new())
        .journal(Arc::new(journal))
        .start(graph)
        .await
        .map_err(|e| e.to_string())?;
    if !report.succeeded() {
        return Err(format!("the bench run failed:\n{report}"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let lines: Vec<&str> = text.lines().collect();
    // Drop the end record and the last outcome.
    let kept = &lines[..lines.len().saturating_sub(2)];
    std::fs::write(path, kept.join("\n") + "\n").map_err(|e| e.to_string())?;
    Ok(kept.len())
}

fn sha256sum(path: &Path) -> Duration {
    let t = Instant::now();
    let ok = Command::new("sha256sum")
        .arg(path)
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        t.elapsed()
    } else {
        Duration::ZERO
    }
}

fn main() -> ExitCode {
    let quick = std::env::args().any(|a| a == "--quick");
    let (sizes, runs): (&[usize], usize) = if quick {
        (&[20, 40], 1)
    } else {
        (&[2_500, 5_000, 10_000], 5)
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let dir = std::env::temp_dir().join(format!("resume-bench-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("error: {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    println!("## Journal and resume\n");
    println!("| records | bytes | resume (reload + continue) | per record | sha256sum of the journal | ratio |");
    println!("|---|---|---|---|---|---|");
    let mut per_size = Vec::new();
    for &records in sizes {
        let g = graph(records / 2 + 1);
        let path = dir.join(format!("crashed-{records}.journal"));
        let n = match rt.block_on(crashed_journal(&g, &path)) {
            Ok(n) => n,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let copy = dir.join("resume.journal");
        let mut failed = None;
        let resume = min_time(runs, || {
            if let Err(e) = std::fs::copy(&path, &copy) {
                failed = Some(e.to_string());
                return Duration::ZERO;
            }
            rt.block_on(async {
                let t = Instant::now();
                let result = match FileJournal::open(&copy).await {
                    Ok(j) => Executor::new(Providers::new())
                        .journal(Arc::new(j))
                        .resume(&g)
                        .await
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                let took = t.elapsed();
                match result {
                    Ok(report) if report.succeeded() && report.resumed => {
                        black_box(report);
                    }
                    Ok(report) => failed = Some(format!("resume did not succeed:\n{report}")),
                    Err(e) => failed = Some(e),
                }
                took
            })
        });
        if let Some(e) = failed {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
        let base = min_time(runs, || sha256sum(&path));
        let ratio = if base.is_zero() {
            "-".to_string()
        } else {
            format!("{:.1}", resume.as_secs_f64() / base.as_secs_f64())
        };
        println!(
            "| {n} | {bytes} | {} | {:.2} µs | {} | {ratio} |",
            ms(resume),
            resume.as_secs_f64() * 1e6 / n.max(1) as f64,
            ms(base)
        );
        per_size.push((n, resume));
    }
    if let [.., (n1, t1), (n2, t2)] = per_size.as_slice() {
        println!(
            "\nt({n2})/t({n1}) = {:.2} (records ×{:.2})",
            t2.as_secs_f64() / t1.as_secs_f64().max(1e-9),
            *n2 as f64 / (*n1).max(1) as f64
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    ExitCode::SUCCESS
}
