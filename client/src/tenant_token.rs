//! Tenant tokens, minted offline from an API key to hand to an end user (a browser, an app).
//!
//! A tenant token is sent as `X-API-Key` like the key itself ([`crate::with_api_key`]),
//! holds only the `search` scope, and can only narrow its key: to some of its indexes, and
//! to filters every search, chat and MCP call is held to. Revoking or rotating the key ends
//! its tokens. The format is a JWT signed HS256 with HMAC-SHA-256(secret,
//! [`DERIVATION_LABEL`]), the key's id as `kid`.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;

/// The message the signing key is derived with.
pub const DERIVATION_LABEL: &str = "videovector tenant token v1";
/// The longest a token may live.
pub const MAX_LIFETIME: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// What a token narrows its key to; the default narrows nothing but its lifetime.
#[derive(Debug, Clone, Default)]
pub struct TenantTokenOptions {
    /// The indexes it may search, within the key's (`None`: the key's).
    pub index_ids: Option<Vec<String>>,
    /// Only these media, whatever a search asks for.
    pub media_ids: Vec<String>,
    /// Only segments carrying every one of these labels.
    pub labels: Vec<String>,
    /// Your end user's id (`sub`), for your own records.
    pub subject: Option<String>,
}

/// Why a token could not be minted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantTokenError {
    /// The lifetime is zero or longer than [`MAX_LIFETIME`].
    Lifetime,
    /// `index_ids` is given but empty (which would narrow to nothing).
    NoIndexes,
}

impl std::fmt::Display for TenantTokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TenantTokenError::Lifetime => f.write_str("a tenant token lives 1 s to 24 h"),
            TenantTokenError::NoIndexes => {
                f.write_str("`index_ids`, when given, must name at least one index")
            }
        }
    }
}

impl std::error::Error for TenantTokenError {}

/// A tenant token of the key `key_id` (whose secret is `secret`), valid for `lifetime`.
pub fn tenant_token(
    key_id: &str,
    secret: &str,
    lifetime: std::time::Duration,
    options: &TenantTokenOptions,
) -> Result<String, TenantTokenError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    tenant_token_at(key_id, secret, now, lifetime, options)
}

/// [`tenant_token`] as if minted at `now` (seconds since the epoch).
pub fn tenant_token_at(
    key_id: &str,
    secret: &str,
    now: u64,
    lifetime: std::time::Duration,
    options: &TenantTokenOptions,
) -> Result<String, TenantTokenError> {
    if lifetime.is_zero() || lifetime > MAX_LIFETIME {
        return Err(TenantTokenError::Lifetime);
    }
    let mut claims = Map::new();
    claims.insert("exp".into(), json!(now + lifetime.as_secs().max(1)));
    claims.insert("iat".into(), json!(now));
    if let Some(index_ids) = &options.index_ids {
        if index_ids.is_empty() {
            return Err(TenantTokenError::NoIndexes);
        }
        claims.insert("index_ids".into(), json!(index_ids));
    }
    let mut filters = Map::new();
    if !options.media_ids.is_empty() {
        filters.insert("media_ids".into(), json!(options.media_ids));
    }
    if !options.labels.is_empty() {
        filters.insert("labels".into(), json!(options.labels));
    }
    if !filters.is_empty() {
        claims.insert("filters".into(), Value::Object(filters));
    }
    if let Some(subject) = &options.subject {
        claims.insert("sub".into(), json!(subject));
    }
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": key_id});
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string())
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(&signing_key(secret)).expect("any key length");
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    Ok(format!("{signing_input}.{signature}"))
}

/// The key the tenant tokens of `secret` are signed with.
pub fn signing_key(secret: &str) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(DERIVATION_LABEL.as_bytes());
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_what_they_narrow_to_and_refuse_odd_lifetimes() {
        let options = TenantTokenOptions {
            index_ids: Some(vec!["idx_a".into()]),
            labels: vec!["tenant:1".into()],
            ..Default::default()
        };
        let hour = std::time::Duration::from_secs(3600);
        let token = tenant_token_at("key_1", "sk_test_x", 1000, hour, &options).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(
            claims,
            json!({"exp": 4600, "iat": 1000, "index_ids": ["idx_a"],
                   "filters": {"labels": ["tenant:1"]}})
        );
        let too_long = MAX_LIFETIME + std::time::Duration::from_secs(1);
        assert_eq!(
            tenant_token("key_1", "s", too_long, &options),
            Err(TenantTokenError::Lifetime)
        );
        let none = TenantTokenOptions {
            index_ids: Some(Vec::new()),
            ..Default::default()
        };
        assert_eq!(
            tenant_token("key_1", "s", hour, &none),
            Err(TenantTokenError::NoIndexes)
        );
    }
}
