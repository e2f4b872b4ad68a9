//! `run-plan --providers` without stand-ins: the file's faults stop the run with exit 2
//! before anything runs, and a dry run on the simulated default with a real HTTP health
//! check and a local store names the provider of every call.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dr_examples::providers::{run_with_providers, ProvidersRunOptions};
use dr_examples::{plans_dir, Console, EXIT_INVALID, EXIT_OK};

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_literal_credential_or_an_unmapped_resource_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plans_dir().join("region-failover.yaml");
    let opts = ProvidersRunOptions::default();

    let file = write(
        &dir,
        "literal.yaml",
        "default: simulated\nstores:\n  evidence: { kind: azure_blob, account: a, access_key: \"k3yS3cretV4lue\" }\n",
    );
    let console = Console::captured();
    let run = run_with_providers(&plan, "region-failover", &file, &opts, &console).await;
    assert_eq!(run.exit, EXIT_INVALID);
    let err = console.stderr();
    assert!(err.contains("literal.yaml:3:"), "{err}");
    assert!(err.contains("stores.evidence.access_key"), "{err}");
    assert!(!err.contains("k3yS3cretV4lue"), "{err}");
    assert!(console.stdout().is_empty());

    let file = write(
        &dir,
        "partial.yaml",
        "databases:\n  us-east-1: { kind: simulated }\n",
    );
    let console = Console::captured();
    let run = run_with_providers(&plan, "region-failover", &file, &opts, &console).await;
    assert_eq!(run.exit, EXIT_INVALID);
    let err = console.stderr();
    assert!(
        err.contains("databases.us-west-2: no database provider for region `us-west-2`"),
        "{err}"
    );
    assert!(
        err.contains("needed by the plan's replica shop-prod-west of database orders-db"),
        "{err}"
    );
}

/// A health endpoint on 127.0.0.1 answering 200 `ok`.
fn health_server() -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_names_the_provider_of_every_call() {
    let dir = tempfile::tempdir().unwrap();
    let addr = health_server();
    let plan_text = std::fs::read_to_string(plans_dir().join("region-failover.yaml"))
        .unwrap()
        .replace(
            "https://api.shop.example.com/health",
            &format!("http://{addr}/health"),
        );
    let plan = write(&dir, "plan.yaml", &plan_text);
    let file = write(
        &dir,
        "providers.yaml",
        &format!(
            "default: simulated\nstores:\n  backups-west: {{ kind: local, path: {} }}\nhealth_checks:\n  api-health: {{ kind: http, body_contains: ok }}\nnotifications:\n  oncall: {{ kind: log }}\n",
            dir.path().join("backups").display()
        ),
    );
    let opts = ProvidersRunOptions {
        dry_run: true,
        ..ProvidersRunOptions::default()
    };
    let console = Console::captured();
    let run = run_with_providers(&plan, "region-failover", &file, &opts, &console).await;
    let out = console.stdout();
    assert_eq!(run.exit, EXIT_OK, "{out}\n{}", console.stderr());
    assert!(out.contains("health_check api-health: reachable"), "{out}");
    assert!(out.contains("store backups-west: reachable"), "{out}");
    assert!(
        out.contains("probe probe api-health (http://127.0.0.1:"),
        "{out}"
    );
    assert!(out.contains("-> http (GET http://127.0.0.1:"), "{out}");
    assert!(out.contains("notifier notify oncall -> log"), "{out}");
    assert!(
        out.contains("database promote database us-west-2/shop-prod-west -> simulated"),
        "{out}"
    );
    // Nothing ran.
    assert!(run.report.is_none());
}
