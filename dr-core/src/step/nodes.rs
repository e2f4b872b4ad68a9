//! Node capacity steps: scale a node group, wait until it is ready, drain the nodes of a
//! failed group that no longer serve.

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use super::{to_json, Call, Observed, Role, StepAction, StepContext};
use crate::provider::{NodeGroupRef, NodeGroupStatus, NodeScaling, Operation as O};
use crate::{Error, Result};

fn role(cluster: &str) -> Role {
    Role::Nodes {
        cluster: cluster.to_string(),
    }
}

/// Set a node group's scaling bounds (EKS `UpdateNodegroupConfig`). Reads the bounds first
/// and remembers them, so a compensation scales back to them; bounds already in place are
/// left alone.
///
/// # Examples
///
/// ```
/// use dr_core::provider::{NodeGroupRef, NodeScaling};
/// use dr_core::step::{nodes::ScaleNodeGroup, Action};
///
/// let step = Action::new(ScaleNodeGroup {
///     group: NodeGroupRef::new("shop-dr", "general"),
///     scaling: NodeScaling { min: 2, desired: 3, max: 6 },
/// });
/// assert_eq!(step.kind(), "scale_node_group");
/// assert!(step.is_idempotent());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScaleNodeGroup {
    /// The node group.
    pub group: NodeGroupRef,
    /// The bounds to set.
    pub scaling: NodeScaling,
}

#[async_trait]
impl StepAction for ScaleNodeGroup {
    fn kind(&self) -> &str {
        "scale_node_group"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        let r = role(&self.group.cluster);
        vec![
            // The bounds from before, remembered for the compensation.
            Call::provider(r.clone(), O::DescribeNodeGroup, self.group.to_string()),
            Call::provider(
                r,
                O::ScaleNodeGroup,
                format!("{} to {}", self.group, self.scaling),
            ),
        ]
    }
    fn idempotent(&self) -> bool {
        true
    }
    /// The update it starts (planned as a call, then a wait that carries this estimate).
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(300)
    }
    async fn prepare(&self, ctx: &mut StepContext<'_>) -> Observed {
        let Ok(nodes) = ctx.nodes(&self.group.cluster) else {
            return Observed::NotDone;
        };
        match ctx.read(|| nodes.describe_node_group(&self.group)).await {
            Ok(status) => {
                ctx.memory.set("scaling_before", status.scaling);
                if status.scaling == self.scaling {
                    Observed::Done
                } else {
                    Observed::NotDone
                }
            }
            // Scaled all the same; only the compensation needs the bounds from before.
            Err(_) => Observed::NotDone,
        }
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        ctx.nodes(&self.group.cluster)?
            .scale_node_group(&self.group, self.scaling)
            .await
    }
    fn compensable(&self) -> bool {
        true
    }
    async fn compensate(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let Some(before) = ctx.memory.get::<NodeScaling>("scaling_before") else {
            return Err(Error::InvalidState {
                provider: "executor".into(),
                resource: format!("node group {}", self.group),
                state: "without the bounds from before (they could not be read)".into(),
                operation: "scale back".into(),
            });
        };
        ctx.nodes(&self.group.cluster)?
            .scale_node_group(&self.group, before)
            .await
    }
}

/// Wait until a node group is `Active` with its desired nodes up.
///
/// # Examples
///
/// ```
/// use dr_core::provider::NodeGroupRef;
/// use dr_core::step::{nodes::WaitNodeGroup, Action};
///
/// let step = Action::new(WaitNodeGroup { group: NodeGroupRef::new("shop-dr", "general") });
/// assert_eq!(step.kind(), "wait_node_group");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaitNodeGroup {
    /// The node group.
    pub group: NodeGroupRef,
}

fn progress(s: &NodeGroupStatus) -> String {
    format!(
        "{:?}, {}/{} nodes ready",
        s.state, s.ready_nodes, s.scaling.desired
    )
}

#[async_trait]
impl StepAction for WaitNodeGroup {
    fn kind(&self) -> &str {
        "wait_node_group"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        vec![Call::provider(
            role(&self.group.cluster),
            O::DescribeNodeGroup,
            format!("{} (until ready)", self.group),
        )]
    }
    fn idempotent(&self) -> bool {
        true
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(300)
    }
    fn milestone(&self) -> Option<&'static str> {
        Some("nodes ready")
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let nodes = ctx.nodes(&self.group.cluster)?;
        let deadline = ctx.remaining();
        let mut wait = super::Backoff::new(deadline, Duration::from_secs(30));
        let mut last: Option<NodeGroupStatus> = None;
        loop {
            match nodes.describe_node_group(&self.group).await {
                Ok(status) if status.is_ready() => return Ok(()),
                Ok(status) => last = Some(status),
                Err(e) if crate::reads::ends_wait(&e) => return Err(e),
                Err(e) => {
                    tracing::debug!(group = %self.group, error = %e, "poll failed, polling on")
                }
            }
            if wait.expired() {
                let seen = last
                    .as_ref()
                    .map_or_else(|| "no status read".to_string(), progress);
                return Err(Error::Timeout {
                    operation: format!("waiting for node group {} ({seen})", self.group),
                    after: deadline,
                });
            }
            wait.sleep().await;
        }
    }
}

/// Cordon and drain the nodes of a node group that are NotReady (no longer serving); a
/// node still Ready is left alone, with its pods. Its output lists the nodes drained, the
/// pods evicted and the nodes left serving.
///
/// # Examples
///
/// ```
/// use dr_core::step::{nodes::DrainNodes, Action};
///
/// let step = Action::new(DrainNodes {
///     cluster: "shop-east".into(),
///     node_group: "general".into(),
///     label: "eks.amazonaws.com/nodegroup".into(),
/// });
/// assert_eq!(step.kind(), "drain_nodes");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DrainNodes {
    /// The cluster.
    pub cluster: String,
    /// The failed node group.
    pub node_group: String,
    /// The node label whose value is the group's name.
    pub label: String,
}

fn cluster_role(cluster: &str) -> Role {
    Role::Cluster {
        cluster: cluster.to_string(),
    }
}

#[async_trait]
impl StepAction for DrainNodes {
    fn kind(&self) -> &str {
        "drain_nodes"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        let r = cluster_role(&self.cluster);
        let group = format!("{}/{}", self.cluster, self.node_group);
        vec![
            Call::provider(
                r.clone(),
                O::ListNodes,
                format!("nodes of {group} ({}={})", self.label, self.node_group),
            ),
            Call::provider(
                r.clone(),
                O::CordonNode,
                format!("each NotReady node of {group}"),
            ),
            Call::provider(r, O::DrainNode, format!("each NotReady node of {group}")),
        ]
    }
    fn idempotent(&self) -> bool {
        // Cordoning twice changes nothing, and a drained node has nothing left to evict.
        true
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(60)
    }
    fn milestone(&self) -> Option<&'static str> {
        Some("nodes drained")
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let cluster = ctx.cluster(&self.cluster)?;
        let nodes = ctx
            .read(|| cluster.list_nodes(&self.cluster, &self.label, &self.node_group))
            .await?;
        let (down, up): (Vec<_>, Vec<_>) = nodes.iter().partition(|n| !n.ready);
        let serving: Vec<String> = up.iter().map(|n| n.name.clone()).collect();
        // Every failed node cordoned before any is drained: no evicted pod lands on one.
        for node in down.iter().filter(|n| !n.unschedulable) {
            cluster.cordon_node(&self.cluster, &node.name).await?;
        }
        let mut drained = Vec::new();
        let mut evicted = Vec::new();
        for node in &down {
            evicted.extend(cluster.drain_node(&self.cluster, &node.name).await?);
            drained.push(node.name.clone());
        }
        tracing::info!(
            cluster = %self.cluster,
            node_group = %self.node_group,
            drained = drained.len(),
            evicted = evicted.len(),
            serving = serving.len(),
            "drained the NotReady nodes"
        );
        ctx.output = Some(serde_json::json!({
            "drained": drained,
            "evicted": evicted,
            "left_serving": serving,
        }));
        Ok(())
    }
}
