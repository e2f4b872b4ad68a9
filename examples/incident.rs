//! What the world looks like right now, beyond the plan's nominal values — a replica
//! lagging 20 minutes, an old primary still taking writes, another region down, a region's
//! DNS targets already failing their health checks — set on the simulated cloud after the
//! scenario's incident and before it is observed, so that the executor's safety gates can be
//! exercised from a plan file (`run-plan --incident FILE`, or `--lag …` and the other flags).
//!
//! An incident file (YAML, TOML or JSON):
//!
//! ```yaml
//! lag:                          # replica id: its replication lag right now
//!   shop-prod-west: 20m
//! primary_still_writable: [orders-db]   # databases whose old primary still takes writes
//! region_down: [eu-west-1]              # regions down besides the scenario's
//! dns_unhealthy: [us-west-2]            # regions whose DNS targets fail their health checks
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use dr_core::document::{Format, ReadError};
use dr_core::duration::HumanDuration;
use dr_core::plan::Plan;
use dr_core::provider::{DbRef, HealthStatus};
use dr_core::simulation::Simulation;

/// The largest incident file accepted: 1 MiB.
pub const MAX_INCIDENT_BYTES: usize = 1 << 20;

/// An incident file, as written ([module docs](self)).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct IncidentFile {
    #[serde(default)]
    lag: BTreeMap<String, HumanDuration>,
    #[serde(default)]
    primary_still_writable: Vec<String>,
    #[serde(default)]
    region_down: Vec<String>,
    #[serde(default)]
    dns_unhealthy: Vec<String>,
}

/// The incident's state, from an incident file or `run-plan` flags.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IncidentState {
    /// Replica id → its replication lag right now (`--lag shop-prod-west=20m`).
    pub lags: Vec<(String, Duration)>,
    /// Databases (plan names) whose old primary still answers and takes writes, even in a
    /// failed region (`--primary-still-writable orders-db`).
    pub writable_primaries: Vec<String>,
    /// Regions down besides the scenario's (`--region-down eu-west-1`).
    pub regions_down: Vec<String>,
    /// Regions whose DNS targets fail their health checks already (`--dns-unhealthy
    /// us-west-2`): a switch of a record to them breaks the `healthy-target` interlock.
    pub dns_unhealthy: Vec<String>,
}

impl IncidentState {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == IncidentState::default()
    }

    /// Loads an incident file ([module docs](self)); the format comes from the extension.
    ///
    /// # Errors
    /// A message naming the file, and the line, column and field at fault.
    pub fn load(path: &Path) -> Result<IncidentState, String> {
        let file = path.display().to_string();
        let format = Format::from_path(path).ok_or_else(|| {
            format!("{file}: unknown incident file format (use .yaml, .yml, .toml or .json)")
        })?;
        let text = dr_core::document::read(path, MAX_INCIDENT_BYTES, "an incident file")
            .map_err(|e| match e {
                ReadError::Io(e) => format!("{file}: cannot read the incident file: {e}"),
                ReadError::TooLarge => format!(
                    "{file}: the incident file is larger than the limit of {MAX_INCIDENT_BYTES} bytes"
                ),
                ReadError::NotUtf8(f) => format!("{file}: {}", f.message),
            })?;
        let parsed: IncidentFile = dr_core::document::deserialize(&text, format)
            .map_err(|f| f.render(&file, format, "incident file"))?;
        Ok(IncidentState {
            lags: parsed.lag.into_iter().map(|(k, v)| (k, v.get())).collect(),
            writable_primaries: parsed.primary_still_writable,
            regions_down: parsed.region_down,
            dns_unhealthy: parsed.dns_unhealthy,
        })
    }

    /// This state with `other`'s added (a file's, then the flags').
    pub fn merged(mut self, other: IncidentState) -> IncidentState {
        self.lags.extend(other.lags);
        self.writable_primaries.extend(other.writable_primaries);
        self.regions_down.extend(other.regions_down);
        self.dns_unhealthy.extend(other.dns_unhealthy);
        self
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
        for region in &self.dns_unhealthy {
            if !plan.regions.iter().any(|r| r.name == *region) {
                let known: Vec<&str> = plan.regions.iter().map(|r| r.name.as_str()).collect();
                return Err(format!(
                    "--dns-unhealthy: the plan has no region `{region}` (it has: {})",
                    known.join(", ")
                ));
            }
            // Each service's health check, probed at the record's target in that region.
            for t in dr_core::step::dns::target_probes(plan) {
                if t.region == *region {
                    sim.cloud()
                        .set_endpoint_health(&t.url, HealthStatus::Unhealthy);
                }
            }
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
