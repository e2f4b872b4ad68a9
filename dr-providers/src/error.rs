//! The crate's error: loading, checking against the plan, building.

use dr_core::plan::{Format, Problem};
use dr_core::redact::clean;
use dr_core::Retry;

/// Why a providers file could not be loaded, does not fit the plan, or could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProvidersError {
    /// The file could not be read.
    #[error("{}: cannot read the providers file: {}", clean(file), clean(&source.to_string()))]
    Read {
        /// The file.
        file: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The extension names no known format.
    #[error(
        "{}: unknown providers file format (use .yaml, .yml, .toml or .json)",
        clean(file)
    )]
    UnknownFormat {
        /// The file.
        file: String,
    },
    /// The file is larger than [`MAX_PROVIDERS_BYTES`](crate::MAX_PROVIDERS_BYTES).
    #[error(
        "{}: the providers file is larger than the limit of {limit} bytes",
        clean(file)
    )]
    TooLarge {
        /// The file.
        file: String,
        /// The limit.
        limit: usize,
    },
    /// The text is not a well-formed providers file.
    #[error("{}", render_parse(file, *format, *line, *column, field.as_deref(), message))]
    Parse {
        /// The file (or `<string>`).
        file: String,
        /// Its format.
        format: Format,
        /// 1-based line of the fault, where the parser reports one.
        line: Option<usize>,
        /// 1-based column.
        column: Option<usize>,
        /// The field at fault (`stores.backups.access_key`).
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// The file is well-formed but does not fit the plan: every problem at once.
    #[error("{}", render_invalid(file, problems))]
    Invalid {
        /// The file.
        file: String,
        /// The problems, each naming the field (or the plan resource) at fault.
        problems: Vec<Problem>,
    },
    /// A provider could not be built (a missing variable, an SDK configuration error).
    #[error("{role} provider for {}: {source}", clean(resource))]
    Build {
        /// The role (`database`, `dns`, `cluster`, `store`, `health check`, `notifications`).
        role: &'static str,
        /// The plan resource (`region us-west-2`, `store backups`).
        resource: String,
        /// The provider's error.
        #[source]
        source: Box<dr_core::Error>,
    },
}

impl ProvidersError {
    /// Whether trying again may help: only a build error can be temporary.
    pub fn retry(&self) -> Retry {
        match self {
            ProvidersError::Build { source, .. } => source.retry(),
            _ => Retry::Permanent,
        }
    }

    /// The problems, for [`ProvidersError::Invalid`]; empty otherwise.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ProvidersError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }
}

fn render_parse(
    file: &str,
    format: Format,
    line: Option<usize>,
    column: Option<usize>,
    field: Option<&str>,
    message: &str,
) -> String {
    dr_core::document::render(file, format, "providers file", line, column, field, message)
}

fn render_invalid(file: &str, problems: &[Problem]) -> String {
    let n = problems.len();
    let mut s = format!(
        "{}: the providers file does not fit the plan ({n} problem{}):",
        clean(file),
        if n == 1 { "" } else { "s" }
    );
    for p in problems {
        s.push_str(&format!("\n  - {p}"));
    }
    s
}
