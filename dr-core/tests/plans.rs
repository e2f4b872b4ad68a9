//! Loading and planning the bundled plans.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dr_core::plan::Plan;
use dr_core::planner;

fn bundled(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/plans")
        .join(name)
}

#[test]
fn region_failover_plan_loads_and_plans_every_scenario() {
    let plan = Plan::load(bundled("region-failover.yaml")).unwrap_or_else(|e| panic!("{e}"));
    for sc in &plan.scenarios {
        let g =
            planner::plan_nominal(&plan, &sc.name).unwrap_or_else(|e| panic!("{}: {e}", sc.name));
        println!(
            "== {} forecast {:?} critical path {:?}",
            sc.name, g.forecast, g.critical_path
        );
        for s in &g.steps {
            println!(
                "  {:<40} {:<22} deps={:?}",
                s.id,
                s.action.kind(),
                s.depends_on
            );
        }
        for r in &g.risks {
            println!("  risk: {:?} {}", r.service, r.message);
        }
    }
}

fn invalid(name: &str) -> String {
    let err = Plan::load(bundled(&format!("invalid/{name}"))).expect_err(name);
    let msg = err.to_string();
    println!("{name}: {msg}");
    msg
}

#[test]
fn malformed_yaml_names_file_line_and_column() {
    let msg = invalid("malformed.yaml");
    assert!(msg.contains("invalid/malformed.yaml:"), "{msg}");
    assert!(
        msg.contains("malformed.yaml:10:"),
        "line after the unclosed list: {msg}"
    );
}

#[test]
fn bad_duration_names_the_field() {
    let msg = invalid("bad-duration.yaml");
    assert!(msg.contains("services[0].rto"), "{msg}");
    assert!(msg.contains("invalid duration `fast`"), "{msg}");
    assert!(msg.contains("bad-duration.yaml:10:"), "{msg}");
}

#[test]
fn unknown_field_is_refused() {
    let msg = invalid("unknown-field.yaml");
    assert!(msg.contains("unknown field `rto_target`"), "{msg}");
    assert!(msg.contains("services[0]"), "{msg}");
}

#[test]
fn every_unknown_reference_is_reported_at_once() {
    let msg = invalid("unknown-reference.yaml");
    for needle in [
        "services[api].database: unknown database `orders`",
        "services[api].depends_on: unknown service `paymnts`",
        "services[api].health_check: unknown health check `api-health`",
        "scenarios[failover].to: unknown region `mars`",
    ] {
        assert!(msg.contains(needle), "missing `{needle}` in {msg}");
    }
    assert!(msg.contains("(4 problems)"), "{msg}");
}

#[test]
fn cycle_names_its_members() {
    let msg = invalid("cycle.yaml");
    assert!(
        msg.contains("dependency cycle: api → worker → queue → api"),
        "{msg}"
    );
}

/// The nominal forecast of a bundled plan's only scenario.
fn forecast(name: &str) -> dr_core::RecoveryGraph {
    let plan = Plan::load(bundled(name)).expect(name);
    let observed = dr_core::planner::ObservedState::nominal(&plan, chrono::Utc::now());
    dr_core::planner::plan(&plan, "failover", &observed).expect(name)
}

#[test]
fn an_rto_shorter_than_the_fastest_recovery_is_a_risk_not_invalid() {
    let graph = forecast("at-risk-rto.yaml");
    let orders = &graph.services[0];
    assert!(!orders.within_targets);
    assert!(orders.forecast_rto > orders.rto_target);
    let risk = graph
        .risks
        .iter()
        .find(|r| r.service.as_deref() == Some("orders"))
        .expect("a risk");
    assert!(risk.message.contains("exceeds RTO 1m"), "{}", risk.message);
}

#[test]
fn an_rpo_the_backups_cannot_meet_is_a_risk_not_invalid() {
    let graph = forecast("at-risk-rpo.yaml");
    let risk = graph
        .risks
        .iter()
        .find(|r| r.service.as_deref() == Some("orders"))
        .expect("a risk");
    assert!(
        risk.message
            .contains("forecast data loss 1day exceeds RPO 15m"),
        "{}",
        risk.message
    );
}

#[test]
fn zero_duration_is_refused() {
    let msg = invalid("zero-duration.yaml");
    assert!(
        msg.contains("services[orders].rto: must be a positive duration"),
        "{msg}"
    );
}

#[test]
fn a_region_cannot_fail_and_recover() {
    let msg = invalid("same-region.yaml");
    assert!(
        msg.contains("scenarios[failover].to: region `east` cannot both fail and recover"),
        "{msg}"
    );
}

#[test]
fn duplicate_names_are_refused() {
    let msg = invalid("duplicate-name.yaml");
    assert!(
        msg.contains("services[orders]: duplicate name `orders`"),
        "{msg}"
    );
}

#[test]
fn malformed_toml_and_json_name_line_and_column() {
    let msg = invalid("malformed.toml");
    assert!(msg.contains("malformed.toml:3:"), "{msg}");
    let msg = invalid("malformed.json");
    assert!(msg.contains("malformed.json:4:"), "{msg}");
}

#[test]
fn yaml_toml_and_json_load_the_same_plan() {
    let plan = Plan::load(bundled("region-failover.yaml")).unwrap();
    let json = serde_json::to_string(&plan).unwrap();
    let toml_text = toml::to_string(&plan).unwrap();
    assert_eq!(Plan::from_json_str(&json).unwrap(), plan);
    assert_eq!(Plan::from_toml_str(&toml_text).unwrap(), plan);
    assert_eq!(Plan::from_yaml_str(&plan.to_yaml().unwrap()).unwrap(), plan);
}
