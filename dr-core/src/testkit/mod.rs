//! Conformance suites every provider runs (feature `testkit`).
//!
//! [`store`] holds the [`SnapshotStore`](crate::provider::SnapshotStore) checks, in the
//! spirit of `object_store`'s `integration.rs`: each check is a `pub async fn` taking the
//! store and a key prefix unique to the run (so cloud backends can share a bucket), and
//! panics with a clear message when the store misbehaves. A backend's test module calls
//! [`store::run_all`] (or single checks) in a `#[tokio::test]`.
//!
//! [`lease`] holds the [`Lease`](crate::provider::Lease) checks, run on several handles on
//! one lease.

pub mod lease;
pub mod rss;
pub mod store;

pub use store::{Corruptor, NoCorruptor};
