//! An append-only journal per run: the graph it executes (with a digest), and for each step
//! its intent (before the provider call: attempt and what the step remembered) and its
//! outcome (after). A record is durable before the call it announces; each record carries a
//! checksum, and a torn last record (a crash in the middle of a write) is detected and
//! dropped — its step then counts as "intent without outcome" — never a crash or a silent
//! loss. A record that is damaged anywhere but at the end is an error.
//!
//! Two journals ship: [`FileJournal`] (the default: one file per run, `fsync`ed after every
//! record, its directory `fsync`ed when the file is created) and [`InMemoryJournal`].
//!
//! # Examples
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
//! use dr_core::journal::{InMemoryJournal, Journal, Record};
//!
//! let journal = InMemoryJournal::new();
//! journal.append(&Record::Intent { step: "db/promote".into(), attempt: 1, memory: Default::default() }).await?;
//! let loaded = journal.load().await?;
//! assert_eq!(loaded.records.len(), 1);
//! assert!(!loaded.torn_tail);
//! # Ok(()) }
//! ```

mod file;
mod frame;
mod store;

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use file::FileJournal;
pub use store::StoreJournal;

use crate::step::Memory;
use crate::Result;

/// One journal record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "record")]
pub enum Record {
    /// The run started: what it executes.
    Started {
        /// The run's id.
        run_id: String,
        /// Plan name.
        plan: String,
        /// Scenario name.
        scenario: String,
        /// SHA-256 of the graph's JSON: a resume refuses a journal written for another graph.
        digest: String,
        /// The graph, as JSON (secrets redacted, as in every serialisation of a step).
        graph: serde_json::Value,
    },
    /// A step is about to make its call: written, and durable, before the call.
    Intent {
        /// Step id.
        step: String,
        /// Attempt number, from 1.
        attempt: u32,
        /// What the step remembered from before its first call.
        memory: Memory,
    },
    /// A step ended.
    Outcome {
        /// Step id.
        step: String,
        /// Whether it succeeded.
        succeeded: bool,
        /// Whether its effect was already in place (read back).
        already_done: bool,
        /// Attempts made.
        attempts: u32,
        /// The data-loss window it measured.
        #[serde(default, with = "crate::duration::seconds_opt")]
        data_loss: Option<Duration>,
        /// Its error, when it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// An approval gate was decided.
    Approval {
        /// Step id.
        step: String,
        /// Whether it was approved.
        approved: bool,
        /// Why, when refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The run ended.
    Finished {
        /// `succeeded` or `failed`.
        outcome: String,
    },
}

impl Record {
    /// The step the record is about, if any.
    pub fn step(&self) -> Option<&str> {
        match self {
            Record::Intent { step, .. }
            | Record::Outcome { step, .. }
            | Record::Approval { step, .. } => Some(step),
            Record::Started { .. } | Record::Finished { .. } => None,
        }
    }
}

/// What [`Journal::load`] found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Loaded {
    /// The intact records, in order.
    pub records: Vec<Record>,
    /// Whether a last, incomplete or damaged record was dropped (a crash while writing it).
    pub torn_tail: bool,
}

/// Where a run's records go. Implementations make a record durable before `append` returns.
#[async_trait]
pub trait Journal: fmt::Debug + Send + Sync + 'static {
    /// Appends `record`, durably.
    ///
    /// # Errors
    /// The storage's error; the caller must not make the call the record announces.
    async fn append(&self, record: &Record) -> Result<()>;

    /// Reads every record back.
    ///
    /// # Errors
    /// The storage's error, or [`Error::InvalidResponse`](crate::Error::InvalidResponse) for
    /// a record damaged anywhere but at the end.
    async fn load(&self) -> Result<Loaded>;
}

/// A journal in memory, framed like the file journal (so a test can tear its last record).
#[derive(Debug, Default)]
pub struct InMemoryJournal {
    bytes: Mutex<Vec<u8>>,
}

impl InMemoryJournal {
    /// An empty journal.
    pub fn new() -> Self {
        InMemoryJournal::default()
    }

    /// The journal's bytes, as a file journal would hold them.
    pub fn bytes(&self) -> Vec<u8> {
        self.bytes.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A journal holding `bytes` (a copy of another, possibly cut short).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        InMemoryJournal {
            bytes: Mutex::new(bytes),
        }
    }
}

#[async_trait]
impl Journal for InMemoryJournal {
    async fn append(&self, record: &Record) -> Result<()> {
        let framed = frame::encode(record)?;
        self.bytes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(&framed);
        Ok(())
    }

    async fn load(&self) -> Result<Loaded> {
        frame::decode(&self.bytes(), "in-memory journal")
    }
}
