//! What one instance tells the others through PostgreSQL's LISTEN/NOTIFY: which cached
//! rows changed, and which segment changes were written.
//!
//! A notice is sent inside the writing transaction, so PostgreSQL delivers it when (and
//! only if) the transaction commits. On SQLite there is one instance and nothing is sent.
//! The payload is a short line of space-separated words; every id in it is an identifier
//! the API validated (no spaces), and a payload that does not parse is ignored.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};

/// The channel every instance listens on.
pub const CHANNEL: &str = "videovector";

/// A change other instances must know about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// The API key `key_id` was rotated, revoked, deleted or otherwise changed.
    ApiKey { key_id: String },
    /// The organisation `org_id`'s settings (its default rate limits) changed.
    Organization { org_id: String },
    /// The index `index_id` of `org_id` was renamed, counted or deleted.
    Index { org_id: String, index_id: String },
    /// Segment change `seq` was written to the index `index_id` of `org_id` (whose row's
    /// count changed with it). `flush`: a caller waits for it to become searchable, so
    /// search copies commit it at once.
    Segments {
        seq: i64,
        flush: bool,
        org_id: String,
        index_id: String,
    },
}

impl Notice {
    pub fn payload(&self) -> String {
        match self {
            Notice::ApiKey { key_id } => format!("key {key_id}"),
            Notice::Organization { org_id } => format!("org {org_id}"),
            Notice::Index { org_id, index_id } => format!("index {org_id} {index_id}"),
            Notice::Segments {
                seq,
                flush,
                org_id,
                index_id,
            } => format!("segments {seq} {} {org_id} {index_id}", u8::from(*flush)),
        }
    }

    /// The payload of a [`Notice::Segments`] whose number is not known yet, for PostgreSQL's
    /// `format()`: `%s` stands for the number (a `%` in an id is escaped, though ids the API
    /// accepts hold none).
    pub fn segments_payload_format(flush: bool, org_id: &str, index_id: &str) -> String {
        let escaped = |id: &str| id.replace('%', "%%");
        format!(
            "segments %s {} {} {}",
            u8::from(flush),
            escaped(org_id),
            escaped(index_id)
        )
    }

    pub fn parse(payload: &str) -> Option<Notice> {
        let words: Vec<&str> = payload.split(' ').collect();
        match words.as_slice() {
            ["key", key_id] => Some(Notice::ApiKey {
                key_id: key_id.to_string(),
            }),
            ["org", org_id] => Some(Notice::Organization {
                org_id: org_id.to_string(),
            }),
            ["index", org_id, index_id] => Some(Notice::Index {
                org_id: org_id.to_string(),
                index_id: index_id.to_string(),
            }),
            ["segments", seq, flush, org_id, index_id] => Some(Notice::Segments {
                seq: seq.parse().ok()?,
                flush: *flush == "1",
                org_id: org_id.to_string(),
                index_id: index_id.to_string(),
            }),
            _ => None,
        }
    }
}

/// Sends `notice` on [`CHANNEL`] (delivered when `conn`'s transaction commits); nothing on
/// SQLite.
pub async fn publish(conn: &impl ConnectionTrait, notice: &Notice) -> Result<(), DbErr> {
    if conn.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    conn.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_notify($1, $2)",
        [CHANNEL.into(), notice.payload().into()],
    ))
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_notice_reads_back_as_itself() {
        let notices = [
            Notice::ApiKey {
                key_id: "key_1".into(),
            },
            Notice::Index {
                org_id: "org_a".into(),
                index_id: "idx_b".into(),
            },
            Notice::Segments {
                seq: 42,
                flush: true,
                org_id: "org_a".into(),
                index_id: "idx_b".into(),
            },
            Notice::Segments {
                seq: 7,
                flush: false,
                org_id: "org_a".into(),
                index_id: "idx_b".into(),
            },
        ];
        for notice in notices {
            assert_eq!(Notice::parse(&notice.payload()), Some(notice));
        }
    }

    #[test]
    fn the_segments_format_gives_the_segments_payload() {
        let format = Notice::segments_payload_format(true, "org_a", "idx_b");
        assert_eq!(
            Notice::parse(&format.replacen("%s", "42", 1)),
            Some(Notice::Segments {
                seq: 42,
                flush: true,
                org_id: "org_a".into(),
                index_id: "idx_b".into(),
            })
        );
    }

    #[test]
    fn unknown_or_malformed_payloads_are_ignored() {
        for payload in [
            "",
            "key",
            "key a b",
            "segments x 1 o i",
            "index o",
            "drop all",
        ] {
            assert_eq!(Notice::parse(payload), None, "{payload:?}");
        }
    }
}
