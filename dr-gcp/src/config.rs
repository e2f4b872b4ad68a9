//! [`GcsBuilder`]: configuration of a [`GcsStore`](crate::GcsStore).

use std::time::Duration;

use dr_core::{Error, Result};
use google_cloud_auth::credentials::{anonymous, Credentials};
use google_cloud_gax::exponential_backoff::ExponentialBackoffBuilder;
use google_cloud_gax::retry_policy::RetryPolicyExt;
use google_cloud_storage::client::{Storage, StorageControl};
use google_cloud_storage::retry_policy::RetryableErrors;

use crate::client::GcsApi;
use crate::store::GcsStore;
use crate::PROVIDER;

const MIB: usize = 1024 * 1024;

/// SDK attempts per call (the first try included) unless configured otherwise; the same in
/// dr-aws, dr-azure and dr-gcp (see the crate documentation, "Retries").
pub const DEFAULT_RETRY_ATTEMPTS: u32 = 3;

/// The SDK's first backoff before a retry (jittered, doubling up to [`RETRY_MAX_BACKOFF`]).
pub const RETRY_INITIAL_BACKOFF: Duration = Duration::from_millis(100);

/// The longest backoff between two SDK attempts.
pub const RETRY_MAX_BACKOFF: Duration = Duration::from_secs(1);

/// How the store authenticates to Cloud Storage.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum GcsCredentials {
    /// Application Default Credentials, as resolved by `google-cloud-auth`
    /// (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud's user credentials, the metadata server).
    #[default]
    Default,
    /// No credentials: emulators and public buckets.
    Anonymous,
    /// Credentials built by the caller with `google-cloud-auth` (service account key,
    /// impersonation, workload identity federation…).
    Custom(Credentials),
}

impl std::fmt::Debug for GcsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GcsCredentials::Default => f.write_str("Default"),
            GcsCredentials::Anonymous => f.write_str("Anonymous"),
            GcsCredentials::Custom(_) => f.write_str("Custom(<redacted>)"),
        }
    }
}

/// Builds a [`GcsStore`], in the style of `object_store`'s `GoogleCloudStorageBuilder`.
///
/// `build` is `async`: the official clients resolve credentials while being built.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main] async fn main() -> dr_core::Result<()> {
/// use dr_gcp::{GcsBuilder, GcsCredentials};
///
/// // Cloud Storage with Application Default Credentials.
/// let store = GcsBuilder::new().with_bucket("backups").build().await?;
///
/// // From `GCS_BUCKET` and `STORAGE_EMULATOR_HOST` (anonymous when an emulator is set).
/// let store = GcsBuilder::from_env().build().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct GcsBuilder {
    bucket: Option<String>,
    endpoint: Option<String>,
    control_endpoint: Option<String>,
    credentials: GcsCredentials,
    upload_buffer: usize,
    attempts: u32,
    list_page_size: i32,
    control: Option<StorageControl>,
}

impl std::fmt::Debug for GcsBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcsBuilder")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("control_endpoint", &self.control_endpoint)
            .field("credentials", &self.credentials)
            .field("upload_buffer", &self.upload_buffer)
            .field("attempts", &self.attempts)
            .field("list_page_size", &self.list_page_size)
            .field("control", &self.control.as_ref().map(|_| "custom"))
            .finish()
    }
}

impl Default for GcsBuilder {
    fn default() -> Self {
        GcsBuilder {
            bucket: None,
            endpoint: None,
            control_endpoint: None,
            credentials: GcsCredentials::Default,
            upload_buffer: 8 * MIB,
            attempts: DEFAULT_RETRY_ATTEMPTS,
            list_page_size: 0,
            control: None,
        }
    }
}

fn env(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}

impl GcsBuilder {
    /// An empty builder: set at least the bucket.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder configured from the environment: the bucket from `GCS_BUCKET` (or
    /// `GOOGLE_STORAGE_BUCKET`); with `STORAGE_EMULATOR_HOST` (or `GCS_EMULATOR_URL`) set,
    /// that endpoint and anonymous credentials.
    pub fn from_env() -> Self {
        let mut b = Self::new();
        b.bucket = env(&["GCS_BUCKET", "GOOGLE_STORAGE_BUCKET"]);
        if let Some(e) = env(&["STORAGE_EMULATOR_HOST", "GCS_EMULATOR_URL"]) {
            let e = if e.contains("://") {
                e
            } else {
                format!("http://{e}")
            };
            b.endpoint = Some(e);
            b.credentials = GcsCredentials::Anonymous;
        }
        b
    }

    /// Sets the bucket.
    pub fn with_bucket(mut self, bucket: impl Into<String>) -> Self {
        self.bucket = Some(bucket.into());
        self
    }

    /// Sets the endpoint of both clients: an emulator (`http://127.0.0.1`), a private or
    /// regional endpoint. Defaults to `https://storage.googleapis.com`.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into().trim_end_matches('/').to_string());
        self
    }

    /// Sets the endpoint of the gRPC control client only (metadata, list, delete, rewrite),
    /// when it differs from [`with_endpoint`](Self::with_endpoint).
    pub fn with_control_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.control_endpoint = Some(endpoint.into());
        self
    }

    /// Sets the credentials.
    pub fn with_credentials(mut self, credentials: GcsCredentials) -> Self {
        self.credentials = credentials;
        self
    }

    /// Size of each resumable-upload chunk (a multiple of 256 KiB; default 8 MiB). Peak
    /// memory of an upload is about one chunk.
    pub fn with_upload_buffer_size(mut self, bytes: usize) -> Self {
        self.upload_buffer = bytes.max(256 * 1024);
        self
    }

    /// Attempts per call made by the clients' retry loop for transient failures (the first
    /// try included; default [`DEFAULT_RETRY_ATTEMPTS`], at least 1). `1` turns SDK retries
    /// off. An error returned after the last attempt keeps its temporary class (see
    /// "Retries" in the crate documentation).
    pub fn with_retry_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// Objects per listing page (0, the default, lets the service choose: 1000).
    pub fn with_list_page_size(mut self, n: u32) -> Self {
        self.list_page_size = i32::try_from(n).unwrap_or(i32::MAX);
        self
    }

    /// Uses `control` for the control calls instead of building one: a client made with
    /// `StorageControl::from_stub` (tests, or a transport of your own).
    pub fn with_control_client(mut self, control: StorageControl) -> Self {
        self.control = Some(control);
        self
    }

    /// Builds the store.
    ///
    /// # Errors
    /// `InvalidRequest` without a bucket; `Unauthorized` when credentials cannot be
    /// resolved.
    pub async fn build(self) -> Result<GcsStore> {
        let bucket = self.bucket.clone().ok_or_else(|| Error::InvalidRequest {
            provider: PROVIDER.into(),
            operation: "build".into(),
            message: "no bucket set (GCS_BUCKET)".into(),
        })?;
        let failed = |what: &str, e: &dyn std::fmt::Display| Error::Unauthorized {
            provider: PROVIDER.into(),
            message: format!("building the {what} client: {e}"),
        };
        let credentials = match &self.credentials {
            GcsCredentials::Default => None,
            GcsCredentials::Anonymous => Some(anonymous::Builder::new().build()),
            GcsCredentials::Custom(c) => Some(c.clone()),
        };
        let retry = || RetryableErrors.with_attempt_limit(self.attempts);
        let backoff = || {
            ExponentialBackoffBuilder::new()
                .with_initial_delay(RETRY_INITIAL_BACKOFF)
                .with_maximum_delay(RETRY_MAX_BACKOFF)
                .with_scaling(2.0)
                .build()
                .map_err(|e| Error::InvalidRequest {
                    provider: PROVIDER.into(),
                    operation: "build".into(),
                    message: format!("retry backoff: {e}"),
                })
        };
        let mut storage = Storage::builder()
            .with_retry_policy(retry())
            .with_backoff_policy(backoff()?);
        if let Some(e) = &self.endpoint {
            storage = storage.with_endpoint(e.clone());
        }
        if let Some(c) = &credentials {
            storage = storage.with_credentials(c.clone());
        }
        let storage = storage.build().await.map_err(|e| failed("storage", &e))?;
        let control = match self.control.clone() {
            Some(c) => c,
            None => {
                let mut control = StorageControl::builder()
                    .with_retry_policy(retry())
                    .with_backoff_policy(backoff()?);
                if let Some(e) = self.control_endpoint.as_ref().or(self.endpoint.as_ref()) {
                    control = control.with_endpoint(e.clone());
                }
                if let Some(c) = credentials {
                    control = control.with_credentials(c);
                }
                control.build().await.map_err(|e| failed("control", &e))?
            }
        };
        Ok(GcsStore::new(GcsApi {
            storage,
            control,
            bucket,
            upload_buffer: self.upload_buffer,
            list_page_size: self.list_page_size,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn build_needs_a_bucket() {
        let err = GcsBuilder::new()
            .with_credentials(GcsCredentials::Anonymous)
            .build()
            .await
            .err();
        assert!(matches!(err, Some(Error::InvalidRequest { .. })), "{err:?}");
    }

    #[test]
    fn debug_redacts_custom_credentials() {
        let b = GcsBuilder::new()
            .with_credentials(GcsCredentials::Custom(anonymous::Builder::new().build()));
        assert!(format!("{b:?}").contains("Custom(<redacted>)"));
    }
}
