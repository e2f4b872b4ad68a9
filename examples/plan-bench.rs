//! Planner and loader cost on generated plans, behind the "Planner and loader" section of
//! `BENCHMARKS.md`.
//!
//! ```text
//! cargo run --release --example plan-bench                 # the tables
//! cargo run --release --example plan-bench -- --quick      # tiny sizes, a smoke run
//! cargo run --release --example plan-bench -- --write 10000 /tmp/plan-10k.yaml
//! cargo run --release --example plan-bench -- --size 10000 --runs 9   # one row
//! cargo run --release --example plan-bench --features mimalloc -- --size 10000 --runs 9
//! cargo run --release --example plan-bench -- --profile plan --size 10000 --repeat 20
//! ```
//!
//! A generated plan has N services, each with up to three `depends_on` (on the services 7,
//! 14 and 21 places before it), a workload on each of two clusters, a DNS record and a
//! database secret; one database per ten services, each with a replica; scenario region
//! failover. Every figure is the minimum over several runs, measured in this process; a
//! phase's time ends when it returns (dropping the graph it returned is its own column).

use std::fmt::Write as _;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use dr_core::plan::{Format, Plan};

/// With the `mimalloc` feature, the allocator `run-plan` uses; else the system's.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use dr_core::planner::{self, ObservedState};

/// A generated plan of `n` services, as YAML.
fn plan_yaml(n: usize) -> String {
    let dbs = n / 10 + 1;
    let mut s = String::with_capacity(n * 400);
    s.push_str("name: big\nregions:\n  - { name: east, role: primary }\n  - { name: west, role: secondary }\ndatabases:\n");
    for d in 0..dbs {
        let _ = writeln!(
            s,
            "  - {{ name: db{d}, region: east, replicas: [{{ id: db{d}-west, region: west }}] }}"
        );
    }
    s.push_str("clusters:\n");
    for (c, region) in [("east-k8s", "east"), ("west-k8s", "west")] {
        let _ = writeln!(
            s,
            "  - name: {c}\n    region: {region}\n    ingress: lb.{region}.example.com\n    workloads:"
        );
        for i in 0..n {
            let _ = writeln!(s, "      - {{ name: w{i}, namespace: ns, replicas: 3 }}");
        }
    }
    s.push_str("dns:\n");
    for i in 0..n {
        let _ = writeln!(s, "  - {{ name: s{i}.example.com, zone: Z1 }}");
    }
    s.push_str("services:\n");
    for i in 0..n {
        let deps: Vec<String> = (1..=3)
            .filter(|k| i >= k * 7)
            .map(|k| format!("s{}", i - k * 7))
            .collect();
        let _ = writeln!(
            s,
            "  - {{ name: s{i}, rto: 30days, rpo: 100h, database: db{}, workloads: [w{i}], dns: [s{i}.example.com], depends_on: [{}], secret: {{ name: s{i}-secret, key: DATABASE_URL }} }}",
            i % dbs,
            deps.join(", ")
        );
    }
    s.push_str("scenarios:\n  - { name: failover, kind: region-failover, from: east, to: west }\n");
    s
}

/// A plan whose `description` nests `levels` flow lists deep (refused by the depth limit).
fn deep_yaml(levels: usize) -> String {
    format!(
        "name: deep\ndescription: {}{}\nregions: []\nservices: []\nscenarios: []\n",
        "[".repeat(levels),
        "]".repeat(levels)
    )
}

/// The minimum of `runs` timings of `f`, each until `f` returns: dropping what it returned
/// is not part of the timing (see [`min_drop`]).
fn min_time<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            let out = black_box(f());
            let took = t.elapsed();
            drop(out);
            took
        })
        .min()
        .unwrap_or_default()
}

/// The minimum of `runs` timings of dropping what `f` returns.
fn min_drop<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    (0..runs)
        .map(|_| {
            let out = black_box(f());
            let t = Instant::now();
            drop(out);
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn ratio(a: Duration, b: Duration) -> String {
    format!("{:.2}", a.as_secs_f64() / b.as_secs_f64().max(1e-9))
}

struct Row {
    n: usize,
    steps: usize,
    parse: Duration,
    validate: Duration,
    plan: Duration,
    critical: Duration,
    /// Dropping the returned graph (not part of `plan`).
    drop: Duration,
}

fn planner_row(n: usize, runs: usize) -> Result<Row, String> {
    let text = plan_yaml(n);
    let plan = Plan::parse(&text, Format::Yaml, "<generated>").map_err(|e| e.to_string())?;
    plan.validate().map_err(|e| e.to_string())?;
    let observed = ObservedState::nominal(&plan, chrono::Utc::now());
    let graph = planner::plan(&plan, "failover", &observed).map_err(|e| e.to_string())?;
    Ok(Row {
        n,
        steps: graph.steps.len(),
        parse: min_time(runs, || Plan::parse(&text, Format::Yaml, "<generated>")),
        validate: min_time(runs, || plan.validate()),
        plan: min_time(runs, || planner::plan(&plan, "failover", &observed)),
        critical: min_time(runs, || planner::critical_path(&graph)),
        drop: min_drop(runs, || planner::plan(&plan, "failover", &observed)),
    })
}

/// `--profile PHASE [--size N] [--repeat R]`: one phase (`validate`, `plan`, `critical`)
/// repeated R times on one generated plan, nothing else, for a profiler to attribute.
fn profile(phase: Option<&str>, args: &[String]) -> ExitCode {
    let value = |flag: &str, default: usize| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(default)
    };
    let (n, repeat) = (value("--size", 10_000), value("--repeat", 20));
    let plan = match Plan::parse(&plan_yaml(n), Format::Yaml, "<generated>") {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let observed = ObservedState::nominal(&plan, chrono::Utc::now());
    let Ok(graph) = planner::plan(&plan, "failover", &observed) else {
        eprintln!("error: the generated plan does not plan");
        return ExitCode::from(1);
    };
    let t = Instant::now();
    for _ in 0..repeat {
        match phase {
            Some("validate") => drop(black_box(plan.validate())),
            Some("plan") => drop(black_box(planner::plan(&plan, "failover", &observed))),
            Some("critical") => drop(black_box(planner::critical_path(&graph))),
            _ => {
                eprintln!(
                    "usage: plan-bench --profile validate|plan|critical [--size N] [--repeat R]"
                );
                return ExitCode::from(2);
            }
        }
    }
    println!(
        "{} × {repeat} at {n} services: {} each",
        phase.unwrap_or_default(),
        ms(t.elapsed() / repeat.max(1) as u32)
    );
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--write") {
        let (Some(n), Some(path)) = (args.get(1).and_then(|n| n.parse().ok()), args.get(2)) else {
            eprintln!("usage: plan-bench --write N PATH");
            return ExitCode::from(2);
        };
        return match std::fs::write(path, plan_yaml(n)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {path}: {e}");
                ExitCode::from(1)
            }
        };
    }
    if let Some(i) = args.iter().position(|a| a == "--profile") {
        return profile(args.get(i + 1).map(String::as_str), &args);
    }
    let quick = args.iter().any(|a| a == "--quick");
    // `--size N`: one planner row only (for a profiler).
    let only: Option<usize> = args
        .iter()
        .position(|a| a == "--size")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok());
    let only = only.map(|n| [n]);
    // `--runs R`: timings are the fastest of R runs (default 5; 1 with `--quick`).
    let runs_flag: Option<usize> = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0);
    let (sizes, runs): (&[usize], usize) = match &only {
        Some(n) => (n, runs_flag.unwrap_or(5)),
        None if quick => (&[10, 20], 1),
        None => (&[1_000, 10_000, 20_000], runs_flag.unwrap_or(5)),
    };

    println!("## Planner on generated plans (region failover)\n");
    println!("| services | steps | parse (YAML) | validate | planner::plan | critical path | validate + plan + critical path | dropping the graph |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    for &n in sizes {
        match planner_row(n, runs) {
            Ok(r) => {
                println!(
                    "| {} | {} | {} | {} | {} | {} | {} | {} |",
                    r.n,
                    r.steps,
                    ms(r.parse),
                    ms(r.validate),
                    ms(r.plan),
                    ms(r.critical),
                    ms(r.validate + r.plan + r.critical),
                    ms(r.drop)
                );
                rows.push(r);
            }
            Err(e) => {
                eprintln!("error: {n} services: {e}");
                return ExitCode::from(1);
            }
        }
    }
    if let [.., a, b] = rows.as_slice() {
        println!(
            "\nt({})/t({}): parse {}, validate {}, plan {}, critical path {}, validate + plan + critical path {}",
            b.n,
            a.n,
            ratio(b.parse, a.parse),
            ratio(b.validate, a.validate),
            ratio(b.plan, a.plan),
            ratio(b.critical, a.critical),
            ratio(
                b.validate + b.plan + b.critical,
                a.validate + a.plan + a.critical
            )
        );
    }

    if only.is_some() {
        return ExitCode::SUCCESS;
    }
    println!("\n## Loader: Plan::load of a file (read, parse, validate)\n");
    println!("| input | bytes | Plan::load | outcome |");
    println!("|---|---|---|---|");
    let dir = std::env::temp_dir().join(format!("plan-bench-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("error: {}: {e}", dir.display());
        return ExitCode::from(1);
    }
    let (services, levels): ([usize; 2], [usize; 2]) = if quick {
        ([10, 20], [100, 200])
    } else {
        ([10_000, 20_000], [10_000, 20_000])
    };
    let mut loads = Vec::new();
    let inputs = services
        .iter()
        .map(|&n| (format!("{n} services"), plan_yaml(n)))
        .chain(
            levels
                .iter()
                .map(|&l| (format!("{l} nesting levels"), deep_yaml(l))),
        );
    for (label, text) in inputs {
        let path = dir.join("plan.yaml");
        if let Err(e) = std::fs::write(&path, &text) {
            eprintln!("error: {}: {e}", path.display());
            return ExitCode::from(1);
        }
        let outcome = match Plan::load(&path) {
            Ok(_) => "valid".to_string(),
            Err(e) => {
                let e = e.to_string();
                let first = e.lines().next().unwrap_or_default();
                first
                    .split_once(": ")
                    .map_or(first, |(_, m)| m)
                    .chars()
                    .take(120)
                    .collect()
            }
        };
        let t = min_time(runs.min(3), || Plan::load(&path));
        println!("| {label} | {} | {} | {outcome} |", text.len(), ms(t));
        loads.push(t);
    }
    let _ = std::fs::remove_dir_all(&dir);
    if let [s1, s2, l1, l2] = loads.as_slice() {
        println!(
            "\nt({} services)/t({}): {}; t({} levels)/t({}): {}",
            services[1],
            services[0],
            ratio(*s2, *s1),
            levels[1],
            levels[0],
            ratio(*l2, *l1)
        );
    }
    ExitCode::SUCCESS
}
