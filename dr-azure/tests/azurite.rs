//! The conformance suite and Azure-specific checks, against Azurite.
//!
//! Run by `scripts/test.sh`, which starts Azurite (`scripts/standins/azurite.sh`) and exports
//! `AZURITE_BLOB_URL`, `AZURITE_ACCOUNT` and `AZURITE_KEY`.

use std::time::Duration;

use azure_core::http::{RequestContent, Url};
use azure_storage_blob::models::BlockBlobClientUploadOptions;
use azure_storage_blob::BlobContainerClient;
use bytes::Bytes;
use chrono::Utc;
use dr_azure::{account_sas, AzureBlobBuilder, AzureBlobStore, AzureCredential};
use dr_core::provider::{PutOptions, SnapshotStore, SnapshotStoreExt};
use dr_core::testkit::store::{self as suite, pattern_sha256, pattern_stream};
use dr_core::{Error, Result};
use futures::StreamExt;

const MIB: usize = 1024 * 1024;

struct Azurite {
    url: String,
    account: String,
    key: String,
}

/// The stand-in's settings, or `None` (after saying why) when it is not running.
fn azurite() -> Option<Azurite> {
    let url = dr_core::testkit::standin("AZURITE_BLOB_URL", "Azurite")?;
    let var = |n: &str| {
        std::env::var(n).unwrap_or_else(|_| panic!("{n} is not set beside AZURITE_BLOB_URL"))
    };
    Some(Azurite {
        url,
        account: var("AZURITE_ACCOUNT"),
        key: var("AZURITE_KEY"),
    })
}

/// A prefix no other run uses.
fn unique(label: &str) -> String {
    format!("{}/", dr_core::testkit::unique(label))
}

impl Azurite {
    fn builder(&self, container: &str) -> AzureBlobBuilder {
        AzureBlobBuilder::new()
            .with_account(&self.account)
            .with_endpoint(&self.url)
            .with_container(container)
    }

    async fn shared_key(&self, container: &str) -> Result<AzureBlobStore> {
        let store = self.builder(container).with_access_key(&self.key).build()?;
        store.create_container().await?;
        Ok(store)
    }

    fn sas(&self, permissions: &str) -> Result<String> {
        account_sas(
            &self.account,
            &self.key,
            permissions,
            Utc::now() + chrono::Duration::hours(1),
        )
    }

    /// Rewrites the blob behind the store's back, keeping its recorded `sha256`.
    async fn corrupt(&self, container: &str, key: &str) -> Result<()> {
        let store = self.shared_key(container).await?;
        let head = store.head(key).await?;
        let mut url = Url::parse(&format!("{}/{container}", self.url)).map_err(other)?;
        url.set_query(Some(&self.sas("racwdl")?));
        let client = BlobContainerClient::new(url, None, None).map_err(other)?;
        let mut metadata = std::collections::HashMap::new();
        metadata.insert("sha256".to_string(), head.sha256.unwrap_or_default());
        let options = BlockBlobClientUploadOptions {
            metadata: Some(metadata),
            ..BlockBlobClientUploadOptions::default()
        };
        client
            .blob_client(key)
            .block_blob_client()
            .upload(RequestContent::from(b"corrupted!".to_vec()), Some(options))
            .await
            .map_err(other)?;
        Ok(())
    }
}

fn other(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Other {
        provider: "test".into(),
        operation: "setup".into(),
        retry: dr_core::Retry::Permanent,
        source: Box::new(e),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite() -> Result<()> {
    let Some(az) = azurite() else { return Ok(()) };
    // Small blocks, so the suite's 21 MiB object is a multi-block upload; small pages, so
    // listing 1100 objects follows NextMarker (Azurite's default page holds 5000).
    let store = az
        .builder("conformance")
        .with_access_key(&az.key)
        .with_block_size(4 * MIB)
        .with_list_page_size(300)
        .build()?;
    store.create_container().await?;
    let prefix = unique("suite");
    let corruptor = |key: String| {
        let az = &az;
        async move { az.corrupt("conformance", &key).await }
    };
    suite::run_all(&store, &prefix, &corruptor).await?;
    suite::backups_round_trip(std::sync::Arc::new(store), &unique("backups")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_writes_journal_and_lease() -> Result<()> {
    use dr_core::provider::{Lease, SnapshotStore, StoreLease};
    use dr_core::testkit::lease;
    use std::sync::Arc;
    let Some(az) = azurite() else { return Ok(()) };
    let store = az.builder("conditional").with_access_key(&az.key).build()?;
    store.create_container().await?;
    let store: Arc<dyn SnapshotStore> = Arc::new(store);
    let prefix = unique("conditional");
    suite::conditional_writes(store.as_ref(), &prefix).await?;
    suite::conditional_races(store.as_ref(), &prefix, 16, 4).await?;
    suite::journal_races(store.clone(), &prefix, 4, 10).await?;
    let key = format!("{prefix}/lease");
    let runners: Vec<StoreLease> = (0..3)
        .map(|_| StoreLease::new(store.clone(), &key))
        .collect();
    let dyns: Vec<&dyn Lease> = runners.iter().map(|l| l as &dyn Lease).collect();
    lease::run_all_with_ttl(&dyns, std::time::Duration::from_secs(2)).await?;
    let racers: Vec<StoreLease> = (0..12)
        .map(|_| StoreLease::new(store.clone(), &key))
        .collect();
    let dyns: Vec<&dyn Lease> = racers.iter().map(|l| l as &dyn Lease).collect();
    lease::race(&dyns, 4).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_blocks_are_invisible_until_committed() -> Result<()> {
    let Some(az) = azurite() else { return Ok(()) };
    let store = az
        .builder("staging")
        .with_access_key(&az.key)
        .with_block_size(MIB)
        .build()?;
    store.create_container().await?;
    let key = format!("{}object", unique("staged"));
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes>>(1);
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        Some((item, rx))
    })
    .boxed();
    let writer = {
        let store = store.clone();
        let key = key.clone();
        tokio::spawn(async move { store.put(&key, stream, PutOptions::default()).await })
    };
    let mut chunks = pattern_stream(5, 6 * MIB, MIB);
    for _ in 0..4 {
        if let Some(c) = chunks.next().await {
            tx.send(c).await.map_err(other)?;
        }
    }
    // Four blocks staged or in flight: nothing may be visible yet.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let head = store.head(&key).await.err();
    assert!(
        head.as_ref().is_some_and(Error::is_not_found),
        "a blob is visible before its block list was committed: {head:?}"
    );
    assert!(store.list_all(&key).await?.is_empty());
    while let Some(c) = chunks.next().await {
        tx.send(c).await.map_err(other)?;
    }
    drop(tx);
    let meta = writer.await.map_err(other)??;
    assert_eq!(meta.size, 6 * MIB as u64);
    let head = store.verify(&key).await?;
    assert_eq!(
        head.sha256.as_deref(),
        Some(pattern_sha256(5, 6 * MIB).as_str())
    );
    store.delete(&key).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sas_token_authenticates() -> Result<()> {
    let Some(az) = azurite() else { return Ok(()) };
    az.shared_key("sas").await?;
    let store = az
        .builder("sas")
        .with_credential(AzureCredential::Sas(format!("?{}", az.sas("racwdl")?)))
        .build()?;
    let prefix = unique("sas");
    suite::round_trip(&store, &prefix).await?;
    suite::list_prefixes(&store, &prefix).await?;
    suite::copy(&store, &prefix).await?;

    // A read-only SAS may read and list, not write.
    let reader = az.builder("sas").with_sas_token(az.sas("rl")?).build()?;
    let key = format!("{prefix}readable");
    store.put_bytes(&key, "x".into()).await?;
    assert_eq!(reader.get_bytes(&key).await?, "x");
    let refused = reader.put_bytes(&key, "y".into()).await.err();
    assert!(
        matches!(refused, Some(Error::Unauthorized { .. })),
        "a read-only SAS wrote: {refused:?}"
    );
    store.delete(&key).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_key_is_unauthorized() -> Result<()> {
    let Some(az) = azurite() else { return Ok(()) };
    let wrong = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk=";
    let store = az.builder("conformance").with_access_key(wrong).build()?;
    let err = store.head("anything").await.err();
    assert!(
        matches!(err, Some(Error::Unauthorized { .. })),
        "a wrong key should be Unauthorized: {err:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_between_containers() -> Result<()> {
    let Some(az) = azurite() else { return Ok(()) };
    let east = az.shared_key("east").await?;
    let west = az.shared_key("west").await?;
    let prefix = unique("copy");
    let from = format!("{prefix}source");
    let opts = PutOptions::default().with_metadata("origin", "east");
    let put = east
        .put(&from, pattern_stream(9, 3 * MIB, MIB), opts)
        .await?;

    // Same account, Shared Key on both sides: a server-side Copy Blob.
    let to = format!("{prefix}copied");
    let copied = east.copy_to(&from, &west, &to).await?;
    assert_eq!(copied.sha256, put.sha256);
    assert_eq!(
        copied.metadata.get("origin").map(String::as_str),
        Some("east")
    );
    west.verify(&to).await?;

    // A destination that only holds a SAS for its own side: the source is read through a
    // one-hour service SAS signed with the source's key (the cross-account path).
    let west_sas = az
        .builder("west")
        .with_sas_token(az.sas("racwdl")?)
        .build()?;
    let to2 = format!("{prefix}copied-via-sas");
    let copied = east.copy_to(&from, &west_sas, &to2).await?;
    assert_eq!(copied.sha256, put.sha256);
    west.verify(&to2).await?;

    let missing = east
        .copy_to(&format!("{prefix}missing"), &west, &to)
        .await
        .err();
    assert!(
        missing.as_ref().is_some_and(Error::is_not_found),
        "{missing:?}"
    );
    for (s, k) in [(&east, &from), (&west, &to), (&west, &to2)] {
        s.delete(k).await?;
    }
    Ok(())
}
