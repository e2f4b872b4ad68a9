//! dr-core providers for k8s.
//!
//! This crate is a placeholder in the workspace; its providers are not implemented yet.
#![forbid(unsafe_code)]
