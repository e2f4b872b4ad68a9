//! Safety gates: the RPO gate right before a step that loses data, with the overrides the
//! user gave explicitly.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::duration::human;
use crate::journal::Record;
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

/// The run's gates: each service's RPO and the data losses the user accepted.
#[derive(Debug, Default)]
pub(crate) struct Gates {
    pub(crate) rpo: BTreeMap<String, Duration>,
    pub(crate) accepted: BTreeMap<String, Duration>,
    pub(crate) journal: Option<JournalHandle>,
    pub(crate) overrides: Mutex<Vec<OverrideReport>>,
}

impl Gates {
    /// The RPO gate for `step` of `service` about to lose `window` of data.
    pub(crate) async fn data_loss(
        &self,
        step: &str,
        service: Option<&str>,
        window: Option<Duration>,
        what: &str,
    ) -> Result<()> {
        let (Some(service), Some(window)) = (service, window) else {
            if service.is_some() {
                tracing::warn!(
                    step,
                    "RPO gate: the data-loss window could not be read; going ahead"
                );
            }
            return Ok(());
        };
        let Some(&rpo) = self.rpo.get(service) else {
            return Ok(());
        };
        if window <= rpo {
            return Ok(());
        }
        match self.accepted.get(service) {
            Some(&accepted) if accepted >= window => {
                let detail = format!(
                    "{service}: data-loss window {} ({what}) beyond the RPO of {}, accepted up to {}",
                    human(window),
                    human(rpo),
                    human(accepted)
                );
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
                Ok(())
            }
            accepted => {
                // Whole minutes, rounded up: what the user would type to accept it.
                let suggest = window.as_secs().div_ceil(60).max(1);
                let also = accepted.map_or_else(String::new, |a| {
                    format!(" (the loss accepted, {}, is less)", human(*a))
                });
                Err(Error::GateRefused {
                    gate: "rpo".into(),
                    step: step.to_string(),
                    reason: format!(
                        "the data-loss window of {service} is {} ({what}), beyond its RPO of {}{also}; \
                         accept the loss explicitly to go ahead (run-plan --accept-data-loss \
                         {service}={suggest}m, or Executor::accept_data_loss)",
                        human(window),
                        human(rpo)
                    ),
                })
            }
        }
    }

    pub(crate) fn overrides(&self) -> Vec<OverrideReport> {
        self.overrides
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
