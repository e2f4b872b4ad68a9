//! The process-level crash test: `run-plan` on the bundled region failover with a journal,
//! aborted after every journal record in turn and SIGKILLed at moments drawn from a seed
//! under `--speed`, resumed each time. Every resume completes, and the simulated cloud's
//! call log (saved beside the journal) shows no destructive call twice and the same effects
//! as an uninterrupted run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use dr_core::provider::Operation;
use dr_core::sim::{SimCloud, SimConfig};
use serde_json::Value;

const PLAN: &str = "region-failover.yaml";
const SCENARIO: &str = "region-failover";

/// Operations that must never take effect twice for one target.
const DESTRUCTIVE: &[Operation] = &[
    Operation::Promote,
    Operation::Reboot,
    Operation::RestoreSnapshot,
    Operation::RestorePointInTime,
    Operation::CreateSnapshot,
    Operation::CopySnapshot,
    Operation::CreateReplica,
    Operation::RolloutRestart,
    Operation::RolloutUndo,
    Operation::DeletePod,
];

/// Other changes: they may be repeated (idempotent), but must be the same as uninterrupted.
const CHANGES: &[Operation] = &[
    Operation::Put,
    Operation::Delete,
    Operation::Copy,
    Operation::SwitchRecord,
    Operation::Apply,
    Operation::Scale,
    Operation::SetImage,
    Operation::SetEnv,
    Operation::PatchSecret,
    Operation::IsolateWorkload,
    // Several notifications go to one channel: counted as changes, not per target.
    Operation::Notify,
];

fn run_plan() -> PathBuf {
    // target/debug/deps/crash-… → target/debug/examples/run-plan
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let bin = dir.join("examples").join("run-plan");
    assert!(
        bin.exists(),
        "{} is missing: `cargo test -p dr-examples` builds it with the tests",
        bin.display()
    );
    bin
}

fn plan() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("plans")
        .join(PLAN)
}

fn command(journal: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(run_plan());
    c.arg(plan())
        .args(["--scenario", SCENARIO, "--json", "--journal"])
        .arg(journal)
        .args(extra)
        .env_remove("DR_CRASH_AFTER_RECORDS")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    c
}

fn run_id(dir: &Path) -> String {
    let mut ids: Vec<String> = std::fs::read_dir(dir)
        .expect("journal dir")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".journal").map(str::to_string)
        })
        .collect();
    assert_eq!(ids.len(), 1, "one run in {}", dir.display());
    ids.remove(0)
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not a JSON report ({e}): stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Effects per (operation, target) in the saved cloud of run `id`.
fn effects(dir: &Path, id: &str) -> BTreeMap<(String, String), usize> {
    let cloud =
        SimCloud::load(&dir.join(format!("{id}.sim")), SimConfig::default()).expect("saved cloud");
    let mut out = BTreeMap::new();
    for c in cloud.calls().into_iter().filter(|c| c.took_effect) {
        if CHANGES.contains(&c.operation) || DESTRUCTIVE.contains(&c.operation) {
            *out.entry((c.operation.name().to_string(), c.target))
                .or_insert(0) += 1;
        }
    }
    out
}

fn records(dir: &Path, id: &str) -> usize {
    std::fs::read_to_string(dir.join(format!("{id}.journal")))
        .expect("journal")
        .lines()
        .count()
}

/// Resumes run `id` and checks it completes, with no destructive effect twice and the same
/// effects as the uninterrupted run.
fn resume_and_check(
    dir: &Path,
    id: &str,
    baseline: &BTreeMap<(String, String), usize>,
    what: &str,
) {
    let out = command(dir, &["--resume", id]).output().expect("resume");
    let r = report(&out);
    assert_eq!(
        r["outcome"],
        "succeeded",
        "{what}: resume: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(r["run_id"], id, "{what}");
    assert_eq!(r["resumed"], true, "{what}");
    let got = effects(dir, id);
    for ((op, target), n) in &got {
        let destructive = DESTRUCTIVE.iter().any(|d| d.name() == op);
        assert!(
            !destructive || *n == 1,
            "{what}: {op} on {target} took effect {n} times"
        );
    }
    let keys = |m: &BTreeMap<(String, String), usize>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&got), keys(baseline), "{what}: not the same effects");
}

#[test]
fn aborted_after_every_journal_record_and_resumed() {
    let base = tempfile::tempdir().expect("tempdir");
    let out = command(base.path(), &[]).output().expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = run_id(base.path());
    let baseline = effects(base.path(), &id);
    assert!(
        baseline.keys().any(|(op, _)| op == "promote"),
        "the failover promotes: {baseline:?}"
    );
    let total = records(base.path(), &id);
    assert!(total >= 20, "only {total} journal records");

    // The last record is the run's end: crashing after it leaves nothing to resume.
    for n in 1..total {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = command(dir.path(), &[])
            .env("DR_CRASH_AFTER_RECORDS", n.to_string())
            .output()
            .expect("run");
        assert!(
            !out.status.success(),
            "record {n}: the process did not abort"
        );
        let id = run_id(dir.path());
        assert_eq!(
            records(dir.path(), &id),
            n,
            "record {n}: records lost or extra"
        );
        resume_and_check(
            dir.path(),
            &id,
            &baseline,
            &format!("abort after record {n}"),
        );
    }
}

#[test]
fn killed_at_random_moments_under_speed_and_resumed() {
    let base = tempfile::tempdir().expect("tempdir");
    let out = command(base.path(), &[]).output().expect("run");
    assert!(out.status.success());
    let baseline = effects(base.path(), &run_id(base.path()));

    // ~8 simulated minutes at 300× real time: about 1.6 s of real time per run.
    let mut seed: u64 = 0x5eed;
    let mut interrupted = 0;
    for round in 0..6 {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let delay = Duration::from_millis(150 + (seed >> 33) % 1400);
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = command(dir.path(), &["--speed", "300"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(delay);
        // SIGKILL: nothing of the process runs after it.
        let _ = child.kill();
        let _ = child.wait();
        let id = run_id(dir.path());
        let journal =
            std::fs::read_to_string(dir.path().join(format!("{id}.journal"))).expect("journal");
        if !journal.contains("\"record\":\"finished\"") {
            interrupted += 1;
        }
        resume_and_check(
            dir.path(),
            &id,
            &baseline,
            &format!("SIGKILL {round} after {delay:?}"),
        );
    }
    assert!(
        interrupted >= 3,
        "only {interrupted} of 6 kills landed before the run ended"
    );
}

#[test]
fn two_runners_on_one_journal_directory_exactly_one_executes() {
    let dir = tempfile::tempdir().expect("tempdir");
    // At 100× real time the failover lasts seconds: both start while the other runs.
    let spawn = || {
        command(dir.path(), &["--speed", "100"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let (a, b) = (spawn(), spawn());
    let outs = [
        a.wait_with_output().expect("a"),
        b.wait_with_output().expect("b"),
    ];
    let codes: Vec<Option<i32>> = outs.iter().map(|o| o.status.code()).collect();
    let winner = codes.iter().position(|c| *c == Some(0));
    let loser = codes.iter().position(|c| *c == Some(3));
    let (Some(w), Some(l)) = (winner, loser) else {
        panic!(
            "exit codes {codes:?}: {} / {}",
            String::from_utf8_lossy(&outs[0].stderr),
            String::from_utf8_lossy(&outs[1].stderr)
        );
    };
    let report = report(&outs[w]);
    assert_eq!(report["outcome"], "succeeded");
    let stderr = String::from_utf8_lossy(&outs[l].stderr);
    assert!(stderr.contains("lease is held by"), "{stderr}");
    assert!(stderr.contains("nothing was done"), "{stderr}");
    assert!(outs[l].stdout.is_empty(), "the loser printed a report");
    // Only the winner's run is in the directory.
    let id = run_id(dir.path());
    assert_eq!(report["run_id"], id.as_str());
}
