//! [`AzureBlobBuilder`]: configuration of an [`AzureBlobStore`](crate::AzureBlobStore).

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions, ExponentialRetryOptions, RetryOptions, Url};
use azure_storage_blob::{BlobContainerClient, BlobContainerClientOptions};
use dr_core::{Error, Result};

use crate::auth::SharedKeyPolicy;
use crate::client::BlobApi;
use crate::store::AzureBlobStore;
use crate::PROVIDER;

const MIB: usize = 1024 * 1024;

/// SDK attempts per call (the first try included) unless configured otherwise; the same in
/// dr-aws, dr-azure and dr-gcp (see the crate documentation, "Retries").
pub const DEFAULT_RETRY_ATTEMPTS: u32 = 3;

/// The SDK's first backoff before a retry (jittered, doubling up to [`RETRY_MAX_BACKOFF`]).
pub const RETRY_INITIAL_BACKOFF: Duration = Duration::from_millis(100);

/// The longest backoff between two SDK attempts.
pub const RETRY_MAX_BACKOFF: Duration = Duration::from_secs(1);

/// How the store authenticates to Blob Storage.
#[derive(Clone)]
#[non_exhaustive]
pub enum AzureCredential {
    /// Shared Key: requests are signed with the storage account key (base64).
    SharedKey(String),
    /// A SAS token (`sv=…&sig=…`, with or without a leading `?`), appended to every URL.
    Sas(String),
    /// An Entra ID token credential from `azure_identity` (managed identity, workload
    /// identity, a service principal, the Azure CLI…). Needs an `https` endpoint.
    Token(Arc<dyn TokenCredential>),
    /// The `azure_identity` chain picked from the environment at build time: workload
    /// identity (`AZURE_FEDERATED_TOKEN_FILE`), then a client secret
    /// (`AZURE_CLIENT_SECRET`), then managed identity (when `IDENTITY_ENDPOINT` or
    /// `AZURE_USE_MANAGED_IDENTITY` is set), then the developer tools (Azure CLI, azd).
    DefaultChain,
    /// No authentication (public containers, or a SAS already in the endpoint URL).
    Anonymous,
}

impl std::fmt::Debug for AzureCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AzureCredential::SharedKey(_) => f.write_str("SharedKey(<redacted>)"),
            AzureCredential::Sas(_) => f.write_str("Sas(<redacted>)"),
            AzureCredential::Token(t) => f.debug_tuple("Token").field(t).finish(),
            AzureCredential::DefaultChain => f.write_str("DefaultChain"),
            AzureCredential::Anonymous => f.write_str("Anonymous"),
        }
    }
}

/// Builds an [`AzureBlobStore`], in the style of `object_store`'s `MicrosoftAzureBuilder`.
///
/// # Examples
///
/// ```no_run
/// # fn main() -> dr_core::Result<()> {
/// use dr_azure::{AzureBlobBuilder, AzureCredential};
///
/// // Azurite, with the published development account.
/// let store = AzureBlobBuilder::new()
///     .with_account("devstoreaccount1")
///     .with_container("backups")
///     .with_endpoint("http://127.0.0.1:10000/devstoreaccount1")
///     .with_credential(AzureCredential::SharedKey("Eby8vdM0…".into()))
///     .build()?;
///
/// // Real Azure, configured from `AZURE_STORAGE_*` variables and the identity chain.
/// let store = AzureBlobBuilder::from_env().with_container("backups").build()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct AzureBlobBuilder {
    account: Option<String>,
    container: Option<String>,
    endpoint: Option<String>,
    credential: Option<AzureCredential>,
    block_size: usize,
    upload_concurrency: usize,
    block_md5: bool,
    download_concurrency: usize,
    download_partition: usize,
    retry_attempts: u32,
    copy_timeout: Duration,
    list_page_size: Option<u32>,
}

impl Default for AzureBlobBuilder {
    fn default() -> Self {
        AzureBlobBuilder {
            account: None,
            container: None,
            endpoint: None,
            credential: None,
            block_size: 8 * MIB,
            upload_concurrency: 3,
            block_md5: true,
            download_concurrency: 1,
            download_partition: 8 * MIB,
            retry_attempts: DEFAULT_RETRY_ATTEMPTS,
            copy_timeout: Duration::from_secs(600),
            list_page_size: None,
        }
    }
}

fn env(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}

impl AzureBlobBuilder {
    /// An empty builder: set at least the account (or an endpoint) and the container.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder configured from the environment:
    ///
    /// | variable | setting |
    /// |---|---|
    /// | `AZURE_STORAGE_ACCOUNT_NAME` or `AZURE_STORAGE_ACCOUNT` | account |
    /// | `AZURE_STORAGE_CONTAINER` | container |
    /// | `AZURE_STORAGE_ENDPOINT` or `AZURE_STORAGE_BLOB_ENDPOINT` | endpoint |
    /// | `AZURE_STORAGE_ACCOUNT_KEY` or `AZURE_STORAGE_KEY` | Shared Key credential |
    /// | `AZURE_STORAGE_SAS_TOKEN` | SAS credential |
    ///
    /// Without a key or a SAS the credential is [`AzureCredential::DefaultChain`].
    pub fn from_env() -> Self {
        let mut b = Self::new();
        b.account = env(&["AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT"]);
        b.container = env(&["AZURE_STORAGE_CONTAINER"]);
        b.endpoint = env(&["AZURE_STORAGE_ENDPOINT", "AZURE_STORAGE_BLOB_ENDPOINT"]);
        b.credential = if let Some(key) = env(&["AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_KEY"]) {
            Some(AzureCredential::SharedKey(key))
        } else {
            env(&["AZURE_STORAGE_SAS_TOKEN"]).map(AzureCredential::Sas)
        };
        b
    }

    /// Sets the storage account name.
    pub fn with_account(mut self, account: impl Into<String>) -> Self {
        self.account = Some(account.into());
        self
    }

    /// Sets the container the store reads and writes.
    pub fn with_container(mut self, container: impl Into<String>) -> Self {
        self.container = Some(container.into());
        self
    }

    /// Sets the Blob service URL, for Azurite (`http://127.0.0.1:10000/devstoreaccount1`),
    /// sovereign clouds (`https://acct.blob.core.chinacloudapi.cn`) or private endpoints.
    /// Defaults to `https://{account}.blob.core.windows.net`. A trailing `/` is removed.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Sets the credential.
    pub fn with_credential(mut self, credential: AzureCredential) -> Self {
        self.credential = Some(credential);
        self
    }

    /// Shorthand for [`AzureCredential::SharedKey`].
    pub fn with_access_key(self, key: impl Into<String>) -> Self {
        self.with_credential(AzureCredential::SharedKey(key.into()))
    }

    /// Shorthand for [`AzureCredential::Sas`].
    pub fn with_sas_token(self, sas: impl Into<String>) -> Self {
        self.with_credential(AzureCredential::Sas(sas.into()))
    }

    /// Size of each staged block (Put Block), 4–100 MiB sensible; default 8 MiB. Objects
    /// smaller than one block are written with a single Put Blob.
    pub fn with_block_size(mut self, bytes: usize) -> Self {
        self.block_size = bytes.max(1);
        self
    }

    /// Blocks staged in parallel by one upload (default 3). Peak memory of an upload is about
    /// `(concurrency + 1) × block size` (32 MiB by default): the blocks in flight and the one
    /// filling, reused from block to block and freed when the upload ends.
    pub fn with_upload_concurrency(mut self, n: usize) -> Self {
        self.upload_concurrency = n.max(1);
        self
    }

    /// Whether each staged block is sent with its MD5 (`Content-MD5`), which the service
    /// checks before it keeps the block (default `true`). The MD5s are computed on blocking
    /// threads, the blocks in flight in parallel, alongside the SHA-256 of the whole object.
    /// Turning it off saves that CPU time; the object's SHA-256 (its `sha256` metadata
    /// entry) is recorded either way. Azurite, which otherwise computes a CRC-64 of every
    /// block itself, stages blocks about twice as fast with it.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = dr_azure::AzureBlobBuilder::from_env()
    ///     .with_container("backups")
    ///     .with_block_md5(false);
    /// ```
    pub fn with_block_md5(mut self, on: bool) -> Self {
        self.block_md5 = on;
        self
    }

    /// Ranged reads in parallel by one download (default 1: one Get Blob for the whole
    /// object, its body streamed as it arrives, which is the fastest and smallest on a
    /// nearby endpoint). With more, the object is read in ranges of the
    /// [partition size](Self::with_download_partition_size), that many at a time, every
    /// range after the first locked to the first one's etag, so that a blob replaced during
    /// the download fails it instead of mixing versions; this can be faster over long,
    /// lossy paths where one connection is slow.
    ///
    /// # Examples
    ///
    /// ```
    /// // Four 8 MiB ranges in flight: up to 64 MiB buffered by the download.
    /// let builder = dr_azure::AzureBlobBuilder::from_env()
    ///     .with_container("backups")
    ///     .with_download_concurrency(4)
    ///     .with_download_partition_size(8 * 1024 * 1024);
    /// ```
    pub fn with_download_concurrency(mut self, n: usize) -> Self {
        self.download_concurrency = n.max(1);
        self
    }

    /// Size of each ranged read of a download with a
    /// [concurrency](Self::with_download_concurrency) above 1 (default 8 MiB, at least
    /// 64 KiB). The SDK keeps up to twice the download concurrency of these in memory.
    pub fn with_download_partition_size(mut self, bytes: usize) -> Self {
        self.download_partition = bytes.max(64 * 1024);
        self
    }

    /// Attempts per call made by the SDK pipeline for transient failures (the first try
    /// included; default [`DEFAULT_RETRY_ATTEMPTS`], at least 1). `1` turns SDK retries off.
    /// An error returned after the last attempt keeps its temporary class (see "Retries" in
    /// the crate documentation).
    pub fn with_retry_attempts(mut self, attempts: u32) -> Self {
        self.retry_attempts = attempts.max(1);
        self
    }

    /// How long a server-side copy may stay pending before `copy` gives up (default 10 min).
    pub fn with_copy_timeout(mut self, timeout: Duration) -> Self {
        self.copy_timeout = timeout;
        self
    }

    /// Blobs per List Blobs page (the service's default and maximum is 5000).
    pub fn with_list_page_size(mut self, n: u32) -> Self {
        self.list_page_size = Some(n.clamp(1, 5000));
        self
    }

    /// Builds the store. Makes no network call.
    ///
    /// # Errors
    /// `InvalidRequest` for a missing container, a missing account and endpoint, or an
    /// endpoint that is not a URL; `Unauthorized` when the identity chain cannot be built.
    pub fn build(self) -> Result<AzureBlobStore> {
        let invalid = |message: String| Error::InvalidRequest {
            provider: PROVIDER.into(),
            operation: "build".into(),
            message,
        };
        let container = self
            .container
            .clone()
            .ok_or_else(|| invalid("no container set (AZURE_STORAGE_CONTAINER)".into()))?;
        let endpoint = match (&self.endpoint, &self.account) {
            (Some(e), _) => e.trim_end_matches('/').to_string(),
            (None, Some(a)) => format!("https://{a}.blob.core.windows.net"),
            (None, None) => {
                return Err(invalid(
                    "no account or endpoint set (AZURE_STORAGE_ACCOUNT_NAME)".into(),
                ))
            }
        };
        let mut service =
            Url::parse(&endpoint).map_err(|e| invalid(format!("endpoint {endpoint}: {e}")))?;
        let account = match &self.account {
            Some(a) => a.clone(),
            None => account_from_url(&service)
                .ok_or_else(|| invalid(format!("cannot tell the account from {endpoint}")))?,
        };
        let mut container_url = service.clone();
        container_url
            .path_segments_mut()
            .map_err(|()| invalid(format!("endpoint {endpoint} cannot be a base URL")))?
            .pop_if_empty()
            .push(&container);
        service.set_query(None);

        let mut client_options = ClientOptions {
            retry: RetryOptions::exponential(ExponentialRetryOptions {
                max_retries: self.retry_attempts - 1,
                initial_delay: azure_core::time::Duration::try_from(RETRY_INITIAL_BACKOFF)
                    .unwrap_or(azure_core::time::Duration::milliseconds(100)),
                max_delay: azure_core::time::Duration::try_from(RETRY_MAX_BACKOFF)
                    .unwrap_or(azure_core::time::Duration::seconds(1)),
                ..ExponentialRetryOptions::default()
            }),
            ..ClientOptions::default()
        };
        let mut token = None;
        let mut shared_key = None;
        let mut sas = None;
        match self
            .credential
            .clone()
            .unwrap_or(AzureCredential::DefaultChain)
        {
            AzureCredential::SharedKey(key) => {
                client_options.per_try_policies.push(SharedKeyPolicy::new(
                    account.clone(),
                    Secret::new(key.clone()),
                ));
                shared_key = Some(key);
            }
            AzureCredential::Sas(s) => {
                let s = s.trim_start_matches('?').to_string();
                container_url.set_query(Some(&s));
                sas = Some(s);
            }
            AzureCredential::Token(t) => token = Some(t),
            AzureCredential::DefaultChain => token = Some(default_chain()?),
            AzureCredential::Anonymous => {}
        }
        let options = BlobContainerClientOptions {
            client_options,
            ..BlobContainerClientOptions::default()
        };
        let client = BlobContainerClient::new(container_url, token, Some(options))
            .map_err(|e| invalid(format!("container client: {e}")))?;
        let api = BlobApi::new(
            client,
            self.download_concurrency,
            self.download_partition,
            self.list_page_size,
        );
        Ok(AzureBlobStore::new(
            api,
            crate::store::Settings {
                account,
                container,
                service,
                shared_key,
                sas,
                block_size: self.block_size,
                upload_concurrency: self.upload_concurrency,
                block_md5: self.block_md5,
                copy_timeout: self.copy_timeout,
            },
        ))
    }
}

/// `devstoreaccount1` from `http://127.0.0.1:10000/devstoreaccount1`, `acct` from
/// `https://acct.blob.core.windows.net`.
fn account_from_url(url: &Url) -> Option<String> {
    if let Some(first) = url.path_segments().and_then(|mut s| s.next()) {
        if !first.is_empty() {
            return Some(first.to_string());
        }
    }
    let host = url.host_str()?;
    let (account, rest) = host.split_once('.')?;
    rest.starts_with("blob.").then(|| account.to_string())
}

fn default_chain() -> Result<Arc<dyn TokenCredential>> {
    use azure_identity::{
        ClientSecretCredential, DeveloperToolsCredential, ManagedIdentityCredential,
        WorkloadIdentityCredential,
    };
    let unauthorized = |e: azure_core::Error| Error::Unauthorized {
        provider: PROVIDER.into(),
        message: format!("identity chain: {e}"),
    };
    if env(&["AZURE_FEDERATED_TOKEN_FILE"]).is_some() {
        return Ok(WorkloadIdentityCredential::new(None).map_err(unauthorized)?);
    }
    if let (Some(tenant), Some(client), Some(secret)) = (
        env(&["AZURE_TENANT_ID"]),
        env(&["AZURE_CLIENT_ID"]),
        env(&["AZURE_CLIENT_SECRET"]),
    ) {
        return Ok(
            ClientSecretCredential::new(&tenant, client, Secret::new(secret), None)
                .map_err(unauthorized)?,
        );
    }
    if env(&["IDENTITY_ENDPOINT", "AZURE_USE_MANAGED_IDENTITY"]).is_some() {
        return Ok(ManagedIdentityCredential::new(None).map_err(unauthorized)?);
    }
    Ok(DeveloperToolsCredential::new(None).map_err(unauthorized)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_secrets() {
        let b = AzureBlobBuilder::new()
            .with_account("acct")
            .with_access_key("c2VjcmV0a2V5");
        let shown = format!("{b:?}");
        assert!(!shown.contains("c2VjcmV0a2V5"), "{shown}");
        let b = AzureBlobBuilder::new().with_sas_token("sv=1&sig=abcdef");
        assert!(!format!("{b:?}").contains("abcdef"));
    }

    #[test]
    fn build_needs_container_and_account() {
        let err = AzureBlobBuilder::new().with_account("a").build().err();
        assert!(matches!(err, Some(Error::InvalidRequest { .. })), "{err:?}");
        let err = AzureBlobBuilder::new().with_container("c").build().err();
        assert!(matches!(err, Some(Error::InvalidRequest { .. })), "{err:?}");
    }

    #[test]
    fn account_is_read_from_the_endpoint() -> Result<(), Box<dyn std::error::Error>> {
        let azurite = Url::parse("http://127.0.0.1:10000/devstoreaccount1")?;
        assert_eq!(
            account_from_url(&azurite).as_deref(),
            Some("devstoreaccount1")
        );
        let cloud = Url::parse("https://acct.blob.core.usgovcloudapi.net")?;
        assert_eq!(account_from_url(&cloud).as_deref(), Some("acct"));
        Ok(())
    }

    #[test]
    fn endpoint_trailing_slash_is_removed() -> Result<(), Box<dyn std::error::Error>> {
        let store = AzureBlobBuilder::new()
            .with_endpoint("http://127.0.0.1:10000/devstoreaccount1/")
            .with_container("c")
            .with_credential(AzureCredential::Anonymous)
            .build()?;
        assert_eq!(
            store.container_url().as_str(),
            "http://127.0.0.1:10000/devstoreaccount1/c"
        );
        Ok(())
    }
}
