//! The providers file's model: which implementation serves each role of a plan.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use dr_core::provider::StatusRange;
use dr_core::{HumanDuration, Secret};
use serde::{Deserialize, Serialize};

/// A providers file: one entry per plan resource, keyed by the plan's names (regions for
/// databases, hosted zones for DNS, cluster, store, health-check and channel names).
///
/// # Examples
///
/// ```
/// use dr_providers::ProvidersConfig;
///
/// let config = ProvidersConfig::from_yaml(r#"
/// default: simulated
/// stores:
///   backups: { kind: local, path: /var/backups/dr }
/// health_checks:
///   api-health: { kind: http, expect_status: 200-299, body_contains: ok }
/// "#)?;
/// assert_eq!(config.stores.len(), 1);
/// # Ok::<(), dr_providers::ProvidersError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvidersConfig {
    /// What serves a plan resource the file does not map: nothing (an error naming it) unless
    /// this says `simulated`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<DefaultProvider>,
    /// Settings shared by every AWS provider (each entry may override them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsSettings>,
    /// The database provider of each region (the plan's region names).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub databases: BTreeMap<String, DatabaseProvider>,
    /// The DNS provider of each hosted zone (as the plan's records name it).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dns: BTreeMap<String, DnsProvider>,
    /// The client of each cluster (the plan's cluster names).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub clusters: BTreeMap<String, ClusterProvider>,
    /// Each snapshot store (the plan's store names).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stores: BTreeMap<String, StoreProvider>,
    /// How each health check is probed (the plan's health-check names).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub health_checks: BTreeMap<String, HealthCheckProvider>,
    /// Where each notification channel goes (the plan's channel names).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub notifications: BTreeMap<String, NotificationProvider>,
    /// The CDN provider of each distribution (by the id the plan gives it).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cdn: BTreeMap<String, CdnProvider>,
    /// The provider of each load balancer target group (by the name or ARN the plan gives
    /// it).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub load_balancers: BTreeMap<String, LoadBalancerProvider>,
    /// The node capacity provider of each cluster (the plan's cluster names).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_groups: BTreeMap<String, NodeGroupProvider>,
    /// The secret manager of each region (the regions the plan's credentials name).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, SecretsProvider>,
    /// The block volume snapshots of each region (the regions of the plan's services'
    /// volumes).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, VolumesProvider>,
    /// The managed caches of each region (the recovery regions the plan's caches are
    /// restored in).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub caches: BTreeMap<String, CachesProvider>,
}

/// The fallback for unmapped plan resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultProvider {
    /// The embedded simulated cloud.
    Simulated,
}

/// A credential: always the name of an environment variable, read when the providers are
/// built. Written `{ env: NAME }`; a literal value is refused by the loader with a message
/// that says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretRef {
    /// The environment variable holding the credential.
    pub env: String,
}

impl SecretRef {
    /// Reads the variable.
    ///
    /// # Errors
    /// `Unauthorized` naming the variable (and `what` needs it) when it is unset or empty.
    pub fn resolve(&self, provider: &str, what: &str) -> dr_core::Result<Secret> {
        match std::env::var(&self.env) {
            Ok(v) if !v.is_empty() => Ok(Secret::new(v)),
            _ => Err(dr_core::Error::Unauthorized {
                provider: provider.into(),
                message: format!(
                    "environment variable {} ({what}) is not set",
                    dr_core::redact::safe(&self.env)
                ),
            }),
        }
    }
}

/// What a literal credential's message says.
pub(crate) const LITERAL_CREDENTIAL: &str =
    "a credential cannot be written in the providers file; \
     put it in an environment variable and reference it as `{ env: VARIABLE_NAME }` \
     (or leave the field out to use the SDK's own credential chain)";

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Env {
            env: String,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Env(Env),
            Other(serde::de::IgnoredAny),
        }
        match Raw::deserialize(d)? {
            Raw::Env(Env { env }) => {
                let valid = !env.is_empty()
                    && env.len() <= 256
                    && env.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !env.starts_with(|c: char| c.is_ascii_digit());
                if valid {
                    Ok(SecretRef { env })
                } else {
                    Err(serde::de::Error::custom(format!(
                        "`{}` is not an environment variable name (ASCII letters, digits and `_`, not starting with a digit)",
                        dr_core::redact::safe(&env)
                    )))
                }
            }
            Raw::Other(_) => Err(serde::de::Error::custom(LITERAL_CREDENTIAL)),
        }
    }
}

/// AWS settings: region, endpoint (an emulator, a VPC endpoint), profile, and optionally
/// the environment variables holding the keys. Without keys, the SDK's chain is used
/// (environment, profile, SSO, instance or task role).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSettings {
    /// The AWS region (default: the entry's region, or the SDK's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// A custom endpoint URL (`http://127.0.0.1:5000` for moto).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// A named profile of `~/.aws/config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The variable holding the access key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<SecretRef>,
    /// The variable holding the secret access key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<SecretRef>,
    /// The variable holding a session token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<SecretRef>,
    /// The AWS account id, for the ARNs of `run-plan --permissions` (`*` without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

impl AwsSettings {
    /// These settings, with `over`'s fields taking precedence.
    pub fn merged(&self, over: &AwsSettings) -> AwsSettings {
        AwsSettings {
            region: over.region.clone().or_else(|| self.region.clone()),
            endpoint: over.endpoint.clone().or_else(|| self.endpoint.clone()),
            profile: over.profile.clone().or_else(|| self.profile.clone()),
            access_key_id: over
                .access_key_id
                .clone()
                .or_else(|| self.access_key_id.clone()),
            secret_access_key: over
                .secret_access_key
                .clone()
                .or_else(|| self.secret_access_key.clone()),
            session_token: over
                .session_token
                .clone()
                .or_else(|| self.session_token.clone()),
            account: over.account.clone().or_else(|| self.account.clone()),
        }
    }
}

/// Database provider kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseKind {
    /// Amazon RDS (`dr-aws`, feature `aws`).
    Rds,
    /// Self-managed PostgreSQL (`dr-postgres`, feature `postgres`).
    Postgres,
    /// The simulated cloud.
    Simulated,
}

/// The database provider of one region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseProvider {
    /// Which implementation.
    pub kind: DatabaseKind,
    /// AWS region (default: the entry's region for databases, else the file's `aws`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// A custom endpoint URL (an emulator, a VPC endpoint; Azure and GCS too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// AWS: a named profile of `~/.aws/config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// AWS: the variable holding the access key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<SecretRef>,
    /// AWS: the variable holding the secret access key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<SecretRef>,
    /// AWS: the variable holding a session token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<SecretRef>,
    /// PostgreSQL: the servers of this region, by the plan's instance or replica id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub instances: BTreeMap<String, PgInstanceConfig>,
}

/// One PostgreSQL server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgInstanceConfig {
    /// The variable holding a libpq connection string (it may carry the password).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<SecretRef>,
    /// Host (without `url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Port (default 5432).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// User (default `postgres`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Database (default `postgres`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dbname: Option<String>,
    /// The variable holding the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretRef>,
}

/// DNS provider kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DnsKind {
    /// Amazon Route 53 (`dr-aws`, feature `aws`).
    Route53,
    /// The simulated cloud.
    Simulated,
}

/// The DNS provider of one hosted zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsProvider {
    /// Which implementation.
    pub kind: DnsKind,
    /// AWS region (default: the entry's region for databases, else the file's `aws`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// A custom endpoint URL (an emulator, a VPC endpoint; Azure and GCS too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// AWS: a named profile of `~/.aws/config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// AWS: the variable holding the access key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<SecretRef>,
    /// AWS: the variable holding the secret access key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<SecretRef>,
    /// AWS: the variable holding a session token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<SecretRef>,
}

/// Cluster provider kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterKind {
    /// Kubernetes through kube-rs (`dr-k8s`, feature `k8s`).
    Kubernetes,
    /// The simulated cloud.
    Simulated,
}

/// The client of one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterProvider {
    /// Which implementation.
    pub kind: ClusterKind,
    /// Kubernetes: the kubeconfig context (`$KUBECONFIG` or `~/.kube/config`), with its
    /// own credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Kubernetes: the service account of the pod this runs in.
    #[serde(default)]
    pub in_cluster: bool,
}

/// Snapshot store kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// Amazon S3 (`dr-aws`, feature `aws`).
    S3,
    /// Azure Blob Storage (`dr-azure`, feature `azure`).
    AzureBlob,
    /// Google Cloud Storage (`dr-gcp`, feature `gcp`).
    Gcs,
    /// A directory on local disk.
    Local,
    /// In memory (lost when the process ends).
    Memory,
    /// The simulated cloud's store.
    Simulated,
}

/// One snapshot store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreProvider {
    /// Which implementation.
    pub kind: StoreKind,
    /// S3, GCS: the bucket (default: the plan store's `location`, else its name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// Azure: the container (default: the plan store's `location`, else its name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Azure: the storage account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Azure: the variable holding the account key (Shared Key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<SecretRef>,
    /// Azure: the variable holding a SAS token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sas_token: Option<SecretRef>,
    /// GCS, Azure: no credentials (emulators, public data).
    #[serde(default)]
    pub anonymous: bool,
    /// Local: the directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// AWS region (default: the entry's region for databases, else the file's `aws`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// A custom endpoint URL (an emulator, a VPC endpoint; Azure and GCS too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// AWS: a named profile of `~/.aws/config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// AWS: the variable holding the access key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<SecretRef>,
    /// AWS: the variable holding the secret access key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<SecretRef>,
    /// AWS: the variable holding a session token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<SecretRef>,
}

/// Health check provider kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthCheckKind {
    /// An HTTP(S) request ([`dr_core::provider::HttpProbe`]).
    Http,
    /// The simulated cloud's probe.
    Simulated,
}

/// How one health check is probed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckProvider {
    /// Which implementation.
    pub kind: HealthCheckKind,
    /// HTTP method (default `GET`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Statuses that count as healthy (default `200-299`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_status: Option<StatusRange>,
    /// Text the body must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// Per-request timeout (default 5 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
    /// Redirects followed, at most (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_redirects: Option<usize>,
    /// Consecutive healthy answers one check needs (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive: Option<u32>,
    /// Pause between those answers (default 1 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<HumanDuration>,
    /// Request headers, each from an environment variable (`Authorization: { env: HC_TOKEN }`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, SecretRef>,
    /// A PEM file of the CA to trust instead of the platform's roots (relative to the
    /// providers file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

impl HealthCheckProvider {
    /// The probe's check, without the CA and headers (resolved when built).
    pub(crate) fn check(&self) -> dr_core::provider::HttpCheck {
        let mut c = dr_core::provider::HttpCheck::default();
        if let Some(m) = &self.method {
            c.method = m.clone();
        }
        if let Some(r) = self.expect_status {
            c.expect_status = r;
        }
        c.body_contains = self.body_contains.clone();
        if let Some(t) = self.timeout {
            c.timeout = t.get();
        }
        if let Some(n) = self.max_redirects {
            c.max_redirects = n;
        }
        let interval = self
            .interval
            .map_or(Duration::from_secs(1), HumanDuration::get);
        c = c.with_consecutive(self.consecutive.unwrap_or(1), interval);
        for (header, secret) in &self.headers {
            c.headers_from_env
                .insert(header.clone(), secret.env.clone());
        }
        c
    }
}

/// Notification channel kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// A log line (`tracing`, target `dr_providers::notify`) per notification.
    Log,
    /// The simulated cloud's notifier (kept in memory).
    Simulated,
}

/// Where one notification channel goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationProvider {
    /// Which implementation.
    pub kind: NotificationKind,
}

/// CDN provider kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CdnKind {
    /// Amazon CloudFront (`dr-aws`, feature `aws`).
    Cloudfront,
}

/// The CDN provider of one distribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdnProvider {
    /// Which implementation.
    pub kind: CdnKind,
    /// AWS region requests are signed for (CloudFront is global; default `us-east-1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// A custom endpoint URL (an emulator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// AWS: a named profile of `~/.aws/config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// AWS: the variable holding the access key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<SecretRef>,
    /// AWS: the variable holding the secret access key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<SecretRef>,
    /// AWS: the variable holding a session token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<SecretRef>,
}

/// Load balancer provider kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadBalancerKind {
    /// Elastic Load Balancing v2 target groups (`dr-aws`, feature `aws`).
    Elbv2,
}

/// The provider of one load balancer target group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancerProvider {
    /// Which implementation.
    pub kind: LoadBalancerKind,
    /// AWS region of the target group (default: the region of its ARN, else the file's
    /// `aws.region`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// A custom endpoint URL (an emulator, a VPC endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// AWS: a named profile of `~/.aws/config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// AWS: the variable holding the access key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<SecretRef>,
    /// AWS: the variable holding the secret access key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<SecretRef>,
    /// AWS: the variable holding a session token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<SecretRef>,
}

/// Node capacity provider kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeGroupKind {
    /// Amazon EKS managed node groups (`dr-aws`, feature `aws`).
    Eks,
}

/// The node capacity provider of one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeGroupProvider {
    /// Which implementation.
    pub kind: NodeGroupKind,
    /// EKS: the cluster's name in EKS (default: the plan's cluster name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    /// AWS region of the cluster (default: the file's `aws.region`, else the plan
    /// cluster's region).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// A custom endpoint URL (an emulator, a VPC endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// AWS: a named profile of `~/.aws/config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// AWS: the variable holding the access key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<SecretRef>,
    /// AWS: the variable holding the secret access key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<SecretRef>,
    /// AWS: the variable holding a session token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<SecretRef>,
}

/// Secret manager kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretsKind {
    /// AWS Secrets Manager (`dr-aws`, feature `aws`).
    Secretsmanager,
}

/// A provider of a per-region role — the secret manager of one region, its block volume
/// snapshots, or its managed caches — whose entry's key is the region its requests go to: which implementation
/// (`K`), and its AWS settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionalProvider<K> {
    /// Which implementation.
    pub kind: K,
    /// A custom endpoint URL (an emulator, a VPC endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// AWS: a named profile of `~/.aws/config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// AWS: the variable holding the access key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<SecretRef>,
    /// AWS: the variable holding the secret access key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<SecretRef>,
    /// AWS: the variable holding a session token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<SecretRef>,
}

/// The secret manager of one region (the entry's key is the region its requests go to).
pub type SecretsProvider = RegionalProvider<SecretsKind>;

/// The block volume snapshots of one region (the entry's key is the region).
pub type VolumesProvider = RegionalProvider<VolumesKind>;

/// Block volume snapshot kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumesKind {
    /// EBS snapshots through the EC2 API (`dr-aws`, feature `aws`).
    Ec2,
}

/// The managed caches of one region, restored there from their backups (the entry's key is
/// the region).
pub type CachesProvider = RegionalProvider<CachesKind>;

/// Managed cache kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CachesKind {
    /// Amazon ElastiCache clusters restored from snapshots (`dr-aws`, feature `aws`).
    Elasticache,
}

impl<K> RegionalProvider<K> {
    /// The AWS settings written in this entry (its region is its key).
    pub fn aws(&self) -> AwsSettings {
        AwsSettings {
            region: None,
            endpoint: self.endpoint.clone(),
            profile: self.profile.clone(),
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.clone(),
            session_token: self.session_token.clone(),
            account: None,
        }
    }
}

/// The AWS region of a target group's ARN
/// (`arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/api/…` → `us-west-2`).
///
/// ```
/// let arn = "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/api/6d0ecf831eec9f09";
/// assert_eq!(dr_providers::arn_region(arn), Some("us-west-2"));
/// assert_eq!(dr_providers::arn_region("api-west"), None);
/// ```
pub fn arn_region(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(5, ':');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("arn"), Some(_), Some(_), Some(region)) if !region.is_empty() => Some(region),
        _ => None,
    }
}

/// The AWS settings an entry writes inline.
macro_rules! aws_fields {
    ($($t:ty),*) => {$(
        impl $t {
            /// The AWS settings written in this entry.
            pub fn aws(&self) -> AwsSettings {
                AwsSettings {
                    region: self.region.clone(),
                    endpoint: self.endpoint.clone(),
                    profile: self.profile.clone(),
                    access_key_id: self.access_key_id.clone(),
                    secret_access_key: self.secret_access_key.clone(),
                    session_token: self.session_token.clone(),
                    account: None,
                }
            }
        }
    )*};
}

aws_fields!(
    DatabaseProvider,
    DnsProvider,
    StoreProvider,
    CdnProvider,
    LoadBalancerProvider,
    NodeGroupProvider
);
