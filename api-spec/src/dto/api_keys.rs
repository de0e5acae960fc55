//! Bodies of the `/api-keys` operations.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use poem_openapi::{types::MaybeUndefined, Enum, Object};

use crate::scopes::Scope;

use super::{rate_limits::RateLimit, text::NonBlank};

/// A new API key.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct ApiKeyCreate {
    /// A name that says what the key is for.
    #[oai(validator(min_length = 1, max_length = 200))]
    pub name: NonBlank,
    /// The scopes the key holds; the caller's token must hold each of them.
    #[oai(validator(min_items = 1, max_items = 4))]
    pub scopes: Vec<Scope>,
    /// Days until the key expires; omit for a key that does not expire.
    #[oai(validator(minimum(value = "1"), maximum(value = "3650")))]
    pub expires_in_days: Option<u32>,
    /// The key's own limits, per family (names unique); a family none of them names is held
    /// to the organisation's defaults. Each may allow at most the server's
    /// `max_requests_per_second` averaged over its window.
    #[oai(validator(max_items = 24))]
    pub rate_limits: Option<Vec<RateLimit>>,
    /// Limits counted per client address (an IPv6 client by its /64) rather than for the
    /// whole key: for keys whose tenant tokens go to browsers, so one visitor cannot spend
    /// everyone's budget. Checked before the key's own limits.
    #[oai(validator(max_items = 8))]
    pub client_rate_limits: Option<Vec<RateLimit>>,
    /// Networks the key may be used from (IPv4 or IPv6 CIDR, `203.0.113.0/24`, or one
    /// address); empty: anywhere. The client's address is the peer's, or what a trusted
    /// proxy forwarded.
    #[oai(validator(max_items = 32))]
    pub allowed_cidrs: Option<Vec<String>>,
    /// Web pages the key may be used from, by origin (`https://shop.example.com`,
    /// `http://localhost:3000`, or `https://*.example.com` for every subdomain). A browser
    /// request from any other page is refused (403 `origin_not_allowed`); empty: no page of
    /// another site (the server's own Swagger UI and docs still work).
    #[oai(validator(max_items = 32, max_length = 300))]
    pub allowed_origins: Option<Vec<String>>,
    /// Your own labels for the key: at most 16 entries, names of 1–40 characters, values of
    /// at most 500.
    #[oai(validator(max_properties = 16))]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Who the key is for in your own system (a user or tenant id); keys can be listed by
    /// it.
    #[oai(validator(min_length = 1, max_length = 128))]
    pub owner_id: Option<String>,
    /// The indexes the key may touch, by id (an index created later under one of these ids
    /// is covered); empty: every index of the organisation. A restricted key is refused
    /// organisation-wide operations (webhooks) and sees only its indexes in lists.
    #[oai(validator(max_items = 100, max_length = 64, pattern = r"^idx_[a-z0-9_-]{1,60}$"))]
    pub index_ids: Option<Vec<String>>,
    /// The most hits one request may ask for (`top_k` of a search, chat or run, `page_size`
    /// of a cross-index search), for keys handed to browsers; omitted: the operations' own
    /// limits.
    #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
    pub max_top_k: Option<u32>,
}

/// Changes to a key; fields left out stay as they are.
#[derive(Object, Debug, Clone, Default)]
#[oai(skip_serializing_if_is_none)]
pub struct ApiKeyUpdate {
    /// A new name.
    #[oai(validator(min_length = 1, max_length = 200))]
    pub name: Option<NonBlank>,
    /// The key's own limits, replacing the ones it had (an empty list: the organisation's
    /// defaults in every family). On every instance within the time a revocation takes.
    #[oai(validator(max_items = 24))]
    pub rate_limits: Option<Vec<RateLimit>>,
    /// Limits counted per client address, replacing the ones it had (empty: none).
    #[oai(validator(max_items = 8))]
    pub client_rate_limits: Option<Vec<RateLimit>>,
    /// Networks the key may be used from (IPv4 or IPv6 CIDR, `203.0.113.0/24`, or one
    /// address); empty: anywhere. Replaces the list. The client's address is the peer's, or what a trusted
    /// proxy forwarded.
    #[oai(validator(max_items = 32))]
    pub allowed_cidrs: Option<Vec<String>>,
    /// Web pages the key may be used from, by origin, replacing the list; empty: no page of
    /// another site.
    #[oai(validator(max_items = 32, max_length = 300))]
    pub allowed_origins: Option<Vec<String>>,
    /// Your own labels for the key: at most 16 entries, names of 1–40 characters, values of
    /// at most 500. Replaces the map.
    #[oai(validator(max_properties = 16))]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Who the key is for in your own system (a user or tenant id); keys can be listed by
    /// it. `null` removes it.
    #[oai(validator(min_length = 1, max_length = 128))]
    pub owner_id: MaybeUndefined<String>,
    /// The indexes the key may touch, replacing the list; empty: every index.
    #[oai(validator(max_items = 100, max_length = 64, pattern = r"^idx_[a-z0-9_-]{1,60}$"))]
    pub index_ids: Option<Vec<String>>,
    /// The most hits one request may ask for; `null` removes the cap.
    #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
    pub max_top_k: MaybeUndefined<u32>,
}

/// Options of a rotation.
#[derive(Object, Debug, Clone, Default)]
#[oai(skip_serializing_if_is_none)]
pub struct ApiKeyRotate {
    /// Seconds the old secret keeps working after rotation (default 0: revoked at once).
    #[oai(validator(maximum(value = "604800")))]
    pub grace_period_seconds: Option<u32>,
}

/// Where a key stands.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum ApiKeyStatus {
    Active,
    Revoked,
    Expired,
}

/// An API key as it can be shown after creation: masked, never the secret.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct ApiKey {
    /// The key's id (`key_...`).
    pub id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub status: ApiKeyStatus,
    /// The secret's prefix and last characters, e.g. `sk_live_…x4Qz`.
    pub masked_key: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub rotated_at: Option<DateTime<Utc>>,
    /// The key's own limits; a family none of them names is held to the organisation's
    /// defaults.
    pub rate_limits: Vec<RateLimit>,
    /// Limits counted per client address.
    pub client_rate_limits: Vec<RateLimit>,
    /// Networks the key may be used from; empty: anywhere.
    pub allowed_cidrs: Vec<String>,
    /// Web pages the key may be used from, by origin; empty: no page of another site.
    pub allowed_origins: Vec<String>,
    /// Your own labels for the key.
    pub metadata: BTreeMap<String, String>,
    /// Who the key is for in your own system.
    pub owner_id: Option<String>,
    /// The indexes the key may touch; empty: every index.
    pub index_ids: Vec<String>,
    /// The most hits one request may ask for; absent: no cap of the key's own.
    pub max_top_k: Option<u32>,
    /// Where the key was found leaked, when a secret scanner reported it.
    pub leak: Option<KeyLeak>,
}

/// Where a key was found leaked, as its reporter said.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct KeyLeak {
    /// When the first report of it arrived.
    pub reported_at: DateTime<Utc>,
    /// Who reported it (the configured reporter's name, e.g. `github`).
    pub reporter: String,
    /// Where it was found, as reported.
    pub url: Option<String>,
    /// What kind of place it was found in (e.g. `content`, `commit`), as reported.
    pub source: Option<String>,
}

/// One token a secret scanner found in public, as GitHub's secret scanning partner
/// program sends it.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct LeakedKeyReport {
    /// The token found.
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub token: String,
    /// The scanner's name for the kind of token.
    #[oai(rename = "type", validator(max_length = 200))]
    pub token_type: Option<String>,
    /// Where it was found.
    #[oai(validator(max_length = 2048))]
    pub url: Option<String>,
    /// What kind of place it was found in.
    #[oai(validator(max_length = 200))]
    pub source: Option<String>,
}

/// Whether a reported token is one of this server's keys.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum LeakLabel {
    /// A key of this server (active, revoked or expired).
    TruePositive,
    /// Not a key of this server.
    FalsePositive,
}

/// The answer about one reported token. The token itself is not repeated: it is named by
/// the hex SHA-256 of its text.
#[derive(Object, Debug, Clone)]
pub struct LeakedKeyVerdict {
    /// Hex SHA-256 of the reported token.
    pub token_hash: String,
    pub label: LeakLabel,
    /// Whether the key worked when the report arrived.
    pub was_active: bool,
    /// Whether the key is revoked now (by this report, under its organisation's policy, or
    /// before).
    pub revoked: bool,
}

/// An API key with its full secret: returned only by create and rotate.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct ApiKeyWithSecret {
    /// The full secret. It is shown now and never again: store it in your secret store.
    pub secret: String,
    /// The key, masked.
    pub key: ApiKey,
}

/// One page of API keys.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct ApiKeyPage {
    pub items: Vec<ApiKey>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}
