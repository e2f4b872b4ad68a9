//! The provider traits: what a cloud (or the simulated cloud) must offer for recovery.
//!
//! Every trait is object-safe and async, held as `Arc<dyn …>`, reports the operations it
//! supports ([`Capabilities`]) and returns [`Error::NotSupported`](crate::Error::NotSupported)
//! for the others, never a panic or a silent no-op.

mod caches;
mod cdn;
mod cluster;
mod database;
mod dns;
mod health;
mod http_probe;
mod lease;
mod lease_store;
mod load_balancer;
mod nodes;
mod secrets;
mod store;
pub(crate) use store::check_content;
mod volumes;

pub use caches::{
    CacheBackup, CacheBackupState, CacheCluster, CacheRestore, CacheState, DynCacheRestore,
};
pub use cdn::{CdnDistribution, CdnOrigin, DynCdnOrigin};
pub use cluster::{
    ClusterDeployer, DynClusterDeployer, Manifest, NodeInfo, RolloutStatus, WorkloadKind,
    WorkloadRef, NODE_GROUP_LABEL,
};
pub use database::{
    DatabaseReplica, DbRef, DbRole, DbSnapshot, DbState, DbStatus, DynDatabaseReplica, RestorePoint,
};
pub use dns::{DnsChange, DnsFailover, DnsRecord, DynDnsFailover, HealthStatus, Routing};
pub use health::{DynHealthProbe, DynNotifier, HealthProbe, Notification, Notifier, Severity};
pub use http_probe::{
    HttpCheck, HttpProbe, HttpProbeBuilder, ProbeOutcome, StatusRange, BODY_MATCH_CAP,
    DEFAULT_MAX_REDIRECTS, DEFAULT_TIMEOUT,
};
pub use lease::{InMemoryLease, Lease, LeaseGuard};
pub use lease_store::StoreLease;
pub use load_balancer::{DynLoadBalancer, LbTarget, LoadBalancer, TargetHealth, TargetState};
pub use nodes::{
    DynNodeCapacity, NodeCapacity, NodeGroupRef, NodeGroupState, NodeGroupStatus, NodeScaling,
};
pub use secrets::{DynSecretManager, SecretManager, SecretValue};
pub use store::{
    copy_between, sha256_stream, ByteStream, DynSnapshotStore, GetResult, ObjectMeta, Precondition,
    PutOptions, SnapshotStore, SnapshotStoreExt, Version,
};
pub use volumes::{DynVolumeSnapshots, VolumeSnapshot, VolumeSnapshotState, VolumeSnapshots};

use std::collections::BTreeSet;

/// An operation a provider may or may not support.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum Operation {
    // SnapshotStore
    Put,
    Get,
    Head,
    List,
    Delete,
    Copy,
    PutIf,
    GetVersioned,
    // DnsFailover
    GetRecord,
    SwitchRecord,
    WaitChange,
    HealthCheckStatus,
    // ClusterDeployer
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
    // DatabaseReplica
    Describe,
    CreateSnapshot,
    DescribeSnapshot,
    ListSnapshots,
    CopySnapshot,
    RestoreSnapshot,
    RestorePointInTime,
    Promote,
    Reboot,
    CreateReplica,
    CheckData,
    // Probes and notifications
    Probe,
    Notify,
    // CdnOrigin
    DescribeDistribution,
    SetOrigin,
    // LoadBalancer
    TargetHealth,
    RegisterTargets,
    DeregisterTargets,
    // NodeCapacity
    DescribeNodeGroup,
    ScaleNodeGroup,
    // VolumeSnapshots
    CreateVolumeSnapshot,
    DescribeVolumeSnapshot,
    FindVolumeSnapshots,
    // SecretManager
    GetSecretValue,
    PutSecretValue,
    // CacheRestore
    DescribeCache,
    ListCacheBackups,
    RestoreCache,
}

impl Operation {
    /// The operation's name as used in errors and dry-run listings (`switch_record`).
    pub fn name(self) -> &'static str {
        use Operation::*;
        match self {
            Put => "put",
            Get => "get",
            Head => "head",
            List => "list",
            Delete => "delete",
            Copy => "copy",
            PutIf => "put_if",
            GetVersioned => "get_versioned",
            GetRecord => "get_record",
            SwitchRecord => "switch_record",
            WaitChange => "wait_change",
            HealthCheckStatus => "health_check_status",
            Apply => "apply",
            Scale => "scale",
            RolloutRestart => "rollout_restart",
            RolloutUndo => "rollout_undo",
            SetImage => "set_image",
            SetEnv => "set_env",
            PatchSecret => "patch_secret",
            ReadSecret => "read_secret",
            RolloutStatus => "rollout_status",
            IsolateWorkload => "isolate_workload",
            DeletePod => "delete_pod",
            Export => "export",
            ListNodes => "list_nodes",
            CordonNode => "cordon_node",
            DrainNode => "drain_node",
            Describe => "describe",
            CreateSnapshot => "create_snapshot",
            DescribeSnapshot => "describe_snapshot",
            ListSnapshots => "list_snapshots",
            CopySnapshot => "copy_snapshot",
            RestoreSnapshot => "restore_snapshot",
            RestorePointInTime => "restore_point_in_time",
            Promote => "promote",
            Reboot => "reboot",
            CreateReplica => "create_replica",
            CheckData => "check_data",
            Probe => "probe",
            Notify => "notify",
            DescribeDistribution => "describe_distribution",
            SetOrigin => "set_origin",
            TargetHealth => "target_health",
            RegisterTargets => "register_targets",
            DeregisterTargets => "deregister_targets",
            DescribeNodeGroup => "describe_node_group",
            ScaleNodeGroup => "scale_node_group",
            CreateVolumeSnapshot => "create_volume_snapshot",
            DescribeVolumeSnapshot => "describe_volume_snapshot",
            FindVolumeSnapshots => "find_volume_snapshots",
            GetSecretValue => "get_secret_value",
            PutSecretValue => "put_secret_value",
            DescribeCache => "describe_cache",
            ListCacheBackups => "list_cache_backups",
            RestoreCache => "restore_cache",
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The set of operations a provider supports.
///
/// # Examples
///
/// ```
/// use dr_core::provider::{Capabilities, Operation};
///
/// let caps = Capabilities::of([Operation::Put, Operation::Get]);
/// assert!(caps.supports(Operation::Get));
/// assert!(!caps.supports(Operation::Copy));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Capabilities(BTreeSet<Operation>);

impl Capabilities {
    /// Capabilities listing exactly `ops`.
    pub fn of(ops: impl IntoIterator<Item = Operation>) -> Self {
        Capabilities(ops.into_iter().collect())
    }

    /// Everything a [`SnapshotStore`] can do: put, get, head, list, delete, copy, and the
    /// conditional writes and versioned reads (`put_if`, `get_versioned`).
    pub fn full_store() -> Self {
        use Operation::*;
        Self::of([Put, Get, Head, List, Delete, Copy, PutIf, GetVersioned])
    }

    /// Whether `op` is supported.
    pub fn supports(&self, op: Operation) -> bool {
        self.0.contains(&op)
    }

    /// The supported operations, in a stable order.
    pub fn iter(&self) -> impl Iterator<Item = Operation> + '_ {
        self.0.iter().copied()
    }
}
