//! Shared pieces of the scenario programs (the `[[example]]` targets of this crate): the
//! runner every example calls ([`run_scenario`]), live progress printing, and a simulated
//! on-call engineer who answers approval gates. With the `aws` feature, [`aws`] runs the
//! region failover against AWS (or moto) through `dr-aws`.
#![forbid(unsafe_code)]

pub mod durable;
pub mod feature_flag;
pub mod incident;
pub mod observe;
pub mod permissions;
pub mod progress;

pub use progress::{EventsFormat, ReportFormat};

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use dr_core::executor::{ApprovalHook, ApprovalRequest, Decision, Executor, RunEvent};
use dr_core::plan::Plan;
use dr_core::planner::{self, PlanningError};
use dr_core::sim::{FaultConfig, SimConfig};
use dr_core::simulation::Simulation;
use dr_core::step::StepRegistry;
use tokio::sync::mpsc::UnboundedReceiver;

#[cfg(feature = "aws")]
pub mod aws;
pub mod providers;

/// Exit status: the run succeeded and met every target, or a dry run was planned.
pub const EXIT_OK: u8 = 0;
/// Exit status: the run failed or missed a target.
pub const EXIT_FAILED: u8 = 1;
/// Exit status: invalid input (a bad plan, an unknown scenario).
pub const EXIT_INVALID: u8 = 2;
/// Exit status: another runner holds the plan's lease; nothing was done.
pub const EXIT_LEASE_HELD: u8 = 3;

/// A generated plan for benchmarks: `services` services on two regions (`east` serving,
/// `west` standing by), one database with a cross-region replica per ten services, a
/// workload on each region's cluster, a DNS record and a database secret per service, each
/// service depending on up to three earlier ones, and one region failover (`failover`).
pub fn generated_plan(services: usize) -> Plan {
    use dr_core::plan::{PlanBuilder, RegionRole, Scenario, Service};
    let hour = Duration::from_secs(100 * 3600);
    let mut b = PlanBuilder::new("big")
        .region("east", RegionRole::Primary)
        .region("west", RegionRole::Secondary)
        .cluster("east-k8s", "east", "lb.east.example.com")
        .cluster("west-k8s", "west", "lb.west.example.com");
    let dbs = services / 10 + 1;
    for d in 0..dbs {
        b = b.database_with_replica(format!("db{d}"), "east", format!("db{d}-west"), "west");
    }
    for s in 0..services {
        b = b
            .workload("east-k8s", format!("w{s}"), "ns", 3)
            .workload("west-k8s", format!("w{s}"), "ns", 3)
            .dns(format!("s{s}.example.com"), "Z1");
        let mut svc = Service::new(format!("s{s}"), hour, hour)
            .database(format!("db{}", s % dbs))
            .workloads([format!("w{s}")])
            .dns([format!("s{s}.example.com")])
            .secret(format!("s{s}-secret"), "DATABASE_URL");
        // A dependency on up to three earlier services.
        for k in 1..=3 {
            if s >= k * 7 {
                svc = svc.depends_on(format!("s{}", s - k * 7));
            }
        }
        b = b.service(svc);
    }
    b.scenario(Scenario::region_failover("failover", "east", "west"))
        .build_unchecked()
}

/// The directory of the bundled plans (`examples/plans`).
pub fn plans_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plans")
}

/// Logs to stderr through `tracing`, filtered by `RUST_LOG` (default: warnings).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Where a run's output goes: the process's stdout/stderr, or buffers (for tests).
#[derive(Debug, Clone, Default)]
pub struct Console {
    captured: Option<Arc<Mutex<(String, String)>>>,
}

impl Console {
    /// Standard output and standard error.
    pub fn stdio() -> Self {
        Console::default()
    }

    /// Buffers, read back with [`Console::stdout`] and [`Console::stderr`].
    pub fn captured() -> Self {
        Console {
            captured: Some(Arc::default()),
        }
    }

    /// `true` for the process's own stdout and stderr.
    pub fn is_stdio(&self) -> bool {
        self.captured.is_none()
    }

    /// Writes a line to stdout.
    pub fn out(&self, line: &str) {
        match &self.captured {
            Some(c) => {
                let mut c = c.lock().unwrap_or_else(|e| e.into_inner());
                c.0.push_str(line);
                c.0.push('\n');
            }
            // A closed pipe (`| head`) is not an error worth a panic.
            None => {
                let _ = writeln!(std::io::stdout().lock(), "{line}");
            }
        }
    }

    /// Writes `value` as pretty JSON and a newline to stdout, streamed through a buffer
    /// rather than built as one string first (a dry run of 10,000 services is 60 MB of it).
    ///
    /// # Errors
    /// When `value` cannot be serialised; a closed pipe (`| head`) is not an error.
    pub fn out_json(&self, value: &impl serde::Serialize) -> serde_json::Result<()> {
        if self.captured.is_some() {
            let json = serde_json::to_string_pretty(value)?;
            self.out(&json);
            return Ok(());
        }
        let mut w = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
        let written = serde_json::to_writer_pretty(&mut w, value)
            .map_err(|e| match e.io_error_kind() {
                Some(std::io::ErrorKind::BrokenPipe) => None,
                _ => Some(e),
            })
            .and_then(|()| writeln!(w).and_then(|()| w.flush()).map_err(|_| None));
        match written {
            Ok(()) | Err(None) => Ok(()),
            Err(Some(e)) => Err(e),
        }
    }

    /// Writes a line to stderr.
    pub fn err(&self, line: &str) {
        match &self.captured {
            Some(c) => {
                let mut c = c.lock().unwrap_or_else(|e| e.into_inner());
                c.1.push_str(line);
                c.1.push('\n');
            }
            None => {
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
        }
    }

    /// What was written to stdout (captured consoles only).
    pub fn stdout(&self) -> String {
        self.captured
            .as_ref()
            .map(|c| c.lock().unwrap_or_else(|e| e.into_inner()).0.clone())
            .unwrap_or_default()
    }

    /// What was written to stderr (captured consoles only).
    pub fn stderr(&self) -> String {
        self.captured
            .as_ref()
            .map(|c| c.lock().unwrap_or_else(|e| e.into_inner()).1.clone())
            .unwrap_or_default()
    }
}

/// Prints every event as `+HH:MM:SS  line` (offset from `start`) until the channel closes:
/// to stdout, or to stderr when `to_stderr` (stdout then carries JSON).
pub async fn print_progress(
    mut rx: UnboundedReceiver<RunEvent>,
    start: DateTime<Utc>,
    console: Console,
    to_stderr: bool,
) {
    while let Some(event) = rx.recv().await {
        let offset = (event.at() - start).to_std().unwrap_or_default().as_secs();
        let line = format!(
            "+{:02}:{:02}:{:02}  {event}",
            offset / 3600,
            (offset / 60) % 60,
            offset % 60
        );
        if to_stderr {
            console.err(&line);
        } else {
            console.out(&line);
        }
    }
}

/// A simulated on-call engineer: approves every gate after `delay` of (virtual) time.
#[derive(Debug, Clone)]
pub struct SimulatedOnCall {
    /// How long the engineer takes to answer.
    pub delay: Duration,
}

#[async_trait]
impl ApprovalHook for SimulatedOnCall {
    async fn decide(&self, request: &ApprovalRequest) -> dr_core::Result<Decision> {
        tokio::time::sleep(self.delay).await;
        tracing::info!(step = %request.step, "approved by the simulated on-call engineer");
        Ok(Decision::Approve)
    }
}

/// A simulated cloud quick enough to run beside real providers in real time: short API
/// latency, promotions, restores and rollouts in seconds.
///
/// ```
/// let sim = dr_examples::real_time_sim();
/// assert!(sim.promote.get() <= std::time::Duration::from_secs(5));
/// assert!(sim.restore.get() <= std::time::Duration::from_secs(5));
/// ```
pub fn real_time_sim() -> SimConfig {
    let mut config = SimConfig::default().with_latency(Duration::from_millis(50));
    let secs = dr_core::HumanDuration::from_secs;
    config.rollout = secs(3);
    config.node_scaling = secs(5);
    for d in [
        &mut config.promote,
        &mut config.reboot,
        &mut config.restore,
        &mut config.pitr,
        &mut config.snapshot,
        &mut config.copy_snapshot,
        &mut config.create_replica,
        &mut config.dns_propagation,
        &mut config.cdn_deploy,
        &mut config.lb_health_check,
        &mut config.lb_drain,
        &mut config.cache_restore,
    ] {
        *d = secs(3);
    }
    config
}

/// How [`run_scenario`] runs.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOptions {
    /// List the provider calls instead of running.
    pub dry_run: bool,
    /// Print only JSON on stdout (progress goes to stderr).
    pub json: bool,
    /// Seed of the simulated cloud and of retry jitter.
    pub seed: u64,
    /// Probability that a simulated call fails with a temporary error.
    pub fault_rate: f64,
    /// Steps run at once, at most (`None`: no cap beyond the per-target limits).
    pub concurrency: Option<usize>,
    /// Journal the run in this directory (with the simulated cloud's state beside it).
    pub journal: Option<PathBuf>,
    /// Resume this run of the journal directory instead of starting one.
    pub resume: Option<String>,
    /// Simulated time passes at this many times real time (default: at once, on the paused
    /// clock).
    pub speed: Option<f64>,
    /// Data losses accepted explicitly beyond a service's RPO.
    pub accept_data_loss: Vec<(String, Duration)>,
    /// Interlocks of the plan waived for this run.
    pub waive: Vec<dr_core::plan::Interlock>,
    /// The world right now, beyond the plan's nominal values.
    pub incident: incident::IncidentState,
    /// The report's format (`json` above wins: it means [`ReportFormat::Json`]).
    pub report: ReportFormat,
    /// How progress is shown.
    pub events: EventsFormat,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            dry_run: false,
            json: false,
            seed: 42,
            fault_rate: 0.0,
            concurrency: None,
            journal: None,
            resume: None,
            speed: None,
            accept_data_loss: Vec::new(),
            waive: Vec::new(),
            incident: incident::IncidentState::default(),
            report: ReportFormat::Text,
            events: EventsFormat::Auto,
        }
    }
}

/// Loads `plan_path`, provisions it on the simulated cloud, breaks what `scenario` recovers
/// from, observes, prints the forecast, runs the recovery with live progress and prints the
/// report. Must run on a paused tokio clock (`start_paused = true`) so simulated minutes pass
/// at once. Returns the exit status ([`EXIT_OK`], [`EXIT_FAILED`], [`EXIT_INVALID`]).
pub async fn run_scenario(
    plan_path: &Path,
    scenario: &str,
    opts: &RunOptions,
    console: &Console,
) -> u8 {
    run_scenario_with(plan_path, scenario, opts, console, &StepRegistry::builtin()).await
}

/// [`run_scenario`], with the plan's own steps built from `registry` (the embedding
/// program's step kinds besides `webhook`, `command` and `approval`).
pub async fn run_scenario_with(
    plan_path: &Path,
    scenario: &str,
    opts: &RunOptions,
    console: &Console,
    registry: &StepRegistry,
) -> u8 {
    let file = plan_path.display();
    let plan = match Plan::load_with(plan_path, registry) {
        Ok(plan) => plan,
        Err(e) => {
            console.err(&format!("error: {e}"));
            return EXIT_INVALID;
        }
    };
    let Some(sc) = plan.scenario(scenario) else {
        let known: Vec<&str> = plan.scenarios.iter().map(|s| s.name.as_str()).collect();
        console.err(&format!(
            "error: {file}: unknown scenario `{scenario}` (the plan has: {})",
            known.join(", ")
        ));
        return EXIT_INVALID;
    };
    if !(0.0..=1.0).contains(&opts.fault_rate) {
        console.err(&format!(
            "error: fault rate {} is not a probability in [0, 1]",
            opts.fault_rate
        ));
        return EXIT_INVALID;
    }
    // JSON and Markdown reports own stdout; everything else goes to stderr.
    let report_format = if opts.json {
        ReportFormat::Json
    } else {
        opts.report
    };
    let quiet = report_format != ReportFormat::Text;
    let human = |line: &str| {
        if quiet {
            console.err(line)
        } else {
            console.out(line)
        }
    };

    let config =
        SimConfig::default().with_faults(FaultConfig::default().with_rate(opts.fault_rate));
    // A journaled run keeps its files in the journal directory; a resume reads them back.
    let files = match (&opts.journal, &opts.resume) {
        (Some(dir), resume) => {
            let id = resume
                .clone()
                .unwrap_or_else(|| dr_core::executor::new_run_id(chrono::Utc::now()));
            match durable::RunFiles::new(dir, &id) {
                Ok(f) => Some(f),
                Err(e) => {
                    console.err(&format!("error: {e}"));
                    return EXIT_INVALID;
                }
            }
        }
        (None, Some(_)) => {
            console.err("error: --resume needs the --journal directory the run was started with");
            return EXIT_INVALID;
        }
        (None, None) => None,
    };
    let resuming = opts.resume.is_some();
    let (sim, observed) = match (&files, resuming) {
        (Some(f), true) => match f.load(config) {
            Ok((observed, cloud)) => {
                human(&format!(
                    "Resuming run {} from {}\n",
                    f.run_id,
                    f.journal.display()
                ));
                (Simulation::on(&plan, cloud), observed)
            }
            Err(e) => {
                console.err(&format!("error: {e}"));
                return EXIT_INVALID;
            }
        },
        _ => {
            let sim = Simulation::new(&plan, opts.seed, config);
            human(&format!("Incident: {}\n", sc.incident(&plan)));
            sim.inject(sc).await;
            if let Err(e) = opts.incident.apply(&plan, &sim) {
                console.err(&format!("error: {e}"));
                return EXIT_INVALID;
            }
            let observed = sim.observe().await;
            (sim, observed)
        }
    };
    let graph = match planner::plan_with(&plan, &sc.name, &observed, registry) {
        Ok(graph) => graph,
        Err(e @ PlanningError::Unrecoverable { .. }) => {
            console.err(&format!("error: {file}: {e}"));
            return EXIT_FAILED;
        }
        Err(e) => {
            console.err(&format!("error: {file}: {e}"));
            return EXIT_INVALID;
        }
    };

    let clock = sim.cloud().clock();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut executor = Executor::new(sim.providers()).clock(clock).seed(opts.seed);
    if let Some(n) = opts.concurrency {
        executor = executor.concurrency(n);
    }
    for (service, window) in &opts.accept_data_loss {
        if !plan.services.iter().any(|s| s.name == *service) {
            let known: Vec<&str> = plan.services.iter().map(|s| s.name.as_str()).collect();
            console.err(&format!(
                "error: --accept-data-loss: the plan has no service `{service}` (it has: {})",
                known.join(", ")
            ));
            return EXIT_INVALID;
        }
        executor = executor.accept_data_loss(service, *window);
    }
    for interlock in &opts.waive {
        executor = executor.waive(*interlock);
    }
    let mut executor = executor
        .approvals(Arc::new(SimulatedOnCall {
            delay: Duration::from_secs(60),
        }))
        .events(tx);

    // Before anything runs: every step has a provider that supports what it does.
    let problems = executor.preflight(&graph);
    if !problems.is_empty() {
        for p in &problems {
            console.err(&format!("error: preflight: {p}"));
        }
        return EXIT_INVALID;
    }

    if opts.dry_run {
        let dry = executor.dry_run(&graph);
        if opts.json {
            match console.out_json(&dry) {
                Ok(()) => {}
                Err(e) => {
                    console.err(&format!("error: cannot serialise the dry run: {e}"));
                    return EXIT_FAILED;
                }
            }
        } else {
            console.out(&format!("{graph}\n{dry}"));
        }
        return EXIT_OK;
    }

    if let Some(f) = &files {
        // One runner at a time in the directory: the lease, taken over at once from a
        // runner of this host that crashed.
        let dir = opts.journal.as_deref().unwrap_or(Path::new("."));
        let me = durable::holder();
        let lease = match durable::dir_lease(dir) {
            Ok(lease) => lease,
            Err(e) => {
                console.err(&format!("error: {e}"));
                return EXIT_INVALID;
            }
        };
        match durable::take_over_if_dead(&lease, &me, durable::LEASE_TTL).await {
            Ok(Some(dead)) => console.err(&format!(
                "lease: taken over from {dead}, which no longer runs"
            )),
            Ok(None) => {}
            Err(e) => {
                console.err(&format!("error: the journal directory's lease: {e}"));
                return EXIT_INVALID;
            }
        }
        // Taken before anything is written: a runner that finds it held leaves no trace.
        match dr_core::provider::Lease::acquire(&*lease, &me, durable::LEASE_TTL).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                let who = dr_core::provider::Lease::holder(&*lease)
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| "another runner".into());
                console.err(&format!(
                    "error: the journal directory {} is in use: its lease is held by {who}; \
                     nothing was done",
                    dir.display()
                ));
                return EXIT_LEASE_HELD;
            }
            Err(e) => {
                console.err(&format!("error: the journal directory's lease: {e}"));
                return EXIT_INVALID;
            }
        }
        executor = executor.lease(lease, me, durable::LEASE_TTL);
        let ready = async {
            if !resuming {
                f.save_observed(&observed)?;
                sim.cloud().persist_to(&f.sim)?;
            } else {
                sim.cloud().persist_to(&f.sim)?;
            }
            f.open_journal().await
        };
        match ready.await {
            Ok(journal) => executor = executor.journal(journal).run_id(&f.run_id),
            Err(e) => {
                console.err(&format!("error: {e}"));
                return EXIT_INVALID;
            }
        }
        console.err(&format!(
            "run id: {} (journal {})",
            f.run_id,
            f.journal.display()
        ));
    }

    human(&graph.to_string());
    human("Progress (simulated time):");
    let printer = tokio::spawn(progress::show_progress(
        rx,
        clock.now(),
        console.clone(),
        quiet,
        opts.events,
    ));
    let pacer = opts.speed.map(durable::pace);
    let report = if files.is_some() {
        let result = if resuming {
            executor.resume(&graph).await
        } else {
            executor.start(&graph).await
        };
        match result {
            Ok(report) => report,
            Err(e) => {
                if let Some(p) = pacer {
                    p.abort();
                }
                drop(executor);
                let _ = printer.await;
                console.err(&format!("error: {e}"));
                let lease_held = matches!(
                    &e,
                    dr_core::Error::InvalidState { provider, .. } if provider == "lease"
                );
                return if lease_held {
                    EXIT_LEASE_HELD
                } else {
                    EXIT_INVALID
                };
            }
        }
    } else {
        executor.run(&graph).await
    };
    if let Some(p) = pacer {
        p.abort();
    }
    drop(executor);
    let _ = printer.await;
    console.out(&report_format.render(&report));
    if report.succeeded() && report.targets_met() {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}
