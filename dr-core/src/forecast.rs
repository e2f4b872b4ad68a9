//! The forecast as a distribution: a scenario run many times on the simulated cloud, with
//! step latencies drawn from distributions, gives each service's recovery time at the
//! 50th, 95th and 99th percentiles, the probability of meeting its RTO, and how often each
//! step lies on the critical path (its *criticality index*).
//!
//! # Latency distributions
//!
//! Each run draws, from its own seed, how long the simulated cloud takes for each kind of
//! step below, from the plan's `forecast.latency` ([`ForecastConfig`](crate::plan::ForecastConfig)) or else the default:
//! a log-normal distribution with the simulated cloud's nominal duration as median and
//! twice that as 95th percentile ([`LatencyDist::around`]).
//!
//! | step kind | what it drives | default p50 / p95 |
//! |---|---|---|
//! | `promote_replica` | a replica's promotion (waited for by `wait_database`) | 5m / 10m |
//! | `reboot_database` | a reboot | 3m / 6m |
//! | `restore_snapshot` | a restore from a snapshot | 20m / 40m |
//! | `restore_point_in_time` | a point-in-time restore | 25m / 50m |
//! | `create_db_snapshot` | taking a snapshot | 5m / 10m |
//! | `create_replica` | creating a read replica | 15m / 30m |
//! | `switch_dns` | DNS propagation | 1m / 2m |
//! | `wait_workload` (also `scale`, `rollout_restart`) | pods becoming ready | 30s / 1m |
//! | `approval` | the on-call engineer answering | 1m / 5m |
//!
//! Other steps (secrets, health checks, notifications, the plan's own steps) take the
//! simulated API latency (0.1–0.5 s per call).
//!
//! Each run goes through the executor with the concurrency limits a real run has: the
//! defaults with the plan's `limits:` section applied over them (the planned graph carries
//! it), so a limit of 1 on a DNS zone lengthens the forecast as it lengthens the recovery.
//!
//! Runs are seeded (run *i* uses a seed derived from `(seed, i)` for the cloud, the
//! executor and its own stream of draws), so a forecast is reproducible.
//!
//! A run can fail: a drawn duration beyond a step's timeout (an approval answered after the
//! gate's timeout, a promotion slower than its wait) fails the step as it would in an
//! incident. Such runs count as not recovered: percentiles above their share read "not
//! recovered", and they lower the probability of meeting each RTO.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::duration::human;
use crate::executor::{ApprovalHook, ApprovalRequest, Decision, Executor, RunReport};
use crate::plan::{LatencyDist, Plan};
use crate::planner::{self, PlanningError};
use crate::sim::SimConfig;
use crate::simulation::Simulation;
use crate::step::StepRegistry;
use crate::{HumanDuration, RecoveryGraph};

/// Why a forecast could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForecastError {
    /// The scenario cannot be planned.
    #[error(transparent)]
    Planning(#[from] PlanningError),
    /// A latency distribution is malformed.
    #[error("forecast.latency.{kind}: {message}")]
    Latency {
        /// The step kind.
        kind: String,
        /// What is wrong.
        message: String,
    },
    /// No runs were asked for.
    #[error("a forecast needs at least one run")]
    NoRuns,
}

/// How a forecast runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastOptions {
    /// Runs (default 1,000).
    pub runs: usize,
    /// Seed of the first run (default 42).
    pub seed: u64,
}

impl Default for ForecastOptions {
    fn default() -> Self {
        ForecastOptions {
            runs: 1000,
            seed: 42,
        }
    }
}

/// Recovery times at three percentiles; `None` where the service was not recovered in that
/// share of the runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Percentiles {
    /// 50th percentile.
    #[serde(rename = "p50_seconds", with = "crate::duration::seconds_opt")]
    pub p50: Option<Duration>,
    /// 95th percentile.
    #[serde(rename = "p95_seconds", with = "crate::duration::seconds_opt")]
    pub p95: Option<Duration>,
    /// 99th percentile.
    #[serde(rename = "p99_seconds", with = "crate::duration::seconds_opt")]
    pub p99: Option<Duration>,
}

impl Percentiles {
    /// Nearest-rank percentiles of `values` (`None` = not recovered, sorted last).
    fn of(mut values: Vec<Option<Duration>>) -> Self {
        values.sort_by_key(|v| (v.is_none(), *v));
        let at = |p: f64| {
            if values.is_empty() {
                return None;
            }
            let rank = ((p * values.len() as f64).ceil() as usize).clamp(1, values.len());
            values[rank - 1]
        };
        Percentiles {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
        }
    }
}

/// One service's recovery time as a distribution.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ServiceDistribution {
    /// Service name.
    pub name: String,
    /// Its RTO target.
    #[serde(rename = "rto_target_seconds", with = "crate::duration::seconds")]
    pub rto_target: Duration,
    /// Recovery time percentiles.
    #[serde(flatten)]
    pub recovery: Percentiles,
    /// Share of runs in which it was recovered within its RTO.
    pub p_meet_rto: f64,
    /// Share of runs in which it was recovered at all.
    pub p_recovered: f64,
}

/// How often one step lay on the run's critical path.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StepCriticality {
    /// Step id.
    pub id: String,
    /// Its kind.
    pub kind: String,
    /// Share of runs in which it was on the critical path (0 to 1).
    pub index: f64,
}

/// The result of [`forecast`]: see the [module docs](self).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Forecast {
    /// Plan name.
    pub plan: String,
    /// Scenario name.
    pub scenario: String,
    /// Runs made.
    pub runs: usize,
    /// Seed of the first run.
    pub seed: u64,
    /// Share of runs that succeeded.
    pub p_succeeded: f64,
    /// The whole scenario's recovery time (to its last critical step).
    pub recovery: Percentiles,
    /// The planner's single-number forecast, for comparison.
    #[serde(rename = "point_forecast_seconds", with = "crate::duration::seconds")]
    pub point_forecast: Duration,
    /// Per service.
    pub services: Vec<ServiceDistribution>,
    /// Per step, most critical first.
    pub steps: Vec<StepCriticality>,
    /// The distributions used, by step kind.
    pub latency: BTreeMap<String, LatencyDist>,
}

impl Forecast {
    /// A service by name.
    pub fn service(&self, name: &str) -> Option<&ServiceDistribution> {
        self.services.iter().find(|s| s.name == name)
    }

    /// A step's criticality index by id.
    pub fn criticality(&self, id: &str) -> Option<f64> {
        self.steps.iter().find(|s| s.id == id).map(|s| s.index)
    }
}

fn opt(d: Option<Duration>) -> String {
    d.map_or_else(|| "not recovered".into(), human)
}

impl fmt::Display for Forecast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Forecast: plan {} / scenario {} — {} runs on the simulated cloud (seed {})",
            self.plan, self.scenario, self.runs, self.seed
        )?;
        writeln!(
            f,
            "Recovery: p50 {}  p95 {}  p99 {}  (point forecast {}; {:.1}% of runs succeeded)\n",
            opt(self.recovery.p50),
            opt(self.recovery.p95),
            opt(self.recovery.p99),
            human(self.point_forecast),
            self.p_succeeded * 100.0
        )?;
        writeln!(
            f,
            "{:<20} {:>10} {:>10} {:>10} {:>10} {:>12}",
            "service", "RTO", "p50", "p95", "p99", "P(meet RTO)"
        )?;
        for s in &self.services {
            writeln!(
                f,
                "{:<20} {:>10} {:>10} {:>10} {:>10} {:>11.1}%",
                s.name,
                human(s.rto_target),
                opt(s.recovery.p50),
                opt(s.recovery.p95),
                opt(s.recovery.p99),
                s.p_meet_rto * 100.0
            )?;
        }
        writeln!(
            f,
            "\nCriticality index (share of runs on the critical path):"
        )?;
        for s in self.steps.iter().filter(|s| s.index > 0.0) {
            writeln!(f, "  {:>6.1}%  {:<40} {}", s.index * 100.0, s.id, s.kind)?;
        }
        Ok(())
    }
}

/// Which [`SimConfig`] duration each step kind drives; the first kind the plan configures
/// wins for a shared duration.
/// A [`SimConfig`] duration, by the step kinds that drive it.
type Driver = (
    &'static [&'static str],
    fn(&mut SimConfig) -> &mut HumanDuration,
);

const DRIVERS: [Driver; 8] = [
    (&["promote_replica"], |c| &mut c.promote),
    (&["reboot_database"], |c| &mut c.reboot),
    (&["restore_snapshot"], |c| &mut c.restore),
    (&["restore_point_in_time"], |c| &mut c.pitr),
    (&["create_db_snapshot"], |c| &mut c.snapshot),
    (&["create_replica"], |c| &mut c.create_replica),
    (&["switch_dns"], |c| &mut c.dns_propagation),
    (&["wait_workload", "scale", "rollout_restart"], |c| {
        &mut c.rollout
    }),
];

/// The default on-call answer time.
fn approval_default() -> LatencyDist {
    LatencyDist::Percentiles {
        p50: HumanDuration::from_secs(60),
        p95: HumanDuration::from_secs(300),
    }
}

/// The distributions a forecast of `plan` uses, by step kind: the plan's, else the
/// defaults in the [module docs](self).
///
/// # Errors
/// [`ForecastError::Latency`] for a malformed distribution.
pub fn latency_model(plan: &Plan) -> Result<BTreeMap<String, LatencyDist>, ForecastError> {
    let given = plan.forecast.clone().unwrap_or_default();
    for (kind, d) in &given.latency {
        d.check().map_err(|message| ForecastError::Latency {
            kind: kind.clone(),
            message,
        })?;
    }
    let mut model = BTreeMap::new();
    let mut nominal = SimConfig::default();
    for (kinds, field) in DRIVERS {
        let chosen = kinds
            .iter()
            .find_map(|k| given.latency.get(*k).map(|d| (*k, *d)));
        match chosen {
            Some((k, d)) => {
                model.insert(k.to_string(), d);
            }
            None => {
                model.insert(
                    kinds[0].to_string(),
                    LatencyDist::around(field(&mut nominal).get()),
                );
            }
        }
    }
    model.insert(
        "approval".into(),
        given
            .latency
            .get("approval")
            .copied()
            .unwrap_or_else(approval_default),
    );
    Ok(model)
}

/// SplitMix64: the draws of one run.
struct Draws(u64);

impl Draws {
    fn next_unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // 53 random bits in [0, 1).
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Debug)]
struct AnswerAfter(Duration);

#[async_trait]
impl ApprovalHook for AnswerAfter {
    async fn decide(&self, _request: &ApprovalRequest) -> crate::Result<Decision> {
        tokio::time::sleep(self.0).await;
        Ok(Decision::Approve)
    }
}

/// The step ids on the run's actual critical path: from the critical step that finished
/// last, back through the dependency that finished last, to the start.
fn actual_critical_path(graph: &RecoveryGraph, report: &RunReport) -> Vec<usize> {
    let index: BTreeMap<&str, usize> = report
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let last = graph
        .steps
        .iter()
        .zip(&report.steps)
        .enumerate()
        .filter(|(_, (g, _))| g.critical)
        .filter_map(|(i, (_, r))| r.finished_at.map(|t| (t, i)))
        .max();
    let mut path = Vec::new();
    let mut at = last.map(|(_, i)| i);
    while let Some(i) = at {
        path.push(i);
        at = report.steps[i]
            .depends_on
            .iter()
            .filter_map(|d| index.get(d.as_str()).copied())
            .filter_map(|j| report.steps[j].finished_at.map(|t| (t, j)))
            .max()
            .map(|(_, j)| j);
        if path.len() > report.steps.len() {
            break;
        }
    }
    path
}

/// Runs `scenario` of `plan` `opts.runs` times on the simulated cloud with latencies drawn
/// from [`latency_model`], and aggregates the reports. Must run on a paused tokio clock
/// (`start_paused = true`): simulated minutes then pass at once.
///
/// # Errors
/// The scenario cannot be planned, a distribution is malformed, or no runs were asked for.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// use dr_core::forecast::{forecast, ForecastOptions};
/// use dr_core::plan::Plan;
///
/// let plan = Plan::load(std::path::Path::new("examples/plans/region-failover.yaml")).unwrap();
/// let f = forecast(&plan, "region-failover", &ForecastOptions::default()).await.unwrap();
/// println!("{f}");
/// let api = f.service("api").unwrap();
/// println!("P(api within its RTO) = {:.3}", api.p_meet_rto);
/// # }
/// ```
pub async fn forecast(
    plan: &Plan,
    scenario: &str,
    opts: &ForecastOptions,
) -> Result<Forecast, ForecastError> {
    forecast_with(plan, scenario, opts, &StepRegistry::builtin()).await
}

/// [`forecast`], with the plan's own steps built from `registry`.
///
/// # Errors
/// As [`forecast`].
pub async fn forecast_with(
    plan: &Plan,
    scenario: &str,
    opts: &ForecastOptions,
    registry: &StepRegistry,
) -> Result<Forecast, ForecastError> {
    if opts.runs == 0 {
        return Err(ForecastError::NoRuns);
    }
    let model = latency_model(plan)?;
    let sc = plan
        .scenario(scenario)
        .ok_or_else(|| PlanningError::UnknownScenario {
            name: scenario.to_string(),
            known: plan
                .scenarios
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })?;

    let mut overall = Vec::with_capacity(opts.runs);
    let mut per_service: BTreeMap<String, Vec<Option<Duration>>> = BTreeMap::new();
    let mut on_path: BTreeMap<String, (String, usize)> = BTreeMap::new();
    let mut succeeded = 0usize;
    let mut point_forecast = Duration::ZERO;
    let mut targets: BTreeMap<String, Duration> = BTreeMap::new();

    for i in 0..opts.runs {
        let run_seed = {
            let mut d = Draws(opts.seed ^ (i as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
            d.next_unit();
            d.0
        };
        let mut draws = Draws(run_seed ^ 0x5DEE_CE66);
        let mut config = SimConfig::default();
        for (kinds, field) in DRIVERS {
            if let Some(d) = kinds.iter().find_map(|k| model.get(*k)) {
                *field(&mut config) = d.sample(draws.next_unit()).into();
            }
        }
        let approval = model
            .get("approval")
            .copied()
            .unwrap_or_else(approval_default)
            .sample(draws.next_unit());

        let sim = Simulation::new(plan, run_seed, config);
        sim.inject(sc).await;
        let observed = sim.observe().await;
        let graph = planner::plan_with(plan, scenario, &observed, registry)?;
        let report = Executor::new(sim.providers())
            .clock(sim.cloud().clock())
            .seed(run_seed)
            .approvals(Arc::new(AnswerAfter(approval)))
            .run(&graph)
            .await;

        if i == 0 {
            point_forecast = graph.forecast;
            for s in &graph.steps {
                on_path
                    .entry(s.id.to_string())
                    .or_insert_with(|| (s.action.kind().to_string(), 0));
            }
        }
        if report.succeeded() {
            succeeded += 1;
            overall.push(Some(report.achieved_rto));
        } else {
            overall.push(None);
        }
        for s in &report.services {
            targets.insert(s.name.clone(), s.rto_target);
            per_service
                .entry(s.name.clone())
                .or_default()
                .push(s.achieved_rto);
        }
        for j in actual_critical_path(&graph, &report) {
            let step = &report.steps[j];
            on_path
                .entry(step.id.clone())
                .or_insert_with(|| (step.action.clone(), 0))
                .1 += 1;
        }
    }

    let n = opts.runs as f64;
    let services = per_service
        .into_iter()
        .map(|(name, values)| {
            let rto = targets.get(&name).copied().unwrap_or_default();
            let met = values
                .iter()
                .filter(|v| v.is_some_and(|d| d <= rto))
                .count();
            let recovered = values.iter().filter(|v| v.is_some()).count();
            ServiceDistribution {
                name,
                rto_target: rto,
                recovery: Percentiles::of(values),
                p_meet_rto: met as f64 / n,
                p_recovered: recovered as f64 / n,
            }
        })
        .collect();
    let mut steps: Vec<StepCriticality> = on_path
        .into_iter()
        .map(|(id, (kind, count))| StepCriticality {
            id,
            kind,
            index: count as f64 / n,
        })
        .collect();
    steps.sort_by(|a, b| b.index.total_cmp(&a.index).then_with(|| a.id.cmp(&b.id)));

    Ok(Forecast {
        plan: plan.name.clone(),
        scenario: scenario.to_string(),
        runs: opts.runs,
        seed: opts.seed,
        p_succeeded: succeeded as f64 / n,
        recovery: Percentiles::of(overall),
        point_forecast,
        services,
        steps,
        latency: model,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<Option<Duration>> =
            (1..=100).map(|s| Some(Duration::from_secs(s))).collect();
        let p = Percentiles::of(values);
        assert_eq!(p.p50, Some(Duration::from_secs(50)));
        assert_eq!(p.p95, Some(Duration::from_secs(95)));
        assert_eq!(p.p99, Some(Duration::from_secs(99)));
        // Two runs in a hundred did not recover: the 99th percentile is "not recovered".
        let mut values: Vec<Option<Duration>> =
            (1..=98).map(|s| Some(Duration::from_secs(s))).collect();
        values.extend([None, None]);
        assert_eq!(Percentiles::of(values).p99, None);
    }

    #[test]
    fn draws_are_uniform_enough() {
        let mut d = Draws(7);
        let xs: Vec<f64> = (0..10_000).map(|_| d.next_unit()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
    }
}
