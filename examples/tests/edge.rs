//! The bundled region failover and failback move the web shop's edge: the API's load
//! balancer targets and the static site's CDN origin, through the function every example
//! (and `run-plan`) calls, in the JSON report and in the dry run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dr_examples::{plans_dir, run_scenario, Console, RunOptions, EXIT_OK};
use serde_json::Value;

async fn report(plan: &str, scenario: &str, fault_rate: f64) -> Value {
    let console = Console::captured();
    let opts = RunOptions {
        json: true,
        fault_rate,
        ..RunOptions::default()
    };
    let code = run_scenario(&plans_dir().join(plan), scenario, &opts, &console).await;
    assert_eq!(code, EXIT_OK, "{}", console.stderr());
    serde_json::from_str(&console.stdout()).unwrap()
}

fn step<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id} in {report}"))
}

#[tokio::test(start_paused = true)]
async fn the_region_failover_and_the_failback_move_the_edge() {
    for (plan, scenario) in [
        ("region-failover.yaml", "region-failover"),
        ("failback.yaml", "failback"),
    ] {
        let r = report(plan, scenario, 0.0).await;
        assert_eq!(r["outcome"], "succeeded", "{scenario}");
        for id in [
            "api/targets:api-targets",
            "static-assets/origin:static-site",
            "static-assets/deployed:static-site",
        ] {
            assert_eq!(step(&r, id)["status"], "succeeded", "{scenario}: {id}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn faults_are_ridden_out_on_the_edge_too() {
    let r = report("region-failover.yaml", "region-failover", 0.1).await;
    assert_eq!(r["outcome"], "succeeded");
    assert_eq!(step(&r, "api/targets:api-targets")["status"], "succeeded");
}

#[tokio::test(start_paused = true)]
async fn the_dry_run_lists_the_edge_calls() {
    let console = Console::captured();
    let opts = RunOptions {
        dry_run: true,
        ..RunOptions::default()
    };
    let code = run_scenario(
        &plans_dir().join("region-failover.yaml"),
        "region-failover",
        &opts,
        &console,
    )
    .await;
    assert_eq!(code, EXIT_OK, "{}", console.stderr());
    let out = console.stdout();
    for call in [
        "set_origin E2QWRUHAPOMQZL -> lb.us-west-2.shop.example.com",
        "register_targets shop-api + 10.2.0.10:8080",
        "deregister_targets shop-api - 10.1.0.10:8080",
        "describe_distribution E2QWRUHAPOMQZL (until deployed)",
    ] {
        assert!(out.contains(call), "{call} in:\n{out}");
    }
}
