//! A step kind the program registers, used from a plan file next to a built-in `command`
//! step: in the dry run, the forecast and the report; refused when not registered.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dr_examples::feature_flag::{flags, registry};
use dr_examples::{
    plans_dir, run_scenario, run_scenario_with, Console, RunOptions, EXIT_INVALID, EXIT_OK,
};
use serde_json::Value;

#[tokio::test(start_paused = true)]
async fn a_registered_kind_runs_from_a_plan_file() {
    let plan = plans_dir().join("custom-step.yaml");
    let json = RunOptions {
        json: true,
        ..RunOptions::default()
    };

    let console = Console::captured();
    let dry = RunOptions {
        dry_run: true,
        ..json.clone()
    };
    assert_eq!(
        run_scenario_with(&plan, "region-failover", &dry, &console, &registry()).await,
        EXIT_OK
    );
    let dry: Value = serde_json::from_str(&console.stdout()).unwrap();
    let step = |id: &str| {
        dry["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .cloned()
            .unwrap()
    };
    let flag = step("maintenance-banner");
    assert_eq!(flag["action"], "feature_flag");
    assert_eq!(flag["depends_on"], serde_json::json!(["orders-db/wait"]));
    assert_eq!(flag["calls"][1]["provider_role"], "feature-flags");
    assert_eq!(flag["calls"][1]["operation"], "set");
    assert_eq!(step("smoke-test")["calls"][0]["provider_role"], "process");
    assert!(dry["services"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["name"] == "api"));

    let console = Console::captured();
    assert_eq!(
        run_scenario_with(&plan, "region-failover", &json, &console, &registry()).await,
        EXIT_OK,
        "{}",
        console.stderr()
    );
    let report: Value = serde_json::from_str(&console.stdout()).unwrap();
    let step = |id: &str| {
        report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(step("maintenance-banner")["status"], "succeeded");
    let smoke = step("smoke-test");
    assert_eq!(smoke["status"], "succeeded");
    assert_eq!(smoke["output"]["exit_status"], 0);
    assert!(smoke["output"]["stdout"]
        .as_str()
        .unwrap()
        .contains("smoke test passed"));
    assert_eq!(
        flags().lock().unwrap().get("checkout-maintenance-banner"),
        Some(&true)
    );
}

#[tokio::test(start_paused = true)]
async fn an_unregistered_kind_is_invalid_input_naming_the_step() {
    let console = Console::captured();
    let code = run_scenario(
        &plans_dir().join("custom-step.yaml"),
        "region-failover",
        &RunOptions::default(),
        &console,
    )
    .await;
    assert_eq!(code, EXIT_INVALID);
    let err = console.stderr();
    assert!(err.contains("steps[maintenance-banner].kind"), "{err}");
    assert!(
        err.contains(
            "unknown step kind `feature_flag` (registered kinds: approval, command, webhook)"
        ),
        "{err}"
    );
}
