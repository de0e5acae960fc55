//! Database statements as spans of the request (or worker span) that ran them: those sent
//! through sea-orm (its per-statement callback, installed only with tracing on) and the
//! direct SQLite reads and writes. A statement outside any trace (a worker's polling) leaves
//! no span. The statement's text is recorded with its placeholders, never its values.

use std::time::SystemTime;

use opentelemetry::{trace::TraceContextExt, Context, KeyValue};

use super::Tracing;

/// The longest statement text kept on a span.
const MAX_STATEMENT_CHARS: usize = 1_000;

/// Records a sea-orm statement (the callback `DatabaseConnection::set_metric_callback`
/// takes).
pub fn record_statement(system: &'static str, info: &sea_orm::metric::Info<'_>) {
    Context::map_current(|cx| {
        let Some(tracing) = cx.get::<Tracing>().filter(|_| cx.has_active_span()) else {
            return;
        };
        let sql = &info.statement.sql;
        let operation = sql
            .split_whitespace()
            .next()
            .unwrap_or("statement")
            .to_ascii_uppercase();
        let started = SystemTime::now()
            .checked_sub(info.elapsed)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let text: String = sql.chars().take(MAX_STATEMENT_CHARS).collect();
        tracing.record_done(
            operation.clone(),
            vec![
                KeyValue::new("db.system.name", system),
                KeyValue::new("db.operation.name", operation),
                KeyValue::new("db.query.text", text),
            ],
            started,
            info.failed.then(|| "the statement failed".to_string()),
            cx,
        );
    })
}

/// Runs a direct SQLite read or write (`operation`), as a span when a trace is being
/// recorded.
pub fn timed<T, E: std::fmt::Display>(
    operation: &'static str,
    work: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    let Some(tracing) = Tracing::current() else {
        return work();
    };
    let started = SystemTime::now();
    let outcome = work();
    Context::map_current(|cx| {
        if cx.has_active_span() {
            tracing.record_done(
                operation,
                vec![
                    KeyValue::new("db.system.name", "sqlite"),
                    KeyValue::new("db.operation.name", operation),
                ],
                started,
                outcome.as_ref().err().map(ToString::to_string),
                cx,
            );
        }
    });
    outcome
}
