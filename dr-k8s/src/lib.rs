#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs, unreachable_pub)]

mod apply;
mod config;
mod deployer;
mod error;
mod export;
mod kinds;
mod lease;
mod nodes;
mod rollout;

pub use config::{KubeDeployerBuilder, DEFAULT_FIELD_MANAGER};
pub use deployer::KubeDeployer;
pub use dr_core::provider::{Lease, LeaseGuard};
pub use export::{export_to_store, manifest_key, restore_from_store};
pub use kinds::{restore_phase, RestorePhase};
pub use lease::{KubeLease, FENCING_TOKEN_ANNOTATION};
pub use rollout::{
    isolation_policy_name, ISOLATION_POLICY_PREFIX, RESTARTED_AT_ANNOTATION, REVISION_ANNOTATION,
};

/// kube-rs, re-exported so callers build [`kube::Client`]s with the same version.
pub use kube;
