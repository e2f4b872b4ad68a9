//! The `run-plan` contract, through the function every example calls: exit statuses, the
//! JSON report's fields, dry runs, invalid input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dr_examples::{
    plans_dir, run_scenario, Console, RunOptions, EXIT_FAILED, EXIT_INVALID, EXIT_OK,
};
use serde_json::Value;
use std::time::Duration;

const SCENARIOS: [&str; 7] = [
    "region-failover",
    "database-failure",
    "point-in-time-restore",
    "cluster-rebuild",
    "application-rollback",
    "security-isolation",
    "service-restart",
];

async fn run(plan: &str, scenario: &str, opts: RunOptions) -> (u8, Console) {
    let console = Console::captured();
    let code = run_scenario(&plans_dir().join(plan), scenario, &opts, &console).await;
    (code, console)
}

fn json_opts() -> RunOptions {
    RunOptions {
        json: true,
        ..RunOptions::default()
    }
}

#[tokio::test(start_paused = true)]
async fn every_scenario_succeeds_and_reports_json() {
    for scenario in SCENARIOS {
        let (code, console) = run("region-failover.yaml", scenario, json_opts()).await;
        let out = console.stdout();
        let report: Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("{scenario}: stdout is not only JSON ({e}): {out}"));
        assert_eq!(code, EXIT_OK, "{scenario}: {}", console.stderr());
        assert_eq!(report["outcome"], "succeeded", "{scenario}");
        assert_eq!(report["scenario"], scenario);
        for field in ["forecast_rto_seconds", "achieved_rto_seconds"] {
            assert!(
                report[field].as_f64().is_some_and(|v| v > 0.0),
                "{scenario}: {field}"
            );
        }
        let services = report["services"].as_array().unwrap();
        assert!(!services.is_empty(), "{scenario}");
        for s in services {
            for field in [
                "name",
                "rto_target_seconds",
                "achieved_rto_seconds",
                "rpo_target_seconds",
                "achieved_rpo_seconds",
                "met",
            ] {
                assert!(
                    s.get(field).is_some(),
                    "{scenario}: services[].{field} missing in {s}"
                );
            }
            assert_eq!(s["met"], true, "{scenario}: {s}");
        }
        for s in report["steps"].as_array().unwrap() {
            for field in [
                "id",
                "action",
                "service",
                "started_at",
                "finished_at",
                "attempts",
                "status",
            ] {
                assert!(
                    s.get(field).is_some(),
                    "{scenario}: steps[].{field} missing in {s}"
                );
            }
            assert_eq!(s["status"], "succeeded", "{scenario}: {s}");
        }
        // Progress went to stderr while stdout held only the report.
        assert!(
            console.stderr().contains("run finished: succeeded"),
            "{scenario}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn dry_run_lists_calls_without_times() {
    for scenario in SCENARIOS {
        let opts = RunOptions {
            dry_run: true,
            ..json_opts()
        };
        let (code, console) = run("region-failover.yaml", scenario, opts).await;
        assert_eq!(code, EXIT_OK);
        let dry: Value = serde_json::from_str(&console.stdout()).unwrap();
        assert_eq!(dry["outcome"], "planned");
        assert!(dry["forecast_rto_seconds"].as_f64().unwrap() > 0.0);
        assert!(!dry["critical_path"].as_array().unwrap().is_empty());
        for s in dry["steps"].as_array().unwrap() {
            assert!(s.get("started_at").is_none() && s.get("finished_at").is_none());
            assert!(!s["calls"].as_array().unwrap().is_empty(), "{s}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn human_output_has_forecast_progress_and_report() {
    let (code, console) = run(
        "region-failover.yaml",
        "region-failover",
        RunOptions::default(),
    )
    .await;
    assert_eq!(code, EXIT_OK);
    let out = console.stdout();
    let forecast = out.find("Forecast: plan shop-web").unwrap();
    let progress = out
        .find("+00:00:00  run of `region-failover` started")
        .unwrap();
    let report = out.find("Outcome:  succeeded").unwrap();
    assert!(forecast < progress && progress < report, "{out}");
}

#[tokio::test(start_paused = true)]
async fn a_target_at_risk_is_a_forecast_not_invalid_input() {
    for (plan, risk) in [
        ("at-risk-rto.yaml", "exceeds RTO 1m"),
        ("at-risk-rpo.yaml", "exceeds RPO 15m"),
    ] {
        // The dry run plans, shows the risk, and exits 0.
        let dry = RunOptions {
            dry_run: true,
            ..json_opts()
        };
        let (code, console) = run(plan, "failover", dry).await;
        assert_eq!(code, EXIT_OK, "{plan}: {}", console.stderr());
        let json: Value = serde_json::from_str(&console.stdout()).unwrap();
        let risks = json["risks"].to_string();
        assert!(risks.contains(risk), "{plan}: {risks}");
        assert_eq!(json["services"][0]["within_targets"], false);
        if plan == "at-risk-rto.yaml" {
            // The run goes ahead, and exits 1 for the missed target.
            let (code, console) = run(plan, "failover", json_opts()).await;
            assert_eq!(code, EXIT_FAILED, "{plan}");
            let report: Value = serde_json::from_str(&console.stdout()).unwrap();
            assert_eq!(report["outcome"], "succeeded", "{plan}");
            assert_eq!(report["services"][0]["met"], false, "{plan}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_rpo_gate_refuses_a_loss_beyond_the_rpo_unless_it_is_accepted() {
    // The snapshot is hours old against an RPO of 15m: the restore is refused before its
    // call, naming the gate and how to accept the loss.
    let (code, console) = run("at-risk-rpo.yaml", "failover", json_opts()).await;
    assert_eq!(code, EXIT_FAILED);
    let report: Value = serde_json::from_str(&console.stdout()).unwrap();
    assert_eq!(report["outcome"], "failed");
    let restore = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["action"] == "restore_snapshot")
        .unwrap();
    let error = restore["error"].as_str().unwrap();
    assert!(error.contains("rpo gate refused"), "{error}");
    assert!(error.contains("--accept-data-loss orders="), "{error}");
    assert!(report["overrides"].as_array().unwrap().is_empty());

    // Too little accepted: still refused.
    let opts = RunOptions {
        accept_data_loss: vec![("orders".into(), Duration::from_secs(600))],
        ..json_opts()
    };
    let (code, console) = run("at-risk-rpo.yaml", "failover", opts).await;
    assert_eq!(code, EXIT_FAILED);
    assert!(console.stdout().contains("is less"), "{}", console.stdout());

    // Accepted explicitly: the restore goes ahead, the override is in the report, and the
    // missed RPO still makes the run exit 1.
    let opts = RunOptions {
        accept_data_loss: vec![("orders".into(), Duration::from_secs(48 * 3600))],
        ..json_opts()
    };
    let (code, console) = run("at-risk-rpo.yaml", "failover", opts).await;
    assert_eq!(code, EXIT_FAILED);
    let report: Value = serde_json::from_str(&console.stdout()).unwrap();
    assert_eq!(report["outcome"], "succeeded");
    assert_eq!(report["services"][0]["met"], false);
    let overrides = report["overrides"].to_string();
    assert!(overrides.contains("\"gate\":\"rpo\""), "{overrides}");
    assert!(overrides.contains("accepted up to 2days"), "{overrides}");
}

#[tokio::test(start_paused = true)]
async fn invalid_input_exits_2_naming_the_fault() {
    let cases = [
        ("invalid/malformed.yaml", "malformed.yaml:10:"),
        ("invalid/bad-duration.yaml", "services[0].rto"),
        (
            "invalid/unknown-reference.yaml",
            "unknown service `paymnts`",
        ),
        (
            "invalid/cycle.yaml",
            "dependency cycle: api → worker → queue → api",
        ),
        ("invalid/zero-duration.yaml", "must be a positive duration"),
        ("invalid/same-region.yaml", "cannot both fail and recover"),
        ("invalid/duplicate-name.yaml", "duplicate name `orders`"),
        ("invalid/malformed.toml", "malformed.toml:3:"),
        ("invalid/malformed.json", "malformed.json:4:"),
        ("does-not-exist.yaml", "cannot read plan"),
    ];
    for (plan, needle) in cases {
        let (code, console) = run(plan, "failover", json_opts()).await;
        assert_eq!(code, EXIT_INVALID, "{plan}");
        assert!(
            console.stderr().contains(needle),
            "{plan}: `{needle}` not in {}",
            console.stderr()
        );
        assert!(
            console.stdout().is_empty(),
            "{plan}: stdout must stay empty"
        );
    }
    let (code, console) = run("region-failover.yaml", "no-such-scenario", json_opts()).await;
    assert_eq!(code, EXIT_INVALID);
    assert!(console
        .stderr()
        .contains("unknown scenario `no-such-scenario`"));
}

#[tokio::test(start_paused = true)]
async fn a_failed_run_exits_1_with_a_failed_report() {
    // Every simulated call fails: the run cannot succeed.
    let opts = RunOptions {
        fault_rate: 1.0,
        ..json_opts()
    };
    let (code, console) = run("region-failover.yaml", "service-restart", opts).await;
    assert_eq!(code, EXIT_FAILED);
    let report: Value = serde_json::from_str(&console.stdout()).unwrap();
    assert_eq!(report["outcome"], "failed");
    assert!(report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["status"] == "failed"));
}

#[tokio::test(start_paused = true)]
async fn moderate_faults_are_ridden_out_by_retries() {
    let mut retries = 0;
    for seed in 1..=5 {
        let opts = RunOptions {
            fault_rate: 0.1,
            seed,
            ..json_opts()
        };
        let (code, console) = run("region-failover.yaml", "region-failover", opts).await;
        let report: Value = serde_json::from_str(&console.stdout()).unwrap();
        assert_eq!(code, EXIT_OK, "seed {seed}: {}", console.stderr());
        retries += report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["attempts"].as_u64() > Some(1))
            .count();
    }
    assert!(
        retries > 0,
        "faults were injected: some step must have been retried"
    );
}

#[tokio::test(start_paused = true)]
async fn same_seed_same_report() {
    let opts = RunOptions {
        fault_rate: 0.1,
        seed: 9,
        ..json_opts()
    };
    let (_, a) = run("region-failover.yaml", "region-failover", opts.clone()).await;
    let (_, b) = run("region-failover.yaml", "region-failover", opts).await;
    assert_eq!(a.stdout(), b.stdout());
}

/// The AWS example's plan loads, and its failover succeeds on the simulated cloud alone.
#[tokio::test(start_paused = true)]
async fn aws_plan_validates_and_fails_over_on_the_sim() {
    let path = plans_dir().join("aws-region-failover.yaml");
    let plan = dr_core::plan::Plan::load(&path).unwrap();
    assert_eq!(plan.regions.len(), 2);
    assert!(plan.health_checks.is_empty());
    let (code, console) = run("aws-region-failover.yaml", "region-failover", json_opts()).await;
    assert_eq!(code, EXIT_OK, "{}", console.stderr());
}

#[tokio::test(start_paused = true)]
async fn incident_state_exercises_the_gates_from_a_plan_file() {
    use dr_examples::incident::IncidentState;
    let failed_step = |report: &Value, id: &str| -> String {
        let step = report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap()
            .clone();
        assert_eq!(step["status"], "failed", "{id}: {step}");
        step["error"].as_str().unwrap().to_string()
    };

    // A replica 20 minutes behind: the promotion is refused for every service behind it.
    let lagging = IncidentState {
        lags: vec![("shop-prod-west".into(), Duration::from_secs(1200))],
        ..Default::default()
    };
    let opts = RunOptions {
        incident: lagging.clone(),
        ..json_opts()
    };
    let (code, console) = run("region-failover.yaml", "region-failover", opts).await;
    assert_eq!(code, EXIT_FAILED);
    let report: Value = serde_json::from_str(&console.stdout()).unwrap();
    let error = failed_step(&report, "orders-db/promote");
    for svc in ["api=20m", "voice=20m", "database=20m"] {
        assert!(
            error.contains(&format!("--accept-data-loss {svc}")),
            "{error}"
        );
    }
    // Accepted for each: it goes ahead, and the overrides are reported.
    let opts = RunOptions {
        incident: lagging,
        accept_data_loss: ["api", "voice", "database"]
            .iter()
            .map(|s| (s.to_string(), Duration::from_secs(1200)))
            .collect(),
        ..json_opts()
    };
    let (_, console) = run("region-failover.yaml", "region-failover", opts).await;
    let report: Value = serde_json::from_str(&console.stdout()).unwrap();
    assert_eq!(report["outcome"], "succeeded");
    assert_eq!(report["overrides"].as_array().unwrap().len(), 3);

    // The old primary still takes writes: the interlock refuses the promotion…
    let writable = IncidentState {
        writable_primaries: vec!["orders-db".into()],
        ..Default::default()
    };
    let opts = RunOptions {
        incident: writable.clone(),
        ..json_opts()
    };
    let (code, console) = run("region-failover.yaml", "region-failover", opts).await;
    assert_eq!(code, EXIT_FAILED);
    let report: Value = serde_json::from_str(&console.stdout()).unwrap();
    let error = failed_step(&report, "orders-db/promote");
    assert!(error.contains("no-split-brain gate refused"), "{error}");
    assert!(error.contains("may still accept writes"), "{error}");
    // …unless it is waived, which the report records.
    let opts = RunOptions {
        incident: writable,
        waive: vec![dr_core::plan::Interlock::NoSplitBrain],
        ..json_opts()
    };
    let (code, console) = run("region-failover.yaml", "region-failover", opts).await;
    assert_eq!(code, EXIT_OK, "{}", console.stderr());
    assert!(console
        .stdout()
        .contains("interlock `no-split-brain` waived"));

    // The DR region's DNS targets fail their health checks already: the interlock refuses
    // to switch a record to them…
    let unhealthy = IncidentState {
        dns_unhealthy: vec!["us-west-2".into()],
        ..Default::default()
    };
    let opts = RunOptions {
        incident: unhealthy.clone(),
        ..json_opts()
    };
    let (code, console) = run("region-failover.yaml", "region-failover", opts).await;
    assert_eq!(code, EXIT_FAILED);
    let report: Value = serde_json::from_str(&console.stdout()).unwrap();
    let dns_failed: Vec<String> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"] == "switch_dns" && s["status"] == "failed")
        .map(|s| s["error"].as_str().unwrap().to_string())
        .collect();
    assert!(!dns_failed.is_empty(), "{report}");
    for error in &dns_failed {
        assert!(error.contains("healthy-target gate refused"), "{error}");
        assert!(
            error.contains("lb.us-west-2.shop.example.com (unhealthy"),
            "{error}"
        );
    }
    // No record was switched.
    assert!(report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["action"] != "switch_dns" || s["status"] != "succeeded"));
    // …unless it is waived, which the report records.
    let opts = RunOptions {
        incident: unhealthy,
        waive: vec![dr_core::plan::Interlock::HealthyTarget],
        ..json_opts()
    };
    let (_, console) = run("region-failover.yaml", "region-failover", opts).await;
    assert!(console
        .stdout()
        .contains("interlock `healthy-target` waived"));

    // The same state from an incident file (YAML, TOML or JSON), as run-plan --incident reads
    // it.
    let dir = tempfile::tempdir().unwrap();
    for (file, text) in [
        (
            "incident.yaml",
            "lag:\n  shop-prod-west: 20m\nprimary_still_writable: [orders-db]\ndns_unhealthy: [us-west-2]\n",
        ),
        (
            "incident.toml",
            "primary_still_writable = [\"orders-db\"]\ndns_unhealthy = [\"us-west-2\"]\n[lag]\nshop-prod-west = \"20m\"\n",
        ),
        (
            "incident.json",
            r#"{"lag": {"shop-prod-west": "20m"}, "primary_still_writable": ["orders-db"], "dns_unhealthy": ["us-west-2"]}"#,
        ),
    ] {
        let path = dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        let loaded = IncidentState::load(&path).unwrap();
        assert_eq!(
            loaded,
            IncidentState {
                lags: vec![("shop-prod-west".into(), Duration::from_secs(1200))],
                writable_primaries: vec!["orders-db".into()],
                regions_down: vec![],
                dns_unhealthy: vec!["us-west-2".into()],
            },
            "{file}"
        );
    }

    // Names the plan does not have are invalid input, named.
    for (incident, accept, needle) in [
        (
            IncidentState {
                lags: vec![("nope".into(), Duration::from_secs(60))],
                ..Default::default()
            },
            vec![],
            "no replica `nope`",
        ),
        (
            IncidentState {
                regions_down: vec!["mars-1".into()],
                ..Default::default()
            },
            vec![],
            "no region `mars-1`",
        ),
        (
            IncidentState {
                dns_unhealthy: vec!["mars-1".into()],
                ..Default::default()
            },
            vec![],
            "no region `mars-1`",
        ),
        (
            IncidentState::default(),
            vec![("nobody".to_string(), Duration::from_secs(60))],
            "no service `nobody`",
        ),
    ] {
        let opts = RunOptions {
            incident,
            accept_data_loss: accept,
            ..json_opts()
        };
        let (code, console) = run("region-failover.yaml", "region-failover", opts).await;
        assert_eq!(code, EXIT_INVALID, "{needle}");
        assert!(console.stderr().contains(needle), "{}", console.stderr());
    }
}
