//! The data checks a plan names for a database, run against the promoted or restored
//! instance before the applications are pointed at it.

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use super::{to_json, Call, Role, StepAction, StepContext};
use crate::plan::DataCheck;
use crate::provider::{DbRef, Operation as O};
use crate::{Error, Result};

/// Runs the plan's [`DataCheck`]s of a database against `db` (the promoted replica, the
/// restored instance) through the database provider's
/// [`check_data`](crate::provider::DatabaseReplica::check_data). The values read go into
/// the report (the step's output); a value that fails its check fails the step
/// permanently, naming every failed check, so that nothing is repointed at the instance.
///
/// # Examples
///
/// ```
/// use dr_core::plan::DataCheck;
/// use dr_core::provider::DbRef;
/// use dr_core::step::{data::VerifyData, StepAction};
///
/// let step = VerifyData {
///     db: DbRef::new("dc2", "orders-standby"),
///     checks: vec![DataCheck::row_count("orders").with_min(1000)],
/// };
/// assert_eq!(step.kind(), "verify_data");
/// assert!(step.idempotent());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyData {
    /// The instance checked.
    pub db: DbRef,
    /// The checks, in order.
    pub checks: Vec<DataCheck>,
}

#[async_trait]
impl StepAction for VerifyData {
    fn kind(&self) -> &str {
        "verify_data"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        vec![Call::provider(
            Role::Database {
                region: self.db.region.clone(),
            },
            O::CheckData,
            format!("{} ({} checks)", self.db, self.checks.len()),
        )]
    }
    fn idempotent(&self) -> bool {
        true
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(60)
    }
    fn milestone(&self) -> Option<&'static str> {
        Some("data verified")
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let p = ctx.database(&self.db.region)?;
        let values = ctx.read(|| p.check_data(&self.db, &self.checks)).await?;
        if values.len() != self.checks.len() {
            return Err(Error::InvalidResponse {
                provider: p.name().to_string(),
                operation: format!("check_data of {}", self.db),
                message: format!("{} values for {} checks", values.len(), self.checks.len()),
            });
        }
        let mut failed = Vec::new();
        let mut out = Vec::with_capacity(values.len());
        for (c, v) in self.checks.iter().zip(&values) {
            let verdict = c.judge(v.as_deref());
            out.push(serde_json::json!({
                "check": c.label(),
                "value": v,
                "expected": c.expected,
                "min": c.min,
                "passed": verdict.is_ok(),
            }));
            if let Err(why) = verdict {
                failed.push(why);
            }
        }
        ctx.output = Some(serde_json::Value::Array(out));
        if failed.is_empty() {
            return Ok(());
        }
        Err(Error::InvalidState {
            provider: p.name().to_string(),
            resource: self.db.to_string(),
            state: format!("failing its data checks ({})", failed.join("; ")),
            operation: "point the applications at it".into(),
        })
    }
}
