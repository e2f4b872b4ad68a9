//! DNS steps: point a record set at new values.

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use super::{to_json, Call, Observed, Role, StepAction, StepContext};
use crate::plan::Interlock;
use crate::provider::{HealthStatus, Operation as O};
use crate::Result;

/// The URL at which a DNS value is probed: the service's health-check URL `check` with its
/// host replaced by `value` (scheme, port, path and query kept), as a health check attached
/// to one target of a record set would probe it. `None` when `check` is not a URL with a
/// host or `value` is not a host name or address.
///
/// ```
/// use dr_core::step::dns::probe_url;
/// assert_eq!(
///     probe_url("https://api.example.com/health?deep=1", "lb.us-west-2.example.com").as_deref(),
///     Some("https://lb.us-west-2.example.com/health?deep=1"),
/// );
/// assert_eq!(probe_url("not a url", "lb.example.com"), None);
/// ```
pub fn probe_url(check: &str, value: &str) -> Option<String> {
    let mut url = reqwest::Url::parse(check).ok()?;
    url.host_str()?;
    let host = value.trim_end_matches('.');
    url.set_host(Some(host)).ok()?;
    Some(url.to_string())
}

/// Point a DNS record set at new values and wait until the change is in sync. Remembers the
/// values from before the switch, so the read-back and the compensation (switch back) judge
/// against them. With the plan's `healthy-target` interlock, the new values are probed at
/// [`health`](Self::health) first, and the switch is refused when none answers healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SwitchDns {
    /// Hosted zone.
    pub zone: String,
    /// Record name.
    pub name: String,
    /// Set identifier for failover/weighted sets.
    pub set_id: Option<String>,
    /// New values.
    pub values: Vec<String>,
    /// For the `healthy-target` interlock: the health check of the service behind the
    /// record, at which each new value is probed, host replaced ([`probe_url`]), right before
    /// the switch. `None` when the plan does not ask for the interlock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<TargetCheck>,
}

/// The health check a DNS switch probes its new values with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetCheck {
    /// The check's name, as in the plan (it selects the probe's configuration).
    pub check: String,
    /// The check's URL; each value is probed at it with the host replaced.
    pub url: String,
}

/// One target of a DNS record, probed with a service's health check ([`target_probes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetProbe {
    /// The health check's name.
    pub check: String,
    /// The URL probed: the check's URL at the target ([`probe_url`]).
    pub url: String,
    /// The record's zone.
    pub zone: String,
    /// The record.
    pub record: String,
    /// The target value (a host).
    pub value: String,
    /// The region the target serves.
    pub region: String,
    /// The service.
    pub service: String,
}

/// Every target of every DNS record of `plan` that a service's health check can probe: per
/// service with a health check, per record it names, per region with a target value. These
/// are what the `healthy-target` interlock probes.
///
/// ```
/// let plan = dr_core::plan::Plan::load(concat!(
///     env!("CARGO_MANIFEST_DIR"),
///     "/../examples/plans/region-failover.yaml"
/// ))
/// .unwrap();
/// let probes = dr_core::step::dns::target_probes(&plan);
/// assert!(probes
///     .iter()
///     .any(|p| p.url == "https://lb.us-west-2.shop.example.com/health" && p.region == "us-west-2"));
/// ```
pub fn target_probes(plan: &crate::plan::Plan) -> Vec<TargetProbe> {
    let mut out = Vec::new();
    for svc in &plan.services {
        let Some(check) = svc
            .health_check
            .as_deref()
            .and_then(|h| plan.health_check(h))
        else {
            continue;
        };
        for record in svc.dns.iter().filter_map(|d| plan.dns_record(d)) {
            for region in &plan.regions {
                let Some(value) = plan.dns_target(record, &region.name) else {
                    continue;
                };
                let Some(url) = probe_url(&check.target, &value) else {
                    continue;
                };
                out.push(TargetProbe {
                    check: check.name.clone(),
                    url,
                    zone: record.zone.clone(),
                    record: record.name.clone(),
                    value,
                    region: region.name.clone(),
                    service: svc.name.clone(),
                });
            }
        }
    }
    out
}

impl SwitchDns {
    fn role(&self) -> Role {
        Role::Dns {
            zone: self.zone.clone(),
        }
    }

    fn record(&self) -> String {
        match &self.set_id {
            Some(id) => format!("{}/{} ({id})", self.zone, self.name),
            None => format!("{}/{}", self.zone, self.name),
        }
    }

    /// How switching to the new values would leave the record without a healthy target, if
    /// it would: every value is probed at the service's health-check URL.
    async fn unhealthy_targets(&self, ctx: &StepContext<'_>) -> Option<String> {
        let Some(TargetCheck { url: check, .. }) = &self.health else {
            return Some(format!(
                "record {} has no health check to judge its new targets by",
                self.record()
            ));
        };
        let probe = match ctx.probe() {
            Ok(p) => p,
            Err(e) => return Some(format!("its new targets cannot be probed ({e})")),
        };
        let mut seen = Vec::new();
        for value in &self.values {
            let Some(url) = probe_url(check, value) else {
                seen.push(format!("{value} (cannot be probed at {check})"));
                continue;
            };
            match ctx.read(|| probe.check(&url)).await {
                Ok(HealthStatus::Healthy) => return None,
                Ok(status) => seen.push(format!(
                    "{value} ({} at {url})",
                    if status == HealthStatus::Unhealthy {
                        "unhealthy"
                    } else {
                        "health unknown"
                    }
                )),
                Err(e) => seen.push(format!("{value} (probe failed: {e})")),
            }
        }
        Some(format!(
            "no new target of record {} answers healthy: {}",
            self.record(),
            seen.join(", ")
        ))
    }

    /// Sets the record to `values` and waits for the change, within the attempt's time.
    async fn set(&self, ctx: &StepContext<'_>, values: &[String]) -> Result<()> {
        let dns = ctx.dns(&self.zone)?;
        let mut record = ctx
            .read(|| dns.get_record_set(&self.zone, &self.name, self.set_id.as_deref()))
            .await?;
        if record.values == values {
            return Ok(());
        }
        record.values = values.to_vec();
        let change = dns.switch_record(&record).await?;
        if !change.in_sync {
            dns.wait_change(&change.id, ctx.remaining()).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl StepAction for SwitchDns {
    fn kind(&self) -> &str {
        "switch_dns"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        let rec = self.record();
        // The values before the switch, remembered for the read-back and to switch back.
        let mut calls = vec![Call::provider(
            self.role(),
            O::GetRecord,
            format!("{rec} (values before)"),
        )];
        if let Some(h) = &self.health {
            // The new values' health, for the `healthy-target` interlock.
            for value in &self.values {
                let url = probe_url(&h.url, value).unwrap_or_else(|| h.url.clone());
                calls.push(Call::provider(
                    Role::Probe,
                    O::Probe,
                    format!("{} ({url})", h.check),
                ));
            }
        }
        calls.extend([
            Call::provider(self.role(), O::GetRecord, rec.clone()),
            Call::provider(
                self.role(),
                O::SwitchRecord,
                format!("{rec} -> {}", self.values.join(",")),
            ),
            Call::provider(self.role(), O::WaitChange, rec),
        ]);
        calls
    }
    fn idempotent(&self) -> bool {
        true
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(90)
    }
    fn interlocks(&self) -> &'static [Interlock] {
        &[Interlock::HealthyTarget]
    }
    fn milestone(&self) -> Option<&'static str> {
        Some("dns switched")
    }
    async fn prepare(&self, ctx: &mut StepContext<'_>) -> Observed {
        let Ok(dns) = ctx.dns(&self.zone) else {
            return Observed::Unknown;
        };
        match ctx
            .read(|| dns.get_record_set(&self.zone, &self.name, self.set_id.as_deref()))
            .await
        {
            Ok(before) => {
                ctx.memory.set("values_before", &before.values);
                if before.values == self.values {
                    Observed::Done
                } else {
                    Observed::NotDone
                }
            }
            Err(_) => Observed::Unknown,
        }
    }
    async fn observe(&self, ctx: &mut StepContext<'_>) -> Observed {
        let Ok(dns) = ctx.dns(&self.zone) else {
            return Observed::Unknown;
        };
        match ctx
            .read(|| dns.get_record_set(&self.zone, &self.name, self.set_id.as_deref()))
            .await
        {
            Ok(r) if r.values == self.values => Observed::Done,
            Ok(_) => Observed::NotDone,
            Err(_) => Observed::Unknown,
        }
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        if ctx.interlock(Interlock::HealthyTarget) {
            let violation = self.unhealthy_targets(ctx).await;
            ctx.check_interlock(Interlock::HealthyTarget, violation)
                .await?;
        }
        self.set(ctx, &self.values).await
    }
    fn compensable(&self) -> bool {
        true
    }
    async fn compensate(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let Some(before) = ctx.memory.get::<Vec<String>>("values_before") else {
            return Err(crate::Error::InvalidState {
                provider: "executor".into(),
                resource: format!("record {}", self.record()),
                state: "without remembered values".into(),
                operation: "switch back".into(),
            });
        };
        self.set(ctx, &before).await
    }
}
