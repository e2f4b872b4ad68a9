#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

mod client;
mod config;
mod error;
mod store;

#[cfg(test)]
mod mock_tests;

pub use config::{
    GcsBuilder, GcsCredentials, DEFAULT_RETRY_ATTEMPTS, RETRY_INITIAL_BACKOFF, RETRY_MAX_BACKOFF,
};
pub use store::{GcsObjectMeta, GcsStore};

/// The provider name used in errors and reports.
pub const PROVIDER: &str = "gcs";
