//! The report of a run: what happened to every step and whether the targets were met.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::duration::human;
use crate::graph::Risk;

mod md;

/// How a run ended. A run whose critical steps all succeeded is `succeeded`, even when
/// optional steps failed (see [`RunReport::degraded`]).
///
/// # Examples
///
/// ```
/// use dr_core::executor::Outcome;
///
/// assert_eq!(serde_json::to_string(&Outcome::Failed).unwrap(), "\"failed\"");
/// assert_eq!(Outcome::Succeeded.to_string(), "succeeded");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every critical step succeeded.
    Succeeded,
    /// A critical step failed, was skipped or did not run.
    Failed,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
        })
    }
}

/// What happened to one step.
///
/// # Examples
///
/// ```
/// use dr_core::executor::StepStatus;
///
/// assert_eq!(serde_json::to_string(&StepStatus::NotRun).unwrap(), "\"not_run\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// It succeeded (or its effect was already in place).
    Succeeded,
    /// It failed.
    Failed,
    /// It was not run because a dependency failed or was skipped.
    Skipped,
    /// It was not started: the run stopped after a critical failure first.
    NotRun,
}

impl fmt::Display for StepStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
            StepStatus::NotRun => "not_run",
        })
    }
}

/// One step in a [`RunReport`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StepReport {
    /// Step id.
    pub id: String,
    /// Its step kind.
    pub action: String,
    /// The steps it waited for: a reader can check the order it ran in.
    pub depends_on: Vec<String>,
    /// The service it recovers, if any.
    pub service: Option<String>,
    /// When its first attempt (or read-back) began; `null` if it did not run.
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished; `null` if it did not run.
    pub finished_at: Option<DateTime<Utc>>,
    /// Attempts made (0 when skipped, not run, or already done).
    pub attempts: u32,
    /// What happened.
    pub status: StepStatus,
    /// Its effect was found already in place by a read-back, so it was not (re-)executed.
    pub already_done: bool,
    /// The final error, or for a skipped step why it was skipped.
    pub error: Option<String>,
    /// Data-loss window the step recorded (replica lag, snapshot age, restore point age).
    #[serde(rename = "data_loss_seconds", with = "crate::duration::seconds_opt")]
    pub data_loss: Option<Duration>,
    /// What the step produced (a command's exit status and output, a webhook's status and
    /// body), capped in size and with secrets masked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<serde_json::Value>,
}

/// One piece of evidence a run kept (an object written once to the evidence store, a
/// volume snapshot), with the step that kept it.
///
/// # Examples
///
/// ```
/// use dr_core::executor::EvidenceReport;
/// use dr_core::step::security::Evidence;
///
/// let e = EvidenceReport {
///     step: "api/export:east/shop".into(),
///     evidence: Evidence::Object { store: "evidence".into(), key: "k".into(), size: 3, sha256: "ab".into() },
/// };
/// let json = serde_json::to_value(&e).unwrap();
/// assert_eq!((json["step"].as_str(), json["kind"].as_str()), (Some("api/export:east/shop"), Some("object")));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EvidenceReport {
    /// The step that kept it.
    pub step: String,
    /// What it is.
    #[serde(flatten)]
    pub evidence: crate::step::security::Evidence,
}

impl fmt::Display for EvidenceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::step::security::Evidence;
        match &self.evidence {
            Evidence::Object {
                store,
                key,
                size,
                sha256,
            } => write!(f, "object {store}/{key} ({size} bytes, sha256 {sha256})"),
            Evidence::VolumeSnapshot { region, volume, id } => {
                write!(f, "volume snapshot {id} of {region}/{volume}")
            }
        }
    }
}

/// One service in a [`RunReport`]: targets against what was achieved.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ServiceReport {
    /// Service name.
    pub name: String,
    /// RTO target.
    #[serde(rename = "rto_target_seconds", with = "crate::duration::seconds")]
    pub rto_target: Duration,
    /// Forecast RTO from the graph.
    #[serde(rename = "forecast_rto_seconds", with = "crate::duration::seconds")]
    pub forecast_rto: Duration,
    /// Run start to the finish of the service's last step; `null` if it was not recovered
    /// (a critical step of the service did not succeed).
    #[serde(rename = "achieved_rto_seconds", with = "crate::duration::seconds_opt")]
    pub achieved_rto: Option<Duration>,
    /// RPO target.
    #[serde(rename = "rpo_target_seconds", with = "crate::duration::seconds")]
    pub rpo_target: Duration,
    /// Largest data-loss window recorded by the service's steps and every step they
    /// transitively depend on; 0 when nothing was lost, `null` when unknown (a promotion or
    /// restore among them recorded none).
    #[serde(rename = "achieved_rpo_seconds", with = "crate::duration::seconds_opt")]
    pub achieved_rpo: Option<Duration>,
    /// Recovered, and both RTO and RPO within their targets.
    pub met: bool,
}

/// The outcome of [`Executor::run`](super::Executor::run): every step, every service, and
/// the achieved recovery time against the forecast.
///
/// Serialises (`to_json`) with stable field names for `--json` output; `Display` renders a
/// text report for people.
///
/// # Examples
///
/// ```no_run
/// # async fn demo(executor: dr_core::executor::Executor, graph: dr_core::RecoveryGraph) {
/// let report = executor.run(&graph).await;
/// println!("{report}");
/// if !report.succeeded() {
///     eprintln!("{}", report.to_json());
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunReport {
    /// `succeeded` when every critical step succeeded, else `failed`.
    pub outcome: Outcome,
    /// An optional step failed, was skipped or did not run.
    pub degraded: bool,
    /// Plan name.
    pub plan: String,
    /// Scenario name.
    pub scenario: String,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// When the run finished.
    pub finished_at: DateTime<Utc>,
    /// Forecast RTO of the whole scenario (length of the critical path).
    #[serde(rename = "forecast_rto_seconds", with = "crate::duration::seconds")]
    pub forecast_rto: Duration,
    /// Run start to the finish of the last critical step; for a failed run, the time until
    /// the run stopped.
    #[serde(rename = "achieved_rto_seconds", with = "crate::duration::seconds")]
    pub achieved_rto: Duration,
    /// Step ids of the forecast critical path.
    pub critical_path: Vec<String>,
    /// Per-service targets and results.
    pub services: Vec<ServiceReport>,
    /// Every step, in graph order.
    pub steps: Vec<StepReport>,
    /// Risks the planner found before the run.
    pub risks: Vec<Risk>,
    /// Retries the run made in all (step attempts and reads), against its budget.
    pub retries: u64,
    /// The run's id (its journal's), when it has one.
    pub run_id: Option<String>,
    /// Whether the run was resumed from its journal after an interruption.
    pub resumed: bool,
    /// The fencing token of the lease the run held, if it held one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fencing_token: Option<u64>,
    /// Safety gates overridden explicitly (data loss accepted beyond an RPO, a step issued
    /// again after a crash by approval).
    pub overrides: Vec<super::OverrideReport>,
    /// What was undone after a critical failure, and what could not be.
    pub compensated: Vec<super::CompensationReport>,
    /// Every piece of evidence the run kept (objects with their size and SHA-256, volume
    /// snapshot ids), in step order. The run never deletes any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<EvidenceReport>,
    /// Why the run could not start or went on without its journal, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RunReport {
    /// `true` when the outcome is [`Outcome::Succeeded`].
    pub fn succeeded(&self) -> bool {
        self.outcome == Outcome::Succeeded
    }

    /// `true` when the run succeeded and every service met its RTO and RPO targets.
    pub fn targets_met(&self) -> bool {
        self.succeeded() && self.services.iter().all(|s| s.met)
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\": \"report serialisation failed: {e}\"}}"))
    }

    /// A step by id.
    pub fn step(&self, id: &str) -> Option<&StepReport> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// A service by name.
    pub fn service(&self, name: &str) -> Option<&ServiceReport> {
        self.services.iter().find(|s| s.name == name)
    }
}

fn opt(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_string(), human)
}

fn offset(d: Duration) -> String {
    let s = d.as_secs();
    format!("+{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

fn since(start: DateTime<Utc>, t: DateTime<Utc>) -> Duration {
    (t - start).to_std().unwrap_or_default()
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Recovery run: plan {} / scenario {}",
            self.plan, self.scenario
        )?;
        let degraded = if self.degraded { " (degraded)" } else { "" };
        writeln!(f, "Outcome:  {}{degraded}", self.outcome)?;
        if let Some(id) = &self.run_id {
            let resumed = if self.resumed {
                " (resumed from its journal)"
            } else {
                ""
            };
            writeln!(f, "Run:      {id}{resumed}")?;
        }
        writeln!(
            f,
            "RTO:      achieved {} (forecast {})",
            human(self.achieved_rto),
            human(self.forecast_rto)
        )?;
        writeln!(
            f,
            "Started:  {}   Finished: {}",
            self.started_at.to_rfc3339(),
            self.finished_at.to_rfc3339()
        )?;

        if !self.services.is_empty() {
            writeln!(f)?;
            writeln!(
                f,
                "{:<20} {:>10} {:>10} {:>10} {:>10}  met",
                "service", "RTO target", "achieved", "RPO target", "achieved"
            )?;
            for s in &self.services {
                writeln!(
                    f,
                    "{:<20} {:>10} {:>10} {:>10} {:>10}  {}",
                    s.name,
                    human(s.rto_target),
                    opt(s.achieved_rto),
                    human(s.rpo_target),
                    opt(s.achieved_rpo),
                    if s.met { "✓" } else { "✗" }
                )?;
            }
        }

        writeln!(f)?;
        writeln!(f, "Timeline:")?;
        // In the order things happened; steps that never started last.
        let mut timeline: Vec<&StepReport> = self.steps.iter().collect();
        timeline.sort_by_key(|s| (s.started_at.is_none(), s.started_at));
        for s in timeline {
            let at = s.started_at.map_or_else(
                || "         ".to_string(),
                |t| offset(since(self.started_at, t)),
            );
            let what = match s.status {
                StepStatus::Succeeded if s.already_done => "ok (already done)".to_string(),
                StepStatus::Succeeded => format!(
                    "ok ({} attempt{})",
                    s.attempts,
                    if s.attempts == 1 { "" } else { "s" }
                ),
                StepStatus::Failed => format!(
                    "FAILED ({} attempt{})",
                    s.attempts,
                    if s.attempts == 1 { "" } else { "s" }
                ),
                StepStatus::Skipped => "skipped".to_string(),
                StepStatus::NotRun => "not run".to_string(),
            };
            let took = match (s.started_at, s.finished_at) {
                (Some(a), Some(b)) => format!(" in {}", human(since(a, b))),
                _ => String::new(),
            };
            let loss = s
                .data_loss
                .map_or_else(String::new, |d| format!(", data loss {}", human(d)));
            writeln!(f, "{at}  {:<22} {:<28} {what}{took}{loss}", s.action, s.id)?;
        }

        let errors: Vec<&StepReport> = self.steps.iter().filter(|s| s.error.is_some()).collect();
        if !errors.is_empty() {
            writeln!(f)?;
            writeln!(f, "Errors:")?;
            for s in errors {
                if let Some(e) = &s.error {
                    writeln!(f, "  {} ({}): {e}", s.id, s.status)?;
                }
            }
        }

        if !self.overrides.is_empty() {
            writeln!(f)?;
            writeln!(f, "Overrides:")?;
            for o in &self.overrides {
                writeln!(f, "  {} [{} gate] {}", o.step, o.gate, o.detail)?;
            }
        }
        if !self.compensated.is_empty() {
            writeln!(f)?;
            writeln!(f, "Compensation (in reverse order):")?;
            for c in &self.compensated {
                match &c.reason {
                    None => writeln!(f, "  {} ({}): undone", c.step, c.action)?,
                    Some(r) => writeln!(f, "  {} ({}): NOT undone: {r}", c.step, c.action)?,
                }
            }
        }
        if !self.evidence.is_empty() {
            writeln!(f)?;
            writeln!(f, "Evidence (kept, never deleted by the run):")?;
            for e in &self.evidence {
                writeln!(f, "  {e}   [{}]", e.step)?;
            }
        }
        if let Some(e) = &self.error {
            writeln!(f)?;
            writeln!(f, "Error: {e}")?;
        }

        if !self.risks.is_empty() {
            writeln!(f)?;
            writeln!(f, "Risks:")?;
            for r in &self.risks {
                match &r.service {
                    Some(svc) => writeln!(f, "  [{svc}] {}", r.message)?,
                    None => writeln!(f, "  {}", r.message)?,
                }
            }
        }
        Ok(())
    }
}

/// Builds the report from the final state of every step.
pub(super) fn build(
    graph: &crate::RecoveryGraph,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    states: Vec<super::State>,
    retries: u64,
) -> RunReport {
    use super::State;
    use std::collections::{HashMap, HashSet};

    let steps: Vec<StepReport> = graph
        .steps
        .iter()
        .zip(states)
        .map(|(step, state)| {
            let mut r = StepReport {
                id: step.id.to_string(),
                action: step.action.kind().to_string(),
                depends_on: step.depends_on.iter().map(|d| d.to_string()).collect(),
                service: step.service.as_deref().map(str::to_string),
                output: None,
                started_at: None,
                finished_at: None,
                attempts: 0,
                status: StepStatus::NotRun,
                already_done: false,
                error: None,
                data_loss: None,
            };
            match state {
                State::Pending | State::Running { .. } => {}
                State::Skipped { reason } => {
                    r.status = StepStatus::Skipped;
                    r.error = Some(reason);
                }
                State::Finished(f) => {
                    let f = *f;
                    r.started_at = Some(f.started_at);
                    r.finished_at = Some(f.finished_at);
                    r.attempts = f.attempts;
                    r.already_done = f.already_done;
                    r.data_loss = f.data_loss;
                    r.output = f.output;
                    match f.result {
                        Ok(()) => r.status = StepStatus::Succeeded,
                        Err(e) => {
                            r.status = StepStatus::Failed;
                            r.error = Some(e.to_string());
                        }
                    }
                }
            }
            r
        })
        .collect();

    let ok = |r: &StepReport| r.status == StepStatus::Succeeded;
    let outcome = if graph
        .steps
        .iter()
        .zip(&steps)
        .all(|(s, r)| !s.critical || ok(r))
    {
        Outcome::Succeeded
    } else {
        Outcome::Failed
    };
    let degraded = graph
        .steps
        .iter()
        .zip(&steps)
        .any(|(s, r)| !s.critical && !ok(r));

    let elapsed = |t: DateTime<Utc>| since(started_at, t);
    let achieved_rto = match outcome {
        Outcome::Succeeded => graph
            .steps
            .iter()
            .zip(&steps)
            .filter(|(s, _)| s.critical)
            .filter_map(|(_, r)| r.finished_at)
            .map(elapsed)
            .max()
            .unwrap_or_default(),
        Outcome::Failed => elapsed(finished_at),
    };

    let index: HashMap<&str, usize> = graph
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let services = graph
        .services
        .iter()
        .map(|svc| {
            let own: Vec<usize> = graph
                .steps
                .iter()
                .enumerate()
                .filter(|(_, s)| s.service.as_deref() == Some(svc.name.as_str()))
                .map(|(i, _)| i)
                .collect();
            let recovered = own
                .iter()
                .all(|&i| !graph.steps[i].critical || ok(&steps[i]));
            let achieved_rto = recovered.then(|| {
                own.iter()
                    .filter_map(|&i| steps[i].finished_at)
                    .map(elapsed)
                    .max()
                    .unwrap_or_default()
            });
            // The service's steps and everything they transitively depend on.
            let mut seen: HashSet<usize> = HashSet::new();
            let mut todo = own.clone();
            while let Some(i) = todo.pop() {
                if seen.insert(i) {
                    for d in &graph.steps[i].depends_on {
                        if let Some(&j) = index.get(d.as_str()) {
                            todo.push(j);
                        }
                    }
                }
            }
            let mut achieved_rpo = Some(Duration::ZERO);
            for &i in &seen {
                let loses_data = graph.steps[i].action.loses_data();
                match (steps[i].data_loss, loses_data) {
                    (Some(d), _) => achieved_rpo = achieved_rpo.map(|m| m.max(d)),
                    (None, true) => achieved_rpo = None,
                    (None, false) => {}
                }
                if achieved_rpo.is_none() {
                    break;
                }
            }
            let met = match (achieved_rto, achieved_rpo) {
                (Some(rto), Some(rpo)) => rto <= svc.rto_target && rpo <= svc.rpo_target,
                _ => false,
            };
            ServiceReport {
                name: svc.name.clone(),
                rto_target: svc.rto_target,
                forecast_rto: svc.forecast_rto,
                achieved_rto,
                rpo_target: svc.rpo_target,
                achieved_rpo,
                met,
            }
        })
        .collect();

    let evidence = steps
        .iter()
        .filter(|r| ok(r))
        .flat_map(|r| {
            r.output
                .as_ref()
                .map(crate::step::security::Evidence::from_output)
                .unwrap_or_default()
                .into_iter()
                .map(|evidence| EvidenceReport {
                    step: r.id.clone(),
                    evidence,
                })
        })
        .collect();

    RunReport {
        outcome,
        degraded,
        plan: graph.plan.clone(),
        scenario: graph.scenario.clone(),
        started_at,
        finished_at,
        forecast_rto: graph.forecast,
        achieved_rto,
        critical_path: graph.critical_path.clone(),
        services,
        steps,
        risks: graph.risks.clone(),
        retries,
        run_id: None,
        resumed: false,
        fencing_token: None,
        overrides: Vec::new(),
        compensated: Vec::new(),
        evidence,
        error: None,
    }
}
