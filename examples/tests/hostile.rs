//! The hostile-input catalogue: every malformed, careless or hostile plan in
//! `tests/hostile/` (listed with its expectations in `tests/hostile/cases.txt`), and the
//! huge and deep ones generated here, through the real `run-plan` binary. Each must exit with
//! status 2, without a panic, showing its error class and naming the fault, within a
//! bounded amount of output, and without printing any planted secret.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Secrets planted in the catalogue: none may appear in any output.
const PLANTED: &[&str] = &[
    "Pl4ntedPassw0rd",
    "ghp_PLANTED0123456789abcdefghijklmnopqrstu",
    "AKIAPLANTED000000000",
    "wJalrXUtnFEMIK7MDENGbPxRfiCYPLANTED1234",
];

/// The most bytes of stderr one invalid input may produce (the flood cap).
const MAX_STDERR: usize = 64 * 1024;

/// The most time one run may take before the test calls it hung.
const TIMEOUT: Duration = Duration::from_secs(120);

fn catalogue_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/hostile")
}

/// The `run-plan` example, built next to this test by `cargo test` (examples are built
/// with a package's tests).
fn run_plan_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let bin = dir
        .join("examples")
        .join(format!("run-plan{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo test -p dr-examples` (which builds the examples) or `cargo build -p dr-examples --example run-plan` first",
        bin.display()
    );
    bin
}

fn run(args: &[OsString]) -> Output {
    let mut child = Command::new(run_plan_bin())
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start run-plan");
    // Read both pipes on threads so a large output cannot block the child.
    let mut out_pipe = child.stdout.take().expect("stdout");
    let mut err_pipe = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out_pipe, &mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err_pipe, &mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for run-plan") {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            panic!("run-plan {args:?} still running after {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// What stderr must show for each class of error.
fn class_marker(class: &str) -> &'static [&'static str] {
    match class {
        "parse" => &[
            ": invalid YAML plan",
            ": invalid TOML plan",
            ": invalid JSON plan",
        ],
        "invalid" => &[": invalid plan ("],
        "read" => &[": cannot read plan"],
        "format" => &[": unknown plan format"],
        "large" => &["larger than the limit of"],
        "scenario" => &["unknown scenario"],
        "flag" => &["For more information, try '--help'"],
        "incident" => &[
            ": invalid YAML incident file",
            ": invalid TOML incident file",
            ": invalid JSON incident file",
            ": cannot read the incident file",
            "the plan has no ",
        ],
        other => panic!("unknown class `{other}` in cases.txt"),
    }
}

/// Every expectation on one run; returns what failed.
fn check(label: &str, out: &Output, class: &str, needles: &[&str]) -> Vec<String> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut failed = Vec::new();
    let shown = || {
        let mut s: String = stderr.chars().take(1500).collect();
        if stderr.len() > 1500 {
            s.push('…');
        }
        s
    };
    if out.status.code() != Some(2) {
        failed.push(format!(
            "{label}: exit status {:?}, not 2\n{}",
            out.status,
            shown()
        ));
    }
    for bad in ["panicked", "overflowed its stack", "RUST_BACKTRACE"] {
        if stderr.contains(bad) {
            failed.push(format!("{label}: `{bad}` in stderr\n{}", shown()));
        }
    }
    if !class_marker(class).iter().any(|m| stderr.contains(m)) {
        failed.push(format!("{label}: not a `{class}` error\n{}", shown()));
    }
    for n in needles {
        if !stderr.contains(n) {
            failed.push(format!("{label}: `{n}` missing from stderr\n{}", shown()));
        }
    }
    for secret in PLANTED {
        if stdout.contains(secret) || stderr.contains(secret) {
            failed.push(format!("{label}: planted secret `{secret}` printed"));
        }
    }
    if stderr.len() > MAX_STDERR {
        failed.push(format!(
            "{label}: {} bytes on stderr (at most {MAX_STDERR})",
            stderr.len()
        ));
    }
    if stderr.contains('\u{202e}') || stderr.contains('\u{200b}') || stderr.contains('\u{7}') {
        failed.push(format!(
            "{label}: a raw control or bidi character in stderr"
        ));
    }
    failed
}

fn args_for(plan: &Path, extra: &str) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![plan.into()];
    if extra.trim().is_empty() && !plan.to_string_lossy().contains("flag-missing-scenario") {
        args.extend(["--scenario", "failover", "--dry-run"].map(OsString::from));
    } else {
        args.extend(extra.split_whitespace().map(OsString::from));
    }
    args
}

#[test]
fn every_catalogued_input_is_refused_clearly() {
    let dir = catalogue_dir();
    let manifest = std::fs::read_to_string(dir.join("cases.txt")).expect("cases.txt");
    let mut failed = Vec::new();
    let mut count = 0;
    for line in manifest.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.splitn(4, '|').map(str::trim).collect();
        let [file, class, needles, extra] = fields[..] else {
            panic!("malformed line in cases.txt: {line}");
        };
        let path = dir.join(file);
        assert!(path.exists(), "{file} is listed but missing");
        let needles: Vec<&str> = needles
            .split(" ; ")
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect();
        let out = run(&args_for(&path, extra));
        failed.extend(check(file, &out, class, &needles));
        count += 1;
    }
    assert!(count >= 60, "only {count} catalogued inputs");
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}

#[test]
fn every_file_in_the_catalogue_is_listed() {
    let dir = catalogue_dir();
    let manifest = std::fs::read_to_string(dir.join("cases.txt")).expect("cases.txt");
    for entry in std::fs::read_dir(&dir).expect("catalogue") {
        let name = entry.expect("entry").file_name();
        let name = name.to_string_lossy();
        if name != "cases.txt" {
            assert!(
                manifest
                    .lines()
                    .any(|l| l.split('|').next().map(str::trim) == Some(&*name)),
                "{name} is not in cases.txt"
            );
        }
    }
}

/// A scratch directory for generated inputs, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("dr-hostile-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    fn write(&self, file: &str, text: &str) -> PathBuf {
        let path = self.0.join(file);
        std::fs::write(&path, text).expect("write input");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn expect(label: &str, out: &Output, class: &str, needles: &[&str]) {
    let failed = check(label, out, class, needles);
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}

#[test]
fn a_directory_and_a_missing_file_are_read_errors() {
    let scratch = Scratch::new("files");
    let dir = scratch.0.join("plan.yaml");
    std::fs::create_dir_all(&dir).unwrap();
    let out = run(&args_for(&dir, ""));
    expect("directory", &out, "read", &["is a directory"]);
    let missing = scratch.0.join("missing.yaml");
    let out = run(&args_for(&missing, ""));
    expect(
        "missing file",
        &out,
        "read",
        &["missing.yaml", "No such file"],
    );
    let secret_path = scratch
        .0
        .join("postgres:__admin:Pl4ntedPassw0rd@db")
        .join("password=Pl4ntedPassw0rd.yaml");
    let out = run(&args_for(&secret_path, ""));
    expect("secret in the path", &out, "read", &["password=***"]);
}

#[test]
fn a_malformed_incident_file_is_refused_naming_the_fault() {
    let scratch = Scratch::new("incident");
    let plan = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plans/region-failover.yaml");
    let with = |incident: &Path| -> Vec<OsString> {
        vec![
            plan.clone().into(),
            "--scenario".into(),
            "region-failover".into(),
            "--incident".into(),
            incident.into(),
        ]
    };
    let cases = [
        (
            "typo.yaml",
            "lag:\n  shop-prod-west: 20m\nregion_dwn: [us-east-1]\n",
            &[":3:", "unknown field `region_dwn`", "region_down"][..],
        ),
        (
            "duration.yaml",
            "lag:\n  shop-prod-west: twenty minutes\n",
            &[":2:", "lag.shop-prod-west"][..],
        ),
        (
            "secret.json",
            "{\"lag\": {\"shop-prod-west\": \"postgres://admin:Pl4ntedPassw0rd@db\"}}",
            &["lag.shop-prod-west"][..],
        ),
        (
            "region.toml",
            "dns_unhealthy = [\"mars-1\"]\n",
            &["no region `mars-1`", "us-west-2"][..],
        ),
    ];
    for (file, text, needles) in cases {
        let path = scratch.write(file, text);
        let out = run(&with(&path));
        expect(file, &out, "incident", needles);
    }
    let out = run(&with(&scratch.0.join("missing.yaml")));
    expect("missing", &out, "incident", &["missing.yaml"]);
}

/// `n` services, each depending on the next (the last on nothing, or on the first when
/// `cycle`), declared first to last: the dependency search goes `n` deep.
fn chain(n: usize, cycle: bool) -> String {
    let mut s = String::from(
        "name: chain\nregions:\n  - { name: east, role: primary }\n  - { name: west, role: secondary }\ndatabases:\n  - { name: db, region: east, replicas: [{ id: db-west, region: west }] }\nservices:\n",
    );
    for i in 0..n {
        let dep = if i + 1 < n {
            format!("s{}", i + 1)
        } else if cycle {
            "s0".to_string()
        } else {
            String::new()
        };
        let db = if i == n - 1 { ", database: db" } else { "" };
        let _ = writeln!(
            s,
            "  - {{ name: s{i}, rto: 300days, rpo: 1h, depends_on: [{dep}]{db} }}"
        );
    }
    s.push_str("scenarios:\n  - { name: db-loss, kind: database-failure, database: db }\n");
    s
}

#[test]
fn a_chain_of_40000_services_does_not_overflow_the_stack() {
    let scratch = Scratch::new("chain");
    // Valid: validation and planning get through; only the scenario asked for is unknown.
    let plan = scratch.write("chain.yaml", &chain(40_000, false));
    let out = run(&args_for(&plan, "--scenario nope --dry-run"));
    expect(
        "40,000-service chain",
        &out,
        "scenario",
        &["unknown scenario `nope`"],
    );
    // The same chain closed into one cycle of 40,000 members, named in short.
    let plan = scratch.write("cycle.yaml", &chain(40_000, true));
    let out = run(&args_for(&plan, ""));
    expect(
        "40,000-service cycle",
        &out,
        "invalid",
        &["dependency cycle of 40000 services: s0 → s1 →", "more) …"],
    );
}

#[test]
fn deep_nesting_is_refused_at_the_limit() {
    let scratch = Scratch::new("deep");
    let levels = 100_000;
    let inputs = [
        (
            "flow.yaml",
            format!(
                "name: x\ndescription: {}{}\n",
                "[".repeat(levels),
                "]".repeat(levels)
            ),
        ),
        (
            "block.yaml",
            format!("name: x\ndescription:\n  {}x\n", "- ".repeat(levels)),
        ),
        (
            "deep.json",
            format!(
                "{{\"name\": \"x\", \"description\": {}{}}}",
                "[".repeat(levels),
                "]".repeat(levels)
            ),
        ),
        (
            "deep.toml",
            format!(
                "name = \"x\"\ndescription = {}{}\n",
                "[".repeat(levels),
                "]".repeat(levels)
            ),
        ),
        (
            "dotted.toml",
            format!("{} = 1\n", vec!["a"; levels].join(".")),
        ),
    ];
    for (file, text) in inputs {
        let plan = scratch.write(file, &text);
        let out = run(&args_for(&plan, ""));
        expect(file, &out, "parse", &["more than the limit of 64"]);
    }
}

#[test]
fn a_plan_above_the_size_limit_is_refused() {
    let scratch = Scratch::new("large");
    let mut text = String::from("name: big\ndescription: \"");
    text.push_str(&"x".repeat(17 << 20));
    text.push_str("\"\n");
    let plan = scratch.write("large.yaml", &text);
    let out = run(&args_for(&plan, ""));
    expect("17 MiB plan", &out, "large", &["16777216 bytes"]);
}

#[test]
fn a_flood_of_typos_is_summarised() {
    let scratch = Scratch::new("flood");
    let mut s = String::from(
        "name: flood\nregions:\n  - { name: east, role: primary }\n  - { name: west, role: secondary }\nservices:\n",
    );
    for i in 0..5000 {
        let _ = writeln!(
            s,
            "  - {{ name: service-{i}, rto: 1h, rpo: 1h, depends_on: [servce-{}] }}",
            (i + 1) % 5000
        );
    }
    s.push_str("scenarios:\n  - { name: failover, kind: region-failover, from: east, to: west }\n");
    let plan = scratch.write("flood.yaml", &s);
    let out = run(&args_for(&plan, ""));
    expect(
        "5,000 typos",
        &out,
        "invalid",
        &[
            "(5000 problems)",
            "did you mean `service-1`?",
            "other services are declared",
            "4950 more problems not listed",
        ],
    );
}

#[test]
fn a_hundred_thousand_services_on_one_line_report_one_duplicate() {
    let scratch = Scratch::new("oneline");
    let mut s = String::from(
        "name: wide\nregions: [{ name: east, role: primary }]\nscenarios: []\nservices: [",
    );
    for i in 0..100_000 {
        let _ = write!(s, "{{name: s{i}, rto: 1h, rpo: 1h}}, ");
    }
    s.push_str("{name: s7, rto: 1h, rpo: 1h}]\n");
    let plan = scratch.write("wide.yaml", &s);
    let out = run(&args_for(&plan, ""));
    expect(
        "one-line plan",
        &out,
        "invalid",
        &["services[s7]: duplicate name `s7`"],
    );
}
