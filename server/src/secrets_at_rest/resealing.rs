//! Resealing the stored secrets: connector headers, webhook signing secrets, embedders' API
//! keys and stored idempotent responses.
//!
//! Every start seals what an older version left in clear. `videovector reseal-secrets`
//! (after a new master key was put first) also rewrites every value sealed under an older
//! key, so that key can then be retired.

use sea_orm::{
    sea_query::Expr, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect,
    TryGetable,
};

use super::{is_sealed, places, Keyring};
use crate::db::entities::{api_key, connector, idempotency_record, index, webhook};

/// Which stored values to rewrite.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Reseal {
    /// Only values still in clear (every start).
    Plaintext,
    /// Also values sealed under an older key.
    NotCurrent,
}

/// How many values were rewritten, and how many did not open (left as they are).
#[derive(Default, Debug, PartialEq)]
pub struct ResealReport {
    pub resealed: u64,
    pub unreadable: u64,
}

impl ResealReport {
    fn count(&mut self, outcome: Option<bool>) {
        match outcome {
            Some(true) => self.resealed += 1,
            Some(false) => {}
            None => self.unreadable += 1,
        }
    }
}

/// The value to store instead of `stored`: `Some(Some(v))` to rewrite, `Some(None)` when
/// it is fine as it is, `None` when it does not open.
fn resealed(
    keyring: &Keyring,
    which: Reseal,
    place: &str,
    stored: &[u8],
) -> Option<Option<Vec<u8>>> {
    let text = std::str::from_utf8(stored).ok();
    match text.filter(|t| is_sealed(t)) {
        None => Some(Some(keyring.seal(place, stored).into_bytes())),
        Some(t) if which == Reseal::Plaintext || keyring.is_current(t) => Some(None),
        Some(t) => keyring
            .open(place, t)
            .ok()
            .map(|clear| Some(keyring.seal(place, &clear).into_bytes())),
    }
}

/// Rewrites the stored secrets `which` selects. Each row is rewritten only if it still
/// holds the value read (a concurrent writer wins).
pub async fn reseal_all(
    db: &DatabaseConnection,
    keyring: &Keyring,
    which: Reseal,
) -> Result<ResealReport, DbErr> {
    let mut report = ResealReport::default();
    reseal_column::<connector::Entity, String>(
        db,
        keyring,
        which,
        (connector::Column::Id, connector::Column::Headers),
        places::connector_headers,
        &mut report,
    )
    .await?;
    reseal_column::<webhook::Entity, String>(
        db,
        keyring,
        which,
        (webhook::Column::Id, webhook::Column::Secret),
        places::webhook_secret,
        &mut report,
    )
    .await?;
    reseal_column::<index::Entity, String>(
        db,
        keyring,
        which,
        (index::Column::Uid, index::Column::EmbedderSecret),
        places::embedder_api_key,
        &mut report,
    )
    .await?;
    reseal_column::<index::Entity, String>(
        db,
        keyring,
        which,
        (index::Column::Uid, index::Column::PendingEmbedderSecret),
        places::pending_embedder_api_key,
        &mut report,
    )
    .await?;
    reseal_column::<api_key::Entity, String>(
        db,
        keyring,
        which,
        (api_key::Column::Id, api_key::Column::TenantKey),
        places::api_key_tenant_key,
        &mut report,
    )
    .await?;
    reseal_column::<idempotency_record::Entity, Vec<u8>>(
        db,
        keyring,
        which,
        (
            idempotency_record::Column::ScopeKey,
            idempotency_record::Column::Body,
        ),
        places::idempotent_response,
        &mut report,
    )
    .await?;
    if which == Reseal::NotCurrent && report.unreadable == 0 {
        // Nothing is sealed under another key any more: those keys may be retired.
        super::key_checks::retire_all_but_current(db, keyring).await?;
    }
    Ok(report)
}

/// A column type a sealed value is stored in: text, or bytes holding the same text.
trait StoredValue: TryGetable + Into<sea_orm::Value> + Clone + Send + Sync + 'static {
    fn bytes(&self) -> &[u8];
    fn from_sealed(sealed: Vec<u8>) -> Self;
}

impl StoredValue for String {
    fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }

    fn from_sealed(sealed: Vec<u8>) -> Self {
        String::from_utf8(sealed).unwrap_or_default()
    }
}

impl StoredValue for Vec<u8> {
    fn bytes(&self) -> &[u8] {
        self
    }

    fn from_sealed(sealed: Vec<u8>) -> Self {
        sealed
    }
}

/// Reseals one column of `E`, keyed by its id column; NULLs are skipped.
async fn reseal_column<E: EntityTrait, V: StoredValue>(
    db: &DatabaseConnection,
    keyring: &Keyring,
    which: Reseal,
    (id_column, value_column): (E::Column, E::Column),
    place_of: fn(&str) -> String,
    report: &mut ResealReport,
) -> Result<(), DbErr> {
    let rows: Vec<(String, Option<V>)> = E::find()
        .select_only()
        .columns([id_column, value_column])
        .into_tuple()
        .all(db)
        .await?;
    for (id, stored) in rows {
        let Some(stored) = stored else { continue };
        let outcome = match resealed(keyring, which, &place_of(&id), stored.bytes()) {
            Some(Some(new)) => {
                let updated = E::update_many()
                    .col_expr(value_column, Expr::value(V::from_sealed(new)))
                    .filter(id_column.eq(&id))
                    .filter(value_column.eq(stored))
                    .exec(db)
                    .await?;
                Some(updated.rows_affected == 1)
            }
            Some(None) => Some(false),
            None => None,
        };
        report.count(outcome);
    }
    Ok(())
}
