//! The planner and loader benchmark (`examples/plan-bench.rs`) runs once on tiny inputs, so
//! it cannot rot between measurements.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

#[test]
fn the_benchmark_runs_on_tiny_inputs() {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples")
        .join(format!("plan-bench{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo test -p dr-examples` (which builds the examples)",
        bin.display()
    );
    let out = Command::new(&bin).arg("--quick").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "| 20 | ",
        "t(20)/t(10)",
        "| 20 services |",
        "| 200 nesting levels |",
        "more than the limit of 64",
    ] {
        assert!(
            stdout.contains(needle),
            "`{needle}` missing from:\n{stdout}"
        );
    }
}
