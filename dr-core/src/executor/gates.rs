//! Safety gates: the RPO gate right before a step that loses data, with the overrides the
//! user gave explicitly.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::duration::human;
use crate::journal::Record;
use crate::plan::Interlock;
use crate::{Error, Result};

use super::durable::JournalHandle;

/// A gate that was overridden during a run, as the report lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OverrideReport {
    /// The step the gate guarded.
    pub step: String,
    /// The gate (`rpo`, or an interlock's name).
    pub gate: String,
    /// What was accepted, in words.
    pub detail: String,
}

/// The run's gates: each service's RPO and the data losses the user accepted; the plan's
/// interlocks and those waived.
#[derive(Debug, Default)]
pub(crate) struct Gates {
    pub(crate) rpo: BTreeMap<String, Duration>,
    pub(crate) accepted: BTreeMap<String, Duration>,
    /// For each step that loses data, the services whose recovery depends on it.
    pub(crate) affected: std::collections::HashMap<String, Vec<String>>,
    pub(crate) interlocks: std::collections::BTreeSet<Interlock>,
    pub(crate) waived: std::collections::BTreeSet<Interlock>,
    pub(crate) journal: Option<JournalHandle>,
    pub(crate) overrides: Mutex<Vec<OverrideReport>>,
}

impl Gates {
    /// The RPO gate for `step` (of `service`) about to lose `window` of data: judged against
    /// the RPO of every service whose recovery depends on the step (its own, and those of
    /// every step after it).
    pub(crate) async fn data_loss(
        &self,
        step: &str,
        service: Option<&str>,
        window: Option<Duration>,
        what: &str,
    ) -> Result<()> {
        let mut services: Vec<&str> = self
            .affected
            .get(step)
            .map(|v| v.iter().map(String::as_str).collect())
            .unwrap_or_default();
        if let Some(s) = service {
            if !services.contains(&s) {
                services.push(s);
            }
        }
        let Some(window) = window else {
            if !services.is_empty() {
                tracing::warn!(
                    step,
                    "RPO gate: the data-loss window could not be read; going ahead"
                );
            }
            return Ok(());
        };
        let mut refused = Vec::new();
        let mut accepted_now = Vec::new();
        for svc in services {
            let Some(&rpo) = self.rpo.get(svc) else {
                continue;
            };
            if window <= rpo {
                continue;
            }
            match self.accepted.get(svc) {
                Some(&accepted) if accepted >= window => accepted_now.push(format!(
                    "{svc}: data-loss window {} ({what}) beyond the RPO of {}, accepted up to {}",
                    human(window),
                    human(rpo),
                    human(accepted)
                )),
                accepted => refused.push((svc, rpo, accepted)),
            }
        }
        if !refused.is_empty() {
            // Whole minutes, rounded up: what the user would type to accept it.
            let suggest = window.as_secs().div_ceil(60).max(1);
            let which: Vec<String> = refused
                .iter()
                .map(|(svc, rpo, accepted)| {
                    let also = accepted.map_or_else(String::new, |a| {
                        format!(", the loss accepted, {}, is less", human(*a))
                    });
                    format!("{svc} (RPO {}{also})", human(*rpo))
                })
                .collect();
            let flags: Vec<String> = refused
                .iter()
                .map(|(svc, _, _)| format!("--accept-data-loss {svc}={suggest}m"))
                .collect();
            return Err(Error::GateRefused {
                gate: "rpo".into(),
                step: step.to_string(),
                reason: format!(
                    "the data-loss window is {} ({what}), beyond the RPO of {}; accept the loss \
                     explicitly to go ahead (run-plan {}, or Executor::accept_data_loss)",
                    human(window),
                    which.join(", "),
                    flags.join(" ")
                ),
            });
        }
        for detail in accepted_now {
            tracing::warn!(step, %detail, "RPO gate overridden");
            if let Some(j) = &self.journal {
                j.append(Record::Override {
                    step: step.to_string(),
                    gate: "rpo".into(),
                    detail: detail.clone(),
                })
                .await?;
            }
            self.overrides
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(OverrideReport {
                    step: step.to_string(),
                    gate: "rpo".into(),
                    detail,
                });
        }
        Ok(())
    }

    /// The interlock gate: `violation` says how `step` would break `interlock` (`None`:
    /// it would not).
    pub(crate) async fn interlock(
        &self,
        step: &str,
        interlock: Interlock,
        violation: Option<String>,
    ) -> Result<()> {
        let Some(why) = violation else {
            return Ok(());
        };
        if !self.waived.contains(&interlock) {
            return Err(Error::GateRefused {
                gate: interlock.name().into(),
                step: step.to_string(),
                reason: format!(
                    "{why}; the plan's interlock `{interlock}` forbids it (waive it for this run \
                     with run-plan --waive {interlock}, or Executor::waive, once that is safe)"
                ),
            });
        }
        let detail = format!("interlock `{interlock}` waived: {why}");
        tracing::warn!(step, %detail, "interlock waived");
        if let Some(j) = &self.journal {
            j.append(Record::Override {
                step: step.to_string(),
                gate: interlock.name().into(),
                detail: detail.clone(),
            })
            .await?;
        }
        self.overrides
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(OverrideReport {
                step: step.to_string(),
                gate: interlock.name().into(),
                detail,
            });
        Ok(())
    }

    pub(crate) fn overrides(&self) -> Vec<OverrideReport> {
        self.overrides
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// For each step that loses data, the services of the steps that depend on it, directly or
/// not (the services whose data it sets back), in graph order.
pub(crate) fn affected_services(
    graph: &crate::RecoveryGraph,
) -> std::collections::HashMap<String, Vec<String>> {
    use std::collections::{HashMap, HashSet};
    let index: HashMap<&str, usize> = graph
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let mut dependants: Vec<Vec<usize>> = vec![Vec::new(); graph.steps.len()];
    for (i, s) in graph.steps.iter().enumerate() {
        for d in &s.depends_on {
            if let Some(&j) = index.get(d.as_str()) {
                dependants[j].push(i);
            }
        }
    }
    let mut out = HashMap::new();
    for (i, s) in graph.steps.iter().enumerate() {
        if !s.action.get().loses_data() {
            continue;
        }
        let mut seen = HashSet::from([i]);
        let mut todo = vec![i];
        let mut services: Vec<String> = Vec::new();
        while let Some(j) = todo.pop() {
            if let Some(svc) = &graph.steps[j].service {
                if !services.contains(svc) {
                    services.push(svc.clone());
                }
            }
            for &d in &dependants[j] {
                if seen.insert(d) {
                    todo.push(d);
                }
            }
        }
        out.insert(s.id.clone(), services);
    }
    out
}
