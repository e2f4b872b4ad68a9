//! The edge of a region failover on the simulated cloud: the CDN origin switched and
//! deployed, the load balancer's targets moved (never deregistering the old ones before the
//! new ones are healthy), a concurrent CDN change read and written again, a crash between
//! the origin switch and the wait resumed without a second write, the failback moving both
//! home, and the plan's `cdn:` and `load_balancers:` sections validated.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use dr_core::executor::{AutoApprove, Executor, RunReport, StepStatus};
use dr_core::plan::{Plan, PlanBuilder, RegionRole, Scenario, Service};
use dr_core::planner;
use dr_core::provider::{
    CdnOrigin as _, LbTarget, LoadBalancer as _, Operation, TargetState, WorkloadKind, WorkloadRef,
};
use dr_core::sim::{FaultConfig, SimCloud, SimConfig, SimOutcome};
use dr_core::simulation::Simulation;
use dr_core::{RecoveryGraph, Retry};

const DISTRIBUTION: &str = "E2QWRUHAPOMQZL";
const GROUP: &str = "shop-api";
const WEST_ORIGIN: &str = "lb.us-west-2.shop.example.com";
const EAST_ORIGIN: &str = "lb.us-east-1.shop.example.com";

fn bundled(name: &str) -> Plan {
    let path = format!("{}/../examples/plans/{name}", env!("CARGO_MANIFEST_DIR"));
    Plan::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn targets(prefix: &str) -> Vec<LbTarget> {
    (10..13)
        .map(|i| LbTarget::parse(&format!("{prefix}.{i}:8080")).unwrap())
        .collect()
}

async fn setup(plan: &Plan, scenario: &str, config: SimConfig) -> (Simulation, RecoveryGraph) {
    let sim = Simulation::new(plan, 21, config);
    sim.inject(plan.scenario(scenario).unwrap()).await;
    let observed = sim.observe().await;
    let graph = planner::plan(plan, scenario, &observed).unwrap_or_else(|e| panic!("{e}"));
    (sim, graph)
}

fn executor(sim: &Simulation) -> Executor {
    Executor::new(sim.providers())
        .clock(sim.cloud().clock())
        .approvals(Arc::new(AutoApprove))
}

async fn failover(config: SimConfig, before: impl FnOnce(&SimCloud)) -> (Simulation, RunReport) {
    let plan = bundled("region-failover.yaml");
    let (sim, graph) = setup(&plan, "region-failover", config).await;
    before(sim.cloud());
    let report = executor(&sim).run(&graph).await;
    (sim, report)
}

/// The state of each of `wanted` in the group now (`None`: not registered at all).
fn states(cloud: &SimCloud, wanted: &[LbTarget]) -> Vec<Option<TargetState>> {
    let now = cloud.targets(GROUP).expect("the target group");
    wanted
        .iter()
        .map(|t| now.iter().find(|h| h.target == *t).map(|h| h.state))
        .collect()
}

fn effects(cloud: &SimCloud, op: Operation) -> usize {
    cloud
        .calls()
        .iter()
        .filter(|c| c.took_effect && c.operation == op)
        .count()
}

#[tokio::test(start_paused = true)]
async fn the_region_failover_moves_the_targets_and_switches_the_origin() {
    let (sim, report) = failover(SimConfig::default(), |_| {}).await;
    assert!(report.succeeded(), "{report}");
    let cloud = sim.cloud();

    let d = cloud.distribution(DISTRIBUTION).unwrap();
    assert_eq!(d.origin, WEST_ORIGIN);
    assert!(d.deployed, "{d:?}");
    assert_eq!(
        states(cloud, &targets("10.2.0")),
        vec![Some(TargetState::Healthy); 3]
    );
    // The failed region's targets left (draining, or gone once drained).
    for s in states(cloud, &targets("10.1.0")) {
        assert!(matches!(s, None | Some(TargetState::Draining)), "{s:?}");
    }

    // In order: workloads ready, then the targets moved, then the origin switched, then
    // deployed, then verified.
    let at = |id: &str| {
        let s = report
            .step(id)
            .unwrap_or_else(|| panic!("no step {id}: {report}"));
        assert_eq!(s.status, StepStatus::Succeeded, "{id}");
        (s.started_at.unwrap(), s.finished_at.unwrap())
    };
    assert!(at("api/wait:api").1 <= at("api/targets:api-targets").0);
    assert!(at("api/targets:api-targets").1 <= at("api/verify").0);
    assert!(at("static-assets/wait:static").1 <= at("static-assets/origin:static-site").0);
    assert!(at("static-assets/origin:static-site").1 <= at("static-assets/deployed:static-site").0);
    assert!(at("static-assets/deployed:static-site").1 <= at("static-assets/verify").0);

    // The old targets were deregistered only after a health read saw every new one healthy.
    let calls = cloud.calls();
    let register = calls
        .iter()
        .position(|c| c.operation == Operation::RegisterTargets && c.took_effect)
        .unwrap();
    let deregister = calls
        .iter()
        .position(|c| c.operation == Operation::DeregisterTargets && c.took_effect)
        .unwrap();
    assert!(register < deregister);
    assert!(calls[deregister].target.contains("10.1.0.10:8080"));
    assert!(!calls[deregister].target.contains("10.2.0"));
    assert_eq!(effects(cloud, Operation::SetOrigin), 1);
}

#[tokio::test(start_paused = true)]
async fn dr_targets_that_never_become_healthy_keep_the_old_ones_and_fail_naming_the_group() {
    // Nothing answers the DR targets' health checks (they point at a port nothing listens
    // on): the move waits, gives up, and leaves the old targets registered.
    let (sim, report) = failover(SimConfig::default(), |cloud| {
        for t in targets("10.2.0") {
            let nothing = WorkloadRef {
                cluster: "dr-west".into(),
                namespace: "shop".into(),
                kind: WorkloadKind::Deployment,
                name: "not-deployed".into(),
            };
            cloud.bind_target(GROUP, &t.id, "us-west-2", vec![nothing]);
        }
    })
    .await;
    assert!(!report.succeeded(), "{report}");
    let step = report.step("api/targets:api-targets").unwrap();
    assert_eq!(step.status, StepStatus::Failed, "{report}");
    let error = step.error.as_deref().unwrap_or_default();
    assert!(error.contains("target group shop-api"), "{error}");
    assert!(error.contains("unhealthy"), "{error}");
    assert!(report.to_string().contains("shop-api"), "{report}");

    let cloud = sim.cloud();
    assert_eq!(effects(cloud, Operation::DeregisterTargets), 0);
    // Still registered (their region is down, so they fail their checks, but they are there
    // to take traffic again).
    for s in states(cloud, &targets("10.1.0")) {
        assert_eq!(s, Some(TargetState::Unhealthy));
    }
    assert_eq!(
        states(cloud, &targets("10.2.0")),
        vec![Some(TargetState::Unhealthy); 3]
    );
    assert!(report
        .step("api/verify")
        .is_none_or(|s| s.status != StepStatus::Succeeded));
}

#[tokio::test(start_paused = true)]
async fn a_concurrent_cdn_change_is_read_and_written_again() {
    let (sim, report) = failover(SimConfig::default(), |cloud| {
        cloud.change_distribution_concurrently(DISTRIBUTION, 2);
    })
    .await;
    assert!(report.succeeded(), "{report}");
    let cloud = sim.cloud();
    let outcomes: Vec<SimOutcome> = cloud
        .calls()
        .into_iter()
        .filter(|c| c.operation == Operation::SetOrigin)
        .map(|c| c.outcome)
        .collect();
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    for lost in &outcomes[..2] {
        match lost {
            SimOutcome::Err { retry, message } => {
                assert_eq!(*retry, Retry::Permanent);
                assert!(
                    message.contains("precondition") || message.contains("version"),
                    "{message}"
                );
            }
            ok => panic!("expected a lost write, got {ok:?}"),
        }
    }
    assert!(outcomes[2].is_ok());
    // Each write was preceded by its own read.
    let ops: Vec<Operation> = cloud
        .calls()
        .into_iter()
        .filter(|c| c.provider_role == "cdn")
        .map(|c| c.operation)
        .collect();
    for (i, op) in ops.iter().enumerate() {
        if *op == Operation::SetOrigin {
            assert_eq!(ops[i - 1], Operation::DescribeDistribution, "{ops:?}");
        }
    }
    let d = cloud.distribution(DISTRIBUTION).unwrap();
    assert_eq!(d.origin, WEST_ORIGIN);
    assert!(d.deployed);
}

#[tokio::test(start_paused = true)]
async fn a_distribution_that_keeps_changing_fails_the_switch_without_overwriting() {
    let (sim, report) = failover(SimConfig::default(), |cloud| {
        cloud.change_distribution_concurrently(DISTRIBUTION, 1000);
    })
    .await;
    assert!(!report.succeeded(), "{report}");
    let step = report.step("static-assets/origin:static-site").unwrap();
    assert_eq!(step.status, StepStatus::Failed);
    assert!(
        step.error
            .as_deref()
            .unwrap_or_default()
            .contains(DISTRIBUTION),
        "{report}"
    );
    assert_eq!(effects(sim.cloud(), Operation::SetOrigin), 0);
    assert_eq!(
        sim.cloud().distribution(DISTRIBUTION).unwrap().origin,
        EAST_ORIGIN
    );
}

#[cfg(feature = "testkit")]
#[tokio::test(start_paused = true)]
async fn a_crash_between_set_origin_and_wait_distribution_does_not_set_it_twice() {
    use dr_core::journal::Record;
    use dr_core::testkit::journal::{crash_after_trip, Tripwire};

    let plan = bundled("region-failover.yaml");
    let (sim, graph) = setup(&plan, "region-failover", SimConfig::default()).await;
    let switch = "static-assets/origin:static-site";
    // The origin is written right after the switch's intent is journaled, then the process
    // dies before its outcome is.
    let wire = Arc::new(Tripwire::when(
        move |r| matches!(r, Record::Intent { step, .. } if step == switch),
    ));
    let first = executor(&sim).journal(wire.clone());
    assert!(crash_after_trip(&first, &graph, &wire, Duration::from_secs(120)).await);
    drop(first);
    assert_eq!(effects(sim.cloud(), Operation::SetOrigin), 1);
    assert_eq!(
        sim.cloud().distribution(DISTRIBUTION).unwrap().origin,
        WEST_ORIGIN
    );

    let report = executor(&sim)
        .journal(wire.survivor())
        .resume(&graph)
        .await
        .unwrap();
    assert!(report.succeeded(), "{report}");
    assert!(report.resumed);
    assert!(report.step(switch).unwrap().already_done, "{report}");
    assert_eq!(
        effects(sim.cloud(), Operation::SetOrigin),
        1,
        "the origin was set twice"
    );
    let wait = report.step("static-assets/deployed:static-site").unwrap();
    assert_eq!(wait.status, StepStatus::Succeeded);
    assert!(sim.cloud().distribution(DISTRIBUTION).unwrap().deployed);
}

#[tokio::test(start_paused = true)]
async fn the_failback_moves_the_targets_and_the_origin_home() {
    let plan = bundled("failback.yaml");
    let (sim, graph) = setup(&plan, "failback", SimConfig::default()).await;
    let cloud = sim.cloud();
    assert_eq!(
        cloud.distribution(DISTRIBUTION).unwrap().origin,
        WEST_ORIGIN
    );
    assert_eq!(
        states(cloud, &targets("10.1.0")),
        vec![None; 3],
        "before: only the DR targets"
    );
    let report = executor(&sim).run(&graph).await;
    assert!(report.succeeded(), "{report}");
    let d = cloud.distribution(DISTRIBUTION).unwrap();
    assert_eq!(d.origin, EAST_ORIGIN);
    assert!(d.deployed);
    assert_eq!(
        states(cloud, &targets("10.1.0")),
        vec![Some(TargetState::Healthy); 3]
    );
    for s in states(cloud, &targets("10.2.0")) {
        assert!(matches!(s, None | Some(TargetState::Draining)), "{s:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn compensation_registers_the_old_targets_again_and_switches_the_origin_back() {
    let mut plan = bundled("region-failover.yaml");
    for sc in &mut plan.scenarios {
        sc.compensate_on_failure = true;
        sc.approval = false;
    }
    let (sim, graph) = setup(&plan, "region-failover", SimConfig::default()).await;
    // The API's health never comes back: after the edge moved, verify fails and the run
    // undoes what it did.
    sim.cloud().set_endpoint_health(
        "https://api.shop.example.com/health",
        dr_core::provider::HealthStatus::Unhealthy,
    );
    let report = executor(&sim).run(&graph).await;
    assert!(!report.succeeded(), "{report}");
    let cloud = sim.cloud();
    let compensated: Vec<&str> = report
        .compensated
        .iter()
        .filter(|c| c.compensated)
        .map(|c| c.step.as_str())
        .collect();
    assert!(compensated.contains(&"api/targets:api-targets"), "{report}");
    // The old targets are registered again (their region is down: unhealthy, but there).
    for s in states(cloud, &targets("10.1.0")) {
        assert!(
            matches!(s, Some(TargetState::Initial | TargetState::Unhealthy)),
            "{s:?}"
        );
    }
    if compensated.contains(&"static-assets/origin:static-site") {
        assert_eq!(
            cloud.distribution(DISTRIBUTION).unwrap().origin,
            EAST_ORIGIN
        );
    }
}

// ---- the simulated services themselves ----

#[tokio::test(start_paused = true)]
async fn a_distribution_change_is_deployed_after_the_configured_time() {
    let cloud = SimCloud::with_config(1, SimConfig::default().with_latency(Duration::ZERO));
    cloud.add_distribution("E1", "east.example.com");
    let cdn = cloud.cdn();
    let d = cdn.describe_distribution("E1").await.unwrap();
    assert!(d.deployed);
    let after = cdn.set_origin("E1", "west.example.com").await.unwrap();
    assert_eq!(after.origin, "west.example.com");
    assert!(!after.deployed);
    assert_ne!(after.version, d.version);
    // Setting it again changes nothing, not even the version.
    let again = cdn.set_origin("E1", "west.example.com").await.unwrap();
    assert_eq!(again.version, after.version);
    tokio::time::sleep(cloud.config().cdn_deploy.get() - Duration::from_secs(1)).await;
    assert!(!cdn.describe_distribution("E1").await.unwrap().deployed);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(cdn.describe_distribution("E1").await.unwrap().deployed);
    let missing = cdn.describe_distribution("E404").await.unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
    assert!(cdn.set_origin("E1", " ").await.is_err());
}

#[tokio::test(start_paused = true)]
async fn targets_pass_health_checks_only_while_their_region_and_workloads_serve() {
    let cloud = SimCloud::with_config(1, SimConfig::default().with_latency(Duration::ZERO));
    let api = WorkloadRef {
        cluster: "west".into(),
        namespace: "shop".into(),
        kind: WorkloadKind::Deployment,
        name: "api".into(),
    };
    cloud.add_cluster("west", "us-west-2", "lb.west.example.com");
    cloud.add_workload(&api, 0);
    cloud.add_target_group("tg");
    let t = LbTarget::parse("10.2.0.10:8080").unwrap();
    cloud.bind_target("tg", &t.id, "us-west-2", vec![api.clone()]);
    let lb = cloud.load_balancer();
    lb.register_targets("tg", std::slice::from_ref(&t))
        .await
        .unwrap();
    let state = |h: Vec<dr_core::provider::TargetHealth>| h[0].state;
    assert_eq!(
        state(lb.target_health("tg").await.unwrap()),
        TargetState::Initial
    );
    let checks = cloud.config().lb_health_check.get();
    tokio::time::sleep(checks).await;
    // No pod answers yet.
    assert_eq!(
        state(lb.target_health("tg").await.unwrap()),
        TargetState::Unhealthy
    );
    cloud.add_workload(&api, 2);
    tokio::time::sleep(cloud.config().rollout.get()).await;
    assert_eq!(
        state(lb.target_health("tg").await.unwrap()),
        TargetState::Healthy
    );
    cloud.fail_region("us-west-2");
    assert_eq!(
        state(lb.target_health("tg").await.unwrap()),
        TargetState::Unhealthy
    );
    cloud.recover_region("us-west-2");
    // Registering again changes nothing: it stays healthy.
    lb.register_targets("tg", std::slice::from_ref(&t))
        .await
        .unwrap();
    assert_eq!(
        state(lb.target_health("tg").await.unwrap()),
        TargetState::Healthy
    );
    lb.deregister_targets("tg", std::slice::from_ref(&t))
        .await
        .unwrap();
    assert_eq!(
        state(lb.target_health("tg").await.unwrap()),
        TargetState::Draining
    );
    tokio::time::sleep(cloud.config().lb_drain.get()).await;
    assert!(lb.target_health("tg").await.unwrap().is_empty());
    // Deregistering what is not registered is no error; an unknown group is.
    lb.deregister_targets("tg", std::slice::from_ref(&t))
        .await
        .unwrap();
    assert!(lb.target_health("nope").await.unwrap_err().is_not_found());
}

#[tokio::test(start_paused = true)]
async fn edge_calls_take_injected_faults_and_the_state_survives_a_save() {
    let faulty = SimConfig::default()
        .with_latency(Duration::ZERO)
        .with_faults(FaultConfig::default().with_rate(1.0));
    let cloud = SimCloud::with_config(3, faulty);
    cloud.add_distribution("E1", "east.example.com");
    cloud.add_target_group("tg");
    let e = cloud
        .cdn()
        .set_origin("E1", "west.example.com")
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert!(cloud.load_balancer().target_health("tg").await.is_err());
    assert_eq!(cloud.distribution("E1").unwrap().origin, "east.example.com");

    let cloud = SimCloud::with_config(3, SimConfig::default().with_latency(Duration::ZERO));
    cloud.add_distribution("E1", "east.example.com");
    cloud.add_registered_targets("tg", &targets("10.1.0"));
    cloud
        .cdn()
        .set_origin("E1", "west.example.com")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cloud.cbor");
    cloud.save(&file).unwrap();
    let back = SimCloud::load(&file, SimConfig::default()).unwrap();
    assert_eq!(back.distribution("E1"), cloud.distribution("E1"));
    assert_eq!(back.targets("tg"), cloud.targets("tg"));
}

// ---- the plan ----

const PLAN: &str = r#"
name: shop
regions:
  - { name: east, role: primary }
  - { name: west, role: secondary }
clusters:
  - { name: k-east, region: east, ingress: lb.east.example.com, workloads: [{ name: web, namespace: shop, replicas: 2 }] }
  - { name: k-west, region: west, ingress: lb.west.example.com, workloads: [{ name: web, namespace: shop, replicas: 2 }] }
cdn:
  - { name: site, distribution: E1, origins: { east: lb.east.example.com, west: lb.west.example.com } }
load_balancers:
  - { name: web-targets, target_group: tg-web, targets: { east: ["10.1.0.10:8080"], west: ["10.2.0.10:8080"] } }
services:
  - { name: web, rto: 30m, rpo: 1h, workloads: [web], cdn: [site], load_balancers: [web-targets] }
scenarios:
  - { name: failover, kind: region-failover, from: east, to: west }
"#;

fn problems(text: &str) -> String {
    match Plan::from_yaml_str(text) {
        Ok(plan) => match plan.validate() {
            Ok(()) => String::new(),
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_edge_sections_parse_validate_and_round_trip() {
    let plan = Plan::from_yaml_str(PLAN).unwrap();
    plan.validate().unwrap();
    assert_eq!(plan.cdn[0].origins["west"], "lb.west.example.com");
    assert_eq!(
        plan.load_balancer("web-targets")
            .unwrap()
            .targets_in("west")
            .unwrap(),
        vec![LbTarget::parse("10.2.0.10:8080").unwrap()]
    );
    let json = serde_json::to_string(&plan).unwrap();
    assert_eq!(Plan::from_json_str(&json).unwrap(), plan);
    let yaml = plan.to_yaml().unwrap();
    assert_eq!(Plan::from_yaml_str(&yaml).unwrap(), plan);
    let toml_text = r#"
name = "shop"
services = []
scenarios = []
[[regions]]
name = "east"
role = "primary"
[[cdn]]
name = "site"
distribution = "E1"
origins = { east = "lb.east.example.com" }
[[load_balancers]]
name = "web"
target_group = "tg-web"
targets = { east = ["10.1.0.10:8080", "i-0abc"] }
"#;
    let t = Plan::from_toml_str(toml_text).unwrap();
    t.validate().unwrap();
    assert_eq!(t.load_balancers[0].targets["east"].len(), 2);
    // A plan without them still parses, and says nothing of them when written.
    let bare = bundled("cache-failure.yaml");
    assert!(bare.cdn.is_empty() && bare.load_balancers.is_empty());
    assert!(!bare.to_yaml().unwrap().contains("load_balancers"));
    // The builder writes the same plan.
    let hour = Duration::from_secs(3600);
    let built = PlanBuilder::new("shop")
        .region("east", RegionRole::Primary)
        .region("west", RegionRole::Secondary)
        .cluster("k-east", "east", "lb.east.example.com")
        .workload("k-east", "web", "shop", 2)
        .cluster("k-west", "west", "lb.west.example.com")
        .workload("k-west", "web", "shop", 2)
        .cdn(
            "site",
            "E1",
            [
                ("east", "lb.east.example.com"),
                ("west", "lb.west.example.com"),
            ],
        )
        .load_balancer(
            "web-targets",
            "tg-web",
            [
                ("east", vec!["10.1.0.10:8080"]),
                ("west", vec!["10.2.0.10:8080"]),
            ],
        )
        .service(
            Service::new("web", hour / 2, hour)
                .workloads(["web"])
                .cdn(["site"])
                .load_balancers(["web-targets"]),
        )
        .scenario(Scenario::region_failover("failover", "east", "west"))
        .build()
        .unwrap();
    assert_eq!(built.cdn, plan.cdn);
    assert_eq!(built.load_balancers, plan.load_balancers);
    assert_eq!(built.services[0].cdn, plan.services[0].cdn);
}

#[test]
fn unknown_edge_references_are_named_with_suggestions() {
    let text = PLAN.replace("cdn: [site]", "cdn: [sitee]").replace(
        "load_balancers: [web-targets]",
        "load_balancers: [web-target]",
    );
    let err = problems(&text);
    assert!(err.contains("services[web].cdn"), "{err}");
    assert!(err.contains("unknown CDN distribution `sitee`"), "{err}");
    assert!(err.contains("did you mean `site`?"), "{err}");
    assert!(err.contains("services[web].load_balancers"), "{err}");
    assert!(err.contains("did you mean `web-targets`?"), "{err}");
}

#[test]
fn bad_targets_unknown_regions_and_missing_regions_are_refused() {
    let bad = PLAN.replace("\"10.2.0.10:8080\"", "\"10.2.0.10:http\"");
    let err = problems(&bad);
    assert!(
        err.contains("load_balancers[web-targets].targets.west"),
        "{err}"
    );
    assert!(err.contains("`10.2.0.10:http`"), "{err}");
    assert!(err.contains("1 to 65535"), "{err}");

    let empty = PLAN.replace("west: [\"10.2.0.10:8080\"]", "west: []");
    let err = problems(&empty);
    assert!(err.contains("no targets listed for region `west`"), "{err}");

    let typo = PLAN.replace("west: lb.west.example.com }", "wset: lb.west.example.com }");
    let err = problems(&typo);
    assert!(err.contains("cdn[site].origins"), "{err}");
    assert!(err.contains("unknown region `wset`"), "{err}");
    // The failover moves the origin to `west`, which the distribution no longer has.
    assert!(err.contains("scenarios[failover].to"), "{err}");
    assert!(
        err.contains("CDN distribution `site` of service `web` has no origin for region `west`"),
        "{err}"
    );

    let no_west = PLAN.replace(", west: [\"10.2.0.10:8080\"]", "");
    let err = problems(&no_west);
    assert!(
        err.contains(
            "load balancer `web-targets` of service `web` has no targets in region `west`"
        ),
        "{err}"
    );

    let limits = format!(
        "{PLAN}limits:\n  targets:\n    cdn: {{ E2: 1 }}\n    load_balancer: {{ tg-web: 1 }}\n"
    );
    let err = problems(&limits);
    assert!(err.contains("limits.targets.cdn.E2"), "{err}");
    assert!(!err.contains("limits.targets.load_balancer"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_plan_built_with_an_edge_fails_over_on_the_simulated_cloud() {
    let plan = Plan::from_yaml_str(PLAN).unwrap();
    let (sim, graph) = setup(&plan, "failover", SimConfig::default()).await;
    let dry = executor(&sim).dry_run(&graph);
    let listed = format!("{dry}");
    assert!(listed.contains("set_origin"), "{listed}");
    assert!(listed.contains("deregister_targets"), "{listed}");
    assert!(executor(&sim).preflight(&graph).is_empty());
    let report = executor(&sim).run(&graph).await;
    assert!(report.succeeded(), "{report}");
    assert_eq!(
        sim.cloud().distribution("E1").unwrap().origin,
        "lb.west.example.com"
    );
    let tg = sim.cloud().targets("tg-web").unwrap();
    let west = LbTarget::parse("10.2.0.10:8080").unwrap();
    assert!(tg
        .iter()
        .any(|h| h.target == west && h.state == TargetState::Healthy));
}

#[tokio::test(start_paused = true)]
async fn a_drill_moves_the_copy_s_edge_and_leaves_production_s_alone() {
    let plan = bundled("region-failover.yaml");
    let sim = Simulation::new(&plan, 9, SimConfig::default());
    let report = dr_core::drill::ScenarioDrill::new(&plan, "region-failover")
        .tag("d1")
        .run_in(&sim)
        .await
        .unwrap();
    assert!(
        report.production_changed.is_empty(),
        "{:?}",
        report.production_changed
    );
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    assert!(report.not_cleaned.is_empty(), "{:?}", report.not_cleaned);
    assert!(report.run.succeeded(), "{}", report.run);
    let cloud = sim.cloud();
    // The copy's distribution and group were switched, then cleaned up.
    assert!(report
        .calls
        .iter()
        .any(|c| c.contains("set_origin") && c.contains("E2QWRUHAPOMQZL-d1")));
    assert!(report
        .cleaned_up
        .iter()
        .any(|c| c == "target group shop-api-d1"));
    assert!(cloud.distribution("E2QWRUHAPOMQZL-d1").is_none());
    assert!(cloud.targets("shop-api-d1").is_none());
    // Production serves as before.
    assert_eq!(
        cloud.distribution(DISTRIBUTION).unwrap().origin,
        EAST_ORIGIN
    );
    assert_eq!(
        states(cloud, &targets("10.1.0")),
        vec![Some(TargetState::Healthy); 3]
    );
}

#[cfg(feature = "testkit")]
#[tokio::test(start_paused = true)]
async fn the_simulated_edge_passes_the_conformance_checks() {
    use dr_core::testkit::edge::{self, CdnFixture, LbFixture};
    let cloud = SimCloud::new(4);
    cloud.add_distribution("E1", "east.example.com");
    cloud.add_target_group("tg");
    let cdn = CdnFixture {
        distribution: "E1".into(),
        origins: ["east.example.com".into(), "west.example.com".into()],
        missing: "E404".into(),
        deadline: Duration::from_secs(3600),
    };
    edge::cdn_run_all(cloud.cdn().as_ref(), &cdn).await.unwrap();
    let lb = LbFixture {
        group: "tg".into(),
        targets: targets("10.9.0"),
        missing: "tg-404".into(),
    };
    edge::lb_run_all(cloud.load_balancer().as_ref(), &lb)
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn lost_replies_and_random_faults_neither_repeat_nor_skip_an_edge_change() {
    use dr_core::sim::FaultRule;
    for seed in 0..8 {
        let faults = FaultConfig::default()
            .with_rate(0.15)
            .with_fail_after_effect(FaultRule::new(Some(Operation::SetOrigin), "").times(1))
            .with_fail_after_effect(
                FaultRule::new(Some(Operation::DeregisterTargets), "").times(1),
            );
        let plan = bundled("region-failover.yaml");
        let sim = Simulation::new(&plan, seed, SimConfig::default().with_faults(faults));
        sim.inject(plan.scenario("region-failover").unwrap()).await;
        let observed = sim.observe().await;
        let graph = planner::plan(&plan, "region-failover", &observed).unwrap();
        let report = executor(&sim).seed(seed).run(&graph).await;
        assert!(report.succeeded(), "seed {seed}: {report}");
        let cloud = sim.cloud();
        for op in [
            Operation::SetOrigin,
            Operation::RegisterTargets,
            Operation::DeregisterTargets,
        ] {
            assert_eq!(effects(cloud, op), 1, "seed {seed}: {op}");
        }
        assert_eq!(
            cloud.distribution(DISTRIBUTION).unwrap().origin,
            WEST_ORIGIN
        );
        assert_eq!(
            states(cloud, &targets("10.2.0")),
            vec![Some(TargetState::Healthy); 3],
            "seed {seed}"
        );
    }
}
