//! A snapshot store on a local (or mounted) file system.
//!
//! Layout under the root: a key's segments (split at `/`) become directories and the last
//! segment a file. Every segment is percent-encoded (bytes outside `[A-Za-z0-9_-]`,
//! including `.`, become `%XX`), so an encoded segment never contains a dot and the
//! suffixes below cannot clash with a key, and a key `a` can coexist with a key `a/b`:
//!
//! * `<segment>.obj` — the content;
//! * `<segment>.meta` — JSON sidecar: `sha256`, `size`, `created`, `metadata`;
//! * `put.tmp.*`, `meta.tmp.*` — a write in progress (skipped by listings);
//! * `.lock` at the root — the file every commit locks (see [`LocalDiskStore`]).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::RwLock;

use super::{check_expected, full_capabilities};
use crate::provider::{
    check_content, ByteStream, Capabilities, GetResult, ObjectMeta, Precondition, PutOptions,
    SnapshotStore, Version,
};
use crate::{Error, Result};

const NAME: &str = "local-disk";
/// Bytes per chunk of a read.
const READ_CHUNK: usize = 1024 * 1024;
/// Chunks a read keeps ready ahead of its consumer.
const READ_QUEUE: usize = 4;
/// Bytes a `verify` reads and hashes at a time (small enough to stay in the CPU's cache).
const VERIFY_BUF: usize = 256 * 1024;
/// Bytes per hand-off from a `put` to its writing thread.
const WRITE_BATCH: usize = 1024 * 1024;
/// Batches a `put` queues ahead of its writing thread.
const WRITE_QUEUE: usize = 4;
/// Bytes written between two background flushes of a `put`.
const FLUSH_EVERY: u64 = 32 * 1024 * 1024;
/// Bytes per hand-off from a `put` to its hashing thread (smaller than a write batch, so the
/// hash starts on what arrived while it is still in a cache).
const HASH_BATCH: usize = 256 * 1024;
/// Batches a `put` queues ahead of its hashing thread.
const HASH_QUEUE: usize = 4;
const OBJ: &str = ".obj";
const META: &str = ".meta";
/// The lock file at the root. Its name has a dot, which no encoded key segment has.
const LOCK: &str = ".lock";

/// The sidecar file stored next to each object.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Sidecar {
    sha256: String,
    size: u64,
    created: DateTime<Utc>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    /// A tag unique to this write of the key (absent in sidecars written before versions
    /// existed: their version is their SHA-256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<String>,
}

impl Sidecar {
    /// The object's version token, also its etag.
    fn etag(&self) -> String {
        format!("\"{}\"", self.version.as_deref().unwrap_or(&self.sha256))
    }
}

/// A number for a temporary file's name, unique in this process (handles on one root must
/// not pick the same name; other processes differ by their process id).
fn next_tmp() -> u64 {
    static TMP: AtomicU64 = AtomicU64::new(0);
    TMP.fetch_add(1, Ordering::Relaxed)
}

/// A tag no other write of any key in any process uses: wall-clock nanoseconds, process id
/// and a per-process counter.
fn new_version() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:x}-{:x}-{n:x}", std::process::id())
}

/// A [`SnapshotStore`] on a local directory (a disk, an NFS or SMB mount).
///
/// Writes stream to a temporary file in the object's directory, are fsynced and then renamed
/// into place, so a failed or refused write leaves the previous object. The SHA-256 is
/// computed while a blocking thread writes (overlapping the hash with the I/O) and kept
/// in a JSON sidecar file; reads stream the file in 1 MiB chunks read ahead by one blocking
/// thread.
///
/// Every commit (the renames of `put`, `put_if` and `delete`) holds this handle's lock and an
/// exclusive `flock` on the root's `.lock` file, and `get` and `get_versioned` open the
/// sidecar and the content under a shared one, so readers never see new content with old
/// metadata, and [`put_if`](SnapshotStore::put_if) checks its precondition and commits
/// atomically even against other processes using the same directory. (On a network file
/// system, this holds only where it implements `flock`.) A crash between the two renames of a
/// commit leaves the new content beside the old sidecar, and the new sidecar under its
/// temporary name: [`get_versioned`](SnapshotStore::get_versioned) (what journals and leases
/// read) finishes such a commit by renaming that sidecar into place; `verify` and `get`
/// report the mismatch as `ChecksumMismatch`. Each write records a new version tag in the sidecar, which is the
/// object's etag and its [`Version`].
///
/// Keys are `/`-separated; a key with an empty segment, a `.` or `..` segment, or a leading
/// `/` is refused with [`Error::InvalidRequest`].
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use dr_core::provider::SnapshotStoreExt;
/// use dr_core::store::LocalDiskStore;
///
/// let dir = std::env::temp_dir().join(format!("dr-doc-{}", std::process::id()));
/// let store = LocalDiskStore::new(&dir)?;
/// store.put_bytes("db/orders.dump", "dump".into()).await?;
/// assert_eq!(store.get_bytes("db/orders.dump").await?, "dump");
/// store.verify("db/orders.dump").await?;
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct LocalDiskStore {
    root: PathBuf,
    /// Held shared to read a sidecar and open its content, exclusively to swap both.
    commit: Arc<RwLock<()>>,
}

impl LocalDiskStore {
    /// A store rooted at `root`, creating the directory if needed.
    ///
    /// # Errors
    /// `Io` when the directory cannot be created.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root)
            .map_err(|e| Error::io(format!("creating store root {}", root.display()), e))?;
        Ok(LocalDiskStore {
            root,
            commit: Arc::default(),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Takes the root's `.lock` file, exclusively or shared, on a blocking thread. The lock
    /// lasts as long as the returned file is open.
    async fn flock(&self, exclusive: bool) -> Result<std::fs::File> {
        let path = self.root.join(LOCK);
        let locked = tokio::task::spawn_blocking(move || {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&path)?;
            if exclusive {
                file.lock()?;
            } else {
                file.lock_shared()?;
            }
            Ok::<_, std::io::Error>(file)
        })
        .await;
        let ctx = || format!("locking {}", self.root.join(LOCK).display());
        match locked {
            Ok(r) => r.map_err(|e| Error::io(ctx(), e)),
            Err(e) => Err(Error::io(ctx(), std::io::Error::other(e))),
        }
    }

    /// The file holding the content of `key` (whether or not it exists).
    ///
    /// # Errors
    /// `InvalidRequest` for an invalid key.
    pub fn object_path(&self, key: &str) -> Result<PathBuf> {
        Ok(self.paths(key)?.0)
    }

    /// Content path, sidecar path and directory of `key`.
    fn paths(&self, key: &str) -> Result<(PathBuf, PathBuf, PathBuf)> {
        let segments = validate_key(key)?;
        let mut dir = self.root.clone();
        let (last, parents) = segments
            .split_last()
            .ok_or_else(|| invalid_key(key, "empty"))?;
        for seg in parents {
            dir.push(encode_segment(seg));
        }
        let base = encode_segment(last);
        Ok((
            dir.join(format!("{base}{OBJ}")),
            dir.join(format!("{base}{META}")),
            dir,
        ))
    }

    async fn read_sidecar(&self, key: &str, path: &Path) -> Result<Sidecar> {
        let text = match tokio::fs::read(path).await {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::not_found(NAME, format!("object {key}")))
            }
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        serde_json::from_slice(&text).map_err(|e| Error::InvalidResponse {
            provider: NAME.into(),
            operation: "head".into(),
            message: format!("metadata of {key} is unreadable: {e}"),
        })
    }

    /// Finishes a commit that a crash tore between its two renames: the content is in place
    /// (`sha256`, `size`) but its sidecar is still the temporary file written and synced
    /// before the first rename. Under the commit lock, a temporary sidecar of the object's
    /// directory describing exactly that content is renamed into place and returned; `None`
    /// when there is none (the mismatch is real), or when the content changed meanwhile.
    async fn roll_forward(
        &self,
        meta_path: &Path,
        sha256: &str,
        size: usize,
    ) -> Result<Option<Sidecar>> {
        let Some(dir) = meta_path.parent().map(Path::to_path_buf) else {
            return Ok(None);
        };
        let _guard = self.commit.write().await;
        let _flock = self.flock(true).await?;
        let (meta_path, sha256) = (meta_path.to_path_buf(), sha256.to_string());
        let found = tokio::task::spawn_blocking(move || -> std::io::Result<Option<Sidecar>> {
            // Another reader may have finished it already.
            if let Ok(side) = std::fs::read(&meta_path) {
                if let Ok(side) = serde_json::from_slice::<Sidecar>(&side) {
                    if side.sha256 == sha256 && side.size == size as u64 {
                        return Ok(Some(side));
                    }
                }
            }
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                let Some(suffix) = name.strip_prefix("meta.tmp.") else {
                    continue;
                };
                // A temporary sidecar whose content is still a temporary file was never
                // committed (put_if names both alike).
                if dir.join(format!("put.tmp.{suffix}")).exists() {
                    continue;
                }
                let Ok(text) = std::fs::read(entry.path()) else {
                    continue;
                };
                let Ok(side) = serde_json::from_slice::<Sidecar>(&text) else {
                    continue;
                };
                if side.sha256 == sha256 && side.size == size as u64 {
                    std::fs::rename(entry.path(), &meta_path)?;
                    if let Ok(d) = std::fs::File::open(&dir) {
                        let _ = d.sync_all();
                    }
                    return Ok(Some(side));
                }
            }
            Ok(None)
        })
        .await;
        let ctx = || format!("finishing a torn commit in {}", self.root.display());
        match found {
            Ok(r) => r.map_err(|e| Error::io(ctx(), e)),
            Err(e) => Err(Error::io(ctx(), std::io::Error::other(e))),
        }
    }

    /// The sidecar and the open content file of `key`, read together under the commit lock
    /// (so they belong to the same write), and the file's path.
    async fn open_object(&self, key: &str) -> Result<(Sidecar, std::fs::File, PathBuf)> {
        let (obj, meta_path, _) = self.paths(key)?;
        let _guard = self.commit.read().await;
        let _flock = self.flock(false).await?;
        let side = self.read_sidecar(key, &meta_path).await?;
        let file = match tokio::fs::File::open(&obj).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::not_found(NAME, format!("object {key}")))
            }
            Err(e) => return Err(Error::io(format!("opening {}", obj.display()), e)),
        };
        Ok((side, file.into_std().await, obj))
    }

    fn meta_of(key: &str, side: Sidecar) -> ObjectMeta {
        ObjectMeta {
            key: key.to_string(),
            size: side.size,
            etag: Some(side.etag()),
            sha256: Some(side.sha256),
            created: side.created,
            metadata: side.metadata,
        }
    }

    /// Writes `data` to a temporary file, returning its path, digest and size.
    ///
    /// This task reads the stream and hands each chunk (shared, not copied) to two blocking
    /// threads: one hashes, one writes (and finally fsyncs) the file. The hash, the slower of
    /// the two, gets chunks in batches of about [`HASH_BATCH`] bytes as soon as they arrive,
    /// while the source's writes to them are still in a cache; the writer gets batches of
    /// about [`WRITE_BATCH`] bytes. Each queue holds a few batches ([`HASH_QUEUE`],
    /// [`WRITE_QUEUE`]), so memory stays bounded and the slower thread sets the pace.
    async fn write_temp(&self, dir: &Path, mut data: ByteStream) -> Result<(PathBuf, String, u64)> {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let n = next_tmp();
        let tmp = dir.join(format!("put.tmp.{}.{n}", std::process::id()));
        let (tx, rx) = tokio::sync::mpsc::channel::<WriteMsg>(WRITE_QUEUE);
        let path = tmp.clone();
        let writer = tokio::task::spawn_blocking(move || write_file(&path, rx));
        let (hash_tx, mut hash_rx) = tokio::sync::mpsc::channel::<Vec<Bytes>>(HASH_QUEUE);
        let hashing = tokio::task::spawn_blocking(move || {
            let mut hasher = Sha256::new();
            while let Some(chunks) = hash_rx.blocking_recv() {
                for chunk in &chunks {
                    hasher.update(chunk);
                }
            }
            hasher.finalize()
        });
        let fed: Result<()> = async {
            let mut batch = Vec::new();
            let mut batched = 0usize;
            let mut to_hash = Vec::new();
            let mut hash_batched = 0usize;
            while let Some(chunk) = data.next().await {
                let chunk = chunk?;
                hash_batched += chunk.len();
                to_hash.push(chunk.clone());
                if hash_batched >= HASH_BATCH {
                    hash_batched = 0;
                    // The hashing task only stops when this side hangs up.
                    let _ = hash_tx.send(std::mem::take(&mut to_hash)).await;
                }
                batched += chunk.len();
                batch.push(chunk);
                if batched >= WRITE_BATCH {
                    batched = 0;
                    if tx
                        .send(WriteMsg::Data(std::mem::take(&mut batch)))
                        .await
                        .is_err()
                    {
                        // The writer stopped on an error, which it returns below.
                        return Ok(());
                    }
                }
            }
            if !to_hash.is_empty() {
                let _ = hash_tx.send(to_hash).await;
            }
            if !batch.is_empty() {
                let _ = tx.send(WriteMsg::Data(batch)).await;
            }
            let _ = tx.send(WriteMsg::Done).await;
            Ok(())
        }
        .await;
        // On a stream error the writer sees the channel close without `Done` and stops.
        drop(tx);
        drop(hash_tx);
        let digest = hashing.await;
        let written = match writer.await {
            Ok(r) => r.map_err(|e| Error::io(format!("writing {}", tmp.display()), e)),
            Err(e) => Err(Error::io(
                format!("writing {}", tmp.display()),
                std::io::Error::other(e),
            )),
        };
        let written = match (written, digest) {
            (Ok(Some(size)), Ok(digest)) => Ok(Some((hex::encode(digest), size))),
            (Ok(Some(_)), Err(e)) => Err(Error::io(
                format!("hashing {}", tmp.display()),
                std::io::Error::other(e),
            )),
            (other, _) => other.map(|_| None),
        };
        match (fed, written) {
            (Ok(()), Ok(Some((sha, size)))) => Ok((tmp, sha, size)),
            (Err(e), _) | (Ok(()), Err(e)) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                Err(e)
            }
            (Ok(()), Ok(None)) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                Err(Error::io(
                    format!("writing {}", tmp.display()),
                    std::io::Error::other("the writer stopped before the end of the content"),
                ))
            }
        }
    }

    async fn write_sidecar_temp(&self, dir: &Path, side: &Sidecar) -> Result<PathBuf> {
        let n = next_tmp();
        let tmp = dir.join(format!("meta.tmp.{}.{n}", std::process::id()));
        let json = serde_json::to_vec_pretty(side).map_err(|e| Error::InvalidRequest {
            provider: NAME.into(),
            operation: "put".into(),
            message: format!("metadata cannot be encoded: {e}"),
        })?;
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?;
        file.write_all(&json)
            .await
            .map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
        file.sync_all()
            .await
            .map_err(|e| Error::io(format!("syncing {}", tmp.display()), e))?;
        Ok(tmp)
    }

    async fn collect(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        // Start from the deepest directory the prefix names completely.
        let mut start = self.root.clone();
        if let Some((dirs, _)) = prefix.rsplit_once('/') {
            for seg in dirs.split('/') {
                if seg.is_empty() || seg == "." || seg == ".." {
                    return Ok(Vec::new());
                }
                start.push(encode_segment(seg));
            }
        }
        let base_key = match prefix.rsplit_once('/') {
            Some((dirs, _)) => format!("{dirs}/"),
            None => String::new(),
        };
        let mut out = Vec::new();
        let mut pending = vec![(start, base_key)];
        while let Some((dir, key_prefix)) = pending.pop() {
            let mut entries = match tokio::fs::read_dir(&dir).await {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(format!("listing {}", dir.display()), e)),
            };
            loop {
                let entry = entries
                    .next_entry()
                    .await
                    .map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
                let Some(entry) = entry else { break };
                let file_name = entry.file_name();
                let Some(name) = file_name.to_str() else {
                    continue;
                };
                let file_type = entry
                    .file_type()
                    .await
                    .map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
                if file_type.is_dir() {
                    if let Some(seg) = decode_segment(name) {
                        pending.push((entry.path(), format!("{key_prefix}{seg}/")));
                    }
                } else if let Some(base) = name.strip_suffix(OBJ) {
                    let Some(seg) = decode_segment(base) else {
                        continue;
                    };
                    let key = format!("{key_prefix}{seg}");
                    if !key.starts_with(prefix) {
                        continue;
                    }
                    let side_path = dir.join(format!("{base}{META}"));
                    match self.read_sidecar(&key, &side_path).await {
                        Ok(side) => out.push(Self::meta_of(&key, side)),
                        // Deleted while listing.
                        Err(e) if e.is_not_found() => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

/// What the async side of a `put` hands to the writing thread.
enum WriteMsg {
    Data(Vec<Bytes>),
    /// The content is complete: sync the file.
    Done,
}

/// Writes what arrives on `rx` to a new file at `path`, and fsyncs the file when `Done`
/// arrives. Returns the size, or `None` when the channel closed first (the put was
/// abandoned).
fn write_file(
    path: &Path,
    mut rx: tokio::sync::mpsc::Receiver<WriteMsg>,
) -> std::io::Result<Option<u64>> {
    let mut file = std::fs::File::create(path)?;
    // A second thread flushes what was written so far every FLUSH_EVERY bytes, so the disk
    // writes overlap the copying and the final fsync has little left to do.
    let (flush_tx, flush_rx) = std::sync::mpsc::sync_channel::<()>(1);
    let flushed = file.try_clone()?;
    let flusher = std::thread::Builder::new()
        .name("dr-local-flush".into())
        .spawn(move || {
            while flush_rx.recv().is_ok() {
                if flushed.sync_data().is_err() {
                    // The final fsync reports it.
                    return;
                }
            }
        })?;
    let mut size = 0u64;
    let mut unflushed = 0u64;
    let result = loop {
        let Some(msg) = rx.blocking_recv() else {
            break Ok(None);
        };
        match msg {
            WriteMsg::Data(chunks) => {
                let mut failed = None;
                for chunk in &chunks {
                    if let Err(e) = file.write_all(chunk) {
                        failed = Some(e);
                        break;
                    }
                    size += chunk.len() as u64;
                    unflushed += chunk.len() as u64;
                }
                if let Some(e) = failed {
                    break Err(e);
                }
                if unflushed >= FLUSH_EVERY {
                    // A flush already under way takes this one's place.
                    if flush_tx.try_send(()).is_ok() {
                        unflushed = 0;
                    }
                }
            }
            WriteMsg::Done => break Ok(Some(())),
        }
    };
    drop(flush_tx);
    let _ = flusher.join();
    match result {
        Ok(Some(())) => {
            file.sync_all()?;
            Ok(Some(size))
        }
        other => other.map(|_| None),
    }
}

/// The hex SHA-256 and size of what `file` holds from its current position, read
/// [`VERIFY_BUF`] bytes at a time into one buffer.
fn hash_file(mut file: std::fs::File) -> std::io::Result<(String, u64)> {
    let mut buf = vec![0u8; VERIFY_BUF];
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// Streams `file` in [`READ_CHUNK`] chunks read by one blocking thread, at most
/// [`READ_QUEUE`] chunks ahead of the reader of the stream. Dropping the stream stops the
/// thread at its next chunk.
fn read_stream(file: std::fs::File, path: String) -> ByteStream {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes>>(READ_QUEUE);
    tokio::task::spawn_blocking(move || {
        let mut file = file;
        loop {
            let mut buf = Vec::with_capacity(READ_CHUNK);
            // `take` + `read_to_end` fills the buffer across short reads, without zeroing it.
            let item = match (&mut file).take(READ_CHUNK as u64).read_to_end(&mut buf) {
                Ok(0) => return,
                Ok(_) => Ok(Bytes::from(buf)),
                Err(e) => Err(Error::io(format!("reading {path}"), e)),
            };
            let last = item.is_err();
            if tx.blocking_send(item).is_err() || last {
                return;
            }
        }
    });
    futures::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        Some((item, rx))
    })
    .boxed()
}

fn invalid_key(key: &str, why: &str) -> Error {
    Error::InvalidRequest {
        provider: NAME.into(),
        operation: "key".into(),
        message: format!("invalid key {key:?}: {why}"),
    }
}

fn validate_key(key: &str) -> Result<Vec<&str>> {
    if key.is_empty() {
        return Err(invalid_key(key, "empty"));
    }
    if key.starts_with('/') {
        return Err(invalid_key(key, "absolute path"));
    }
    let segments: Vec<&str> = key.split('/').collect();
    for seg in &segments {
        match *seg {
            "" => return Err(invalid_key(key, "empty segment")),
            "." | ".." => return Err(invalid_key(key, "`.` or `..` segment")),
            _ if seg.contains('\0') => return Err(invalid_key(key, "NUL byte")),
            _ => {}
        }
    }
    Ok(segments)
}

fn encode_segment(seg: &str) -> String {
    let mut out = String::with_capacity(seg.len());
    for b in seg.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode_segment(name: &str) -> Option<String> {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = name.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' => {
                out.push(b);
                i += 1;
            }
            // Temporary files and anything else not written by this store.
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

#[async_trait]
impl SnapshotStore for LocalDiskStore {
    fn name(&self) -> &str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        full_capabilities()
    }

    async fn put(&self, key: &str, data: ByteStream, opts: PutOptions) -> Result<ObjectMeta> {
        let (obj, meta_path, dir) = self.paths(key)?;
        let (tmp, sha, size) = self.write_temp(&dir, data).await?;
        if let Err(e) = check_expected(NAME, key, opts.expected_sha256.as_deref(), &sha) {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        let side = Sidecar {
            sha256: sha,
            size,
            created: Utc::now(),
            metadata: opts.metadata,
            version: Some(new_version()),
        };
        let side_tmp = match self.write_sidecar_temp(&dir, &side).await {
            Ok(p) => p,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(e);
            }
        };
        let _guard = self.commit.write().await;
        let flock = match self.flock(true).await {
            Ok(f) => f,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                let _ = tokio::fs::remove_file(&side_tmp).await;
                return Err(e);
            }
        };
        let renamed = async {
            tokio::fs::rename(&tmp, &obj)
                .await
                .map_err(|e| Error::io(format!("renaming into {}", obj.display()), e))?;
            tokio::fs::rename(&side_tmp, &meta_path)
                .await
                .map_err(|e| Error::io(format!("renaming into {}", meta_path.display()), e))
        }
        .await;
        drop(flock);
        if let Err(e) = renamed {
            let _ = tokio::fs::remove_file(&tmp).await;
            let _ = tokio::fs::remove_file(&side_tmp).await;
            return Err(e);
        }
        if let Ok(d) = tokio::fs::File::open(&dir).await {
            // Persist the renames; not every platform can sync a directory.
            let _ = d.sync_all().await;
        }
        Ok(Self::meta_of(key, side))
    }

    async fn get(&self, key: &str) -> Result<GetResult> {
        let (side, file, obj) = self.open_object(key).await?;
        let stream = read_stream(file, obj.display().to_string());
        Ok(GetResult {
            meta: Self::meta_of(key, side),
            stream,
        })
    }

    /// Hashes the file in one blocking thread that reads it into one 256 KiB buffer,
    /// hashed while it is still in the CPU's cache (as `openssl dgst` does), instead of
    /// handing chunks to another thread.
    async fn verify_content(&self, key: &str) -> Result<ObjectMeta> {
        let (side, file, obj) = self.open_object(key).await?;
        let path = obj.display().to_string();
        let hashed = tokio::task::spawn_blocking(move || hash_file(file))
            .await
            .map_err(|e| Error::io(format!("reading {path}"), std::io::Error::other(e)))?
            .map_err(|e| Error::io(format!("reading {path}"), e))?;
        let (actual, size) = hashed;
        check_content(NAME, key, &side.sha256, side.size, &actual, size)?;
        Ok(Self::meta_of(key, side))
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        let (_, meta_path, _) = self.paths(key)?;
        let side = self.read_sidecar(key, &meta_path).await?;
        Ok(Self::meta_of(key, side))
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxStream<'a, Result<ObjectMeta>> {
        futures::stream::once(self.collect(prefix))
            .flat_map(|r| match r {
                Ok(v) => futures::stream::iter(v.into_iter().map(Ok)).boxed(),
                Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
            })
            .boxed()
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let (obj, meta_path, _) = self.paths(key)?;
        let _guard = self.commit.write().await;
        let _flock = self.flock(true).await?;
        for path in [&meta_path, &obj] {
            match tokio::fs::remove_file(path).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(format!("deleting {}", path.display()), e)),
            }
        }
        Ok(())
    }

    async fn put_if(&self, key: &str, data: Bytes, condition: Precondition) -> Result<Version> {
        let (obj, meta_path, dir) = self.paths(key)?;
        let side = Sidecar {
            sha256: hex::encode(Sha256::digest(&data)),
            size: data.len() as u64,
            created: Utc::now(),
            metadata: BTreeMap::new(),
            version: Some(new_version()),
        };
        let json = serde_json::to_vec_pretty(&side).map_err(|e| Error::InvalidRequest {
            provider: NAME.into(),
            operation: "put_if".into(),
            message: format!("metadata cannot be encoded: {e}"),
        })?;
        let n = next_tmp();
        let pid = std::process::id();
        let tmp = dir.join(format!("put.tmp.{pid}.{n}"));
        let side_tmp = dir.join(format!("meta.tmp.{pid}.{n}"));
        // Both temporary files, written and synced before any lock is taken.
        let written = {
            let (dir, tmp, side_tmp) = (dir.clone(), tmp.clone(), side_tmp.clone());
            tokio::task::spawn_blocking(move || {
                std::fs::create_dir_all(&dir)?;
                for (path, bytes) in [(&tmp, &data[..]), (&side_tmp, &json[..])] {
                    let mut file = std::fs::File::create(path)?;
                    file.write_all(bytes)?;
                    file.sync_all()?;
                }
                Ok::<_, std::io::Error>(())
            })
            .await
        };
        let cleanup = || async {
            let _ = tokio::fs::remove_file(&tmp).await;
            let _ = tokio::fs::remove_file(&side_tmp).await;
        };
        let ctx = || format!("writing {}", tmp.display());
        let written = match written {
            Ok(r) => r.map_err(|e| Error::io(ctx(), e)),
            Err(e) => Err(Error::io(ctx(), std::io::Error::other(e))),
        };
        if let Err(e) = written {
            cleanup().await;
            return Err(e);
        }
        let committed = async {
            let _guard = self.commit.write().await;
            let _flock = self.flock(true).await?;
            let current = match self.read_sidecar(key, &meta_path).await {
                Ok(s) => Some(s.etag()),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e),
            };
            let holds = match &condition {
                Precondition::Absent => current.is_none(),
                Precondition::Matches(v) => current.as_deref() == Some(v.as_str()),
            };
            if !holds {
                return Err(Error::precondition_failed(NAME, key, condition.to_string()));
            }
            tokio::fs::rename(&tmp, &obj)
                .await
                .map_err(|e| Error::io(format!("renaming into {}", obj.display()), e))?;
            tokio::fs::rename(&side_tmp, &meta_path)
                .await
                .map_err(|e| Error::io(format!("renaming into {}", meta_path.display()), e))
        }
        .await;
        if let Err(e) = committed {
            cleanup().await;
            return Err(e);
        }
        if let Ok(d) = tokio::fs::File::open(&dir).await {
            // Persist the renames; not every platform can sync a directory.
            let _ = d.sync_all().await;
        }
        Ok(Version::new(side.etag()))
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<(Bytes, Version)>> {
        let (obj, meta_path, _) = self.paths(key)?;
        let lock = self.root.join(LOCK);
        let read = {
            let _guard = self.commit.read().await;
            // The lock, the sidecar and the content in one trip to a blocking thread.
            let (obj, meta_path) = (obj.clone(), meta_path.clone());
            tokio::task::spawn_blocking(move || {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .read(true)
                    .write(true)
                    .open(&lock)?;
                file.lock_shared()?;
                let side = match std::fs::read(&meta_path) {
                    Ok(s) => s,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(e),
                };
                match std::fs::read(&obj) {
                    Ok(bytes) => Ok(Some((side, bytes))),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await
        };
        let ctx = || format!("reading {}", obj.display());
        let read = match read {
            Ok(r) => r.map_err(|e| Error::io(ctx(), e))?,
            Err(e) => return Err(Error::io(ctx(), std::io::Error::other(e))),
        };
        let Some((side, bytes)) = read else {
            return Ok(None);
        };
        let side: Sidecar = serde_json::from_slice(&side).map_err(|e| Error::InvalidResponse {
            provider: NAME.into(),
            operation: "get_versioned".into(),
            message: format!("metadata of {key} is unreadable: {e}"),
        })?;
        let actual = hex::encode(Sha256::digest(&bytes));
        if actual != side.sha256 || bytes.len() as u64 != side.size {
            // A commit torn by a crash between its two renames: finish it when its sidecar
            // is still there, else report the mismatch.
            if let Some(done) = self.roll_forward(&meta_path, &actual, bytes.len()).await? {
                return Ok(Some((Bytes::from(bytes), Version::new(done.etag()))));
            }
            return Err(Error::ChecksumMismatch {
                provider: NAME.into(),
                resource: format!("object {key}"),
                expected: format!("sha256 {}, {} bytes", side.sha256, side.size),
                actual: format!("sha256 {actual}, {} bytes", bytes.len()),
            });
        }
        Ok(Some((Bytes::from(bytes), Version::new(side.etag()))))
    }

    async fn copy(&self, from: &str, to: &str) -> Result<ObjectMeta> {
        self.paths(to)?;
        let got = self.get(from).await?;
        let opts = PutOptions {
            metadata: got.meta.metadata.clone(),
            expected_sha256: got.meta.sha256.clone(),
        };
        self.put(to, got.stream, opts).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::SnapshotStoreExt;

    #[test]
    fn segments_round_trip() {
        for seg in ["plain", "with space", "ünïcødé", "a=b+c%d", "x.obj", "-_"] {
            let enc = encode_segment(seg);
            assert!(!enc.contains('.'), "{enc}");
            assert_eq!(decode_segment(&enc).as_deref(), Some(seg));
        }
        assert_eq!(decode_segment("put.tmp.1.2"), None);
    }

    #[test]
    fn keys_are_validated() {
        for bad in ["", "/abs", "a//b", "a/../b", "..", "a/./b", "a/"] {
            let err = validate_key(bad).err();
            assert!(
                matches!(&err, Some(e @ Error::InvalidRequest { .. }) if e.to_string().contains(&format!("{bad:?}"))),
                "{bad}: {err:?}"
            );
        }
        assert!(validate_key("a/b c/ü").is_ok());
    }

    /// A commit torn between its renames, as a crash leaves it: the new content in place, the
    /// old sidecar, the new sidecar still under its temporary name.
    async fn tear(store: &LocalDiskStore, key: &str, new: &[u8]) -> Sidecar {
        let (obj, _, dir) = store.paths(key).unwrap();
        let side = Sidecar {
            sha256: hex::encode(Sha256::digest(new)),
            size: new.len() as u64,
            created: Utc::now(),
            metadata: BTreeMap::new(),
            version: Some(new_version()),
        };
        std::fs::write(
            dir.join("meta.tmp.1.77"),
            serde_json::to_vec(&side).unwrap(),
        )
        .unwrap();
        std::fs::write(&obj, new).unwrap();
        side
    }

    #[tokio::test]
    async fn a_commit_torn_between_its_renames_is_finished_by_the_next_versioned_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDiskStore::new(dir.path()).unwrap();
        store
            .put_if(
                "lease",
                Bytes::from_static(b"holder a"),
                Precondition::Absent,
            )
            .await
            .unwrap();
        let side = tear(&store, "lease", b"holder b").await;
        let (bytes, version) = store.get_versioned("lease").await.unwrap().unwrap();
        assert_eq!(&bytes[..], b"holder b");
        assert_eq!(version.as_str(), side.etag());
        // Finished for good: the temporary sidecar is in place, and a conditional write on
        // the version read succeeds.
        assert!(!dir.path().join("meta.tmp.1.77").exists());
        store
            .put_if(
                "lease",
                Bytes::from_static(b"holder c"),
                Precondition::Matches(version),
            )
            .await
            .unwrap();

        // A mismatch with no sidecar to finish it is still reported.
        let (obj, _, _) = store.paths("lease").unwrap();
        std::fs::write(&obj, b"tampered").unwrap();
        let err = store.get_versioned("lease").await.unwrap_err();
        assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
        // A temporary sidecar whose content was never renamed is not taken.
        let (_, _, d) = store.paths("lease").unwrap();
        let other = Sidecar {
            sha256: hex::encode(Sha256::digest(b"tampered")),
            size: 8,
            created: Utc::now(),
            metadata: BTreeMap::new(),
            version: Some(new_version()),
        };
        std::fs::write(d.join("meta.tmp.1.78"), serde_json::to_vec(&other).unwrap()).unwrap();
        std::fs::write(d.join("put.tmp.1.78"), b"tampered").unwrap();
        let err = store.get_versioned("lease").await.unwrap_err();
        assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
    }

    #[tokio::test]
    async fn verify_reads_the_whole_file_and_names_what_differs() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDiskStore::new(dir.path()).unwrap();
        // Several verify buffers and a partial one.
        let content: Vec<u8> = (0..3 * VERIFY_BUF + 17).map(|i| (i % 251) as u8).collect();
        let meta = store
            .put_bytes("v/obj", Bytes::from(content.clone()))
            .await
            .unwrap();
        let digest = hex::encode(Sha256::digest(&content));
        assert_eq!(meta.sha256.as_deref(), Some(digest.as_str()));
        let verified = store.verify_content("v/obj").await.unwrap();
        assert_eq!(verified.sha256, meta.sha256);
        assert_eq!(verified.size, content.len() as u64);

        // The last byte changed, size kept: found past the first buffers.
        let (obj, _, _) = store.paths("v/obj").unwrap();
        let mut changed = content.clone();
        *changed.last_mut().unwrap() ^= 1;
        std::fs::write(&obj, &changed).unwrap();
        let err = store.verify("v/obj").await.unwrap_err();
        let Error::ChecksumMismatch {
            resource,
            expected,
            actual,
            ..
        } = &err
        else {
            panic!("expected a checksum mismatch, got {err}");
        };
        assert_eq!(resource, "object v/obj");
        assert!(expected.contains(&digest), "{expected}");
        assert!(
            actual.contains(&hex::encode(Sha256::digest(&changed))),
            "{actual}"
        );

        // Truncated: the sizes are named.
        std::fs::write(&obj, &content[..VERIFY_BUF]).unwrap();
        let err = store.verify("v/obj").await.unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&format!("{} bytes", content.len())), "{msg}");
        assert!(msg.contains(&format!("{VERIFY_BUF} bytes")), "{msg}");

        let err = store.verify("v/missing").await.unwrap_err();
        assert!(err.is_not_found(), "{err}");
    }
}
