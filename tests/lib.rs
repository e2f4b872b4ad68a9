//! Cross-crate tests live in this crate's `[[test]]` targets; what several of them share is
//! here.

use dr_core::plan::Plan;
use dr_core::provider::Operation;

/// The scenarios of the bundled web shop plan the property tests draw from.
pub const SCENARIOS: [&str; 7] = [
    "region-failover",
    "database-failure",
    "point-in-time-restore",
    "cluster-rebuild",
    "application-rollback",
    "security-isolation",
    "service-restart",
];

/// Operations that must never take effect twice for one target in a run.
pub const NON_IDEMPOTENT: [Operation; 11] = [
    Operation::Promote,
    Operation::Reboot,
    Operation::RestoreSnapshot,
    Operation::RestorePointInTime,
    Operation::CreateSnapshot,
    Operation::CreateReplica,
    Operation::RolloutRestart,
    Operation::RolloutUndo,
    Operation::CreateVolumeSnapshot,
    Operation::PutSecretValue,
    Operation::RestoreCache,
];

/// The bundled web shop plan (`examples/plans/region-failover.yaml`).
///
/// # Panics
/// When the bundled plan does not load: the tests cannot run without it.
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub fn bundled_plan() -> Plan {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/plans/region-failover.yaml");
    Plan::load(path).expect("the bundled plan")
}
