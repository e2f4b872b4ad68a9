//! The region failover of `plans/aws-region-failover.yaml` on AWS (or any endpoint speaking
//! its APIs, such as moto): the database on RDS, DNS on Route 53 and backups on S3, through
//! `dr-aws`; clusters and notifications on the simulated cloud.
//!
//! [`run_aws_failover`] does the whole run: [`provision`] what the plan expects, build the
//! mixed [`Providers`], observe, plan, run on the real clock with live progress, and read
//! the result back through the SDK.
//!
//! Health checks are left out of the AWS plan on purpose: the simulated probe derives health
//! from the *simulated* DNS, so it could not see a switch made in Route 53 and would report
//! a health it never measured. The records are read back from Route 53 at the end instead.
//!
//! What cannot be broken on a real endpoint is not: the incident (us-east-1 lost) is injected
//! into the simulated cloud only, so the east cluster is unreachable while the RDS primary,
//! which nobody can switch off from here, keeps running; the failover promotes the replica
//! all the same.

mod provision;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use dr_aws::{AwsBuilder, AwsConfig, RdsDatabase, Route53Dns};
use dr_core::executor::{Executor, RunReport};
use dr_core::plan::Plan;
use dr_core::planner::{self, ObservedState, PlanningError};
use dr_core::provider::{DatabaseReplica, DbRef, DbRole, DbStatus, DnsFailover};
use dr_core::simulation::Simulation;
use dr_core::{Clock, Providers};

pub use provision::{provision, Provisioned};

use crate::{print_progress, Console, SimulatedOnCall, EXIT_FAILED, EXIT_INVALID, EXIT_OK};

/// How [`run_aws_failover`] runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsRunOptions {
    /// Appended to the RDS instance ids and the bucket name, and asks for a hosted zone of
    /// this run's own, so that runs do not share resources (tests). `None` reuses what
    /// exists under the plan's names.
    pub suffix: Option<String>,
    /// How long the simulated on-call engineer takes to approve (real time).
    pub approval_delay: Duration,
    /// Seed of the simulated cloud.
    pub seed: u64,
}

impl Default for AwsRunOptions {
    fn default() -> Self {
        AwsRunOptions {
            suffix: None,
            approval_delay: Duration::from_secs(2),
            seed: 42,
        }
    }
}

/// A DNS record as read back from Route 53 after the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordCheck {
    /// Record name.
    pub name: String,
    /// Its values in Route 53.
    pub values: Vec<String>,
    /// The value the plan gives it in the recovery region.
    pub expected: String,
}

impl RecordCheck {
    /// Whether Route 53 answers the recovery region's value.
    pub fn points_to_recovery(&self) -> bool {
        self.values.len() == 1 && same_host(&self.values[0], &self.expected)
    }
}

fn same_host(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// What [`run_aws_failover`] did.
#[derive(Debug, Clone)]
pub struct AwsRun {
    /// Exit status: [`EXIT_OK`] when the run succeeded, met its targets (see
    /// [`targets_met_where_measured`]) and Route 53 answers the recovery region for every
    /// record; [`EXIT_FAILED`] otherwise; [`EXIT_INVALID`] for a bad plan or scenario or a
    /// missing AWS configuration.
    pub exit: u8,
    /// What was provisioned (absent when the run stopped before).
    pub provisioned: Option<Provisioned>,
    /// The executor's report (absent when the run stopped before).
    pub report: Option<RunReport>,
    /// The records, read back from Route 53.
    pub records: Vec<RecordCheck>,
    /// The promoted replica, described through RDS.
    pub replicas: Vec<DbStatus>,
}

impl AwsRun {
    fn stopped(exit: u8, provisioned: Option<Provisioned>) -> Self {
        AwsRun {
            exit,
            provisioned,
            report: None,
            records: Vec::new(),
            replicas: Vec::new(),
        }
    }
}

/// Loads the AWS configuration for `region`, or explains why there is none.
///
/// # Errors
/// A message for the user when neither an endpoint nor credentials are configured.
pub async fn load_aws(region: &str) -> Result<AwsConfig, String> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .filter(|e| !e.is_empty());
    AwsBuilder::from_env()
        .with_region(region)
        .load()
        .await
        .map_err(|e| match endpoint {
            Some(_) => format!("error: AWS configuration: {e}"),
            None => format!(
                "error: AWS_ENDPOINT_URL is not set and no AWS credentials were found ({e}).\n\
                 To run against moto: source scripts/standins/moto.sh && moto_start\n\
                 To run against AWS: configure credentials (environment, profile or SSO); \
                 the run creates resources."
            ),
        })
}

/// A failover ready to run: provisioned on the AWS endpoint, planned from what it reads.
#[derive(Debug)]
pub struct AwsPrepared {
    /// The plan with the names actually used.
    pub plan: Plan,
    /// The scenario.
    pub scenario: dr_core::plan::Scenario,
    /// What was provisioned.
    pub provisioned: Provisioned,
    /// The simulated side (clusters, workloads, notifications).
    pub sim: Simulation,
    /// RDS and Route 53 on the endpoint, the rest simulated.
    pub providers: Providers,
    /// The graph planned from the observed state.
    pub graph: dr_core::RecoveryGraph,
    /// The wall clock the run uses.
    pub clock: Clock,
}

impl AwsPrepared {
    /// An executor for the graph, on `providers` (these providers, possibly layered).
    pub fn executor(&self, providers: Providers, opts: &AwsRunOptions) -> Executor {
        Executor::new(providers)
            .clock(self.clock)
            .seed(opts.seed)
            .approvals(Arc::new(SimulatedOnCall {
                delay: opts.approval_delay,
            }))
    }

    /// Reads the records and the promoted replica back through the SDK.
    pub async fn read_back(
        &self,
        report: &RunReport,
        console: &Console,
    ) -> (Vec<RecordCheck>, Vec<DbStatus>) {
        let to = match &self.scenario.kind {
            dr_core::plan::ScenarioKind::RegionFailover(k) => k.to.clone(),
            _ => String::new(),
        };
        let records = read_records(&self.plan, &self.provisioned.dns, &to, console).await;
        let replicas = read_replicas(&self.plan, &self.provisioned.rds, report, &to, console).await;
        (records, replicas)
    }
}

/// Provisions `plan_path` on the AWS endpoint, fails the primary region on the simulated
/// side, observes and plans `scenario`: what [`run_aws_failover`] runs, for a caller that
/// runs it its own way (with a journal, a crash and a resume).
///
/// # Errors
/// The stopped run, with its exit status, after printing why.
pub async fn prepare_aws_failover(
    plan_path: &Path,
    scenario: &str,
    opts: &AwsRunOptions,
    console: &Console,
) -> Result<AwsPrepared, AwsRun> {
    let plan = match Plan::load(plan_path) {
        Ok(plan) => plan,
        Err(e) => {
            console.err(&format!("error: {e}"));
            return Err(AwsRun::stopped(EXIT_INVALID, None));
        }
    };
    let Some(sc) = plan.scenario(scenario).cloned() else {
        console.err(&format!(
            "error: {}: unknown scenario `{scenario}`",
            plan_path.display()
        ));
        return Err(AwsRun::stopped(EXIT_INVALID, None));
    };
    let primary_region = plan
        .primary_region()
        .map_or(dr_aws::DEFAULT_REGION, |r| r.name.as_str());
    let aws = match load_aws(primary_region).await {
        Ok(aws) => aws,
        Err(message) => {
            console.err(&message);
            return Err(AwsRun::stopped(EXIT_INVALID, None));
        }
    };
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(endpoint) if !endpoint.is_empty() => console.out(&format!("Endpoint: {endpoint}")),
        _ => console.out("Endpoint: AWS (credentials from the default chain)"),
    }

    console.out("\nProvisioning what the plan expects:");
    let provisioned = match provision(&aws, &plan, opts.suffix.as_deref(), console).await {
        Ok(p) => p,
        Err(e) => {
            console.err(&format!("error: provisioning: {e}"));
            return Err(AwsRun::stopped(EXIT_FAILED, None));
        }
    };
    let plan = provisioned.plan.clone();

    // The sim side: clusters, workloads and notifications. Its databases and DNS records are
    // provisioned too, but no step is routed to them.
    let sim = Simulation::new(&plan, opts.seed, crate::real_time_sim());
    sim.inject(&sc).await;
    let providers = providers(&plan, &provisioned, &sim);

    console.out(&format!(
        "\nIncident: {} (on the simulated side; AWS resources stay up)\n",
        sc.incident(&plan)
    ));
    // The wall clock: the simulated cloud's clock starts at a fixed date for reproducible
    // simulations, but this run's timestamps are real.
    let clock = Clock::new();
    let observed = ObservedState::observe(&plan, &providers, clock.now()).await;
    let graph = match planner::plan(&plan, &sc.name, &observed) {
        Ok(graph) => graph,
        Err(e @ PlanningError::Unrecoverable { .. }) => {
            console.err(&format!("error: {e}"));
            return Err(AwsRun::stopped(EXIT_FAILED, Some(provisioned)));
        }
        Err(e) => {
            console.err(&format!("error: {e}"));
            return Err(AwsRun::stopped(EXIT_INVALID, Some(provisioned)));
        }
    };
    console.out(&graph.to_string());

    Ok(AwsPrepared {
        plan,
        scenario: sc,
        provisioned,
        sim,
        providers,
        graph,
        clock,
    })
}

/// Provisions `plan_path` on the AWS endpoint, fails the primary region on the simulated
/// side, observes, plans `scenario`, runs it on the real clock with live progress, prints
/// the report and reads the result back through the SDK.
///
/// Must run on a normal (not paused) tokio runtime: the SDK's timers are real.
pub async fn run_aws_failover(
    plan_path: &Path,
    scenario: &str,
    opts: &AwsRunOptions,
    console: &Console,
) -> AwsRun {
    let prepared = match prepare_aws_failover(plan_path, scenario, opts, console).await {
        Ok(p) => p,
        Err(stopped) => return stopped,
    };
    let AwsPrepared {
        plan,
        scenario: sc,
        provisioned,
        providers,
        graph,
        clock,
        ..
    } = &prepared;
    let provisioned = provisioned.clone();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let executor = prepared.executor(providers.clone(), opts).events(tx);
    console.out("Progress (real time):");
    let printer = tokio::spawn(print_progress(rx, clock.now(), console.clone(), false));
    let report = executor.run(graph).await;
    drop(executor);
    let _ = printer.await;
    console.out(&format!("\n{report}"));

    console.out("Read back through the SDK:");
    let to = match &sc.kind {
        dr_core::plan::ScenarioKind::RegionFailover(k) => k.to.as_str(),
        _ => "",
    };
    let records = read_records(plan, &provisioned.dns, to, console).await;
    let replicas = read_replicas(plan, &provisioned.rds, &report, to, console).await;

    let unmeasured: Vec<&str> = report
        .services
        .iter()
        .filter(|s| s.achieved_rpo.is_none())
        .map(|s| s.name.as_str())
        .collect();
    if !unmeasured.is_empty() {
        console.out(&format!(
            "\nRPO not measured for {}: RDS publishes replica lag only as a CloudWatch \
             metric, so the data loss of the promotion is unknown (judged on RTO alone).",
            unmeasured.join(", ")
        ));
    }
    let records_ok = !records.is_empty() && records.iter().all(RecordCheck::points_to_recovery);
    let exit = if targets_met_where_measured(&report) && records_ok {
        EXIT_OK
    } else {
        EXIT_FAILED
    };
    AwsRun {
        exit,
        provisioned: Some(provisioned),
        report: Some(report),
        records,
        replicas,
    }
}

/// Whether the run succeeded and every service met its RTO and, where it was measured, its
/// RPO. RDS reports no replica lag (it is a CloudWatch metric), so the RPO of a promotion
/// is unknown on AWS; [`RunReport::targets_met`] counts unknown as missed.
pub fn targets_met_where_measured(report: &RunReport) -> bool {
    report.succeeded()
        && report.services.iter().all(|s| {
            s.achieved_rto.is_some_and(|rto| rto <= s.rto_target)
                && s.achieved_rpo.is_none_or(|rpo| rpo <= s.rpo_target)
        })
}

/// RDS per AWS region, Route 53 for the zone, S3 for the stores; the rest from the sim.
fn providers(plan: &Plan, p: &Provisioned, sim: &Simulation) -> Providers {
    let cloud = sim.cloud();
    let rds: Arc<dyn DatabaseReplica> = Arc::new(p.rds.clone());
    let mut providers = Providers::new()
        .with_cluster(cloud.cluster())
        .with_probe(cloud.probe())
        .with_notifier(cloud.notifier());
    for region in &plan.regions {
        providers = providers.with_database_in(&region.name, rds.clone());
    }
    for zone in &p.zones {
        providers = providers.with_dns_for_zone(zone, Arc::new(p.dns.clone()));
    }
    for (name, store) in &p.stores {
        providers = providers.with_store(name, Arc::new(store.clone()));
    }
    providers
}

async fn read_records(
    plan: &Plan,
    dns: &Route53Dns,
    to: &str,
    console: &Console,
) -> Vec<RecordCheck> {
    let mut checks = Vec::new();
    for def in &plan.dns {
        let Some(expected) = plan.dns_target(def, to) else {
            continue;
        };
        match dns.get_record(&def.zone, &def.name).await {
            Ok(record) => {
                let check = RecordCheck {
                    name: def.name.clone(),
                    values: record.values,
                    expected,
                };
                console.out(&format!(
                    "  route53 GetRecord {} -> {:?} ({})",
                    check.name,
                    check.values,
                    if check.points_to_recovery() {
                        format!("points to {to}")
                    } else {
                        format!("expected {}", check.expected)
                    }
                ));
                checks.push(check);
            }
            Err(e) => console.err(&format!("  route53 GetRecord {}: {e}", def.name)),
        }
    }
    checks
}

async fn read_replicas(
    plan: &Plan,
    rds: &RdsDatabase,
    report: &RunReport,
    to: &str,
    console: &Console,
) -> Vec<DbStatus> {
    let mut out = Vec::new();
    for db in &plan.databases {
        let Some(r) = db.replicas.iter().find(|r| r.region == to) else {
            continue;
        };
        let replica = DbRef::new(&r.region, &r.id);
        let asked = match report.step(&format!("{}/promote", db.name)) {
            Some(s) if s.already_done => "already promoted before the run".to_string(),
            Some(s) => format!("PromoteReadReplica step {}", s.status),
            None => "no promotion planned".to_string(),
        };
        match rds.describe(&replica).await {
            Ok(status) => {
                let role = match &status.role {
                    DbRole::Primary => "primary".to_string(),
                    DbRole::Replica { source } => format!(
                        "still names its source {source} (moto accepts promotions without \
                         modelling them)"
                    ),
                };
                console.out(&format!(
                    "  rds DescribeDBInstances {replica}: {}, {role}; {asked}",
                    status.state
                ));
                out.push(status);
            }
            Err(e) => console.err(&format!("  rds DescribeDBInstances {replica}: {e}")),
        }
    }
    out
}
