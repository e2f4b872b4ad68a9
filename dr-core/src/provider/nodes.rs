//! `NodeCapacity`: scale a cluster's node groups (the machines workloads run on).

use std::sync::Arc;

use async_trait::async_trait;

use super::Capabilities;
use crate::Result;

/// A node group of a cluster.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct NodeGroupRef {
    /// Cluster name, as the plan names it (providers are routed by it; a provider whose
    /// cloud knows the cluster by another name maps it).
    pub cluster: String,
    /// Node group name.
    pub name: String,
}

impl NodeGroupRef {
    /// Node group `name` of `cluster`.
    pub fn new(cluster: impl Into<String>, name: impl Into<String>) -> Self {
        NodeGroupRef {
            cluster: cluster.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for NodeGroupRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.cluster, self.name)
    }
}

/// A node group's scaling bounds (`aws eks update-nodegroup-config --scaling-config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct NodeScaling {
    /// Fewest nodes.
    pub min: u32,
    /// Nodes wanted now.
    pub desired: u32,
    /// Most nodes.
    pub max: u32,
}

impl std::fmt::Display for NodeScaling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "min {} / desired {} / max {}",
            self.min, self.desired, self.max
        )
    }
}

/// Lifecycle state of a node group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeGroupState {
    /// Being created.
    Creating,
    /// Serving at its configuration.
    Active,
    /// An update (a scaling change) is under way.
    Updating,
    /// Being deleted.
    Deleting,
    /// Failed to create.
    CreateFailed,
    /// Running but with health issues (nodes lost, capacity not reached).
    Degraded,
}

/// A node group's configuration and state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeGroupStatus {
    /// The node group.
    pub group: NodeGroupRef,
    /// Its scaling bounds.
    pub scaling: NodeScaling,
    /// Lifecycle state.
    pub state: NodeGroupState,
    /// Nodes of the group that are up (for EKS, the instances of its Auto Scaling group
    /// when the API reports them; otherwise `desired` once `Active`).
    pub ready_nodes: u32,
}

impl NodeGroupStatus {
    /// Whether the group is `Active` with at least `desired` nodes up.
    pub fn is_ready(&self) -> bool {
        self.state == NodeGroupState::Active && self.ready_nodes >= self.scaling.desired
    }
}

/// Node capacity of clusters (EKS managed node groups, the simulated cloud).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use dr_core::provider::{NodeCapacity, NodeGroupRef, NodeScaling};
///
/// async fn scale_up(nodes: &dyn NodeCapacity) -> dr_core::Result<()> {
///     let group = NodeGroupRef::new("shop-dr", "general");
///     nodes.scale_node_group(&group, NodeScaling { min: 2, desired: 3, max: 5 }).await?;
///     let status = nodes.describe_node_group(&group).await?;
///     println!("{group}: {:?}", status.state);
///     Ok(())
/// }
/// # Ok(()) }
/// ```
#[async_trait]
pub trait NodeCapacity: std::fmt::Debug + Send + Sync + 'static {
    /// The provider's name (`sim`, `eks`).
    fn name(&self) -> &str;

    /// The operations this provider supports.
    fn capabilities(&self) -> Capabilities;

    /// The node group's scaling bounds and state.
    ///
    /// # Errors
    /// `NotFound` (cluster or node group).
    async fn describe_node_group(&self, group: &NodeGroupRef) -> Result<NodeGroupStatus>;

    /// Sets the node group's scaling bounds. Idempotent: bounds already set are left as
    /// they are, without starting an update.
    ///
    /// # Errors
    /// `NotFound`; `InvalidRequest` for `min > desired` or `desired > max`;
    /// `InvalidState` (retryable) while another update of the group is under way.
    async fn scale_node_group(&self, group: &NodeGroupRef, scaling: NodeScaling) -> Result<()>;
}

/// A `NodeCapacity` trait object.
pub type DynNodeCapacity = dyn NodeCapacity;

#[async_trait]
impl<T: NodeCapacity + ?Sized> NodeCapacity for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    async fn describe_node_group(&self, group: &NodeGroupRef) -> Result<NodeGroupStatus> {
        (**self).describe_node_group(group).await
    }
    async fn scale_node_group(&self, group: &NodeGroupRef, scaling: NodeScaling) -> Result<()> {
        (**self).scale_node_group(group, scaling).await
    }
}
