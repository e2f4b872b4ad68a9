//! `run-plan PLAN --permissions [--scenario NAME] [--providers FILE] [--json]`: what a plan's
//! runs need, in each platform's own form ([`dr_providers::permissions`]).
//!
//! Each scenario (or the one named) is planned as `run-plan` plans it — on the simulated
//! cloud, after its incident — and from the states an incident may leave instead, so a
//! scenario that chooses between a reboot, a promotion and a restore gets what each needs.

use std::path::{Path, PathBuf};

use dr_core::permissions::{scenario_graphs, PermissionOptions, PermissionSet};
use dr_core::plan::Plan;
use dr_core::sim::SimConfig;
use dr_core::simulation::Simulation;
use dr_core::step::StepRegistry;
use dr_providers::permissions::{render, Documents};
use dr_providers::ProvidersConfig;

use crate::{Console, EXIT_INVALID, EXIT_OK};

/// What `--permissions` prints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionsOptions {
    /// One scenario (default: every scenario of the plan).
    pub scenario: Option<String>,
    /// The providers file saying which platform serves each role.
    pub providers: Option<PathBuf>,
    /// One JSON object on stdout instead of the documents under headings.
    pub json: bool,
    /// Seed of the simulated cloud the scenarios are planned on.
    pub seed: u64,
}

/// The documents for `plan_path`, or the message of what is invalid.
///
/// # Errors
/// The plan or providers file does not load, the scenario is unknown or cannot be planned.
pub async fn documents(plan_path: &Path, opts: &PermissionsOptions) -> Result<Documents, String> {
    documents_with(plan_path, opts, &StepRegistry::builtin()).await
}

/// [`documents`], with the plan's own steps built from `registry`.
///
/// # Errors
/// As [`documents`].
pub async fn documents_with(
    plan_path: &Path,
    opts: &PermissionsOptions,
    registry: &StepRegistry,
) -> Result<Documents, String> {
    let plan = Plan::load_with(plan_path, registry).map_err(|e| e.to_string())?;
    let config = match &opts.providers {
        Some(file) => Some(ProvidersConfig::load(file).map_err(|e| e.to_string())?),
        None => None,
    };
    let scenarios: Vec<_> = match &opts.scenario {
        Some(name) => match plan.scenario(name) {
            Some(sc) => vec![sc.clone()],
            None => {
                let known: Vec<&str> = plan.scenarios.iter().map(|s| s.name.as_str()).collect();
                return Err(format!(
                    "{}: unknown scenario `{name}` (the plan has: {})",
                    plan_path.display(),
                    known.join(", ")
                ));
            }
        },
        None => plan.scenarios.clone(),
    };
    let mut graphs = Vec::new();
    for sc in &scenarios {
        let sim = Simulation::new(&plan, opts.seed, SimConfig::default());
        sim.inject(sc).await;
        let observed = sim.observe().await;
        graphs.extend(
            scenario_graphs(&plan, &sc.name, &observed, registry)
                .map_err(|e| format!("{}: {e}", plan_path.display()))?,
        );
    }
    let set = PermissionSet::for_graphs(&plan, &graphs, &PermissionOptions::default());
    Ok(render(&set, &plan, config.as_ref()))
}

/// Prints the documents (or one JSON object with `json`); returns the exit status.
pub async fn print(plan_path: &Path, opts: &PermissionsOptions, console: &Console) -> u8 {
    match documents(plan_path, opts).await {
        Ok(docs) if opts.json => match serde_json::to_string_pretty(&docs) {
            Ok(json) => {
                console.out(&json);
                EXIT_OK
            }
            Err(e) => {
                console.err(&format!("error: cannot serialise the documents: {e}"));
                crate::EXIT_FAILED
            }
        },
        Ok(docs) => {
            console.out(docs.to_text().trim_end());
            EXIT_OK
        }
        Err(e) => {
            console.err(&format!("error: {}", dr_core::redact::clean(&e)));
            EXIT_INVALID
        }
    }
}
