//! Every benchmark binary of this crate runs once on tiny inputs (`--quick`), so none can rot
//! between measurements; and the detection example (`examples/watch.rs`) runs to its end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// An example of this crate, built next to this test by `cargo test`.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo test -p dr-examples` (which builds the examples)",
        bin.display()
    );
    bin
}

/// Runs `name` with `args`; its stdout, after checking that it succeeded.
fn run(name: &str, args: &[&str]) -> String {
    let out: Output = Command::new(example(name))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Runs the benchmark `name` on tiny inputs and checks its output holds every needle.
fn quick(name: &str, needles: &[&str]) {
    let stdout = run(name, &["--quick"]);
    for needle in needles {
        assert!(
            stdout.contains(needle),
            "{name}: `{needle}` missing from:\n{stdout}"
        );
    }
}

#[test]
fn the_planner_and_loader_benchmark_runs_on_tiny_inputs() {
    quick(
        "plan-bench",
        &[
            "| 20 | ",
            "t(20)/t(10)",
            "| 20 services |",
            "| 200 nesting levels |",
            "more than the limit of 64",
        ],
    );
}

#[test]
fn the_resume_benchmark_runs_on_tiny_inputs() {
    quick("resume-bench", &["| 42 | ", "t(42)/t(22)", "sha256sum"]);
}

#[test]
fn the_watcher_benchmark_runs_on_tiny_inputs() {
    quick("watch-bench", &["| 20 | ", "| 40 | ", "t(40)/t(20)"]);
}

#[test]
fn the_detection_example_detects_decides_and_fails_over_once() {
    let stdout = run("watch", &["--json"]);
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .filter(|k| ["fired", "decided", "run_finished", "rearmed"].contains(k))
        .collect();
    assert_eq!(
        kinds,
        ["fired", "decided", "rearmed", "run_finished"],
        "{stdout}"
    );
    // Three failed samples before the trigger fired, none before the outage.
    let failed_before_firing = events
        .iter()
        .take_while(|e| e["event"] != "fired")
        .filter(|e| e["event"] == "sampled" && e["failed"] == true)
        .count();
    assert_eq!(failed_before_firing, 3, "{stdout}");
    let decided = events.iter().find(|e| e["event"] == "decided").unwrap();
    assert_eq!(decided["decision"]["decision"], "started");
    assert_eq!(decided["decision"]["approved"], true);
    let finished = events
        .iter()
        .find(|e| e["event"] == "run_finished")
        .unwrap();
    assert_eq!(finished["succeeded"], true);
}
