//! Streams a generated 1 GiB object through the local-disk store and back, verifying its
//! SHA-256, and prints the peak resident memory (VmHWM).
//!
//! ```text
//! cargo run --release -p dr-core --features testkit --example store-rss
//! ```

use dr_core::store::LocalDiskStore;
use dr_core::testkit::rss::{round_trip, size_from_env};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("dr-store-rss-{}", std::process::id()));
    let store = LocalDiskStore::new(&dir)?;
    let result = round_trip(&store, "rss/object", size_from_env()).await;
    let _ = std::fs::remove_dir_all(&dir);
    println!("{}", result?);
    Ok(())
}
