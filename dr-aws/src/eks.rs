//! [`EksNodes`]: [`NodeCapacity`] over Amazon EKS managed node groups.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_eks::types::{Nodegroup, NodegroupScalingConfig, NodegroupStatus};
use aws_sdk_eks::Client;
use dr_core::provider::{
    Capabilities, NodeCapacity, NodeGroupRef, NodeGroupState, NodeGroupStatus, NodeScaling,
    Operation,
};
use dr_core::{Error, Result};

use crate::error::{map_sdk, missing, service_code, Ctx};

const NAME: &str = "eks";

/// [`NodeCapacity`] over EKS managed node groups.
///
/// A [`NodeGroupRef`]'s `cluster` is the plan's cluster name; EKS may know the cluster by
/// another name, set with [`with_cluster_name`](Self::with_cluster_name) (the plan's name is
/// used as it is otherwise).
///
/// * [`describe_node_group`](NodeCapacity::describe_node_group) is one `DescribeNodegroup`.
///   Statuses map as `CREATING` → `Creating`, `ACTIVE` → `Active`, `UPDATING` → `Updating`,
///   `DELETING` → `Deleting`, `CREATE_FAILED` → `CreateFailed`, `DEGRADED` and
///   `DELETE_FAILED` → `Degraded`. EKS reports no node count (only the Auto Scaling group's
///   name, whose instances only the Auto Scaling API lists): `ready_nodes` is the desired
///   size when the group is `ACTIVE` with no health issue, and 0 otherwise — an unknown
///   count is never reported as ready.
/// * [`scale_node_group`](NodeCapacity::scale_node_group) checks `min ≤ desired ≤ max`,
///   reads the group, and sends `UpdateNodegroupConfig` with the new `scalingConfig` only
///   when the bounds differ. While another update of the group is under way EKS answers
///   `ResourceInUseException`: that becomes `Error::Refused` (temporary, certainly not
///   applied) whose source is an `InvalidState` naming the group, so the executor retries.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use dr_core::provider::{NodeCapacity, NodeGroupRef, NodeScaling};
///
/// let eks = dr_aws::AwsBuilder::from_env()
///     .with_region("us-west-2")
///     .load()
///     .await?
///     .build_eks()
///     .with_cluster_name("dr-west", "shop-dr");
/// let group = NodeGroupRef::new("dr-west", "general");
/// eks.scale_node_group(&group, NodeScaling { min: 2, desired: 3, max: 6 }).await?;
/// println!("{:?}", eks.describe_node_group(&group).await?.state);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct EksNodes {
    client: Client,
    cluster_names: BTreeMap<String, String>,
    timeout: Option<Duration>,
}

impl EksNodes {
    /// A provider over `client` (its region is where the clusters are).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
    /// let aws = dr_aws::AwsConfig::from_env().await?;
    /// let eks = dr_aws::EksNodes::new(aws_sdk_eks::Client::new(aws.sdk_config()));
    /// # let _ = eks; Ok(()) }
    /// ```
    pub fn new(client: Client) -> Self {
        EksNodes {
            client,
            cluster_names: BTreeMap::new(),
            timeout: None,
        }
    }

    /// The plan's cluster `plan_cluster` is EKS cluster `eks_cluster`.
    pub fn with_cluster_name(
        mut self,
        plan_cluster: impl Into<String>,
        eks_cluster: impl Into<String>,
    ) -> Self {
        self.cluster_names
            .insert(plan_cluster.into(), eks_cluster.into());
        self
    }

    /// Records the configured operation timeout, reported in `Timeout` errors.
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// The SDK client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The EKS name of the plan's cluster `plan_cluster`.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
    /// let eks = dr_aws::AwsConfig::from_env().await?.build_eks().with_cluster_name("dr-west", "shop-dr");
    /// assert_eq!(eks.cluster_name("dr-west"), "shop-dr");
    /// assert_eq!(eks.cluster_name("prod-east"), "prod-east");
    /// # Ok(()) }
    /// ```
    pub fn cluster_name<'a>(&'a self, plan_cluster: &'a str) -> &'a str {
        self.cluster_names
            .get(plan_cluster)
            .map_or(plan_cluster, String::as_str)
    }

    fn ctx<'a>(&self, operation: &'a str, resource: &'a str) -> Ctx<'a> {
        Ctx {
            provider: NAME,
            operation,
            resource,
            timeout: self.timeout,
        }
    }

    fn resource(&self, group: &NodeGroupRef) -> String {
        let eks = self.cluster_name(&group.cluster);
        if eks == group.cluster {
            format!("node group {group}")
        } else {
            format!("node group {group} (EKS cluster {eks})")
        }
    }

    async fn nodegroup(&self, group: &NodeGroupRef, op: &str) -> Result<Nodegroup> {
        let res = self.resource(group);
        let out = self
            .client
            .describe_nodegroup()
            .cluster_name(self.cluster_name(&group.cluster))
            .nodegroup_name(&group.name)
            .send()
            .await
            .map_err(|e| map_sdk(self.ctx(op, &res), e))?;
        out.nodegroup.ok_or_else(|| Error::not_found(NAME, res))
    }
}

/// Maps an EKS node group status to a [`NodeGroupState`] (see [`EksNodes`]).
pub fn node_group_state(status: &NodegroupStatus) -> NodeGroupState {
    match status {
        NodegroupStatus::Creating => NodeGroupState::Creating,
        NodegroupStatus::Active => NodeGroupState::Active,
        NodegroupStatus::Updating => NodeGroupState::Updating,
        NodegroupStatus::Deleting => NodeGroupState::Deleting,
        NodegroupStatus::CreateFailed => NodeGroupState::CreateFailed,
        _ => NodeGroupState::Degraded,
    }
}

fn count(n: Option<i32>) -> u32 {
    n.and_then(|n| u32::try_from(n).ok()).unwrap_or(0)
}

fn to_status(group: &NodeGroupRef, ng: &Nodegroup, op: &str) -> Result<NodeGroupStatus> {
    let sc = ng
        .scaling_config()
        .ok_or_else(|| missing(NAME, op, "scalingConfig"))?;
    let scaling = NodeScaling {
        min: count(sc.min_size()),
        desired: count(sc.desired_size()),
        max: count(sc.max_size()),
    };
    let state = ng
        .status()
        .map(node_group_state)
        .ok_or_else(|| missing(NAME, op, "status"))?;
    let healthy = ng.health().is_none_or(|h| h.issues().is_empty());
    Ok(NodeGroupStatus {
        group: group.clone(),
        scaling,
        state,
        ready_nodes: if state == NodeGroupState::Active && healthy {
            scaling.desired
        } else {
            0
        },
    })
}

fn to_i32(n: u32, what: &str) -> Result<i32> {
    i32::try_from(n).map_err(|_| Error::InvalidRequest {
        provider: NAME.into(),
        operation: "scale_node_group".into(),
        message: format!("{what} {n} is out of range"),
    })
}

#[async_trait]
impl NodeCapacity for EksNodes {
    fn name(&self) -> &str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::of([Operation::DescribeNodeGroup, Operation::ScaleNodeGroup])
    }

    async fn describe_node_group(&self, group: &NodeGroupRef) -> Result<NodeGroupStatus> {
        let ng = self.nodegroup(group, "describe_node_group").await?;
        to_status(group, &ng, "describe_node_group")
    }

    async fn scale_node_group(&self, group: &NodeGroupRef, scaling: NodeScaling) -> Result<()> {
        let res = self.resource(group);
        if scaling.min > scaling.desired || scaling.desired > scaling.max {
            return Err(Error::InvalidRequest {
                provider: NAME.into(),
                operation: "scale_node_group".into(),
                message: format!("{res}: {scaling} (min ≤ desired ≤ max is required)"),
            });
        }
        let current = self.nodegroup(group, "scale_node_group").await?;
        if to_status(group, &current, "scale_node_group")?.scaling == scaling {
            tracing::debug!(%group, %scaling, "node group already at these bounds");
            return Ok(());
        }
        let config = NodegroupScalingConfig::builder()
            .min_size(to_i32(scaling.min, "min")?)
            .desired_size(to_i32(scaling.desired, "desired")?)
            .max_size(to_i32(scaling.max, "max")?)
            .build();
        self.client
            .update_nodegroup_config()
            .cluster_name(self.cluster_name(&group.cluster))
            .nodegroup_name(&group.name)
            .scaling_config(config)
            .send()
            .await
            .map_err(|e| {
                if service_code(&e).is_some_and(|(code, _)| code == Some("ResourceInUseException"))
                {
                    Error::Refused {
                        provider: NAME.into(),
                        operation: format!("scale_node_group {res}"),
                        source: Some(Box::new(Error::InvalidState {
                            provider: NAME.into(),
                            resource: res.clone(),
                            state: "being updated".into(),
                            operation: "scale_node_group".into(),
                        })),
                    }
                } else {
                    map_sdk(self.ctx("scale_node_group", &res), e)
                }
            })?;
        tracing::info!(%group, %scaling, "node group scaling updated");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_and_failures_are_degraded() {
        use NodegroupStatus as S;
        for (status, expected) in [
            (S::Creating, NodeGroupState::Creating),
            (S::Active, NodeGroupState::Active),
            (S::Updating, NodeGroupState::Updating),
            (S::Deleting, NodeGroupState::Deleting),
            (S::CreateFailed, NodeGroupState::CreateFailed),
            (S::Degraded, NodeGroupState::Degraded),
            (S::DeleteFailed, NodeGroupState::Degraded),
        ] {
            assert_eq!(node_group_state(&status), expected, "{status:?}");
        }
    }
}
