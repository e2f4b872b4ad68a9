#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod cloudfront;
mod config;
mod ec2;
mod eks;
mod elbv2;
mod error;
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
pub use elbv2::{target_state, Elbv2Targets};
pub use rds::{db_state, RdsDatabase};
pub use route53::{HealthCheckProtocol, HealthCheckSpec, Route53Dns, UNCHANGED};
pub use s3::{
    S3Store, DEFAULT_PART_SIZE, DEFAULT_UPLOAD_CONCURRENCY, MIN_PART_SIZE, SHA256_METADATA,
};
pub use secretsmanager::{version_token, SecretsManagerSecrets};
pub use sns::SnsNotifier;
