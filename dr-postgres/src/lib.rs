#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod check;
mod client;
mod config;
mod database;
mod dump;
mod error;
mod lag;
mod pair;
mod pitr;
mod server;

pub use check::{CheckOutcome, DataCheck};
pub use config::{
    PgInstance, PostgresBuilder, BINDIR_ENV, DEFAULT_CONNECT_TIMEOUT, DEFAULT_PROMOTE_WAIT,
};
pub use database::{FenceReport, PostgresDatabase};
pub use dump::{META_DBNAME, META_INSTANCE, META_REGION};
pub use lag::{LagBasis, LagMeasure};
pub use pair::{free_port, LocalPair};
pub use pitr::WalArchive;
pub use server::LocalServer;
