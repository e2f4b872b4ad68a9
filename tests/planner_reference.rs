//! The planner's linear forecasts against their straightforward (quadratic) definitions:
//! the critical path walked back through `RecoveryGraph::step`, and each service's
//! data-loss forecast as the worst loss over every service it reaches.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

use dr_core::graph::StepId;
use dr_core::plan::Plan;
use dr_core::planner;
use dr_core::RecoveryGraph;

/// The critical path as first written: the last critical step to finish, then, again and
/// again, the dependency that finishes last.
fn reference_critical_path(graph: &RecoveryGraph) -> (Vec<String>, Duration) {
    let finish = graph.earliest_finish();
    let Some(last) = graph
        .steps
        .iter()
        .filter(|s| s.critical)
        .max_by_key(|s| finish[s.id.as_str()])
    else {
        return (Vec::new(), Duration::ZERO);
    };
    let mut path = vec![last.id.to_string()];
    let mut current = last;
    while let Some(prev) = current
        .depends_on
        .iter()
        .filter_map(|d| graph.step(d))
        .max_by_key(|s| finish[s.id.as_str()])
    {
        path.push(prev.id.to_string());
        current = prev;
    }
    path.reverse();
    (path, finish[last.id.as_str()])
}

/// Services reachable from `name` through `depends_on`, itself included.
fn reach<'a>(plan: &'a Plan, name: &'a str) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![name];
    while let Some(n) = stack.pop() {
        if seen.insert(n) {
            if let Some(s) = plan.service(n) {
                stack.extend(s.depends_on.iter().map(String::as_str));
            }
        }
    }
    seen
}

fn check(plan: &Plan) {
    for sc in &plan.scenarios {
        let graph = planner::plan_nominal(plan, &sc.name).unwrap();
        let (path, total) = reference_critical_path(&graph);
        assert_eq!(graph.critical_path, path, "{}", sc.name);
        assert_eq!(graph.forecast, total, "{}", sc.name);
        assert_eq!(planner::critical_path(&graph), (path, total), "{}", sc.name);
        // A service with a database and no dependencies forecasts exactly its database's
        // loss; every other service the worst over what it reaches.
        let forecast: HashMap<&str, Option<Duration>> = graph
            .services
            .iter()
            .map(|f| (f.name.as_str(), f.forecast_rpo))
            .collect();
        let db_loss: HashMap<&str, Option<Duration>> = plan
            .services
            .iter()
            .filter(|s| s.depends_on.is_empty())
            .filter_map(|s| Some((s.database.as_deref()?, *forecast.get(s.name.as_str())?)))
            .collect();
        for f in &graph.services {
            let expected = reach(plan, &f.name)
                .into_iter()
                .filter_map(|n| plan.service(n)?.database.as_deref())
                .filter_map(|d| db_loss.get(d).copied().flatten())
                .max();
            assert_eq!(f.forecast_rpo, expected, "{}: {}", sc.name, f.name);
        }
    }
}

#[test]
fn the_bundled_plan_matches_the_reference() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/plans/region-failover.yaml"
    );
    check(&Plan::load(path).unwrap());
}

/// `n` services over `n / 5` databases, each owned by a leaf service; the others depend on
/// services both before and after them in declaration order (acyclic: a service depends
/// only on services of lower rank, and the rank scrambles the declaration order).
fn generated(n: usize) -> Plan {
    let rank = |i: usize| (i * 7919) % 100_003;
    let dbs = n / 5;
    let mut s = String::from(
        "name: gen\nregions:\n  - { name: east, role: primary }\n  - { name: west, role: secondary }\ndatabases:\n",
    );
    for d in 0..dbs {
        let backups = if d % 3 == 0 {
            "backups: { every: 4h, copy_to: [west] }"
        } else {
            "replicas: [{ id: x, region: west, expected_lag: 1m }]"
        };
        let backups = backups.replace("id: x", &format!("id: db{d}-west"));
        let _ = writeln!(s, "  - {{ name: db{d}, region: east, {backups} }}");
    }
    s.push_str("services:\n");
    for i in 0..n {
        let line = if i < dbs {
            format!("  - {{ name: s{i}, rto: 300days, rpo: 300days, database: db{i} }}")
        } else {
            let deps: Vec<String> = [i * 7 + 3, i * 13 + 1, i / 2]
                .iter()
                .map(|j| j % n)
                .filter(|&j| j != i && (j < dbs || rank(j) < rank(i)))
                .map(|j| format!("s{j}"))
                .collect();
            let db = if i % 3 == 0 {
                format!(", database: db{}", i % dbs)
            } else {
                String::new()
            };
            format!(
                "  - {{ name: s{i}, rto: 300days, rpo: 300days, depends_on: [{}]{db} }}",
                deps.join(", ")
            )
        };
        let _ = writeln!(s, "{line}");
    }
    s.push_str("scenarios:\n  - { name: failover, kind: region-failover, from: east, to: west }\n  - { name: db-loss, kind: database-failure, database: db0 }\n");
    let plan = Plan::from_yaml_str(&s).unwrap();
    plan.validate().unwrap();
    plan
}

#[test]
fn generated_plans_match_the_reference() {
    for n in [10, 57, 400] {
        check(&generated(n));
    }
}

/// `graph` with every id and dependency made afresh from its text: no two share their text's
/// allocation, so the critical path finds each dependency by its text alone.
fn unshared(graph: &RecoveryGraph) -> RecoveryGraph {
    let mut g = graph.clone();
    for s in &mut g.steps {
        s.id = StepId::from(s.id.as_str());
        s.depends_on = s
            .depends_on
            .iter()
            .map(|d| StepId::from(d.as_str()))
            .collect();
    }
    g
}

/// The critical path finds a dependency by where its text lives when it can, and must give
/// the same answer as by the text: also when an id is used twice, where the last step of
/// the id is the one its dependants wait for.
#[test]
fn the_critical_path_is_the_same_with_shared_and_unshared_ids() {
    let plan = generated(400);
    for sc in &plan.scenarios {
        let mut graph = planner::plan_nominal(&plan, &sc.name).unwrap();
        assert_eq!(
            planner::critical_path(&graph),
            planner::critical_path(&unshared(&graph)),
            "{}",
            sc.name
        );
        // Right after the first step on the critical path, a second step with its id (the
        // text a copy) that takes far longer: the dependants, which hold the first step's id
        // itself, now wait for the second one, and so does the critical path.
        if graph.critical_path.len() < 2 {
            continue;
        }
        let first = graph.critical_path[0].clone();
        let at = graph.steps.iter().position(|s| s.id == first).unwrap();
        let mut twin = graph.steps[at].clone();
        twin.id = StepId::from(first.as_str());
        twin.estimate = Duration::from_secs(1_000_000);
        twin.depends_on.clear();
        graph.steps.insert(at + 1, twin);
        let shared = planner::critical_path(&graph);
        assert_eq!(
            shared,
            planner::critical_path(&unshared(&graph)),
            "{}",
            sc.name
        );
        assert!(shared.1 > Duration::from_secs(1_000_000), "{}", sc.name);
        assert!(shared.0.len() >= 2, "{}", sc.name);
    }
}
