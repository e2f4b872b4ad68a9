//! The resume benchmark (`examples/resume-bench.rs`) runs once on tiny inputs, so it cannot
//! rot between measurements.
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
        .join(format!("resume-bench{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.is_file(), "{} is missing", bin.display());
    let out = Command::new(&bin).arg("--quick").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in ["| 42 | ", "t(42)/t(22)", "sha256sum"] {
        assert!(
            stdout.contains(needle),
            "`{needle}` missing from:\n{stdout}"
        );
    }
}
