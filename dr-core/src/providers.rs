//! The set of providers a run uses, resolved per region, cluster, store and channel.

use std::collections::HashMap;
use std::sync::Arc;

use crate::layer::{Layer, Layered};
use crate::provider::{
    CacheRestore, CdnOrigin, ClusterDeployer, DatabaseReplica, DnsFailover, HealthProbe,
    LoadBalancer, NodeCapacity, Notifier, SecretManager, SnapshotStore, VolumeSnapshots,
};
use crate::{Error, Result};

/// One provider per role, with overrides per region (databases), cluster, store name, DNS
/// zone or notification channel. A plan can so address an RDS primary in one region and a
/// simulated database in another, or two Kubernetes clusters with a client each.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use dr_core::Providers;
/// use dr_core::sim::SimCloud;
/// use dr_core::store::InMemoryStore;
///
/// let cloud = SimCloud::new(42);
/// let providers = Providers::new()
///     .with_database(cloud.database())
///     .with_dns(cloud.dns())
///     .with_cluster(cloud.cluster())
///     .with_store("backups", Arc::new(InMemoryStore::new()));
/// assert!(providers.store("backups").is_ok());
/// assert!(providers.store("elsewhere").is_err());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Providers {
    database: Option<Arc<dyn DatabaseReplica>>,
    database_by_region: HashMap<String, Arc<dyn DatabaseReplica>>,
    dns: Option<Arc<dyn DnsFailover>>,
    dns_by_zone: HashMap<String, Arc<dyn DnsFailover>>,
    cluster: Option<Arc<dyn ClusterDeployer>>,
    cluster_by_name: HashMap<String, Arc<dyn ClusterDeployer>>,
    stores: HashMap<String, Arc<dyn SnapshotStore>>,
    probe: Option<Arc<dyn HealthProbe>>,
    notifier: Option<Arc<dyn Notifier>>,
    notifier_by_channel: HashMap<String, Arc<dyn Notifier>>,
    cdn: Routed<dyn CdnOrigin>,
    load_balancer: Routed<dyn LoadBalancer>,
    nodes: Routed<dyn NodeCapacity>,
    volumes: Routed<dyn VolumeSnapshots>,
    secrets: Routed<dyn SecretManager>,
    caches: Routed<dyn CacheRestore>,
}

/// A default provider of one role and overrides by key (distribution, target group,
/// cluster, region).
#[derive(Debug)]
struct Routed<P: ?Sized> {
    default: Option<Arc<P>>,
    by_key: HashMap<String, Arc<P>>,
}

impl<P: ?Sized> Default for Routed<P> {
    fn default() -> Self {
        Routed {
            default: None,
            by_key: HashMap::new(),
        }
    }
}

impl<P: ?Sized> Clone for Routed<P> {
    fn clone(&self) -> Self {
        Routed {
            default: self.default.clone(),
            by_key: self.by_key.clone(),
        }
    }
}

impl<P: ?Sized> Routed<P> {
    fn get(&self, key: &str, role: &str, what: &str) -> Result<&Arc<P>> {
        self.by_key
            .get(key)
            .or(self.default.as_ref())
            .ok_or_else(|| missing(role, &format!("{what} {key}")))
    }

    fn map<Q: ?Sized>(self, f: impl Fn(Arc<P>) -> Arc<Q>) -> Routed<Q> {
        Routed {
            default: self.default.map(&f),
            by_key: self.by_key.into_iter().map(|(k, p)| (k, f(p))).collect(),
        }
    }
}

fn missing(role: &str, what: &str) -> Error {
    Error::NotFound {
        provider: "providers".into(),
        resource: format!("{role} provider for {what} (none configured)"),
    }
}

impl Providers {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The default database provider.
    pub fn with_database(mut self, p: Arc<dyn DatabaseReplica>) -> Self {
        self.database = Some(p);
        self
    }

    /// The database provider for one region.
    pub fn with_database_in(
        mut self,
        region: impl Into<String>,
        p: Arc<dyn DatabaseReplica>,
    ) -> Self {
        self.database_by_region.insert(region.into(), p);
        self
    }

    /// The default DNS provider.
    pub fn with_dns(mut self, p: Arc<dyn DnsFailover>) -> Self {
        self.dns = Some(p);
        self
    }

    /// The DNS provider for one zone.
    pub fn with_dns_for_zone(mut self, zone: impl Into<String>, p: Arc<dyn DnsFailover>) -> Self {
        self.dns_by_zone.insert(zone.into(), p);
        self
    }

    /// The default cluster provider.
    pub fn with_cluster(mut self, p: Arc<dyn ClusterDeployer>) -> Self {
        self.cluster = Some(p);
        self
    }

    /// The provider (client) for one named cluster.
    pub fn with_cluster_named(
        mut self,
        cluster: impl Into<String>,
        p: Arc<dyn ClusterDeployer>,
    ) -> Self {
        self.cluster_by_name.insert(cluster.into(), p);
        self
    }

    /// A snapshot store, by the name the plan gives it.
    pub fn with_store(mut self, name: impl Into<String>, p: Arc<dyn SnapshotStore>) -> Self {
        self.stores.insert(name.into(), p);
        self
    }

    /// The health probe.
    pub fn with_probe(mut self, p: Arc<dyn HealthProbe>) -> Self {
        self.probe = Some(p);
        self
    }

    /// The default notifier.
    pub fn with_notifier(mut self, p: Arc<dyn Notifier>) -> Self {
        self.notifier = Some(p);
        self
    }

    /// The notifier for one channel.
    pub fn with_notifier_for(mut self, channel: impl Into<String>, p: Arc<dyn Notifier>) -> Self {
        self.notifier_by_channel.insert(channel.into(), p);
        self
    }

    /// The default CDN provider.
    pub fn with_cdn(mut self, p: Arc<dyn CdnOrigin>) -> Self {
        self.cdn.default = Some(p);
        self
    }

    /// The CDN provider for one distribution (by the id the plan gives it).
    pub fn with_cdn_for(mut self, distribution: impl Into<String>, p: Arc<dyn CdnOrigin>) -> Self {
        self.cdn.by_key.insert(distribution.into(), p);
        self
    }

    /// The default load balancer provider.
    pub fn with_load_balancer(mut self, p: Arc<dyn LoadBalancer>) -> Self {
        self.load_balancer.default = Some(p);
        self
    }

    /// The load balancer provider for one target group (by the name or ARN the plan gives
    /// it).
    pub fn with_load_balancer_for(
        mut self,
        group: impl Into<String>,
        p: Arc<dyn LoadBalancer>,
    ) -> Self {
        self.load_balancer.by_key.insert(group.into(), p);
        self
    }

    /// The default node capacity provider.
    pub fn with_nodes(mut self, p: Arc<dyn NodeCapacity>) -> Self {
        self.nodes.default = Some(p);
        self
    }

    /// The node capacity provider for one cluster (by the plan's cluster name).
    pub fn with_nodes_for(mut self, cluster: impl Into<String>, p: Arc<dyn NodeCapacity>) -> Self {
        self.nodes.by_key.insert(cluster.into(), p);
        self
    }

    /// The default volume snapshot provider.
    pub fn with_volumes(mut self, p: Arc<dyn VolumeSnapshots>) -> Self {
        self.volumes.default = Some(p);
        self
    }

    /// The volume snapshot provider for one region.
    pub fn with_volumes_in(
        mut self,
        region: impl Into<String>,
        p: Arc<dyn VolumeSnapshots>,
    ) -> Self {
        self.volumes.by_key.insert(region.into(), p);
        self
    }

    /// The default secret manager.
    pub fn with_secrets(mut self, p: Arc<dyn SecretManager>) -> Self {
        self.secrets.default = Some(p);
        self
    }

    /// The secret manager for one region.
    pub fn with_secrets_in(mut self, region: impl Into<String>, p: Arc<dyn SecretManager>) -> Self {
        self.secrets.by_key.insert(region.into(), p);
        self
    }

    /// The default managed cache provider.
    pub fn with_caches(mut self, p: Arc<dyn CacheRestore>) -> Self {
        self.caches.default = Some(p);
        self
    }

    /// The managed cache provider for one region.
    pub fn with_caches_in(mut self, region: impl Into<String>, p: Arc<dyn CacheRestore>) -> Self {
        self.caches.by_key.insert(region.into(), p);
        self
    }

    /// Every provider of the set wrapped in `layer` (outside the layers added before). See
    /// [`crate::layer`].
    pub fn layer(self, layer: Arc<dyn Layer>) -> Self {
        fn wrap<P: ?Sized>(p: Arc<P>, l: &Arc<dyn Layer>) -> Arc<Layered<P>> {
            Arc::new(Layered::new(p, l.clone()))
        }
        let l = &layer;
        Providers {
            database: self
                .database
                .map(|p| wrap(p, l) as Arc<dyn DatabaseReplica>),
            database_by_region: self
                .database_by_region
                .into_iter()
                .map(|(k, p)| (k, wrap(p, l) as Arc<dyn DatabaseReplica>))
                .collect(),
            dns: self.dns.map(|p| wrap(p, l) as Arc<dyn DnsFailover>),
            dns_by_zone: self
                .dns_by_zone
                .into_iter()
                .map(|(k, p)| (k, wrap(p, l) as Arc<dyn DnsFailover>))
                .collect(),
            cluster: self.cluster.map(|p| wrap(p, l) as Arc<dyn ClusterDeployer>),
            cluster_by_name: self
                .cluster_by_name
                .into_iter()
                .map(|(k, p)| (k, wrap(p, l) as Arc<dyn ClusterDeployer>))
                .collect(),
            stores: self
                .stores
                .into_iter()
                .map(|(k, p)| (k, wrap(p, l) as Arc<dyn SnapshotStore>))
                .collect(),
            probe: self.probe.map(|p| wrap(p, l) as Arc<dyn HealthProbe>),
            notifier: self.notifier.map(|p| wrap(p, l) as Arc<dyn Notifier>),
            notifier_by_channel: self
                .notifier_by_channel
                .into_iter()
                .map(|(k, p)| (k, wrap(p, l) as Arc<dyn Notifier>))
                .collect(),
            cdn: self.cdn.map(|p| wrap(p, l) as Arc<dyn CdnOrigin>),
            load_balancer: self
                .load_balancer
                .map(|p| wrap(p, l) as Arc<dyn LoadBalancer>),
            nodes: self.nodes.map(|p| wrap(p, l) as Arc<dyn NodeCapacity>),
            volumes: self.volumes.map(|p| wrap(p, l) as Arc<dyn VolumeSnapshots>),
            secrets: self.secrets.map(|p| wrap(p, l) as Arc<dyn SecretManager>),
            caches: self.caches.map(|p| wrap(p, l) as Arc<dyn CacheRestore>),
        }
    }

    /// The database provider for `region`.
    ///
    /// # Errors
    /// `NotFound` when none is configured.
    pub fn database(&self, region: &str) -> Result<&Arc<dyn DatabaseReplica>> {
        self.database_by_region
            .get(region)
            .or(self.database.as_ref())
            .ok_or_else(|| missing("database", &format!("region {region}")))
    }

    /// The DNS provider for `zone`.
    ///
    /// # Errors
    /// `NotFound` when none is configured.
    pub fn dns(&self, zone: &str) -> Result<&Arc<dyn DnsFailover>> {
        self.dns_by_zone
            .get(zone)
            .or(self.dns.as_ref())
            .ok_or_else(|| missing("DNS", &format!("zone {zone}")))
    }

    /// The cluster provider for `cluster`.
    ///
    /// # Errors
    /// `NotFound` when none is configured.
    pub fn cluster(&self, cluster: &str) -> Result<&Arc<dyn ClusterDeployer>> {
        self.cluster_by_name
            .get(cluster)
            .or(self.cluster.as_ref())
            .ok_or_else(|| missing("cluster", &format!("cluster {cluster}")))
    }

    /// The snapshot store named `name`.
    ///
    /// # Errors
    /// `NotFound` when none is configured.
    pub fn store(&self, name: &str) -> Result<&Arc<dyn SnapshotStore>> {
        self.stores
            .get(name)
            .ok_or_else(|| missing("snapshot store", &format!("store {name}")))
    }

    /// The health probe.
    ///
    /// # Errors
    /// `NotFound` when none is configured.
    pub fn probe(&self) -> Result<&Arc<dyn HealthProbe>> {
        self.probe
            .as_ref()
            .ok_or_else(|| missing("health probe", "health checks"))
    }

    /// The notifier for `channel`.
    ///
    /// # Errors
    /// `NotFound` when none is configured.
    pub fn notifier(&self, channel: &str) -> Result<&Arc<dyn Notifier>> {
        self.notifier_by_channel
            .get(channel)
            .or(self.notifier.as_ref())
            .ok_or_else(|| missing("notifier", &format!("channel {channel}")))
    }

    /// The CDN provider for `distribution`.
    ///
    /// # Errors
    /// `NotFound` when none is configured.
    pub fn cdn(&self, distribution: &str) -> Result<&Arc<dyn CdnOrigin>> {
        self.cdn.get(distribution, "CDN", "distribution")
    }

    /// The load balancer provider for target group `group`.
    ///
    /// # Errors
    /// `NotFound` when none is configured.
    pub fn load_balancer(&self, group: &str) -> Result<&Arc<dyn LoadBalancer>> {
        self.load_balancer
            .get(group, "load balancer", "target group")
    }

    /// The node capacity provider for `cluster`.
    ///
    /// # Errors
    /// `NotFound` when none is configured.
    pub fn nodes(&self, cluster: &str) -> Result<&Arc<dyn NodeCapacity>> {
        self.nodes.get(cluster, "node capacity", "cluster")
    }

    /// The volume snapshot provider for `region`.
    ///
    /// # Errors
    /// `NotFound` when none is configured.
    pub fn volumes(&self, region: &str) -> Result<&Arc<dyn VolumeSnapshots>> {
        self.volumes.get(region, "volume snapshot", "region")
    }

    /// The secret manager for `region`.
    ///
    /// # Errors
    /// `NotFound` when none is configured.
    pub fn secrets(&self, region: &str) -> Result<&Arc<dyn SecretManager>> {
        self.secrets.get(region, "secret manager", "region")
    }

    /// The managed cache provider for `region`.
    ///
    /// # Errors
    /// `NotFound` when none is configured.
    pub fn caches(&self, region: &str) -> Result<&Arc<dyn CacheRestore>> {
        self.caches.get(region, "managed cache", "region")
    }
}
