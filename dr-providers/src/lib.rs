//! Providers from a file: run a DR plan, as it is, against real clouds.
//!
//! A providers file maps each role of a plan to an implementation — per region the database
//! provider (RDS, self-managed PostgreSQL, simulated), per hosted zone the DNS provider
//! (Route 53, simulated), per cluster a kubeconfig context or the in-cluster service account
//! (or simulated), per store S3, Azure Blob, GCS, a local directory or memory, health checks
//! over HTTP(S), notification channels to the log. Endpoints, regions, profiles and
//! contexts are set there; credentials come from each SDK's own chain or from environment
//! variables the file names (`{ env: NAME }`), never from the file itself.
//!
//! ```yaml
//! aws: { endpoint: "http://127.0.0.1:5000" }      # shared by every AWS entry
//! databases:
//!   us-east-1: { kind: rds }
//!   us-west-2: { kind: rds }
//! dns:
//!   Z0SHOP: { kind: route53 }
//! clusters:
//!   prod-east: { kind: kubernetes, context: prod-east }
//!   dr-west: { kind: simulated }
//! stores:
//!   backups-azure: { kind: azure_blob, account: shopdr, access_key: { env: AZURE_STORAGE_KEY } }
//!   backups-gcs: { kind: gcs, bucket: shop-dr-backups }
//! health_checks:
//!   api-health: { kind: http, expect_status: 200-299, body_contains: ok, timeout: 5s }
//! notifications:
//!   oncall: { kind: log }
//! cdn:
//!   E2QWRUHAPOMQZL: { kind: cloudfront }
//! load_balancers:
//!   api-west: { kind: elbv2, region: us-west-2 }
//! node_groups:
//!   dr-west: { kind: eks, cluster_name: shop-dr }
//! secrets:
//!   us-east-1: { kind: secretsmanager }
//! volumes:
//!   us-east-1: { kind: ec2 }
//! caches:
//!   us-west-2: { kind: elasticache }
//! ```
//!
//! The `cdn`, `load_balancers`, `node_groups`, `secrets`, `volumes` and `caches` sections map
//! the CDN origin, load balancer, node capacity, secret manager, volume snapshot and managed
//! cache roles to CloudFront, ELBv2, EKS, Secrets Manager, EC2 and ElastiCache (feature
//! `aws`); a `caches` key is the recovery region a plan cache is restored in. What they do
//! not map is simulated under `default: simulated`; without it, a
//! distribution, target group, cluster or region they do not map has no provider (preflight
//! names it before anything runs). `node_groups` keys must be plan clusters; the
//! others are checked for their own settings only (an `elbv2` entry needs a region: its own,
//! its ARN's or `aws.region`).
//!
//! [`build`] checks the file against the plan — every plan resource must be mapped unless
//! the file says `default: simulated`; each problem names the role and the plan resource —
//! and builds the [`Providers`](dr_core::Providers) set. [`Built::check_reachability`] makes
//! a read-only call per mapped provider before the first change, and
//! [`Built::routed_calls`] lists which provider each call of a run goes to.
//!
//! [`permissions`] renders what a plan's runs need in each platform's own form (an IAM
//! policy, Azure and GCS roles, Kubernetes RBAC), without any SDK.
//!
//! Each provider crate is an optional feature (`aws`, `azure`, `gcp`, `k8s`, `postgres`): a
//! program that only uses AWS never builds the Azure or Kubernetes SDKs. A file naming a kind
//! whose feature is off is refused with a message naming the feature.
#![forbid(unsafe_code)]

mod build;
mod config;
mod error;
mod load;
mod notify;
pub mod permissions;
mod preflight;
mod probe;
mod validate;

use std::path::Path;

pub use build::{build, build_with, BuildOptions, Built, Route};
pub use config::{
    arn_region, AwsSettings, CdnKind, CdnProvider, ClusterKind, ClusterProvider, DatabaseKind,
    DatabaseProvider, DefaultProvider, DnsKind, DnsProvider, HealthCheckKind, HealthCheckProvider,
    LoadBalancerKind, LoadBalancerProvider, NodeGroupKind, NodeGroupProvider, NotificationKind,
    NotificationProvider, PgInstanceConfig, ProvidersConfig, RegionalProvider, SecretRef,
    SecretsKind, SecretsProvider, StoreKind, StoreProvider, VolumesKind, VolumesProvider,
};
pub use config::{CachesKind, CachesProvider};
pub use error::ProvidersError;
pub use load::MAX_PROVIDERS_BYTES;
pub use notify::LogNotifier;
pub use preflight::{Reachability, RoutedCall};

/// Whether this build supports `feature` (`aws`, `azure`, `gcp`, `k8s`, `postgres`).
///
/// # Examples
///
/// ```
/// assert_eq!(dr_providers::has_feature("aws"), cfg!(feature = "aws"));
/// ```
pub fn has_feature(feature: &str) -> bool {
    validate::feature_enabled(feature)
}

/// Loads the providers file at `path` and [`build_with`]s it for `plan`; relative paths in
/// the file start from its directory.
///
/// # Errors
/// As [`ProvidersConfig::load`] and [`build`].
///
/// # Examples
///
/// ```no_run
/// # async fn demo(plan: dr_core::plan::Plan) -> Result<(), dr_providers::ProvidersError> {
/// let built = dr_providers::load_and_build("providers.yaml".as_ref(), &plan, Default::default()).await?;
/// # Ok(()) }
/// ```
pub async fn load_and_build(
    path: &Path,
    plan: &dr_core::plan::Plan,
    mut opts: BuildOptions,
) -> Result<Built, ProvidersError> {
    let config = ProvidersConfig::load(path)?;
    opts.file = path.display().to_string();
    opts.base_dir = path.parent().map(Path::to_path_buf);
    build_with(&config, plan, &opts).await
}
