//! Kubernetes RBAC: a `Role` per cluster and namespace with exactly the API groups,
//! resources, verbs (and, where RBAC can check them, resource names) the calls of `dr-k8s`
//! make, and a `ClusterRole` per cluster for the namespaces an apply or a secret write may
//! create (and any cluster-scoped object applied).
//!
//! | operation | requests | rules |
//! |---|---|---|
//! | scale | PATCH `deployments/scale` | `patch` on `deployments/scale` (or `statefulsets/scale`) |
//! | rollout restart, set env, set image | GET + PATCH the workload | `get`, `patch` (a StatefulSet's restart also lists `controllerrevisions`) |
//! | rollout undo | GET + PATCH the workload, LIST its history | `get`, `patch`; `list` on `replicasets` (or `controllerrevisions`) |
//! | rollout status, wait | GET the workload and its isolation policy | `get` (a StatefulSet's `controllerrevisions` too), `get` on `networkpolicies` `dr-isolate-NAME` |
//! | isolate | GET the workload, server-side apply of `dr-isolate-NAME` | `get`; `patch`, `create` on `networkpolicies` |
//! | list nodes | LIST nodes by label, LIST pods by node | `list` on `nodes` and `pods` (ClusterRole) |
//! | cordon node | PATCH the node | `patch` on `nodes` (ClusterRole) |
//! | drain node | GET the node, LIST its pods, POST each pod's `eviction` | `get` on `nodes`, `list` on `pods`, `create` on `pods/eviction` (ClusterRole) |
//! | patch secret | merge PATCH, POST when missing | `patch`, `create` on `secrets`; `get`, `create` on `namespaces` (cluster-wide) |
//! | read secret | GET | `get` on `secrets` |
//! | apply | GET/POST the namespace, server-side apply of each object | `patch`, `create` on each object's resource |
//! | export | LIST each kind | `list` |
//! | delete pod | DELETE | `delete` on `pods` |
//!
//! Discovery (`/api`, `/apis`), which the apply and the export use for kinds they do not
//! know, is allowed to every authenticated user by the default `system:discovery` role.

use std::collections::{BTreeMap, BTreeSet};

use dr_core::permissions::{Need, Resource};
use dr_core::provider::{Operation as O, WorkloadKind};
use dr_core::step::Role;
use serde_json::{json, Value};

use super::slug;

/// The API group of RBAC objects.
pub const RBAC_API_VERSION: &str = "rbac.authorization.k8s.io/v1";

/// The kinds an export lists when a step names none (`dr-k8s`'s defaults).
pub const DEFAULT_EXPORT: &[&str] = &[
    "ServiceAccount",
    "ConfigMap",
    "Secret",
    "Role",
    "RoleBinding",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "CronJob",
    "Job",
    "Service",
    "Ingress",
    "NetworkPolicy",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
];

/// (kind, group, plural, namespaced, short names)
const KINDS: &[(&str, &str, &str, bool, &[&str])] = &[
    ("Namespace", "", "namespaces", false, &["ns"]),
    (
        "CustomResourceDefinition",
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        false,
        &["crd", "crds"],
    ),
    ("ServiceAccount", "", "serviceaccounts", true, &["sa"]),
    ("ConfigMap", "", "configmaps", true, &["cm"]),
    ("Secret", "", "secrets", true, &[]),
    ("Role", "rbac.authorization.k8s.io", "roles", true, &[]),
    (
        "RoleBinding",
        "rbac.authorization.k8s.io",
        "rolebindings",
        true,
        &[],
    ),
    (
        "ClusterRole",
        "rbac.authorization.k8s.io",
        "clusterroles",
        false,
        &[],
    ),
    (
        "ClusterRoleBinding",
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        false,
        &[],
    ),
    (
        "StorageClass",
        "storage.k8s.io",
        "storageclasses",
        false,
        &["sc"],
    ),
    ("PersistentVolume", "", "persistentvolumes", false, &["pv"]),
    (
        "PersistentVolumeClaim",
        "",
        "persistentvolumeclaims",
        true,
        &["pvc"],
    ),
    ("Deployment", "apps", "deployments", true, &["deploy"]),
    ("StatefulSet", "apps", "statefulsets", true, &["sts"]),
    ("DaemonSet", "apps", "daemonsets", true, &["ds"]),
    ("ReplicaSet", "apps", "replicasets", true, &["rs"]),
    (
        "ControllerRevision",
        "apps",
        "controllerrevisions",
        true,
        &[],
    ),
    ("Job", "batch", "jobs", true, &[]),
    ("CronJob", "batch", "cronjobs", true, &["cj"]),
    ("Pod", "", "pods", true, &["po"]),
    ("Service", "", "services", true, &["svc"]),
    ("Ingress", "networking.k8s.io", "ingresses", true, &["ing"]),
    (
        "NetworkPolicy",
        "networking.k8s.io",
        "networkpolicies",
        true,
        &["netpol"],
    ),
    (
        "HorizontalPodAutoscaler",
        "autoscaling",
        "horizontalpodautoscalers",
        true,
        &["hpa"],
    ),
    (
        "PodDisruptionBudget",
        "policy",
        "poddisruptionbudgets",
        true,
        &["pdb"],
    ),
    ("Lease", "coordination.k8s.io", "leases", true, &[]),
];

/// The API group, resource (plural) and scope of `kind` of `group`; a kind this table does
/// not know is taken as namespaced, its plural its lower-case name with an `s`.
fn resource_of(group: &str, kind: &str) -> (String, String, bool) {
    match KINDS.iter().find(|k| k.0 == kind && k.1 == group) {
        Some(k) => (k.1.to_string(), k.2.to_string(), k.3),
        None => (
            group.to_string(),
            format!("{}s", kind.to_ascii_lowercase()),
            true,
        ),
    }
}

/// A kind as an export names it: `Deployment`, `deployments`, `deploy`, or
/// `Kind.version.group`.
fn exported(name: &str) -> (String, String, bool) {
    let n = name.to_ascii_lowercase();
    if let Some(k) = KINDS
        .iter()
        .find(|k| k.0.eq_ignore_ascii_case(&n) || k.2 == n || k.4.contains(&n.as_str()))
    {
        return (k.1.to_string(), k.2.to_string(), k.3);
    }
    match name.split_once('.') {
        Some((kind, rest)) => {
            let group = rest.split_once('.').map_or(rest, |(_, g)| g);
            resource_of(group, kind)
        }
        None => resource_of("", name),
    }
}

fn workload_resource(kind: WorkloadKind) -> &'static str {
    match kind {
        WorkloadKind::Deployment => "deployments",
        WorkloadKind::StatefulSet => "statefulsets",
    }
}

/// Verbs in the order `kubectl` lists them.
const VERBS: &[&str] = &[
    "get", "list", "watch", "create", "update", "patch", "delete",
];

/// A rule's API group, resource and names (`None`: any).
type RuleKey = (String, String, Option<Vec<String>>);

/// (API group, resource, verb) -> the names it is limited to (`None`: any).
#[derive(Debug, Default)]
struct Rules(BTreeMap<(String, String, &'static str), Option<BTreeSet<String>>>);

impl Rules {
    fn grant(&mut self, group: &str, resource: &str, verb: &'static str, name: Option<&str>) {
        let key = (group.to_string(), resource.to_string(), verb);
        match (self.0.get_mut(&key), name) {
            (Some(Some(names)), Some(n)) => {
                names.insert(n.to_string());
            }
            (Some(slot), None) => *slot = None,
            (Some(None), Some(_)) => {}
            (None, n) => {
                self.0
                    .insert(key, n.map(|n| BTreeSet::from([n.to_string()])));
            }
        }
    }

    /// The rules: verbs together where group, resource and names agree.
    fn to_json(&self) -> Vec<Value> {
        let mut by: BTreeMap<RuleKey, BTreeSet<&'static str>> = BTreeMap::new();
        for ((g, r, v), names) in &self.0 {
            let names = names.as_ref().map(|s| s.iter().cloned().collect());
            by.entry((g.clone(), r.clone(), names))
                .or_default()
                .insert(v);
        }
        by.into_iter()
            .map(|((g, r, names), verbs)| {
                let verbs: Vec<&str> = VERBS
                    .iter()
                    .copied()
                    .filter(|v| verbs.contains(v))
                    .collect();
                let mut rule = json!({ "apiGroups": [g], "resources": [r], "verbs": verbs });
                if let (Some(n), Some(obj)) = (names, rule.as_object_mut()) {
                    obj.insert("resourceNames".into(), json!(n));
                }
                rule
            })
            .collect()
    }
}

#[derive(Debug, Default)]
struct Acc {
    namespaced: BTreeMap<(String, String), Rules>,
    cluster: BTreeMap<String, Rules>,
}

impl Acc {
    fn ns(&mut self, cluster: &str, namespace: &str) -> &mut Rules {
        self.namespaced
            .entry((cluster.to_string(), namespace.to_string()))
            .or_default()
    }

    fn namespace_created(&mut self, cluster: &str, namespace: &str) {
        let c = self.cluster.entry(cluster.to_string()).or_default();
        c.grant("", "namespaces", "get", Some(namespace));
        c.grant("", "namespaces", "create", None);
    }

    fn add(&mut self, op: O, r: &Resource) {
        match r {
            // Nodes are cluster-scoped, and a drain evicts pods of any namespace.
            Resource::Nodes { cluster, .. } => {
                let c = self.cluster.entry(cluster.clone()).or_default();
                match op {
                    O::ListNodes => {
                        c.grant("", "nodes", "list", None);
                        c.grant("", "pods", "list", None);
                    }
                    O::CordonNode => c.grant("", "nodes", "patch", None),
                    O::DrainNode => {
                        c.grant("", "nodes", "get", None);
                        c.grant("", "pods", "list", None);
                        c.grant("", "pods/eviction", "create", None);
                    }
                    _ => {}
                }
            }
            Resource::Workload {
                cluster,
                namespace,
                workload,
                name,
            } => {
                let res = workload_resource(*workload);
                let sts = *workload == WorkloadKind::StatefulSet;
                let rules = self.ns(cluster, namespace);
                let policy = dr_k8s_policy_name(name);
                match op {
                    O::Scale => rules.grant("apps", &format!("{res}/scale"), "patch", Some(name)),
                    O::RolloutRestart | O::RolloutUndo | O::SetEnv | O::SetImage => {
                        rules.grant("apps", res, "get", Some(name));
                        rules.grant("apps", res, "patch", Some(name));
                        if sts && matches!(op, O::RolloutRestart | O::RolloutUndo) {
                            rules.grant("apps", "controllerrevisions", "list", None);
                        }
                        if !sts && op == O::RolloutUndo {
                            rules.grant("apps", "replicasets", "list", None);
                        }
                    }
                    O::RolloutStatus => {
                        rules.grant("apps", res, "get", Some(name));
                        if sts {
                            rules.grant("apps", "controllerrevisions", "get", None);
                        }
                        rules.grant("networking.k8s.io", "networkpolicies", "get", Some(&policy));
                    }
                    O::IsolateWorkload => {
                        rules.grant("apps", res, "get", Some(name));
                        rules.grant(
                            "networking.k8s.io",
                            "networkpolicies",
                            "patch",
                            Some(&policy),
                        );
                        rules.grant(
                            "networking.k8s.io",
                            "networkpolicies",
                            "create",
                            Some(&policy),
                        );
                    }
                    _ => {}
                }
            }
            Resource::Secret {
                cluster,
                namespace,
                name,
            } => {
                let rules = self.ns(cluster, namespace);
                match op {
                    O::PatchSecret => {
                        rules.grant("", "secrets", "patch", Some(name));
                        // A secret that does not exist yet is created (a POST names no
                        // object RBAC could check), with its namespace if that is missing.
                        rules.grant("", "secrets", "create", None);
                        self.namespace_created(cluster, namespace);
                    }
                    O::ReadSecret => rules.grant("", "secrets", "get", Some(name)),
                    _ => {}
                }
            }
            Resource::Applied {
                cluster,
                namespace,
                objects,
            } if op == O::Apply => {
                self.namespace_created(cluster, namespace);
                for o in objects {
                    let group = o.api_version.rsplit_once('/').map_or("", |(g, _)| g);
                    let (g, res, namespaced) = resource_of(group, &o.kind);
                    let rules = if namespaced {
                        self.ns(cluster, namespace)
                    } else {
                        self.cluster.entry(cluster.clone()).or_default()
                    };
                    // Server-side apply: a PATCH, which creates the object when it is missing
                    // (authorised as a create of that name).
                    rules.grant(&g, &res, "patch", Some(&o.name));
                    rules.grant(&g, &res, "create", Some(&o.name));
                }
            }
            Resource::Exported {
                cluster,
                namespace,
                kinds,
            } if op == O::Export => {
                let names: Vec<String> = if kinds.is_empty() {
                    DEFAULT_EXPORT.iter().map(|k| k.to_string()).collect()
                } else {
                    kinds.clone()
                };
                for k in names {
                    let (g, res, namespaced) = exported(&k);
                    let rules = if namespaced {
                        self.ns(cluster, namespace)
                    } else {
                        self.cluster.entry(cluster.clone()).or_default()
                    };
                    rules.grant(&g, &res, "list", None);
                }
            }
            _ => {}
        }
    }
}

/// The isolation NetworkPolicy of workload `name` (`dr-k8s`'s `dr-isolate-{name}`).
fn dr_k8s_policy_name(name: &str) -> String {
    format!("dr-isolate-{name}")
}

/// The RBAC verbs (with group and resource) that `op` needs on a workload of `kind`: what a
/// test checks a refusal against.
///
/// # Examples
///
/// ```
/// use dr_core::provider::{Operation, WorkloadKind};
/// let rules = dr_providers::permissions::k8s::workload_rules(Operation::Scale, WorkloadKind::Deployment);
/// assert_eq!(rules, [("apps".to_string(), "deployments/scale".to_string(), "patch")]);
/// ```
pub fn workload_rules(op: O, kind: WorkloadKind) -> Vec<(String, String, &'static str)> {
    let mut acc = Acc::default();
    acc.add(
        op,
        &Resource::Workload {
            cluster: String::new(),
            namespace: String::new(),
            workload: kind,
            name: "w".into(),
        },
    );
    acc.namespaced
        .values()
        .flat_map(|r| r.0.keys().cloned())
        .filter(|(g, _, _)| g == "apps")
        .collect()
}

/// The RBAC objects of `needs` (the calls served by Kubernetes), Roles first.
pub(crate) fn roles(needs: &[&Need], plan: &str) -> Vec<Value> {
    let mut acc = Acc::default();
    for n in needs {
        if let (Some(op), Role::Cluster { .. }) = (n.provider_operation(), &n.role) {
            for r in &n.resources {
                acc.add(op, r);
            }
        }
    }
    let meta = |cluster: &str, namespace: Option<&str>| {
        let mut m = json!({
            "name": format!("dr-{}-{}", slug(plan), slug(cluster)),
            "labels": { "app.kubernetes.io/managed-by": "dr-orchestrator" },
            "annotations": { "dr-orchestrator/cluster": cluster, "dr-orchestrator/plan": plan },
        });
        if let (Some(ns), Some(obj)) = (namespace, m.as_object_mut()) {
            obj.insert("namespace".into(), json!(ns));
        }
        m
    };
    let mut out = Vec::new();
    for ((cluster, namespace), rules) in &acc.namespaced {
        out.push(json!({
            "apiVersion": RBAC_API_VERSION,
            "kind": "Role",
            "metadata": meta(cluster, Some(namespace)),
            "rules": rules.to_json(),
        }));
    }
    for (cluster, rules) in &acc.cluster {
        out.push(json!({
            "apiVersion": RBAC_API_VERSION,
            "kind": "ClusterRole",
            "metadata": meta(cluster, None),
            "rules": rules.to_json(),
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_for_any_name_widens_one_for_names_and_never_narrows() {
        let mut r = Rules::default();
        r.grant("apps", "deployments", "get", Some("api"));
        r.grant("apps", "deployments", "get", Some("web"));
        r.grant("", "secrets", "create", None);
        r.grant("", "secrets", "create", Some("s"));
        let rules = r.to_json();
        assert_eq!(
            rules,
            vec![
                json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}),
                json!({"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"],
                       "resourceNames": ["api", "web"]}),
            ]
        );
        r.grant("apps", "deployments", "get", None);
        assert!(r.to_json()[1].get("resourceNames").is_none());
    }

    #[test]
    fn statefulset_rollouts_read_their_controller_revisions() {
        let undo = workload_rules(O::RolloutUndo, WorkloadKind::StatefulSet);
        assert!(undo.contains(&("apps".into(), "controllerrevisions".into(), "list")));
        assert!(undo.contains(&("apps".into(), "statefulsets".into(), "patch")));
        let undo = workload_rules(O::RolloutUndo, WorkloadKind::Deployment);
        assert!(undo.contains(&("apps".into(), "replicasets".into(), "list")));
    }

    #[test]
    fn exported_kinds_resolve_as_kubectl_names_them() {
        assert_eq!(exported("deploy").1, "deployments");
        assert_eq!(exported("Secret"), ("".into(), "secrets".into(), true));
        assert_eq!(
            exported("Certificate.v1.cert-manager.io"),
            ("cert-manager.io".into(), "certificates".into(), true)
        );
    }
}
