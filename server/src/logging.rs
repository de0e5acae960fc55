//! Where log lines go and in what form (`log`, `log_format`), for the server binary and for
//! anything that runs the server in its own process (the bench's server under test).

use std::io::IsTerminal;

use crate::config::{Config, LogFormat};

/// Installs the process's log subscriber: `RUST_LOG`, else `config.log`, to stderr; text
/// (colour only for a person at a terminal) or one JSON object per line.
pub fn init(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        // A file or a pipeline gets plain text.
        LogFormat::Text => logs
            .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .init(),
        // The request's span (its `request_id`, method and path) rides along as `span`.
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}
