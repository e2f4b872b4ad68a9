//! Store steps: export a namespace's objects into a snapshot store, written once.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::security::Evidence;
use super::{to_json, Call, Role, StepAction, StepContext};
use crate::provider::{Operation as O, Precondition};
use crate::{Error, Result};

/// Export a namespace's objects into a snapshot store (the evidence of a security
/// incident), written once: the object is created only where none exists (a create-only
/// conditional write), never overwritten and never deleted. A retried or resumed step that
/// finds the same content already under the key goes on; other content there fails the
/// step, naming the object, and is kept. The step's output lists the object with its size
/// and SHA-256 ([`Evidence::Object`]).
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
            // When the key is taken, the object there is read (`get_versioned`) and
            // compared: not a call of the path where every call succeeds.
            Call::provider(
                Role::Store {
                    store: self.store.clone(),
                },
                O::PutIf,
                format!("{}/{} (create only)", self.store, self.key),
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
        let data = Bytes::from(yaml);
        let sha256 = hex::encode(Sha256::digest(&data));
        let store = ctx.store(&self.store)?;
        let object = format!("object {}/{}", self.store, self.key);
        match store
            .put_if(&self.key, data.clone(), Precondition::Absent)
            .await
        {
            Ok(_) => {}
            Err(e) if e.is_precondition_failed() => {
                // Taken: this step's own write before a lost answer or a crash, or
                // something else. Never overwritten either way.
                let existing = ctx.read(|| store.get_versioned(&self.key)).await?;
                if existing.is_none_or(|(bytes, _)| bytes != data) {
                    return Err(Error::PreconditionFailed {
                        provider: store.name().to_string(),
                        resource: object,
                        expected: "no object (evidence is written once: another object is already under this key, and it is kept)".into(),
                    });
                }
            }
            Err(e) => {
                tracing::warn!(object = %object, error = %e, "writing evidence failed");
                return Err(e);
            }
        }
        ctx.output = Some(Evidence::output(vec![Evidence::Object {
            store: self.store.clone(),
            key: self.key.clone(),
            size: data.len() as u64,
            sha256,
        }]));
        Ok(())
    }
}
