//! Store steps: export a namespace's objects into a snapshot store.

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use super::{to_json, Call, Role, StepAction, StepContext};
use crate::provider::{Operation as O, SnapshotStoreExt};
use crate::Result;

/// Export a namespace's objects into a snapshot store (evidence, or a backup).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportResources {
    /// Cluster name.
    pub cluster: String,
    /// Namespace.
    pub namespace: String,
    /// Kinds to export (all when empty).
    pub kinds: Vec<String>,
    /// Snapshot store name.
    pub store: String,
    /// Object key to write.
    pub key: String,
}

#[async_trait]
impl StepAction for ExportResources {
    fn kind(&self) -> &str {
        "export_resources"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        let kinds = if self.kinds.is_empty() {
            "all kinds".to_string()
        } else {
            self.kinds.join(",")
        };
        vec![
            Call::provider(
                Role::Cluster {
                    cluster: self.cluster.clone(),
                },
                O::Export,
                format!("{}/{} ({kinds})", self.cluster, self.namespace),
            ),
            Call::provider(
                Role::Store {
                    store: self.store.clone(),
                },
                O::Put,
                format!("{}/{}", self.store, self.key),
            ),
        ]
    }
    fn idempotent(&self) -> bool {
        true
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(30)
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let cp = ctx.cluster(&self.cluster)?;
        let manifests = ctx
            .read(|| cp.export(&self.cluster, &self.namespace, &self.kinds))
            .await?;
        let mut yaml = String::new();
        for m in &manifests {
            yaml.push_str("---\n");
            yaml.push_str(m.body.trim_end());
            yaml.push('\n');
        }
        ctx.store(&self.store)?
            .put_bytes(&self.key, yaml.into())
            .await?;
        Ok(())
    }
}
