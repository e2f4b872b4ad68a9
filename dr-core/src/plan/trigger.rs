//! A scenario's automatic trigger: the signals a [`Watcher`](crate::watch::Watcher) samples,
//! and the thresholds (with hysteresis) at which the scenario is planned and started or
//! offered for approval.

use serde::{Deserialize, Serialize};

use crate::HumanDuration;

/// When a scenario starts by itself (`scenarios[].trigger`).
///
/// Each sample of the watcher judges the trigger's signals: a health check fails when it
/// does not answer healthy, a database when its primary cannot be read or is not available.
/// A sample fails when every signal fails (`when: all`, the default) or any one does
/// (`when: any`). `failures` failed samples within `window` fire the trigger; it fires once,
/// then re-arms after `recover_after` healthy samples in a row.
///
/// ```yaml
/// trigger:
///   health_checks: [api-health, www-health]
///   databases: [orders-db]
///   failures: 3
///   window: 5m
///   recover_after: 3
///   start: approval        # or `auto`
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// Health checks (plan names) sampled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health_checks: Vec<String>,
    /// Databases (plan names) whose primary is sampled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub databases: Vec<String>,
    /// Whether a sample fails when every signal fails or any one does.
    #[serde(default)]
    pub when: TriggerWhen,
    /// Failed samples within [`window`](Self::window) that fire the trigger.
    #[serde(default = "default_failures")]
    pub failures: u32,
    /// The window failed samples are counted in.
    #[serde(default = "default_window")]
    pub window: HumanDuration,
    /// Healthy samples in a row after which a fired trigger re-arms.
    #[serde(default = "default_recover_after")]
    pub recover_after: u32,
    /// What firing does.
    #[serde(default)]
    pub start: TriggerStart,
}

fn default_failures() -> u32 {
    3
}

fn default_window() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(300))
}

fn default_recover_after() -> u32 {
    3
}

impl Trigger {
    /// A trigger on `health_checks` with the defaults: 3 failed samples within 5 minutes,
    /// re-armed after 3 healthy ones, started after approval.
    pub fn on_health_checks<I, S>(health_checks: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Trigger {
            health_checks: health_checks.into_iter().map(Into::into).collect(),
            databases: Vec::new(),
            when: TriggerWhen::All,
            failures: default_failures(),
            window: default_window(),
            recover_after: default_recover_after(),
            start: TriggerStart::Approval,
        }
    }
}

/// How a trigger's signals combine into one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerWhen {
    /// The sample fails when every signal fails (a whole region, not one service).
    #[default]
    All,
    /// The sample fails when any signal fails.
    Any,
}

/// What a fired trigger does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerStart {
    /// Plans the scenario and asks the approval hook before starting it.
    #[default]
    Approval,
    /// Plans and starts the scenario at once.
    Auto,
}
