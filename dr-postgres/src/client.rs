//! Raw calls: driver connections, and the PostgreSQL client tools run as child processes.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use dr_core::provider::ByteStream;
use dr_core::{Error, Result};
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};

use crate::config::PgInstance;
use crate::error::{map_pg, map_tool, redact, spawn_failed, Ctx};

/// The provider's name in errors and reports.
pub(crate) const PROVIDER: &str = "postgres";

/// Bytes read from a tool's standard output per chunk.
const CHUNK: usize = 256 * 1024;

/// Most of a tool's standard error kept for an error message.
const STDERR_KEEP: usize = 16 * 1024;

/// A connected client; its connection task ends when the client is dropped.
pub(crate) async fn connect(
    inst: &PgInstance,
    dbname: &str,
    timeout: Duration,
    ctx: Ctx<'_>,
) -> Result<tokio_postgres::Client> {
    let config = inst.pg_config(dbname, timeout);
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| map_pg(ctx, e, timeout))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "postgres connection ended");
        }
    });
    Ok(client)
}

/// Where the PostgreSQL binaries are, and how to run them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tools {
    bindir: Option<PathBuf>,
}

impl Tools {
    pub(crate) fn new(bindir: Option<PathBuf>) -> Self {
        Tools { bindir }
    }

    pub(crate) fn bindir(&self) -> Option<&std::path::Path> {
        self.bindir.as_deref()
    }

    pub(crate) fn path(&self, tool: &str) -> PathBuf {
        match &self.bindir {
            Some(dir) => dir.join(tool),
            None => PathBuf::from(tool),
        }
    }

    /// `tool`, with the connection settings of `inst` in its environment (the password as
    /// `PGPASSWORD`, never on the command line), run as `run_as` when given.
    pub(crate) fn command(
        &self,
        tool: &str,
        inst: Option<(&PgInstance, &str)>,
        run_as: Option<(u32, u32)>,
    ) -> Command {
        let mut cmd = Command::new(self.path(tool));
        for var in ["PGSERVICE", "PGSERVICEFILE", "PGPASSFILE", "PGOPTIONS"] {
            cmd.env_remove(var);
        }
        if let Some((inst, dbname)) = inst {
            cmd.env("PGHOST", &inst.host)
                .env("PGPORT", inst.port.to_string())
                .env("PGUSER", &inst.user)
                .env("PGDATABASE", dbname)
                .env("PGCONNECT_TIMEOUT", "10")
                .env("PGAPPNAME", "dr-postgres");
            match &inst.password {
                Some(p) => cmd.env("PGPASSWORD", p.expose()),
                None => cmd.env_remove("PGPASSWORD"),
            };
        }
        if let Some((uid, gid)) = run_as {
            cmd.uid(uid).gid(gid);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }
}

/// Spawns `cmd`, mapping a failure to start it.
pub(crate) fn spawn(cmd: &mut Command, tool: &str, ctx: Ctx<'_>) -> Result<Child> {
    cmd.spawn().map_err(|e| spawn_failed(ctx, tool, e))
}

/// Reads a tool's standard error in the background (at most [`STDERR_KEEP`] bytes kept).
pub(crate) fn collect_stderr(child: &mut Child) -> tokio::task::JoinHandle<String> {
    let stderr = child.stderr.take();
    tokio::spawn(async move {
        let Some(mut stderr) = stderr else {
            return String::new();
        };
        let mut kept = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match stderr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    kept.extend_from_slice(&buf[..n]);
                    if kept.len() > STDERR_KEEP {
                        let cut = kept.len() - STDERR_KEEP;
                        kept.drain(..cut);
                    }
                }
            }
        }
        String::from_utf8_lossy(&kept).into_owned()
    })
}

/// Waits for a tool started by [`spawn`] and maps a non-zero exit to an error; standard
/// error is redacted of `secret` first.
pub(crate) async fn finish(
    mut child: Child,
    stderr: tokio::task::JoinHandle<String>,
    tool: &str,
    secret: Option<&str>,
    ctx: Ctx<'_>,
) -> Result<String> {
    let status = child
        .wait()
        .await
        .map_err(|e| Error::io(format!("waiting for {tool}"), e))?;
    let text = redact(&stderr.await.unwrap_or_default(), secret);
    if status.success() {
        Ok(text)
    } else {
        Err(map_tool(ctx, tool, status.code(), &text))
    }
}

/// Runs `cmd` to completion.
pub(crate) async fn run(
    mut cmd: Command,
    tool: &str,
    secret: Option<&str>,
    ctx: Ctx<'_>,
) -> Result<String> {
    let mut child = spawn(&mut cmd, tool, ctx)?;
    let stderr = collect_stderr(&mut child);
    finish(child, stderr, tool, secret, ctx).await
}

/// A tool's standard output as a [`ByteStream`]: chunks as they are produced, then, once
/// the tool has exited, an error instead of the end if it failed. Nothing is buffered
/// beyond one chunk.
pub(crate) fn output_stream(
    mut child: Child,
    tool: &'static str,
    secret: Option<String>,
    operation: String,
    resource: String,
) -> Result<ByteStream> {
    let stdout = child.stdout.take().ok_or_else(|| Error::InvalidResponse {
        provider: PROVIDER.into(),
        operation: operation.clone(),
        message: format!("{tool} has no standard output"),
    })?;
    let stderr = collect_stderr(&mut child);
    struct St {
        out: Box<dyn AsyncRead + Send + Unpin>,
        child: Option<(Child, tokio::task::JoinHandle<String>)>,
        secret: Option<String>,
        operation: String,
        resource: String,
    }
    let st = St {
        out: Box::new(stdout),
        child: Some((child, stderr)),
        secret,
        operation,
        resource,
    };
    let stream = futures::stream::unfold(st, move |mut st| async move {
        let (child, stderr) = st.child.take()?;
        let mut buf = BytesMut::with_capacity(CHUNK);
        match st.out.read_buf(&mut buf).await {
            Ok(0) => {
                let ctx = Ctx::new(&st.operation, &st.resource);
                match finish(child, stderr, tool, st.secret.as_deref(), ctx).await {
                    Ok(_) => None,
                    Err(e) => Some((Err(e), st)),
                }
            }
            Ok(_) => {
                st.child = Some((child, stderr));
                Some((Ok::<Bytes, Error>(buf.freeze()), st))
            }
            Err(e) => Some((Err(Error::io(format!("reading {tool} output"), e)), st)),
        }
    });
    Ok(stream.boxed())
}

/// Quotes an SQL identifier (`orders` → `"orders"`, `a"b` → `"a""b"`).
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a possibly schema-qualified table name (`shop.orders` → `"shop"."orders"`).
pub(crate) fn quote_table(name: &str) -> String {
    name.split('.')
        .map(quote_ident)
        .collect::<Vec<_>>()
        .join(".")
}

/// Parses an LSN (`16/B374D848`) into a byte position.
pub(crate) fn parse_lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.split_once('/')?;
    let hi = u64::from_str_radix(hi, 16).ok()?;
    let lo = u64::from_str_radix(lo, 16).ok()?;
    Some((hi << 32) | lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_and_quoting() {
        assert_eq!(parse_lsn("0/3000148"), Some(0x300_0148));
        assert_eq!(parse_lsn("16/B374D848"), Some((0x16 << 32) | 0xB374_D848));
        assert_eq!(parse_lsn("nope"), None);
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_table("shop.orders"), "\"shop\".\"orders\"");
    }
}
