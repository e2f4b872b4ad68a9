//! The set of providers a run uses, resolved per region, cluster, store and channel.

use std::collections::HashMap;
use std::sync::Arc;

use crate::layer::{Layer, Layered};
use crate::provider::{
    ClusterDeployer, DatabaseReplica, DnsFailover, HealthProbe, Notifier, SnapshotStore,
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
}
