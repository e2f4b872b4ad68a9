//! Semantic validation: every problem at once (up to [`MAX_PROBLEMS`], with a count of the
//! rest), each naming the field at fault, every echoed value redacted and escaped.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use super::{deps, Plan, Problem};
use crate::duration::human;
use crate::graph::{FastMap, FastSet};
use crate::redact::{clean, shorten, Safe};
use crate::HumanDuration;

/// The most problems one validation reports; the rest are counted
/// ([`PlanError::Invalid::omitted`](super::PlanError::Invalid)).
pub const MAX_PROBLEMS: usize = 50;

/// The longest name a plan may declare (that of a DNS name).
pub const MAX_NAME_LEN: usize = 253;

/// How many close names an unknown-reference message suggests.
const SUGGESTIONS: usize = 3;

/// How many cycle members a cycle message lists before summarising.
const CYCLE_SHOWN: usize = 12;

pub(super) struct Problems {
    shown: Vec<Problem>,
    omitted: usize,
}

impl Problems {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        if self.full() {
            self.omitted += 1;
            return;
        }
        let path = path.into();
        let message = message.into();
        self.shown.push(Problem {
            path: shorten(&clean(&path), 400).into_owned(),
            message: shorten(&clean(&message), 4000).into_owned(),
        });
    }

    fn full(&self) -> bool {
        self.shown.len() >= MAX_PROBLEMS
    }
}

/// Every problem of `plan` (at most [`MAX_PROBLEMS`]) and how many more were found.
pub(super) fn problems(plan: &Plan, registry: &crate::step::StepRegistry) -> (Vec<Problem>, usize) {
    let mut p = Problems {
        shown: Vec::new(),
        omitted: 0,
    };
    if plan.name.trim().is_empty() {
        p.push("name", "the plan needs a name");
    } else if plan.name.chars().any(crate::redact::is_unsafe_char) || plan.name.len() > MAX_NAME_LEN
    {
        p.push(
            "name",
            format!(
                "the plan's name `{}` holds control or invisible characters or is longer than {MAX_NAME_LEN} bytes",
                Safe(&plan.name)
            ),
        );
    }
    names(plan, &mut p);
    references(plan, &mut p);
    durations(plan, &mut p);
    cycles(plan, &mut p);
    plan_steps(plan, registry, &mut p);
    triggers(plan, &mut p);
    limits(plan, &mut p);
    (p.shown, p.omitted)
}

/// Scenario triggers: known signals, at least one of them, thresholds of at least 1, a
/// positive window.
fn triggers(plan: &Plan, p: &mut Problems) {
    let checks = known(plan.health_checks.iter().map(|h| h.name.as_str()));
    let databases = known(plan.databases.iter().map(|d| d.name.as_str()));
    for s in &plan.scenarios {
        let Some(t) = &s.trigger else {
            continue;
        };
        let at = format!("scenarios[{}].trigger", s.name);
        if t.health_checks.is_empty() && t.databases.is_empty() {
            p.push(
                at.clone(),
                "a trigger needs at least one signal: `health_checks` or `databases`",
            );
        }
        for h in &t.health_checks {
            unknown(
                p,
                || format!("{at}.health_checks"),
                "health check",
                h,
                &checks,
            );
        }
        for d in &t.databases {
            unknown(p, || format!("{at}.databases"), "database", d, &databases);
        }
        if t.failures == 0 {
            p.push(format!("{at}.failures"), "must be at least 1 failed sample");
        }
        if t.recover_after == 0 {
            p.push(
                format!("{at}.recover_after"),
                "must be at least 1 healthy sample",
            );
        }
        positive(p, || format!("{at}.window"), t.window.get());
    }
}

/// The `limits:` section: known roles, targets the plan declares, no limit of 0.
fn limits(plan: &Plan, p: &mut Problems) {
    let Some(limits) = &plan.limits else {
        return;
    };
    let roles = known(super::LIMIT_ROLES.iter().map(|(r, _)| *r));
    let zero = |p: &mut Problems, path: String, n: u32| {
        if n == 0 {
            p.push(
                path,
                "must be at least 1 (a limit of 0 would stop every call): leave the entry out for the default",
            );
        }
    };
    for (role, &n) in &limits.defaults {
        unknown(
            p,
            || format!("limits.defaults.{}", Safe(role)),
            "provider role",
            role,
            &roles,
        );
        zero(p, format!("limits.defaults.{}", Safe(role)), n);
    }
    for (role, targets) in &limits.targets {
        let at = |target: &str| format!("limits.targets.{}.{}", Safe(role), Safe(target));
        let declared: Option<Known<'_>> = match role.as_str() {
            "database" => Some(known(plan.regions.iter().map(|r| r.name.as_str()))),
            "dns" => Some(known(plan.dns.iter().map(|d| d.zone.as_str()))),
            "cluster" => Some(known(plan.clusters.iter().map(|c| c.name.as_str()))),
            "store" => Some(known(plan.stores.iter().map(|s| s.name.as_str()))),
            "notifier" => Some(known(plan.notifications.iter().map(|c| c.name.as_str()))),
            "nodes" => Some(known(plan.clusters.iter().map(|c| c.name.as_str()))),
            "volumes" | "secrets" | "caches" => {
                Some(known(plan.regions.iter().map(|r| r.name.as_str())))
            }
            "cdn" => Some(known(plan.cdn.iter().map(|c| c.distribution.as_str()))),
            "load_balancer" => Some(known(
                plan.load_balancers.iter().map(|l| l.target_group.as_str()),
            )),
            "probe" => {
                p.push(
                    format!("limits.targets.{role}"),
                    "health probes have no targets to limit one by one: set `limits.defaults.probe`",
                );
                None
            }
            _ => {
                unknown(
                    p,
                    || format!("limits.targets.{}", Safe(role)),
                    "provider role",
                    role,
                    &roles,
                );
                None
            }
        };
        let what = super::LIMIT_ROLES
            .iter()
            .find(|(r, _)| r == role)
            .map_or("target", |(_, w)| *w);
        for (target, &n) in targets {
            zero(p, at(target), n);
            if let Some(declared) = &declared {
                unknown(p, || at(target), what, target, declared);
            }
        }
    }
}

/// The plan's own steps: ids unique within their scenario, kinds registered, parameters
/// accepted by their kind. (Their `after:` entries are resolved by the planner, which knows
/// the built-in steps and milestones of each scenario.)
fn plan_steps(plan: &Plan, registry: &crate::step::StepRegistry, p: &mut Problems) {
    for sc in &plan.scenarios {
        let mut seen = HashSet::new();
        for (i, st) in sc.steps.iter().enumerate() {
            let at = format!("scenarios[{}].steps[{}]", Safe(&sc.name), Safe(&st.id));
            if st.id.trim().is_empty() {
                p.push(
                    format!("scenarios[{}].steps[{i}].id", Safe(&sc.name)),
                    "the step needs an id",
                );
                continue;
            }
            if !seen.insert(st.id.as_str()) {
                p.push(
                    format!("{at}.id"),
                    format!("duplicate step id `{}`", Safe(&st.id)),
                );
            }
            if let Err(message) = registry.build(&st.kind, &st.params) {
                let field = if registry.contains(&st.kind) {
                    "params"
                } else {
                    "kind"
                };
                p.push(format!("{at}.{field}"), message);
            }
        }
    }
}

/// Whether `c` may appear in a name: ASCII letters and digits, `-`, `_`, `.` (and `*` in DNS
/// names, for wildcard records).
fn name_char(c: char, dns: bool) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') || (dns && c == '*')
}

/// What a name reads like: ASCII lower case, with full-width forms, common Cyrillic and
/// Greek look-alikes folded to the Latin letter they resemble and invisible characters
/// dropped. Two names with the same skeleton are confusable.
fn skeleton(name: &str) -> Cow<'_, str> {
    // The common case, without an allocation: lower-case ASCII letters, digits and the
    // punctuation names allow are their own skeleton.
    if name.bytes().all(|b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.' | b'*')
    }) {
        return Cow::Borrowed(name);
    }
    name.chars()
        .filter(|&c| !crate::redact::is_unsafe_char(c))
        .map(|c| {
            let c = match c as u32 {
                0xff01..=0xff5e => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
                _ => c,
            };
            let folded = match c {
                'а' | 'А' | 'α' | 'Α' => 'a',
                'в' | 'В' | 'β' | 'Β' => 'b',
                'с' | 'С' | 'ϲ' => 'c',
                'ԁ' => 'd',
                'е' | 'Е' | 'ε' | 'Ε' => 'e',
                'һ' | 'Н' | 'Η' => 'h',
                'і' | 'І' | 'ι' | 'Ι' | 'ӏ' => 'i',
                'ј' | 'Ј' => 'j',
                'к' | 'К' | 'κ' | 'Κ' => 'k',
                'м' | 'М' | 'Μ' => 'm',
                'п' | 'Ν' => 'n',
                'о' | 'О' | 'ο' | 'Ο' => 'o',
                'р' | 'Р' | 'ρ' | 'Ρ' => 'p',
                'ѕ' | 'Ѕ' => 's',
                'т' | 'Т' | 'τ' | 'Τ' => 't',
                'υ' => 'u',
                'ν' => 'v',
                'х' | 'Х' | 'χ' | 'Χ' => 'x',
                'у' | 'У' | 'Υ' => 'y',
                'Ζ' => 'z',
                other => other,
            };
            folded.to_ascii_lowercase()
        })
        .collect::<String>()
        .into()
}

/// Names in one section: empty, over-long and unsafe names, exact duplicates, and names
/// that differ from an earlier one only by case or by look-alike characters.
fn duplicates<'a>(p: &mut Problems, section: &str, names: impl IntoIterator<Item = &'a str>) {
    let dns = section == "dns";
    let names = names.into_iter();
    let mut seen: FastSet<&str> =
        FastSet::with_capacity_and_hasher(names.size_hint().0, Default::default());
    let mut reported = HashSet::new();
    let mut skeletons: FastMap<Cow<'a, str>, &str> =
        FastMap::with_capacity_and_hasher(names.size_hint().0, Default::default());
    for (i, n) in names.enumerate() {
        if n.trim().is_empty() {
            p.push(format!("{section}[{i}].name"), "empty name");
            continue;
        }
        if !seen.insert(n) {
            if reported.insert(n) {
                p.push(format!("{section}[{n}]"), format!("duplicate name `{n}`"));
            }
            continue;
        }
        if n.len() > MAX_NAME_LEN {
            p.push(
                format!("{section}[{i}].name"),
                format!(
                    "name `{}` is {} bytes long; names are at most {MAX_NAME_LEN}",
                    Safe(n),
                    n.len()
                ),
            );
            continue;
        }
        let bad: Vec<char> = n.chars().filter(|&c| !name_char(c, dns)).collect();
        let key = skeleton(n);
        let clash = skeletons.get(&key).copied();
        if !bad.is_empty() {
            let mut listed: Vec<String> = bad
                .iter()
                .take(5)
                .map(|&c| format!("U+{:04X}", c as u32))
                .collect();
            listed.dedup();
            let looks = match clash {
                Some(other) => format!("; it reads like `{other}`, declared before it"),
                None if key.chars().all(|c| name_char(c, dns)) && !key.is_empty() => {
                    format!("; write e.g. `{key}`")
                }
                None => String::new(),
            };
            p.push(
                format!("{section}[{i}].name"),
                format!(
                    "name `{}` holds characters outside the safe set ({}): names use ASCII letters, digits, `-`, `_` and `.`{looks}",
                    Safe(n),
                    listed.join(", ")
                ),
            );
        } else if let Some(other) = clash {
            p.push(
                format!("{section}[{n}]"),
                format!("name `{n}` differs from `{other}` only by case: rename one or spell both alike"),
            );
        }
        skeletons.entry(key).or_insert(n);
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
    duplicates(p, "cdn", plan.cdn.iter().map(|c| c.name.as_str()));
    duplicates(p, "caches", plan.caches.iter().map(|c| c.name.as_str()));
    duplicates(
        p,
        "load_balancers",
        plan.load_balancers.iter().map(|l| l.name.as_str()),
    );
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
        node_groups(c, p);
    }
    // Instance identifiers must be unique across databases and replicas per region.
    let mut ids = HashMap::new();
    for d in &plan.databases {
        let mut add = |region: &str, id: &str, path: String| {
            if !id.chars().all(|c| name_char(c, false)) || id.len() > MAX_NAME_LEN {
                p.push(
                    path.clone(),
                    format!(
                        "instance identifier `{}` holds characters outside ASCII letters, digits, `-`, `_` and `.` or is too long",
                        Safe(id)
                    ),
                );
            }
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

/// A cluster's node groups: unique names, `min <= desired <= max`, standby bounds within
/// them, room for at least one pod per node.
fn node_groups(c: &super::Cluster, p: &mut Problems) {
    duplicates(
        p,
        &format!("clusters[{}].node_groups", c.name),
        c.node_groups.iter().map(|g| g.name.as_str()),
    );
    for g in &c.node_groups {
        let at = format!("clusters[{}].node_groups[{}]", c.name, g.name);
        if g.min > g.desired {
            p.push(
                format!("{at}.min"),
                format!("min {} is above desired {}", g.min, g.desired),
            );
        }
        if g.desired > g.max {
            p.push(
                format!("{at}.desired"),
                format!("desired {} is above max {}", g.desired, g.max),
            );
        }
        if g.max == 0 {
            p.push(format!("{at}.max"), "a node group needs room for one node");
        }
        if g.pods_per_node == 0 {
            p.push(
                format!("{at}.pods_per_node"),
                "a node holds at least one pod",
            );
        }
        if let Some(s) = g.standby {
            if s.min > s.desired {
                p.push(
                    format!("{at}.standby.min"),
                    format!(
                        "standby min {} is above standby desired {}",
                        s.min, s.desired
                    ),
                );
            }
            if s.desired > g.desired {
                p.push(
                    format!("{at}.standby.desired"),
                    format!(
                        "standby desired {} is above desired {}: standing by takes fewer nodes",
                        s.desired, g.desired
                    ),
                );
            }
        }
        if let Some(label) = &g.node_label {
            if label.trim().is_empty() || label.chars().any(crate::redact::is_unsafe_char) {
                p.push(
                    format!("{at}.node_label"),
                    "a node label is a non-empty Kubernetes label key",
                );
            }
        }
    }
}

/// The names declared in one section, for reference checks and suggestions.
struct Known<'a> {
    set: FastSet<&'a str>,
    list: Vec<&'a str>,
}

fn known<'a>(items: impl IntoIterator<Item = &'a str>) -> Known<'a> {
    let items = items.into_iter();
    let mut set = FastSet::with_capacity_and_hasher(items.size_hint().0, Default::default());
    let mut list = Vec::with_capacity(items.size_hint().0);
    for n in items {
        if set.insert(n) {
            list.push(n);
        }
    }
    Known { set, list }
}

/// Edit distance between `a` and `b` (case-insensitive), when at most `max`.
fn distance(a: &[char], b: &[char], max: usize) -> Option<usize> {
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        let mut row_min = cur[0];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(!ca.eq_ignore_ascii_case(cb));
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
            row_min = row_min.min(cur[j + 1]);
        }
        if row_min > max {
            return None;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    Some(prev[b.len()]).filter(|&d| d <= max)
}

/// The few declared names closest to `name`, closest first.
fn closest<'a>(name: &str, known: &Known<'a>) -> Vec<&'a str> {
    let a: Vec<char> = name.chars().take(MAX_NAME_LEN).collect();
    let max = (a.len() / 3).max(2);
    let mut found: Vec<(usize, usize, &str)> = known
        .list
        .iter()
        .enumerate()
        .filter_map(|(i, k)| {
            let b: Vec<char> = k.chars().collect();
            distance(&a, &b, max).map(|d| (d, i, *k))
        })
        .collect();
    found.sort_unstable();
    // Only the closest: `service-1` for `servce-1`, not also `service-0` one edit further.
    let best = found.first().map_or(0, |f| f.0);
    found
        .into_iter()
        .take_while(|f| f.0 == best)
        .take(SUGGESTIONS)
        .map(|(_, _, k)| k)
        .collect()
}

/// Reports `name` at `path` unless it is one of `known`; the path is only written out for
/// a problem.
fn unknown(
    p: &mut Problems,
    path: impl FnOnce() -> String,
    what: &str,
    name: &str,
    known: &Known<'_>,
) {
    if known.set.contains(name) {
        return;
    }
    let path = path();
    if p.full() {
        p.omitted += 1;
        return;
    }
    let n = known.list.len();
    let hint = if n == 0 {
        format!("the plan declares no {what}s")
    } else {
        let near = closest(name, known);
        let quoted = |v: &[&str]| {
            v.iter()
                .map(|k| format!("`{}`", Safe(k)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !near.is_empty() {
            let rest = n - near.len();
            if rest == 0 {
                format!("did you mean {}?", quoted(&near))
            } else {
                format!(
                    "did you mean {}? {rest} other {what}{} declared",
                    quoted(&near),
                    if rest == 1 { " is" } else { "s are" }
                )
            }
        } else if n <= 5 {
            format!("known: {}", known.list.join(", "))
        } else {
            format!("known: {} and {} more", known.list[..5].join(", "), n - 5)
        }
    };
    p.push(path, format!("unknown {what} `{}` ({hint})", Safe(name)));
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
    let cdn = known(plan.cdn.iter().map(|c| c.name.as_str()));
    let lbs = known(plan.load_balancers.iter().map(|l| l.name.as_str()));
    let caches = known(plan.caches.iter().map(|c| c.name.as_str()));
    edge(plan, &regions, p);
    managed_caches(plan, &regions, p);

    for d in &plan.databases {
        let at = d.name.as_str();
        unknown(
            p,
            || format!("databases[{at}].region"),
            "region",
            &d.region,
            &regions,
        );
        for r in &d.replicas {
            unknown(
                p,
                || format!("databases[{at}].replicas[{}].region", r.id),
                "region",
                &r.region,
                &regions,
            );
        }
        if let Some(b) = &d.backups {
            for r in &b.copy_to {
                unknown(
                    p,
                    || format!("databases[{at}].backups.copy_to"),
                    "region",
                    r,
                    &regions,
                );
            }
        }
        for (i, c) in d.checks.iter().enumerate() {
            if let Some(message) = c.problem() {
                p.push(format!("databases[{at}].checks[{i}]"), message);
            }
        }
    }
    for c in &plan.clusters {
        unknown(
            p,
            || format!("clusters[{}].region", c.name),
            "region",
            &c.region,
            &regions,
        );
    }
    for d in &plan.dns {
        for r in d.targets.keys() {
            unknown(
                p,
                || format!("dns[{}].targets", d.name),
                "region",
                r,
                &regions,
            );
        }
    }
    for s in &plan.stores {
        unknown(
            p,
            || format!("stores[{}].region", s.name),
            "region",
            &s.region,
            &regions,
        );
    }
    for s in &plan.services {
        let at = s.name.as_str();
        for d in &s.depends_on {
            unknown(
                p,
                || format!("services[{at}].depends_on"),
                "service",
                d,
                &services,
            );
            if d == &s.name {
                p.push(
                    format!("services[{at}].depends_on"),
                    "a service cannot depend on itself",
                );
            }
        }
        if let Some(db) = &s.database {
            unknown(
                p,
                || format!("services[{at}].database"),
                "database",
                db,
                &databases,
            );
        }
        for w in &s.workloads {
            unknown(
                p,
                || format!("services[{at}].workloads"),
                "workload",
                w,
                &workloads,
            );
        }
        for d in &s.dns {
            unknown(p, || format!("services[{at}].dns"), "DNS record", d, &dns);
        }
        for c in &s.cdn {
            unknown(
                p,
                || format!("services[{at}].cdn"),
                "CDN distribution",
                c,
                &cdn,
            );
        }
        for l in &s.load_balancers {
            unknown(
                p,
                || format!("services[{at}].load_balancers"),
                "load balancer",
                l,
                &lbs,
            );
        }
        for c in &s.caches {
            unknown(p, || format!("services[{at}].caches"), "cache", c, &caches);
        }
        if let Some(h) = &s.health_check {
            unknown(
                p,
                || format!("services[{at}].health_check"),
                "health check",
                h,
                &checks,
            );
        }
        if s.secret.is_some() && s.database.is_none() {
            p.push(
                format!("services[{at}].secret"),
                "a secret binding needs the service's `database` (whose endpoint it holds)",
            );
        }
        if s.secret.is_some() && s.workloads.is_empty() {
            p.push(
                format!("services[{at}].secret"),
                "a secret binding needs workloads (the secret lives in their namespace)",
            );
        }
        volumes_and_credential(s, &regions, p);
    }
    let refs = Refs {
        regions: &regions,
        databases: &databases,
        clusters: &clusters,
        services: &services,
        stores: &stores,
    };
    for sc in &plan.scenarios {
        let at = format!("scenarios[{}]", sc.name);
        let mut checks = ScenarioChecks {
            plan,
            at: &at,
            refs: &refs,
            p,
        };
        sc.kind.validate(&mut checks);
        for c in &sc.notify {
            unknown(
                p,
                || format!("{at}.notify"),
                "notification channel",
                c,
                &channels,
            );
        }
    }
}

/// CDN distributions and load balancers: an id, known regions, an origin domain or targets
/// in each region listed, every target `id` or `id:port`.
fn edge(plan: &Plan, regions: &Known<'_>, p: &mut Problems) {
    for c in &plan.cdn {
        let at = format!("cdn[{}]", Safe(&c.name));
        if c.distribution.trim().is_empty() {
            p.push(format!("{at}.distribution"), "the distribution id is empty");
        }
        if c.origins.is_empty() {
            p.push(
                format!("{at}.origins"),
                "a distribution needs an origin for each region it can be served from",
            );
        }
        for (region, origin) in &c.origins {
            unknown(p, || format!("{at}.origins"), "region", region, regions);
            if origin.trim().is_empty() || origin.chars().any(char::is_whitespace) {
                p.push(
                    format!("{at}.origins.{}", Safe(region)),
                    format!("origin `{}` is not a domain name", Safe(origin)),
                );
            }
        }
    }
    for l in &plan.load_balancers {
        let at = format!("load_balancers[{}]", Safe(&l.name));
        if l.target_group.trim().is_empty() {
            p.push(format!("{at}.target_group"), "the target group is empty");
        }
        if l.targets.is_empty() {
            p.push(
                format!("{at}.targets"),
                "a target group needs targets for each region it can be served from",
            );
        }
        for (region, targets) in &l.targets {
            unknown(p, || format!("{at}.targets"), "region", region, regions);
            let path = || format!("{at}.targets.{}", Safe(region));
            if targets.is_empty() {
                p.push(
                    path(),
                    format!("no targets listed for region `{}`", Safe(region)),
                );
            }
            for t in targets {
                if let Err(crate::Error::InvalidRequest { message, .. }) =
                    crate::provider::LbTarget::parse(t)
                {
                    p.push(path(), format!("{message} (write `id` or `id:port`)"));
                }
            }
        }
    }
}

/// Managed caches: an id, a known home region, a non-empty id to restore under in each
/// known recovery region other than home, each restored id used once per region.
fn managed_caches(plan: &Plan, regions: &Known<'_>, p: &mut Problems) {
    let mut restored: std::collections::BTreeSet<(&str, &str)> = Default::default();
    for c in &plan.caches {
        let at = format!("caches[{}]", Safe(&c.name));
        if c.id.trim().is_empty() {
            p.push(format!("{at}.id"), "the cache id is empty");
        }
        unknown(p, || format!("{at}.region"), "region", &c.region, regions);
        if c.restore.is_empty() {
            p.push(
                format!("{at}.restore"),
                "a cache needs the id to restore it under in each region it can recover into",
            );
        }
        for (region, id) in &c.restore {
            unknown(p, || format!("{at}.restore"), "region", region, regions);
            let path = || format!("{at}.restore.{}", Safe(region));
            if region == &c.region {
                p.push(
                    path(),
                    "the home region cannot be a recovery region of its own cache",
                );
            }
            if id.trim().is_empty() {
                p.push(path(), "the cache id is empty");
            } else if !restored.insert((region.as_str(), id.as_str()))
                || plan
                    .caches
                    .iter()
                    .any(|o| o.region == *region && o.id == *id)
            {
                p.push(
                    path(),
                    format!(
                        "cache id `{}` in `{}` is already used by another cache",
                        Safe(id),
                        Safe(region)
                    ),
                );
            }
        }
        if c.backup_every.is_some_and(|d| d.get().is_zero()) {
            p.push(format!("{at}.backup_every"), "must be longer than zero");
        }
    }
}

impl ScenarioChecks<'_> {
    /// Every managed cache in `from` can be restored in `to` (`field` names `to`).
    pub(crate) fn caches_restorable(&mut self, field: &str, from: &str, to: &str) {
        let plan = self.plan;
        for c in plan.caches.iter().filter(|c| c.region == from) {
            if !c.restore.contains_key(to) {
                self.problem(
                    field,
                    format!(
                        "cache `{}` of region `{from}` has no id to restore it under in `{to}`",
                        c.name
                    ),
                );
            }
        }
    }

    /// Every CDN distribution and load balancer of the plan's services has an origin and
    /// targets in `region`, which the scenario moves them to (`field` names it).
    pub(crate) fn edge_in(&mut self, field: &str, region: &str) {
        let plan = self.plan;
        for svc in &plan.services {
            for c in svc.cdn.iter().filter_map(|c| plan.cdn_distribution(c)) {
                if !c.origins.contains_key(region) {
                    self.problem(
                        field,
                        format!(
                            "CDN distribution `{}` of service `{}` has no origin for region `{}`",
                            c.name, svc.name, region
                        ),
                    );
                }
            }
            for l in svc
                .load_balancers
                .iter()
                .filter_map(|l| plan.load_balancer(l))
            {
                if l.targets.get(region).is_none_or(|t| t.is_empty()) {
                    self.problem(
                        field,
                        format!(
                            "load balancer `{}` of service `{}` has no targets in region `{}`",
                            l.name, svc.name, region
                        ),
                    );
                }
            }
        }
    }
}

/// A service's block volumes and cloud credential (what a security incident snapshots and
/// rotates).
fn volumes_and_credential(s: &super::Service, regions: &Known<'_>, p: &mut Problems) {
    let at = s.name.as_str();
    let mut seen = std::collections::HashSet::new();
    for (j, v) in s.volumes.iter().enumerate() {
        if v.id.trim().is_empty() {
            p.push(format!("services[{at}].volumes[{j}].id"), "is empty");
        } else if !seen.insert((v.id.as_str(), v.region.as_deref())) {
            p.push(
                format!("services[{at}].volumes[{j}].id"),
                format!("volume `{}` is listed twice", v.id),
            );
        }
        match &v.region {
            Some(r) => unknown(
                p,
                || format!("services[{at}].volumes[{j}].region"),
                "region",
                r,
                regions,
            ),
            None if s.workloads.is_empty() => p.push(
                format!("services[{at}].volumes[{j}].region"),
                "is needed: the service has no workloads whose cluster gives the volume's region",
            ),
            None => {}
        }
    }
    let Some(c) = &s.credential else {
        return;
    };
    if c.secret.trim().is_empty() {
        p.push(format!("services[{at}].credential.secret"), "is empty");
    }
    if c.key.trim().is_empty() {
        p.push(format!("services[{at}].credential.key"), "is empty");
    }
    unknown(
        p,
        || format!("services[{at}].credential.region"),
        "region",
        &c.region,
        regions,
    );
    if s.workloads.is_empty() {
        p.push(
            format!("services[{at}].credential"),
            "a credential needs workloads (its cluster secret lives in their namespace)",
        );
    }
    match (c.cluster_secret(s), &s.secret) {
        (None, _) => p.push(
            format!("services[{at}].credential.cluster_secret"),
            "names no cluster secret: give `cluster_secret`, or bind the service's `secret`",
        ),
        (Some(name), Some(b)) if name == b.name && c.key == b.key => p.push(
            format!("services[{at}].credential.key"),
            format!(
                "`{}` already holds the database endpoint (services[{at}].secret.key): the credential needs a key of its own",
                c.key
            ),
        ),
        _ => {}
    }
}

/// The names a scenario's parameters may refer to.
struct Refs<'r, 'a> {
    regions: &'r Known<'a>,
    databases: &'r Known<'a>,
    clusters: &'r Known<'a>,
    services: &'r Known<'a>,
    stores: &'r Known<'a>,
}

/// What a scenario kind checks its parameters with: references by kind, and problems of its
/// own, each at `scenarios[NAME].FIELD`.
pub(crate) struct ScenarioChecks<'c> {
    /// The plan.
    pub(crate) plan: &'c Plan,
    at: &'c str,
    refs: &'c Refs<'c, 'c>,
    p: &'c mut Problems,
}

impl ScenarioChecks<'_> {
    /// A problem with `field`.
    pub(crate) fn problem(&mut self, field: &str, message: impl Into<String>) {
        self.p.push(format!("{}.{field}", self.at), message);
    }

    fn check(&mut self, field: &str, what: &str, name: &str, known: &Known<'_>) {
        let at = self.at;
        unknown(self.p, || format!("{at}.{field}"), what, name, known);
    }

    /// `field` names a declared region.
    pub(crate) fn region(&mut self, field: &str, name: &str) {
        self.check(field, "region", name, self.refs.regions);
    }

    /// `field` names a declared database.
    pub(crate) fn database(&mut self, field: &str, name: &str) {
        self.check(field, "database", name, self.refs.databases);
    }

    /// `field` names a declared cluster.
    pub(crate) fn cluster(&mut self, field: &str, name: &str) {
        self.check(field, "cluster", name, self.refs.clusters);
    }

    /// `field` names a declared service.
    pub(crate) fn service(&mut self, field: &str, name: &str) {
        self.check(field, "service", name, self.refs.services);
    }

    /// `field` names a declared store.
    pub(crate) fn store(&mut self, field: &str, name: &str) {
        self.check(field, "store", name, self.refs.stores);
    }
}

/// A duration that must be positive: zero is refused, and so is anything above the limit
/// (a plan built in Rust can hold one; parsing refuses it already).
fn positive(p: &mut Problems, path: impl FnOnce() -> String, d: Duration) {
    if d.is_zero() {
        p.push(path(), "must be a positive duration, not 0");
    } else {
        bounded(p, path, d);
    }
}

/// A duration at most [`HumanDuration::MAX`].
fn bounded(p: &mut Problems, path: impl FnOnce() -> String, d: Duration) {
    if d > HumanDuration::MAX.get() {
        p.push(
            path(),
            format!(
                "{} is longer than the limit of one year (`365days`)",
                human(d)
            ),
        );
    }
}

fn durations(plan: &Plan, p: &mut Problems) {
    for s in &plan.services {
        positive(p, || format!("services[{}].rto", s.name), s.rto.get());
        positive(p, || format!("services[{}].rpo", s.name), s.rpo.get());
    }
    for s in &plan.scenarios {
        if let Some(rto) = s.rto {
            positive(p, || format!("scenarios[{}].rto", s.name), rto.get());
        }
    }
    for (k, d) in &plan.estimates {
        positive(p, || format!("estimates.{k}"), d.get());
    }
    for (k, d) in &plan.timeouts {
        positive(p, || format!("timeouts.{k}"), d.get());
    }
    for d in &plan.databases {
        for r in &d.replicas {
            bounded(
                p,
                || format!("databases[{}].replicas[{}].expected_lag", d.name, r.id),
                r.expected_lag.get(),
            );
        }
        if let Some(b) = &d.backups {
            positive(
                p,
                || format!("databases[{}].backups.every", d.name),
                b.every.get(),
            );
            if let Some(r) = b.retention {
                bounded(
                    p,
                    || format!("databases[{}].backups.retention", d.name),
                    r.get(),
                );
            }
        }
        if let Some(pitr) = &d.pitr {
            positive(
                p,
                || format!("databases[{}].pitr.window", d.name),
                pitr.window.get(),
            );
            bounded(
                p,
                || format!("databases[{}].pitr.lag", d.name),
                pitr.lag.get(),
            );
        }
    }
}

/// Finds dependency cycles among services and names their members in order (iteratively:
/// a chain of any length is fine).
fn cycles(plan: &Plan, p: &mut Problems) {
    let adj = deps::service_graph(plan);
    let mut reported: BTreeSet<Vec<usize>> = BTreeSet::new();
    let mut found: Vec<Vec<usize>> = Vec::new();
    let mut further = 0usize;
    deps::cycles(&adj, |cycle| {
        if found.len() + p.shown.len() >= MAX_PROBLEMS {
            // Each further dependency that closes a cycle counts as one more problem.
            further += 1;
            return true;
        }
        // Report each cycle once whatever member it was entered from.
        let mut key = cycle.to_vec();
        key.sort_unstable();
        if reported.insert(key) {
            found.push(cycle.to_vec());
        }
        true
    });
    for cycle in found {
        let name = |k: usize| plan.services[k].name.as_str();
        let mut members: Vec<&str> = Vec::new();
        if cycle.len() <= CYCLE_SHOWN {
            members.extend(cycle.iter().map(|&k| name(k)));
        } else {
            members.extend(cycle[..CYCLE_SHOWN - 2].iter().map(|&k| name(k)));
            let more = format!("… ({} more) …", cycle.len() - CYCLE_SHOWN + 1);
            let last = name(cycle[cycle.len() - 1]);
            let mut path = members.join(" → ");
            path.push_str(&format!(" → {more} → {last} → {}", name(cycle[0])));
            p.push(
                format!("services[{}].depends_on", name(cycle[0])),
                format!("dependency cycle of {} services: {path}", cycle.len()),
            );
            continue;
        }
        let mut path = members.join(" → ");
        path.push_str(&format!(" → {}", name(cycle[0])));
        p.push(
            format!("services[{}].depends_on", name(cycle[0])),
            format!("dependency cycle: {path}"),
        );
    }
    p.omitted += further;
}
