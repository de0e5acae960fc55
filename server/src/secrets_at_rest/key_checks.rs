//! Whether this server's secrets keys are the ones that sealed the database's secrets,
//! checked at start so that a wrong or missing key fails loudly instead of turning reads of
//! connectors into errors and sealing values that the other instances cannot open.
//!
//! Each key that seals anything here leaves one check value in `secrets_key_checks`: a known
//! text sealed under it. At start every check value must open under the configured keys; a
//! key id the keyring does not hold, or a check that does not open, refuses the start with
//! an error naming the setting. The current key then leaves its own check. After
//! `reseal-secrets` has rewritten every value under the current key, the checks of the other
//! keys are removed, so those keys can be retired.

use chrono::Utc;
use sea_orm::{
    sea_query::OnConflict, ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter,
};

use super::{places, Keyring};
use crate::db::entities::secrets_key_check as check;

/// The text every check value seals.
const CHECK_TEXT: &str = "videovector secrets key check";

/// Where the keys come from, for the refusal's message.
pub const SETTING: &str =
    "VIDEOVECTOR_SECRETS_KEY (secrets_key), or the data dir's secrets/secrets_key file";

/// Refuses when a stored check value does not open under `keyring`; otherwise records the
/// current key's check (once).
pub async fn verify(db: &DatabaseConnection, keyring: &Keyring) -> anyhow::Result<()> {
    let checks = confirm(db, keyring).await?;
    if !checks.iter().any(|c| c.key_id == keyring.current_id()) {
        let id = keyring.current_id().to_string();
        check::Entity::insert(check::ActiveModel {
            sealed: Set(keyring.seal_str(&places::key_check(&id), CHECK_TEXT)),
            key_id: Set(id),
            created_at: Set(Utc::now()),
        })
        .on_conflict(
            OnConflict::column(check::Column::KeyId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

/// Forgets the checks of every key but the current one: call only once nothing stored is
/// sealed under another key.
pub async fn retire_all_but_current(
    db: &DatabaseConnection,
    keyring: &Keyring,
) -> Result<(), DbErr> {
    check::Entity::delete_many()
        .filter(check::Column::KeyId.ne(keyring.current_id()))
        .exec(db)
        .await?;
    Ok(())
}

/// Refuses when a stored check value does not open under `keyring` (what readiness checks
/// while serving); the checks otherwise.
pub async fn confirm(
    db: &DatabaseConnection,
    keyring: &Keyring,
) -> anyhow::Result<Vec<check::Model>> {
    let checks = check::Entity::find().all(db).await?;
    for stored in &checks {
        let opens = keyring.holds(&stored.key_id)
            && keyring
                .open_str(&places::key_check(&stored.key_id), &stored.sealed)
                .is_ok_and(|text| text == CHECK_TEXT);
        anyhow::ensure!(
            opens,
            "the secrets keys configured here do not include key {}, which sealed secrets \
             stored in this database (connector headers, webhook secrets, stored answers); \
             every instance on one database must be given the same keys in {SETTING}. \
             This instance's keys: {}",
            stored.key_id,
            keyring.key_ids().join(", ")
        );
    }
    Ok(checks)
}
