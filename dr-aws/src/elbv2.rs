//! [`Elbv2Targets`]: [`LoadBalancer`] over Elastic Load Balancing v2 target groups.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{TargetDescription, TargetHealthStateEnum};
use aws_sdk_elasticloadbalancingv2::Client;
use dr_core::provider::{
    Capabilities, LbTarget, LoadBalancer, Operation, TargetHealth, TargetState,
};
use dr_core::{Error, Result};

use crate::error::{map_sdk, missing, Ctx};

const NAME: &str = "elbv2";

/// A target group as resolved once: its ARN and its port.
#[derive(Debug, Clone)]
struct Group {
    arn: String,
    port: Option<u16>,
}

/// [`LoadBalancer`] over ELBv2 (Application and Network Load Balancer) target groups.
///
/// A group is named by its ARN (`arn:aws:elasticloadbalancing:…:targetgroup/api-west/…`) or
/// by its name (`api-west`); either is resolved once with `DescribeTargetGroups`, which also
/// gives the group's port. A target's port is reported (and compared) as `None` when it is
/// the group's port, as [`LbTarget`] defines it.
///
/// * [`target_health`](LoadBalancer::target_health): `DescribeTargetHealth` of the group.
///   States map one to one; `unhealthy.draining` is `Draining`, `unavailable` is `Unknown`.
/// * [`register_targets`](LoadBalancer::register_targets): `RegisterTargets` (idempotent in
///   ELBv2 itself).
/// * [`deregister_targets`](LoadBalancer::deregister_targets): reads the group's targets
///   first and sends `DeregisterTargets` only for those still registered and not already
///   draining, so a repeated call changes nothing and is not an error.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use dr_core::provider::{LbTarget, LoadBalancer};
///
/// let lb = dr_aws::AwsBuilder::from_env().with_region("us-west-2").load().await?.build_elbv2();
/// lb.register_targets("api-west", &[LbTarget::parse("10.2.0.10:8080")?]).await?;
/// for t in lb.target_health("api-west").await? {
///     println!("{} {:?}", t.target, t.state);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Elbv2Targets {
    client: Client,
    groups: Arc<Mutex<HashMap<String, Group>>>,
    timeout: Option<Duration>,
}

impl Elbv2Targets {
    /// A provider over `client` (its region is where the target groups are).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
    /// let aws = dr_aws::AwsConfig::from_env().await?;
    /// let client = aws_sdk_elasticloadbalancingv2::Client::new(aws.sdk_config());
    /// let lb = dr_aws::Elbv2Targets::new(client);
    /// # let _ = lb; Ok(()) }
    /// ```
    pub fn new(client: Client) -> Self {
        Elbv2Targets {
            client,
            groups: Arc::default(),
            timeout: None,
        }
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

    fn ctx<'a>(&self, operation: &'a str, resource: &'a str) -> Ctx<'a> {
        Ctx {
            provider: NAME,
            operation,
            resource,
            timeout: self.timeout,
        }
    }

    /// The group `group` names (an ARN or a name), resolved on first use.
    async fn group(&self, group: &str, op: &str) -> Result<Group> {
        let cached = self
            .groups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(group)
            .cloned();
        if let Some(g) = cached {
            return Ok(g);
        }
        let res = resource(group);
        let req = self.client.describe_target_groups();
        let req = if group.starts_with("arn:") {
            req.target_group_arns(group)
        } else {
            req.names(group)
        };
        let out = req
            .send()
            .await
            .map_err(|e| map_sdk(self.ctx(op, &res), e))?;
        let found = out
            .target_groups()
            .iter()
            .find(|g| g.target_group_arn() == Some(group) || g.target_group_name() == Some(group))
            .ok_or_else(|| Error::not_found(NAME, res.clone()))?;
        let resolved = Group {
            arn: found
                .target_group_arn()
                .ok_or_else(|| missing(NAME, op, "TargetGroupArn"))?
                .to_string(),
            port: found.port().and_then(|p| u16::try_from(p).ok()),
        };
        self.groups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(group.to_string(), resolved.clone());
        Ok(resolved)
    }

    async fn health(&self, group: &str, g: &Group, op: &str) -> Result<Vec<TargetHealth>> {
        let res = resource(group);
        let out = self
            .client
            .describe_target_health()
            .target_group_arn(&g.arn)
            .send()
            .await
            .map_err(|e| map_sdk(self.ctx(op, &res), e))?;
        let mut targets = Vec::new();
        for d in out.target_health_descriptions() {
            let Some((t, id)) = d.target().and_then(|t| Some((t, t.id()?))) else {
                continue;
            };
            let port = t.port().and_then(|p| u16::try_from(p).ok());
            targets.push(TargetHealth {
                target: LbTarget {
                    id: id.to_string(),
                    port: port.filter(|p| Some(*p) != g.port),
                },
                state: d
                    .target_health()
                    .and_then(|h| h.state())
                    .map_or(TargetState::Unknown, target_state),
            });
        }
        targets.sort_by(|a, b| a.target.cmp(&b.target));
        Ok(targets)
    }
}

fn resource(group: &str) -> String {
    format!("target group {group}")
}

/// Maps an ELBv2 target health state to a [`TargetState`].
pub fn target_state(state: &TargetHealthStateEnum) -> TargetState {
    match state {
        TargetHealthStateEnum::Initial => TargetState::Initial,
        TargetHealthStateEnum::Healthy => TargetState::Healthy,
        TargetHealthStateEnum::Unhealthy => TargetState::Unhealthy,
        TargetHealthStateEnum::Draining | TargetHealthStateEnum::UnhealthyDraining => {
            TargetState::Draining
        }
        TargetHealthStateEnum::Unused => TargetState::Unused,
        _ => TargetState::Unknown,
    }
}

fn description(t: &LbTarget, group_port: Option<u16>) -> TargetDescription {
    TargetDescription::builder()
        .id(&t.id)
        .set_port(t.port.or(group_port).map(i32::from))
        .build()
}

#[async_trait]
impl LoadBalancer for Elbv2Targets {
    fn name(&self) -> &str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::of([
            Operation::TargetHealth,
            Operation::RegisterTargets,
            Operation::DeregisterTargets,
        ])
    }

    async fn target_health(&self, group: &str) -> Result<Vec<TargetHealth>> {
        let g = self.group(group, "target_health").await?;
        self.health(group, &g, "target_health").await
    }

    async fn register_targets(&self, group: &str, targets: &[LbTarget]) -> Result<()> {
        if targets.is_empty() {
            return Ok(());
        }
        let g = self.group(group, "register_targets").await?;
        let descriptions = targets
            .iter()
            .map(|t| description(t, g.port))
            .collect::<Vec<_>>();
        let res = resource(group);
        self.client
            .register_targets()
            .target_group_arn(&g.arn)
            .set_targets(Some(descriptions))
            .send()
            .await
            .map_err(|e| map_sdk(self.ctx("register_targets", &res), e))?;
        tracing::info!(group, count = targets.len(), "targets registered");
        Ok(())
    }

    async fn deregister_targets(&self, group: &str, targets: &[LbTarget]) -> Result<()> {
        if targets.is_empty() {
            return Ok(());
        }
        let g = self.group(group, "deregister_targets").await?;
        let registered = self.health(group, &g, "deregister_targets").await?;
        let wanted: Vec<&LbTarget> = targets
            .iter()
            .filter(|t| {
                let port = t.port.filter(|p| Some(*p) != g.port);
                registered.iter().any(|r| {
                    r.target.id == t.id && r.target.port == port && r.state != TargetState::Draining
                })
            })
            .collect();
        if wanted.is_empty() {
            tracing::debug!(group, "targets already deregistered");
            return Ok(());
        }
        let descriptions = wanted
            .iter()
            .map(|t| description(t, g.port))
            .collect::<Vec<_>>();
        let res = resource(group);
        self.client
            .deregister_targets()
            .target_group_arn(&g.arn)
            .set_targets(Some(descriptions))
            .send()
            .await
            .map_err(|e| map_sdk(self.ctx("deregister_targets", &res), e))?;
        tracing::info!(group, count = wanted.len(), "targets deregistered");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_states_map_one_to_one_and_unknown_ones_are_unknown() {
        use TargetHealthStateEnum as S;
        for (state, expected) in [
            (S::Initial, TargetState::Initial),
            (S::Healthy, TargetState::Healthy),
            (S::Unhealthy, TargetState::Unhealthy),
            (S::Draining, TargetState::Draining),
            (S::UnhealthyDraining, TargetState::Draining),
            (S::Unused, TargetState::Unused),
            (S::Unavailable, TargetState::Unknown),
            (S::from("a-future-state"), TargetState::Unknown),
        ] {
            assert_eq!(target_state(&state), expected, "{state:?}");
        }
    }

    #[test]
    fn a_target_without_a_port_takes_the_groups() {
        let d = description(&LbTarget::parse("10.0.0.1").expect("t"), Some(8080));
        assert_eq!((d.id(), d.port()), (Some("10.0.0.1"), Some(8080)));
        let d = description(&LbTarget::parse("10.0.0.1:9090").expect("t"), Some(8080));
        assert_eq!(d.port(), Some(9090));
        let d = description(&LbTarget::parse("i-0abc").expect("t"), None);
        assert_eq!(d.port(), None);
    }
}
