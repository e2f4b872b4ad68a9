//! Security-incident steps: cut a workload's pods off with a deny-all `NetworkPolicy`,
//! snapshot volumes tagged with the incident, rotate a credential in the cloud secret
//! manager and copy it into the cluster. The namespace's objects are written once to the
//! evidence store by [`ExportResources`](super::store::ExportResources).
//!
//! Every evidence step reports what it kept in its output (`{"evidence": [...]}`, see
//! [`Evidence`]); the run's report lists them all
//! ([`RunReport::evidence`](crate::executor::RunReport::evidence)).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{to_json, Call, Role, StepAction, StepContext};
use crate::provider::{Manifest, Operation as O, VolumeSnapshot, VolumeSnapshotState};
use crate::{Error, Result, Retry, Secret};

/// What an evidence step kept, as its output and the report list it.
///
/// # Examples
///
/// ```
/// use dr_core::step::security::Evidence;
///
/// let e = Evidence::VolumeSnapshot {
///     region: "us-east-1".into(),
///     volume: "vol-0abc".into(),
///     id: "snap-0def".into(),
/// };
/// assert_eq!(serde_json::to_value(&e).unwrap()["kind"], "volume_snapshot");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    /// An object written once to a store.
    Object {
        /// The store's name in the plan.
        store: String,
        /// The object's key.
        key: String,
        /// Size in bytes.
        size: u64,
        /// Hex SHA-256 of the content.
        sha256: String,
    },
    /// A snapshot of a block volume.
    VolumeSnapshot {
        /// Region of the volume.
        region: String,
        /// The volume.
        volume: String,
        /// The snapshot id.
        id: String,
    },
}

impl Evidence {
    /// The evidence items a step's output lists (none for other outputs).
    pub fn from_output(output: &serde_json::Value) -> Vec<Evidence> {
        output
            .get("evidence")
            .and_then(|e| serde_json::from_value::<Vec<Evidence>>(e.clone()).ok())
            .unwrap_or_default()
    }

    pub(crate) fn output(items: Vec<Evidence>) -> serde_json::Value {
        serde_json::json!({ "evidence": items })
    }
}

fn cluster_role(cluster: &str) -> Role {
    Role::Cluster {
        cluster: cluster.to_string(),
    }
}

/// Apply a deny-all `NetworkPolicy` (no ingress, no egress) selecting a workload's pods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DenyAllTraffic {
    /// Cluster name.
    pub cluster: String,
    /// Namespace of the pods.
    pub namespace: String,
    /// The workload whose pods are cut off (names the policy `<workload>-deny-all`).
    pub workload: String,
    /// Labels selecting its pods (the workload's pod template labels).
    pub selector: BTreeMap<String, String>,
}

impl DenyAllTraffic {
    /// The policy's name.
    pub fn policy_name(&self) -> String {
        format!("{}-deny-all", self.workload)
    }

    /// The `NetworkPolicy` object: the selected pods get no traffic in or out.
    pub fn manifest(&self) -> Manifest {
        let name = self.policy_name();
        let mut body = format!(
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: {name}\n  namespace: {}\n  labels:\n    app.kubernetes.io/managed-by: dr-core\nspec:\n  podSelector:\n    matchLabels:\n",
            self.namespace
        );
        for (k, v) in &self.selector {
            body.push_str(&format!("      {}: {}\n", yaml_str(k), yaml_str(v)));
        }
        body.push_str("  policyTypes:\n    - Ingress\n    - Egress\n");
        Manifest {
            kind: "NetworkPolicy".into(),
            name,
            body,
        }
    }
}

/// A YAML double-quoted scalar (label keys and values may hold `/` and `.`).
fn yaml_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

#[async_trait]
impl StepAction for DenyAllTraffic {
    fn kind(&self) -> &str {
        "deny_all_traffic"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        vec![Call::provider(
            cluster_role(&self.cluster),
            O::Apply,
            format!(
                "{}/{} NetworkPolicy {}",
                self.cluster,
                self.namespace,
                self.policy_name()
            ),
        )]
    }
    fn idempotent(&self) -> bool {
        true
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(10)
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        ctx.cluster(&self.cluster)?
            .apply(&self.cluster, &self.namespace, &[self.manifest()])
            .await
    }
}

/// Snapshot a block volume, tagged with the incident. Looks for a snapshot of the volume
/// with the same tags first (a resumed or retried run never takes a second), then waits
/// until it is `completed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotVolume {
    /// Region of the volume.
    pub region: String,
    /// The volume (`vol-0abc`).
    pub volume: String,
    /// Tags put on the snapshot (`incident`), also what finds it again.
    pub tags: BTreeMap<String, String>,
    /// The snapshot's description.
    pub description: String,
}

#[async_trait]
impl StepAction for SnapshotVolume {
    fn kind(&self) -> &str {
        "snapshot_volume"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        let role = Role::Volumes {
            region: self.region.clone(),
        };
        let target = format!("{}/{}", self.region, self.volume);
        vec![
            Call::provider(role.clone(), O::FindVolumeSnapshots, target.clone()),
            Call::provider(role.clone(), O::CreateVolumeSnapshot, target.clone()),
            Call::provider(
                role,
                O::DescribeVolumeSnapshot,
                format!("{target} (until completed)"),
            ),
        ]
    }
    fn idempotent(&self) -> bool {
        // Found by its tags before a second is taken.
        true
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(300)
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let v = ctx.volumes(&self.region)?;
        let found = ctx
            .read(|| v.find_volume_snapshots(&self.region, &self.volume, &self.tags))
            .await?;
        let mut snap: VolumeSnapshot = match found
            .into_iter()
            .find(|s| s.state != VolumeSnapshotState::Error)
        {
            Some(s) => s,
            None => {
                v.create_volume_snapshot(&self.region, &self.volume, &self.description, &self.tags)
                    .await?
            }
        };
        ctx.memory.set("snapshot_id", &snap.id);
        let budget = ctx.remaining();
        let mut wait = super::Backoff::new(budget, Duration::from_secs(30));
        loop {
            match snap.state {
                VolumeSnapshotState::Completed => break,
                VolumeSnapshotState::Error => {
                    return Err(Error::InvalidState {
                        provider: v.name().to_string(),
                        resource: format!("volume snapshot {}/{}", self.region, snap.id),
                        state: "error".into(),
                        operation: format!("keep it as evidence of {}", self.volume),
                    })
                }
                VolumeSnapshotState::Pending => {}
            }
            if wait.expired() {
                return Err(Error::Timeout {
                    operation: format!("waiting for volume snapshot {}/{}", self.region, snap.id),
                    after: budget,
                });
            }
            wait.sleep().await;
            let id = snap.id.clone();
            snap = ctx
                .read(|| v.describe_volume_snapshot(&self.region, &id))
                .await?;
        }
        ctx.output = Some(Evidence::output(vec![Evidence::VolumeSnapshot {
            region: self.region.clone(),
            volume: self.volume.clone(),
            id: snap.id,
        }]));
        Ok(())
    }
}

/// Rotate a credential in the cloud secret manager: a new random value (256 bits from the
/// operating system's generator, hex), written under a version derived from the step's
/// idempotency key and the incident, so a retry or a resume writes nothing new. The value
/// never leaves the step: it is not remembered, journaled, logged or reported;
/// [`CopyCredential`] reads it back from the manager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RotateCredential {
    /// Region of the secret manager.
    pub region: String,
    /// Secret name.
    pub secret: String,
    /// The incident (part of the version, so each incident rotates once).
    pub incident: String,
}

impl RotateCredential {
    /// The version id the rotation writes for idempotency key `key`: `dr-` and 32 hex
    /// digits of SHA-256 over the key and the incident.
    ///
    /// # Examples
    ///
    /// ```
    /// use dr_core::step::security::RotateCredential;
    ///
    /// let r = RotateCredential { region: "r".into(), secret: "s".into(), incident: "INC-1".into() };
    /// let v = r.version("shop:isolate:api/rotate");
    /// assert_eq!(v, r.version("shop:isolate:api/rotate"));
    /// assert_eq!(v.len(), 35);
    /// ```
    pub fn version(&self, key: &str) -> String {
        let mut h = Sha256::new();
        h.update(key.as_bytes());
        h.update([0]);
        h.update(self.incident.as_bytes());
        let digest = hex::encode(h.finalize());
        format!("dr-{}", &digest[..32])
    }
}

/// A new random credential value.
fn fresh_value() -> Result<Secret> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::Other {
        provider: "executor".into(),
        operation: "generating a credential".into(),
        retry: Retry::Permanent,
        source: format!("no entropy source: {e}").into(),
    })?;
    Ok(Secret::new(hex::encode(bytes)))
}

#[async_trait]
impl StepAction for RotateCredential {
    fn kind(&self) -> &str {
        "rotate_credential"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        let role = Role::Secrets {
            region: self.region.clone(),
        };
        let target = format!("{}/{}", self.region, self.secret);
        vec![
            Call::provider(role.clone(), O::GetSecretValue, target.clone()),
            Call::provider(role, O::PutSecretValue, format!("{target} (new version)")),
        ]
    }
    fn idempotent(&self) -> bool {
        // The version is checked first, and a rewrite of it is refused by the manager.
        true
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(10)
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let m = ctx.secrets(&self.region)?;
        let version = self.version(ctx.idempotency_key());
        let written = ctx.memory.get::<String>("version");
        let current = ctx
            .read(|| m.get_secret_value(&self.region, &self.secret))
            .await?;
        let rotated = if current.version == version || written.as_deref() == Some(&current.version)
        {
            current.version
        } else {
            let value = fresh_value()?;
            match m
                .put_secret_value(&self.region, &self.secret, &value, &version)
                .await
            {
                Ok(id) => id,
                // The version exists with another value: this rotation already happened
                // (before a crash or a lost answer), and is not made twice.
                Err(Error::AlreadyExists { .. }) => {
                    ctx.read(|| m.get_secret_value(&self.region, &self.secret))
                        .await?
                        .version
                }
                Err(e) => return Err(e),
            }
        };
        ctx.memory.set("version", &rotated);
        ctx.output = Some(serde_json::json!({
            "rotated": { "region": self.region, "secret": self.secret, "version": rotated }
        }));
        Ok(())
    }
}

/// Copy a credential's current value from the cloud secret manager into one key of a
/// cluster secret. The value is read when the step runs and never remembered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyCredential {
    /// Region of the secret manager.
    pub region: String,
    /// Secret name in the manager.
    pub secret: String,
    /// Cluster name.
    pub cluster: String,
    /// Namespace of the cluster secret.
    pub namespace: String,
    /// The cluster secret.
    pub cluster_secret: String,
    /// Its key that receives the value.
    pub key: String,
}

#[async_trait]
impl StepAction for CopyCredential {
    fn kind(&self) -> &str {
        "copy_credential"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        vec![
            Call::provider(
                Role::Secrets {
                    region: self.region.clone(),
                },
                O::GetSecretValue,
                format!("{}/{}", self.region, self.secret),
            ),
            Call::provider(
                cluster_role(&self.cluster),
                O::PatchSecret,
                format!(
                    "{}/{}/{} key {}",
                    self.cluster, self.namespace, self.cluster_secret, self.key
                ),
            ),
        ]
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
        let m = ctx.secrets(&self.region)?;
        let current = ctx
            .read(|| m.get_secret_value(&self.region, &self.secret))
            .await?;
        let data = BTreeMap::from([(self.key.clone(), current.value)]);
        ctx.cluster(&self.cluster)?
            .patch_secret(&self.cluster, &self.namespace, &self.cluster_secret, &data)
            .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_deny_all_policy_selects_the_pods_and_allows_nothing() {
        let step = DenyAllTraffic {
            cluster: "c".into(),
            namespace: "shop".into(),
            workload: "api".into(),
            selector: BTreeMap::from([("app".to_string(), "api".to_string())]),
        };
        let m = step.manifest();
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&m.body).unwrap();
        assert_eq!(v["kind"].as_str(), Some("NetworkPolicy"));
        assert_eq!(v["metadata"]["name"].as_str(), Some("api-deny-all"));
        assert_eq!(v["metadata"]["namespace"].as_str(), Some("shop"));
        assert_eq!(
            v["spec"]["podSelector"]["matchLabels"]["app"].as_str(),
            Some("api")
        );
        let types: Vec<_> = v["spec"]["policyTypes"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|t| t.as_str())
            .collect();
        assert_eq!(types, ["Ingress", "Egress"]);
        assert!(v["spec"].get("ingress").is_none() && v["spec"].get("egress").is_none());
    }

    #[test]
    fn versions_differ_per_step_and_incident() {
        let r = |incident: &str| RotateCredential {
            region: "r".into(),
            secret: "s".into(),
            incident: incident.into(),
        };
        assert_ne!(r("a").version("k"), r("b").version("k"));
        assert_ne!(r("a").version("k"), r("a").version("k2"));
    }

    #[test]
    fn fresh_values_are_random_and_long() {
        let a = fresh_value().unwrap();
        let b = fresh_value().unwrap();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 64);
    }

    #[test]
    fn outputs_round_trip_into_evidence() {
        let items = vec![Evidence::Object {
            store: "e".into(),
            key: "k".into(),
            size: 3,
            sha256: "ab".into(),
        }];
        assert_eq!(
            Evidence::from_output(&Evidence::output(items.clone())),
            items
        );
        assert!(Evidence::from_output(&serde_json::json!({"exit": 0})).is_empty());
    }
}
