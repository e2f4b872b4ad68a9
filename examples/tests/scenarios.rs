//! The scenario programs beyond the web shop's seven, through the function every example
//! calls: each runs its bundled plan to completion on the simulated cloud.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dr_examples::{plans_dir, run_scenario, Console, RunOptions, EXIT_OK};
use serde_json::Value;

#[tokio::test(start_paused = true)]
async fn failback_runs_to_completion_and_meets_its_targets() {
    let console = Console::captured();
    let opts = RunOptions {
        json: true,
        ..RunOptions::default()
    };
    let code = run_scenario(
        &plans_dir().join("failback.yaml"),
        "failback",
        &opts,
        &console,
    )
    .await;
    assert_eq!(code, EXIT_OK, "{}", console.stderr());
    let report: Value = serde_json::from_str(&console.stdout()).unwrap();
    assert_eq!(report["outcome"], "succeeded");
    let status = |id: &str| {
        report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .map(|s| s["status"].clone())
            .unwrap_or_else(|| panic!("no step {id}"))
    };
    for id in [
        "orders-db/replicate-home",
        "orders-db/caught-up",
        "orders-db/promote",
        "api/dns:api.shop.example.com",
        "orders-db/new-replica",
    ] {
        assert_eq!(status(id), "succeeded", "{id}");
    }
    assert!(console
        .stderr()
        .contains("region us-east-1 is back after a failover to us-west-2"));
}

#[tokio::test(start_paused = true)]
async fn restore_from_dump_runs_to_completion_and_reports_the_dump_s_data_loss() {
    let console = Console::captured();
    let opts = RunOptions {
        json: true,
        ..RunOptions::default()
    };
    let code = run_scenario(
        &plans_dir().join("region-failover.yaml"),
        "restore-from-dump",
        &opts,
        &console,
    )
    .await;
    let report: Value = serde_json::from_str(&console.stdout()).unwrap();
    assert_eq!(report["outcome"], "succeeded", "{}", console.stderr());
    // Hourly dumps cannot meet the API's 5-minute RPO: the run says so with exit status 1.
    assert_eq!(code, dr_examples::EXIT_FAILED);
    let api = report["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "api")
        .unwrap();
    assert_eq!(api["met"], false);
    assert!(api["achieved_rpo_seconds"].as_f64().unwrap() > 300.0);
}

#[tokio::test(start_paused = true)]
async fn the_backup_procedure_runs_to_completion() {
    let console = Console::captured();
    let opts = RunOptions {
        json: true,
        ..RunOptions::default()
    };
    let code = run_scenario(
        &plans_dir().join("region-failover.yaml"),
        "nightly-backup",
        &opts,
        &console,
    )
    .await;
    assert_eq!(code, EXIT_OK, "{}", console.stderr());
    let report: Value = serde_json::from_str(&console.stdout()).unwrap();
    assert_eq!(report["outcome"], "succeeded");
    let prune = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "prune")
        .unwrap();
    assert_eq!(prune["status"], "succeeded");
    assert!(
        !prune["output"]["deleted"].as_array().unwrap().is_empty(),
        "{prune}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_cache_failure_runs_to_completion() {
    let console = Console::captured();
    let opts = RunOptions {
        json: true,
        ..RunOptions::default()
    };
    let code = run_scenario(
        &plans_dir().join("cache-failure.yaml"),
        "cache-failure",
        &opts,
        &console,
    )
    .await;
    assert_eq!(code, EXIT_OK, "{}", console.stderr());
    let report: Value = serde_json::from_str(&console.stdout()).unwrap();
    assert_eq!(report["outcome"], "succeeded");
}

#[tokio::test(start_paused = true)]
async fn the_provider_outage_runs_to_completion() {
    let console = Console::captured();
    let opts = RunOptions {
        json: true,
        ..RunOptions::default()
    };
    let code = run_scenario(
        &plans_dir().join("provider-outage.yaml"),
        "payments-outage",
        &opts,
        &console,
    )
    .await;
    assert_eq!(code, EXIT_OK, "{}", console.stderr());
    let report: Value = serde_json::from_str(&console.stdout()).unwrap();
    assert_eq!(report["outcome"], "succeeded");
}

#[tokio::test(start_paused = true)]
async fn the_node_group_failure_runs_to_completion_draining_only_failed_nodes() {
    let console = Console::captured();
    let opts = RunOptions {
        json: true,
        ..RunOptions::default()
    };
    let code = run_scenario(
        &plans_dir().join("region-failover.yaml"),
        "node-group-failure",
        &opts,
        &console,
    )
    .await;
    assert_eq!(code, EXIT_OK, "{}", console.stderr());
    let report: Value = serde_json::from_str(&console.stdout()).unwrap();
    assert_eq!(report["outcome"], "succeeded");
    let step = |id: &str| {
        report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no step {id}"))
    };
    assert_eq!(
        step("nodes:prod-east/general-b/wait")["status"],
        "succeeded"
    );
    let drain = step("nodes:prod-east/general/drain");
    assert_eq!(drain["status"], "succeeded");
    assert_eq!(drain["output"]["drained"].as_array().unwrap().len(), 3);
    assert_eq!(step("api/verify")["status"], "succeeded");
}

#[tokio::test(start_paused = true)]
async fn security_isolation_runs_to_completion_and_lists_its_evidence() {
    let console = Console::captured();
    let opts = RunOptions {
        json: true,
        ..RunOptions::default()
    };
    let code = run_scenario(
        &plans_dir().join("region-failover.yaml"),
        "security-isolation",
        &opts,
        &console,
    )
    .await;
    assert_eq!(code, EXIT_OK, "{}", console.stderr());
    let report: Value = serde_json::from_str(&console.stdout()).unwrap();
    assert_eq!(report["outcome"], "succeeded");
    let status = |id: &str| {
        report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .map(|s| s["status"].clone())
            .unwrap_or_else(|| panic!("no step {id}"))
    };
    for id in [
        "voice/isolate:voice",
        "voice/deny-all:voice",
        "voice/export:prod-east/shop",
        "voice/scale-to-zero:voice",
        "orders-db/evidence-snapshot",
        "voice/snapshot-volume:vol-0a1b2c3d4e5f60718",
        "voice/rotate-credential",
        "voice/approve-redeploy",
        "voice/redeploy:voice",
        "voice/copy-credential:prod-east/shop-recovery",
        "voice/restart:voice",
        "voice/wait:voice",
    ] {
        assert_eq!(status(id), "succeeded", "{id}");
    }
    let evidence = report["evidence"].as_array().unwrap();
    let object = evidence.iter().find(|e| e["kind"] == "object").unwrap();
    assert_eq!(object["store"], "evidence");
    assert_eq!(object["sha256"].as_str().unwrap().len(), 64);
    assert!(object["size"].as_u64().unwrap() > 0);
    let snap = evidence
        .iter()
        .find(|e| e["kind"] == "volume_snapshot")
        .unwrap();
    assert_eq!(snap["volume"], "vol-0a1b2c3d4e5f60718");
    assert!(snap["id"].as_str().unwrap().starts_with("snap-"));
}
