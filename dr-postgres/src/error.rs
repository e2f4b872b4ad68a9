//! Every PostgreSQL and tool error mapped to [`dr_core::Error`], once, at the crate boundary.
//!
//! | what failed | class | variant |
//! |---|---|---|
//! | connection refused or reset, `08xxx`, `57P01` admin shutdown, `57P02`, `57P03` starting up, `53xxx` (`53300` too many connections), `40001`, `40P01`, a closed connection | temporary | `Unavailable` |
//! | connect timeout | temporary | `Timeout` |
//! | `28P01`/`28000` authentication, `42501` privilege, a client-side authentication failure | permanent | `Unauthorized` |
//! | `3D000` database does not exist | permanent | `NotFound` |
//! | `42P04` database exists | permanent | `AlreadyExists` |
//! | `25006` read-only transaction (a fenced or standby server) | permanent | `InvalidState` |
//! | `42xxx` syntax and undefined objects, `22xxx` data exceptions | permanent | `InvalidRequest` |
//! | anything else | permanent | `Other` |
//!
//! Messages carry the server's message and SQLSTATE, never a password or a connection string.

use std::time::Duration;

use dr_core::{Error, Retry};
use tokio_postgres::error::SqlState;

use crate::client::PROVIDER;

/// What was being done, for error messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) operation: &'a str,
    pub(crate) resource: &'a str,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(operation: &'a str, resource: &'a str) -> Self {
        Ctx {
            operation,
            resource,
        }
    }
}

/// Whether a SQLSTATE means "try again later".
pub(crate) fn is_temporary_code(code: &str) -> bool {
    code.starts_with("08") // connection exception
        || code.starts_with("53") // insufficient resources (53300 too many connections)
        || matches!(code, "57P01" | "57P02" | "57P03" | "40001" | "40P01" | "55P03")
}

/// Maps a driver error.
pub(crate) fn map_pg(ctx: Ctx<'_>, e: tokio_postgres::Error, timeout: Duration) -> Error {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code().to_string();
        let message = format!("{} (SQLSTATE {code})", db.message());
        return classify_code(ctx, &code, message, Some(Box::new(e)));
    }
    let text = e.to_string();
    if text == "timeout waiting for server" {
        return Error::Timeout {
            operation: format!("{} of {}", ctx.operation, ctx.resource),
            after: timeout,
        };
    }
    if text == "authentication error" {
        return Error::Unauthorized {
            provider: PROVIDER.into(),
            message: format!(
                "{}: {}",
                ctx.resource,
                source_text(&e).unwrap_or_else(|| text.clone())
            ),
        };
    }
    if e.is_closed() || has_io_source(&e) || text == "error connecting to server" {
        return Error::Unavailable {
            provider: PROVIDER.into(),
            operation: format!("{} of {}", ctx.operation, ctx.resource),
            source: Some(Box::new(e)),
        };
    }
    Error::Other {
        provider: PROVIDER.into(),
        operation: format!("{} of {}", ctx.operation, ctx.resource),
        retry: Retry::Permanent,
        source: Box::new(e),
    }
}

/// Maps a SQLSTATE and its message (from the driver, or from a tool's stderr).
pub(crate) fn classify_code(
    ctx: Ctx<'_>,
    code: &str,
    message: String,
    source: Option<dr_core::BoxError>,
) -> Error {
    let provider = PROVIDER.to_string();
    let operation = format!("{} of {}", ctx.operation, ctx.resource);
    if is_temporary_code(code) {
        return Error::Unavailable {
            provider,
            operation,
            source: Some(source.unwrap_or_else(|| message.into())),
        };
    }
    if code == SqlState::INVALID_PASSWORD.code()
        || code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION.code()
        || code == SqlState::INSUFFICIENT_PRIVILEGE.code()
    {
        return Error::Unauthorized {
            provider,
            message: format!("{}: {message}", ctx.resource),
        };
    }
    if code == SqlState::INVALID_CATALOG_NAME.code() {
        return Error::not_found(provider, ctx.resource);
    }
    if code == SqlState::DUPLICATE_DATABASE.code() {
        return Error::AlreadyExists {
            provider,
            resource: ctx.resource.to_string(),
        };
    }
    if code == SqlState::READ_ONLY_SQL_TRANSACTION.code() {
        return Error::InvalidState {
            provider,
            resource: ctx.resource.to_string(),
            state: "read-only".into(),
            operation: ctx.operation.to_string(),
        };
    }
    if code.starts_with("42") || code.starts_with("22") {
        return Error::InvalidRequest {
            provider,
            operation,
            message,
        };
    }
    Error::Other {
        provider,
        operation,
        retry: Retry::Permanent,
        source: source.unwrap_or_else(|| message.into()),
    }
}

/// Maps the failure of a client tool (`pg_dump`, `psql`, `pg_basebackup`, `pg_ctl`) from its
/// exit status and standard error, which has already had any password removed.
pub(crate) fn map_tool(ctx: Ctx<'_>, tool: &str, status: Option<i32>, stderr: &str) -> Error {
    let tail = tail(stderr, 600);
    let message = format!(
        "{tool} exited with {}: {tail}",
        status.map_or_else(|| "a signal".to_string(), |c| format!("status {c}"))
    );
    let lower = stderr.to_ascii_lowercase();
    if lower.contains("password authentication failed")
        || lower.contains("no password supplied")
        || lower.contains("permission denied")
        || lower.contains("no pg_hba.conf entry")
    {
        return Error::Unauthorized {
            provider: PROVIDER.into(),
            message: format!("{}: {message}", ctx.resource),
        };
    }
    if lower.contains("connection refused")
        || lower.contains("the database system is starting up")
        || lower.contains("the database system is shutting down")
        || lower.contains("too many clients")
        || lower.contains("terminating connection due to administrator command")
        || lower.contains("server closed the connection unexpectedly")
        || lower.contains("timeout expired")
    {
        return Error::Unavailable {
            provider: PROVIDER.into(),
            operation: format!("{} of {}", ctx.operation, ctx.resource),
            source: Some(message.into()),
        };
    }
    if lower.contains("does not exist") && lower.contains("database") {
        return Error::not_found(PROVIDER, ctx.resource);
    }
    Error::Other {
        provider: PROVIDER.into(),
        operation: format!("{} of {}", ctx.operation, ctx.resource),
        retry: Retry::Permanent,
        source: message.into(),
    }
}

/// A tool could not be started at all (missing binary, bad bindir).
pub(crate) fn spawn_failed(ctx: Ctx<'_>, tool: &str, e: std::io::Error) -> Error {
    Error::io(
        format!(
            "starting {tool} for {} of {} (is PostgreSQL installed? set the bindir)",
            ctx.operation, ctx.resource
        ),
        e,
    )
}

fn has_io_source(e: &tokio_postgres::Error) -> bool {
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        if s.is::<std::io::Error>() {
            return true;
        }
        src = s.source();
    }
    false
}

fn source_text(e: &tokio_postgres::Error) -> Option<String> {
    std::error::Error::source(e).map(|s| s.to_string())
}

/// The last `max` bytes of `s`, on a character boundary, trimmed.
pub(crate) fn tail(s: &str, max: usize) -> &str {
    let s = s.trim();
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// `text` with every occurrence of `secret` replaced by `***`.
pub(crate) fn redact(text: &str, secret: Option<&str>) -> String {
    match secret {
        Some(s) if !s.is_empty() => text.replace(s, "***"),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified() {
        let ctx = Ctx::new("describe", "database local/primary");
        for code in ["57P01", "53300", "08006", "57P03", "40001"] {
            let e = classify_code(ctx, code, "m".into(), None);
            assert_eq!(e.retry(), Retry::Temporary, "{code}: {e}");
        }
        for code in [
            "28P01", "28000", "42601", "42P01", "3D000", "42P04", "25006", "XX000",
        ] {
            let e = classify_code(ctx, code, "m".into(), None);
            assert_eq!(e.retry(), Retry::Permanent, "{code}: {e}");
        }
        assert!(matches!(
            classify_code(ctx, "28P01", "m".into(), None),
            Error::Unauthorized { .. }
        ));
        assert!(classify_code(ctx, "3D000", "m".into(), None).is_not_found());
        assert!(matches!(
            classify_code(ctx, "42601", "m".into(), None),
            Error::InvalidRequest { .. }
        ));
    }

    #[test]
    fn tool_failures_are_classified() {
        let ctx = Ctx::new("dump", "database local/primary");
        let refused = "pg_dump: error: connection to server at \"127.0.0.1\", port 1 failed: Connection refused";
        assert!(map_tool(ctx, "pg_dump", Some(1), refused).is_retryable());
        let auth = "FATAL:  password authentication failed for user \"postgres\"";
        assert!(matches!(
            map_tool(ctx, "pg_dump", Some(1), auth),
            Error::Unauthorized { .. }
        ));
        let e = map_tool(ctx, "psql", None, "ERROR:  syntax error at or near \"x\"");
        assert_eq!(e.retry(), Retry::Permanent);
        assert!(e.to_string().contains("a signal"), "{e}");
    }

    #[test]
    fn redaction_and_tail() {
        assert_eq!(redact("pw=hunter2 x", Some("hunter2")), "pw=*** x");
        assert_eq!(redact("x", Some("")), "x");
        assert_eq!(tail("  abcdef  ", 3), "def");
        assert_eq!(tail("éé", 3), "é");
    }
}
