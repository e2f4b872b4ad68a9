//! [`LocalPair`]: a primary and a streaming standby on this machine, for drills, examples
//! and tests.

use std::path::{Path, PathBuf};

use dr_core::{Error, Result, Secret};

use crate::config::PgInstance;
use crate::server::LocalServer;

/// A primary and a streaming standby of it, each on a free `127.0.0.1` port, with their
/// data directories under one root: `initdb` for the primary, `pg_basebackup -R` for the
/// standby. Both are stopped (immediately) when it is dropped.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use dr_core::Secret;
/// use dr_postgres::LocalPair;
///
/// let root = std::env::temp_dir().join("dr-drill");
/// std::fs::create_dir_all(&root).map_err(|e| dr_core::Error::io("mkdir", e))?;
/// let pair = LocalPair::start(&root, Some("/usr/lib/postgresql/15/bin".as_ref()),
///                             Some("postgres"), Secret::new("drill")).await?;
/// println!("primary on {}, standby on {}", pair.primary_instance().endpoint(),
///          pair.standby_instance().endpoint());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct LocalPair {
    primary: LocalServer,
    standby: LocalServer,
    password: Secret,
    root: PathBuf,
    spares: std::sync::Mutex<Vec<LocalServer>>,
}

/// How many ports a server of the pair tries before giving up: a port chosen free may be
/// taken by another process before the server binds it.
const PORT_ATTEMPTS: usize = 5;

/// A port no one listens on right now, on 127.0.0.1.
///
/// # Errors
/// `Io` when no port can be bound.
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Error::io("finding a free port on 127.0.0.1", e))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::io("finding a free port on 127.0.0.1", e))
}

impl LocalPair {
    /// Creates and starts the pair under `root` (which must exist), with the binaries in
    /// `bindir` (or `PATH`), the servers run as OS user `run_as` when given (needed when
    /// this process is root), and `password` for the `postgres` superuser. Servers are
    /// tuned for drills (`fsync = off`).
    ///
    /// # Errors
    /// A failing `initdb`, `pg_ctl` or `pg_basebackup` (their logs are next to the data
    /// directories); `InvalidRequest` for an unknown user.
    pub async fn start(
        root: &Path,
        bindir: Option<&Path>,
        run_as: Option<&str>,
        password: Secret,
    ) -> Result<Self> {
        let make = |name: &str, port: u16| -> Result<LocalServer> {
            let mut s = LocalServer::new(root.join(name), port)
                .with_setting("fsync", "off")
                .with_setting("synchronous_commit", "off")
                .with_setting("full_page_writes", "off")
                .with_setting("wal_receiver_status_interval", "1s");
            if let Some(dir) = bindir {
                s = s.with_bindir(dir);
            }
            if let Some(user) = run_as {
                s = s.with_run_as_user(user)?;
            }
            Ok(s)
        };
        let mut primary = make("primary", free_port()?)?;
        let standby = make("standby", free_port()?)?;
        if let Some((uid, gid)) = primary.run_as() {
            std::os::unix::fs::chown(root, Some(uid), Some(gid)).map_err(|e| {
                Error::io(format!("giving {} to the server user", root.display()), e)
            })?;
        }
        primary.init(&password).await?;
        primary.start_moving_port(PORT_ATTEMPTS, free_port).await?;
        let mut pair = LocalPair {
            standby,
            primary,
            password,
            root: root.to_path_buf(),
            spares: std::sync::Mutex::default(),
        };
        // Started from here on: dropping `pair` stops what runs.
        let source = pair.primary_instance();
        pair.standby.base_backup(&source).await?;
        pair.standby
            .start_moving_port(PORT_ATTEMPTS, free_port)
            .await?;
        Ok(pair)
    }

    /// The `postgres` superuser's password.
    pub fn password(&self) -> &Secret {
        &self.password
    }

    /// The primary's server.
    pub fn primary(&self) -> &LocalServer {
        &self.primary
    }

    /// The standby's server.
    pub fn standby(&self) -> &LocalServer {
        &self.standby
    }

    /// How to connect to the primary (user `postgres`, database `postgres`).
    pub fn primary_instance(&self) -> PgInstance {
        self.primary.instance(Some(self.password.clone()))
    }

    /// How to connect to the standby.
    pub fn standby_instance(&self) -> PgInstance {
        self.standby.instance(Some(self.password.clone()))
    }

    /// A server that does not exist yet, under the same root, for `create_replica`; if it
    /// is ever started, it is stopped with the pair.
    ///
    /// # Errors
    /// `Io` when no port is free.
    pub fn spare(&self, name: &str) -> Result<LocalServer> {
        let mut s = LocalServer::new(self.root.join(name), free_port()?)
            .with_setting("fsync", "off")
            .with_setting("wal_receiver_status_interval", "1s");
        s = match self.primary.tools_dir() {
            Some(dir) => s.with_bindir(dir),
            None => s,
        };
        if let Some((uid, gid)) = self.primary.run_as() {
            s = s.with_run_as(uid, gid);
        }
        self.spares
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(s.clone());
        Ok(s)
    }
}

impl Drop for LocalPair {
    fn drop(&mut self) {
        let spares = self
            .spares
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for s in spares.iter().filter(|s| s.is_initialized()) {
            s.kill_now();
        }
        self.standby.kill_now();
        self.primary.kill_now();
    }
}
