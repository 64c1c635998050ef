//! The node's logs: where they go, in which format, and the access log.
//!
//! Logs are `tracing` events, filtered with `RUST_LOG`-style directives (`--log-level`),
//! written as text or as one JSON object per line (`--log-format`), to standard error or to
//! a file that rotates daily and keeps a fixed number of old files (`--log-file`,
//! `--log-retention`). Writing happens on a background thread, so a request never waits
//! for a disk or a pipe; when that thread falls behind by more than its buffer, writers wait
//! rather than lose lines.
//!
//! The access log is one event per answered request, target `access`, at level info (see
//! [`access`]). It never carries headers or bodies, and the values of query parameters
//! whose names suggest a secret are replaced ([`redact_query`]): tokens, API keys, cookies
//! and passwords do not reach the log.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::path::PathBuf;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_appender::rolling::{RollingFileAppender, Rotation};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, the event's fields.
    Json,
}

/// Where logs go and what they keep.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// `RUST_LOG`-style directives, e.g. `info` or `warn,access=info`.
    pub filter: String,
    pub format: LogFormat,
    /// A file to write instead of standard error; rotated daily (`PATH.YYYY-MM-DD`).
    pub file: Option<PathBuf>,
    /// Rotated files kept besides the current one's day.
    pub retention: usize,
}

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("--log-level: {0}")]
    Filter(String),
    #[error("--log-file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("logging was already set up")]
    AlreadySet,
}

/// Keeps the background writer alive; dropping it flushes what is buffered. Hold it until
/// the process ends.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard {
    _writer: WorkerGuard,
}

/// Installs the process's log subscriber.
pub fn init(settings: &LogSettings) -> Result<LogGuard, LogError> {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.filter)
        .map_err(|e| LogError::Filter(e.to_string()))?;
    let (writer, guard, ansi) = match &settings.file {
        Some(path) => {
            let appender = rolling_file(path, settings.retention)?;
            let (writer, guard) = NonBlockingBuilder::default().lossy(false).finish(appender);
            (writer, guard, false)
        }
        None => {
            let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
            let (writer, guard) = NonBlockingBuilder::default()
                .lossy(false)
                .finish(std::io::stderr());
            // Colour only for a person at a terminal; files and pipes get plain text.
            (writer, guard, terminal)
        }
    };
    let installed = match settings.format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .with_ansi(ansi)
            .try_init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .with_writer(writer)
            .try_init(),
    };
    installed.map_err(|_| LogError::AlreadySet)?;
    Ok(LogGuard { _writer: guard })
}

fn rolling_file(path: &std::path::Path, retention: usize) -> Result<RollingFileAppender, LogError> {
    let fail = |reason: String| LogError::File {
        path: path.display().to_string(),
        reason,
    };
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| fail("needs a file name".into()))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| fail(e.to_string()))?;
    RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(name)
        .max_log_files(retention.saturating_add(1))
        .build(&dir)
        .map_err(|e| fail(e.to_string()))
}

/// One access-log line. `path` is the request target's path and `query` its query string,
/// whose secret-looking values are redacted here.
#[allow(clippy::too_many_arguments)]
pub fn access(
    request_id: &str,
    client: SocketAddr,
    method: &http::Method,
    path: &str,
    query: Option<&str>,
    project: Option<&str>,
    endpoint: Option<&str>,
    status: u16,
    bytes: Option<u64>,
    latency_ns: u64,
) {
    let query = query.map(redact_query);
    tracing::info!(
        target: "access",
        request_id,
        client = %client.ip(),
        method = method.as_str(),
        path,
        query = query.as_deref(),
        project,
        endpoint,
        status,
        bytes,
        latency_ms = latency_ns as f64 / 1e6,
    );
}

/// Query parameter names (compared without case) whose values are never logged: any name
/// containing one of these.
const SECRET_NAMES: &[&str] = &[
    "key",
    "token",
    "secret",
    "password",
    "passwd",
    "pwd",
    "auth",
    "signature",
    "sig",
    "session",
    "cookie",
    "credential",
];

/// Whether a query parameter or header named `name` carries a secret: its name contains one
/// of [`SECRET_NAMES`], compared without case. Their values are never logged or journaled.
pub fn is_secret_name(name: &str) -> bool {
    let name = name.as_bytes();
    SECRET_NAMES.iter().any(|secret| {
        name.windows(secret.len())
            .any(|window| window.eq_ignore_ascii_case(secret.as_bytes()))
    })
}

/// `query` with the value of every secret-looking parameter replaced by `[redacted]`.
pub fn redact_query(query: &str) -> Cow<'_, str> {
    let secret = is_secret_name;
    if !query
        .split('&')
        .any(|pair| pair.split_once('=').is_some_and(|(name, _)| secret(name)))
    {
        return Cow::Borrowed(query);
    }
    let pairs: Vec<Cow<'_, str>> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if secret(name) => Cow::Owned(format!("{name}=[redacted]")),
            _ => Cow::Borrowed(pair),
        })
        .collect();
    Cow::Owned(pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_query_values_are_redacted_and_others_kept() {
        assert_eq!(redact_query("a=1&b=2"), "a=1&b=2");
        assert_eq!(
            redact_query("api_key=s3cr3t&page=2&access_token=abc&Password=x&flag"),
            "api_key=[redacted]&page=2&access_token=[redacted]&Password=[redacted]&flag"
        );
        assert_eq!(redact_query(""), "");
    }

    proptest::proptest! {
        #[test]
        fn a_secret_value_never_survives(value in "[A-Za-z0-9]{6,20}", other in "[a-z]{1,5}") {
            let query = format!("{other}=1&token={value}&x={other}");
            let redacted = redact_query(&query);
            let leaked = redacted.contains(&format!("={value}"));
            proptest::prop_assert!(!leaked, "{} leaked", value);
        }
    }
}
