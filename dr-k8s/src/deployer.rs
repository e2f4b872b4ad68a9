//! [`KubeDeployer`]: the [`ClusterDeployer`] over kube-rs clients, one per cluster name.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use dr_core::provider::{
    Capabilities, ClusterDeployer, Manifest, NodeInfo, Operation, RolloutStatus, WorkloadRef,
};
use dr_core::{Error, Result, Secret};
use k8s_openapi::api::core::v1::{Pod, Secret as KubeSecret};
use k8s_openapi::ByteString;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::Client;

use crate::config::{Cluster, KubeDeployerBuilder};
use crate::error::{is_already_exists, is_not_found, map, PROVIDER};
use crate::lease::KubeLease;

/// A [`ClusterDeployer`] on Kubernetes clusters, each addressed by the name plans use
/// ([`WorkloadRef::cluster`]).
///
/// Every write is idempotent: manifests are server-side applied (field manager
/// `dr-orchestrator`, forced), scaling and env changes are patches, isolation applies one
/// deny-all NetworkPolicy named `dr-isolate-{workload}`. Nodes are listed by a label (a
/// node group's `eks.amazonaws.com/nodegroup`), cordoned by patching `spec.unschedulable`
/// and drained through the Eviction API, DaemonSet and mirror pods left in place.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use std::time::Duration;
/// use dr_core::provider::{ClusterDeployer, WorkloadRef};
/// use dr_k8s::KubeDeployer;
///
/// let k8s = KubeDeployer::builder()
///     .cluster_from_context("primary", "prod-east")
///     .cluster_from_context("dr", "prod-west")
///     .build()
///     .await?;
/// let api = WorkloadRef::deployment("dr", "shop", "api");
/// k8s.scale(&api, 3).await?;
/// k8s.wait_ready(&api, Duration::from_secs(600)).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct KubeDeployer {
    clusters: BTreeMap<String, Arc<Cluster>>,
    field_manager: String,
}

impl KubeDeployer {
    /// A builder; add clusters with [`cluster`](KubeDeployerBuilder::cluster),
    /// [`cluster_from_context`](KubeDeployerBuilder::cluster_from_context) or
    /// [`in_cluster`](KubeDeployerBuilder::in_cluster).
    pub fn builder() -> KubeDeployerBuilder {
        KubeDeployerBuilder::default()
    }

    pub(crate) fn new(clusters: BTreeMap<String, Arc<Cluster>>, field_manager: String) -> Self {
        KubeDeployer {
            clusters,
            field_manager,
        }
    }

    /// The names of the configured clusters, sorted.
    pub fn cluster_names(&self) -> impl Iterator<Item = &str> {
        self.clusters.keys().map(String::as_str)
    }

    /// The kube client of `cluster`.
    ///
    /// # Errors
    /// `NotFound` naming the cluster when it is not configured.
    pub fn client(&self, cluster: &str) -> Result<Client> {
        Ok(self.cluster(cluster)?.client.clone())
    }

    /// A [`Lease`](crate::Lease) on the coordination.k8s.io Lease `namespace/name` of
    /// `cluster`.
    ///
    /// # Errors
    /// `NotFound` naming the cluster when it is not configured.
    pub fn lease(&self, cluster: &str, namespace: &str, name: &str) -> Result<KubeLease> {
        Ok(KubeLease::new(self.client(cluster)?, namespace, name))
    }

    pub(crate) fn cluster(&self, name: &str) -> Result<&Cluster> {
        self.clusters
            .get(name)
            .map(|c| &**c)
            .ok_or_else(|| Error::not_found(PROVIDER, format!("cluster {name}")))
    }
}

#[async_trait]
impl ClusterDeployer for KubeDeployer {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn capabilities(&self) -> Capabilities {
        use Operation::*;
        Capabilities::of([
            Apply,
            Scale,
            RolloutRestart,
            RolloutUndo,
            SetImage,
            SetEnv,
            PatchSecret,
            ReadSecret,
            RolloutStatus,
            IsolateWorkload,
            DeletePod,
            Export,
            ListNodes,
            CordonNode,
            DrainNode,
        ])
    }

    async fn apply(&self, cluster: &str, namespace: &str, manifests: &[Manifest]) -> Result<()> {
        let cl = self.cluster(cluster)?;
        crate::apply::apply(cl, namespace, manifests, &self.field_manager).await
    }

    async fn scale(&self, workload: &WorkloadRef, replicas: u32) -> Result<()> {
        crate::rollout::scale(self.cluster(&workload.cluster)?, workload, replicas).await
    }

    async fn rollout_restart(&self, workload: &WorkloadRef) -> Result<u64> {
        crate::rollout::restart(self.cluster(&workload.cluster)?, workload).await
    }

    async fn rollout_undo(&self, workload: &WorkloadRef, revision: Option<u64>) -> Result<u64> {
        crate::rollout::undo(self.cluster(&workload.cluster)?, workload, revision).await
    }

    async fn set_image(&self, workload: &WorkloadRef, container: &str, image: &str) -> Result<()> {
        crate::rollout::set_image(self.cluster(&workload.cluster)?, workload, container, image)
            .await
    }

    async fn set_env(&self, workload: &WorkloadRef, env: &BTreeMap<String, String>) -> Result<()> {
        crate::rollout::set_env(self.cluster(&workload.cluster)?, workload, env).await
    }

    async fn patch_secret(
        &self,
        cluster: &str,
        namespace: &str,
        name: &str,
        data: &BTreeMap<String, Secret>,
    ) -> Result<()> {
        let cl = self.cluster(cluster)?;
        let api: Api<KubeSecret> = Api::namespaced(cl.client.clone(), namespace);
        let resource = format!("secret {namespace}/{name} on {cluster}");
        let encoded: BTreeMap<String, ByteString> = data
            .iter()
            .map(|(k, v)| (k.clone(), ByteString(v.expose().as_bytes().to_vec())))
            .collect();
        let patch = serde_json::json!({ "data": &encoded });
        // Merge patch first (the usual case: the secret exists); create when it does not (and
        // its namespace when that is missing too); if someone created it in between, merge
        // again.
        match api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(map(e, "patch_secret", &resource)),
        }
        let secret = KubeSecret {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(namespace.to_string()),
                ..Default::default()
            },
            type_: Some("Opaque".to_string()),
            data: Some(encoded),
            ..Default::default()
        };
        let created = match api.create(&PostParams::default(), &secret).await {
            // The namespace is missing too (a rebuild sets secrets before applying the
            // workloads): create it, as `apply` does, and try again.
            Err(e) if is_not_found(&e) => {
                crate::apply::ensure_namespace(cl, namespace).await?;
                api.create(&PostParams::default(), &secret).await
            }
            other => other,
        };
        match created {
            Ok(_) => Ok(()),
            Err(e) if is_already_exists(&e) => api
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map(|_| ())
                .map_err(|e| map(e, "patch_secret", &resource)),
            Err(e) => Err(map(e, "patch_secret", &resource)),
        }
    }

    async fn read_secret(
        &self,
        cluster: &str,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> Result<Secret> {
        let cl = self.cluster(cluster)?;
        let api: Api<KubeSecret> = Api::namespaced(cl.client.clone(), namespace);
        let resource = format!("secret {namespace}/{name} on {cluster}");
        let secret = api
            .get(name)
            .await
            .map_err(|e| map(e, "read_secret", &resource))?;
        let bytes = secret
            .data
            .and_then(|mut d| d.remove(key))
            .map(|b| b.0)
            .or_else(|| {
                secret
                    .string_data
                    .and_then(|mut d| d.remove(key))
                    .map(String::into_bytes)
            })
            .ok_or_else(|| Error::not_found(PROVIDER, format!("key {key} of {resource}")))?;
        String::from_utf8(bytes).map(Secret::new).map_err(|_| {
            crate::error::invalid_response(
                "read_secret",
                format!("key {key} of {resource} is not UTF-8"),
            )
        })
    }

    async fn rollout_status(&self, workload: &WorkloadRef) -> Result<RolloutStatus> {
        crate::rollout::status(self.cluster(&workload.cluster)?, workload).await
    }

    async fn isolate(&self, workload: &WorkloadRef) -> Result<()> {
        crate::rollout::isolate(
            self.cluster(&workload.cluster)?,
            workload,
            &self.field_manager,
        )
        .await
    }

    async fn delete_pod(&self, cluster: &str, namespace: &str, pod: &str) -> Result<()> {
        let cl = self.cluster(cluster)?;
        let api: Api<Pod> = Api::namespaced(cl.client.clone(), namespace);
        api.delete(pod, &DeleteParams::default())
            .await
            .map(|_| ())
            .map_err(|e| {
                map(
                    e,
                    "delete_pod",
                    &format!("pod {namespace}/{pod} on {cluster}"),
                )
            })
    }

    async fn export(
        &self,
        cluster: &str,
        namespace: &str,
        kinds: &[String],
    ) -> Result<Vec<Manifest>> {
        crate::export::export(self.cluster(cluster)?, namespace, kinds).await
    }

    async fn list_nodes(
        &self,
        cluster: &str,
        label: &str,
        node_group: &str,
    ) -> Result<Vec<NodeInfo>> {
        crate::nodes::list(self.cluster(cluster)?, label, node_group).await
    }

    async fn cordon_node(&self, cluster: &str, node: &str) -> Result<()> {
        crate::nodes::cordon(self.cluster(cluster)?, node).await
    }

    async fn drain_node(&self, cluster: &str, node: &str) -> Result<Vec<String>> {
        crate::nodes::drain(self.cluster(cluster)?, node).await
    }
}
