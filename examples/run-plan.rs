//! The generic runner: plans and runs one scenario of any plan file on the simulated cloud.
//!
//! ```text
//! run-plan PLAN_FILE --scenario NAME [--dry-run] [--json] [--seed N] [--fault-rate F]
//!          [--journal DIR [--resume RUN_ID]] [--speed X] [--accept-data-loss SERVICE=DURATION]
//!          [--waive INTERLOCK] [--lag REPLICA=DURATION] [--primary-still-writable DATABASE]
//!          [--region-down REGION] [--dns-unhealthy REGION] [--incident FILE]
//!          [--report text|json|md] [--events auto|plain|live|json]
//! run-plan PLAN_FILE --permissions [--scenario NAME] [--providers FILE] [--json]
//! cargo run --example run-plan -- examples/plans/region-failover.yaml --scenario database-failure
//! ```
//!
//! With `--journal DIR`, the run is journaled in `DIR` (its run id is printed on stderr and
//! is a field of the JSON report) and the simulated cloud's state is kept beside the
//! journal, so that after a crash `--journal DIR --resume RUN_ID` continues the run without
//! repeating what it did. `--speed X` lets simulated time pass at X× real time (so a
//! process can be killed in the middle of a step); `DR_CRASH_AFTER_RECORDS=N` aborts the
//! process right after its N-th journal record is durable.
//!
//! Provider calls are limited per database region, DNS zone, cluster, store and channel:
//! the executor's defaults, with the plan's `limits:` section applied over them (the plan's
//! graph carries it), in a run, a resumed run and on `--providers` alike.
//!
//! Exit status: 0 when the run succeeded and every target was met (or a dry run was
//! planned), 1 when it failed or a target was missed, 2 for invalid input (the message on
//! stderr names the fault), 3 when another runner holds the plan's lease. With `--json`, stdout holds only the JSON report; progress goes
//! to stderr.

use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc: planning and reporting a large plan allocate and free hundreds of thousands of
/// small strings, about twice as fast with it as with glibc's malloc (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use dr_core::redact::clean;
use dr_examples::incident::{name_duration, IncidentState};
use dr_examples::{
    init_tracing, run_scenario, Console, EventsFormat, ReportFormat, RunOptions, EXIT_INVALID,
};

/// The most steps `--concurrency` lets run at once.
const MAX_CONCURRENCY: usize = 1024;

/// Plan and run one scenario of a DR plan on the simulated cloud.
#[derive(Debug, Parser)]
#[command(name = "run-plan")]
struct Args {
    /// The plan (.yaml, .yml, .toml or .json).
    plan: PathBuf,
    /// The scenario to run (ASCII letters, digits, `-`, `_` and `.`).
    #[arg(long, value_parser = scenario_name, required_unless_present = "permissions")]
    scenario: Option<String>,
    /// Print the permissions the plan's runs need (of --scenario, else of every scenario):
    /// an AWS IAM policy, Azure and GCS roles, Kubernetes RBAC; nothing runs.
    #[arg(long)]
    permissions: bool,
    /// List the provider calls the run would make, in order, and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print only the JSON report on stdout.
    #[arg(long)]
    json: bool,
    /// Seed of the simulated cloud (latencies, injected faults, retry jitter): 0 to 2^64-1.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Probability in [0, 1] that a simulated call fails with a temporary error.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    fault_rate: f64,
    /// Steps run at once, at most, 1 to 1024 (default: no cap; provider calls are limited per
    /// database region, DNS zone and cluster, as the plan's `limits:` section sets).
    #[arg(long, value_parser = concurrency)]
    concurrency: Option<usize>,
    /// Run on the providers this file maps (see dr-providers), in real time.
    #[arg(long)]
    providers: Option<PathBuf>,
    /// The report's format: text, json or md (Markdown, with a post-incident review).
    #[arg(long, default_value = "text", value_parser = str::parse::<ReportFormat>)]
    report: ReportFormat,
    /// Progress: auto (live view in a terminal, else plain lines), plain, live or json.
    #[arg(long, default_value = "auto", value_parser = str::parse::<EventsFormat>)]
    events: EventsFormat,
    /// Journal the run in DIR, with the simulated cloud's state beside the journal.
    #[arg(long, value_name = "DIR")]
    journal: Option<PathBuf>,
    /// Resume run RUN_ID of the --journal directory after a crash.
    #[arg(long, value_name = "RUN_ID", requires = "journal")]
    resume: Option<String>,
    /// Simulated time passes at X times real time (0.001 to 1000000) instead of at once.
    #[arg(long, value_name = "X", value_parser = speed)]
    speed: Option<f64>,
    /// Accept a data loss up to DURATION for SERVICE beyond its RPO (repeatable):
    /// `--accept-data-loss orders=25m`.
    #[arg(long, value_name = "SERVICE=DURATION", value_parser = name_duration)]
    accept_data_loss: Vec<(String, std::time::Duration)>,
    /// Waive one of the plan's interlocks for this run (repeatable): `--waive no-split-brain`.
    #[arg(long, value_name = "INTERLOCK", value_parser = interlock)]
    waive: Vec<dr_core::plan::Interlock>,
    /// Incident state: a replica's replication lag right now (repeatable),
    /// `--lag shop-prod-west=20m`.
    #[arg(long, value_name = "REPLICA=DURATION", value_parser = name_duration)]
    lag: Vec<(String, std::time::Duration)>,
    /// Incident state: the database's old primary still answers and takes writes (repeatable).
    #[arg(long, value_name = "DATABASE")]
    primary_still_writable: Vec<String>,
    /// Incident state: a region down besides the scenario's (repeatable).
    #[arg(long, value_name = "REGION")]
    region_down: Vec<String>,
    /// Incident state: the region's DNS targets fail their health checks already
    /// (repeatable); a switch to them breaks the `healthy-target` interlock.
    #[arg(long, value_name = "REGION")]
    dns_unhealthy: Vec<String>,
    /// Incident state from a file (YAML, TOML or JSON: `lag`, `primary_still_writable`,
    /// `region_down`, `dns_unhealthy`); the flags above add to it.
    #[arg(long, value_name = "FILE")]
    incident: Option<PathBuf>,
}

fn interlock(s: &str) -> Result<dr_core::plan::Interlock, String> {
    dr_core::plan::Interlock::from_name(s.trim()).ok_or_else(|| {
        let names: Vec<&str> = dr_core::plan::Interlock::ALL
            .iter()
            .map(|i| i.name())
            .collect();
        format!("unknown interlock: write one of {}", names.join(", "))
    })
}

fn speed(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| "not a number: write a speed such as `60` (60× real time)".to_string())?;
    if v.is_finite() && (0.001..=1e6).contains(&v) {
        Ok(v)
    } else {
        Err("out of range: write a speed from 0.001 to 1000000".into())
    }
}

fn scenario_name(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("a scenario name cannot be empty".into());
    }
    if s.len() > dr_core::plan::MAX_NAME_LEN
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(
            "scenario names use ASCII letters, digits, `-`, `_` and `.` (at most 253); write one of the plan's `scenarios[].name`".into(),
        );
    }
    Ok(s.to_string())
}

fn probability(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| "not a number: write a probability such as `0.1`".to_string())?;
    if v.is_finite() && (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err("not a probability: write a number from 0 to 1, such as `0.1`".into())
    }
}

fn concurrency(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let v: usize = match t.parse() {
        Ok(v) => v,
        Err(_) if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) => usize::MAX,
        Err(_) => {
            return Err(format!(
                "not a whole number: write how many steps may run at once, 1 to {MAX_CONCURRENCY}"
            ))
        }
    };
    if (1..=MAX_CONCURRENCY).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "out of range: at least 1 step must run at a time, and at most {MAX_CONCURRENCY}"
        ))
    }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> ExitCode {
    init_tracing();
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // Clap echoes the offending value: redact and escape it like every other message.
            for line in e.render().to_string().lines() {
                eprintln!("{}", clean(line));
            }
            return ExitCode::from(EXIT_INVALID);
        }
    };
    if args.permissions {
        let opts = dr_examples::permissions::PermissionsOptions {
            scenario: args.scenario.clone(),
            providers: args.providers.clone(),
            json: args.json,
            seed: args.seed,
        };
        let console = Console::stdio();
        let code = dr_examples::permissions::print(&args.plan, &opts, &console);
        return ExitCode::from(code.await);
    }
    let scenario = args.scenario.clone().unwrap_or_default();
    if let Some(file) = &args.providers {
        let opts = dr_examples::providers::ProvidersRunOptions {
            dry_run: args.dry_run,
            json: args.json,
            seed: args.seed,
            concurrency: args.concurrency,
            ..Default::default()
        };
        let (plan, console) = (&args.plan, Console::stdio());
        let run =
            dr_examples::providers::run_plan_with_providers(plan, &scenario, file, &opts, &console);
        return ExitCode::from(run.await);
    }
    let from_file = match &args.incident {
        Some(path) => match IncidentState::load(path) {
            Ok(state) => state,
            Err(e) => {
                eprintln!("{}", clean(&e));
                return ExitCode::from(EXIT_INVALID);
            }
        },
        None => IncidentState::default(),
    };
    let opts = RunOptions {
        dry_run: args.dry_run,
        json: args.json,
        seed: args.seed,
        fault_rate: args.fault_rate,
        concurrency: args.concurrency,
        journal: args.journal,
        resume: args.resume,
        speed: args.speed,
        accept_data_loss: args.accept_data_loss,
        waive: args.waive,
        incident: from_file.merged(IncidentState {
            lags: args.lag,
            writable_primaries: args.primary_still_writable,
            regions_down: args.region_down,
            dns_unhealthy: args.dns_unhealthy,
        }),
        report: args.report,
        events: args.events,
    };
    ExitCode::from(run_scenario(&args.plan, &scenario, &opts, &Console::stdio()).await)
}
