//! `run-plan PLAN --scenario NAME --providers FILE`: one scenario of any plan on the
//! providers a file maps (see `dr-providers`), in real time.
//!
//! The run: load the plan and the providers file, build the providers (what the file marks
//! simulated runs on the embedded simulated cloud, which gets the scenario's incident),
//! print which provider serves each plan resource, make a read-only call to every mapped
//! provider (preflight), observe, plan, and then either list every call with the provider
//! it goes to (`--dry-run`) or run the recovery with live progress and print the report.
//!
//! A provider that does not answer the preflight stops the run before any change, unless it
//! serves the region the scenario fails over from (that region being down is the incident).
//! The resources the plan names (instances, zones, buckets) must exist: nothing is created.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use dr_core::executor::{Executor, RunReport};
use dr_core::plan::Plan;
use dr_core::planner::{self, ObservedState, PlanningError};
use dr_core::step::StepRegistry;
use dr_core::Clock;
use dr_providers::{BuildOptions, Built, Reachability};

use crate::{print_progress, Console, SimulatedOnCall, EXIT_FAILED, EXIT_INVALID, EXIT_OK};

/// How [`run_with_providers`] runs.
#[derive(Debug, Clone)]
pub struct ProvidersRunOptions {
    /// List the calls and the provider each goes to, and change nothing.
    pub dry_run: bool,
    /// Print only JSON on stdout (progress goes to stderr).
    pub json: bool,
    /// Seed of the simulated side and of retry jitter.
    pub seed: u64,
    /// How long the simulated on-call engineer takes to approve (real time).
    pub approval_delay: Duration,
    /// How long each preflight call may take.
    pub preflight_timeout: Duration,
    /// Steps run at once, at most.
    pub concurrency: Option<usize>,
    /// How the providers are built (the seed and the simulated side's timing are set from
    /// these options).
    pub build: BuildOptions,
}

impl Default for ProvidersRunOptions {
    fn default() -> Self {
        ProvidersRunOptions {
            dry_run: false,
            json: false,
            seed: 42,
            approval_delay: Duration::from_secs(2),
            preflight_timeout: Duration::from_secs(20),
            concurrency: None,
            build: BuildOptions::default(),
        }
    }
}

/// What [`run_with_providers`] did.
#[derive(Debug)]
pub struct ProvidersRun {
    /// Exit status: [`EXIT_OK`] when the run succeeded and met every target where it was
    /// measured (or a dry run was planned), [`EXIT_FAILED`] when it failed, missed a target
    /// or a provider did not answer the preflight, [`EXIT_INVALID`] for invalid input.
    pub exit: u8,
    /// The providers built (absent when the run stopped before).
    pub built: Option<Built>,
    /// The preflight's answers.
    pub reachability: Vec<Reachability>,
    /// The report (absent for a dry run or a run that stopped before).
    pub report: Option<RunReport>,
}

impl ProvidersRun {
    fn stopped(exit: u8, built: Option<Built>, reachability: Vec<Reachability>) -> Self {
        ProvidersRun {
            exit,
            built,
            reachability,
            report: None,
        }
    }
}

/// For `run-plan`, whose clock is paused: runs [`run_with_providers`] on a runtime of its
/// own, on real time (SDK timers and real providers need it), and returns the exit status.
pub async fn run_plan_with_providers(
    plan_path: &Path,
    scenario: &str,
    providers_path: &Path,
    opts: &ProvidersRunOptions,
    console: &Console,
) -> u8 {
    let (plan_path, scenario, providers_path) = (
        plan_path.to_path_buf(),
        scenario.to_string(),
        providers_path.to_path_buf(),
    );
    let (opts, console) = (opts.clone(), console.clone());
    let joined = tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        Ok::<u8, String>(
            rt.block_on(run_with_providers(
                &plan_path,
                &scenario,
                &providers_path,
                &opts,
                &console,
            ))
            .exit,
        )
    })
    .await;
    match joined {
        Ok(Ok(exit)) => exit,
        Ok(Err(e)) => {
            eprintln!("error: cannot start a runtime: {e}");
            EXIT_FAILED
        }
        Err(e) => {
            eprintln!("error: the run failed: {e}");
            EXIT_FAILED
        }
    }
}

/// Whether the run succeeded and every service met its RTO and, where it was measured, its
/// RPO (RDS, for one, reports no replica lag).
pub fn targets_met_where_measured(report: &RunReport) -> bool {
    report.succeeded()
        && report.services.iter().all(|s| {
            s.achieved_rto.is_some_and(|rto| rto <= s.rto_target)
                && s.achieved_rpo.is_none_or(|rpo| rpo <= s.rpo_target)
        })
}

/// The region a reachability answer concerns, when the plan tells.
fn region_of<'a>(plan: &'a Plan, r: &'a Reachability) -> Option<&'a str> {
    match r.route.role {
        "database" => Some(r.route.resource.as_str()),
        "cluster" => plan
            .clusters
            .iter()
            .find(|c| c.name == r.route.resource)
            .map(|c| c.region.as_str()),
        "store" => plan
            .stores
            .iter()
            .find(|s| s.name == r.route.resource)
            .map(|s| s.region.as_str()),
        _ => None,
    }
}

/// Loads `plan_path` and `providers_path`, builds the providers, checks each is reachable,
/// observes, plans `scenario`, and runs it (or lists its calls, for a dry run) in real time.
///
/// Must run on a normal (not paused) tokio runtime.
pub async fn run_with_providers(
    plan_path: &Path,
    scenario: &str,
    providers_path: &Path,
    opts: &ProvidersRunOptions,
    console: &Console,
) -> ProvidersRun {
    let human = |line: &str| {
        if opts.json {
            console.err(line)
        } else {
            console.out(line)
        }
    };
    let registry = StepRegistry::builtin();
    let plan = match Plan::load_with(plan_path, &registry) {
        Ok(plan) => plan,
        Err(e) => {
            console.err(&format!("error: {e}"));
            return ProvidersRun::stopped(EXIT_INVALID, None, Vec::new());
        }
    };
    let Some(sc) = plan.scenario(scenario).cloned() else {
        let known: Vec<&str> = plan.scenarios.iter().map(|s| s.name.as_str()).collect();
        console.err(&format!(
            "error: {}: unknown scenario `{scenario}` (the plan has: {})",
            plan_path.display(),
            known.join(", ")
        ));
        return ProvidersRun::stopped(EXIT_INVALID, None, Vec::new());
    };
    let mut build = opts.build.clone();
    build.seed = opts.seed;
    build.sim = crate::real_time_sim();
    let built = match dr_providers::load_and_build(providers_path, &plan, build).await {
        Ok(b) => b,
        Err(e) => {
            console.err(&format!("error: {e}"));
            return ProvidersRun::stopped(EXIT_INVALID, None, Vec::new());
        }
    };
    human("Providers:");
    for r in &built.routes {
        human(&format!("  {r}"));
    }

    // What is simulated gets the incident; real resources are as they are.
    built.simulation().inject(&sc).await;

    human("\nPreflight (one read-only call per mapped provider):");
    let reach = built.check_reachability(opts.preflight_timeout).await;
    let from = match &sc.kind {
        dr_core::plan::ScenarioKind::RegionFailover(k) => Some(k.from.as_str()),
        _ => None,
    };
    let mut blocking = 0;
    for r in &reach {
        let in_failed_region = from.is_some() && region_of(&plan, r) == from;
        let note = if r.reachable {
            ""
        } else if in_failed_region {
            " (in the region being failed over from: expected)"
        } else {
            blocking += 1;
            ""
        };
        human(&format!("  {r}{note}"));
    }
    if blocking > 0 {
        console.err(&format!(
            "error: preflight: {blocking} provider{} did not answer; nothing was changed",
            if blocking == 1 { "" } else { "s" }
        ));
        return ProvidersRun::stopped(EXIT_FAILED, Some(built), reach);
    }

    let clock = Clock::new();
    let observed = ObservedState::observe(&plan, &built.providers, clock.now()).await;
    let graph = match planner::plan_with(&plan, &sc.name, &observed, &registry) {
        Ok(graph) => graph,
        Err(e @ PlanningError::Unrecoverable { .. }) => {
            console.err(&format!("error: {}: {e}", plan_path.display()));
            return ProvidersRun::stopped(EXIT_FAILED, Some(built), reach);
        }
        Err(e) => {
            console.err(&format!("error: {}: {e}", plan_path.display()));
            return ProvidersRun::stopped(EXIT_INVALID, Some(built), reach);
        }
    };

    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut executor = Executor::new(built.providers.clone())
        .clock(clock)
        .seed(opts.seed);
    if let Some(n) = opts.concurrency {
        executor = executor.concurrency(n);
    }
    let executor = executor
        .approvals(Arc::new(SimulatedOnCall {
            delay: opts.approval_delay,
        }))
        .events(tx);
    let problems = executor.preflight(&graph);
    if !problems.is_empty() {
        for p in &problems {
            console.err(&format!("error: preflight: {p}"));
        }
        return ProvidersRun::stopped(EXIT_INVALID, Some(built), reach);
    }

    if opts.dry_run {
        let calls = built.routed_calls(&graph);
        if opts.json {
            let json = serde_json::json!({
                "dry_run": executor.dry_run(&graph),
                "routes": built.routes,
                "reachability": reach,
                "calls": calls,
            });
            match serde_json::to_string_pretty(&json) {
                Ok(text) => console.out(&text),
                Err(e) => {
                    console.err(&format!("error: cannot serialise the dry run: {e}"));
                    return ProvidersRun::stopped(EXIT_FAILED, Some(built), reach);
                }
            }
        } else {
            console.out(&format!("\n{graph}"));
            console.out("Dry run (nothing was changed); each call and the provider it goes to:");
            let mut step = "";
            for c in &calls {
                if c.step != step {
                    step = &c.step;
                    console.out(&format!("  {step}"));
                }
                console.out(&format!("    {c}"));
            }
        }
        return ProvidersRun::stopped(EXIT_OK, Some(built), reach);
    }

    human(&format!("\n{graph}"));
    human("Progress (real time):");
    let printer = tokio::spawn(print_progress(rx, clock.now(), console.clone(), opts.json));
    let report = executor.run(&graph).await;
    drop(executor);
    let _ = printer.await;
    if opts.json {
        console.out(&report.to_json());
    } else {
        console.out(&format!("\n{report}"));
    }
    let exit = if targets_met_where_measured(&report) {
        EXIT_OK
    } else {
        EXIT_FAILED
    };
    ProvidersRun {
        exit,
        built: Some(built),
        reachability: reach,
        report: Some(report),
    }
}
