//! Node capacity end to end on the simulated cloud: node groups scaling and failing, pods
//! limited by the nodes that hold them, the region failover scaling node groups before
//! workloads, and the node-group failure (the replacement up first, only NotReady nodes
//! drained, nothing drained when the replacement never comes up), and the plan's checks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use dr_core::executor::{AutoApprove, Executor, RunReport, StepStatus};
use dr_core::plan::{NodeGroup, Plan, PlanError, StandbyScaling};
use dr_core::planner;
use dr_core::provider::{
    ClusterDeployer as _, NodeCapacity as _, NodeGroupRef, NodeGroupState, NodeScaling, Operation,
    WorkloadRef, NODE_GROUP_LABEL,
};
use dr_core::sim::{SimCloud, SimConfig};
use dr_core::simulation::Simulation;
use dr_core::Error;

fn bundled() -> Plan {
    let path = format!(
        "{}/../examples/plans/region-failover.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    Plan::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

async fn run_on(sim: &Simulation, scenario: &str) -> RunReport {
    let plan = sim.plan().clone();
    let observed = sim.observe().await;
    let graph = planner::plan(&plan, scenario, &observed).unwrap_or_else(|e| panic!("{e}"));
    Executor::new(sim.providers())
        .clock(sim.cloud().clock())
        .approvals(Arc::new(AutoApprove))
        .run(&graph)
        .await
}

fn scaling(min: u32, desired: u32, max: u32) -> NodeScaling {
    NodeScaling { min, desired, max }
}

fn calls_of(sim: &Simulation, op: Operation) -> Vec<String> {
    sim.cloud()
        .calls()
        .iter()
        .filter(|c| c.operation == op && c.outcome.is_ok())
        .map(|c| c.target.clone())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_scaling_update_is_updating_then_active_with_its_nodes_up() {
    let cloud = SimCloud::new(1);
    cloud.add_cluster("k", "east", "lb.east");
    let group = NodeGroupRef::new("k", "general");
    cloud.add_node_group(&group, scaling(1, 1, 5), 10);
    let nodes = cloud.nodes();
    let before = nodes.describe_node_group(&group).await.unwrap();
    assert!(before.is_ready(), "{before:?}");
    assert_eq!(before.ready_nodes, 1);

    nodes
        .scale_node_group(&group, scaling(2, 3, 5))
        .await
        .unwrap();
    let during = nodes.describe_node_group(&group).await.unwrap();
    assert_eq!(during.state, NodeGroupState::Updating);
    assert_eq!(during.ready_nodes, 1, "the new nodes are not up yet");
    assert!(!during.is_ready());
    // A second update while one runs is refused, retryably; the same bounds again are
    // no update at all.
    let err = nodes
        .scale_node_group(&group, scaling(2, 4, 5))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    nodes
        .scale_node_group(&group, scaling(2, 3, 5))
        .await
        .unwrap();

    tokio::time::sleep(cloud.config().node_scaling.get()).await;
    let after = nodes.describe_node_group(&group).await.unwrap();
    assert_eq!(after.state, NodeGroupState::Active);
    assert_eq!((after.ready_nodes, after.scaling), (3, scaling(2, 3, 5)));
    assert!(after.is_ready());

    let err = nodes
        .scale_node_group(&group, scaling(4, 3, 5))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest { .. }), "{err}");
    let missing = NodeGroupRef::new("k", "gpu");
    assert!(nodes
        .describe_node_group(&missing)
        .await
        .unwrap_err()
        .is_not_found());
}

#[tokio::test(start_paused = true)]
async fn a_failed_group_and_a_region_down_leave_no_ready_node() {
    let cloud = SimCloud::new(2);
    cloud.add_cluster("k", "east", "lb.east");
    cloud.add_cluster("w", "west", "lb.west");
    let east = NodeGroupRef::new("k", "general");
    let west = NodeGroupRef::new("w", "general");
    cloud.add_node_group(&east, scaling(3, 3, 3), 10);
    cloud.add_node_group(&west, scaling(2, 2, 4), 10);
    assert!(cloud.fail_node_group(&east));
    assert!(!cloud.fail_node_group(&NodeGroupRef::new("k", "nope")));
    let nodes = cloud.nodes();
    let failed = nodes.describe_node_group(&east).await.unwrap();
    assert_eq!(
        (failed.state, failed.ready_nodes),
        (NodeGroupState::Degraded, 0)
    );
    let listed = cloud
        .cluster()
        .list_nodes("k", NODE_GROUP_LABEL, "general")
        .await
        .unwrap();
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().all(|n| !n.ready), "{listed:?}");

    cloud.fail_region("west");
    let down = nodes.describe_node_group(&west).await.unwrap();
    assert_eq!(
        (down.state, down.ready_nodes),
        (NodeGroupState::Degraded, 0)
    );
    let refused = nodes.scale_node_group(&west, scaling(2, 3, 4)).await;
    assert!(
        matches!(refused, Err(Error::Unavailable { .. })),
        "{refused:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn workloads_do_not_become_ready_beyond_what_the_nodes_hold() {
    let cloud = SimCloud::new(3);
    cloud.add_cluster("k", "west", "lb.west");
    let group = NodeGroupRef::new("k", "general");
    cloud.add_node_group(&group, scaling(1, 1, 4), 2);
    let api = WorkloadRef::deployment("k", "shop", "api");
    cloud.add_workload(&api, 1);
    let k8s = cloud.cluster();
    k8s.scale(&api, 4).await.unwrap();
    tokio::time::sleep(Duration::from_secs(600)).await;
    let short = k8s.rollout_status(&api).await.unwrap();
    assert_eq!(
        (short.replicas, short.available_replicas),
        (4, 2),
        "one node of two pods"
    );
    assert!(k8s.wait_ready(&api, Duration::from_secs(60)).await.is_err());

    cloud
        .nodes()
        .scale_node_group(&group, scaling(2, 2, 4))
        .await
        .unwrap();
    let status = k8s
        .wait_ready(&api, Duration::from_secs(900))
        .await
        .unwrap();
    assert_eq!(status.available_replicas, 4);
    // Without node groups a cluster has no such limit.
    let other = WorkloadRef::deployment("free", "shop", "api");
    cloud.add_workload(&other, 0);
    k8s.scale(&other, 50).await.unwrap();
    assert_eq!(
        k8s.wait_ready(&other, Duration::from_secs(300))
            .await
            .unwrap()
            .available_replicas,
        50
    );
}

#[tokio::test(start_paused = true)]
async fn the_region_failover_scales_the_dr_node_groups_before_the_workloads() {
    let plan = bundled();
    let sim = Simulation::new(&plan, 11, SimConfig::default());
    let dr = NodeGroupRef::new("dr-west", "general");
    let standby = sim.cloud().nodes().describe_node_group(&dr).await.unwrap();
    assert_eq!(standby.scaling, scaling(1, 1, 6), "pilot light");
    sim.inject(plan.scenario("region-failover").unwrap()).await;
    let report = run_on(&sim, "region-failover").await;
    assert!(report.succeeded(), "{report}");
    let at = |id: &str| report.step(id).and_then(|s| s.finished_at).unwrap();
    let start = |id: &str| report.step(id).and_then(|s| s.started_at).unwrap();
    for w in ["api/scale:api", "voice/scale:voice"] {
        assert!(at("nodes:dr-west/general/wait") <= start(w), "{w}");
    }
    // The static assets' standby runs at full size: no new node to wait for.
    let stat = report.step("static-assets/scale:static").unwrap();
    assert!(!stat
        .depends_on
        .contains(&"nodes:dr-west/general/wait".to_string()));
    let after = sim.cloud().nodes().describe_node_group(&dr).await.unwrap();
    assert!(after.is_ready());
    assert_eq!(after.scaling, scaling(3, 3, 6));
    // The spare of the home cluster is no part of a failover.
    assert!(report.step("nodes:prod-east/general-b/scale").is_none());
}

#[tokio::test(start_paused = true)]
async fn without_the_node_scaling_the_dr_cluster_cannot_hold_the_workloads() {
    // The same failover with the node groups' steps taken out: the workloads stay short.
    let plan = bundled();
    let sim = Simulation::new(&plan, 11, SimConfig::default());
    sim.inject(plan.scenario("region-failover").unwrap()).await;
    let api = WorkloadRef::deployment("dr-west", "shop", "api");
    let voice = WorkloadRef::deployment("dr-west", "shop", "voice");
    let k8s = sim.cloud().cluster();
    k8s.scale(&api, 3).await.unwrap();
    k8s.scale(&voice, 2).await.unwrap();
    // One standby node of three pods: the API takes them all, the voice service none.
    let err = k8s
        .wait_ready(&voice, Duration::from_secs(600))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_node_group_failure_scales_the_replacement_then_drains_the_failed_nodes() {
    let plan = bundled();
    let sim = Simulation::new(&plan, 11, SimConfig::default());
    let spare = NodeGroupRef::new("prod-east", "general-b");
    let before = sim
        .cloud()
        .nodes()
        .describe_node_group(&spare)
        .await
        .unwrap();
    assert_eq!(before.scaling.desired, 0, "a spare stands by at zero nodes");
    sim.inject(plan.scenario("node-group-failure").unwrap())
        .await;
    let report = run_on(&sim, "node-group-failure").await;
    assert!(report.succeeded() && report.targets_met(), "{report}");
    let at = |id: &str| report.step(id).and_then(|s| s.finished_at).unwrap();
    let start = |id: &str| report.step(id).and_then(|s| s.started_at).unwrap();
    assert!(at("nodes:prod-east/general-b/wait") <= start("nodes:prod-east/general/drain"));
    assert!(at("nodes:prod-east/general/drain") <= start("api/wait:api"));
    assert_eq!(
        report.step("api/verify").map(|s| s.status),
        Some(StepStatus::Succeeded)
    );
    let drained = calls_of(&sim, Operation::DrainNode);
    assert_eq!(
        drained.len(),
        3,
        "every node of the group failed: {drained:?}"
    );
    let output = report
        .step("nodes:prod-east/general/drain")
        .and_then(|s| s.output.clone())
        .unwrap();
    assert_eq!(output["evicted"].as_array().unwrap().len(), 7, "{output}");
    let ready = sim
        .cloud()
        .nodes()
        .describe_node_group(&spare)
        .await
        .unwrap();
    assert!(ready.is_ready(), "{ready:?}");
}

#[tokio::test(start_paused = true)]
async fn a_node_that_is_still_ready_is_not_drained() {
    let plan = bundled();
    let sim = Simulation::new(&plan, 11, SimConfig::default());
    let general = NodeGroupRef::new("prod-east", "general");
    // Two of the three nodes fail; the third still serves its pod.
    assert!(sim.cloud().fail_nodes(&general, 2));
    let k8s = sim.cloud().cluster();
    let listed = k8s
        .list_nodes("prod-east", NODE_GROUP_LABEL, "general")
        .await
        .unwrap();
    let serving: Vec<_> = listed.iter().filter(|n| n.ready).collect();
    assert_eq!(serving.len(), 1, "{listed:?}");
    let serving = serving[0].clone();
    assert!(!serving.pods.is_empty(), "{serving:?}");

    let report = run_on(&sim, "node-group-failure").await;
    assert!(report.succeeded(), "{report}");
    let drained = calls_of(&sim, Operation::DrainNode);
    let cordoned = calls_of(&sim, Operation::CordonNode);
    assert_eq!(drained.len(), 2, "{drained:?}");
    assert_eq!(cordoned.len(), 2, "{cordoned:?}");
    assert!(
        !drained.iter().any(|t| t.ends_with(&serving.name)),
        "{drained:?}"
    );
    let output = report
        .step("nodes:prod-east/general/drain")
        .and_then(|s| s.output.clone())
        .unwrap();
    assert_eq!(output["left_serving"], serde_json::json!([serving.name]));
    let after = k8s
        .list_nodes("prod-east", NODE_GROUP_LABEL, "general")
        .await
        .unwrap();
    let still = after.iter().find(|n| n.name == serving.name).unwrap();
    assert!(still.ready && !still.unschedulable, "{still:?}");
    assert!(
        serving.pods.iter().all(|p| still.pods.contains(p)),
        "its pods stay where they are: {still:?}"
    );
    assert!(after
        .iter()
        .filter(|n| !n.ready)
        .all(|n| n.unschedulable && n.pods.is_empty()));
}

#[tokio::test(start_paused = true)]
async fn a_replacement_that_never_becomes_ready_drains_nothing() {
    let plan = bundled();
    let sim = Simulation::new(&plan, 11, SimConfig::default());
    sim.inject(plan.scenario("node-group-failure").unwrap())
        .await;
    // The spare's nodes never come up (no capacity of its instance type).
    assert!(sim
        .cloud()
        .fail_node_group(&NodeGroupRef::new("prod-east", "general-b")));
    let report = run_on(&sim, "node-group-failure").await;
    assert!(!report.succeeded(), "{report}");
    let wait = report.step("nodes:prod-east/general-b/wait").unwrap();
    assert_eq!(wait.status, StepStatus::Failed);
    let error = wait.error.clone().unwrap_or_default();
    assert!(error.contains("prod-east/general-b"), "{error}");
    assert_ne!(
        report
            .step("nodes:prod-east/general/drain")
            .map(|s| s.status),
        Some(StepStatus::Succeeded)
    );
    assert!(calls_of(&sim, Operation::CordonNode).is_empty());
    assert!(calls_of(&sim, Operation::DrainNode).is_empty());
    assert!(
        report.to_string().contains("prod-east/general-b"),
        "{report}"
    );
}

fn with_groups(groups: &str, scenario: &str) -> Result<Plan, PlanError> {
    let text = format!(
        "name: shop\nregions: [{{ name: east, role: primary }}]\nservices: []\n\
         clusters:\n  - name: k\n    region: east\n    ingress: lb.east\n    node_groups:\n{groups}\
         scenarios:\n{scenario}"
    );
    let plan = Plan::from_yaml_str(&text)?;
    plan.validate().map(|()| plan)
}

fn problems(err: PlanError) -> Vec<(String, String)> {
    match err {
        PlanError::Invalid { problems, .. } => {
            problems.into_iter().map(|p| (p.path, p.message)).collect()
        }
        other => panic!("not a validation error: {other}"),
    }
}

#[test]
fn node_groups_are_validated_naming_the_field() {
    let groups = "      - { name: a, min: 3, desired: 2, max: 4 }\n\
                  \x20     - { name: b, min: 1, desired: 5, max: 4 }\n\
                  \x20     - { name: c, min: 1, desired: 2, max: 4, standby: { min: 2, desired: 1 } }\n\
                  \x20     - { name: d, min: 1, desired: 2, max: 4, standby: { min: 0, desired: 3 } }\n\
                  \x20     - { name: d, min: 1, desired: 1, max: 1 }\n";
    let p = problems(with_groups(groups, "  []\n").unwrap_err());
    let has = |path: &str, words: &str| {
        assert!(
            p.iter().any(|(at, m)| at == path && m.contains(words)),
            "{path}: {words}: {p:?}"
        )
    };
    has("clusters[k].node_groups[a].min", "above desired");
    has("clusters[k].node_groups[b].desired", "above max");
    has(
        "clusters[k].node_groups[c].standby.min",
        "above standby desired",
    );
    has(
        "clusters[k].node_groups[d].standby.desired",
        "above desired",
    );
    has("clusters[k].node_groups[d]", "duplicate name");
}

#[test]
fn a_node_group_failure_names_groups_of_its_cluster() {
    let groups = "      - { name: general, min: 1, desired: 2, max: 4 }\n";
    let p = problems(
        with_groups(
            groups,
            "  - { name: x, kind: node-group-failure, cluster: k, node_group: gneral, replacement: general }\n",
        )
        .unwrap_err(),
    );
    assert!(
        p.iter().any(|(at, m)| at == "scenarios[x].node_group"
            && m.contains("no node group `gneral`")
            && m.contains("general")),
        "{p:?}"
    );
    let p = problems(
        with_groups(
            groups,
            "  - { name: x, kind: node-group-failure, cluster: k, node_group: general, replacement: general }\n",
        )
        .unwrap_err(),
    );
    assert!(
        p.iter()
            .any(|(at, m)| at == "scenarios[x].replacement" && m.contains("cannot replace itself")),
        "{p:?}"
    );
    let p = problems(
        with_groups(
            groups,
            "  - { name: x, kind: node-group-failure, cluster: nope, node_group: a, replacement: b }\n",
        )
        .unwrap_err(),
    );
    assert!(
        p.iter().any(|(at, _)| at == "scenarios[x].cluster"),
        "{p:?}"
    );
    // A missing parameter is a parse error.
    let err = with_groups(
        groups,
        "  - { name: x, kind: node-group-failure, cluster: k, node_group: general }\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("missing field `replacement`"), "{err}");
}

#[test]
fn node_groups_round_trip_through_json_and_toml() {
    let plan = bundled();
    let json = serde_json::to_string(&plan).unwrap();
    let back = Plan::parse(&json, dr_core::plan::Format::Json, "plan.json").unwrap();
    assert_eq!(back.clusters, plan.clusters);
    let text = toml_text(&plan);
    let back = Plan::parse(&text, dr_core::plan::Format::Toml, "plan.toml").unwrap();
    assert_eq!(back.clusters, plan.clusters);
    let mut g = NodeGroup::new("general", 3);
    g.standby = Some(StandbyScaling { min: 0, desired: 1 });
    assert_eq!(g.standing_by(), scaling(0, 1, 3));
    assert_eq!(g.label(), NODE_GROUP_LABEL);
}

fn toml_text(plan: &Plan) -> String {
    toml::to_string(plan).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_drill_never_scales_cordons_or_drains_production_nodes() {
    use dr_core::drill::{Production, ProductionGuard};
    let plan = bundled();
    let sim = Simulation::new(&plan, 5, SimConfig::default());
    let guarded = sim
        .providers()
        .layer(Arc::new(ProductionGuard::new(Production::of(&plan))));
    let group = NodeGroupRef::new("dr-west", "general");
    let nodes = guarded.nodes("dr-west").unwrap();
    let err = nodes
        .scale_node_group(&group, scaling(3, 3, 6))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err}");
    let cluster = guarded.cluster("prod-east").unwrap();
    let node = "prod-east-general-0";
    for err in [
        cluster.cordon_node("prod-east", node).await.unwrap_err(),
        cluster.drain_node("prod-east", node).await.unwrap_err(),
    ] {
        assert!(matches!(err, Error::Unauthorized { .. }), "{err}");
    }
    // Reads pass, and nothing changed.
    assert_eq!(
        nodes.describe_node_group(&group).await.unwrap().scaling,
        scaling(1, 1, 6)
    );
    let listed = cluster
        .list_nodes("prod-east", NODE_GROUP_LABEL, "general")
        .await
        .unwrap();
    assert!(listed.iter().all(|n| n.ready && !n.unschedulable));
}
