//! Replication steps: checking that a replica has caught up with its primary before the
//! roles are swapped (a failback), so that nothing holding newer writes is demoted.

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use super::{to_json, Call, Role, StepAction, StepContext};
use crate::duration::human;
use crate::provider::{DbRef, DbRole, Operation as O};
use crate::{Error, Result};

/// Waits until `replica` replicates from `primary` within `max_lag`; refuses to go on
/// (a permanent error naming both instances and the lag) when it does not within the step's
/// deadline: `primary` then still takes writes `replica` has not replayed, and promoting the
/// replica would leave them behind on the instance being demoted.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use dr_core::provider::DbRef;
/// use dr_core::step::{replication::VerifyCaughtUp, StepAction};
///
/// let step = VerifyCaughtUp {
///     replica: DbRef::new("us-east-1", "shop-prod-failback"),
///     primary: DbRef::new("us-west-2", "shop-prod-west"),
///     max_lag: Duration::from_secs(60),
/// };
/// assert_eq!(step.kind(), "verify_caught_up");
/// assert!(step.idempotent());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyCaughtUp {
    /// The replica about to be promoted.
    pub replica: DbRef,
    /// The primary about to be demoted.
    pub primary: DbRef,
    /// The largest replication lag taken as caught up.
    #[serde(with = "crate::duration::seconds")]
    pub max_lag: Duration,
}

#[async_trait]
impl StepAction for VerifyCaughtUp {
    fn kind(&self) -> &str {
        "verify_caught_up"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        vec![Call::provider(
            Role::Database {
                region: self.replica.region.clone(),
            },
            O::Describe,
            format!(
                "{} (until within {} of {})",
                self.replica,
                human(self.max_lag),
                self.primary
            ),
        )]
    }
    fn idempotent(&self) -> bool {
        true
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(60)
    }
    fn default_timeout(&self) -> Duration {
        Duration::from_secs(600)
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let db = ctx.database(&self.replica.region)?;
        // Give up a little before the step's deadline, with the refusal rather than a timeout.
        let budget = ctx.remaining().saturating_sub(Duration::from_secs(1));
        let mut wait = super::Backoff::new(budget, Duration::from_secs(30));
        loop {
            let status = ctx.read(|| db.describe(&self.replica)).await?;
            match &status.role {
                DbRole::Replica { source } if *source == self.primary => {}
                role => {
                    return Err(Error::InvalidState {
                        provider: db.name().to_string(),
                        resource: self.replica.to_string(),
                        state: match role {
                            DbRole::Primary => "a primary".to_string(),
                            DbRole::Replica { source } => format!("a replica of {source}"),
                        },
                        operation: format!("hand over from {}", self.primary),
                    })
                }
            }
            let lag = status.replication_lag;
            if lag.is_some_and(|l| l <= self.max_lag) {
                return Ok(());
            }
            if wait.expired() {
                let lag = lag.map_or("unknown".to_string(), human);
                return Err(Error::InvalidState {
                    provider: db.name().to_string(),
                    resource: self.primary.to_string(),
                    state: format!(
                        "holding writes that {} has not replayed (lag {lag} after {}, more than {}): nothing was demoted",
                        self.replica,
                        human(wait.elapsed()),
                        human(self.max_lag)
                    ),
                    operation: "hand over to the replica".into(),
                });
            }
            wait.sleep().await;
        }
    }
}
