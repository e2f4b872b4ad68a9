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
//! journal.append(&Record::Intent {
//!     step: "db/promote".into(),
//!     key: "run-1/db/promote".into(),
//!     attempt: 1,
//!     at: chrono::Utc::now(),
//!     memory: Default::default(),
//! }).await?;
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
use chrono::{DateTime, Utc};
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
        /// When the run started (the incident clock of its report).
        at: DateTime<Utc>,
        /// Plan name.
        plan: String,
        /// Scenario name.
        scenario: String,
        /// SHA-256 of the executed steps (ids, kinds, parameters, dependencies, idempotency
        /// keys): a resume refuses a journal written for another graph.
        digest: String,
        /// The graph, as JSON (secrets redacted, as in every serialisation of a step).
        graph: serde_json::Value,
    },
    /// A run was resumed from this journal.
    Resumed {
        /// When.
        at: DateTime<Utc>,
        /// Steps already finished, by the journal.
        finished: usize,
        /// Steps whose intent had no outcome (their effect is read back before anything
        /// else).
        in_flight: Vec<String>,
    },
    /// A step is about to make its call: written, and durable, before the call.
    Intent {
        /// Step id.
        step: String,
        /// The step's idempotency key (stable across retries and resumes).
        #[serde(default)]
        key: String,
        /// Attempt number, from 1.
        attempt: u32,
        /// When.
        #[serde(default = "epoch")]
        at: DateTime<Utc>,
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
        /// When its first attempt (or read-back) began.
        #[serde(default = "epoch")]
        started_at: DateTime<Utc>,
        /// When it ended.
        #[serde(default = "epoch")]
        at: DateTime<Utc>,
        /// The data-loss window it measured.
        #[serde(default, with = "crate::duration::seconds_opt")]
        data_loss: Option<Duration>,
        /// What it produced for the report (capped, secrets masked).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<serde_json::Value>,
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
    /// A safety gate was overridden by the user (a data loss accepted, an interlock waived).
    Override {
        /// Step id the gate guarded.
        step: String,
        /// The gate (`rpo`, or an interlock's name).
        gate: String,
        /// What was accepted, in words.
        detail: String,
    },
    /// A step's effect was undone after a critical failure.
    Compensated {
        /// Step id.
        step: String,
        /// Whether the undo succeeded.
        succeeded: bool,
        /// Its error, or why it could not be undone.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The run ended.
    Finished {
        /// `succeeded` or `failed`.
        outcome: String,
    },
}

fn epoch() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

impl Record {
    /// The step the record is about, if any.
    pub fn step(&self) -> Option<&str> {
        match self {
            Record::Intent { step, .. }
            | Record::Outcome { step, .. }
            | Record::Approval { step, .. }
            | Record::Override { step, .. }
            | Record::Compensated { step, .. } => Some(step),
            Record::Started { .. } | Record::Resumed { .. } | Record::Finished { .. } => None,
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
