//! Disaster-recovery orchestration: a DR plan as code, a planner that checks and orders it
//! before anything breaks, and an executor that runs it.
//!
//! * [`plan`] — the plan model (YAML, TOML, JSON, or a typed builder) and its validation.
//! * [`provider`] — the traits a cloud implements: [`SnapshotStore`](provider::SnapshotStore),
//!   [`DnsFailover`](provider::DnsFailover), [`ClusterDeployer`](provider::ClusterDeployer),
//!   [`DatabaseReplica`](provider::DatabaseReplica), health probes and notifiers.
//! * [`planner`] — from (plan, scenario, observed state) to a [`RecoveryGraph`].
//! * [`step`] — step kinds, each described once: built-in ones, `webhook`, `command`, and
//!   the embedding service's own.
//! * [`executor`] — runs a graph: concurrency, retries, timeouts, approvals, a report.
//! * [`retry`] — the one retry layer; [`layer`] — faults, latency, call log, tracing and
//!   metrics around any provider.
//! * [`sim`] and [`store`] — the embedded default: a deterministic simulated cloud on virtual
//!   time, in-memory and local-disk snapshot stores.
#![forbid(unsafe_code)]

pub mod backup;
pub mod document;
pub mod drill;
pub mod duration;
mod error;
pub mod executor;
pub mod forecast;
pub mod graph;
pub mod journal;
pub mod layer;
pub mod metrics;
pub mod notify;
pub mod permissions;
pub mod plan;
pub mod planner;
pub mod provider;
mod providers;
mod reads;
pub mod redact;
pub mod retry;
mod secret;
pub mod sim;
pub mod simulation;
pub mod step;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
mod time;
pub mod watch;

pub use duration::HumanDuration;
pub use error::{BoxError, Effect, Error, Result, Retry};
pub use graph::{RecoveryGraph, Step, StepId};
pub use providers::Providers;
pub use retry::RetryPolicy;
pub use secret::Secret;
pub use step::Action;
pub use time::Clock;

/// The workspace README's code blocks, compiled as doctests so it stays true.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
