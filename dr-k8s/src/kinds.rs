//! The kinds this crate knows without discovery, their scope and their restore phase.

use kube::core::{ApiResource, GroupVersionKind};

/// When a kind is restored: earlier phases first, so that what an object refers to exists
/// before it (namespaces, then CRDs, configuration and secrets, storage, workloads, and
/// last what routes traffic to workloads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RestorePhase {
    /// Namespaces.
    Namespaces,
    /// CustomResourceDefinitions.
    Definitions,
    /// ConfigMaps, Secrets, ServiceAccounts, RBAC.
    Config,
    /// PersistentVolumeClaims and other storage.
    Storage,
    /// Deployments, StatefulSets, DaemonSets, Jobs, CronJobs.
    Workloads,
    /// Services, Ingresses, NetworkPolicies, autoscalers, disruption budgets.
    Services,
    /// Anything else (custom resources), last.
    Other,
}

/// A built-in kind.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KnownKind {
    pub(crate) kind: &'static str,
    pub(crate) group: &'static str,
    pub(crate) version: &'static str,
    pub(crate) plural: &'static str,
    pub(crate) namespaced: bool,
    pub(crate) phase: RestorePhase,
    pub(crate) short: &'static [&'static str],
}

impl KnownKind {
    /// The `ApiResource` of this kind at `version` (the manifest's, or the table's).
    pub(crate) fn api_resource(&self, version: Option<&str>) -> ApiResource {
        let gvk = GroupVersionKind::gvk(self.group, version.unwrap_or(self.version), self.kind);
        ApiResource::from_gvk_with_plural(&gvk, self.plural)
    }
}

macro_rules! k {
    ($kind:literal, $group:literal, $version:literal, $plural:literal, $ns:literal, $phase:ident, [$($s:literal),*]) => {
        KnownKind {
            kind: $kind,
            group: $group,
            version: $version,
            plural: $plural,
            namespaced: $ns,
            phase: RestorePhase::$phase,
            short: &[$($s),*],
        }
    };
}

/// Built-in kinds, in restore order.
pub(crate) const KNOWN: &[KnownKind] = &[
    k!(
        "Namespace",
        "",
        "v1",
        "namespaces",
        false,
        Namespaces,
        ["ns"]
    ),
    k!(
        "CustomResourceDefinition",
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        false,
        Definitions,
        ["crd", "crds"]
    ),
    k!(
        "ServiceAccount",
        "",
        "v1",
        "serviceaccounts",
        true,
        Config,
        ["sa"]
    ),
    k!("ConfigMap", "", "v1", "configmaps", true, Config, ["cm"]),
    k!("Secret", "", "v1", "secrets", true, Config, []),
    k!(
        "Role",
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        true,
        Config,
        []
    ),
    k!(
        "RoleBinding",
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        true,
        Config,
        []
    ),
    k!(
        "ClusterRole",
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        false,
        Config,
        []
    ),
    k!(
        "ClusterRoleBinding",
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        false,
        Config,
        []
    ),
    k!(
        "StorageClass",
        "storage.k8s.io",
        "v1",
        "storageclasses",
        false,
        Storage,
        ["sc"]
    ),
    k!(
        "PersistentVolume",
        "",
        "v1",
        "persistentvolumes",
        false,
        Storage,
        ["pv"]
    ),
    k!(
        "PersistentVolumeClaim",
        "",
        "v1",
        "persistentvolumeclaims",
        true,
        Storage,
        ["pvc"]
    ),
    k!(
        "Deployment",
        "apps",
        "v1",
        "deployments",
        true,
        Workloads,
        ["deploy"]
    ),
    k!(
        "StatefulSet",
        "apps",
        "v1",
        "statefulsets",
        true,
        Workloads,
        ["sts"]
    ),
    k!(
        "DaemonSet",
        "apps",
        "v1",
        "daemonsets",
        true,
        Workloads,
        ["ds"]
    ),
    k!(
        "ReplicaSet",
        "apps",
        "v1",
        "replicasets",
        true,
        Workloads,
        ["rs"]
    ),
    k!(
        "ControllerRevision",
        "apps",
        "v1",
        "controllerrevisions",
        true,
        Other,
        []
    ),
    k!("Job", "batch", "v1", "jobs", true, Workloads, []),
    k!(
        "CronJob",
        "batch",
        "v1",
        "cronjobs",
        true,
        Workloads,
        ["cj"]
    ),
    k!("Pod", "", "v1", "pods", true, Workloads, ["po"]),
    k!("Service", "", "v1", "services", true, Services, ["svc"]),
    k!(
        "Ingress",
        "networking.k8s.io",
        "v1",
        "ingresses",
        true,
        Services,
        ["ing"]
    ),
    k!(
        "NetworkPolicy",
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        true,
        Services,
        ["netpol"]
    ),
    k!(
        "HorizontalPodAutoscaler",
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        true,
        Services,
        ["hpa"]
    ),
    k!(
        "PodDisruptionBudget",
        "policy",
        "v1",
        "poddisruptionbudgets",
        true,
        Services,
        ["pdb"]
    ),
    k!(
        "Lease",
        "coordination.k8s.io",
        "v1",
        "leases",
        true,
        Other,
        []
    ),
];

/// The kinds exported when none are named: what `kubectl get all,configmaps,secrets,ingress,pvc`
/// covers, without the objects controllers recreate (ReplicaSets, Pods).
pub(crate) const DEFAULT_EXPORT: &[&str] = &[
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

/// The built-in kind `group`/`kind`.
pub(crate) fn by_group_kind(group: &str, kind: &str) -> Option<&'static KnownKind> {
    KNOWN.iter().find(|k| k.group == group && k.kind == kind)
}

/// The built-in kind named `name` as kubectl accepts it: `Deployment`, `deployment`,
/// `deployments`, `deploy`.
pub(crate) fn by_name(name: &str) -> Option<&'static KnownKind> {
    let n = name.to_ascii_lowercase();
    KNOWN
        .iter()
        .find(|k| k.kind.eq_ignore_ascii_case(&n) || k.plural == n || k.short.contains(&n.as_str()))
}

/// The restore phase of `kind` (group ignored: custom kinds are [`RestorePhase::Other`]).
pub fn restore_phase(kind: &str) -> RestorePhase {
    KNOWN
        .iter()
        .find(|k| k.kind == kind)
        .map_or(RestorePhase::Other, |k| k.phase)
}

/// Splits `apiVersion` into group and version (`apps/v1`, `v1`).
pub(crate) fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_phases() {
        for n in ["Deployment", "deployment", "deployments", "deploy"] {
            assert_eq!(by_name(n).map(|k| k.kind), Some("Deployment"));
        }
        assert_eq!(
            by_name("pvc").map(|k| k.plural),
            Some("persistentvolumeclaims")
        );
        assert!(by_name("widgets").is_none());
        assert!(restore_phase("Namespace") < restore_phase("CustomResourceDefinition"));
        assert!(restore_phase("CustomResourceDefinition") < restore_phase("Secret"));
        assert!(restore_phase("Secret") < restore_phase("PersistentVolumeClaim"));
        assert!(restore_phase("PersistentVolumeClaim") < restore_phase("Deployment"));
        assert!(restore_phase("Deployment") < restore_phase("Service"));
        assert_eq!(restore_phase("Widget"), RestorePhase::Other);
        for k in DEFAULT_EXPORT {
            assert!(by_name(k).is_some(), "{k}");
        }
        assert_eq!(split_api_version("apps/v1"), ("apps", "v1"));
        assert_eq!(split_api_version("v1"), ("", "v1"));
    }
}
