//! Bodies of the `/organization` operations.

use poem_openapi::Object;

use super::text::NonBlank;

/// The caller's organisation and its settings.
#[derive(Object, Debug, Clone)]
pub struct Organization {
    /// The organisation's id (`org_...`).
    pub id: String,
    pub name: String,
    /// Whether a key a secret scanner reports found in public is revoked at once (the
    /// default); either way `api_key.leaked` is sent and the key's view says where.
    pub revoke_leaked_keys: bool,
}

/// Changes to the organisation; fields left out stay as they are.
#[derive(Object, Debug, Clone, Default)]
#[oai(skip_serializing_if_is_none)]
pub struct OrganizationUpdate {
    #[oai(validator(min_length = 1, max_length = 200))]
    pub name: Option<NonBlank>,
    pub revoke_leaked_keys: Option<bool>,
}
