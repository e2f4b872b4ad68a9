//! DNS steps: point a record set at new values.

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use super::{to_json, Call, Observed, Role, StepAction, StepContext};
use crate::provider::Operation as O;
use crate::Result;

/// Point a DNS record set at new values and wait until the change is in sync. Remembers the
/// values from before the switch, so the read-back and the compensation (switch back) judge
/// against them.
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
        vec![
            // The values before the switch, remembered for the read-back and to switch back.
            Call::provider(self.role(), O::GetRecord, format!("{rec} (values before)")),
            Call::provider(self.role(), O::GetRecord, rec.clone()),
            Call::provider(
                self.role(),
                O::SwitchRecord,
                format!("{rec} -> {}", self.values.join(",")),
            ),
            Call::provider(self.role(), O::WaitChange, rec),
        ]
    }
    fn idempotent(&self) -> bool {
        true
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(90)
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
