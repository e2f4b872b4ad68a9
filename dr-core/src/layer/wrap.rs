//! [`Layered`]: a provider wrapped in layers, implementing the provider's own trait.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::time::Instant;

use super::{CallInfo, Guard, Layer};
use crate::provider::ByteStream;
use crate::provider::{
    CacheBackup, CacheCluster, CacheRestore, CdnDistribution, CdnOrigin, LbTarget, LoadBalancer,
    NodeCapacity, NodeGroupRef, NodeGroupStatus, NodeScaling, SecretManager, SecretValue,
    TargetHealth, VolumeSnapshot, VolumeSnapshots,
};
use crate::provider::{
    Capabilities, ClusterDeployer, DatabaseReplica, DbRef, DbSnapshot, DbStatus, DnsChange,
    DnsFailover, DnsRecord, GetResult, HealthProbe, HealthStatus, Manifest, NodeInfo, Notification,
    Notifier, ObjectMeta, Operation as O, Precondition, PutOptions, RestorePoint, RolloutStatus,
    SnapshotStore, Version, WorkloadRef,
};
use crate::{Result, Secret};

/// A provider of type `P` (`dyn DatabaseReplica`, `dyn SnapshotStore`, …) whose every call
/// goes through `layers`, outermost first. It implements `P`'s trait, so it can stand
/// wherever `P` does.
#[derive(Debug)]
pub struct Layered<P: ?Sized> {
    inner: Arc<P>,
    layers: Vec<Arc<dyn Layer>>,
}

impl<P: ?Sized> Layered<P> {
    /// `inner` wrapped in `layer` (the only layer).
    pub fn new(inner: Arc<P>, layer: Arc<dyn Layer>) -> Self {
        Layered {
            inner,
            layers: vec![layer],
        }
    }

    /// `inner` wrapped in `layers`, outermost first.
    pub fn with_layers(inner: Arc<P>, layers: Vec<Arc<dyn Layer>>) -> Self {
        Layered { inner, layers }
    }

    /// Runs `call` through every layer: `before` outermost first (a refusal stops there and
    /// is the outcome), the call, then `after` innermost first, for the layers it went through.
    async fn through<T, F>(&self, info: CallInfo, call: F) -> Result<T>
    where
        F: std::future::Future<Output = Result<T>>,
    {
        let mut guards: Vec<Guard> = Vec::with_capacity(self.layers.len());
        let start = Instant::now();
        let mut refused = None;
        for layer in &self.layers {
            match layer.before(&info).await {
                Ok(g) => guards.push(g),
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        let mut result = match refused {
            None => match self.layers.iter().find_map(|l| l.span(&info)) {
                Some(span) => tracing::Instrument::instrument(call, span).await,
                None => call.await,
            },
            Some(e) => Err(e),
        };
        let elapsed = start.elapsed();
        for layer in self.layers[..guards.len()].iter().rev() {
            if let Some(e) = layer.after(&info, result.as_ref().map(|_| ()), elapsed) {
                result = Err(e);
            }
        }
        drop(guards);
        result
    }
}

fn info(
    role: &'static str,
    key: &str,
    provider: &str,
    operation: O,
    target: impl Into<String>,
) -> CallInfo {
    CallInfo {
        role,
        key: key.to_string(),
        provider: provider.to_string(),
        operation,
        target: target.into(),
    }
}

#[async_trait]
impl DatabaseReplica for Layered<dyn DatabaseReplica> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn describe(&self, db: &DbRef) -> Result<DbStatus> {
        let i = info(
            "database",
            &db.region,
            self.name(),
            O::Describe,
            db.to_string(),
        );
        self.through(i, self.inner.describe(db)).await
    }
    async fn create_snapshot(&self, db: &DbRef, snapshot_id: &str) -> Result<DbSnapshot> {
        let i = info(
            "database",
            &db.region,
            self.name(),
            O::CreateSnapshot,
            format!("{db} as {snapshot_id}"),
        );
        self.through(i, self.inner.create_snapshot(db, snapshot_id))
            .await
    }
    async fn describe_snapshot(&self, region: &str, snapshot_id: &str) -> Result<DbSnapshot> {
        let i = info(
            "database",
            region,
            self.name(),
            O::DescribeSnapshot,
            format!("{region}/{snapshot_id}"),
        );
        self.through(i, self.inner.describe_snapshot(region, snapshot_id))
            .await
    }
    async fn list_snapshots(&self, db: &DbRef, region: &str) -> Result<Vec<DbSnapshot>> {
        let i = info(
            "database",
            region,
            self.name(),
            O::ListSnapshots,
            format!("{db} in {region}"),
        );
        self.through(i, self.inner.list_snapshots(db, region)).await
    }
    async fn copy_snapshot(
        &self,
        snapshot: &DbSnapshot,
        to_region: &str,
        new_id: &str,
    ) -> Result<DbSnapshot> {
        let i = info(
            "database",
            to_region,
            self.name(),
            O::CopySnapshot,
            format!("{} to {to_region}/{new_id}", snapshot.id),
        );
        self.through(i, self.inner.copy_snapshot(snapshot, to_region, new_id))
            .await
    }
    async fn restore_snapshot(&self, snapshot: &DbSnapshot, target: &DbRef) -> Result<DbStatus> {
        let i = info(
            "database",
            &target.region,
            self.name(),
            O::RestoreSnapshot,
            target.to_string(),
        );
        self.through(i, self.inner.restore_snapshot(snapshot, target))
            .await
    }
    async fn restore_to_point_in_time(
        &self,
        source: &DbRef,
        target: &DbRef,
        at: RestorePoint,
    ) -> Result<DbStatus> {
        let i = info(
            "database",
            &target.region,
            self.name(),
            O::RestorePointInTime,
            format!("{target} from {source}"),
        );
        self.through(i, self.inner.restore_to_point_in_time(source, target, at))
            .await
    }
    async fn promote(&self, replica: &DbRef) -> Result<DbStatus> {
        let i = info(
            "database",
            &replica.region,
            self.name(),
            O::Promote,
            replica.to_string(),
        );
        self.through(i, self.inner.promote(replica)).await
    }
    async fn reboot(&self, db: &DbRef, force_failover: bool) -> Result<DbStatus> {
        let i = info(
            "database",
            &db.region,
            self.name(),
            O::Reboot,
            db.to_string(),
        );
        self.through(i, self.inner.reboot(db, force_failover)).await
    }
    async fn create_replica(&self, source: &DbRef, replica: &DbRef) -> Result<DbStatus> {
        let i = info(
            "database",
            &replica.region,
            self.name(),
            O::CreateReplica,
            format!("{replica} from {source}"),
        );
        self.through(i, self.inner.create_replica(source, replica))
            .await
    }
    async fn check_data(
        &self,
        db: &DbRef,
        checks: &[crate::plan::DataCheck],
    ) -> Result<Vec<Option<String>>> {
        let i = info(
            "database",
            &db.region,
            self.name(),
            O::CheckData,
            format!("{db} ({} checks)", checks.len()),
        );
        self.through(i, self.inner.check_data(db, checks)).await
    }
}

#[async_trait]
impl DnsFailover for Layered<dyn DnsFailover> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get_record(&self, zone: &str, name: &str) -> Result<DnsRecord> {
        let i = info(
            "dns",
            zone,
            self.name(),
            O::GetRecord,
            format!("{zone}/{name}"),
        );
        self.through(i, self.inner.get_record(zone, name)).await
    }
    async fn get_record_set(
        &self,
        zone: &str,
        name: &str,
        set_id: Option<&str>,
    ) -> Result<DnsRecord> {
        let i = info(
            "dns",
            zone,
            self.name(),
            O::GetRecord,
            format!("{zone}/{name}"),
        );
        self.through(i, self.inner.get_record_set(zone, name, set_id))
            .await
    }
    async fn switch_record(&self, record: &DnsRecord) -> Result<DnsChange> {
        let i = info(
            "dns",
            &record.zone,
            self.name(),
            O::SwitchRecord,
            format!("{}/{}", record.zone, record.name),
        );
        self.through(i, self.inner.switch_record(record)).await
    }
    async fn get_change(&self, change_id: &str) -> Result<DnsChange> {
        let i = info("dns", "", self.name(), O::WaitChange, change_id.to_string());
        self.through(i, self.inner.get_change(change_id)).await
    }
    async fn health_check_status(&self, health_check_id: &str) -> Result<HealthStatus> {
        let i = info(
            "dns",
            "",
            self.name(),
            O::HealthCheckStatus,
            health_check_id.to_string(),
        );
        self.through(i, self.inner.health_check_status(health_check_id))
            .await
    }
}

#[async_trait]
impl ClusterDeployer for Layered<dyn ClusterDeployer> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn apply(&self, cluster: &str, namespace: &str, manifests: &[Manifest]) -> Result<()> {
        let i = info(
            "cluster",
            cluster,
            self.name(),
            O::Apply,
            format!("{cluster}/{namespace}"),
        );
        self.through(i, self.inner.apply(cluster, namespace, manifests))
            .await
    }
    async fn scale(&self, workload: &WorkloadRef, replicas: u32) -> Result<()> {
        let i = info(
            "cluster",
            &workload.cluster,
            self.name(),
            O::Scale,
            workload.to_string(),
        );
        self.through(i, self.inner.scale(workload, replicas)).await
    }
    async fn rollout_restart(&self, workload: &WorkloadRef) -> Result<u64> {
        let i = info(
            "cluster",
            &workload.cluster,
            self.name(),
            O::RolloutRestart,
            workload.to_string(),
        );
        self.through(i, self.inner.rollout_restart(workload)).await
    }
    async fn rollout_undo(&self, workload: &WorkloadRef, revision: Option<u64>) -> Result<u64> {
        let i = info(
            "cluster",
            &workload.cluster,
            self.name(),
            O::RolloutUndo,
            workload.to_string(),
        );
        self.through(i, self.inner.rollout_undo(workload, revision))
            .await
    }
    async fn set_image(&self, workload: &WorkloadRef, container: &str, image: &str) -> Result<()> {
        let i = info(
            "cluster",
            &workload.cluster,
            self.name(),
            O::SetImage,
            workload.to_string(),
        );
        self.through(i, self.inner.set_image(workload, container, image))
            .await
    }
    async fn set_env(&self, workload: &WorkloadRef, env: &BTreeMap<String, String>) -> Result<()> {
        let i = info(
            "cluster",
            &workload.cluster,
            self.name(),
            O::SetEnv,
            workload.to_string(),
        );
        self.through(i, self.inner.set_env(workload, env)).await
    }
    async fn patch_secret(
        &self,
        cluster: &str,
        namespace: &str,
        secret: &str,
        data: &BTreeMap<String, Secret>,
    ) -> Result<()> {
        let i = info(
            "cluster",
            cluster,
            self.name(),
            O::PatchSecret,
            format!("{cluster}/{namespace}/{secret}"),
        );
        self.through(i, self.inner.patch_secret(cluster, namespace, secret, data))
            .await
    }
    async fn read_secret(
        &self,
        cluster: &str,
        namespace: &str,
        secret: &str,
        key: &str,
    ) -> Result<Secret> {
        let i = info(
            "cluster",
            cluster,
            self.name(),
            O::ReadSecret,
            format!("{cluster}/{namespace}/{secret}"),
        );
        self.through(i, self.inner.read_secret(cluster, namespace, secret, key))
            .await
    }
    async fn rollout_status(&self, workload: &WorkloadRef) -> Result<RolloutStatus> {
        let i = info(
            "cluster",
            &workload.cluster,
            self.name(),
            O::RolloutStatus,
            workload.to_string(),
        );
        self.through(i, self.inner.rollout_status(workload)).await
    }
    async fn isolate(&self, workload: &WorkloadRef) -> Result<()> {
        let i = info(
            "cluster",
            &workload.cluster,
            self.name(),
            O::IsolateWorkload,
            workload.to_string(),
        );
        self.through(i, self.inner.isolate(workload)).await
    }
    async fn delete_pod(&self, cluster: &str, namespace: &str, pod: &str) -> Result<()> {
        let i = info(
            "cluster",
            cluster,
            self.name(),
            O::DeletePod,
            format!("{cluster}/{namespace}/{pod}"),
        );
        self.through(i, self.inner.delete_pod(cluster, namespace, pod))
            .await
    }
    async fn export(
        &self,
        cluster: &str,
        namespace: &str,
        kinds: &[String],
    ) -> Result<Vec<Manifest>> {
        let i = info(
            "cluster",
            cluster,
            self.name(),
            O::Export,
            format!("{cluster}/{namespace}"),
        );
        self.through(i, self.inner.export(cluster, namespace, kinds))
            .await
    }
    async fn list_nodes(
        &self,
        cluster: &str,
        label: &str,
        node_group: &str,
    ) -> Result<Vec<NodeInfo>> {
        let i = info(
            "cluster",
            cluster,
            self.name(),
            O::ListNodes,
            format!("{cluster}/nodes {label}={node_group}"),
        );
        self.through(i, self.inner.list_nodes(cluster, label, node_group))
            .await
    }
    async fn cordon_node(&self, cluster: &str, node: &str) -> Result<()> {
        let i = info(
            "cluster",
            cluster,
            self.name(),
            O::CordonNode,
            format!("{cluster}/node/{node}"),
        );
        self.through(i, self.inner.cordon_node(cluster, node)).await
    }
    async fn drain_node(&self, cluster: &str, node: &str) -> Result<Vec<String>> {
        let i = info(
            "cluster",
            cluster,
            self.name(),
            O::DrainNode,
            format!("{cluster}/node/{node}"),
        );
        self.through(i, self.inner.drain_node(cluster, node)).await
    }
}

#[async_trait]
impl SnapshotStore for Layered<dyn SnapshotStore> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn put(&self, key: &str, data: ByteStream, opts: PutOptions) -> Result<ObjectMeta> {
        let i = info("store", self.name(), self.name(), O::Put, key.to_string());
        self.through(i, self.inner.put(key, data, opts)).await
    }
    async fn get(&self, key: &str) -> Result<GetResult> {
        let i = info("store", self.name(), self.name(), O::Get, key.to_string());
        self.through(i, self.inner.get(key)).await
    }
    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        let i = info("store", self.name(), self.name(), O::Head, key.to_string());
        self.through(i, self.inner.head(key)).await
    }
    fn list<'a>(&'a self, prefix: &'a str) -> BoxStream<'a, Result<ObjectMeta>> {
        // The listing is admitted once, before its first page; its pages are the store's.
        let i = info(
            "store",
            self.name(),
            self.name(),
            O::List,
            prefix.to_string(),
        );
        futures::stream::once(async move { self.through(i, async { Ok(()) }).await })
            .flat_map(move |admitted| match admitted {
                Ok(()) => self.inner.list(prefix),
                Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
            })
            .boxed()
    }
    async fn delete(&self, key: &str) -> Result<()> {
        let i = info(
            "store",
            self.name(),
            self.name(),
            O::Delete,
            key.to_string(),
        );
        self.through(i, self.inner.delete(key)).await
    }
    async fn copy(&self, from: &str, to: &str) -> Result<ObjectMeta> {
        let i = info(
            "store",
            self.name(),
            self.name(),
            O::Copy,
            format!("{from} -> {to}"),
        );
        self.through(i, self.inner.copy(from, to)).await
    }
    async fn put_if(
        &self,
        key: &str,
        data: bytes::Bytes,
        condition: Precondition,
    ) -> Result<Version> {
        let i = info("store", self.name(), self.name(), O::PutIf, key.to_string());
        self.through(i, self.inner.put_if(key, data, condition))
            .await
    }
    async fn get_versioned(&self, key: &str) -> Result<Option<(bytes::Bytes, Version)>> {
        let i = info(
            "store",
            self.name(),
            self.name(),
            O::GetVersioned,
            key.to_string(),
        );
        self.through(i, self.inner.get_versioned(key)).await
    }
}

#[async_trait]
impl HealthProbe for Layered<dyn HealthProbe> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn check(&self, target: &str) -> Result<HealthStatus> {
        let i = info("probe", "", self.name(), O::Probe, target.to_string());
        self.through(i, self.inner.check(target)).await
    }
}

#[async_trait]
impl Notifier for Layered<dyn Notifier> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn notify(&self, channel: &str, notification: &Notification) -> Result<()> {
        let i = info(
            "notifier",
            channel,
            self.name(),
            O::Notify,
            channel.to_string(),
        );
        self.through(i, self.inner.notify(channel, notification))
            .await
    }
}

#[async_trait]
impl CdnOrigin for Layered<dyn CdnOrigin> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn describe_distribution(&self, id: &str) -> Result<CdnDistribution> {
        let i = info("cdn", id, self.name(), O::DescribeDistribution, id);
        self.through(i, self.inner.describe_distribution(id)).await
    }
    async fn set_origin(&self, id: &str, origin: &str) -> Result<CdnDistribution> {
        let i = info(
            "cdn",
            id,
            self.name(),
            O::SetOrigin,
            format!("{id} -> {origin}"),
        );
        self.through(i, self.inner.set_origin(id, origin)).await
    }
}

#[async_trait]
impl LoadBalancer for Layered<dyn LoadBalancer> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn target_health(&self, group: &str) -> Result<Vec<TargetHealth>> {
        let i = info("load_balancer", group, self.name(), O::TargetHealth, group);
        self.through(i, self.inner.target_health(group)).await
    }
    async fn register_targets(&self, group: &str, targets: &[LbTarget]) -> Result<()> {
        let i = info(
            "load_balancer",
            group,
            self.name(),
            O::RegisterTargets,
            group,
        );
        self.through(i, self.inner.register_targets(group, targets))
            .await
    }
    async fn deregister_targets(&self, group: &str, targets: &[LbTarget]) -> Result<()> {
        let i = info(
            "load_balancer",
            group,
            self.name(),
            O::DeregisterTargets,
            group,
        );
        self.through(i, self.inner.deregister_targets(group, targets))
            .await
    }
}

#[async_trait]
impl NodeCapacity for Layered<dyn NodeCapacity> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn describe_node_group(&self, group: &NodeGroupRef) -> Result<NodeGroupStatus> {
        let i = info(
            "nodes",
            &group.cluster,
            self.name(),
            O::DescribeNodeGroup,
            group.to_string(),
        );
        self.through(i, self.inner.describe_node_group(group)).await
    }
    async fn scale_node_group(&self, group: &NodeGroupRef, scaling: NodeScaling) -> Result<()> {
        let i = info(
            "nodes",
            &group.cluster,
            self.name(),
            O::ScaleNodeGroup,
            group.to_string(),
        );
        self.through(i, self.inner.scale_node_group(group, scaling))
            .await
    }
}

#[async_trait]
impl VolumeSnapshots for Layered<dyn VolumeSnapshots> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn create_volume_snapshot(
        &self,
        region: &str,
        volume: &str,
        description: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<VolumeSnapshot> {
        let i = info(
            "volumes",
            region,
            self.name(),
            O::CreateVolumeSnapshot,
            format!("{region}/{volume}"),
        );
        self.through(
            i,
            self.inner
                .create_volume_snapshot(region, volume, description, tags),
        )
        .await
    }
    async fn describe_volume_snapshot(&self, region: &str, id: &str) -> Result<VolumeSnapshot> {
        let i = info(
            "volumes",
            region,
            self.name(),
            O::DescribeVolumeSnapshot,
            format!("{region}/{id}"),
        );
        self.through(i, self.inner.describe_volume_snapshot(region, id))
            .await
    }
    async fn find_volume_snapshots(
        &self,
        region: &str,
        volume: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Vec<VolumeSnapshot>> {
        let i = info(
            "volumes",
            region,
            self.name(),
            O::FindVolumeSnapshots,
            format!("{region}/{volume}"),
        );
        self.through(i, self.inner.find_volume_snapshots(region, volume, tags))
            .await
    }
}

#[async_trait]
impl SecretManager for Layered<dyn SecretManager> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get_secret_value(&self, region: &str, name: &str) -> Result<SecretValue> {
        let i = info(
            "secrets",
            region,
            self.name(),
            O::GetSecretValue,
            format!("{region}/{name}"),
        );
        self.through(i, self.inner.get_secret_value(region, name))
            .await
    }
    async fn put_secret_value(
        &self,
        region: &str,
        name: &str,
        value: &Secret,
        version: &str,
    ) -> Result<String> {
        let i = info(
            "secrets",
            region,
            self.name(),
            O::PutSecretValue,
            format!("{region}/{name}"),
        );
        self.through(i, self.inner.put_secret_value(region, name, value, version))
            .await
    }
}

#[async_trait]
impl CacheRestore for Layered<dyn CacheRestore> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn describe_cache(&self, region: &str, id: &str) -> Result<CacheCluster> {
        let i = info(
            "caches",
            region,
            self.name(),
            O::DescribeCache,
            format!("{region}/{id}"),
        );
        self.through(i, self.inner.describe_cache(region, id)).await
    }
    async fn list_cache_backups(&self, region: &str, cache: &str) -> Result<Vec<CacheBackup>> {
        let i = info(
            "caches",
            region,
            self.name(),
            O::ListCacheBackups,
            format!("{region}/{cache}"),
        );
        self.through(i, self.inner.list_cache_backups(region, cache))
            .await
    }
    async fn restore_cache(
        &self,
        region: &str,
        id: &str,
        backup: &str,
        node_type: Option<&str>,
    ) -> Result<CacheCluster> {
        let i = info(
            "caches",
            region,
            self.name(),
            O::RestoreCache,
            format!("{region}/{id}"),
        );
        self.through(i, self.inner.restore_cache(region, id, backup, node_type))
            .await
    }
}
