//! [`PgInstance`] (how to reach one server) and [`PostgresBuilder`] (the provider's settings).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use dr_core::backup::Backups;
use dr_core::provider::DbRef;
use dr_core::{Error, Result, Secret};

use crate::client::PROVIDER;
use crate::database::PostgresDatabase;
use crate::server::LocalServer;

/// Environment variable naming the directory of the PostgreSQL server and client binaries
/// (`/usr/lib/postgresql/15/bin`), read by [`PostgresBuilder::from_env`].
pub const BINDIR_ENV: &str = "DR_PG_BINDIR";

/// How long a connection attempt may take, by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long `pg_promote` waits for the promotion to finish, by default.
pub const DEFAULT_PROMOTE_WAIT: Duration = Duration::from_secs(60);

/// One PostgreSQL server (and database on it) the provider manages, addressed by a [`DbRef`].
///
/// The password is a [`Secret`]: it is handed to the driver and, as `PGPASSWORD`, to the
/// client tools, and never appears in a message, a log line or `Debug` output.
///
/// # Examples
///
/// ```
/// use dr_core::Secret;
/// use dr_postgres::PgInstance;
///
/// let standby = PgInstance::new("10.0.2.15", 5432)
///     .with_user("dr")
///     .with_password(Secret::new("hunter2"))
///     .with_dbname("orders");
/// assert_eq!(standby.endpoint(), "10.0.2.15:5432");
/// assert!(!format!("{standby:?}").contains("hunter2"));
/// ```
#[derive(Debug, Clone)]
pub struct PgInstance {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) user: String,
    pub(crate) password: Option<Secret>,
    pub(crate) dbname: String,
    pub(crate) maintenance_db: String,
    pub(crate) server: Option<LocalServer>,
    pub(crate) source: Option<DbRef>,
}

impl PgInstance {
    /// A server at `host:port`, as user `postgres`, database `postgres`.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        PgInstance {
            host: host.into(),
            port,
            user: "postgres".into(),
            password: None,
            dbname: "postgres".into(),
            maintenance_db: "postgres".into(),
            server: None,
            source: None,
        }
    }

    /// The role to connect as (default `postgres`). Promotion and fencing need a superuser
    /// (or a role granted `pg_promote` and `ALTER SYSTEM`); a base backup needs `REPLICATION`.
    pub fn with_user(mut self, user: impl Into<String>) -> Self {
        self.user = user.into();
        self
    }

    /// The role's password.
    pub fn with_password(mut self, password: Secret) -> Self {
        self.password = Some(password);
        self
    }

    /// The database this instance stands for (default `postgres`): the one dumped by
    /// `create_snapshot`, and the one created by a restore into this instance.
    pub fn with_dbname(mut self, dbname: impl Into<String>) -> Self {
        self.dbname = dbname.into();
        self
    }

    /// The database connected to for server-wide work, such as `CREATE DATABASE` before a
    /// restore (default `postgres`).
    pub fn with_maintenance_db(mut self, dbname: impl Into<String>) -> Self {
        self.maintenance_db = dbname.into();
        self
    }

    /// The local server process behind this instance: enables `reboot` (`pg_ctl restart`)
    /// and makes this instance a place `create_replica` can build a new standby in
    /// (`pg_basebackup` into its data directory, then `pg_ctl start`).
    pub fn with_server(mut self, server: LocalServer) -> Self {
        self.server = Some(server);
        self
    }

    /// The instance this one replicates from, when the standby cannot tell (its WAL receiver
    /// is down and its `primary_conninfo` names a host no configured instance has).
    pub fn with_source(mut self, source: DbRef) -> Self {
        self.source = Some(source);
        self
    }

    /// An instance from a libpq connection string (`postgres://user:pw@host:5432/db` or
    /// `host=… port=… user=… password=… dbname=…`), itself a [`Secret`] because it may
    /// hold the password. Only a TCP host is taken (the first, if several).
    ///
    /// # Errors
    /// `InvalidRequest` when it cannot be parsed or names no TCP host; the message never
    /// repeats the string.
    ///
    /// # Examples
    ///
    /// ```
    /// use dr_core::Secret;
    /// use dr_postgres::PgInstance;
    ///
    /// let i = PgInstance::from_url(&Secret::new("postgres://dr:pw@10.0.0.5:5433/orders"))?;
    /// assert_eq!((i.endpoint().as_str(), i.user(), i.dbname()), ("10.0.0.5:5433", "dr", "orders"));
    /// # Ok::<(), dr_core::Error>(())
    /// ```
    pub fn from_url(url: &Secret) -> Result<Self> {
        let bad = |message: &str| Error::InvalidRequest {
            provider: PROVIDER.into(),
            operation: "parse a connection string".into(),
            message: message.into(),
        };
        let c: tokio_postgres::Config = url
            .expose()
            .parse()
            .map_err(|_| bad("not a valid PostgreSQL connection string"))?;
        let host = c
            .get_hosts()
            .iter()
            .find_map(|h| match h {
                tokio_postgres::config::Host::Tcp(h) => Some(h.clone()),
                #[allow(unreachable_patterns)]
                _ => None,
            })
            .ok_or_else(|| bad("the connection string names no TCP host"))?;
        let port = c.get_ports().first().copied().unwrap_or(5432);
        let mut inst = PgInstance::new(host, port);
        if let Some(u) = c.get_user() {
            inst = inst.with_user(u);
        }
        if let Some(d) = c.get_dbname() {
            inst = inst.with_dbname(d);
        }
        if let Some(p) = c.get_password() {
            let p = std::str::from_utf8(p).map_err(|_| bad("the password is not UTF-8"))?;
            inst = inst.with_password(Secret::new(p));
        }
        Ok(inst)
    }

    /// `host:port`.
    pub fn endpoint(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The database name.
    pub fn dbname(&self) -> &str {
        &self.dbname
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// A `postgres://` URL for this instance, with the password: for an application's
    /// secret. It is a [`Secret`], so it never prints.
    ///
    /// User, password and database name are percent-encoded.
    ///
    /// ```
    /// use dr_core::Secret;
    /// use dr_postgres::PgInstance;
    ///
    /// let i = PgInstance::new("db1", 5432).with_password(Secret::new("p@ss/w:rd"));
    /// assert_eq!(i.url().expose(), "postgres://postgres:p%40ss%2Fw%3Ard@db1:5432/postgres");
    /// assert_eq!(PgInstance::from_url(&i.url())?.url(), i.url());
    /// # Ok::<(), dr_core::Error>(())
    /// ```
    pub fn url(&self) -> Secret {
        let auth = match &self.password {
            Some(p) => format!("{}:{}", encode(&self.user), encode(p.expose())),
            None => encode(&self.user),
        };
        Secret::new(format!(
            "postgres://{auth}@{}:{}/{}",
            self.host,
            self.port,
            encode(&self.dbname)
        ))
    }

    pub(crate) fn pg_config(&self, dbname: &str, timeout: Duration) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(dbname)
            .application_name("dr-postgres")
            .connect_timeout(timeout);
        if let Some(p) = &self.password {
            c.password(p.expose());
        }
        c
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Settings of a [`PostgresDatabase`]: the instances it manages, where dumps go, where the
/// PostgreSQL binaries are.
///
/// # Examples
///
/// ```no_run
/// # fn main() -> dr_core::Result<()> {
/// use std::sync::Arc;
/// use dr_core::backup::Backups;
/// use dr_core::provider::DbRef;
/// use dr_core::store::LocalDiskStore;
/// use dr_core::Secret;
/// use dr_postgres::{PgInstance, PostgresBuilder};
///
/// let password = Secret::new(std::env::var("PGPASSWORD").unwrap_or_default());
/// let pg = PostgresBuilder::from_env()
///     .with_instance(
///         DbRef::new("dc1", "orders"),
///         PgInstance::new("10.0.1.10", 5432).with_password(password.clone()),
///     )
///     .with_instance(
///         DbRef::new("dc2", "orders-standby"),
///         PgInstance::new("10.0.2.10", 5432).with_password(password),
///     )
///     .with_dumps("dc1", Backups::new(Arc::new(LocalDiskStore::new("/var/backups/pg")?)))
///     .build()?;
/// # let _ = pg; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PostgresBuilder {
    instances: BTreeMap<DbRef, PgInstance>,
    bindir: Option<PathBuf>,
    dumps: BTreeMap<String, Backups>,
    dump_prefix: String,
    fence: bool,
    connect_timeout: Duration,
    promote_wait: Duration,
    archives: BTreeMap<DbRef, crate::WalArchive>,
}

impl Default for PostgresBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl PostgresBuilder {
    /// No instances; client tools from `PATH`; old primaries fenced on promotion.
    pub fn new() -> Self {
        PostgresBuilder {
            instances: BTreeMap::new(),
            bindir: None,
            dumps: BTreeMap::new(),
            dump_prefix: "postgres/".into(),
            fence: true,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            promote_wait: DEFAULT_PROMOTE_WAIT,
            archives: BTreeMap::new(),
        }
    }

    /// As [`new`](Self::new), with the binaries' directory from [`BINDIR_ENV`] when set.
    pub fn from_env() -> Self {
        let b = Self::new();
        match std::env::var_os(BINDIR_ENV).filter(|v| !v.is_empty()) {
            Some(dir) => b.with_bindir(dir),
            None => b,
        }
    }

    /// Manages `instance` as `db`. Only configured instances exist for the provider: any
    /// other [`DbRef`] is `NotFound`.
    pub fn with_instance(mut self, db: DbRef, instance: PgInstance) -> Self {
        self.instances.insert(db, instance);
        self
    }

    /// Where `pg_dump`, `psql`, `pg_basebackup`, `pg_ctl` and `initdb` are (default: `PATH`).
    pub fn with_bindir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.bindir = Some(dir.into());
        self
    }

    /// Dumps of databases are kept in `backups` as the snapshots of `region`: written with a
    /// manifest and checksum (and encrypted, if `backups` encrypts), verified before any
    /// restore.
    pub fn with_dumps(mut self, region: impl Into<String>, backups: Backups) -> Self {
        self.dumps.insert(region.into(), backups);
        self
    }

    /// Key prefix of dumps in their stores (default `postgres/`; keys are
    /// `{prefix}{region}/{snapshot id}.sql`).
    pub fn with_dump_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.dump_prefix = prefix.into();
        self
    }

    /// Whether promoting a standby fences its old primary where it is reachable (default
    /// `true`): see [`PostgresDatabase::fence`].
    pub fn with_fencing(mut self, fence: bool) -> Self {
        self.fence = fence;
        self
    }

    /// How long one connection attempt may take (default [`DEFAULT_CONNECT_TIMEOUT`]).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// `db`'s WAL is archived into `archive`: enables base backups into it, shipping its
    /// WAL spool, and `restore_to_point_in_time` from it (into instances with a local
    /// server).
    pub fn with_wal_archive(mut self, db: DbRef, archive: crate::WalArchive) -> Self {
        self.archives.insert(db, archive);
        self
    }

    /// How long `pg_promote(wait => true)` waits (default [`DEFAULT_PROMOTE_WAIT`]).
    pub fn with_promote_wait(mut self, wait: Duration) -> Self {
        self.promote_wait = wait;
        self
    }

    /// The provider.
    ///
    /// # Errors
    /// `InvalidRequest` when the bindir is not a directory, or a promote wait is under one
    /// second.
    pub fn build(self) -> Result<PostgresDatabase> {
        let bad = |message: String| Error::InvalidRequest {
            provider: PROVIDER.into(),
            operation: "build".into(),
            message,
        };
        if let Some(dir) = &self.bindir {
            if !dir.is_dir() {
                return Err(bad(format!(
                    "the PostgreSQL bindir {} is not a directory",
                    dir.display()
                )));
            }
        }
        if self.promote_wait < Duration::from_secs(1) {
            return Err(bad("the promote wait must be at least one second".into()));
        }
        Ok(PostgresDatabase::from_parts(crate::database::Parts {
            instances: self.instances,
            tools: crate::client::Tools::new(self.bindir),
            dumps: self
                .dumps
                .into_iter()
                .map(|(r, b)| (r, Arc::new(b)))
                .collect(),
            dump_prefix: self.dump_prefix,
            fence: self.fence,
            connect_timeout: self.connect_timeout,
            promote_wait: self.promote_wait,
            archives: self.archives,
        }))
    }
}
