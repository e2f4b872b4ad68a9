//! [`AwsBuilder`] and [`AwsConfig`]: one configuration for every AWS provider of this crate.

use std::fmt;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;
use dr_core::{Error, Result, Secret};

use crate::{RdsDatabase, Route53Dns, S3Store};

/// The region used when none is configured anywhere (Route 53 is global and signs there).
pub const DEFAULT_REGION: &str = "us-east-1";

/// SDK attempts per call (the first try included) unless configured otherwise; the same in
/// dr-aws, dr-azure and dr-gcp (see the crate documentation, "Retries").
pub const DEFAULT_RETRY_ATTEMPTS: u32 = 3;

/// The SDK's first backoff before a retry (jittered, doubling up to [`RETRY_MAX_BACKOFF`]).
pub const RETRY_INITIAL_BACKOFF: Duration = Duration::from_millis(100);

/// The longest backoff between two SDK attempts.
pub const RETRY_MAX_BACKOFF: Duration = Duration::from_secs(1);

const PROVIDER: &str = "aws";

/// Builds an [`AwsConfig`], in the style of `object_store`'s `AmazonS3Builder`: start from
/// [`AwsBuilder::new`] (nothing set: the SDK's own chains decide) or
/// [`AwsBuilder::from_env`], then override with typed setters.
///
/// Unset values fall back to the SDK's default chains: region from `AWS_REGION` or the
/// profile, credentials from the environment, profile files, web identity, ECS or EC2
/// metadata.
///
/// `Debug` never prints the secret key or session token.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use dr_aws::AwsBuilder;
///
/// let store = AwsBuilder::from_env()
///     .with_region("eu-west-1")
///     .with_bucket("dr-backups")
///     .with_retry_attempts(1) // let the dr-core executor own retries
///     .build_s3()
///     .await?;
/// # let _ = store; Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct AwsBuilder {
    region: Option<String>,
    endpoint: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<Secret>,
    session_token: Option<Secret>,
    profile: Option<String>,
    bucket: Option<String>,
    retry_attempts: Option<u32>,
    operation_timeout: Option<Duration>,
    force_path_style: Option<bool>,
    check_credentials: Option<bool>,
}

impl fmt::Debug for AwsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsBuilder")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key)
            .field("session_token", &self.session_token)
            .field("profile", &self.profile)
            .field("bucket", &self.bucket)
            .field("retry_attempts", &self.retry_attempts)
            .field("operation_timeout", &self.operation_timeout)
            .field("force_path_style", &self.force_path_style)
            .finish()
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl AwsBuilder {
    /// A builder with nothing set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder that reads `AWS_REGION` (or `AWS_DEFAULT_REGION`), `AWS_ENDPOINT_URL`,
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, `AWS_PROFILE`,
    /// `AWS_BUCKET` (or `AWS_BUCKET_NAME`) and `AWS_MAX_ATTEMPTS`.
    ///
    /// An access key without a secret key (or the reverse) is reported by
    /// [`load`](Self::load) as `Unauthorized`.
    pub fn from_env() -> Self {
        let mut b = Self::new();
        b.region = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION"));
        b.endpoint = env("AWS_ENDPOINT_URL");
        b.access_key_id = env("AWS_ACCESS_KEY_ID");
        b.secret_access_key = env("AWS_SECRET_ACCESS_KEY").map(Secret::new);
        b.session_token = env("AWS_SESSION_TOKEN").map(Secret::new);
        b.profile = env("AWS_PROFILE");
        b.bucket = env("AWS_BUCKET").or_else(|| env("AWS_BUCKET_NAME"));
        b.retry_attempts = env("AWS_MAX_ATTEMPTS").and_then(|v| v.parse().ok());
        b
    }

    /// Sets the region (`us-west-2`).
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Sends every request to `endpoint` (`http://127.0.0.1:5000` for moto, or an on-premises
    /// S3-compatible service) instead of AWS. Turns on path-style S3 addressing unless
    /// [`with_force_path_style`](Self::with_force_path_style) says otherwise.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Uses these static credentials instead of the SDK's credential chain.
    pub fn with_credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        self.access_key_id = Some(access_key_id.into());
        self.secret_access_key = Some(Secret::new(secret_access_key));
        self
    }

    /// Adds a session token to the static credentials.
    pub fn with_session_token(mut self, token: impl Into<String>) -> Self {
        self.session_token = Some(Secret::new(token));
        self
    }

    /// Uses a named profile from the shared config and credentials files.
    pub fn with_profile(mut self, profile: impl Into<String>) -> Self {
        self.profile = Some(profile.into());
        self
    }

    /// The bucket [`build_s3`](Self::build_s3) opens.
    pub fn with_bucket(mut self, bucket: impl Into<String>) -> Self {
        self.bucket = Some(bucket.into());
        self
    }

    /// Attempts per call made by the SDK's standard retry mode (the first try included;
    /// default [`DEFAULT_RETRY_ATTEMPTS`]). `1` turns SDK retries off, for when the dr-core
    /// executor should own retries.
    pub fn with_retry_attempts(mut self, attempts: u32) -> Self {
        self.retry_attempts = Some(attempts.max(1));
        self
    }

    /// A deadline for each call, retries included (none by default).
    pub fn with_operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = Some(timeout);
        self
    }

    /// Path-style S3 addressing (`endpoint/bucket/key`). On by default when an endpoint is
    /// overridden, off otherwise.
    pub fn with_force_path_style(mut self, force: bool) -> Self {
        self.force_path_style = Some(force);
        self
    }

    /// Whether [`load`](Self::load) resolves credentials once to fail early (default `true`).
    pub fn with_credentials_check(mut self, check: bool) -> Self {
        self.check_credentials = Some(check);
        self
    }

    /// Resolves the configuration: the SDK's chains fill in what was not set.
    ///
    /// # Errors
    /// `Unauthorized` when credentials are incomplete or none can be found, naming what is
    /// missing (never a secret).
    pub async fn load(self) -> Result<AwsConfig> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = &self.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &self.endpoint {
            loader = loader.endpoint_url(endpoint.clone());
        }
        if let Some(profile) = &self.profile {
            loader = loader.profile_name(profile.clone());
        }
        match (&self.access_key_id, &self.secret_access_key) {
            (Some(ak), Some(sk)) => {
                let creds = Credentials::new(
                    ak.clone(),
                    sk.expose().to_string(),
                    self.session_token.as_ref().map(|t| t.expose().to_string()),
                    None,
                    "dr-aws",
                );
                loader = loader.credentials_provider(creds);
            }
            (Some(_), None) => {
                return Err(unauthorized(
                    "AWS_SECRET_ACCESS_KEY is not set (an access key id is)",
                ))
            }
            (None, Some(_)) => {
                return Err(unauthorized(
                    "AWS_ACCESS_KEY_ID is not set (a secret access key is)",
                ))
            }
            (None, None) => {}
        }
        let attempts = self.retry_attempts.unwrap_or(DEFAULT_RETRY_ATTEMPTS);
        loader = loader.retry_config(
            RetryConfig::standard()
                .with_max_attempts(attempts)
                .with_initial_backoff(RETRY_INITIAL_BACKOFF)
                .with_max_backoff(RETRY_MAX_BACKOFF),
        );
        if let Some(timeout) = self.operation_timeout {
            loader =
                loader.timeout_config(TimeoutConfig::builder().operation_timeout(timeout).build());
        }
        let mut sdk = loader.load().await;
        if sdk.region().is_none() {
            tracing::debug!("no AWS region configured, using {DEFAULT_REGION}");
            sdk = sdk
                .into_builder()
                .region(Region::new(DEFAULT_REGION))
                .build();
        }
        if self.check_credentials.unwrap_or(true) {
            check_credentials(&sdk).await?;
        }
        Ok(AwsConfig {
            force_path_style: self.force_path_style.unwrap_or(self.endpoint.is_some()),
            endpoint: self.endpoint,
            bucket: self.bucket,
            operation_timeout: self.operation_timeout,
            sdk,
        })
    }

    /// Loads the configuration and opens the bucket set by [`with_bucket`](Self::with_bucket).
    ///
    /// # Errors
    /// As [`load`](Self::load); `InvalidRequest` when no bucket is set.
    pub async fn build_s3(self) -> Result<S3Store> {
        self.load().await?.build_s3()
    }

    /// Loads the configuration and builds the RDS provider.
    ///
    /// # Errors
    /// As [`load`](Self::load).
    pub async fn build_rds(self) -> Result<RdsDatabase> {
        Ok(self.load().await?.build_rds())
    }

    /// Loads the configuration and builds the Route 53 provider.
    ///
    /// # Errors
    /// As [`load`](Self::load).
    pub async fn build_route53(self) -> Result<Route53Dns> {
        Ok(self.load().await?.build_route53())
    }
}

fn unauthorized(message: &str) -> Error {
    Error::Unauthorized {
        provider: PROVIDER.to_string(),
        message: message.to_string(),
    }
}

async fn check_credentials(sdk: &SdkConfig) -> Result<()> {
    let Some(provider) = sdk.credentials_provider() else {
        return Err(unauthorized("no AWS credentials provider is configured"));
    };
    match provider.provide_credentials().await {
        Ok(_) => Ok(()),
        Err(CredentialsError::CredentialsNotLoaded(_)) => Err(unauthorized(
            "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
             a profile, web identity, or run where instance metadata provides them",
        )),
        Err(e) => Err(Error::Unauthorized {
            provider: PROVIDER.to_string(),
            message: format!("AWS credentials could not be loaded: {e}"),
        }),
    }
}

/// A resolved AWS configuration, shared by the providers it builds.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// let aws = dr_aws::AwsConfig::from_env().await?;
/// let rds = aws.build_rds();
/// let dns = aws.build_route53();
/// # let _ = (rds, dns); Ok(()) }
/// ```
#[derive(Clone)]
pub struct AwsConfig {
    sdk: SdkConfig,
    endpoint: Option<String>,
    bucket: Option<String>,
    force_path_style: bool,
    operation_timeout: Option<Duration>,
}

impl fmt::Debug for AwsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsConfig")
            .field("region", &self.sdk.region())
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("force_path_style", &self.force_path_style)
            .field("operation_timeout", &self.operation_timeout)
            .finish_non_exhaustive()
    }
}

impl AwsConfig {
    /// Loads [`AwsBuilder::from_env`].
    ///
    /// # Errors
    /// As [`AwsBuilder::load`].
    pub async fn from_env() -> Result<AwsConfig> {
        AwsBuilder::from_env().load().await
    }

    /// A new builder (same as [`AwsBuilder::new`]).
    pub fn builder() -> AwsBuilder {
        AwsBuilder::new()
    }

    /// The SDK configuration, to build other AWS clients with the same settings.
    pub fn sdk_config(&self) -> &SdkConfig {
        &self.sdk
    }

    /// The region requests go to by default.
    pub fn region(&self) -> &str {
        self.sdk.region().map_or(DEFAULT_REGION, |r| r.as_ref())
    }

    /// The S3 store over the configured bucket.
    ///
    /// # Errors
    /// `InvalidRequest` when no bucket is configured.
    pub fn build_s3(&self) -> Result<S3Store> {
        let bucket = self.bucket.clone().ok_or_else(|| Error::InvalidRequest {
            provider: "s3".into(),
            operation: "build".into(),
            message: "no bucket: call with_bucket or set AWS_BUCKET".into(),
        })?;
        Ok(self.build_s3_for(bucket))
    }

    /// The S3 store over `bucket` (another bucket, same settings).
    pub fn build_s3_for(&self, bucket: impl Into<String>) -> S3Store {
        let conf = aws_sdk_s3::config::Builder::from(&self.sdk)
            .force_path_style(self.force_path_style)
            .build();
        S3Store::new(aws_sdk_s3::Client::from_conf(conf), bucket)
            .with_timeout(self.operation_timeout)
    }

    /// The RDS provider (one client per region, made on first use).
    pub fn build_rds(&self) -> RdsDatabase {
        RdsDatabase::from_conf(aws_sdk_rds::Config::new(&self.sdk))
            .with_timeout(self.operation_timeout)
    }

    /// The Route 53 provider.
    pub fn build_route53(&self) -> Route53Dns {
        Route53Dns::new(aws_sdk_route53::Client::new(&self.sdk))
            .with_timeout(self.operation_timeout)
    }

    /// The CloudFront provider (CloudFront is global: the configured region only signs).
    pub fn build_cloudfront(&self) -> crate::CloudFrontCdn {
        crate::CloudFrontCdn::new(aws_sdk_cloudfront::Client::new(&self.sdk))
            .with_timeout(self.operation_timeout)
    }

    /// The ELBv2 target group provider, in the configured region.
    pub fn build_elbv2(&self) -> crate::Elbv2Targets {
        crate::Elbv2Targets::new(aws_sdk_elasticloadbalancingv2::Client::new(&self.sdk))
            .with_timeout(self.operation_timeout)
    }

    /// The EKS node group provider, in the configured region (map plan cluster names to
    /// EKS names with [`EksNodes::with_cluster_name`](crate::EksNodes::with_cluster_name)).
    pub fn build_eks(&self) -> crate::EksNodes {
        crate::EksNodes::new(aws_sdk_eks::Client::new(&self.sdk))
            .with_timeout(self.operation_timeout)
    }

    /// The EC2 volume snapshot provider, any region, signing with the resolved credentials
    /// and sending to the configured endpoint when there is one.
    ///
    /// # Errors
    /// `InvalidRequest` when the HTTP client cannot be built.
    pub fn build_ec2_volumes(&self) -> Result<crate::Ec2Volumes> {
        crate::Ec2Volumes::new(
            self.sdk.credentials_provider(),
            self.sdk.endpoint_url().map(str::to_string),
            self.operation_timeout,
        )
    }

    /// The ElastiCache cache restore provider, any region, signing with the resolved
    /// credentials and sending to the configured endpoint when there is one.
    ///
    /// # Errors
    /// `InvalidRequest` when the HTTP client cannot be built.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
    /// use dr_core::provider::CacheRestore;
    ///
    /// let caches = dr_aws::AwsConfig::from_env().await?.build_elasticache_caches()?;
    /// let cache = caches.describe_cache("us-west-2", "shop-sessions-dr").await?;
    /// println!("{:?} at {:?}", cache.state, cache.endpoint);
    /// # Ok(()) }
    /// ```
    pub fn build_elasticache_caches(&self) -> Result<crate::ElastiCacheCaches> {
        crate::ElastiCacheCaches::new(
            self.sdk.credentials_provider(),
            self.sdk.endpoint_url().map(str::to_string),
            self.operation_timeout,
        )
    }

    /// The Secrets Manager provider (one client per region, made on first use).
    pub fn build_secretsmanager(&self) -> crate::SecretsManagerSecrets {
        crate::SecretsManagerSecrets::from_conf(aws_sdk_secretsmanager::Config::new(&self.sdk))
            .with_timeout(self.operation_timeout)
    }

    /// The SNS notifier (add its topics with [`SnsNotifier::topic`](crate::SnsNotifier::topic)).
    pub fn build_sns(&self) -> crate::SnsNotifier {
        crate::SnsNotifier::new(aws_sdk_sns::Client::new(&self.sdk))
            .with_timeout(self.operation_timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_secrets() {
        let b = AwsBuilder::new()
            .with_credentials("AKIDEXAMPLE", "wJalrXUtnFEMI-very-secret")
            .with_session_token("token-secret");
        let shown = format!("{b:?}");
        assert!(shown.contains("AKIDEXAMPLE"));
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(!shown.contains("token-secret"), "{shown}");
    }

    #[tokio::test]
    async fn incomplete_credentials_are_unauthorized_without_the_secret() {
        let mut b = AwsBuilder::new().with_credentials("AKIDEXAMPLE", "s3cr3t-value");
        b.access_key_id = None;
        let err = b.load().await.expect_err("must fail");
        let Error::Unauthorized { message, .. } = &err else {
            panic!("expected Unauthorized, got {err}");
        };
        assert!(message.contains("AWS_ACCESS_KEY_ID"), "{message}");
        assert!(!err.to_string().contains("s3cr3t"));

        let mut b = AwsBuilder::new();
        b.access_key_id = Some("AKIDEXAMPLE".into());
        let err = b.load().await.expect_err("must fail");
        assert!(err.to_string().contains("AWS_SECRET_ACCESS_KEY"), "{err}");
    }

    #[tokio::test]
    async fn endpoint_turns_on_path_style_and_retries_default_to_three() {
        let aws = AwsBuilder::new()
            .with_region("eu-west-1")
            .with_endpoint("http://127.0.0.1:1")
            .with_credentials("AKIDEXAMPLE", "secret")
            .load()
            .await
            .expect("static credentials load");
        assert!(aws.force_path_style);
        assert_eq!(aws.region(), "eu-west-1");
        let retry = aws.sdk_config().retry_config().expect("retry config set");
        assert_eq!(retry.max_attempts(), DEFAULT_RETRY_ATTEMPTS);
        assert_eq!(retry.initial_backoff(), RETRY_INITIAL_BACKOFF);
        assert_eq!(retry.max_backoff(), RETRY_MAX_BACKOFF);
        assert!(aws.build_s3().is_err(), "no bucket configured");
    }
}
