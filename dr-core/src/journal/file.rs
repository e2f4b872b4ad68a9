//! The default journal: one file per run, `fsync`ed after every record.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use super::{frame, Journal, Loaded, Record};
use crate::{Error, Result};

/// A journal in a local file. Every [`append`](Journal::append) writes the record and
/// `fsync`s the file before returning; creating the file `fsync`s its directory too, so the
/// file itself survives a power loss.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use dr_core::journal::{FileJournal, Journal};
///
/// let journal = FileJournal::open("/var/lib/dr/runs/run-42.journal").await?;
/// let loaded = journal.load().await?;
/// println!("{} records, torn tail: {}", loaded.records.len(), loaded.torn_tail);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct FileJournal {
    path: PathBuf,
    file: Mutex<tokio::fs::File>,
}

impl FileJournal {
    /// Opens (or creates) the journal at `path`, for appending.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let existed = tokio::fs::try_exists(&path).await.unwrap_or(false);
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)
            .await
            .map_err(|e| Error::io(format!("opening journal {}", path.display()), e))?;
        if !existed {
            file.sync_all()
                .await
                .map_err(|e| Error::io(format!("syncing journal {}", path.display()), e))?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                let d = tokio::fs::File::open(dir)
                    .await
                    .map_err(|e| Error::io(format!("opening {}", dir.display()), e))?;
                d.sync_all()
                    .await
                    .map_err(|e| Error::io(format!("syncing {}", dir.display()), e))?;
            }
        }
        Ok(FileJournal {
            path,
            file: Mutex::new(file),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl Journal for FileJournal {
    async fn append(&self, record: &Record) -> Result<()> {
        let framed = frame::encode(record)?;
        let mut file = self.file.lock().await;
        let ctx = || format!("appending to journal {}", self.path.display());
        file.write_all(&framed)
            .await
            .map_err(|e| Error::io(ctx(), e))?;
        file.sync_data().await.map_err(|e| Error::io(ctx(), e))?;
        Ok(())
    }

    async fn load(&self) -> Result<Loaded> {
        let bytes = tokio::fs::read(&self.path)
            .await
            .map_err(|e| Error::io(format!("reading journal {}", self.path.display()), e))?;
        frame::decode(&bytes, &self.path.display().to_string())
    }
}
