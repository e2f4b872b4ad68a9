//! The scenario programs are `[[example]]` targets of this crate: `cargo run --example region-failover`.
