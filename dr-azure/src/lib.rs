#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

mod auth;
mod client;
mod config;
mod error;
mod store;

pub use auth::account_sas;
pub use config::{
    AzureBlobBuilder, AzureCredential, DEFAULT_RETRY_ATTEMPTS, RETRY_INITIAL_BACKOFF,
    RETRY_MAX_BACKOFF,
};
pub use store::AzureBlobStore;

/// The provider name used in errors and reports.
pub const PROVIDER: &str = "azure-blob";
