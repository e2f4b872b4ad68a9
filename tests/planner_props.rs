//! Property tests of the planner on random plans: every graph is acyclic with every
//! dependency before its dependant, the critical path is bounded by the sum of estimates and
//! by every single chain, and forecasts are monotone in the estimates.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use dr_core::graph::RecoveryGraph;
use dr_core::plan::{
    Backups, Cluster, Database, DbStrategy, DnsRecordDef, HealthCheckDef, Plan, PlanBuilder,
    RegionRole, Replica, Scenario, SecretBinding, Service, Tier, Workload,
};
use dr_core::planner::{self, ObservedState};
use dr_core::provider::WorkloadKind;
use dr_core::step::BUILTIN_KINDS;
use dr_core::HumanDuration;
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Spec {
    dbs: Vec<(bool, bool)>,     // (has replica, has backups copied west)
    workloads: Vec<(u32, u32)>, // (replicas, standby)
    records: usize,
    services: Vec<SvcSpec>,
    estimates: Vec<(usize, u64)>, // (kind index, seconds)
}

#[derive(Debug, Clone)]
struct SvcSpec {
    tier: u8,
    deps: Vec<usize>, // indexes into earlier services (mod i)
    db: Option<usize>,
    workloads: Vec<usize>,
    records: Vec<usize>,
    check: bool,
}

fn svc_spec() -> impl Strategy<Value = SvcSpec> {
    (
        0u8..4,
        prop::collection::vec(0usize..16, 0..3),
        prop::option::of(0usize..3),
        prop::collection::vec(0usize..5, 0..3),
        prop::collection::vec(0usize..4, 0..2),
        any::<bool>(),
    )
        .prop_map(|(tier, deps, db, workloads, records, check)| SvcSpec {
            tier,
            deps,
            db,
            workloads,
            records,
            check,
        })
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::collection::vec((any::<bool>(), any::<bool>()), 1..3),
        prop::collection::vec((1u32..6, 0u32..3), 1..5),
        1usize..4,
        prop::collection::vec(svc_spec(), 1..8),
        prop::collection::vec((0usize..BUILTIN_KINDS.len(), 1u64..3600), 0..6),
    )
        .prop_map(|(dbs, workloads, records, services, estimates)| Spec {
            dbs,
            workloads,
            records,
            services,
            estimates,
        })
}

fn build(spec: &Spec) -> Plan {
    let day = Duration::from_secs(100 * 3600);
    let mut b = PlanBuilder::new("random")
        .region("east", RegionRole::Primary)
        .region("west", RegionRole::Secondary)
        .store("evidence", "west");
    for (i, &(replica, backups)) in spec.dbs.iter().enumerate() {
        let replica = replica || !backups; // every database recoverable in the DR region
        b = b.database_def(Database {
            name: format!("db{i}"),
            region: "east".into(),
            instance_id: None,
            engine: None,
            multi_az: i % 2 == 0,
            replicas: if replica {
                vec![Replica {
                    id: format!("db{i}-west"),
                    region: "west".into(),
                    expected_lag: HumanDuration::from_secs(30),
                }]
            } else {
                vec![]
            },
            backups: backups.then(|| Backups {
                every: HumanDuration::from_secs(3600),
                copy_to: vec!["west".into(), "east".into()],
                retention: None,
            }),
            pitr: Some(dr_core::plan::Pitr {
                lag: HumanDuration::from_secs(300),
                window: HumanDuration::from_secs(7 * 86400),
            }),
            checks: Vec::new(),
        });
    }
    let mut plan = b.build_unchecked();
    for (name, region) in [("east-k8s", "east"), ("west-k8s", "west")] {
        plan.clusters.push(Cluster {
            name: name.into(),
            region: region.into(),
            ingress: format!("lb.{region}.example.com"),
            workloads: spec
                .workloads
                .iter()
                .enumerate()
                .map(|(i, &(replicas, standby))| Workload {
                    name: format!("w{i}"),
                    namespace: format!("ns{}", i % 2),
                    kind: WorkloadKind::Deployment,
                    replicas,
                    standby_replicas: standby.min(replicas),
                    image: None,
                })
                .collect(),
            node_groups: Vec::new(),
        });
    }
    for r in 0..spec.records {
        plan.dns.push(DnsRecordDef {
            name: format!("r{r}.example.com"),
            zone: "Z1".into(),
            record_type: "CNAME".into(),
            set_id: None,
            targets: BTreeMap::new(),
        });
    }
    plan.health_checks.push(HealthCheckDef {
        name: "hc".into(),
        target: "https://example.com/health".into(),
    });
    for (i, s) in spec.services.iter().enumerate() {
        let mut deps: Vec<String> = if i == 0 {
            vec![]
        } else {
            s.deps.iter().map(|d| format!("s{}", d % i)).collect()
        };
        deps.sort();
        deps.dedup();
        let db = s.db.map(|d| format!("db{}", d % spec.dbs.len()));
        let mut workloads: Vec<String> = s
            .workloads
            .iter()
            .map(|w| format!("w{}", w % spec.workloads.len()))
            .collect();
        workloads.sort();
        workloads.dedup();
        let mut records: Vec<String> = s
            .records
            .iter()
            .map(|r| format!("r{}.example.com", r % spec.records))
            .collect();
        records.sort();
        records.dedup();
        let secret = (db.is_some() && !workloads.is_empty()).then(|| SecretBinding {
            name: format!("s{i}-secret"),
            key: "DATABASE_URL".into(),
            template: None,
        });
        plan.services.push(Service {
            tier: [Tier::Critical, Tier::High, Tier::Medium, Tier::Low][s.tier as usize],
            depends_on: deps,
            database: db,
            workloads,
            dns: records,
            health_check: s.check.then(|| "hc".to_string()),
            secret,
            ..Service::new(format!("s{i}"), day, day)
        });
    }
    for &(k, secs) in &spec.estimates {
        plan.estimates
            .insert(BUILTIN_KINDS[k].to_string(), HumanDuration::from_secs(secs));
    }
    let with_workloads = plan
        .services
        .iter()
        .find(|s| !s.workloads.is_empty())
        .map(|s| s.name.clone());
    plan.scenarios = vec![
        Scenario::region_failover("failover", "east", "west")
            .with_approval()
            .notify("oncall"),
        Scenario::database_failure("db-reboot", "db0", DbStrategy::Reboot),
        Scenario::database_failure("db-auto", "db0", DbStrategy::Auto),
        Scenario::point_in_time_restore("pitr", "db0"),
        Scenario::cluster_rebuild("rebuild", "east-k8s", "west-k8s"),
    ];
    if let Some(s) = with_workloads {
        plan.scenarios.extend([
            Scenario::application_rollback("rollback", &s),
            Scenario::service_restart("restart", &s),
            Scenario::security_isolation("isolate", &s, "evidence"),
        ]);
    }
    plan.notifications.push(dr_core::plan::ChannelDef {
        name: "oncall".into(),
        kind: "log".into(),
    });
    plan
}

fn check_graph(g: &RecoveryGraph) -> Result<(), TestCaseError> {
    // Unique ids, every dependency exists and comes first: a topological order, so acyclic.
    let mut seen = HashSet::new();
    for s in &g.steps {
        for d in &s.depends_on {
            prop_assert!(
                seen.contains(d.as_str()),
                "{} depends on {} which is not before it",
                s.id,
                d
            );
        }
        prop_assert!(seen.insert(s.id.as_str()), "duplicate step id {}", s.id);
    }
    let finish = g.earliest_finish();
    let sum: Duration = g.sequential_estimate();
    prop_assert!(
        g.forecast <= sum,
        "critical path {:?} > sum {:?}",
        g.forecast,
        sum
    );
    // The critical path is a chain whose estimates add up to the forecast.
    let mut total = Duration::ZERO;
    for (i, id) in g.critical_path.iter().enumerate() {
        let step = g
            .step(id)
            .ok_or_else(|| TestCaseError::fail(format!("unknown {id}")))?;
        if i > 0 {
            prop_assert!(
                step.depends_on.iter().any(|d| *d == g.critical_path[i - 1]),
                "critical path is not a chain at {id}"
            );
        }
        total += step.estimate;
    }
    prop_assert_eq!(total, g.forecast);
    // No chain ending in a critical step is longer than the critical path.
    let by_id: HashMap<&str, &dr_core::Step> = g.steps.iter().map(|s| (s.id.as_str(), s)).collect();
    for s in g.steps.iter().filter(|s| s.critical) {
        // Walk back through the longest dependency each time and through the first one:
        // both are chains ending at `s`.
        for pick_first in [false, true] {
            let mut chain = s.estimate;
            let mut cur: &dr_core::Step = s;
            while !cur.depends_on.is_empty() {
                let next = if pick_first {
                    by_id[cur.depends_on[0].as_str()]
                } else {
                    cur.depends_on
                        .iter()
                        .map(|d| by_id[d.as_str()])
                        .max_by_key(|d| finish[d.id.as_str()])
                        .ok_or_else(|| TestCaseError::fail("empty deps"))?
                };
                chain += next.estimate;
                cur = next;
            }
            prop_assert!(
                chain <= g.forecast,
                "chain to {} is {:?} > forecast {:?}",
                s.id,
                chain,
                g.forecast
            );
        }
    }
    for f in &g.services {
        prop_assert!(
            f.forecast_rto <= g.forecast,
            "service {} forecast {:?} > {:?}",
            f.name,
            f.forecast_rto,
            g.forecast
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn graphs_are_ordered_and_critical_paths_bounded(spec in spec()) {
        let plan = build(&spec);
        let observed = ObservedState::nominal(&plan, chrono::DateTime::UNIX_EPOCH);
        for sc in &plan.scenarios {
            let g = planner::plan(&plan, &sc.name, &observed)
                .map_err(|e| TestCaseError::fail(format!("{}: {e}", sc.name)))?;
            check_graph(&g)?;
            // Planning is a pure function.
            prop_assert_eq!(&g, &planner::plan(&plan, &sc.name, &observed).unwrap());
        }
    }

    #[test]
    fn forecasts_are_monotone_in_estimates(spec in spec(), kind in 0..BUILTIN_KINDS.len(), extra in 1u64..7200) {
        let plan = build(&spec);
        let kind = BUILTIN_KINDS[kind];
        let mut slower = plan.clone();
        // Longer than the plan's estimate, or than any kind's default (at most a day).
        let base = plan.estimate(kind, Duration::from_secs(86_400));
        let longer = base + Duration::from_secs(extra);
        slower.estimates.insert(kind.to_string(), longer.into());
        let observed = ObservedState::nominal(&plan, chrono::DateTime::UNIX_EPOCH);
        for sc in &plan.scenarios {
            let fast = planner::plan(&plan, &sc.name, &observed).unwrap();
            let slow = planner::plan(&slower, &sc.name, &observed).unwrap();
            prop_assert!(slow.forecast >= fast.forecast, "{}: {:?} < {:?}", sc.name, slow.forecast, fast.forecast);
            for (a, b) in fast.services.iter().zip(&slow.services) {
                prop_assert_eq!(&a.name, &b.name);
                prop_assert!(b.forecast_rto >= a.forecast_rto, "{} {}: {:?} < {:?}", sc.name, a.name, b.forecast_rto, a.forecast_rto);
            }
        }
    }
}
