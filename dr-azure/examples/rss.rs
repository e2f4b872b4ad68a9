//! Streams a generated 1 GiB object up to Blob Storage and back down, verifying its
//! SHA-256, and prints the peak resident memory (VmHWM): memory stays bounded by the block
//! size and concurrency, not by the object's size.
//!
//! ```text
//! source scripts/standins/azurite.sh && azurite_start
//! cargo run --release -p dr-azure --example azure-rss            # 1 GiB
//! RSS_MIB=256 cargo run --release -p dr-azure --example azure-rss
//! ```
//!
//! Reads `AZURITE_BLOB_URL`, `AZURITE_ACCOUNT` and `AZURITE_KEY`.

use dr_azure::AzureBlobBuilder;
use dr_core::provider::SnapshotStore;
use dr_core::testkit::rss::{round_trip, size_from_env};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let var = |n: &str| std::env::var(n).map_err(|_| format!("{n} is not set (start Azurite)"));
    let store = AzureBlobBuilder::new()
        .with_endpoint(var("AZURITE_BLOB_URL")?)
        .with_account(var("AZURITE_ACCOUNT")?)
        .with_access_key(var("AZURITE_KEY")?)
        .with_container("rss")
        .build()?;
    store.create_container().await?;
    let key = format!("rss/{}", std::process::id());
    println!("{}", round_trip(&store, &key, size_from_env()).await?);
    store.delete(&key).await?;
    Ok(())
}
