//! Semantic validation: every problem at once, each naming the field at fault.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

use super::{Plan, Problem, ScenarioKind};
use crate::duration::human;

struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }
}

pub(super) fn problems(plan: &Plan, registry: &crate::step::StepRegistry) -> Vec<Problem> {
    let mut p = Problems(Vec::new());
    if plan.name.trim().is_empty() {
        p.push("name", "the plan needs a name");
    }
    names(plan, &mut p);
    references(plan, &mut p);
    durations(plan, &mut p);
    cycles(plan, &mut p);
    scenarios(plan, &mut p);
    // Feasibility needs a structurally sound plan: plan only when nothing else is wrong.
    if p.0.is_empty() {
        feasibility(plan, registry, &mut p);
    }
    p.0
}

fn duplicates<'a>(p: &mut Problems, section: &str, names: impl IntoIterator<Item = &'a str>) {
    let mut seen = HashSet::new();
    let mut reported = HashSet::new();
    for (i, n) in names.into_iter().enumerate() {
        if n.trim().is_empty() {
            p.push(format!("{section}[{i}].name"), "empty name");
        } else if !seen.insert(n) && reported.insert(n) {
            p.push(format!("{section}[{n}]"), format!("duplicate name `{n}`"));
        }
    }
}

fn names(plan: &Plan, p: &mut Problems) {
    duplicates(p, "regions", plan.regions.iter().map(|r| r.name.as_str()));
    duplicates(
        p,
        "databases",
        plan.databases.iter().map(|d| d.name.as_str()),
    );
    duplicates(p, "clusters", plan.clusters.iter().map(|c| c.name.as_str()));
    duplicates(p, "dns", plan.dns.iter().map(|d| d.name.as_str()));
    duplicates(p, "stores", plan.stores.iter().map(|s| s.name.as_str()));
    duplicates(
        p,
        "health_checks",
        plan.health_checks.iter().map(|h| h.name.as_str()),
    );
    duplicates(
        p,
        "notifications",
        plan.notifications.iter().map(|n| n.name.as_str()),
    );
    duplicates(p, "services", plan.services.iter().map(|s| s.name.as_str()));
    duplicates(
        p,
        "scenarios",
        plan.scenarios.iter().map(|s| s.name.as_str()),
    );
    for c in &plan.clusters {
        duplicates(
            p,
            &format!("clusters[{}].workloads", c.name),
            c.workloads.iter().map(|w| w.name.as_str()),
        );
    }
    // Instance identifiers must be unique across databases and replicas per region.
    let mut ids = BTreeMap::new();
    for d in &plan.databases {
        let mut add = |region: &str, id: &str, path: String| {
            if let Some(prev) = ids.insert((region.to_string(), id.to_string()), path.clone()) {
                p.push(
                    path,
                    format!("instance `{id}` in {region} is also declared at {prev}"),
                );
            }
        };
        add(&d.region, d.instance(), format!("databases[{}]", d.name));
        for r in &d.replicas {
            add(
                &r.region,
                &r.id,
                format!("databases[{}].replicas[{}]", d.name, r.id),
            );
        }
    }
    if plan.primary_region().is_none() && !plan.regions.is_empty() {
        p.push("regions", "no region has role `primary`");
    }
}

fn known<'a>(items: impl IntoIterator<Item = &'a str>) -> BTreeSet<&'a str> {
    items.into_iter().collect()
}

fn unknown(p: &mut Problems, path: String, what: &str, name: &str, known: &BTreeSet<&str>) {
    if !known.contains(name) {
        let hint = if known.is_empty() {
            format!("the plan declares no {what}s")
        } else {
            format!(
                "known: {}",
                known.iter().copied().collect::<Vec<_>>().join(", ")
            )
        };
        p.push(path, format!("unknown {what} `{name}` ({hint})"));
    }
}

fn references(plan: &Plan, p: &mut Problems) {
    let regions = known(plan.regions.iter().map(|r| r.name.as_str()));
    let databases = known(plan.databases.iter().map(|d| d.name.as_str()));
    let clusters = known(plan.clusters.iter().map(|c| c.name.as_str()));
    let workloads = known(
        plan.clusters
            .iter()
            .flat_map(|c| c.workloads.iter().map(|w| w.name.as_str())),
    );
    let dns = known(plan.dns.iter().map(|d| d.name.as_str()));
    let stores = known(plan.stores.iter().map(|s| s.name.as_str()));
    let checks = known(plan.health_checks.iter().map(|h| h.name.as_str()));
    let channels = known(plan.notifications.iter().map(|n| n.name.as_str()));
    let services = known(plan.services.iter().map(|s| s.name.as_str()));

    for d in &plan.databases {
        let at = format!("databases[{}]", d.name);
        unknown(p, format!("{at}.region"), "region", &d.region, &regions);
        for r in &d.replicas {
            unknown(
                p,
                format!("{at}.replicas[{}].region", r.id),
                "region",
                &r.region,
                &regions,
            );
        }
        if let Some(b) = &d.backups {
            for r in &b.copy_to {
                unknown(p, format!("{at}.backups.copy_to"), "region", r, &regions);
            }
        }
    }
    for c in &plan.clusters {
        unknown(
            p,
            format!("clusters[{}].region", c.name),
            "region",
            &c.region,
            &regions,
        );
    }
    for d in &plan.dns {
        for r in d.targets.keys() {
            unknown(p, format!("dns[{}].targets", d.name), "region", r, &regions);
        }
    }
    for s in &plan.stores {
        unknown(
            p,
            format!("stores[{}].region", s.name),
            "region",
            &s.region,
            &regions,
        );
    }
    for s in &plan.services {
        let at = format!("services[{}]", s.name);
        for d in &s.depends_on {
            unknown(p, format!("{at}.depends_on"), "service", d, &services);
            if d == &s.name {
                p.push(
                    format!("{at}.depends_on"),
                    "a service cannot depend on itself",
                );
            }
        }
        if let Some(db) = &s.database {
            unknown(p, format!("{at}.database"), "database", db, &databases);
        }
        for w in &s.workloads {
            unknown(p, format!("{at}.workloads"), "workload", w, &workloads);
        }
        for d in &s.dns {
            unknown(p, format!("{at}.dns"), "DNS record", d, &dns);
        }
        if let Some(h) = &s.health_check {
            unknown(p, format!("{at}.health_check"), "health check", h, &checks);
        }
        if s.secret.is_some() && s.database.is_none() {
            p.push(
                format!("{at}.secret"),
                "a secret binding needs the service's `database` (whose endpoint it holds)",
            );
        }
        if s.secret.is_some() && s.workloads.is_empty() {
            p.push(
                format!("{at}.secret"),
                "a secret binding needs workloads (the secret lives in their namespace)",
            );
        }
    }
    for sc in &plan.scenarios {
        let at = format!("scenarios[{}]", sc.name);
        let opt =
            |p: &mut Problems, field: &str, v: &Option<String>, what, set: &BTreeSet<&str>| {
                if let Some(v) = v {
                    unknown(p, format!("{at}.{field}"), what, v, set);
                }
            };
        opt(p, "from", &sc.from, "region", &regions);
        opt(p, "to", &sc.to, "region", &regions);
        opt(p, "database", &sc.database, "database", &databases);
        opt(p, "cluster", &sc.cluster, "cluster", &clusters);
        opt(p, "to_cluster", &sc.to_cluster, "cluster", &clusters);
        opt(p, "service", &sc.service, "service", &services);
        opt(p, "evidence_store", &sc.evidence_store, "store", &stores);
        for c in &sc.notify {
            unknown(
                p,
                format!("{at}.notify"),
                "notification channel",
                c,
                &channels,
            );
        }
    }
}

fn positive(p: &mut Problems, path: String, d: Duration) {
    if d.is_zero() {
        p.push(path, "must be a positive duration, not 0");
    }
}

fn durations(plan: &Plan, p: &mut Problems) {
    for s in &plan.services {
        positive(p, format!("services[{}].rto", s.name), s.rto.get());
        positive(p, format!("services[{}].rpo", s.name), s.rpo.get());
    }
    for s in &plan.scenarios {
        if let Some(rto) = s.rto {
            positive(p, format!("scenarios[{}].rto", s.name), rto.get());
        }
    }
    for (k, d) in &plan.estimates {
        positive(p, format!("estimates.{k}"), d.get());
    }
    for (k, d) in &plan.timeouts {
        positive(p, format!("timeouts.{k}"), d.get());
    }
    for d in &plan.databases {
        if let Some(b) = &d.backups {
            positive(
                p,
                format!("databases[{}].backups.every", d.name),
                b.every.get(),
            );
        }
        if let Some(pitr) = &d.pitr {
            positive(
                p,
                format!("databases[{}].pitr.window", d.name),
                pitr.window.get(),
            );
        }
    }
}

/// Finds dependency cycles among services and names their members in order.
fn cycles(plan: &Plan, p: &mut Problems) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let index: BTreeMap<&str, usize> = plan
        .services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let mut marks = vec![Mark::New; plan.services.len()];
    let mut reported: BTreeSet<Vec<String>> = BTreeSet::new();

    fn visit(
        i: usize,
        plan: &Plan,
        index: &BTreeMap<&str, usize>,
        marks: &mut [Mark],
        stack: &mut Vec<usize>,
        found: &mut Vec<Vec<String>>,
    ) {
        marks[i] = Mark::Active;
        stack.push(i);
        for dep in &plan.services[i].depends_on {
            let Some(&j) = index.get(dep.as_str()) else {
                continue;
            };
            if j == i {
                continue; // reported as a self-dependency
            }
            match marks[j] {
                Mark::New => visit(j, plan, index, marks, stack, found),
                Mark::Active => {
                    let pos = stack.iter().position(|&k| k == j).unwrap_or(0);
                    found.push(
                        stack[pos..]
                            .iter()
                            .map(|&k| plan.services[k].name.clone())
                            .collect(),
                    );
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks[i] = Mark::Done;
    }

    let mut found = Vec::new();
    for i in 0..plan.services.len() {
        if marks[i] == Mark::New {
            visit(i, plan, &index, &mut marks, &mut Vec::new(), &mut found);
        }
    }
    for cycle in found {
        // Report each cycle once whatever member it was entered from.
        let mut key = cycle.clone();
        key.sort();
        if reported.insert(key) {
            let mut path = cycle.join(" → ");
            path.push_str(&format!(" → {}", cycle[0]));
            p.push(
                format!("services[{}].depends_on", cycle[0]),
                format!("dependency cycle: {path}"),
            );
        }
    }
}

fn scenarios(plan: &Plan, p: &mut Problems) {
    for sc in &plan.scenarios {
        let at = format!("scenarios[{}]", sc.name);
        let need = |p: &mut Problems, field: &str, v: bool| {
            if !v {
                p.push(
                    format!("{at}.{field}"),
                    format!("a {} scenario needs `{field}`", sc.kind.name()),
                );
            }
        };
        match sc.kind {
            ScenarioKind::RegionFailover => {
                need(p, "from", sc.from.is_some());
                need(p, "to", sc.to.is_some());
                if let (Some(f), Some(t)) = (&sc.from, &sc.to) {
                    if f == t {
                        p.push(
                            format!("{at}.to"),
                            format!("region `{f}` cannot both fail and recover"),
                        );
                    } else if plan.cluster_in(t).is_none()
                        && plan.services.iter().any(|s| !s.workloads.is_empty())
                    {
                        p.push(
                            format!("{at}.to"),
                            format!("no cluster in region `{t}` to run the workloads on"),
                        );
                    }
                }
            }
            ScenarioKind::DatabaseFailure => need(p, "database", sc.database.is_some()),
            ScenarioKind::PointInTimeRestore => {
                need(p, "database", sc.database.is_some());
                if let Some(db) = sc.database.as_deref().and_then(|d| plan.database(d)) {
                    if db.pitr.is_none() {
                        p.push(
                            format!("{at}.database"),
                            format!("database `{}` has no `pitr` settings", db.name),
                        );
                    }
                }
            }
            ScenarioKind::ClusterRebuild => {
                need(p, "cluster", sc.cluster.is_some());
                need(p, "to_cluster", sc.to_cluster.is_some());
                if sc.cluster.is_some() && sc.cluster == sc.to_cluster {
                    p.push(
                        format!("{at}.to_cluster"),
                        "a cluster cannot be rebuilt onto itself",
                    );
                }
            }
            ScenarioKind::ApplicationRollback | ScenarioKind::ServiceRestart => {
                need(p, "service", sc.service.is_some());
                if let Some(s) = sc.service.as_deref().and_then(|s| plan.service(s)) {
                    if s.workloads.is_empty() {
                        p.push(
                            format!("{at}.service"),
                            format!("service `{}` has no workloads", s.name),
                        );
                    }
                }
            }
            ScenarioKind::SecurityIsolation => {
                need(p, "service", sc.service.is_some());
                need(p, "evidence_store", sc.evidence_store.is_some());
            }
        }
    }
}

/// RTOs shorter than the fastest recovery and RPOs the data protection cannot meet.
fn feasibility(plan: &Plan, registry: &crate::step::StepRegistry, p: &mut Problems) {
    for sc in &plan.scenarios {
        let graph = match crate::planner::plan_nominal_with(plan, &sc.name, registry) {
            Ok(g) => g,
            Err(e) => {
                p.push(format!("scenarios[{}]", sc.name), e.to_string());
                continue;
            }
        };
        for f in &graph.services {
            if f.forecast_rto > f.rto_target {
                let field = match sc.rto {
                    Some(_) => format!("scenarios[{}].rto", sc.name),
                    None => format!("services[{}].rto", f.name),
                };
                p.push(
                    field,
                    format!(
                        "RTO {} of service `{}` is shorter than the fastest possible recovery in scenario `{}` ({} with every step at its estimate)",
                        human(f.rto_target),
                        f.name,
                        sc.name,
                        human(f.forecast_rto)
                    ),
                );
            }
            if let Some(rpo) = f.forecast_rpo {
                if rpo > f.rpo_target && sc.kind != ScenarioKind::PointInTimeRestore {
                    p.push(
                        format!("services[{}].rpo", f.name),
                        format!(
                            "RPO {} cannot be met in scenario `{}`: replication and backups lose up to {}",
                            human(f.rpo_target),
                            sc.name,
                            human(rpo)
                        ),
                    );
                }
            }
        }
    }
}
