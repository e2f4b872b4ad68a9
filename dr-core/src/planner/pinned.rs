//! The planner's output pinned: a digest of every graph planned from the bundled plans and
//! from a generated plan, so a change meant to make planning faster cannot change what it
//! plans. A deliberate change of the graphs updates the digests here, in the same commit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use super::{plan, ObservedState};
use crate::plan::Plan;

/// Everything a graph holds (steps with their actions' parameters, dependencies, keys,
/// estimates and timeouts, the critical path, forecasts, risks), as JSON, hashed; or the
/// planning error.
fn digest(plan_: &Plan, scenario: &str) -> String {
    let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let observed = ObservedState::nominal(plan_, at);
    let text = match plan(plan_, scenario, &observed) {
        // Keys sorted: a workspace build may turn on serde_json's `preserve_order`.
        Ok(g) => canonical(serde_json::to_value(&g).unwrap()).to_string(),
        Err(e) => format!("error: {e}"),
    };
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// `v` with the keys of every object in sorted order, whatever map serde_json is built with.
fn canonical(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.into_iter().map(canonical).collect()),
        other => other,
    }
}

/// The digest of every scenario of `plan_`, one line each.
fn digests(plan_: &Plan) -> String {
    let mut out = String::new();
    for sc in &plan_.scenarios {
        let _ = writeln!(out, "{} {}", sc.name, &digest(plan_, &sc.name)[..16]);
    }
    out
}

/// A plan of `n` services exercising most of what the planner looks up: tiers, chains of
/// dependencies, databases shared by ten services (with replicas, backups and PITR, some
/// without a replica), workloads on two clusters with and without warm standbys, several
/// DNS records per service, health checks, secrets, notifications, an approval, plan steps
/// after a milestone and after a service, and one scenario of each kind it can host.
pub(crate) fn generated(n: usize) -> String {
    let dbs = n / 10 + 1;
    let mut s = String::new();
    s.push_str("name: gen\nregions:\n  - { name: east, role: primary }\n  - { name: west, role: secondary }\ndatabases:\n");
    for d in 0..dbs {
        if d % 4 == 3 {
            let _ = writeln!(
                s,
                "  - {{ name: db{d}, region: east, backups: {{ every: 1h, copy_to: [west] }}, pitr: {{ lag: 5m }} }}"
            );
        } else {
            let _ = writeln!(
                s,
                "  - {{ name: db{d}, region: east, multi_az: true, replicas: [{{ id: db{d}-west, region: west, expected_lag: {}s }}], backups: {{ every: 6h, copy_to: [west] }} }}",
                10 + d % 50
            );
        }
    }
    s.push_str("clusters:\n");
    for (c, region) in [("east-k8s", "east"), ("west-k8s", "west")] {
        let _ = writeln!(
            s,
            "  - name: {c}\n    region: {region}\n    ingress: lb.{region}.example.com\n    workloads:"
        );
        for i in 0..n {
            let _ = writeln!(
                s,
                "      - {{ name: w{i}, namespace: ns{}, replicas: {}, standby_replicas: {} }}",
                i % 7,
                1 + i % 5,
                u32::from(i % 3 == 0)
            );
            if i % 5 == 0 {
                let _ = writeln!(
                    s,
                    "      - {{ name: w{i}-worker, namespace: ns{}, kind: stateful_set, replicas: 2 }}",
                    i % 7
                );
            }
        }
    }
    s.push_str("dns:\n");
    for i in 0..n {
        let _ = writeln!(s, "  - {{ name: s{i}.example.com, zone: Z{} }}", i % 3);
        if i % 4 == 0 {
            let _ = writeln!(
                s,
                "  - {{ name: s{i}-admin.example.com, zone: Z1, set_id: west, targets: {{ west: admin.west.example.com }} }}"
            );
        }
    }
    s.push_str("health_checks:\n");
    for i in (0..n).step_by(2) {
        let _ = writeln!(
            s,
            "  - {{ name: h{i}, target: \"https://s{i}.example.com/health\" }}"
        );
    }
    s.push_str("stores:\n  - { name: evidence, region: west }\n");
    s.push_str("notifications:\n  - { name: oncall, kind: pagerduty }\n  - { name: status }\n");
    s.push_str("services:\n");
    let tiers = ["critical", "high", "medium", "low"];
    for i in 0..n {
        let deps: Vec<String> = (1..=3)
            .filter(|k| i >= k * 7)
            .map(|k| format!("s{}", i - k * 7))
            .collect();
        let mut workloads = format!("w{i}");
        if i % 5 == 0 {
            let _ = write!(workloads, ", w{i}-worker");
        }
        let mut dns = format!("s{i}.example.com");
        if i % 4 == 0 {
            let _ = write!(dns, ", s{i}-admin.example.com");
        }
        let check = if i % 2 == 0 {
            format!(", health_check: h{i}")
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "  - {{ name: s{i}, tier: {}, rto: {}h, rpo: {}m, database: db{}, workloads: [{workloads}], dns: [{dns}], depends_on: [{}]{check}, secret: {{ name: s{i}-secret, key: DATABASE_URL, template: \"postgres://s{i}@{{endpoint}}/app\" }} }}",
            tiers[i % 4],
            1 + i % 30,
            1 + i % 90,
            i % dbs,
            deps.join(", ")
        );
    }
    s.push_str(
        "  - { name: bare, rto: 1h, rpo: 5m, database: db0 }\n\
         scenarios:\n\
         \x20 - name: failover\n\
         \x20   kind: region-failover\n\
         \x20   from: east\n\
         \x20   to: west\n\
         \x20   approval: true\n\
         \x20   notify: [oncall, status]\n\
         \x20   steps:\n\
         \x20     - { id: warm, kind: webhook, after: [database promoted], critical: false, params: { url: \"https://cache.internal/warm\" } }\n\
         \x20     - { id: smoke, kind: command, after: [s3, warm], service: s3, params: { program: ./smoke.sh } }\n\
         \x20 - { name: db-failure, kind: database-failure, database: db1 }\n\
         \x20 - { name: db-restore, kind: database-failure, database: db3, strategy: restore }\n\
         \x20 - { name: pitr, kind: point-in-time-restore, database: db3 }\n\
         \x20 - { name: rebuild, kind: cluster-rebuild, cluster: east-k8s, to_cluster: west-k8s }\n\
         \x20 - { name: rollback, kind: application-rollback, service: s5 }\n\
         \x20 - { name: restart, kind: service-restart, service: s10, notify: [oncall] }\n\
         \x20 - { name: isolate, kind: security-isolation, service: s15, evidence_store: evidence }\n",
    );
    s
}

#[test]
fn generated_plan_graphs_are_pinned() {
    let plan_ = Plan::from_yaml_str(&generated(300)).unwrap_or_else(|e| panic!("{e}"));
    plan_.validate().unwrap_or_else(|e| panic!("{e}"));
    let got = digests(&plan_);
    println!("{got}");
    assert_eq!(got, "failover 932bfb6d40f08950\ndb-failure ef0a9e225001dd79\ndb-restore 511e13167d9c3aae\npitr bf992d063a8b42cf\nrebuild 6263220f6050672c\nrollback fc938cff64f6b003\nrestart 78dd04c6e01cbf09\nisolate 5b271e1ccbb5382e\n");
}

#[test]
fn bundled_plan_graphs_are_pinned() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/plans");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    names.sort();
    let mut got = String::new();
    for name in names {
        // A plan with a kind only its example registers is planned by that example's tests.
        let Ok(plan_) = Plan::load(dir.join(&name)) else {
            let _ = writeln!(got, "{name}: not loadable with the built-in kinds");
            continue;
        };
        let _ = writeln!(got, "{name}:");
        got.push_str(&digests(&plan_));
    }
    println!("{got}");
    assert_eq!(
        got,
        "at-risk-rpo.yaml:
failover 2c24a824217abd6c
at-risk-rto.yaml:
failover 2633110d38256138
aws-region-failover.yaml:
region-failover ca974364333fd53d
cache-failure.yaml:
cache-failure 2fabba7a0cb1d420
custom-step.yaml: not loadable with the built-in kinds
failback.yaml:
failback b779af074b65bf2e
postgres-failover.yaml:
database-failure 954e3e516b0d67dc
provider-outage.yaml:
payments-outage c17a7b8f5deeb27e
region-failover.yaml:
region-failover c929416366f3cd79
database-failure 08f05663ce428b0b
point-in-time-restore f160ec2f77cfd31f
cluster-rebuild d1408fbca4f60aee
application-rollback c4977967d23dd24d
security-isolation 60796ecbb475786b
service-restart 5aa976fc4260aa94
restore-from-dump bd21283b3ce60920
node-group-failure 440b5277ee37f7e4
nightly-backup af50b2149f689099
"
    );
}
