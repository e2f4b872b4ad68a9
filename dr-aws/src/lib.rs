#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod cloudfront;
mod config;
mod ec2;
mod eks;
mod elasticache;
mod elbv2;
mod error;
mod query;
mod rds;
mod route53;
mod s3;
mod secretsmanager;
mod sns;

pub use cloudfront::{CloudFrontCdn, DEPLOYED};
pub use config::{
    AwsBuilder, AwsConfig, DEFAULT_REGION, DEFAULT_RETRY_ATTEMPTS, RETRY_INITIAL_BACKOFF,
    RETRY_MAX_BACKOFF,
};
pub use ec2::Ec2Volumes;
pub use eks::{node_group_state, EksNodes};
pub use elasticache::ElastiCacheCaches;
pub use elbv2::{target_state, Elbv2Targets};
pub use rds::{db_state, RdsDatabase};
pub use route53::{HealthCheckProtocol, HealthCheckSpec, Route53Dns, UNCHANGED};
pub use s3::{
    S3Store, DEFAULT_PART_SIZE, DEFAULT_UPLOAD_CONCURRENCY, MIN_PART_SIZE, SHA256_METADATA,
    SHA256_TAG,
};
pub use secretsmanager::{version_token, SecretsManagerSecrets};
pub use sns::SnsNotifier;

/// The AWS SDK crates behind the providers, for callers of their `client()` (to create what
/// a provider acts on, or to make a call it does not make).
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use dr_aws::sdk::eks::types::NodegroupScalingConfig;
///
/// let eks = dr_aws::AwsConfig::from_env().await?.build_eks();
/// let scaling = NodegroupScalingConfig::builder().min_size(1).desired_size(1).max_size(6).build();
/// # let _ = (eks, scaling); Ok(()) }
/// ```
pub mod sdk {
    pub use aws_sdk_cloudfront as cloudfront;
    pub use aws_sdk_eks as eks;
    pub use aws_sdk_elasticloadbalancingv2 as elasticloadbalancingv2;
    pub use aws_sdk_rds as rds;
    pub use aws_sdk_route53 as route53;
    pub use aws_sdk_s3 as s3;
    pub use aws_sdk_secretsmanager as secretsmanager;
    pub use aws_sdk_sns as sns;
}
