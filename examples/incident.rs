//! What the world looks like right now, beyond the plan's nominal values — a replica
//! lagging 20 minutes, an old primary still taking writes, another region down — set on the
//! simulated cloud after the scenario's incident and before it is observed, so that the
//! executor's safety gates can be exercised from a plan file (`run-plan --lag …`).

use std::time::Duration;

use dr_core::plan::Plan;
use dr_core::provider::DbRef;
use dr_core::simulation::Simulation;

/// The incident's state, from `run-plan` flags.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IncidentState {
    /// Replica id → its replication lag right now (`--lag shop-prod-west=20m`).
    pub lags: Vec<(String, Duration)>,
    /// Databases (plan names) whose old primary still answers and takes writes, even in a
    /// failed region (`--primary-still-writable orders-db`).
    pub writable_primaries: Vec<String>,
    /// Regions down besides the scenario's (`--region-down eu-west-1`).
    pub regions_down: Vec<String>,
}

impl IncidentState {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == IncidentState::default()
    }

    /// Applies the state to `sim`, after checking every name against `plan`.
    ///
    /// # Errors
    /// A message naming the replica, database or region the plan does not have.
    pub fn apply(&self, plan: &Plan, sim: &Simulation) -> Result<(), String> {
        for (replica, lag) in &self.lags {
            let found = plan
                .databases
                .iter()
                .flat_map(|d| d.replicas.iter())
                .find(|r| r.id == *replica);
            let Some(r) = found else {
                let known: Vec<&str> = plan
                    .databases
                    .iter()
                    .flat_map(|d| d.replicas.iter().map(|r| r.id.as_str()))
                    .collect();
                return Err(format!(
                    "--lag: the plan has no replica `{replica}` (it has: {})",
                    known.join(", ")
                ));
            };
            sim.cloud()
                .set_replication_lag(&DbRef::new(&r.region, &r.id), *lag);
        }
        for name in &self.writable_primaries {
            let Some(db) = plan.databases.iter().find(|d| d.name == *name) else {
                let known: Vec<&str> = plan.databases.iter().map(|d| d.name.as_str()).collect();
                return Err(format!(
                    "--primary-still-writable: the plan has no database `{name}` (it has: {})",
                    known.join(", ")
                ));
            };
            sim.cloud()
                .keep_serving(&DbRef::new(&db.region, db.instance()));
        }
        for region in &self.regions_down {
            if !plan.regions.iter().any(|r| r.name == *region) {
                let known: Vec<&str> = plan.regions.iter().map(|r| r.name.as_str()).collect();
                return Err(format!(
                    "--region-down: the plan has no region `{region}` (it has: {})",
                    known.join(", ")
                ));
            }
            sim.cloud().fail_region(region);
        }
        Ok(())
    }
}

/// Parses `NAME=DURATION` (`shop-prod-west=20m`).
///
/// # Errors
/// A message saying what to write.
pub fn name_duration(s: &str) -> Result<(String, Duration), String> {
    let (name, d) = s
        .split_once('=')
        .filter(|(n, _)| !n.is_empty())
        .ok_or_else(|| "write NAME=DURATION, such as `shop-prod-west=20m`".to_string())?;
    let d = humantime::parse_duration(d.trim())
        .map_err(|_| "not a duration: write one such as `20m` or `1h30m`".to_string())?;
    Ok((name.to_string(), d))
}
