//! The watcher benchmark (`examples/watch-bench.rs`) and the detection example
//! (`examples/watch.rs`) run once, on tiny inputs for the benchmark, so neither can rot.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.is_file(), "{} is missing", bin.display());
    bin
}

#[test]
fn the_benchmark_runs_on_tiny_inputs() {
    let out = Command::new(example("watch-bench"))
        .arg("--quick")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in ["| 20 | ", "| 40 | ", "t(40)/t(20)"] {
        assert!(
            stdout.contains(needle),
            "`{needle}` missing from:\n{stdout}"
        );
    }
}

#[test]
fn the_example_detects_decides_and_fails_over_once() {
    let out = Command::new(example("watch"))
        .arg("--json")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
