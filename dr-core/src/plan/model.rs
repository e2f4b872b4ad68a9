//! The plan's data model, as written in YAML, TOML or JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::planner::scenarios::ScenarioKind;
use crate::provider::WorkloadKind;
use crate::HumanDuration;

/// A disaster-recovery plan: the sites, the resources in each, the services with their
/// targets, and the scenarios the plan supports.
///
/// Load one with [`Plan::from_yaml_str`](crate::plan::Plan::from_yaml_str) (or TOML, JSON, a
/// file) or build one with [`PlanBuilder`](crate::plan::PlanBuilder); then
/// [`validate`](crate::plan::Plan::validate) it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// The plan's name (`shop-web`).
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Regions (sites), on any cloud.
    pub regions: Vec<Region>,
    /// Databases and their replicas and backups.
    #[serde(default)]
    pub databases: Vec<Database>,
    /// Container clusters and their workloads.
    #[serde(default)]
    pub clusters: Vec<Cluster>,
    /// DNS records that move between regions.
    #[serde(default)]
    pub dns: Vec<DnsRecordDef>,
    /// CDN distributions whose origin moves between regions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cdn: Vec<CdnDef>,
    /// Load balancer target groups whose targets move between regions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancers: Vec<LoadBalancerDef>,
    /// Managed caches (Redis) restored from their backups in a region failover.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caches: Vec<CacheDef>,
    /// Snapshot stores (backups, evidence).
    #[serde(default)]
    pub stores: Vec<StoreDef>,
    /// Health checks that prove a service is back.
    #[serde(default)]
    pub health_checks: Vec<HealthCheckDef>,
    /// Notification channels.
    #[serde(default)]
    pub notifications: Vec<ChannelDef>,
    /// Services, with their RTO/RPO targets.
    pub services: Vec<Service>,
    /// Per-action estimates used for forecasting (defaults per kind otherwise).
    #[serde(default)]
    pub estimates: BTreeMap<String, HumanDuration>,
    /// Per-action timeouts for one attempt (default: three times the estimate, at least 1m).
    #[serde(default)]
    pub timeouts: BTreeMap<String, HumanDuration>,
    /// The scenarios this plan supports.
    pub scenarios: Vec<Scenario>,
    /// Invariants the executor checks right before the steps that could break them
    /// (`interlocks: [no-split-brain]`); a break is refused, naming the invariant, unless it
    /// is waived explicitly for the run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interlocks: Vec<Interlock>,
    /// Latency distributions per step kind for the probabilistic forecast.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast: Option<super::ForecastConfig>,
    /// Concurrency limits on provider calls per role and per target, over the executor's
    /// defaults (see [`PlanLimits`](super::PlanLimits)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<super::PlanLimits>,
    /// Name lookup hints (not part of the plan's data).
    #[serde(skip)]
    pub(crate) lookup: super::lookup::Lookup,
}

/// A traffic interlock: an invariant of the plan that the executor checks before the steps
/// that could break it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Interlock {
    /// Never promote a replica while its old primary may still accept writes (it answers
    /// and is not failed, stopped or deleted, or it cannot be read at all), unless the
    /// interlock is waived — after fencing the old primary by other means.
    NoSplitBrain,
    /// Every DNS record keeps at least one healthy target: a record is switched only to
    /// values at least one of which answers the service's health check (probed at the
    /// check's URL with its host replaced by the value), unless the interlock is waived.
    HealthyTarget,
}

impl Interlock {
    /// Every interlock, in the order the documentation lists them.
    pub const ALL: [Interlock; 2] = [Interlock::NoSplitBrain, Interlock::HealthyTarget];

    /// The name a plan and `--waive` use (`no-split-brain`).
    pub fn name(self) -> &'static str {
        match self {
            Interlock::NoSplitBrain => "no-split-brain",
            Interlock::HealthyTarget => "healthy-target",
        }
    }

    /// The interlock named `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|i| i.name() == name)
    }
}

impl std::fmt::Display for Interlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a region normally serves or stands by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionRole {
    /// Serves production.
    Primary,
    /// Disaster-recovery site.
    Secondary,
}

/// A region or site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    /// Name (`us-east-1`).
    pub name: String,
    /// Primary or secondary.
    pub role: RegionRole,
    /// Cloud (`aws`, `azure`, `gcp`, `on-prem`, `sim`): informational, for provider choice.
    #[serde(default = "default_cloud")]
    pub cloud: String,
}

fn default_cloud() -> String {
    "sim".into()
}

/// A database with its replicas, backups and point-in-time recovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// Name in the plan.
    pub name: String,
    /// Region of the primary instance.
    pub region: String,
    /// Instance identifier at the provider (defaults to the name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// Engine (`postgres`, `mysql`): informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// Whether the primary has a Multi-AZ standby (a reboot can fail over to it).
    #[serde(default)]
    pub multi_az: bool,
    /// Read replicas.
    #[serde(default)]
    pub replicas: Vec<Replica>,
    /// Snapshot schedule and where copies go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backups: Option<Backups>,
    /// Point-in-time recovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pitr: Option<Pitr>,
    /// Checks of the data, run against the promoted or restored instance before the
    /// applications are pointed at it (a `verify_data` step).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<super::DataCheck>,
}

impl Database {
    /// The provider's instance identifier.
    pub fn instance(&self) -> &str {
        self.instance_id.as_deref().unwrap_or(&self.name)
    }
}

/// A read replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replica {
    /// Instance identifier.
    pub id: String,
    /// Region.
    pub region: String,
    /// Replication lag normally expected (used to check the RPO before anything is observed).
    #[serde(default = "default_expected_lag")]
    pub expected_lag: HumanDuration,
}

fn default_expected_lag() -> HumanDuration {
    HumanDuration::from_secs(30)
}

/// A database's snapshot schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backups {
    /// Interval between snapshots (`1h`, `24h`): the worst-case data loss of a restore.
    pub every: HumanDuration,
    /// Regions snapshots are copied to.
    #[serde(default)]
    pub copy_to: Vec<String>,
    /// How long snapshots are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<HumanDuration>,
}

/// Point-in-time recovery settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pitr {
    /// How far the latest restorable time trails the present (log shipping interval).
    #[serde(default = "default_pitr_lag")]
    pub lag: HumanDuration,
    /// How far back a restore can go.
    #[serde(default = "default_pitr_window")]
    pub window: HumanDuration,
}

fn default_pitr_lag() -> HumanDuration {
    HumanDuration::from_secs(300)
}

fn default_pitr_window() -> HumanDuration {
    HumanDuration::from_secs(7 * 24 * 3600)
}

/// A container cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// Name (also the key of its client in [`Providers`](crate::Providers)).
    pub name: String,
    /// Region.
    pub region: String,
    /// Host name traffic reaches the cluster at (its load balancer).
    pub ingress: String,
    /// Workloads deployed on it.
    #[serde(default)]
    pub workloads: Vec<Workload>,
    /// Node groups (EKS managed node groups) whose nodes run the workloads: a region
    /// failover scales those of the recovery cluster from standby before its workloads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_groups: Vec<NodeGroup>,
}

/// A node group of a cluster: its scaling bounds when serving, and while standing by.
///
/// ```yaml
/// node_groups:
///   - { name: general, min: 2, desired: 3, max: 6, standby: { min: 1, desired: 1 }, pods_per_node: 10 }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeGroup {
    /// Name (the EKS node group name).
    pub name: String,
    /// Fewest nodes when serving.
    pub min: u32,
    /// Nodes when serving.
    pub desired: u32,
    /// Most nodes.
    pub max: u32,
    /// Bounds while standing by: on a cluster outside the primary region, and for a group
    /// that a `node-group-failure` scenario names as its `replacement`. Defaults to the
    /// serving bounds (the group is never scaled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby: Option<StandbyScaling>,
    /// How many pods one node holds (what the simulated cloud places on it).
    #[serde(default = "default_pods_per_node")]
    pub pods_per_node: u32,
    /// The node label whose value is the group's name (default
    /// `eks.amazonaws.com/nodegroup`), by which its nodes are listed to drain them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_label: Option<String>,
}

/// A node group's bounds while standing by (its `max` stays).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandbyScaling {
    /// Fewest nodes.
    pub min: u32,
    /// Nodes wanted.
    pub desired: u32,
}

fn default_pods_per_node() -> u32 {
    110
}

impl NodeGroup {
    /// A group of `desired` nodes (`min` = `max` = `desired`), 110 pods per node, no
    /// standby bounds.
    pub fn new(name: impl Into<String>, desired: u32) -> Self {
        NodeGroup {
            name: name.into(),
            min: desired,
            desired,
            max: desired,
            standby: None,
            pods_per_node: default_pods_per_node(),
            node_label: None,
        }
    }

    /// The bounds when serving.
    pub fn serving(&self) -> crate::provider::NodeScaling {
        crate::provider::NodeScaling {
            min: self.min,
            desired: self.desired,
            max: self.max,
        }
    }

    /// The bounds while standing by (the serving ones when the plan gives none).
    pub fn standing_by(&self) -> crate::provider::NodeScaling {
        match self.standby {
            Some(s) => crate::provider::NodeScaling {
                min: s.min,
                desired: s.desired,
                max: self.max,
            },
            None => self.serving(),
        }
    }

    /// The label its nodes are listed by.
    pub fn label(&self) -> &str {
        self.node_label
            .as_deref()
            .unwrap_or(crate::provider::NODE_GROUP_LABEL)
    }
}

/// A workload on a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Name (the same workload on two clusters has the same name).
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Deployment or StatefulSet.
    #[serde(default = "default_kind")]
    pub kind: WorkloadKind,
    /// Replicas when serving.
    pub replicas: u32,
    /// Replicas kept running while standing by (warm standby); 0 for pilot light.
    #[serde(default)]
    pub standby_replicas: u32,
    /// Container image, for manifests generated when the workload is (re)applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

fn default_kind() -> WorkloadKind {
    WorkloadKind::Deployment
}

/// A DNS record set and the value it takes for each region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsRecordDef {
    /// Record name (`api.example.com`).
    pub name: String,
    /// Hosted zone id or name.
    pub zone: String,
    /// Record type.
    #[serde(default = "default_record_type")]
    pub record_type: String,
    /// Set identifier, for failover or weighted sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_id: Option<String>,
    /// Value per region (`us-west-2: lb.us-west-2.example.com`). Defaults to the ingress of
    /// the cluster in that region when omitted.
    #[serde(default)]
    pub targets: BTreeMap<String, String>,
}

fn default_record_type() -> String {
    "CNAME".into()
}

/// A CDN distribution and the origin its default behaviour takes for each region.
///
/// ```yaml
/// cdn:
///   - name: static-site
///     distribution: E2QWRUHAPOMQZL
///     origins: { us-east-1: static.us-east-1.shop.example.com, us-west-2: static.us-west-2.shop.example.com }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdnDef {
    /// Name in the plan (what services list in `cdn:`).
    pub name: String,
    /// Distribution id at the provider (also the key of its provider in
    /// [`Providers`](crate::Providers)).
    pub distribution: String,
    /// Origin domain name per region.
    pub origins: BTreeMap<String, String>,
}

/// A load balancer target group and its targets in each region.
///
/// ```yaml
/// load_balancers:
///   - name: api-targets
///     target_group: arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-api/6d0ecf831eec9f09
///     targets: { us-east-1: ["10.1.0.10:8080", "10.1.0.11:8080"], us-west-2: ["10.2.0.10:8080"] }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancerDef {
    /// Name in the plan (what services list in `load_balancers:`).
    pub name: String,
    /// Target group ARN or name at the provider (also the key of its provider in
    /// [`Providers`](crate::Providers)).
    pub target_group: String,
    /// Targets per region, each `id` or `id:port` (an instance id or an IP address).
    pub targets: BTreeMap<String, Vec<String>>,
}

impl LoadBalancerDef {
    /// The targets of `region`, parsed (empty when the plan lists none there).
    ///
    /// ```
    /// # let plan = dr_core::plan::Plan::from_yaml_str(r#"
    /// # name: shop
    /// # regions: [{ name: east, role: primary }]
    /// # load_balancers: [{ name: api, target_group: tg-api, targets: { east: ["10.1.0.10:8080", "i-0abc"] } }]
    /// # services: []
    /// # scenarios: []
    /// # "#).unwrap();
    /// let lb = plan.load_balancer("api").unwrap();
    /// let east = lb.targets_in("east").unwrap();
    /// assert_eq!(east[0].port, Some(8080));
    /// assert_eq!(east[1].id, "i-0abc");
    /// assert!(lb.targets_in("west").unwrap().is_empty());
    /// ```
    ///
    /// # Errors
    /// `InvalidRequest` for a target that is not `id` or `id:port` ([`LbTarget::parse`]).
    ///
    /// [`LbTarget::parse`]: crate::provider::LbTarget::parse
    pub fn targets_in(&self, region: &str) -> crate::Result<Vec<crate::provider::LbTarget>> {
        self.targets
            .get(region)
            .map(|ts| {
                ts.iter()
                    .map(|t| crate::provider::LbTarget::parse(t))
                    .collect()
            })
            .unwrap_or_else(|| Ok(Vec::new()))
    }
}

/// A managed cache (an ElastiCache Redis cluster) in its home region, and the id it is
/// restored under in each region it can be recovered into, from its newest backup there.
///
/// The backups are the provider's own backups held in the recovery region (ElastiCache
/// snapshots there whose source is `id`); getting them there is outside the run, as
/// ElastiCache copies snapshots only within a region (export the RDB file to S3, seed a
/// cache of the same id in the recovery region from it, snapshot that). Restoring straight
/// from an RDB file in a bucket is not supported.
///
/// ```yaml
/// caches:
///   - name: sessions
///     id: shop-sessions
///     region: us-east-1
///     restore: { us-west-2: shop-sessions-dr }
///     backup_every: 6h         # how often backups reach the recovery regions (default 24h)
///     node_type: cache.r6g.large   # default: the backup's
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheDef {
    /// Name in the plan (what services list in `caches:`).
    pub name: String,
    /// Cache id at the provider in its home region (whose backups are restored).
    pub id: String,
    /// Home region.
    pub region: String,
    /// The cache id to restore per recovery region, where its backups are copied.
    pub restore: BTreeMap<String, String>,
    /// How often a backup reaches the recovery regions (default 24h, ElastiCache's daily
    /// automatic backup): the oldest the newest backup should be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_every: Option<HumanDuration>,
    /// Node type of a restored cache (default: the backup's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_type: Option<String>,
}

impl CacheDef {
    /// How often a backup reaches the recovery regions (`backup_every`, default 24h).
    pub fn backup_interval(&self) -> std::time::Duration {
        self.backup_every
            .map_or(std::time::Duration::from_secs(24 * 3600), |d| d.get())
    }
}

/// A snapshot store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreDef {
    /// Name (the key of its provider in [`Providers`](crate::Providers)).
    pub name: String,
    /// Region.
    pub region: String,
    /// Kind (`memory`, `local-disk`, `s3`, `azure-blob`, `gcs`): informational.
    #[serde(default = "default_store_kind")]
    pub kind: String,
    /// Location (bucket, container, directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

fn default_store_kind() -> String {
    "memory".into()
}

/// A health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckDef {
    /// Name.
    pub name: String,
    /// What to probe (`https://api.example.com/health`).
    pub target: String,
}

/// A notification channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelDef {
    /// Name.
    pub name: String,
    /// Kind (`pagerduty`, `slack`, `email`, `status-page`): informational.
    #[serde(default = "default_channel_kind")]
    pub kind: String,
}

fn default_channel_kind() -> String {
    "log".into()
}

/// Business priority of a service; critical services are recovered first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Recovered first.
    Critical,
    /// Next.
    High,
    /// Then.
    #[default]
    Medium,
    /// Last.
    Low,
}

/// Where a service's application reads its database endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretBinding {
    /// Secret name (in the workload's namespace).
    pub name: String,
    /// Key.
    pub key: String,
    /// Template around the endpoint (`postgres://app@{endpoint}/orders`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

/// A service: what users notice, with recovery targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Name.
    pub name: String,
    /// Priority.
    #[serde(default)]
    pub tier: Tier,
    /// Recovery time objective.
    pub rto: HumanDuration,
    /// Recovery point objective (data-loss window).
    pub rpo: HumanDuration,
    /// Services that must be recovered first.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Database the service owns or uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Workloads (by name, on whichever cluster serves).
    #[serde(default)]
    pub workloads: Vec<String>,
    /// DNS records (by name) that route to the service.
    #[serde(default)]
    pub dns: Vec<String>,
    /// Health check (by name) that proves it is back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<String>,
    /// Secret the application reads its database endpoint from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretBinding>,
    /// CDN distributions (by name) whose origin follows the service to the serving region.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cdn: Vec<String>,
    /// Load balancer target groups (by name) whose targets follow the service to the
    /// serving region.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancers: Vec<String>,
    /// Managed caches (by name) the service reads: in a region failover its traffic moves
    /// only once they are restored (a cold start would send every read to the database).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caches: Vec<String>,
    /// Block volumes behind the service (`volumes: [vol-0abc]`, or `{ id, region }`): what
    /// a security incident snapshots as evidence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeDef>,
    /// The cloud credential the service uses, rotated after a compromise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<CredentialDef>,
}

/// A block volume behind a service: its id, and its region when it is not the region of
/// the service's cluster.
///
/// ```yaml
/// volumes: [vol-0abc, { id: vol-0def, region: us-east-1 }]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "VolumeSpec", into = "VolumeSpec")]
pub struct VolumeDef {
    /// Volume id at the provider (`vol-0abc`).
    pub id: String,
    /// Region; defaults to the region of the cluster serving the service's workloads.
    pub region: Option<String>,
}

impl VolumeDef {
    /// Volume `id` in the region of the service's cluster.
    pub fn new(id: impl Into<String>) -> Self {
        VolumeDef {
            id: id.into(),
            region: None,
        }
    }
}

/// How a volume is written: its id alone, or a table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum VolumeSpec {
    Id(String),
    Full {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
    },
}

impl From<VolumeSpec> for VolumeDef {
    fn from(v: VolumeSpec) -> Self {
        match v {
            VolumeSpec::Id(id) => VolumeDef { id, region: None },
            VolumeSpec::Full { id, region } => VolumeDef { id, region },
        }
    }
}

impl From<VolumeDef> for VolumeSpec {
    fn from(v: VolumeDef) -> Self {
        match v.region {
            None => VolumeSpec::Id(v.id),
            region => VolumeSpec::Full { id: v.id, region },
        }
    }
}

/// The cloud credential a service uses: a secret of the cloud's secret manager, and the key
/// of the service's cluster secret the application reads it from.
///
/// ```yaml
/// credential: { secret: shop/api-token, region: us-east-1, key: API_TOKEN }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialDef {
    /// Secret name in the secret manager (`shop/api-token`).
    pub secret: String,
    /// Region of the secret manager.
    pub region: String,
    /// Key of the cluster secret that receives the new value.
    pub key: String,
    /// Cluster secret (in the workloads' namespace) that receives it; defaults to the
    /// service's `secret` binding's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_secret: Option<String>,
}

impl CredentialDef {
    /// The cluster secret that receives the credential, if one is named here or bound.
    pub fn cluster_secret<'a>(&'a self, service: &'a Service) -> Option<&'a str> {
        self.cluster_secret
            .as_deref()
            .or(service.secret.as_ref().map(|b| b.name.as_str()))
    }
}

/// How a database failure is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DbStrategy {
    /// Decide from the observed state: reboot a degraded primary, promote a healthy replica
    /// within the RPO, else restore the latest snapshot.
    #[default]
    Auto,
    /// Reboot (with failover to the standby when Multi-AZ).
    Reboot,
    /// Promote a replica.
    Promote,
    /// Restore the latest snapshot.
    Restore,
}

/// A scenario the plan supports: its name, its kind with that kind's parameters (see
/// [`ScenarioKind`]), and what every kind shares.
///
/// ```yaml
/// scenarios:
///   - { name: region-failover, kind: region-failover, from: us-east-1, to: us-west-2, approval: true }
///   - { name: orders-db-failure, kind: database-failure, database: orders-db, notify: [oncall] }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scenario {
    /// Name (`region-failover`, `orders-db-failure`).
    pub name: String,
    /// Kind, with its parameters (`kind: region-failover`, `from`, `to`).
    #[serde(flatten)]
    pub kind: ScenarioKind,
    /// Recovery time target for this scenario, overriding the RTO of every service it
    /// recovers (runbooks often give a data-corruption restore a longer target than a
    /// failover).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto: Option<HumanDuration>,
    /// Ask for manual approval before changing anything.
    #[serde(default)]
    pub approval: bool,
    /// Channels told when the scenario starts and ends.
    #[serde(default)]
    pub notify: Vec<String>,
    /// The plan's own steps, added to the scenario's built-in ones: webhooks, commands,
    /// approvals, or kinds the embedding service registered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<PlanStep>,
    /// On a critical failure, undo what already ran, in reverse order (switch DNS back,
    /// scale workloads back, roll a rollout forward again); the report lists what was undone
    /// and what could not be, and why. Off by default.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub compensate_on_failure: bool,
    /// When a [`Watcher`](crate::watch::Watcher) starts the scenario by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<super::Trigger>,
}

impl Scenario {
    /// One sentence on the incident the scenario recovers from (`region us-east-1 is down`).
    pub fn incident(&self, plan: &Plan) -> String {
        self.kind.incident(plan)
    }
}

/// A step a plan adds to a scenario (`scenarios[].steps[]`). It takes part in ordering, the
/// forecast, the critical path, the dry run, approvals and the report like a built-in step.
///
/// ```yaml
/// steps:
///   - id: warm-cache
///     kind: webhook
///     after: [database promoted]      # step ids, service names or milestones
///     service: api                     # counts towards the service's RTO (optional)
///     estimate: 30s
///     timeout: 2m
///     critical: false                  # a failure degrades the run instead of failing it
///     retry: { max_attempts: 5, initial_backoff: 1s }
///     params: { url: "https://cache.internal/warm" }
/// ```
///
/// Milestones are reached when every built-in step marking them is done: `database
/// promoted`, `database restored`, `database available`, `dns switched`, `workloads scaled`,
/// `workloads ready`, `secret updated`, `health verified`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanStep {
    /// Unique id within the scenario's graph.
    pub id: String,
    /// The step kind (`webhook`, `command`, `approval`, or a registered kind).
    pub kind: String,
    /// The kind's parameters.
    #[serde(default = "empty_params")]
    pub params: serde_json::Value,
    /// What it runs after: step ids, service names (after the service is recovered) or
    /// milestones.
    #[serde(default)]
    pub after: Vec<String>,
    /// The service whose recovery it is part of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Forecast duration (default: the kind's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<HumanDuration>,
    /// Deadline of one attempt (default: the kind's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
    /// Whether sending it twice is harmless (default: the kind's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotent: Option<bool>,
    /// A critical failure fails the run; an optional one degrades it (default `true`).
    #[serde(default = "critical_default")]
    pub critical: bool,
    /// How its temporary failures are retried (default: the run's policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<StepRetry>,
}

fn empty_params() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

fn critical_default() -> bool {
    true
}

/// A plan step's retry policy; unset fields take the run's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepRetry {
    /// Attempts in all, the first included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Delay before the first retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_backoff: Option<HumanDuration>,
    /// Largest delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_backoff: Option<HumanDuration>,
    /// Time the step may spend in attempts and backoffs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<HumanDuration>,
}

impl StepRetry {
    /// The policy: `base` with this step's fields.
    pub fn policy(&self, base: &crate::RetryPolicy) -> crate::RetryPolicy {
        crate::RetryPolicy {
            max_attempts: self.max_attempts.unwrap_or(base.max_attempts).max(1),
            initial_backoff: self
                .initial_backoff
                .map_or(base.initial_backoff, |d| d.get()),
            max_backoff: self.max_backoff.map_or(base.max_backoff, |d| d.get()),
            deadline: self.deadline.map(|d| d.get()).or(base.deadline),
            ..base.clone()
        }
    }
}
