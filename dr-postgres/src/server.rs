//! [`LocalServer`]: a PostgreSQL server process on this machine, managed with `initdb`,
//! `pg_ctl` and `pg_basebackup`.

use dr_core::{Error, Result, Secret};
use std::path::{Path, PathBuf};

use crate::client::{run, Tools, PROVIDER};
use crate::config::PgInstance;
use crate::error::Ctx;

/// A server process on this machine: its data directory, port, binaries and the OS user it
/// runs as. It lets the provider restart an instance (`reboot`) and build a new standby
/// (`create_replica`: `pg_basebackup -R` into the data directory, then `pg_ctl start`); it
/// also sets up servers from scratch ([`init`](Self::init),
/// [`base_backup`](Self::base_backup)), as the tests and examples do.
///
/// `initdb` and `postgres` refuse to run as root: when this process is root, give the
/// server an unprivileged user with [`with_run_as`](Self::with_run_as) (the Debian package
/// creates `postgres`). Files are created by that user, so the data directory's parent
/// must be writable by it.
///
/// Settings given with [`with_setting`](Self::with_setting) (and the port, and
/// `listen_addresses`) are appended to `postgresql.conf` after `initdb` and after a base
/// backup, so a standby gets its own port rather than its primary's.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use dr_core::Secret;
/// use dr_postgres::LocalServer;
///
/// let password = Secret::new("s3cret");
/// let primary = LocalServer::new("/srv/pg/primary", 5433)
///     .with_bindir("/usr/lib/postgresql/15/bin")
///     .with_run_as_user("postgres")?;
/// primary.init(&password).await?;
/// primary.start().await?;
/// let standby = LocalServer::new("/srv/pg/standby", 5434)
///     .with_bindir("/usr/lib/postgresql/15/bin")
///     .with_run_as_user("postgres")?;
/// standby.base_backup(&primary.instance(Some(password.clone()))).await?;
/// standby.start().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct LocalServer {
    data_dir: PathBuf,
    port: u16,
    listen: String,
    tools: Tools,
    run_as: Option<(u32, u32)>,
    settings: Vec<(String, String)>,
}

impl LocalServer {
    /// A server with its data in `data_dir`, listening on `127.0.0.1:port`.
    pub fn new(data_dir: impl Into<PathBuf>, port: u16) -> Self {
        LocalServer {
            data_dir: data_dir.into(),
            port,
            listen: "127.0.0.1".into(),
            tools: Tools::default(),
            run_as: None,
            settings: Vec::new(),
        }
    }

    /// Where `initdb`, `pg_ctl` and `pg_basebackup` are (default: `PATH`; Debian keeps them
    /// in `/usr/lib/postgresql/15/bin`).
    pub fn with_bindir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.tools = Tools::new(Some(dir.into()));
        self
    }

    /// The address to listen on (default `127.0.0.1`).
    pub fn with_listen_address(mut self, address: impl Into<String>) -> Self {
        self.listen = address.into();
        self
    }

    /// Runs the server tools as this uid and gid.
    pub fn with_run_as(mut self, uid: u32, gid: u32) -> Self {
        self.run_as = Some((uid, gid));
        self
    }

    /// Runs the server tools as the OS user `name` (looked up with `id`).
    ///
    /// # Errors
    /// `InvalidRequest` when there is no such user.
    pub fn with_run_as_user(self, name: &str) -> Result<Self> {
        let id = |flag: &str| -> Option<u32> {
            let out = std::process::Command::new("id")
                .args([flag, name])
                .output()
                .ok()?;
            if !out.status.success() {
                return None;
            }
            String::from_utf8_lossy(&out.stdout).trim().parse().ok()
        };
        match (id("-u"), id("-g")) {
            (Some(uid), Some(gid)) => Ok(self.with_run_as(uid, gid)),
            _ => Err(Error::InvalidRequest {
                provider: PROVIDER.into(),
                operation: "run the server as".into(),
                message: format!("there is no OS user {name:?}"),
            }),
        }
    }

    /// Adds a `postgresql.conf` setting (`fsync`, `off`), written after `initdb` and after a
    /// base backup.
    pub fn with_setting(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((name.into(), value.into()));
        self
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server log (`{data_dir}.log`).
    pub fn log_file(&self) -> PathBuf {
        let mut name = self.data_dir.as_os_str().to_owned();
        name.push(".log");
        PathBuf::from(name)
    }

    /// The directory of the binaries, if not `PATH`.
    pub fn tools_dir(&self) -> Option<&Path> {
        self.tools.bindir()
    }

    /// The uid and gid the tools run as, if not this process's.
    pub fn run_as(&self) -> Option<(u32, u32)> {
        self.run_as
    }

    /// Whether the data directory holds a cluster (`PG_VERSION` exists).
    pub fn is_initialized(&self) -> bool {
        self.data_dir.join("PG_VERSION").is_file()
    }

    /// The instance to connect to this server as `postgres`.
    pub fn instance(&self, password: Option<Secret>) -> PgInstance {
        let inst = PgInstance::new(&self.listen, self.port).with_server(self.clone());
        match password {
            Some(p) => inst.with_password(p),
            None => inst,
        }
    }

    fn resource(&self) -> String {
        format!("server {}", self.data_dir.display())
    }

    fn already_initialized(&self) -> Error {
        Error::AlreadyExists {
            provider: PROVIDER.into(),
            resource: self.resource(),
        }
    }

    /// Creates a new cluster with `initdb`: superuser `postgres` with `password` (stored as
    /// SCRAM), `trust` for local socket connections by the OS user, `scram-sha-256` over TCP
    /// (replication included); then writes the settings.
    ///
    /// # Errors
    /// `AlreadyExists` when the data directory holds a cluster; the tool's error.
    pub async fn init(&self, password: &Secret) -> Result<()> {
        if self.is_initialized() {
            return Err(self.already_initialized());
        }
        let resource = self.resource();
        let ctx = Ctx::new("initdb", &resource);
        // The password goes through a file only the server's user can read, never argv.
        let pwfile = {
            let mut name = self.data_dir.as_os_str().to_owned();
            name.push(".pwfile");
            PathBuf::from(name)
        };
        write_private(&pwfile, password.expose(), self.run_as)?;
        let mut cmd = self.tools.command("initdb", None, self.run_as);
        cmd.arg("-D")
            .arg(&self.data_dir)
            .args([
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
                "--encoding=UTF8",
                "--locale=C",
            ])
            .arg(format!("--pwfile={}", pwfile.display()));
        let result = run(cmd, "initdb", Some(password.expose()), ctx).await;
        let _ = std::fs::remove_file(&pwfile);
        result?;
        self.write_settings()
    }

    /// Makes this server a streaming standby of `primary`: `pg_basebackup -R -X stream`
    /// into the (absent or empty) data directory, then writes the settings. Start it with
    /// [`start`](Self::start).
    ///
    /// # Errors
    /// `AlreadyExists` when the data directory holds a cluster; the tool's error (its
    /// standard error has the password removed).
    pub async fn base_backup(&self, primary: &PgInstance) -> Result<()> {
        if self.is_initialized() {
            return Err(self.already_initialized());
        }
        let resource = self.resource();
        let ctx = Ctx::new("pg_basebackup", &resource);
        let mut cmd = self.tools.command(
            "pg_basebackup",
            Some((primary, &primary.maintenance_db)),
            self.run_as,
        );
        cmd.arg("-D")
            .arg(&self.data_dir)
            .args(["-R", "-X", "stream", "-c", "fast", "--no-sync"]);
        let secret = primary.password.as_ref().map(|p| p.expose());
        run(cmd, "pg_basebackup", secret, ctx).await?;
        self.write_settings()
    }

    fn write_settings(&self) -> Result<()> {
        self.write_settings_with(&[])
    }

    /// Appends this server's settings, then `extra`, to its `postgresql.conf`.
    pub(crate) fn write_settings_with(&self, extra: &[(String, String)]) -> Result<()> {
        use std::io::Write;
        let path = self.data_dir.join("postgresql.conf");
        let mut text = String::from("\n# dr-postgres\n");
        text.push_str(&format!("port = {}\n", self.port));
        text.push_str(&format!("listen_addresses = '{}'\n", self.listen));
        text.push_str("unix_socket_directories = ''\n");
        for (k, v) in self.settings.iter().chain(extra) {
            text.push_str(&format!("{k} = '{}'\n", v.replace('\'', "''")));
        }
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        f.write_all(text.as_bytes())
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }

    async fn pg_ctl(&self, args: &[&str], what: &str) -> Result<()> {
        let resource = self.resource();
        let ctx = Ctx::new(what, &resource);
        let mut cmd = self.tools.command("pg_ctl", None, self.run_as);
        cmd.arg("-D").arg(&self.data_dir).args(args);
        run(cmd, "pg_ctl", None, ctx).await.map(drop)
    }

    /// Starts the server and waits (up to a minute) until it accepts connections.
    ///
    /// # Errors
    /// The tool's error (see the [log file](Self::log_file)).
    pub async fn start(&self) -> Result<()> {
        let path = self.log_file();
        let log = path.to_string_lossy();
        let seen = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        self.pg_ctl(&["-l", &log, "-w", "-t", "60", "start"], "start")
            .await
            .map_err(|e| with_log_tail(e, &path, seen))
    }

    /// Starts the server; when it cannot bind its port (another process took it since the
    /// port was chosen), moves it to a port from `next_port` and tries again, up to
    /// `attempts` times in all. The port chosen is the server's from then on.
    ///
    /// # Errors
    /// The tool's error, as [`start`](Self::start); the last one when every port was taken.
    pub async fn start_moving_port(
        &mut self,
        attempts: usize,
        mut next_port: impl FnMut() -> Result<u16>,
    ) -> Result<()> {
        let mut left = attempts.max(1);
        loop {
            let seen = std::fs::metadata(self.log_file())
                .map(|m| m.len())
                .unwrap_or(0);
            match self.start().await {
                Ok(()) => return Ok(()),
                Err(e) if left > 1 && self.port_was_taken(seen) => {
                    left -= 1;
                    let port = next_port()?;
                    tracing::warn!(
                        server = %self.data_dir.display(),
                        from = self.port,
                        to = port,
                        "port taken, moving the server"
                    );
                    self.port = port;
                    self.write_settings_with(&[])?;
                    drop(e);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether the log, from byte `seen` on, says the server could not bind its port.
    fn port_was_taken(&self, seen: u64) -> bool {
        read_log_from(&self.log_file(), seen).is_some_and(|text| {
            text.contains("could not bind") || text.contains("Address already in use")
        })
    }

    /// Stops the server: `fast` (roll back sessions, checkpoint) unless `immediate` (no
    /// checkpoint: what a crash leaves).
    ///
    /// # Errors
    /// The tool's error (for instance when it is not running).
    pub async fn stop(&self, immediate: bool) -> Result<()> {
        let mode = if immediate { "immediate" } else { "fast" };
        self.pg_ctl(&["-m", mode, "-w", "-t", "60", "stop"], "stop")
            .await
    }

    /// Restarts the server (`pg_ctl restart -m fast`).
    ///
    /// # Errors
    /// The tool's error.
    pub async fn restart(&self) -> Result<()> {
        let log = self.log_file();
        let log = log.to_string_lossy();
        self.pg_ctl(
            &["-l", &log, "-m", "fast", "-w", "-t", "60", "restart"],
            "restart",
        )
        .await
    }

    /// Whether the server is running (`pg_ctl status`).
    pub async fn is_running(&self) -> bool {
        self.pg_ctl(&["status"], "status").await.is_ok()
    }

    /// Stops the server right now, without waiting, ignoring errors: for `Drop` guards.
    pub fn kill_now(&self) {
        let mut cmd = std::process::Command::new(self.tools.path("pg_ctl"));
        cmd.arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "immediate", "-w", "-t", "10", "stop"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if let Some((uid, gid)) = self.run_as {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(gid);
        }
        let _ = cmd.status();
    }
}

/// The log of a server from byte `from` on, if it can be read.
fn read_log_from(path: &Path, from: u64) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    f.seek(SeekFrom::Start(from)).ok()?;
    let mut bytes = Vec::new();
    f.take(1 << 20).read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// `e` with the last lines the server logged during the attempt (from byte `seen` on)
/// added to its message; a line naming a password is left out.
fn with_log_tail(e: Error, log: &Path, seen: u64) -> Error {
    let Some(text) = read_log_from(log, seen) else {
        return e;
    };
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.to_ascii_lowercase().contains("password"))
        .collect();
    if lines.is_empty() {
        return e;
    }
    let tail = lines[lines.len().saturating_sub(5)..].join(" | ");
    match e {
        Error::Other {
            provider,
            operation,
            retry,
            source,
        } => Error::Other {
            provider,
            operation,
            retry,
            source: format!("{source}; the server logged: {tail}").into(),
        },
        other => other,
    }
}

/// Writes `text` to a new file readable only by its owner, owned by `owner` when given.
fn write_private(path: &Path, text: &str, owner: Option<(u32, u32)>) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let ctx = || format!("writing {}", path.display());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(ctx(), e))?;
    f.write_all(text.as_bytes())
        .map_err(|e| Error::io(ctx(), e))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|e| Error::io(ctx(), e))?;
    }
    Ok(())
}
