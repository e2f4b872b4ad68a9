//! Simulated Kubernetes-like clusters: namespaces, workloads with revisions and rollouts,
//! secrets, stored objects.

use std::collections::BTreeMap;

use super::SimInstant as Instant;
use async_trait::async_trait;

use super::{Env, SimCloud, State, PROVIDER};
use crate::provider::{
    Capabilities, ClusterDeployer, Manifest, NodeInfo, Operation, RolloutStatus, WorkloadKind,
    WorkloadRef,
};
use crate::{Error, Result, Secret};

const ROLE: &str = "cluster";

/// A pod template: what a revision pins.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Template {
    images: BTreeMap<String, String>,
    env: BTreeMap<String, String>,
    restarts: u64,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct Workload {
    replicas: u32,
    /// Revision history, oldest first; the last one is current.
    revisions: Vec<(u64, Template)>,
    /// When the pods of the current rollout are ready.
    ready_at: Instant,
    /// Replicas available while the rollout runs (the old pods).
    available_before: u32,
    /// Whether the current rollout replaces the pod template.
    template_changed: bool,
    isolated: bool,
    /// A deleted pod is being replaced until then.
    pod_down_until: Option<Instant>,
}

impl Workload {
    fn new(replicas: u32, template: Template, ready_at: Instant) -> Self {
        Workload {
            replicas,
            revisions: vec![(1, template)],
            ready_at,
            available_before: 0,
            template_changed: true,
            isolated: false,
            pod_down_until: None,
        }
    }

    fn current(&self) -> (u64, &Template) {
        match self.revisions.last() {
            Some((rev, t)) => (*rev, t),
            None => (0, &EMPTY),
        }
    }

    /// (updated, available) replicas at `now`.
    fn counts(&self, now: Instant, down: bool) -> (u32, u32) {
        let (updated, available) = if now >= self.ready_at {
            (self.replicas, self.replicas)
        } else {
            let available = self.available_before.min(self.replicas);
            let updated = if self.template_changed { 0 } else { available };
            (updated, available)
        };
        let restarting = self.pod_down_until.is_some_and(|t| now < t) as u32;
        if down {
            (updated, 0)
        } else {
            (updated, available.saturating_sub(restarting))
        }
    }

    fn start_rollout(&mut self, env: &Env<'_>, template_changed: bool) {
        self.available_before = self.counts(env.now, false).1;
        self.template_changed = template_changed;
        self.ready_at = env.now + env.cfg.rollout.get();
    }

    fn scale(&mut self, replicas: u32, env: &Env<'_>) {
        if replicas == self.replicas {
            return;
        }
        let growing = replicas > self.replicas;
        if growing {
            self.start_rollout(env, false);
        } else if env.now < self.ready_at {
            self.available_before = self.available_before.min(replicas);
        }
        self.replicas = replicas;
    }

    /// Moves to `template` as a new revision (no change when it is the current one).
    fn set_template(&mut self, template: Template, env: &Env<'_>) -> u64 {
        let (rev, current) = self.current();
        if *current == template {
            return rev;
        }
        let next = self.revisions.iter().map(|(r, _)| *r).max().unwrap_or(0) + 1;
        self.revisions.push((next, template));
        self.start_rollout(env, true);
        next
    }
}

static EMPTY: Template = Template {
    images: BTreeMap::new(),
    env: BTreeMap::new(),
    restarts: 0,
};

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Namespace {
    objects: BTreeMap<(String, String), Manifest>,
    /// The simulated cluster holds secret values as a real one does (its state file too).
    #[serde(with = "secret_values")]
    secrets: BTreeMap<String, BTreeMap<String, Secret>>,
    workloads: BTreeMap<(WorkloadKind, String), Workload>,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Cluster {
    region: Option<String>,
    ingress: Option<String>,
    namespaces: BTreeMap<String, Namespace>,
}

/// The clusters of the simulated cloud.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Clusters {
    clusters: BTreeMap<String, Cluster>,
}

impl Clusters {
    fn cluster(&self, name: &str) -> Result<&Cluster> {
        self.clusters
            .get(name)
            .ok_or_else(|| Error::not_found(PROVIDER, format!("cluster {name}")))
    }

    fn namespace_mut(&mut self, cluster: &str, ns: &str) -> Result<&mut Namespace> {
        self.clusters
            .get_mut(cluster)
            .ok_or_else(|| Error::not_found(PROVIDER, format!("cluster {cluster}")))?
            .namespaces
            .get_mut(ns)
            .ok_or_else(|| Error::not_found(PROVIDER, format!("namespace {cluster}/{ns}")))
    }

    fn workload_mut(&mut self, w: &WorkloadRef) -> Result<&mut Workload> {
        self.namespace_mut(&w.cluster, &w.namespace)?
            .workloads
            .get_mut(&(w.kind, w.name.clone()))
            .ok_or_else(|| Error::not_found(PROVIDER, w.to_string()))
    }

    /// The region of a cluster, if it is known and has one.
    pub(super) fn region(&self, cluster: &str) -> Option<&str> {
        self.clusters.get(cluster)?.region.as_deref()
    }

    /// The cluster whose ingress host is `host`.
    pub(super) fn by_ingress(&self, host: &str) -> Option<&str> {
        self.clusters
            .iter()
            .find(|(_, c)| c.ingress.as_deref() == Some(host))
            .map(|(n, _)| n.as_str())
    }
}

fn region_down(st: &State, cluster: &str) -> bool {
    st.clusters
        .region(cluster)
        .is_some_and(|r| st.down.contains(r))
}

/// A workload's replica counts at one instant, before node capacity is applied.
#[derive(Debug, Clone)]
pub(super) struct PodCounts {
    pub(super) namespace: String,
    pub(super) kind: WorkloadKind,
    pub(super) name: String,
    pub(super) replicas: u32,
    pub(super) updated: u32,
    pub(super) available: u32,
}

impl Clusters {
    /// The replica counts of every workload of `cluster`, by namespace, kind and name.
    pub(super) fn pods(&self, cluster: &str, down: bool, env: &Env<'_>) -> Vec<PodCounts> {
        let Some(c) = self.clusters.get(cluster) else {
            return Vec::new();
        };
        c.namespaces
            .iter()
            .flat_map(|(ns, n)| {
                n.workloads.iter().map(move |((kind, name), wl)| {
                    let (updated, available) = wl.counts(env.now, down);
                    PodCounts {
                        namespace: ns.clone(),
                        kind: *kind,
                        name: name.clone(),
                        replicas: wl.replicas,
                        updated,
                        available,
                    }
                })
            })
            .collect()
    }
}

/// The rollout status of a workload at `env.now`.
pub(super) fn rollout_status(st: &State, w: &WorkloadRef, env: &Env<'_>) -> Result<RolloutStatus> {
    let wl = st
        .clusters
        .cluster(&w.cluster)?
        .namespaces
        .get(&w.namespace)
        .and_then(|ns| ns.workloads.get(&(w.kind, w.name.clone())))
        .ok_or_else(|| Error::not_found(PROVIDER, w.to_string()))?;
    let (updated, available) = wl.counts(env.now, region_down(st, &w.cluster));
    // Pods beyond what the cluster's nodes hold are pending.
    let mut counts = PodCounts {
        namespace: w.namespace.clone(),
        kind: w.kind,
        name: w.name.clone(),
        replicas: wl.replicas,
        updated,
        available,
    };
    super::nodes::cap(st, &w.cluster, env, &mut counts);
    let (updated, available) = (counts.updated, counts.available);
    let (revision, template) = wl.current();
    Ok(RolloutStatus {
        workload: w.clone(),
        replicas: wl.replicas,
        updated_replicas: updated,
        available_replicas: available,
        revision,
        observed: true,
        isolated: wl.isolated,
        env: template.env.clone(),
    })
}

fn invalid_manifest(m: &Manifest, why: &str) -> Error {
    Error::InvalidRequest {
        provider: PROVIDER.into(),
        operation: "apply".into(),
        message: format!("manifest {} {}: {why}", m.kind, m.name),
    }
}

/// Kind, replicas and pod template of a workload manifest.
type WorkloadSpec = (WorkloadKind, u32, Template);

/// Kind, name, and for workloads replicas and pod template, of a manifest.
fn parse_manifest(m: &Manifest) -> Result<(String, String, Option<WorkloadSpec>)> {
    let v: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&m.body).map_err(|e| invalid_manifest(m, &e.to_string()))?;
    let kind = v.get("kind").and_then(|k| k.as_str()).unwrap_or(&m.kind);
    let name = v
        .get("metadata")
        .and_then(|md| md.get("name"))
        .and_then(|n| n.as_str())
        .unwrap_or(&m.name);
    if kind.is_empty() || name.is_empty() {
        return Err(invalid_manifest(m, "kind and metadata.name are required"));
    }
    if kind != m.kind || name != m.name {
        return Err(invalid_manifest(m, "body names another object"));
    }
    let wk = match kind {
        "Deployment" => WorkloadKind::Deployment,
        "StatefulSet" => WorkloadKind::StatefulSet,
        _ => return Ok((kind.to_string(), name.to_string(), None)),
    };
    let spec = v.get("spec");
    let replicas = spec
        .and_then(|s| s.get("replicas"))
        .and_then(|r| r.as_u64())
        .unwrap_or(1);
    let replicas =
        u32::try_from(replicas).map_err(|_| invalid_manifest(m, "replicas too large"))?;
    let mut template = Template::default();
    let containers = spec
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("spec"))
        .and_then(|s| s.get("containers"))
        .and_then(|c| c.as_sequence());
    for c in containers.into_iter().flatten() {
        let cname = c.get("name").and_then(|n| n.as_str()).unwrap_or("main");
        if let Some(image) = c.get("image").and_then(|i| i.as_str()) {
            template.images.insert(cname.to_string(), image.to_string());
        }
        for e in c
            .get("env")
            .and_then(|e| e.as_sequence())
            .into_iter()
            .flatten()
        {
            if let (Some(k), Some(val)) = (
                e.get("name").and_then(|n| n.as_str()),
                e.get("value").and_then(|n| n.as_str()),
            ) {
                template.env.insert(k.to_string(), val.to_string());
            }
        }
    }
    Ok((
        kind.to_string(),
        name.to_string(),
        Some((wk, replicas, template)),
    ))
}

/// A manifest generated from a workload's current state.
fn workload_manifest(ns: &str, kind: WorkloadKind, name: &str, wl: &Workload) -> Manifest {
    let kind_name = match kind {
        WorkloadKind::Deployment => "Deployment",
        WorkloadKind::StatefulSet => "StatefulSet",
    };
    let (_, t) = wl.current();
    let env: Vec<serde_json::Value> = t
        .env
        .iter()
        .map(|(k, v)| serde_json::json!({"name": k, "value": v}))
        .collect();
    let containers: Vec<serde_json::Value> = t
        .images
        .iter()
        .map(|(c, image)| serde_json::json!({"name": c, "image": image, "env": env}))
        .collect();
    let body = serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": kind_name,
        "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": wl.replicas, "template": {"spec": {"containers": containers}}},
    });
    Manifest {
        kind: kind_name.to_string(),
        name: name.to_string(),
        body: serde_yaml_ng::to_string(&body).unwrap_or_default(),
    }
}

impl SimCloud {
    /// Adds a cluster in `region` whose ingress answers at `ingress_host` (the value DNS
    /// records point at). Workloads on it are down while the region is failed.
    pub fn add_cluster(&self, name: &str, region: &str, ingress_host: &str) {
        self.with_state(|st, _| {
            let c = st.clusters.clusters.entry(name.to_string()).or_default();
            c.region = Some(region.to_string());
            c.ingress = Some(ingress_host.to_string());
        });
    }

    /// Adds a namespace (and its cluster, if unknown).
    pub fn add_namespace(&self, cluster: &str, namespace: &str) {
        self.with_state(|st, _| {
            st.clusters
                .clusters
                .entry(cluster.to_string())
                .or_default()
                .namespaces
                .entry(namespace.to_string())
                .or_default();
        });
    }

    /// Adds a workload with `replicas` ready replicas at revision 1 (and its cluster and
    /// namespace, if unknown). Pods are named `{name}-{i}`.
    pub fn add_workload(&self, workload: &WorkloadRef, replicas: u32) {
        self.add_namespace(&workload.cluster, &workload.namespace);
        self.with_state(|st, env| {
            if let Ok(ns) = st
                .clusters
                .namespace_mut(&workload.cluster, &workload.namespace)
            {
                let template = Template {
                    images: BTreeMap::from([("main".to_string(), format!("{}:1", workload.name))]),
                    ..Template::default()
                };
                ns.workloads.insert(
                    (workload.kind, workload.name.clone()),
                    Workload::new(replicas, template, env.now),
                );
            }
        });
    }
}

/// The simulated cloud's [`ClusterDeployer`] service ([`SimCloud::cluster`]), serving every
/// cluster of the cloud.
#[derive(Debug, Clone)]
pub struct SimCluster {
    cloud: SimCloud,
}

impl SimCluster {
    pub(super) fn new(cloud: SimCloud) -> Self {
        SimCluster { cloud }
    }

    fn region(&self, cluster: &str) -> Option<String> {
        self.cloud
            .with_state(|st, _| st.clusters.region(cluster).map(str::to_string))
    }

    async fn call<T>(
        &self,
        op: Operation,
        cluster: &str,
        target: &str,
        mutating: bool,
        f: impl FnOnce(&mut State, &Env<'_>) -> Result<T>,
    ) -> Result<T> {
        let region = if mutating { self.region(cluster) } else { None };
        let regions: Vec<&str> = region.iter().map(String::as_str).collect();
        self.cloud.call(ROLE, op, target, &regions, f).await
    }

    async fn workload_call<T>(
        &self,
        op: Operation,
        w: &WorkloadRef,
        f: impl FnOnce(&mut Workload, &Env<'_>) -> Result<T>,
    ) -> Result<T> {
        let target = format!("{}/{}/{}/{}", w.cluster, w.namespace, w.kind, w.name);
        self.call(op, &w.cluster, &target, true, |st, env| {
            f(st.clusters.workload_mut(w)?, env)
        })
        .await
    }
}

#[async_trait]
impl ClusterDeployer for SimCluster {
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

    async fn list_nodes(
        &self,
        cluster: &str,
        label: &str,
        node_group: &str,
    ) -> Result<Vec<NodeInfo>> {
        // Simulated nodes carry their group under every label a plan may name.
        let target = format!("{cluster}/nodes {label}={node_group}");
        self.call(Operation::ListNodes, cluster, &target, false, |st, env| {
            st.clusters.cluster(cluster)?;
            super::nodes::list(st, cluster, node_group, env)
        })
        .await
    }

    async fn cordon_node(&self, cluster: &str, node: &str) -> Result<()> {
        let target = format!("{cluster}/node/{node}");
        self.call(Operation::CordonNode, cluster, &target, true, |st, env| {
            super::nodes::cordon(st, cluster, node, env)
        })
        .await
    }

    async fn drain_node(&self, cluster: &str, node: &str) -> Result<Vec<String>> {
        let target = format!("{cluster}/node/{node}");
        self.call(Operation::DrainNode, cluster, &target, true, |st, env| {
            super::nodes::drain(st, cluster, node, env)
        })
        .await
    }

    async fn apply(&self, cluster: &str, namespace: &str, manifests: &[Manifest]) -> Result<()> {
        let parsed = manifests
            .iter()
            .map(|m| parse_manifest(m).map(|p| (m, p)))
            .collect::<Result<Vec<_>>>()?;
        let target = format!("{cluster}/{namespace}");
        self.call(Operation::Apply, cluster, &target, true, |st, env| {
            st.clusters.cluster(cluster)?;
            let c = st.clusters.clusters.entry(cluster.to_string()).or_default();
            let ns = c.namespaces.entry(namespace.to_string()).or_default();
            for (m, (kind, name, workload)) in parsed {
                match workload {
                    Some((wk, replicas, template)) => {
                        match ns.workloads.get_mut(&(wk, name.clone())) {
                            Some(wl) => {
                                wl.set_template(template, env);
                                wl.scale(replicas, env);
                            }
                            None => {
                                let ready = env.now + env.cfg.rollout.get();
                                ns.workloads
                                    .insert((wk, name), Workload::new(replicas, template, ready));
                            }
                        }
                    }
                    None => {
                        let stored = Manifest {
                            kind: kind.clone(),
                            name: name.clone(),
                            body: m.body.clone(),
                        };
                        ns.objects.insert((kind, name), stored);
                    }
                }
            }
            Ok(())
        })
        .await
    }

    async fn scale(&self, workload: &WorkloadRef, replicas: u32) -> Result<()> {
        self.workload_call(Operation::Scale, workload, |wl, env| {
            wl.scale(replicas, env);
            Ok(())
        })
        .await
    }

    async fn rollout_restart(&self, workload: &WorkloadRef) -> Result<u64> {
        self.workload_call(Operation::RolloutRestart, workload, |wl, env| {
            let mut t = wl.current().1.clone();
            t.restarts += 1;
            Ok(wl.set_template(t, env))
        })
        .await
    }

    async fn rollout_undo(&self, workload: &WorkloadRef, revision: Option<u64>) -> Result<u64> {
        self.workload_call(Operation::RolloutUndo, workload, |wl, env| {
            let (current, _) = wl.current();
            let found = match revision {
                Some(r) => wl.revisions.iter().find(|(rev, _)| *rev == r),
                None => wl.revisions.iter().rev().find(|(rev, _)| *rev != current),
            };
            let template = found.map(|(_, t)| t.clone()).ok_or_else(|| {
                let which =
                    revision.map_or("previous revision".to_string(), |r| format!("revision {r}"));
                Error::not_found(PROVIDER, format!("{which} of {workload}"))
            })?;
            Ok(wl.set_template(template, env))
        })
        .await
    }

    async fn set_image(&self, workload: &WorkloadRef, container: &str, image: &str) -> Result<()> {
        self.workload_call(Operation::SetImage, workload, |wl, env| {
            let mut t = wl.current().1.clone();
            t.images.insert(container.to_string(), image.to_string());
            wl.set_template(t, env);
            Ok(())
        })
        .await
    }

    async fn set_env(
        &self,
        workload: &WorkloadRef,
        env_vars: &BTreeMap<String, String>,
    ) -> Result<()> {
        self.workload_call(Operation::SetEnv, workload, |wl, env| {
            let mut t = wl.current().1.clone();
            t.env
                .extend(env_vars.iter().map(|(k, v)| (k.clone(), v.clone())));
            wl.set_template(t, env);
            Ok(())
        })
        .await
    }

    async fn patch_secret(
        &self,
        cluster: &str,
        namespace: &str,
        name: &str,
        data: &BTreeMap<String, Secret>,
    ) -> Result<()> {
        let target = format!("{cluster}/{namespace}/secret/{name}");
        self.call(Operation::PatchSecret, cluster, &target, true, |st, _| {
            let ns = st.clusters.namespace_mut(cluster, namespace)?;
            let secret = ns.secrets.entry(name.to_string()).or_default();
            secret.extend(data.iter().map(|(k, v)| (k.clone(), v.clone())));
            Ok(())
        })
        .await
    }

    async fn read_secret(
        &self,
        cluster: &str,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> Result<Secret> {
        let target = format!("{cluster}/{namespace}/secret/{name}");
        self.call(Operation::ReadSecret, cluster, &target, false, |st, _| {
            st.clusters
                .namespace_mut(cluster, namespace)?
                .secrets
                .get(name)
                .and_then(|s| s.get(key))
                .cloned()
                .ok_or_else(|| {
                    Error::not_found(PROVIDER, format!("key {key} of secret {namespace}/{name}"))
                })
        })
        .await
    }

    async fn rollout_status(&self, workload: &WorkloadRef) -> Result<RolloutStatus> {
        let target = format!(
            "{}/{}/{}/{}",
            workload.cluster, workload.namespace, workload.kind, workload.name
        );
        self.call(
            Operation::RolloutStatus,
            &workload.cluster,
            &target,
            false,
            |st, env| rollout_status(st, workload, env),
        )
        .await
    }

    async fn isolate(&self, workload: &WorkloadRef) -> Result<()> {
        self.workload_call(Operation::IsolateWorkload, workload, |wl, _| {
            wl.isolated = true;
            Ok(())
        })
        .await
    }

    async fn delete_pod(&self, cluster: &str, namespace: &str, pod: &str) -> Result<()> {
        let target = format!("{cluster}/{namespace}/pod/{pod}");
        self.call(Operation::DeletePod, cluster, &target, true, |st, env| {
            let ns = st.clusters.namespace_mut(cluster, namespace)?;
            let owner = ns.workloads.iter_mut().find(|((_, name), wl)| {
                pod.strip_prefix(name.as_str())
                    .and_then(|rest| rest.strip_prefix('-'))
                    .and_then(|i| i.parse::<u32>().ok())
                    .is_some_and(|i| i < wl.replicas)
            });
            let (_, wl) = owner
                .ok_or_else(|| Error::not_found(PROVIDER, format!("pod {namespace}/{pod}")))?;
            wl.pod_down_until = Some(env.now + env.cfg.rollout.get());
            Ok(())
        })
        .await
    }

    async fn export(
        &self,
        cluster: &str,
        namespace: &str,
        kinds: &[String],
    ) -> Result<Vec<Manifest>> {
        let target = format!("{cluster}/{namespace}");
        self.call(Operation::Export, cluster, &target, false, |st, _| {
            let ns = st.clusters.namespace_mut(cluster, namespace)?;
            let wanted =
                |kind: &str| kinds.is_empty() || kinds.iter().any(|k| k.eq_ignore_ascii_case(kind));
            let mut out: Vec<Manifest> = ns
                .workloads
                .iter()
                .map(|((kind, name), wl)| workload_manifest(namespace, *kind, name, wl))
                .chain(ns.objects.values().cloned())
                .filter(|m| wanted(&m.kind))
                .collect();
            out.sort_by(|a, b| (&a.kind, &a.name).cmp(&(&b.kind, &b.name)));
            Ok(out)
        })
        .await
    }
}

/// Secret values as the simulated cluster stores them, for its state file: the values
/// themselves (a [`Secret`] serialises redacted everywhere else).
mod secret_values {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::Secret;

    type Secrets = BTreeMap<String, BTreeMap<String, Secret>>;

    pub(super) fn serialize<S: Serializer>(v: &Secrets, s: S) -> Result<S::Ok, S::Error> {
        let plain: BTreeMap<&str, BTreeMap<&str, &str>> = v
            .iter()
            .map(|(name, data)| {
                (
                    name.as_str(),
                    data.iter().map(|(k, v)| (k.as_str(), v.expose())).collect(),
                )
            })
            .collect();
        plain.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Secrets, D::Error> {
        let plain = BTreeMap::<String, BTreeMap<String, String>>::deserialize(d)?;
        Ok(plain
            .into_iter()
            .map(|(name, data)| {
                (
                    name,
                    data.into_iter().map(|(k, v)| (k, Secret::new(v))).collect(),
                )
            })
            .collect())
    }
}

impl SimCloud {
    /// Removes a namespace and every workload in it (what deleting a test namespace does);
    /// `true` if it existed.
    pub fn remove_namespace(&self, cluster: &str, namespace: &str) -> bool {
        self.with_state(|st, _| {
            st.clusters
                .clusters
                .get_mut(cluster)
                .is_some_and(|c| c.namespaces.remove(namespace).is_some())
        })
    }
}
