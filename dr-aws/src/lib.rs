//! dr-core providers for aws.
//!
//! This crate is a placeholder in the workspace; its providers are not implemented yet.
#![forbid(unsafe_code)]
