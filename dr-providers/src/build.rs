//! From a checked providers file and its plan to a [`Providers`] set, with the route of every
//! role and a read-only reachability check per mapped provider.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dr_core::plan::Plan;
use dr_core::provider::{
    CacheRestore, CdnOrigin, ClusterDeployer, DatabaseReplica, DbRef, DnsFailover, HealthProbe,
    HttpProbe, LoadBalancer, NodeCapacity, Notifier, SecretManager, SnapshotStore, VolumeSnapshots,
    WorkloadRef,
};
use dr_core::sim::SimConfig;
use dr_core::simulation::Simulation;
use dr_core::store::{InMemoryStore, LocalDiskStore};
use dr_core::Providers;

use crate::config::*;
use crate::notify::LogNotifier;
use crate::probe::RoutedProbe;
use crate::validate::validate;
use crate::ProvidersError;

/// How [`build_with`] builds.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Seed of the simulated cloud serving what is simulated.
    pub seed: u64,
    /// Its configuration (latencies, faults).
    pub sim: SimConfig,
    /// The directory relative paths of the file (`ca_file`, local stores) start from: the
    /// providers file's own directory when loaded with [`crate::load_and_build`].
    pub base_dir: Option<PathBuf>,
    /// The file's name in messages.
    pub file: String,
    /// The control client of every GCS store (head, list, delete, rewrite), instead of the
    /// gRPC one built from the entry: tests replay those calls on an emulator's JSON API
    /// (fake-gcs-server does not speak gRPC).
    #[cfg(feature = "gcp")]
    pub gcs_control: Option<google_cloud_storage::client::StorageControl>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            seed: 42,
            sim: SimConfig::default(),
            base_dir: None,
            file: "providers".into(),
            #[cfg(feature = "gcp")]
            gcs_control: None,
        }
    }
}

/// Which provider serves one plan resource.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Route {
    /// `database`, `dns`, `cluster`, `store`, `health_check`, `notifications`, `cdn`,
    /// `load_balancer`, `nodes` or `secrets`.
    pub role: &'static str,
    /// The key: a region, a zone, a cluster, store, health-check or channel name.
    pub resource: String,
    /// The provider and where it points (`rds us-west-2 at http://127.0.0.1:5000`,
    /// `simulated`).
    pub provider: String,
    /// Whether the file mapped it (`false`: served by `default: simulated`).
    pub mapped: bool,
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} -> {}{}",
            self.role,
            self.resource,
            self.provider,
            if self.mapped { "" } else { " (default)" }
        )
    }
}

/// A read-only call that shows a provider answers.
#[derive(Debug, Clone)]
pub(crate) enum Reach {
    Database(Arc<dyn DatabaseReplica>, DbRef),
    Dns(Arc<dyn DnsFailover>, String, String),
    Cluster(Arc<dyn ClusterDeployer>, WorkloadRef),
    Store(Arc<dyn SnapshotStore>),
    Probe(Arc<dyn HealthProbe>, String),
    Cdn(Arc<dyn CdnOrigin>, String),
    LoadBalancer(Arc<dyn LoadBalancer>, String),
    /// The backups in a region (first) of a plan cache (its home id, second).
    CacheBackups(Arc<dyn CacheRestore>, String, String),
}

/// The providers a plan runs on, built from a providers file.
#[derive(Debug, Clone)]
pub struct Built {
    /// The set to give the executor.
    pub providers: Providers,
    /// Which provider serves each plan resource, in file order (role, then name).
    pub routes: Vec<Route>,
    pub(crate) reach: Vec<(usize, Reach)>,
    simulation: Simulation,
}

impl Built {
    /// The simulated cloud serving what is simulated (provisioned from the plan): inject a
    /// scenario's incident into it, or read its state.
    pub fn simulation(&self) -> &Simulation {
        &self.simulation
    }

    /// The route of `role` (`database`, `dns`, …) for `resource`.
    pub fn route(&self, role: &str, resource: &str) -> Option<&Route> {
        self.routes
            .iter()
            .find(|r| r.role == role && r.resource == resource)
    }
}

fn build_err(role: &'static str, resource: &str) -> impl Fn(dr_core::Error) -> ProvidersError {
    let resource = resource.to_string();
    move |source| ProvidersError::Build {
        role,
        resource: resource.clone(),
        source: Box::new(source),
    }
}

fn resolve_path(base: Option<&Path>, p: &Path) -> PathBuf {
    match base {
        Some(b) if p.is_relative() => b.join(p),
        _ => p.to_path_buf(),
    }
}

/// Checks `config` against `plan` and builds every provider it maps; what it does not map
/// is simulated when the file says `default: simulated`.
///
/// # Errors
/// [`ProvidersError::Invalid`] with every problem at once (an unmapped resource, naming its
/// role and the plan resource; a kind this build lacks the feature for; fields that do not
/// apply); [`ProvidersError::Build`] when a provider cannot be built (a variable the file
/// names is not set, an SDK configuration error).
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> Result<(), dr_providers::ProvidersError> {
/// let plan = dr_core::plan::Plan::load("plan.yaml").map_err(|e| panic!("{e}"))?;
/// let config = dr_providers::ProvidersConfig::load("providers.yaml".as_ref())?;
/// let built = dr_providers::build(&config, &plan).await?;
/// for route in &built.routes {
///     println!("{route}");
/// }
/// # Ok(()) }
/// ```
pub async fn build(config: &ProvidersConfig, plan: &Plan) -> Result<Built, ProvidersError> {
    build_with(config, plan, &BuildOptions::default()).await
}

/// [`build`] with options.
///
/// # Errors
/// As [`build`].
pub async fn build_with(
    config: &ProvidersConfig,
    plan: &Plan,
    opts: &BuildOptions,
) -> Result<Built, ProvidersError> {
    let problems = validate(config, plan);
    if !problems.is_empty() {
        return Err(ProvidersError::Invalid {
            file: opts.file.clone(),
            problems,
        });
    }
    let sim = Simulation::new(plan, opts.seed, opts.sim.clone());
    let cloud = sim.cloud().clone();
    let simulated_default = config.default == Some(DefaultProvider::Simulated);
    let shared_aws = config.aws.clone().unwrap_or_default();
    let base = opts.base_dir.as_deref();

    let mut providers = Providers::new();
    let mut routes = Vec::new();
    let mut reach = Vec::new();
    let route = |routes: &mut Vec<Route>, role, resource: &str, provider: String, mapped| {
        routes.push(Route {
            role,
            resource: resource.to_string(),
            provider,
            mapped,
        });
        routes.len() - 1
    };
    let needs = crate::validate::Needs::of(plan);

    // Databases, per region.
    #[cfg(feature = "postgres")]
    let postgres = build_postgres(config, plan)?;
    for region in needs.databases.keys() {
        let Some(p) = config.databases.get(region) else {
            providers = providers.with_database_in(region, cloud.database());
            route(&mut routes, "database", region, "simulated".into(), false);
            continue;
        };
        let first = first_db(plan, region);
        let (db, name): (Arc<dyn DatabaseReplica>, String) = match p.kind {
            DatabaseKind::Simulated => (cloud.database(), "simulated".into()),
            DatabaseKind::Rds => {
                let settings = shared_aws.merged(&p.aws());
                let aws_region = settings.region.clone().unwrap_or_else(|| region.clone());
                let name = describe_aws("rds", Some(&aws_region), &settings);
                (rds(&settings, region, &aws_region).await?, name)
            }
            DatabaseKind::Postgres => {
                #[cfg(feature = "postgres")]
                {
                    let ids: Vec<&String> = p.instances.keys().collect();
                    (
                        postgres.clone() as Arc<dyn DatabaseReplica>,
                        format!("postgres ({})", join(ids)),
                    )
                }
                #[cfg(not(feature = "postgres"))]
                unreachable_kind("postgres")?
            }
        };
        providers = providers.with_database_in(region, db.clone());
        let i = route(&mut routes, "database", region, name, true);
        if p.kind != DatabaseKind::Simulated {
            if let Some(r) = first {
                reach.push((i, Reach::Database(db, r)));
            }
        }
    }

    // DNS, per zone.
    for zone in needs.dns.keys() {
        let record = plan
            .dns
            .iter()
            .find(|r| r.zone == *zone)
            .map(|r| r.name.clone())
            .unwrap_or_default();
        let Some(p) = config.dns.get(zone) else {
            providers = providers.with_dns_for_zone(zone, cloud.dns());
            route(&mut routes, "dns", zone, "simulated".into(), false);
            continue;
        };
        let (dns, name): (Arc<dyn DnsFailover>, String) = match p.kind {
            DnsKind::Simulated => (cloud.dns(), "simulated".into()),
            DnsKind::Route53 => {
                let settings = shared_aws.merged(&p.aws());
                let name = describe_aws("route53", None, &settings);
                (route53(&settings, zone).await?, name)
            }
        };
        providers = providers.with_dns_for_zone(zone, dns.clone());
        let i = route(&mut routes, "dns", zone, name, true);
        if p.kind != DnsKind::Simulated {
            reach.push((i, Reach::Dns(dns, zone.clone(), record)));
        }
    }

    // Clusters.
    #[cfg(feature = "k8s")]
    let kube = build_kube(config).await?;
    for c in &plan.clusters {
        let workload = c.workloads.first().map(|w| WorkloadRef {
            cluster: c.name.clone(),
            namespace: w.namespace.clone(),
            kind: w.kind,
            name: w.name.clone(),
        });
        let Some(p) = config.clusters.get(&c.name) else {
            providers = providers.with_cluster_named(&c.name, cloud.cluster());
            route(&mut routes, "cluster", &c.name, "simulated".into(), false);
            continue;
        };
        let (cp, name): (Arc<dyn ClusterDeployer>, String) = match p.kind {
            ClusterKind::Simulated => (cloud.cluster(), "simulated".into()),
            ClusterKind::Kubernetes => {
                let name = match &p.context {
                    Some(ctx) => format!("kubernetes (context {ctx})"),
                    None => "kubernetes (in-cluster service account)".into(),
                };
                #[cfg(feature = "k8s")]
                {
                    match &kube {
                        Some(k) => (k.clone() as Arc<dyn ClusterDeployer>, name),
                        None => unreachable_kind("kubernetes")?,
                    }
                }
                #[cfg(not(feature = "k8s"))]
                {
                    let _ = name;
                    unreachable_kind("kubernetes")?
                }
            }
        };
        providers = providers.with_cluster_named(&c.name, cp.clone());
        let i = route(&mut routes, "cluster", &c.name, name, true);
        if let (ClusterKind::Kubernetes, Some(w)) = (p.kind, workload) {
            reach.push((i, Reach::Cluster(cp, w)));
        }
    }

    // Stores.
    for s in &plan.stores {
        let Some(p) = config.stores.get(&s.name) else {
            providers = providers.with_store(&s.name, cloud.store(&s.name));
            route(&mut routes, "store", &s.name, "simulated".into(), false);
            continue;
        };
        let location = s.location.clone().unwrap_or_else(|| s.name.clone());
        let err = build_err("store", &format!("store {}", s.name));
        let (store, name): (Arc<dyn SnapshotStore>, String) = match p.kind {
            StoreKind::Simulated => (cloud.store(&s.name), "simulated".into()),
            StoreKind::Memory => (Arc::new(InMemoryStore::new()), "memory".into()),
            StoreKind::Local => {
                let path = resolve_path(base, p.path.as_deref().unwrap_or(Path::new(".")));
                let store = LocalDiskStore::new(&path).map_err(&err)?;
                (Arc::new(store), format!("local ({})", path.display()))
            }
            StoreKind::S3 => {
                let settings = shared_aws.merged(&p.aws());
                let bucket = p.bucket.clone().unwrap_or(location);
                let aws_region = settings.region.clone().unwrap_or_else(|| s.region.clone());
                let name = format!(
                    "{} bucket {bucket}",
                    describe_aws("s3", Some(&aws_region), &settings)
                );
                (s3(&settings, &aws_region, &bucket, &s.name).await?, name)
            }
            StoreKind::AzureBlob => {
                let container = p.container.clone().unwrap_or(location);
                azure(p, &container, &s.name)?
            }
            StoreKind::Gcs => {
                let bucket = p.bucket.clone().unwrap_or(location);
                gcs(p, &bucket, &s.name, opts).await?
            }
        };
        providers = providers.with_store(&s.name, store.clone());
        let i = route(&mut routes, "store", &s.name, name, true);
        if !matches!(p.kind, StoreKind::Simulated | StoreKind::Memory) {
            reach.push((i, Reach::Store(store)));
        }
    }

    // Health checks: one probe per check, routed by target.
    let mut probe = RoutedProbe::new(cloud.probe());
    for h in &plan.health_checks {
        let Some(p) = config.health_checks.get(&h.name) else {
            probe.route(&h.target, cloud.probe());
            route(
                &mut routes,
                "health_check",
                &h.name,
                "simulated".into(),
                false,
            );
            continue;
        };
        match p.kind {
            HealthCheckKind::Simulated => {
                probe.route(&h.target, cloud.probe());
                route(
                    &mut routes,
                    "health_check",
                    &h.name,
                    "simulated".into(),
                    true,
                );
            }
            HealthCheckKind::Http => {
                let err = build_err("health check", &format!("health check {}", h.name));
                let mut check = p.check();
                if let Some(ca) = &p.ca_file {
                    let path = resolve_path(base, ca);
                    let pem = std::fs::read_to_string(&path).map_err(|e| {
                        err(dr_core::Error::io(
                            format!("reading the CA file {}", path.display()),
                            e,
                        ))
                    })?;
                    check = check.with_ca_pem(pem);
                }
                let name = format!(
                    "http ({} {}, expect {}{})",
                    check.method,
                    dr_core::redact::safe(&h.target),
                    check.expect_status,
                    if p.ca_file.is_some() {
                        ", custom CA"
                    } else {
                        ""
                    }
                );
                let http: Arc<dyn HealthProbe> = Arc::new(HttpProbe::new(check).map_err(&err)?);
                probe.route(&h.target, http.clone());
                let i = route(&mut routes, "health_check", &h.name, name, true);
                reach.push((i, Reach::Probe(http, h.target.clone())));
            }
        }
    }
    // The targets of DNS records, probed with their service's check before a switch (the
    // `healthy-target` interlock), go to the probe of that check.
    for t in dr_core::step::dns::target_probes(plan) {
        if let Some(h) = plan.health_check(&t.check) {
            probe.route_like(&t.url, &h.target);
        }
    }
    providers = providers.with_probe(Arc::new(probe));

    // Notifications.
    if simulated_default {
        providers = providers.with_notifier(cloud.notifier());
        // CDN distributions, target groups, node groups, volumes, secret managers and
        // managed caches the file does not map: the simulated cloud's.
        providers = providers
            .with_cdn(cloud.cdn())
            .with_load_balancer(cloud.load_balancer())
            .with_nodes(cloud.nodes())
            .with_volumes(cloud.volumes())
            .with_secrets(cloud.secrets())
            .with_caches(cloud.caches());
    }
    for c in &plan.notifications {
        let (n, name, mapped): (Arc<dyn Notifier>, &str, bool) =
            match config.notifications.get(&c.name).map(|p| p.kind) {
                Some(NotificationKind::Log) => (Arc::new(LogNotifier::new()), "log", true),
                Some(NotificationKind::Simulated) => (cloud.notifier(), "simulated", true),
                None => (cloud.notifier(), "simulated", false),
            };
        providers = providers.with_notifier_for(&c.name, n);
        route(&mut routes, "notifications", &c.name, name.into(), mapped);
    }

    // CDN distributions, load balancer target groups, node groups, secret managers.
    for (id, p) in &config.cdn {
        let settings = shared_aws.merged(&p.aws());
        let (cdn, name) = match p.kind {
            CdnKind::Cloudfront => (
                cloudfront(&settings, id).await?,
                describe_aws("cloudfront", None, &settings),
            ),
        };
        providers = providers.with_cdn_for(id, cdn.clone());
        let i = route(&mut routes, "cdn", id, name, true);
        reach.push((i, Reach::Cdn(cdn, id.clone())));
    }
    for (group, p) in &config.load_balancers {
        let settings = shared_aws.merged(&p.aws());
        let region = p
            .region
            .clone()
            .or_else(|| arn_region(group).map(str::to_string))
            .or_else(|| settings.region.clone())
            .unwrap_or_default();
        let (lb, name) = match p.kind {
            LoadBalancerKind::Elbv2 => (
                elbv2(&settings, &region, group).await?,
                describe_aws("elbv2", Some(&region), &settings),
            ),
        };
        providers = providers.with_load_balancer_for(group, lb.clone());
        let i = route(&mut routes, "load_balancer", group, name, true);
        reach.push((i, Reach::LoadBalancer(lb, group.clone())));
    }
    for (cluster, p) in &config.node_groups {
        let settings = shared_aws.merged(&p.aws());
        let plan_region = plan
            .clusters
            .iter()
            .find(|c| c.name == *cluster)
            .map(|c| c.region.clone())
            .unwrap_or_default();
        let region = settings.region.clone().unwrap_or(plan_region);
        let eks_name = p.cluster_name.clone().unwrap_or_else(|| cluster.clone());
        let (nodes, name) = match p.kind {
            NodeGroupKind::Eks => {
                let mut name = describe_aws("eks", Some(&region), &settings);
                if eks_name != *cluster {
                    name.push_str(&format!(" cluster {eks_name}"));
                }
                (eks(&settings, &region, cluster, &eks_name).await?, name)
            }
        };
        providers = providers.with_nodes_for(cluster, nodes);
        route(&mut routes, "nodes", cluster, name, true);
    }
    for (region, p) in &config.secrets {
        let settings = shared_aws.merged(&p.aws());
        let (secrets, name) = match p.kind {
            SecretsKind::Secretsmanager => (
                secretsmanager(&settings, region).await?,
                describe_aws("secretsmanager", Some(region), &settings),
            ),
        };
        providers = providers.with_secrets_in(region, secrets);
        route(&mut routes, "secrets", region, name, true);
    }
    for (region, p) in &config.volumes {
        let settings = shared_aws.merged(&p.aws());
        let (volumes, name) = match p.kind {
            VolumesKind::Ec2 => (
                ec2_volumes(&settings, region).await?,
                describe_aws("ec2", Some(region), &settings),
            ),
        };
        providers = providers.with_volumes_in(region, volumes);
        route(&mut routes, "volumes", region, name, true);
    }
    for (region, p) in &config.caches {
        let settings = shared_aws.merged(&p.aws());
        let (caches, name) = match p.kind {
            CachesKind::Elasticache => (
                elasticache_caches(&settings, region).await?,
                describe_aws("elasticache", Some(region), &settings),
            ),
        };
        providers = providers.with_caches_in(region, caches.clone());
        let i = route(&mut routes, "caches", region, name, true);
        // The backups each plan cache restored here has in this region.
        for c in plan
            .caches
            .iter()
            .filter(|c| c.restore.contains_key(region))
        {
            let backups = Reach::CacheBackups(caches.clone(), region.clone(), c.id.clone());
            reach.push((i, backups));
        }
    }

    // What the plan names in those roles and the file does not map: simulated under
    // `default: simulated` (see above), and routed so the dry run says so.
    if simulated_default {
        let mut unmapped: Vec<(&'static str, String)> = Vec::new();
        for c in &plan.cdn {
            if !config.cdn.contains_key(&c.distribution) {
                unmapped.push(("cdn", c.distribution.clone()));
            }
        }
        for l in &plan.load_balancers {
            if !config.load_balancers.contains_key(&l.target_group) {
                unmapped.push(("load_balancer", l.target_group.clone()));
            }
        }
        for c in plan.clusters.iter().filter(|c| !c.node_groups.is_empty()) {
            if !config.node_groups.contains_key(&c.name) {
                unmapped.push(("nodes", c.name.clone()));
            }
        }
        for svc in &plan.services {
            if let Some(c) = &svc.credential {
                if !config.secrets.contains_key(&c.region) {
                    unmapped.push(("secrets", c.region.clone()));
                }
            }
        }
        // A volume is in its own region or its cluster's: every region the file does not
        // map is the simulated cloud's.
        if plan.services.iter().any(|s| !s.volumes.is_empty()) {
            unmapped.extend(
                plan.regions
                    .iter()
                    .filter(|r| !config.volumes.contains_key(&r.name))
                    .map(|r| ("volumes", r.name.clone())),
            );
        }
        // A cache is restored in each region of its `restore` map.
        for c in &plan.caches {
            for region in c.restore.keys() {
                if !config.caches.contains_key(region) {
                    unmapped.push(("caches", region.clone()));
                }
            }
        }
        unmapped.sort();
        unmapped.dedup();
        for (role, resource) in unmapped {
            route(&mut routes, role, &resource, "simulated".into(), false);
        }
    }

    Ok(Built {
        providers,
        routes,
        reach,
        simulation: sim,
    })
}

/// The first instance of the plan in `region` (a primary, else a replica).
fn first_db(plan: &Plan, region: &str) -> Option<DbRef> {
    plan.databases.iter().find_map(|db| {
        if db.region == region {
            return Some(DbRef::new(region, db.instance()));
        }
        db.replicas
            .iter()
            .find(|r| r.region == region)
            .map(|r| DbRef::new(region, &r.id))
    })
}

#[allow(dead_code)]
fn join(items: Vec<&String>) -> String {
    items
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe_aws(service: &str, region: Option<&str>, s: &AwsSettings) -> String {
    let mut d = service.to_string();
    if let Some(r) = region {
        d.push_str(&format!(" {r}"));
    }
    if let Some(e) = &s.endpoint {
        d.push_str(&format!(" at {}", dr_core::redact::safe(e)));
    }
    if let Some(p) = &s.profile {
        d.push_str(&format!(" (profile {p})"));
    }
    d
}

/// A kind the validation accepted although its feature is off: cannot happen, reported as
/// an error all the same rather than a panic.
#[allow(dead_code)]
fn unreachable_kind<T>(kind: &str) -> Result<T, ProvidersError> {
    Err(ProvidersError::Build {
        role: "provider",
        resource: kind.into(),
        source: Box::new(dr_core::Error::NotSupported {
            operation: format!("kind `{kind}`"),
            provider: "dr-providers (feature not enabled)".into(),
        }),
    })
}

#[cfg(feature = "aws")]
async fn aws_config(
    s: &AwsSettings,
    region: &str,
    role: &'static str,
    resource: &str,
) -> Result<dr_aws::AwsConfig, ProvidersError> {
    let err = build_err(role, resource);
    let mut b = dr_aws::AwsBuilder::new().with_region(region);
    if let Some(e) = &s.endpoint {
        b = b.with_endpoint(e);
    }
    if let Some(p) = &s.profile {
        b = b.with_profile(p);
    }
    if let (Some(ak), Some(sk)) = (&s.access_key_id, &s.secret_access_key) {
        let ak = ak.resolve("aws", "access_key_id").map_err(&err)?;
        let sk = sk.resolve("aws", "secret_access_key").map_err(&err)?;
        b = b.with_credentials(ak.expose(), sk.expose());
        if let Some(t) = &s.session_token {
            let t = t.resolve("aws", "session_token").map_err(&err)?;
            b = b.with_session_token(t.expose());
        }
    }
    b.load().await.map_err(err)
}

#[cfg(feature = "aws")]
async fn rds(
    s: &AwsSettings,
    region: &str,
    aws_region: &str,
) -> Result<Arc<dyn DatabaseReplica>, ProvidersError> {
    let aws = aws_config(s, aws_region, "database", &format!("region {region}")).await?;
    Ok(Arc::new(aws.build_rds()))
}

#[cfg(not(feature = "aws"))]
async fn rds(
    _: &AwsSettings,
    _: &str,
    _: &str,
) -> Result<Arc<dyn DatabaseReplica>, ProvidersError> {
    unreachable_kind("rds")
}

#[cfg(feature = "aws")]
async fn route53(s: &AwsSettings, zone: &str) -> Result<Arc<dyn DnsFailover>, ProvidersError> {
    let region = s.region.as_deref().unwrap_or(dr_aws::DEFAULT_REGION);
    let aws = aws_config(s, region, "dns", &format!("zone {zone}")).await?;
    Ok(Arc::new(aws.build_route53()))
}

#[cfg(not(feature = "aws"))]
async fn route53(_: &AwsSettings, _: &str) -> Result<Arc<dyn DnsFailover>, ProvidersError> {
    unreachable_kind("route53")
}

#[cfg(feature = "aws")]
async fn s3(
    s: &AwsSettings,
    region: &str,
    bucket: &str,
    store: &str,
) -> Result<Arc<dyn SnapshotStore>, ProvidersError> {
    let aws = aws_config(s, region, "store", &format!("store {store}")).await?;
    Ok(Arc::new(aws.build_s3_for(bucket)))
}

#[cfg(not(feature = "aws"))]
async fn s3(
    _: &AwsSettings,
    _: &str,
    _: &str,
    _: &str,
) -> Result<Arc<dyn SnapshotStore>, ProvidersError> {
    unreachable_kind("s3")
}

#[cfg(feature = "aws")]
async fn cloudfront(s: &AwsSettings, id: &str) -> Result<Arc<dyn CdnOrigin>, ProvidersError> {
    let region = s.region.as_deref().unwrap_or(dr_aws::DEFAULT_REGION);
    let aws = aws_config(s, region, "cdn", &format!("distribution {id}")).await?;
    Ok(Arc::new(aws.build_cloudfront()))
}

#[cfg(not(feature = "aws"))]
async fn cloudfront(_: &AwsSettings, _: &str) -> Result<Arc<dyn CdnOrigin>, ProvidersError> {
    unreachable_kind("cloudfront")
}

#[cfg(feature = "aws")]
async fn elbv2(
    s: &AwsSettings,
    region: &str,
    group: &str,
) -> Result<Arc<dyn LoadBalancer>, ProvidersError> {
    let aws = aws_config(s, region, "load balancer", &format!("target group {group}")).await?;
    Ok(Arc::new(aws.build_elbv2()))
}

#[cfg(not(feature = "aws"))]
async fn elbv2(_: &AwsSettings, _: &str, _: &str) -> Result<Arc<dyn LoadBalancer>, ProvidersError> {
    unreachable_kind("elbv2")
}

#[cfg(feature = "aws")]
async fn eks(
    s: &AwsSettings,
    region: &str,
    cluster: &str,
    eks_name: &str,
) -> Result<Arc<dyn NodeCapacity>, ProvidersError> {
    let aws = aws_config(s, region, "node groups", &format!("cluster {cluster}")).await?;
    Ok(Arc::new(
        aws.build_eks().with_cluster_name(cluster, eks_name),
    ))
}

#[cfg(not(feature = "aws"))]
async fn eks(
    _: &AwsSettings,
    _: &str,
    _: &str,
    _: &str,
) -> Result<Arc<dyn NodeCapacity>, ProvidersError> {
    unreachable_kind("eks")
}

#[cfg(feature = "aws")]
async fn secretsmanager(
    s: &AwsSettings,
    region: &str,
) -> Result<Arc<dyn SecretManager>, ProvidersError> {
    let aws = aws_config(s, region, "secrets", &format!("region {region}")).await?;
    Ok(Arc::new(aws.build_secretsmanager()))
}

#[cfg(not(feature = "aws"))]
async fn secretsmanager(
    _: &AwsSettings,
    _: &str,
) -> Result<Arc<dyn SecretManager>, ProvidersError> {
    unreachable_kind("secretsmanager")
}

#[cfg(feature = "aws")]
async fn ec2_volumes(
    s: &AwsSettings,
    region: &str,
) -> Result<Arc<dyn VolumeSnapshots>, ProvidersError> {
    let aws = aws_config(s, region, "volumes", &format!("region {region}")).await?;
    let ec2 = aws
        .build_ec2_volumes()
        .map_err(build_err("volumes", &format!("region {region}")))?;
    Ok(Arc::new(ec2))
}

#[cfg(not(feature = "aws"))]
async fn ec2_volumes(_: &AwsSettings, _: &str) -> Result<Arc<dyn VolumeSnapshots>, ProvidersError> {
    unreachable_kind("ec2")
}

#[cfg(feature = "aws")]
async fn elasticache_caches(
    s: &AwsSettings,
    region: &str,
) -> Result<Arc<dyn CacheRestore>, ProvidersError> {
    let aws = aws_config(s, region, "caches", &format!("region {region}")).await?;
    let caches = aws
        .build_elasticache_caches()
        .map_err(build_err("caches", &format!("region {region}")))?;
    Ok(Arc::new(caches))
}

#[cfg(not(feature = "aws"))]
async fn elasticache_caches(
    _: &AwsSettings,
    _: &str,
) -> Result<Arc<dyn CacheRestore>, ProvidersError> {
    unreachable_kind("elasticache")
}

#[cfg(feature = "azure")]
fn azure(
    p: &StoreProvider,
    container: &str,
    store: &str,
) -> Result<(Arc<dyn SnapshotStore>, String), ProvidersError> {
    use dr_azure::{AzureBlobBuilder, AzureCredential};
    let err = build_err("store", &format!("store {store}"));
    let mut b = AzureBlobBuilder::new().with_container(container);
    let mut name = format!("azure_blob container {container}");
    if let Some(a) = &p.account {
        b = b.with_account(a);
        name.push_str(&format!(" in account {a}"));
    }
    if let Some(e) = &p.endpoint {
        b = b.with_endpoint(e);
        name.push_str(&format!(" at {}", dr_core::redact::safe(e)));
    }
    let credential = if let Some(k) = &p.access_key {
        let k = k.resolve("azure_blob", "access_key").map_err(&err)?;
        AzureCredential::SharedKey(k.expose().to_string())
    } else if let Some(s) = &p.sas_token {
        let s = s.resolve("azure_blob", "sas_token").map_err(&err)?;
        AzureCredential::Sas(s.expose().to_string())
    } else if p.anonymous {
        AzureCredential::Anonymous
    } else {
        AzureCredential::DefaultChain
    };
    let store = b.with_credential(credential).build().map_err(err)?;
    Ok((Arc::new(store), name))
}

#[cfg(not(feature = "azure"))]
fn azure(
    _: &StoreProvider,
    _: &str,
    _: &str,
) -> Result<(Arc<dyn SnapshotStore>, String), ProvidersError> {
    unreachable_kind("azure_blob")
}

#[cfg(feature = "gcp")]
async fn gcs(
    p: &StoreProvider,
    bucket: &str,
    store: &str,
    opts: &BuildOptions,
) -> Result<(Arc<dyn SnapshotStore>, String), ProvidersError> {
    use dr_gcp::{GcsBuilder, GcsCredentials};
    let err = build_err("store", &format!("store {store}"));
    let mut b = GcsBuilder::new().with_bucket(bucket);
    let mut name = format!("gcs bucket {bucket}");
    if let Some(e) = &p.endpoint {
        b = b.with_endpoint(e);
        name.push_str(&format!(" at {}", dr_core::redact::safe(e)));
    }
    if p.anonymous {
        b = b.with_credentials(GcsCredentials::Anonymous);
    }
    if let Some(control) = &opts.gcs_control {
        b = b.with_control_client(control.clone());
    }
    let store = b.build().await.map_err(err)?;
    Ok((Arc::new(store), name))
}

#[cfg(not(feature = "gcp"))]
async fn gcs(
    _: &StoreProvider,
    _: &str,
    _: &str,
    _: &BuildOptions,
) -> Result<(Arc<dyn SnapshotStore>, String), ProvidersError> {
    unreachable_kind("gcs")
}

#[cfg(feature = "k8s")]
async fn build_kube(
    config: &ProvidersConfig,
) -> Result<Option<Arc<dr_k8s::KubeDeployer>>, ProvidersError> {
    let mut b = dr_k8s::KubeDeployer::builder();
    let mut any = false;
    for (name, p) in &config.clusters {
        if p.kind != ClusterKind::Kubernetes {
            continue;
        }
        any = true;
        b = match &p.context {
            Some(ctx) => b.cluster_from_context(name, ctx),
            None => b.in_cluster(name),
        };
    }
    if !any {
        return Ok(None);
    }
    let names: Vec<&String> = config.clusters.keys().collect();
    let d = b
        .build()
        .await
        .map_err(build_err("cluster", &format!("clusters {}", join(names))))?;
    Ok(Some(Arc::new(d)))
}

#[cfg(feature = "postgres")]
fn build_postgres(
    config: &ProvidersConfig,
    _plan: &Plan,
) -> Result<Arc<dr_postgres::PostgresDatabase>, ProvidersError> {
    use dr_postgres::{PgInstance, PostgresBuilder};
    let mut b = PostgresBuilder::from_env();
    for (region, p) in &config.databases {
        if p.kind != DatabaseKind::Postgres {
            continue;
        }
        for (id, i) in &p.instances {
            let err = build_err("database", &format!("instance {id} in region {region}"));
            let instance = match (&i.url, &i.host) {
                (Some(url), _) => {
                    let url = url.resolve("postgres", "url").map_err(&err)?;
                    PgInstance::from_url(&url).map_err(&err)?
                }
                (None, host) => {
                    let mut pg = PgInstance::new(
                        host.clone().unwrap_or_else(|| "localhost".into()),
                        i.port.unwrap_or(5432),
                    );
                    if let Some(u) = &i.user {
                        pg = pg.with_user(u);
                    }
                    if let Some(d) = &i.dbname {
                        pg = pg.with_dbname(d);
                    }
                    if let Some(pw) = &i.password {
                        pg = pg.with_password(pw.resolve("postgres", "password").map_err(&err)?);
                    }
                    pg
                }
            };
            b = b.with_instance(DbRef::new(region, id), instance);
        }
    }
    let pg = b.build().map_err(build_err("database", "postgres"))?;
    Ok(Arc::new(pg))
}
