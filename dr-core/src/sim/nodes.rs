//! Simulated node capacity: node groups of the simulated clusters, their nodes, and where
//! the workloads' pods run on them.
//!
//! A cluster with node groups holds only as many pods as its Ready nodes take (each node
//! `pods_per_node`): a workload scaled beyond that capacity stays short of ready until
//! nodes come up, so node groups are scaled before workloads. A cluster without node
//! groups has no such limit.
//!
//! A scaling update moves a group `Updating` → `Active` after
//! [`SimConfig::node_scaling`](super::SimConfig::node_scaling); the nodes come up at its
//! end. A failed node is NotReady and keeps the pods that ran on it (they are not ready and
//! not replaced) until it is drained; its evicted pods are then rescheduled on the Ready
//! nodes, ready after [`SimConfig::rollout`](super::SimConfig::rollout). A group whose
//! region is down, or that failed as a whole, is `Degraded` with no Ready node.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;

use super::cluster::PodCounts;
use super::SimInstant as Instant;
use super::{Env, SimCloud, State, PROVIDER};
use crate::provider::{
    Capabilities, NodeCapacity, NodeGroupRef, NodeGroupState, NodeGroupStatus, NodeInfo,
    NodeScaling, Operation, WorkloadKind,
};
use crate::{Error, Result};

const ROLE: &str = "nodes";

/// One pod, by its workload and ordinal (`{workload}-{index}`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
struct Pod {
    namespace: String,
    kind: WorkloadKind,
    workload: String,
    index: u32,
}

impl Pod {
    fn name(&self) -> String {
        format!("{}/{}-{}", self.namespace, self.workload, self.index)
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Group {
    scaling: NodeScaling,
    pods_per_node: u32,
    /// Nodes that existed before the update under way.
    nodes_before: u32,
    /// When the update under way ends.
    update_until: Option<Instant>,
    /// The whole group failed: every node NotReady, new ones too.
    broken: bool,
    /// Failed nodes, by ordinal, with the pods stranded on them until drained.
    failed: BTreeMap<u32, Vec<Pod>>,
    cordoned: BTreeSet<u32>,
    /// Ready nodes drained: they run nothing.
    drained: BTreeSet<u32>,
}

impl Group {
    fn updating(&self, now: Instant) -> bool {
        self.update_until.is_some_and(|t| now < t)
    }

    /// How many nodes exist (Ready or not), failed ones beyond that aside.
    fn existing(&self, now: Instant) -> u32 {
        if self.updating(now) {
            self.nodes_before
        } else {
            self.scaling.desired
        }
    }

    /// The ordinals of the nodes the API lists.
    fn listed(&self, now: Instant) -> BTreeSet<u32> {
        (0..self.existing(now))
            .chain(self.failed.keys().copied())
            .collect()
    }

    fn is_ready(&self, i: u32, now: Instant, down: bool) -> bool {
        !down && !self.broken && !self.failed.contains_key(&i) && i < self.existing(now)
    }
}

/// Evicted pods of a workload being rescheduled.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Rescheduled {
    cluster: String,
    namespace: String,
    kind: WorkloadKind,
    workload: String,
    pods: u32,
    until: Instant,
}

/// The node groups of the simulated cloud, by cluster and name.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct NodeGroups {
    groups: BTreeMap<String, BTreeMap<String, Group>>,
    rescheduled: Vec<Rescheduled>,
    /// Pods a drain evicted, per cluster: placed after the others, so that the pods that
    /// never moved stay on their nodes.
    moved: BTreeMap<String, BTreeSet<Pod>>,
}

impl NodeGroups {
    /// Whether `cluster` has node groups (and so a limited capacity).
    pub(super) fn limits(&self, cluster: &str) -> bool {
        self.groups.get(cluster).is_some_and(|g| !g.is_empty())
    }

    fn group(&self, g: &NodeGroupRef) -> Result<&Group> {
        self.groups
            .get(&g.cluster)
            .and_then(|c| c.get(&g.name))
            .ok_or_else(|| Error::not_found(PROVIDER, format!("node group {g}")))
    }

    fn group_mut(&mut self, g: &NodeGroupRef) -> Result<&mut Group> {
        self.groups
            .get_mut(&g.cluster)
            .and_then(|c| c.get_mut(&g.name))
            .ok_or_else(|| Error::not_found(PROVIDER, format!("node group {g}")))
    }
}

fn node_name(cluster: &str, group: &str, i: u32) -> String {
    format!("{cluster}-{group}-{i}")
}

/// The node group and ordinal of a node's name.
fn parse_node<'a>(st: &'a State, cluster: &str, node: &str) -> Option<(&'a str, u32)> {
    let groups = st.nodes.groups.get(cluster)?;
    groups.keys().find_map(|g| {
        node.strip_prefix(cluster)?
            .strip_prefix('-')?
            .strip_prefix(g.as_str())?
            .strip_prefix('-')?
            .parse::<u32>()
            .ok()
            .map(|i| (g.as_str(), i))
    })
}

fn region_down(st: &State, cluster: &str) -> bool {
    st.clusters
        .region(cluster)
        .is_some_and(|r| st.down.contains(r))
}

/// Where the pods of a cluster with node groups run at `env.now`.
#[derive(Debug, Default)]
pub(super) struct Placement {
    /// Pods per node name.
    on_node: BTreeMap<String, Vec<Pod>>,
    /// Available replicas per workload, capped by the capacity.
    available: BTreeMap<(String, WorkloadKind, String), u32>,
}

impl Placement {
    /// The replicas of a workload that run on a Ready node and are ready.
    pub(super) fn available(&self, namespace: &str, kind: WorkloadKind, name: &str) -> u32 {
        self.available
            .get(&(namespace.to_string(), kind, name.to_string()))
            .copied()
            .unwrap_or(0)
    }
}

/// Places the pods of `cluster`'s workloads on its nodes: stranded pods stay on their failed
/// nodes, the others fill the Ready nodes (by group name, then ordinal), each up to its
/// group's pods per node, in workload order; what does not fit is pending.
pub(super) fn placement(st: &State, cluster: &str, env: &Env<'_>) -> Placement {
    let mut out = Placement::default();
    let Some(groups) = st.nodes.groups.get(cluster) else {
        return out;
    };
    let down = region_down(st, cluster);
    let now = env.now;
    let mut stranded: BTreeMap<(String, WorkloadKind, String), BTreeSet<u32>> = BTreeMap::new();
    let mut slots: Vec<(String, u32)> = Vec::new();
    for (name, g) in groups {
        for (i, pods) in &g.failed {
            out.on_node
                .insert(node_name(cluster, name, *i), pods.clone());
            for p in pods {
                stranded
                    .entry((p.namespace.clone(), p.kind, p.workload.clone()))
                    .or_default()
                    .insert(p.index);
            }
        }
        for i in g.listed(now) {
            if g.is_ready(i, now, down) && !g.drained.contains(&i) {
                slots.push((node_name(cluster, name, i), g.pods_per_node));
            }
        }
    }
    let moved = st.nodes.moved.get(cluster);
    let is_moved = |p: &Pod| moved.is_some_and(|m| m.contains(p));
    let workloads = st.clusters.pods(cluster, down, env);
    // The pods that never moved first, in workload order, then those a drain evicted.
    let mut queue: Vec<(usize, Pod)> = Vec::new();
    let mut later: Vec<(usize, Pod)> = Vec::new();
    for (at, w) in workloads.iter().enumerate() {
        let key = (w.namespace.clone(), w.kind, w.name.clone());
        let gone = stranded.get(&key);
        for index in (0..w.replicas).filter(|i| !gone.is_some_and(|s| s.contains(i))) {
            let pod = Pod {
                namespace: w.namespace.clone(),
                kind: w.kind,
                workload: w.name.clone(),
                index,
            };
            if is_moved(&pod) {
                later.push((at, pod));
            } else {
                queue.push((at, pod));
            }
        }
    }
    queue.extend(later);
    let mut placed = vec![0u32; workloads.len()];
    let mut slot = 0usize;
    for (at, pod) in queue {
        // The next node with room.
        while slots.get(slot).is_some_and(|(_, room)| *room == 0) {
            slot += 1;
        }
        let Some((node, room)) = slots.get_mut(slot) else {
            break;
        };
        *room -= 1;
        out.on_node.entry(node.clone()).or_default().push(pod);
        if let Some(n) = placed.get_mut(at) {
            *n += 1;
        }
    }
    for (w, placed) in workloads.iter().zip(placed) {
        let key = (w.namespace.clone(), w.kind, w.name.clone());
        let rescheduling: u32 = st
            .nodes
            .rescheduled
            .iter()
            .filter(|r| {
                r.cluster == cluster
                    && r.namespace == w.namespace
                    && r.kind == w.kind
                    && r.workload == w.name
                    && now < r.until
            })
            .map(|r| r.pods)
            .sum();
        let ready = placed.saturating_sub(rescheduling).min(w.available);
        out.available.insert(key, ready);
    }
    out
}

/// Caps a workload's counts by what the nodes of its cluster hold.
pub(super) fn cap(st: &State, cluster: &str, env: &Env<'_>, counts: &mut PodCounts) {
    if !st.nodes.limits(cluster) {
        return;
    }
    let p = placement(st, cluster, env);
    let available = p.available(&counts.namespace, counts.kind, &counts.name);
    counts.available = counts.available.min(available);
    counts.updated = counts.updated.min(available);
}

fn status(st: &State, group: &NodeGroupRef, env: &Env<'_>) -> Result<NodeGroupStatus> {
    let g = st.nodes.group(group)?;
    let now = env.now;
    let down = region_down(st, &group.cluster);
    let ready_nodes = g
        .listed(now)
        .into_iter()
        .filter(|i| g.is_ready(*i, now, down))
        .count();
    let state = if down || g.broken || !g.failed.is_empty() {
        if g.updating(now) {
            NodeGroupState::Updating
        } else {
            NodeGroupState::Degraded
        }
    } else if g.updating(now) {
        NodeGroupState::Updating
    } else {
        NodeGroupState::Active
    };
    Ok(NodeGroupStatus {
        group: group.clone(),
        scaling: g.scaling,
        state,
        ready_nodes: u32::try_from(ready_nodes).unwrap_or(u32::MAX),
    })
}

/// The nodes of a group, as [`ClusterDeployer::list_nodes`](crate::provider::ClusterDeployer::list_nodes)
/// reports them.
pub(super) fn list(st: &State, cluster: &str, group: &str, env: &Env<'_>) -> Result<Vec<NodeInfo>> {
    let gref = NodeGroupRef::new(cluster, group);
    let g = st.nodes.group(&gref)?;
    let down = region_down(st, cluster);
    let placed = placement(st, cluster, env);
    let mut nodes: Vec<NodeInfo> = g
        .listed(env.now)
        .into_iter()
        .map(|i| {
            let name = node_name(cluster, group, i);
            let mut pods: Vec<String> = placed
                .on_node
                .get(&name)
                .map(|p| p.iter().map(Pod::name).collect())
                .unwrap_or_default();
            pods.sort();
            NodeInfo {
                ready: g.is_ready(i, env.now, down),
                unschedulable: g.cordoned.contains(&i),
                pods,
                name,
            }
        })
        .collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(nodes)
}

fn node_not_found(cluster: &str, node: &str) -> Error {
    Error::not_found(PROVIDER, format!("node {node} of cluster {cluster}"))
}

/// Cordons a node.
pub(super) fn cordon(st: &mut State, cluster: &str, node: &str, env: &Env<'_>) -> Result<()> {
    let (group, i) = parse_node(st, cluster, node)
        .map(|(g, i)| (g.to_string(), i))
        .ok_or_else(|| node_not_found(cluster, node))?;
    let g = st.nodes.group_mut(&NodeGroupRef::new(cluster, &group))?;
    if !g.listed(env.now).contains(&i) {
        return Err(node_not_found(cluster, node));
    }
    g.cordoned.insert(i);
    Ok(())
}

/// Drains a node: its pods are evicted and rescheduled on the Ready nodes.
pub(super) fn drain(
    st: &mut State,
    cluster: &str,
    node: &str,
    env: &Env<'_>,
) -> Result<Vec<String>> {
    let (group, i) = parse_node(st, cluster, node)
        .map(|(g, i)| (g.to_string(), i))
        .ok_or_else(|| node_not_found(cluster, node))?;
    let gref = NodeGroupRef::new(cluster, &group);
    if !st.nodes.group(&gref)?.listed(env.now).contains(&i) {
        return Err(node_not_found(cluster, node));
    }
    let name = node_name(cluster, &group, i);
    let evicted: Vec<Pod> = placement(st, cluster, env)
        .on_node
        .remove(&name)
        .unwrap_or_default();
    let g = st.nodes.group_mut(&gref)?;
    if let Some(pods) = g.failed.get_mut(&i) {
        pods.clear();
    } else {
        g.drained.insert(i);
    }
    let until = env.now + env.cfg.rollout.get();
    let mut per_workload: BTreeMap<(String, WorkloadKind, String), u32> = BTreeMap::new();
    for p in &evicted {
        *per_workload
            .entry((p.namespace.clone(), p.kind, p.workload.clone()))
            .or_default() += 1;
    }
    let now = env.now;
    st.nodes.rescheduled.retain(|r| now < r.until);
    st.nodes
        .moved
        .entry(cluster.to_string())
        .or_default()
        .extend(evicted.iter().cloned());
    for ((namespace, kind, workload), pods) in per_workload {
        st.nodes.rescheduled.push(Rescheduled {
            cluster: cluster.to_string(),
            namespace,
            kind,
            workload,
            pods,
            until,
        });
    }
    let mut names: Vec<String> = evicted.iter().map(Pod::name).collect();
    names.sort();
    Ok(names)
}

fn check_bounds(group: &NodeGroupRef, s: NodeScaling) -> Result<()> {
    if s.min > s.desired || s.desired > s.max {
        return Err(Error::InvalidRequest {
            provider: PROVIDER.into(),
            operation: Operation::ScaleNodeGroup.name().into(),
            message: format!("node group {group}: {s} is not min <= desired <= max"),
        });
    }
    Ok(())
}

impl SimCloud {
    /// Adds node group `group` with `scaling`, its nodes up, each holding `pods_per_node`
    /// pods. From then on the group's cluster holds only the pods its node groups' Ready
    /// nodes take.
    pub fn add_node_group(&self, group: &NodeGroupRef, scaling: NodeScaling, pods_per_node: u32) {
        self.with_state(|st, _| {
            st.nodes
                .groups
                .entry(group.cluster.clone())
                .or_default()
                .insert(
                    group.name.clone(),
                    Group {
                        scaling,
                        pods_per_node,
                        nodes_before: scaling.desired,
                        update_until: None,
                        broken: false,
                        failed: BTreeMap::new(),
                        cordoned: BTreeSet::new(),
                        drained: BTreeSet::new(),
                    },
                );
        });
    }

    /// Removes node group `group` (its nodes and the pods stranded on them); `true` if it
    /// existed.
    pub fn remove_node_group(&self, group: &NodeGroupRef) -> bool {
        self.with_state(|st, _| {
            st.nodes
                .groups
                .get_mut(&group.cluster)
                .is_some_and(|c| c.remove(&group.name).is_some())
        })
    }

    /// Fails node group `group` as a whole: every node NotReady (its pods stranded on it
    /// until drained), nodes it starts later too; the group reports `Degraded`. `false` if
    /// there is no such group.
    pub fn fail_node_group(&self, group: &NodeGroupRef) -> bool {
        self.fail_nodes_where(group, |_| true, true)
    }

    /// Fails the first `count` Ready nodes of `group` (by ordinal): NotReady, their pods
    /// stranded until drained; the group reports `Degraded`. `false` if there is no such
    /// group.
    pub fn fail_nodes(&self, group: &NodeGroupRef, count: u32) -> bool {
        let mut left = count;
        self.fail_nodes_where(
            group,
            |_| {
                let take = left > 0;
                left = left.saturating_sub(1);
                take
            },
            false,
        )
    }

    fn fail_nodes_where(
        &self,
        group: &NodeGroupRef,
        mut pick: impl FnMut(u32) -> bool,
        broken: bool,
    ) -> bool {
        self.with_state(|st, env| {
            let placed = placement(st, &group.cluster, env);
            let down = region_down(st, &group.cluster);
            let Ok(g) = st.nodes.group_mut(group) else {
                return false;
            };
            for i in g.listed(env.now) {
                if g.is_ready(i, env.now, down) && pick(i) {
                    let name = node_name(&group.cluster, &group.name, i);
                    let pods = placed.on_node.get(&name).cloned().unwrap_or_default();
                    g.failed.insert(i, pods);
                }
            }
            g.broken |= broken;
            true
        })
    }

    /// The node capacity service (every node group of the cloud).
    pub fn nodes(&self) -> std::sync::Arc<dyn NodeCapacity> {
        std::sync::Arc::new(SimNodes {
            cloud: self.clone(),
        })
    }
}

/// The simulated cloud's [`NodeCapacity`] service ([`SimCloud::nodes`]).
#[derive(Debug, Clone)]
pub struct SimNodes {
    cloud: SimCloud,
}

impl SimNodes {
    async fn call<T>(
        &self,
        op: Operation,
        group: &NodeGroupRef,
        mutating: bool,
        f: impl FnOnce(&mut State, &Env<'_>) -> Result<T>,
    ) -> Result<T> {
        let region = if mutating {
            self.cloud
                .with_state(|st, _| st.clusters.region(&group.cluster).map(str::to_string))
        } else {
            None
        };
        let regions: Vec<&str> = region.iter().map(String::as_str).collect();
        self.cloud
            .call(ROLE, op, &group.to_string(), &regions, f)
            .await
    }
}

#[async_trait]
impl NodeCapacity for SimNodes {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::of([Operation::DescribeNodeGroup, Operation::ScaleNodeGroup])
    }

    async fn describe_node_group(&self, group: &NodeGroupRef) -> Result<NodeGroupStatus> {
        self.call(Operation::DescribeNodeGroup, group, false, |st, env| {
            status(st, group, env)
        })
        .await
    }

    async fn scale_node_group(&self, group: &NodeGroupRef, scaling: NodeScaling) -> Result<()> {
        check_bounds(group, scaling)?;
        self.call(Operation::ScaleNodeGroup, group, true, |st, env| {
            let g = st.nodes.group_mut(group)?;
            if g.scaling == scaling {
                return Ok(());
            }
            if g.updating(env.now) {
                return Err(Error::Refused {
                    provider: PROVIDER.into(),
                    operation: Operation::ScaleNodeGroup.name().into(),
                    source: Some(format!("an update of node group {group} is under way").into()),
                });
            }
            // The nodes that exist now stay while the update runs.
            g.nodes_before = g.existing(env.now);
            g.scaling = scaling;
            g.update_until = Some(env.now + env.cfg.node_scaling.get());
            Ok(())
        })
        .await
    }
}
