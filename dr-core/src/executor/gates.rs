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
    /// Who depends on whom, for the services a step that loses data sets back.
    pub(crate) affected: Dependants,
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
        let mut services: Vec<&str> = self.affected.affected(step);
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

/// Who depends on whom in a graph: for a step that loses data, the services whose recovery
/// depends on it (its own, and those of every step after it, directly or not). Built in one
/// pass over the graph; each question walks only what depends on the step asked about, so a
/// plan with a thousand databases costs a thousand walks when (and if) their gates run, not a
/// table of every service for every database up front.
#[derive(Debug, Default)]
pub(crate) struct Dependants {
    index: std::collections::HashMap<crate::graph::StepId, usize>,
    next: Vec<Vec<u32>>,
    service: Vec<Option<u32>>,
    names: Vec<String>,
}

impl Dependants {
    pub(crate) fn of(graph: &crate::RecoveryGraph) -> Self {
        use std::collections::HashMap;
        let mut index = HashMap::with_capacity(graph.steps.len());
        for (i, s) in graph.steps.iter().enumerate() {
            index.insert(s.id.clone(), i);
        }
        let mut next: Vec<Vec<u32>> = vec![Vec::new(); graph.steps.len()];
        let mut names: Vec<String> = Vec::new();
        let mut name_at: HashMap<&str, u32> = HashMap::new();
        let mut service = Vec::with_capacity(graph.steps.len());
        for (i, s) in graph.steps.iter().enumerate() {
            for d in &s.depends_on {
                if let Some(&j) = index.get(d.as_str()) {
                    next[j].push(u32::try_from(i).unwrap_or(u32::MAX));
                }
            }
            service.push(s.service.as_deref().map(|svc| {
                *name_at.entry(svc).or_insert_with(|| {
                    names.push(svc.to_string());
                    u32::try_from(names.len() - 1).unwrap_or(u32::MAX)
                })
            }));
        }
        Dependants {
            index,
            next,
            service,
            names,
        }
    }

    /// The services whose recovery depends on `step` (its own first), each once, in the
    /// order a walk of its dependants meets them; empty for an unknown step.
    pub(crate) fn affected(&self, step: &str) -> Vec<&str> {
        let Some(&start) = self.index.get(step) else {
            return Vec::new();
        };
        let mut seen = vec![false; self.next.len()];
        let mut named = vec![false; self.names.len()];
        let mut out = Vec::new();
        let mut todo = vec![start];
        seen[start] = true;
        while let Some(j) = todo.pop() {
            if let Some(svc) = self.service[j] {
                let svc = svc as usize;
                if !named[svc] {
                    named[svc] = true;
                    out.push(self.names[svc].as_str());
                }
            }
            for &d in &self.next[j] {
                let d = d as usize;
                if !seen[d] {
                    seen[d] = true;
                    todo.push(d);
                }
            }
        }
        out
    }
}
