//! dr-core providers for azure.
//!
//! This crate is a placeholder in the workspace; its providers are not implemented yet.
#![forbid(unsafe_code)]
