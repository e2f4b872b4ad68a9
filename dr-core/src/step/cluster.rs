//! Cluster steps: apply, scale, restart, roll back, write a secret, wait, isolate.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use super::{to_json, Call, Observed, Role, StepAction, StepContext};
use crate::provider::{DbRef, Manifest, Operation as O, WorkloadRef};
use crate::{Error, Result, Secret};

fn role(cluster: &str) -> Role {
    Role::Cluster {
        cluster: cluster.to_string(),
    }
}

/// Apply manifests to a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApplyManifests {
    /// Cluster name.
    pub cluster: String,
    /// Namespace.
    pub namespace: String,
    /// The manifests.
    pub manifests: Vec<Manifest>,
}

#[async_trait]
impl StepAction for ApplyManifests {
    fn kind(&self) -> &str {
        "apply_manifests"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        vec![Call::provider(
            role(&self.cluster),
            O::Apply,
            format!(
                "{}/{} ({} manifests)",
                self.cluster,
                self.namespace,
                self.manifests.len()
            ),
        )]
    }
    fn idempotent(&self) -> bool {
        true
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(60)
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        ctx.cluster(&self.cluster)?
            .apply(&self.cluster, &self.namespace, &self.manifests)
            .await
    }
}

/// Scale a workload. Remembers the desired replicas from before, so a compensation scales
/// back to them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scale {
    /// The workload.
    pub workload: WorkloadRef,
    /// Replica count.
    pub replicas: u32,
}

#[async_trait]
impl StepAction for Scale {
    fn kind(&self) -> &str {
        "scale"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        let r = role(&self.workload.cluster);
        vec![
            // The replicas from before, remembered for the compensation.
            Call::provider(r.clone(), O::RolloutStatus, self.workload.to_string()),
            Call::provider(
                r,
                O::Scale,
                format!("{} to {}", self.workload, self.replicas),
            ),
        ]
    }
    fn idempotent(&self) -> bool {
        true
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(10)
    }
    fn milestone(&self) -> Option<&'static str> {
        Some("workloads scaled")
    }
    async fn prepare(&self, ctx: &mut StepContext<'_>) -> Observed {
        // One read, not retried: a workload that cannot be read now (its region is down) is
        // scaled all the same; only the compensation needs what it remembers.
        if let Ok(cp) = ctx.cluster(&self.workload.cluster) {
            if let Ok(status) = cp.rollout_status(&self.workload).await {
                ctx.memory.set("replicas_before", status.replicas);
            }
        }
        Observed::NotDone
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        ctx.cluster(&self.workload.cluster)?
            .scale(&self.workload, self.replicas)
            .await
    }
    fn compensable(&self) -> bool {
        true
    }
    async fn compensate(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let Some(before) = ctx.memory.get::<u32>("replicas_before") else {
            return Err(Error::InvalidState {
                provider: "executor".into(),
                resource: format!("workload {}", self.workload),
                state: "without the replica count from before (it could not be read)".into(),
                operation: "scale back".into(),
            });
        };
        ctx.cluster(&self.workload.cluster)?
            .scale(&self.workload, before)
            .await
    }
}

/// The read-back of a rollout step: a revision newer than the one remembered before the
/// first attempt means the new rollout exists.
async fn rollout_moved_on(workload: &WorkloadRef, ctx: &mut StepContext<'_>) -> Observed {
    let Some(before) = ctx.memory.get::<u64>("revision_before") else {
        // Without the revision from before the first attempt nothing can be judged.
        return Observed::Unknown;
    };
    let Ok(cp) = ctx.cluster(&workload.cluster) else {
        return Observed::Unknown;
    };
    match ctx.read(|| cp.rollout_status(workload)).await {
        Ok(status) if status.revision > before => Observed::Done,
        Ok(_) => Observed::NotDone,
        Err(_) => Observed::Unknown,
    }
}

/// Remembers the rollout revision before the first attempt of a rollout step.
async fn remember_revision(workload: &WorkloadRef, ctx: &mut StepContext<'_>) -> Observed {
    let Ok(cp) = ctx.cluster(&workload.cluster) else {
        return Observed::Unknown;
    };
    match ctx.read(|| cp.rollout_status(workload)).await {
        Ok(status) => {
            ctx.memory.set("revision_before", status.revision);
            Observed::NotDone
        }
        Err(_) => Observed::Unknown,
    }
}

/// Restart a workload's pods through a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolloutRestart {
    /// The workload.
    pub workload: WorkloadRef,
}

#[async_trait]
impl StepAction for RolloutRestart {
    fn kind(&self) -> &str {
        "rollout_restart"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        let r = role(&self.workload.cluster);
        vec![
            Call::provider(r.clone(), O::RolloutStatus, self.workload.to_string()),
            Call::provider(r, O::RolloutRestart, self.workload.to_string()),
        ]
    }
    fn idempotent(&self) -> bool {
        false
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(60)
    }
    async fn prepare(&self, ctx: &mut StepContext<'_>) -> Observed {
        remember_revision(&self.workload, ctx).await
    }
    async fn observe(&self, ctx: &mut StepContext<'_>) -> Observed {
        rollout_moved_on(&self.workload, ctx).await
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        ctx.cluster(&self.workload.cluster)?
            .rollout_restart(&self.workload)
            .await?;
        Ok(())
    }
}

/// Roll a workload back. Remembers the revision from before, so the read-back knows a new
/// rollout exists and a compensation rolls forward to that revision again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolloutUndo {
    /// The workload.
    pub workload: WorkloadRef,
    /// Target revision, or the previous one.
    pub revision: Option<u64>,
}

#[async_trait]
impl StepAction for RolloutUndo {
    fn kind(&self) -> &str {
        "rollout_undo"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        let r = role(&self.workload.cluster);
        let to = self.revision.map_or_else(
            || "previous revision".to_string(),
            |rev| format!("revision {rev}"),
        );
        vec![
            Call::provider(r.clone(), O::RolloutStatus, self.workload.to_string()),
            Call::provider(r, O::RolloutUndo, format!("{} to {to}", self.workload)),
        ]
    }
    fn idempotent(&self) -> bool {
        false
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(60)
    }
    async fn prepare(&self, ctx: &mut StepContext<'_>) -> Observed {
        remember_revision(&self.workload, ctx).await
    }
    async fn observe(&self, ctx: &mut StepContext<'_>) -> Observed {
        rollout_moved_on(&self.workload, ctx).await
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        ctx.cluster(&self.workload.cluster)?
            .rollout_undo(&self.workload, self.revision)
            .await?;
        Ok(())
    }
    fn compensable(&self) -> bool {
        true
    }
    async fn compensate(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let Some(before) = ctx.memory.get::<u64>("revision_before") else {
            return Err(Error::InvalidState {
                provider: "executor".into(),
                resource: format!("workload {}", self.workload),
                state: "without the revision from before (it could not be read)".into(),
                operation: "roll forward".into(),
            });
        };
        ctx.cluster(&self.workload.cluster)?
            .rollout_undo(&self.workload, Some(before))
            .await?;
        Ok(())
    }
}

/// Where the value written into a secret comes from, resolved when the step runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "from")]
pub enum SecretSource {
    /// The connection endpoint of a database, read (`describe`) when the step runs, so it is
    /// the endpoint of the instance that was just promoted or restored.
    DatabaseEndpoint {
        /// The database whose endpoint is written.
        db: DbRef,
        /// Template around the endpoint; `{endpoint}` is replaced
        /// (`postgres://app@{endpoint}/orders`). `None` writes the bare endpoint.
        template: Option<String>,
    },
    /// A literal value from the plan or the embedding service.
    Literal {
        /// The value (never printed).
        value: Secret,
    },
}

/// Write one key of a Secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetSecret {
    /// Cluster name.
    pub cluster: String,
    /// Namespace.
    pub namespace: String,
    /// Secret name.
    pub secret: String,
    /// Key within the secret.
    pub key: String,
    /// Where the value comes from.
    pub value: SecretSource,
}

#[async_trait]
impl StepAction for SetSecret {
    fn kind(&self) -> &str {
        "set_secret"
    }
    fn params(&self) -> serde_json::Value {
        let mut v = to_json(self);
        // A template may carry a password (`postgres://app:…@{endpoint}`): never shown.
        if let Some(t) = v.pointer_mut("/value/template") {
            if let Some(text) = t.as_str() {
                *t = super::redact_userinfo(text).into();
            }
        }
        v
    }
    fn calls(&self) -> Vec<Call> {
        let mut calls = Vec::new();
        if let SecretSource::DatabaseEndpoint { db, .. } = &self.value {
            calls.push(Call::provider(
                Role::Database {
                    region: db.region.clone(),
                },
                O::Describe,
                db.to_string(),
            ));
        }
        calls.push(Call::provider(
            role(&self.cluster),
            O::PatchSecret,
            format!(
                "{}/{}/{} key {}",
                self.cluster, self.namespace, self.secret, self.key
            ),
        ));
        calls
    }
    fn idempotent(&self) -> bool {
        true
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(5)
    }
    fn milestone(&self) -> Option<&'static str> {
        Some("secret updated")
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let value = match &self.value {
            SecretSource::Literal { value } => value.clone(),
            SecretSource::DatabaseEndpoint { db, template } => {
                let dbp = ctx.database(&db.region)?;
                let endpoint = ctx
                    .read(|| dbp.describe(db))
                    .await?
                    .endpoint
                    .ok_or_else(|| Error::InvalidResponse {
                        provider: dbp.name().to_string(),
                        operation: "describe".into(),
                        message: format!("{db} has no endpoint"),
                    })?;
                match template {
                    Some(t) => Secret::new(t.replace("{endpoint}", &endpoint)),
                    None => Secret::new(endpoint),
                }
            }
        };
        let data = BTreeMap::from([(self.key.clone(), value)]);
        ctx.cluster(&self.cluster)?
            .patch_secret(&self.cluster, &self.namespace, &self.secret, &data)
            .await
    }
}

/// Wait until a workload's rollout is complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaitWorkload {
    /// The workload.
    pub workload: WorkloadRef,
}

#[async_trait]
impl StepAction for WaitWorkload {
    fn kind(&self) -> &str {
        "wait_workload"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        vec![Call::provider(
            role(&self.workload.cluster),
            O::RolloutStatus,
            format!("{} (until ready)", self.workload),
        )]
    }
    fn idempotent(&self) -> bool {
        true
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(120)
    }
    fn milestone(&self) -> Option<&'static str> {
        Some("workloads ready")
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let remaining = ctx.remaining();
        ctx.cluster(&self.workload.cluster)?
            .wait_ready(&self.workload, remaining)
            .await?;
        Ok(())
    }
}

/// Cut a workload off from traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IsolateWorkload {
    /// The workload.
    pub workload: WorkloadRef,
}

#[async_trait]
impl StepAction for IsolateWorkload {
    fn kind(&self) -> &str {
        "isolate_workload"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        vec![Call::provider(
            role(&self.workload.cluster),
            O::IsolateWorkload,
            self.workload.to_string(),
        )]
    }
    fn idempotent(&self) -> bool {
        true
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(10)
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        ctx.cluster(&self.workload.cluster)?
            .isolate(&self.workload)
            .await
    }
}
