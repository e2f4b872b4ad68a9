//! The `command` step kind: run a program (a smoke test, a vendor CLI, a script from the old
//! runbook), with its exit status and output captured into the report.
//!
//! Parameters in a plan:
//!
//! ```yaml
//! steps:
//!   - id: smoke-test
//!     kind: command
//!     after: [api]
//!     params:
//!       program: ./scripts/smoke.sh
//!       args: [--region, us-west-2]
//!       env: { API_TOKEN: { env: SMOKE_TOKEN } }   # values are secrets: never printed
//!       dir: /srv/runbooks                         # working directory, optional
//! ```
//!
//! Exit status 0 succeeds; any other fails the step permanently (a program that wants to be
//! retried exits with 75, `EX_TEMPFAIL`, which is temporary with an unknown effect). The
//! program is killed when the attempt times out. The report keeps the exit status and the
//! first 4 KiB of stdout and of stderr, with the values of secret variables masked.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::webhook::HeaderValue as EnvValue;
use super::{Action, Call, Role, StepAction, StepContext};
use crate::{Error, Result, Retry};

/// How much of stdout and of stderr the report keeps.
pub const OUTPUT_CAP: usize = 4096;

/// The exit status a program uses to ask for a retry (`EX_TEMPFAIL`).
pub const EXIT_TEMPFAIL: i32 = 75;

/// A program run by a step. See the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    /// The program (a path, or a name looked up in `PATH`).
    pub program: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment variables (values are secrets: never printed).
    #[serde(default)]
    pub env: BTreeMap<String, EnvValue>,
    /// Working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// Whether running it twice is harmless (default `true`).
    #[serde(default = "yes")]
    pub idempotent: bool,
}

fn yes() -> bool {
    true
}

impl Command {
    /// The `command` kind of plan steps.
    ///
    /// # Errors
    /// Malformed parameters or an empty program.
    pub fn from_params(params: &serde_json::Value) -> std::result::Result<Action, String> {
        let cmd: Command = super::registry::params(params)?;
        if cmd.program.trim().is_empty() {
            return Err("invalid parameter `program`: empty".into());
        }
        Ok(Action::new(cmd))
    }

    fn target(&self) -> String {
        let mut t = self.program.clone();
        for a in &self.args {
            t.push(' ');
            t.push_str(a);
        }
        t
    }
}

/// Reads at most `cap` bytes of `r` and discards the rest, so a chatty program neither fills
/// memory nor blocks on a full pipe.
async fn capped(mut r: impl AsyncRead + Unpin, cap: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

fn mask(text: &[u8], secrets: &[String]) -> String {
    let mut s = String::from_utf8_lossy(text).into_owned();
    for secret in secrets.iter().filter(|v| !v.is_empty()) {
        s = s.replace(secret.as_str(), "***");
    }
    s
}

#[async_trait]
impl StepAction for Command {
    fn kind(&self) -> &str {
        "command"
    }
    fn params(&self) -> serde_json::Value {
        let env: BTreeMap<&str, String> = self
            .env
            .iter()
            .map(|(k, v)| {
                let shown = match v {
                    EnvValue::Env { env } => format!("${env}"),
                    EnvValue::Literal(_) => "***".into(),
                };
                (k.as_str(), shown)
            })
            .collect();
        serde_json::json!({
            "program": self.program,
            "args": self.args,
            "env": env,
            "dir": self.dir,
            "idempotent": self.idempotent,
        })
    }
    fn calls(&self) -> Vec<Call> {
        vec![Call::new(Role::Process, "run", self.target())]
    }
    fn idempotent(&self) -> bool {
        self.idempotent
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(30)
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir);
        }
        let mut secrets = Vec::new();
        for (name, value) in &self.env {
            let v = value.resolve(name)?;
            secrets.push(v.expose().to_string());
            cmd.env(name, v.expose());
        }
        let operation = format!("run {}", self.program);
        let op = operation.clone();
        // Killed (kill_on_drop) when the time is up: the future holding it is dropped.
        let (code, stdout, stderr) =
            super::off_clock(operation.clone(), ctx.remaining(), move || async move {
                let mut child = cmd.spawn().map_err(|e| {
                    let retry = if e.kind() == std::io::ErrorKind::NotFound
                        || e.kind() == std::io::ErrorKind::PermissionDenied
                    {
                        Retry::Permanent
                    } else {
                        Retry::Temporary
                    };
                    Error::Other {
                        provider: "command".into(),
                        operation: op.clone(),
                        retry,
                        source: Box::new(e),
                    }
                })?;
                let out = child.stdout.take();
                let err = child.stderr.take();
                let (status, stdout, stderr) = tokio::join!(
                    child.wait(),
                    async {
                        match out {
                            Some(o) => capped(o, OUTPUT_CAP).await,
                            None => Vec::<u8>::new(),
                        }
                    },
                    async {
                        match err {
                            Some(e) => capped(e, OUTPUT_CAP).await,
                            None => Vec::<u8>::new(),
                        }
                    }
                );
                let status = status.map_err(|e| Error::io(op.clone(), e))?;
                Ok((status.code(), stdout, stderr))
            })
            .await?;
        ctx.output = Some(serde_json::json!({
            "exit_status": code,
            "stdout": mask(&stdout, &secrets),
            "stderr": mask(&stderr, &secrets),
        }));
        match code {
            Some(0) => Ok(()),
            Some(EXIT_TEMPFAIL) => Err(Error::Other {
                provider: "command".into(),
                operation,
                retry: Retry::Temporary,
                source: format!("exited with status {EXIT_TEMPFAIL} (temporary failure)").into(),
            }),
            Some(c) => Err(Error::Other {
                provider: "command".into(),
                operation,
                retry: Retry::Permanent,
                source: format!("exited with status {c}").into(),
            }),
            None => Err(Error::Other {
                provider: "command".into(),
                operation,
                retry: Retry::Permanent,
                source: "killed by a signal".into(),
            }),
        }
    }
}
