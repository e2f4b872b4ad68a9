//! `ClusterDeployer`: what runbooks do with `kubectl`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::Capabilities;
use crate::{Error, Result, Secret};

/// Kind of a scalable workload.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadKind {
    /// A Deployment.
    Deployment,
    /// A StatefulSet.
    StatefulSet,
}

impl std::fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::StatefulSet => "statefulset",
        })
    }
}

/// A workload in a cluster.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct WorkloadRef {
    /// Cluster name, as the plan names it (one client per cluster).
    pub cluster: String,
    /// Namespace.
    pub namespace: String,
    /// Deployment or StatefulSet.
    pub kind: WorkloadKind,
    /// Name.
    pub name: String,
}

impl WorkloadRef {
    /// A Deployment `name` in `namespace` on `cluster`.
    pub fn deployment(
        cluster: impl Into<String>,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        WorkloadRef {
            cluster: cluster.into(),
            namespace: namespace.into(),
            kind: WorkloadKind::Deployment,
            name: name.into(),
        }
    }
}

impl std::fmt::Display for WorkloadRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}/{}/{}",
            self.kind, self.cluster, self.namespace, self.name
        )
    }
}

/// One Kubernetes object as YAML (or JSON) text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// `kind` of the object (`Deployment`).
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// The whole object as YAML.
    pub body: String,
}

/// Rollout state of a workload.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RolloutStatus {
    /// The workload.
    pub workload: WorkloadRef,
    /// Desired replicas.
    pub replicas: u32,
    /// Replicas updated to the current revision.
    pub updated_replicas: u32,
    /// Replicas ready and available.
    pub available_replicas: u32,
    /// Current revision number.
    pub revision: u64,
    /// Whether the controller has observed the latest spec.
    pub observed: bool,
    /// Whether the workload is isolated (no traffic reaches it).
    pub isolated: bool,
    /// Environment of its pod template (values of secrets are not included).
    pub env: BTreeMap<String, String>,
}

impl RolloutStatus {
    /// Rollout complete: spec observed, every desired replica updated and available.
    pub fn is_complete(&self) -> bool {
        self.observed
            && self.updated_replicas == self.replicas
            && self.available_replicas == self.replicas
    }
}

/// The node label that names a node's EKS managed node group: what
/// [`ClusterDeployer::list_nodes`] selects nodes by unless the plan names another label.
pub const NODE_GROUP_LABEL: &str = "eks.amazonaws.com/nodegroup";

/// A node of a cluster, as [`ClusterDeployer::list_nodes`] reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeInfo {
    /// The node's name.
    pub name: String,
    /// Whether its `Ready` condition is `True` (the node serves its pods).
    pub ready: bool,
    /// Whether it is cordoned (`spec.unschedulable`).
    pub unschedulable: bool,
    /// The pods bound to it, as `namespace/name`, sorted.
    pub pods: Vec<String>,
}

/// A container platform (Kubernetes through kube-rs, the simulated cloud).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use std::time::Duration;
/// use dr_core::provider::{ClusterDeployer, WorkloadRef};
/// use dr_core::sim::SimCloud;
///
/// tokio::time::pause();
/// let cloud = SimCloud::new(3);
/// let api = WorkloadRef::deployment("dr-west", "shop", "api");
/// cloud.add_workload(&api, 0);
/// let k8s = cloud.cluster();
/// k8s.scale(&api, 3).await?;
/// let status = k8s.wait_ready(&api, Duration::from_secs(600)).await?;
/// assert_eq!(status.available_replicas, 3);
/// # Ok(()) }
/// ```
#[async_trait]
pub trait ClusterDeployer: std::fmt::Debug + Send + Sync + 'static {
    /// The provider's name (`sim`, `kubernetes`).
    fn name(&self) -> &str;

    /// The operations this provider supports.
    fn capabilities(&self) -> Capabilities;

    /// Server-side applies `manifests` into `namespace` on `cluster`, creating the
    /// namespace if needed. Idempotent.
    ///
    /// # Errors
    /// `InvalidRequest` for a manifest the cluster refuses; `NotFound` (cluster).
    async fn apply(&self, cluster: &str, namespace: &str, manifests: &[Manifest]) -> Result<()>;

    /// Sets the replica count. Idempotent.
    ///
    /// # Errors
    /// `NotFound`.
    async fn scale(&self, workload: &WorkloadRef, replicas: u32) -> Result<()>;

    /// Restarts every pod of the workload through a new rollout; returns the new revision.
    ///
    /// # Errors
    /// `NotFound`.
    async fn rollout_restart(&self, workload: &WorkloadRef) -> Result<u64>;

    /// Rolls back to `revision`, or the previous one when `None`; returns the new revision.
    ///
    /// # Errors
    /// `NotFound` (workload or revision).
    async fn rollout_undo(&self, workload: &WorkloadRef, revision: Option<u64>) -> Result<u64>;

    /// Sets the image of `container`.
    ///
    /// # Errors
    /// `NotFound`.
    async fn set_image(&self, workload: &WorkloadRef, container: &str, image: &str) -> Result<()>;

    /// Sets environment variables on every container of the pod template.
    ///
    /// # Errors
    /// `NotFound`.
    async fn set_env(&self, workload: &WorkloadRef, env: &BTreeMap<String, String>) -> Result<()>;

    /// Creates or merges keys into a Secret. Values never appear in errors or logs.
    ///
    /// # Errors
    /// `NotFound` (cluster or namespace).
    async fn patch_secret(
        &self,
        cluster: &str,
        namespace: &str,
        name: &str,
        data: &BTreeMap<String, Secret>,
    ) -> Result<()>;

    /// Reads a Secret key back, to check whether a patch already happened.
    ///
    /// # Errors
    /// `NotFound` (secret or key).
    async fn read_secret(
        &self,
        cluster: &str,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> Result<Secret>;

    /// The workload's rollout status.
    ///
    /// # Errors
    /// `NotFound`.
    async fn rollout_status(&self, workload: &WorkloadRef) -> Result<RolloutStatus>;

    /// Cuts the workload off from traffic (a deny-all network policy, or its Service
    /// selector pointed away). Idempotent.
    ///
    /// # Errors
    /// `NotFound`.
    async fn isolate(&self, workload: &WorkloadRef) -> Result<()>;

    /// Deletes one pod (its controller replaces it).
    ///
    /// # Errors
    /// `NotFound`.
    async fn delete_pod(&self, cluster: &str, namespace: &str, pod: &str) -> Result<()>;

    /// Exports the objects of `kinds` in `namespace` (all kinds when empty) as manifests.
    ///
    /// # Errors
    /// `NotFound`.
    async fn export(
        &self,
        cluster: &str,
        namespace: &str,
        kinds: &[String],
    ) -> Result<Vec<Manifest>>;

    /// The nodes of `cluster` whose label `label` (usually [`NODE_GROUP_LABEL`]) is
    /// `node_group`, sorted by name, with the pods bound to each.
    ///
    /// # Errors
    /// `NotFound` (cluster); `NotSupported` by default.
    async fn list_nodes(
        &self,
        cluster: &str,
        label: &str,
        node_group: &str,
    ) -> Result<Vec<NodeInfo>> {
        let _ = (cluster, label, node_group);
        Err(Error::not_supported(self.name(), "list_nodes"))
    }

    /// Cordons a node (`spec.unschedulable: true`): nothing new is scheduled on it.
    /// Idempotent.
    ///
    /// # Errors
    /// `NotFound` (cluster or node); `NotSupported` by default.
    async fn cordon_node(&self, cluster: &str, node: &str) -> Result<()> {
        let _ = (cluster, node);
        Err(Error::not_supported(self.name(), "cordon_node"))
    }

    /// Drains a node: evicts every pod bound to it (through the Eviction API on
    /// Kubernetes, so disruption budgets hold) except those of DaemonSets; returns the
    /// evicted pods as `namespace/name`. A node already drained evicts nothing. Evictions
    /// are requested, not waited for: the pods' controllers replace them elsewhere.
    ///
    /// # Errors
    /// `NotFound` (cluster or node); `Throttled` (retryable) when a disruption budget
    /// refuses an eviction now; `NotSupported` by default.
    async fn drain_node(&self, cluster: &str, node: &str) -> Result<Vec<String>> {
        let _ = (cluster, node);
        Err(Error::not_supported(self.name(), "drain_node"))
    }

    /// Polls [`rollout_status`](Self::rollout_status) until the rollout is complete. Temporary
    /// errors of a poll do not end the wait; the deadline does.
    ///
    /// # Errors
    /// `Timeout` after `deadline`.
    async fn wait_ready(
        &self,
        workload: &WorkloadRef,
        deadline: Duration,
    ) -> Result<RolloutStatus> {
        let start = tokio::time::Instant::now();
        let mut delay = Duration::from_secs(2);
        let mut last: Option<RolloutStatus> = None;
        loop {
            match self.rollout_status(workload).await {
                Ok(status) if status.is_complete() => return Ok(status),
                Ok(status) => last = Some(status),
                // A throttled or failed poll does not end the wait: the deadline does.
                Err(e) if crate::reads::ends_wait(&e) => return Err(e),
                Err(e) => tracing::debug!(%workload, error = %e, "poll failed, polling on"),
            }
            let elapsed = start.elapsed();
            if elapsed >= deadline {
                let progress = last.as_ref().map_or_else(
                    || "no status read".to_string(),
                    |s| format!("{}/{} available", s.available_replicas, s.replicas),
                );
                return Err(Error::Timeout {
                    operation: format!("waiting for {workload} ({progress})"),
                    after: deadline,
                });
            }
            tokio::time::sleep(delay.min(deadline - elapsed)).await;
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    }
}

/// A `ClusterDeployer` trait object.
pub type DynClusterDeployer = dyn ClusterDeployer;

#[async_trait]
impl<T: ClusterDeployer + ?Sized> ClusterDeployer for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    async fn apply(&self, cluster: &str, namespace: &str, manifests: &[Manifest]) -> Result<()> {
        (**self).apply(cluster, namespace, manifests).await
    }
    async fn scale(&self, workload: &WorkloadRef, replicas: u32) -> Result<()> {
        (**self).scale(workload, replicas).await
    }
    async fn rollout_restart(&self, workload: &WorkloadRef) -> Result<u64> {
        (**self).rollout_restart(workload).await
    }
    async fn rollout_undo(&self, workload: &WorkloadRef, revision: Option<u64>) -> Result<u64> {
        (**self).rollout_undo(workload, revision).await
    }
    async fn set_image(&self, workload: &WorkloadRef, container: &str, image: &str) -> Result<()> {
        (**self).set_image(workload, container, image).await
    }
    async fn set_env(&self, workload: &WorkloadRef, env: &BTreeMap<String, String>) -> Result<()> {
        (**self).set_env(workload, env).await
    }
    async fn patch_secret(
        &self,
        cluster: &str,
        namespace: &str,
        name: &str,
        data: &BTreeMap<String, Secret>,
    ) -> Result<()> {
        (**self).patch_secret(cluster, namespace, name, data).await
    }
    async fn read_secret(
        &self,
        cluster: &str,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> Result<Secret> {
        (**self).read_secret(cluster, namespace, name, key).await
    }
    async fn rollout_status(&self, workload: &WorkloadRef) -> Result<RolloutStatus> {
        (**self).rollout_status(workload).await
    }
    async fn isolate(&self, workload: &WorkloadRef) -> Result<()> {
        (**self).isolate(workload).await
    }
    async fn delete_pod(&self, cluster: &str, namespace: &str, pod: &str) -> Result<()> {
        (**self).delete_pod(cluster, namespace, pod).await
    }
    async fn export(
        &self,
        cluster: &str,
        namespace: &str,
        kinds: &[String],
    ) -> Result<Vec<Manifest>> {
        (**self).export(cluster, namespace, kinds).await
    }
    async fn wait_ready(
        &self,
        workload: &WorkloadRef,
        deadline: Duration,
    ) -> Result<RolloutStatus> {
        (**self).wait_ready(workload, deadline).await
    }
    async fn list_nodes(
        &self,
        cluster: &str,
        label: &str,
        node_group: &str,
    ) -> Result<Vec<NodeInfo>> {
        (**self).list_nodes(cluster, label, node_group).await
    }
    async fn cordon_node(&self, cluster: &str, node: &str) -> Result<()> {
        (**self).cordon_node(cluster, node).await
    }
    async fn drain_node(&self, cluster: &str, node: &str) -> Result<Vec<String>> {
        (**self).drain_node(cluster, node).await
    }
}
