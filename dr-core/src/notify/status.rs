//! What people hear while a run is under way: status-page phases, an escalation schedule,
//! RTO warnings and periodic updates, all driven by the executor's [`RunEvent`] stream.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::duration::human;
use crate::executor::{Outcome, RunEvent};
use crate::provider::{Notification, Notifier, Severity};
use crate::{Clock, HumanDuration, RecoveryGraph};

/// A status-page phase, as in the runbooks' templates.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Initial acknowledgment: the run started.
    Investigating,
    /// The cause is known and the recovery is under way: the first recovery step started.
    Identified,
    /// The fix is deployed, stability is being watched: the first health verification
    /// started.
    Monitoring,
    /// Full service restored: the run succeeded.
    Resolved,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Investigating => "Investigating",
            Phase::Identified => "Identified",
            Phase::Monitoring => "Monitoring",
            Phase::Resolved => "Resolved",
        })
    }
}

/// One level of an escalation schedule: who hears of the incident once it has been open
/// for `after`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationLevel {
    /// Time since the incident started.
    pub after: HumanDuration,
    /// Who (`management`, `executives`): named in the notification.
    pub audience: String,
    /// The channel it goes to.
    pub channel: String,
}

/// How [`IncidentComms`] keeps people informed. Deserialises from a plan-like document:
///
/// ```yaml
/// channels: [status-page, incidents]
/// update_every: 30m
/// rto_warning: 0.8
/// escalation:
///   - { after: 0m,  audience: on-call engineer, channel: pager }
///   - { after: 15m, audience: management,       channel: management }
/// ```
///
/// # Examples
///
/// ```
/// use dr_core::notify::CommsConfig;
///
/// let config: CommsConfig = serde_json::from_str(r#"{"channels": ["status-page"]}"#).unwrap();
/// assert_eq!(config.update_every.unwrap().get().as_secs(), 30 * 60);
/// assert_eq!(config.rto_warning, 0.8);
/// assert!(config.escalation.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CommsConfig {
    /// Channels that get every phase, update and RTO warning (a status page, a chat room).
    pub channels: Vec<String>,
    /// Periodic updates while the run is under way (default every 30 minutes, as the
    /// runbooks ask); `None` for none.
    pub update_every: Option<HumanDuration>,
    /// Warn when this fraction of a service's RTO has elapsed and it is not recovered yet
    /// (default 0.8); 0 or less turns the warnings off.
    pub rto_warning: f64,
    /// The escalation schedule.
    pub escalation: Vec<EscalationLevel>,
    /// What the incident's impact is, in words (default: the affected services).
    pub impact: Option<String>,
}

impl Default for CommsConfig {
    fn default() -> Self {
        CommsConfig {
            channels: Vec::new(),
            update_every: Some(HumanDuration::from_secs(30 * 60)),
            rto_warning: 0.8,
            escalation: Vec::new(),
            impact: None,
        }
    }
}

impl CommsConfig {
    /// The escalation matrix of the runbooks (0 min on-call engineer, 5 min incident
    /// declared, 15 min management, 30 min customers, 60 min executives), all to `channel`.
    pub fn runbook_escalation(mut self, channel: &str) -> Self {
        self.escalation = [
            (0, "on-call engineer"),
            (5, "incident declared: engineering manager"),
            (15, "management"),
            (30, "customers"),
            (60, "executives"),
        ]
        .into_iter()
        .map(|(m, who)| EscalationLevel {
            after: HumanDuration::from_secs(m * 60),
            audience: who.into(),
            channel: channel.into(),
        })
        .collect();
        self
    }
}

/// Why a notification was sent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Reason {
    /// A status-page phase.
    Phase {
        /// Which.
        phase: Phase,
    },
    /// A level of the escalation schedule was reached.
    Escalation {
        /// Its audience.
        audience: String,
    },
    /// A service's RTO is close and it is not recovered.
    RtoWarning {
        /// The service.
        service: String,
    },
    /// A periodic update.
    Update,
    /// The run ended without recovering.
    RecoveryFailed,
}

/// One notification [`IncidentComms`] sent (or tried to).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Sent {
    /// When.
    pub at: DateTime<Utc>,
    /// Channel.
    pub channel: String,
    /// Why.
    pub reason: Reason,
    /// What.
    pub notification: Notification,
    /// The delivery error, if it failed (delivery is tried once; a failure never stops
    /// the run or the other notifications).
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
struct StepInfo {
    kind: String,
    service: Option<String>,
    critical: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Escalation(usize),
    Rto(String),
    Update(u32),
}

/// Keeps people informed while a run is under way: consumes the executor's [`RunEvent`]
/// stream and sends, through a [`Notifier`],
///
/// * the status-page phases of the runbooks' templates — investigating (run started),
///   identified (first recovery step started), monitoring (first health verification
///   started), resolved (run succeeded) — each with the incident's start, impact, affected
///   services and, once resolved, the resolution time;
/// * each level of the escalation schedule when the incident has been open that long;
/// * a warning per service when a fraction of its RTO has elapsed and it is not recovered;
/// * an update every `update_every` while the run is under way.
///
/// Timers follow the given [`Clock`] (the simulated cloud's, on a paused tokio clock,
/// passes minutes at once).
///
/// # Examples
///
/// ```no_run
/// # async fn demo(graph: dr_core::RecoveryGraph, executor: dr_core::executor::Executor) {
/// use std::sync::Arc;
/// use dr_core::notify::{CommsConfig, IncidentComms, WebhookFormat, WebhookNotifier};
/// use dr_core::Secret;
///
/// let slack = WebhookNotifier::new().channel("incidents", Secret::new("https://hooks.example.com/T/B/X"), WebhookFormat::Slack);
/// let config = CommsConfig { channels: vec!["incidents".into()], ..CommsConfig::default() }
///     .runbook_escalation("incidents");
/// let comms = IncidentComms::new(&graph, Arc::new(slack), config);
/// let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
/// let told = tokio::spawn(comms.run(rx));
/// let report = executor.events(tx).run(&graph).await;
/// for sent in told.await.unwrap_or_default() {
///     println!("{} {}: {}", sent.at, sent.channel, sent.notification.title);
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct IncidentComms {
    notifier: Arc<dyn Notifier>,
    config: CommsConfig,
    clock: Clock,
    plan: String,
    scenario: String,
    forecast: Duration,
    steps: HashMap<String, StepInfo>,
    services: BTreeMap<String, Duration>,
}

/// Step kinds that are not the recovery itself.
const BOOKKEEPING: [&str; 2] = ["notify", "approval"];

impl IncidentComms {
    /// Comms for runs of `graph`, sent through `notifier`.
    pub fn new(graph: &RecoveryGraph, notifier: Arc<dyn Notifier>, config: CommsConfig) -> Self {
        IncidentComms {
            notifier,
            config,
            clock: Clock::default(),
            plan: graph.plan.clone(),
            scenario: graph.scenario.clone(),
            forecast: graph.forecast,
            steps: graph
                .steps
                .iter()
                .map(|s| {
                    (
                        s.id.to_string(),
                        StepInfo {
                            kind: s.action.kind().to_string(),
                            service: s.service.as_deref().map(str::to_string),
                            critical: s.critical,
                        },
                    )
                })
                .collect(),
            services: graph
                .services
                .iter()
                .map(|s| (s.name.clone(), s.rto_target))
                .collect(),
        }
    }

    /// The clock timers follow (the executor's).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Runs until the run finishes (or the channel closes) and returns every notification
    /// sent, in order.
    pub async fn run(self, mut rx: UnboundedReceiver<RunEvent>) -> Vec<Sent> {
        let mut st = CommsState {
            comms: &self,
            sent: Vec::new(),
            start: None,
            phase: None,
            done: HashSet::new(),
            failed: HashSet::new(),
            running: HashSet::new(),
            recovered: BTreeMap::new(),
            timers: BTreeMap::new(),
        };
        loop {
            let next = st.timers.values().min().copied();
            let event = match next {
                Some(due) => {
                    let wait = (due - self.clock.now()).to_std().unwrap_or_default();
                    tokio::select! {
                        biased;
                        ev = rx.recv() => ev,
                        _ = tokio::time::sleep(wait) => {
                            st.fire_due().await;
                            continue;
                        }
                    }
                }
                None => rx.recv().await,
            };
            let Some(event) = event else { break };
            if st.on_event(&event).await {
                break;
            }
        }
        st.sent
    }
}

struct CommsState<'a> {
    comms: &'a IncidentComms,
    sent: Vec<Sent>,
    start: Option<DateTime<Utc>>,
    phase: Option<Phase>,
    done: HashSet<String>,
    failed: HashSet<String>,
    running: HashSet<String>,
    recovered: BTreeMap<String, DateTime<Utc>>,
    timers: BTreeMap<Timer, DateTime<Utc>>,
}

fn at_offset(start: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    start + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl<'a> CommsState<'a> {
    fn config(&self) -> &'a CommsConfig {
        &self.comms.config
    }

    fn elapsed(&self, now: DateTime<Utc>) -> Duration {
        self.start
            .map(|s| (now - s).to_std().unwrap_or_default())
            .unwrap_or_default()
    }

    fn affected(&self) -> String {
        let names: Vec<&str> = self.comms.services.keys().map(String::as_str).collect();
        if names.is_empty() {
            "none declared".into()
        } else {
            names.join(", ")
        }
    }

    fn impact(&self) -> String {
        self.config()
            .impact
            .clone()
            .unwrap_or_else(|| format!("services {} affected", self.affected()))
    }

    fn facts(&self) -> String {
        let start = self
            .start
            .map_or_else(|| "unknown".into(), |s| s.to_rfc3339());
        format!(
            "- Start time: {start}\n- Impact: {}\n- Affected services: {}",
            self.impact(),
            self.affected()
        )
    }

    async fn send(&mut self, channel: &str, reason: Reason, notification: Notification) {
        let now = self.comms.clock.now();
        let error = self
            .comms
            .notifier
            .notify(channel, &notification)
            .await
            .err()
            .map(|e| e.to_string());
        if let Some(e) = &error {
            tracing::warn!(%channel, error = %e, "notification not delivered");
        }
        self.sent.push(Sent {
            at: now,
            channel: channel.to_string(),
            reason,
            notification,
            error,
        });
    }

    async fn broadcast(&mut self, reason: Reason, notification: Notification) {
        for channel in self.config().channels.clone() {
            self.send(&channel, reason.clone(), notification.clone())
                .await;
        }
    }

    async fn enter(&mut self, phase: Phase) {
        if self.phase.is_some_and(|p| p >= phase) {
            return;
        }
        self.phase = Some(phase);
        let c = self.comms;
        let now = c.clock.now();
        let facts = self.facts();
        let every = self
            .config()
            .update_every
            .map(|d| format!("Updates will be provided every {}.", human(d.get())))
            .unwrap_or_default();
        let (severity, title, body) = match phase {
            Phase::Investigating => (
                Severity::Critical,
                format!("[INCIDENT] {}: investigating", c.plan),
                format!(
                    "We are currently investigating a service disruption (scenario {}).\n{facts}\n- Status: Investigating\n\n{every}",
                    c.scenario
                ),
            ),
            Phase::Identified => (
                Severity::Warning,
                format!("[INCIDENT] {}: identified", c.plan),
                format!(
                    "The cause has been identified; the recovery ({}, {} steps, forecast {}) is under way.\n{facts}\n- Status: Identified\n\n{every}",
                    c.scenario,
                    c.steps.len(),
                    human(c.forecast)
                ),
            ),
            Phase::Monitoring => (
                Severity::Warning,
                format!("[INCIDENT] {}: monitoring", c.plan),
                format!(
                    "A fix has been deployed and we are watching for stability.\n{facts}\n- Recovered so far: {}\n- Status: Monitoring",
                    self.recovered_list()
                ),
            ),
            Phase::Resolved => (
                Severity::Info,
                format!("[RESOLVED] {}: service restored", c.plan),
                format!(
                    "The service disruption has been resolved.\n{facts}\n- Resolution time: {}\n- Root cause: {} (recovered by scenario {})\n- Status: Resolved\n\nA full post-incident review will be conducted.",
                    human(self.elapsed(now)),
                    c.scenario.replace('-', " "),
                    c.scenario
                ),
            ),
        };
        self.broadcast(
            Reason::Phase { phase },
            Notification {
                severity,
                title,
                body,
            },
        )
        .await;
    }

    fn recovered_list(&self) -> String {
        if self.recovered.is_empty() {
            return "none yet".into();
        }
        let start = self.start.unwrap_or_else(|| self.comms.clock.now());
        self.recovered
            .iter()
            .map(|(s, t)| {
                format!(
                    "{s} (after {})",
                    human((*t - start).to_std().unwrap_or_default())
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn open(&self) -> bool {
        self.phase != Some(Phase::Resolved)
    }

    /// Marks services whose critical steps all succeeded as recovered.
    fn check_recovered(&mut self, at: DateTime<Utc>) {
        for name in self.comms.services.keys() {
            if self.recovered.contains_key(name) {
                continue;
            }
            let mut own = self
                .comms
                .steps
                .iter()
                .filter(|(_, s)| s.service.as_deref() == Some(name.as_str()) && s.critical)
                .peekable();
            if own.peek().is_none() {
                continue;
            }
            if own.all(|(id, _)| self.done.contains(id)) {
                self.recovered.insert(name.clone(), at);
                self.timers.remove(&Timer::Rto(name.clone()));
            }
        }
    }

    /// Handles one event; `true` once the run is over.
    async fn on_event(&mut self, event: &RunEvent) -> bool {
        match event {
            RunEvent::RunStarted { at, .. } => {
                let start = *at;
                self.start = Some(start);
                for (i, level) in self.config().escalation.iter().enumerate() {
                    self.timers
                        .insert(Timer::Escalation(i), at_offset(start, level.after.get()));
                }
                let fraction = self.config().rto_warning;
                if fraction > 0.0 {
                    for (name, rto) in &self.comms.services {
                        let warn = rto.mul_f64(fraction.min(1e6));
                        self.timers
                            .insert(Timer::Rto(name.clone()), at_offset(start, warn));
                    }
                }
                if let Some(every) = self.config().update_every.map(|d| d.get()) {
                    if !every.is_zero() {
                        self.timers
                            .insert(Timer::Update(1), at_offset(start, every));
                    }
                }
                self.enter(Phase::Investigating).await;
                // Levels due at once (0 minutes) go out with the first phase.
                self.fire_due().await;
            }
            RunEvent::StepStarted { step, .. } => {
                self.running.insert(step.clone());
                let kind = self.comms.steps.get(step).map(|s| s.kind.as_str());
                if let Some(kind) = kind {
                    if kind == "verify_health" {
                        self.enter(Phase::Identified).await;
                        self.enter(Phase::Monitoring).await;
                    } else if !BOOKKEEPING.contains(&kind) {
                        self.enter(Phase::Identified).await;
                    }
                }
            }
            RunEvent::StepSucceeded { step, at, .. } => {
                self.running.remove(step);
                self.done.insert(step.clone());
                self.check_recovered(*at);
            }
            RunEvent::StepFailed { step, .. } | RunEvent::StepSkipped { step, .. } => {
                self.running.remove(step);
                self.failed.insert(step.clone());
            }
            RunEvent::RunFinished { outcome, .. } => {
                self.timers.clear();
                match outcome {
                    Outcome::Succeeded => self.enter(Phase::Resolved).await,
                    Outcome::Failed => {
                        let body = format!(
                            "The automated recovery ({}) did not succeed; the incident stays open and the team takes over.\n{}\n- Recovered: {}\n- Steps failed or skipped: {}",
                            self.comms.scenario,
                            self.facts(),
                            self.recovered_list(),
                            self.failed.len()
                        );
                        self.broadcast(
                            Reason::RecoveryFailed,
                            Notification {
                                severity: Severity::Critical,
                                title: format!("[INCIDENT] {}: recovery failed", self.comms.plan),
                                body,
                            },
                        )
                        .await;
                    }
                }
                return true;
            }
            _ => {}
        }
        false
    }

    /// Sends every timer notification that is due.
    async fn fire_due(&mut self) {
        let now = self.comms.clock.now();
        let due: Vec<(Timer, DateTime<Utc>)> = self
            .timers
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(t, at)| (t.clone(), *at))
            .collect();
        for (timer, at) in due {
            self.timers.remove(&timer);
            if !self.open() {
                continue;
            }
            let elapsed = self.elapsed(at);
            match timer {
                Timer::Escalation(i) => {
                    let Some(level) = self.config().escalation.get(i).cloned() else {
                        continue;
                    };
                    let body = format!(
                        "The incident has been open for {}: escalating to {}.\n{}\n- Status: {}",
                        human(elapsed),
                        level.audience,
                        self.facts(),
                        self.phase.unwrap_or(Phase::Investigating)
                    );
                    let n = Notification {
                        severity: Severity::Critical,
                        title: format!("[ESCALATION] {}: {}", self.comms.plan, level.audience),
                        body,
                    };
                    self.send(
                        &level.channel,
                        Reason::Escalation {
                            audience: level.audience.clone(),
                        },
                        n,
                    )
                    .await;
                }
                Timer::Rto(service) => {
                    let rto = self
                        .comms
                        .services
                        .get(&service)
                        .copied()
                        .unwrap_or_default();
                    let body = format!(
                        "{} of the {} RTO of service {service} have elapsed and it is not recovered yet.\n{}",
                        human(elapsed),
                        human(rto),
                        self.facts()
                    );
                    let n = Notification {
                        severity: Severity::Warning,
                        title: format!("[RTO] {}: {service} approaching its RTO", self.comms.plan),
                        body,
                    };
                    self.broadcast(Reason::RtoWarning { service }, n).await;
                }
                Timer::Update(k) => {
                    let total = self.comms.steps.len();
                    let mut running: Vec<&str> = self.running.iter().map(String::as_str).collect();
                    running.sort_unstable();
                    let body = format!(
                        "Update after {}: {} of {total} steps done, {} failed or skipped.\n{}\n- Running: {}\n- Recovered: {}\n- Status: {}",
                        human(elapsed),
                        self.done.len(),
                        self.failed.len(),
                        self.facts(),
                        if running.is_empty() { "nothing".to_string() } else { running.join(", ") },
                        self.recovered_list(),
                        self.phase.unwrap_or(Phase::Investigating)
                    );
                    let n = Notification {
                        severity: Severity::Info,
                        title: format!("[UPDATE] {}: recovery in progress", self.comms.plan),
                        body,
                    };
                    self.broadcast(Reason::Update, n).await;
                    if let (Some(every), Some(start)) =
                        (self.config().update_every.map(|d| d.get()), self.start)
                    {
                        let next = every.saturating_mul(k + 1);
                        self.timers
                            .insert(Timer::Update(k + 1), at_offset(start, next));
                    }
                }
            }
        }
    }
}

/// Copies every event of `rx` to `n` receivers (the progress view, [`IncidentComms`], the
/// metrics), from a task of its own; each receiver closes when `rx` does.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() {
/// let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<dr_core::executor::RunEvent>();
/// let mut outs = dr_core::notify::fan_out(rx, 2);
/// let (progress, comms) = (outs.remove(0), outs.remove(0));
/// # drop((tx, progress, comms)); }
/// ```
pub fn fan_out(mut rx: UnboundedReceiver<RunEvent>, n: usize) -> Vec<UnboundedReceiver<RunEvent>> {
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..n)
        .map(|_| tokio::sync::mpsc::unbounded_channel())
        .unzip();
    tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            for tx in &txs {
                let _ = tx.send(event.clone());
            }
        }
    });
    rxs
}
