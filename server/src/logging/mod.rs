//! Where log lines go and in what form (`log`, `log_format`), for the server binary and for
//! anything that runs the server in its own process (the bench's server under test).
//!
//! Lines are handed to a writer thread, so no request waits for stderr: a request formats
//! its line and queues it. Under a flood faster than stderr takes them, lines beyond the
//! queue (128k) are dropped rather than answers slowed.

pub mod json_lines;

use std::io::IsTerminal;

use crate::config::{Config, LogFormat};

/// Keeps the writer thread; dropping it flushes what is queued.
pub type Flush = tracing_appender::non_blocking::WorkerGuard;

/// Installs the process's log subscriber: `RUST_LOG`, else `config.log`, to stderr; text
/// (colour only for a person at a terminal) or one JSON object per line. Keep the returned
/// guard until the process ends.
pub fn init(config: &Config) -> Flush {
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let (writer, flush) = tracing_appender::non_blocking(std::io::stderr());
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match config.log_format {
        // A file or a pipeline gets plain text.
        LogFormat::Text => logs.with_ansi(colour).init(),
        // The request's span (its `request_id`, method and path) rides along as `span`.
        LogFormat::Json => logs
            .with_ansi(false)
            .event_format(json_lines::JsonLines)
            .fmt_fields(json_lines::JsonFields)
            .init(),
    }
    flush
}
