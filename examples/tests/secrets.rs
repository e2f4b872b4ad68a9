//! Planted secrets — a password in a plan's connection string, a webhook credential written
//! in the plan, a credential read from the environment, a password in a URL — never appear
//! in TRACE logs, the report, the journal or error messages of a journaled `run-plan` run.
//! The connection string does reach the (simulated) cluster secret it is written to.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const CONN_PW: &str = "Pl4nted-Conn-Pw-71";
const HEADER: &str = "Pl4nted-Header-Token-72";
const ENV_TOKEN: &str = "Pl4nted-Env-Token-73";
const URL_PW: &str = "Pl4nted-Url-Pw-74";
const CMD_TOKEN: &str = "Pl4nted-Cmd-Token-75";

fn run_plan() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory")
        .join("examples")
        .join("run-plan");
    assert!(bin.exists(), "{} is missing", bin.display());
    bin
}

/// The bundled region failover, with secrets planted in it.
fn planted_plan(dir: &Path) -> PathBuf {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/region-failover.yaml");
    let mut text = std::fs::read_to_string(base).expect("bundled plan");
    text = text.replace(
        "postgres://shop@{endpoint}/orders",
        &format!("postgres://shop:{CONN_PW}@{{endpoint}}/orders"),
    );
    assert!(text.contains(CONN_PW), "the plan's template moved");
    text = text.replace(
        "    approval: true\n    notify: [oncall, status-page]\n",
        &format!(
            r#"    approval: true
    notify: [oncall, status-page]
    steps:
      - id: tell-the-cdn
        kind: webhook
        after: [dns switched]
        critical: false
        timeout: 5s
        retry: {{ max_attempts: 2 }}
        params:
          url: "http://cdn-user:{URL_PW}@127.0.0.1:9/purge"
          headers:
            Authorization: "Bearer {HEADER}"
            X-Api-Key: {{ env: DR_PLANTED_TOKEN }}
      - id: smoke-test
        kind: command
        after: [database promoted]
        critical: false
        params:
          program: sh
          args: ["-c", "test -n \"$TOKEN\" && echo token is set; exit 3"]
          env: {{ TOKEN: "{CMD_TOKEN}" }}
"#
        ),
    );
    assert!(text.contains(HEADER), "the plan's scenario moved");
    let path = dir.join("planted.yaml");
    std::fs::write(&path, text).expect("write plan");
    path
}

#[test]
fn planted_secrets_appear_nowhere_but_in_the_cluster_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = planted_plan(dir.path());
    let journal = dir.path().join("journal");
    std::fs::create_dir(&journal).expect("journal dir");
    let out = Command::new(run_plan())
        .arg(&plan)
        .args(["--scenario", "region-failover", "--json", "--journal"])
        .arg(&journal)
        .env("RUST_LOG", "trace")
        .env("DR_PLANTED_TOKEN", ENV_TOKEN)
        .stdin(Stdio::null())
        .output()
        .expect("run-plan");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON report");
    assert_eq!(report["outcome"], "succeeded", "{stderr}");
    // The failing steps ran and failed with messages about their targets.
    let step = |id: &str| {
        report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no step {id}"))
    };
    assert_eq!(step("tell-the-cdn")["status"], "failed");
    assert!(step("tell-the-cdn")["error"]
        .as_str()
        .unwrap()
        .contains("127.0.0.1:9"));
    assert_eq!(step("smoke-test")["status"], "failed");
    assert!(stderr.contains("TRACE"), "TRACE logs were captured");

    let mut places = vec![("stdout (report)", stdout), ("stderr (TRACE log)", stderr)];
    let mut cluster_has_it = false;
    // Every file in the directory, the lease's included.
    let mut files = Vec::new();
    let mut dirs = vec![journal.clone()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).expect("dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    for path in files {
        let bytes = std::fs::read(&path).expect("file");
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.ends_with(".sim") {
            // The simulated cloud's own storage: the cluster secret holds the connection string.
            cluster_has_it = bytes
                .windows(CONN_PW.len())
                .any(|w| w == CONN_PW.as_bytes());
            continue;
        }
        places.push((
            if name.ends_with(".journal") {
                "journal"
            } else {
                "other file of the journal directory"
            },
            String::from_utf8_lossy(&bytes).to_string(),
        ));
    }
    assert!(
        cluster_has_it,
        "the connection string was written to the cluster secret"
    );
    for (place, text) in &places {
        for secret in [CONN_PW, HEADER, ENV_TOKEN, URL_PW, CMD_TOKEN] {
            assert!(!text.contains(secret), "{secret} appears in the {place}");
        }
    }
}
