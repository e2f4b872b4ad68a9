//! The planner: a pure function from (plan, scenario, observed state) to a
//! [`RecoveryGraph`] of typed steps, with the critical path, per-service forecasts against
//! the RTO/RPO targets and the risks found before anything runs.
//!
//! # Examples
//!
//! ```
//! use dr_core::plan::Plan;
//! use dr_core::planner::{self, ObservedState};
//!
//! let plan = Plan::from_yaml_str(r#"
//! name: shop
//! regions:
//!   - { name: east, role: primary }
//!   - { name: west, role: secondary }
//! databases:
//!   - { name: db, region: east, replicas: [{ id: db-west, region: west }] }
//! services:
//!   - { name: orders, rto: 30m, rpo: 5m, database: db }
//! scenarios:
//!   - { name: failover, kind: region-failover, from: east, to: west }
//! "#).unwrap();
//! let observed = ObservedState::nominal(&plan, chrono::Utc::now());
//! let graph = planner::plan(&plan, "failover", &observed).unwrap();
//! assert_eq!(graph.critical_path, ["db/promote", "db/wait"]);
//! assert!(graph.services[0].within_targets);
//! ```

pub(crate) mod build;
mod observe;
#[cfg(test)]
pub(crate) mod pinned;
pub(crate) mod scenarios;
mod steps;

pub use observe::{CacheObservation, DbObservation, ObservedState, ReplicaObservation};

use crate::graph::RecoveryGraph;
use crate::plan::Plan;
use crate::step::StepRegistry;

/// Why a plan cannot be turned into a recovery graph.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanningError {
    /// The plan has no scenario of that name.
    #[error("unknown scenario `{name}` (the plan has: {known})")]
    UnknownScenario {
        /// The name asked for.
        name: String,
        /// The scenarios the plan has.
        known: String,
    },
    /// The plan refers to something it does not declare (validate the plan first).
    #[error("{what} `{name}` is not declared in the plan")]
    Unknown {
        /// Kind of thing (`database`, `cluster`).
        what: &'static str,
        /// Its name.
        name: String,
    },
    /// One of the plan's own steps is wrong: an unknown kind (the message lists the registered
    /// ones), bad parameters, a duplicate id, or an `after:` that names nothing.
    #[error("{at}: {message}")]
    InvalidStep {
        /// The field at fault (`scenarios[failover].steps[warm-cache].kind`).
        at: String,
        /// What is wrong.
        message: String,
    },
    /// The scenario's steps wait on each other in a cycle that no plan step is on.
    #[error("scenario `{scenario}`: its steps wait on each other in a cycle: {cycle}")]
    Cycle {
        /// The scenario.
        scenario: String,
        /// The steps, each running before the next (`a → b → a`).
        cycle: String,
    },
    /// The scenario cannot recover something with what the plan and the observed state offer.
    #[error("cannot recover {what}: {why}")]
    Unrecoverable {
        /// The resource or service.
        what: String,
        /// Why.
        why: String,
    },
}

/// Plans `scenario` of `plan` against what was observed.
///
/// # Errors
/// [`PlanningError`] naming the scenario or resource at fault.
pub fn plan(
    plan: &Plan,
    scenario: &str,
    observed: &ObservedState,
) -> Result<RecoveryGraph, PlanningError> {
    plan_with(plan, scenario, observed, &StepRegistry::builtin())
}

/// [`plan`], with the plan's own steps built from `registry` (the built-in `webhook`,
/// `command` and `approval` kinds and the embedding service's own).
///
/// # Errors
/// As [`plan`], and [`PlanningError::InvalidStep`] for a plan step that cannot be built.
pub fn plan_with(
    plan: &Plan,
    scenario: &str,
    observed: &ObservedState,
    registry: &StepRegistry,
) -> Result<RecoveryGraph, PlanningError> {
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
    let mut g = build::GraphBuilder::new(plan, sc, observed);
    scenarios::build(&mut g)?;
    steps::add(&mut g, registry)?;
    g.finish()
}

/// The longest chain of estimates ending in a critical step, and its length: what [`plan`]
/// stores in [`RecoveryGraph::critical_path`] and [`RecoveryGraph::forecast`], recomputed
/// (in time linear in the steps) for a graph whose estimates were changed.
///
/// # Examples
///
/// ```
/// # use dr_core::plan::Plan;
/// # use dr_core::planner::{self, ObservedState};
/// # let plan = Plan::from_yaml_str(r#"
/// # name: shop
/// # regions: [{ name: east, role: primary }, { name: west, role: secondary }]
/// # databases: [{ name: db, region: east, replicas: [{ id: db-west, region: west }] }]
/// # services: [{ name: orders, rto: 30m, rpo: 5m, database: db }]
/// # scenarios: [{ name: failover, kind: region-failover, from: east, to: west }]
/// # "#).unwrap();
/// let graph = planner::plan_nominal(&plan, "failover").unwrap();
/// let (path, total) = planner::critical_path(&graph);
/// assert_eq!((path, total), (graph.critical_path.clone(), graph.forecast));
/// ```
pub fn critical_path(graph: &RecoveryGraph) -> (Vec<String>, std::time::Duration) {
    build::critical_path_of(graph)
}

/// Plans `scenario` against the nominal state (every replica at its expected lag, every
/// backup at its worst-case age): the fastest recovery the plan allows, used by validation.
///
/// # Errors
/// As [`plan`].
pub fn plan_nominal(plan_: &Plan, scenario: &str) -> Result<RecoveryGraph, PlanningError> {
    plan_nominal_with(plan_, scenario, &StepRegistry::builtin())
}

/// [`plan_nominal`] with the step kinds of `registry`.
///
/// # Errors
/// As [`plan_with`].
pub fn plan_nominal_with(
    plan_: &Plan,
    scenario: &str,
    registry: &StepRegistry,
) -> Result<RecoveryGraph, PlanningError> {
    let observed = ObservedState::nominal(plan_, chrono::Utc::now());
    plan_with(plan_, scenario, &observed, registry)
}
