//! Tenant tokens: short-lived JWTs the holder of an API key mints offline, without a call
//! to the server, to hand to an end user (a browser, an app). A token names its key by id
//! (`kid` in the header), is signed HS256 with a key derived from the key's secret, and can
//! only narrow the key: to some of its indexes, and to filters every search is held to.
//!
//! The recipe, so any JWT library can mint one (the Rust client and the Python SDK ship a
//! helper): signing key = HMAC-SHA-256(key = the API key secret, message =
//! [`DERIVATION_LABEL`]); header `{"alg": "HS256", "typ": "JWT", "kid": "<key id>"}`;
//! claims `exp` (required, at most [`MAX_LIFETIME_SECONDS`] ahead), `index_ids` and
//! `filters` (`media_ids`, `labels`). The server keeps the derived key sealed at rest
//! (`secrets_at_rest`), never the secret.

use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::Sha256;
use videovector_api_spec::security::ForcedFilters;

/// The message the signing key is derived with.
pub const DERIVATION_LABEL: &str = "videovector tenant token v1";
/// The furthest ahead a token's `exp` may be.
pub const MAX_LIFETIME_SECONDS: i64 = 24 * 3600;
/// Clock skew allowed on `exp` and `nbf`, as for operator tokens.
const LEEWAY_SECONDS: u64 = 60;
/// A longer value is not read at all.
const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Bounds on the claims, as on a search's own filters and a key's `index_ids`.
const MAX_INDEX_IDS: usize = 100;
const MAX_MEDIA_IDS: usize = 100;
const MAX_LABELS: usize = 20;
const MAX_MEDIA_ID_CHARS: usize = 256;
const MAX_LABEL_CHARS: usize = 200;

/// Why a tenant token was refused; the message is the problem's `detail`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantTokenError {
    #[error("the tenant token is not a JWT signed HS256 with a `kid` naming its API key")]
    Malformed,
    #[error("the tenant token's signature does not verify, or its key is unknown, revoked, expired or deleted")]
    NotVerified,
    #[error("the tenant token has expired")]
    Expired,
    #[error("the tenant token is not valid yet (`nbf`)")]
    NotYetValid,
    #[error("the tenant token's claims do not parse: {0}")]
    Claims(String),
    #[error("the tenant token expires more than 24 hours ahead; mint short-lived tokens")]
    TooLong,
    #[error("the tenant token names index `{0}`, which its key may not touch: a token only narrows its key")]
    Widened(String),
    #[error("the tenant token's key was made before tenant tokens; rotate it to mint them")]
    KeyPredatesTokens,
    #[error("the signing key of the tenant token's API key cannot be read (the secrets key that sealed it is gone); rotate the API key")]
    KeyUnreadable,
}

/// What a verified token narrows its key to.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    /// The indexes it names (`None`: the key's).
    pub index_ids: Option<Vec<String>>,
    pub filters: ForcedFilters,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Claims {
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    #[allow(dead_code)]
    iat: Option<i64>,
    /// The end user, for the minter's own records.
    #[serde(default)]
    #[allow(dead_code)]
    sub: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    jti: Option<String>,
    #[serde(default)]
    index_ids: Option<Vec<String>>,
    #[serde(default)]
    filters: Option<Filters>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Filters {
    #[serde(default)]
    media_ids: Vec<String>,
    #[serde(default)]
    labels: Vec<String>,
}

/// The key a secret's tenant tokens are signed with.
pub fn signing_key(secret: &str) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(DERIVATION_LABEL.as_bytes());
    mac.finalize().into_bytes().into()
}

/// Whether a value sent as `X-API-Key` is a tenant token rather than a key's secret.
pub fn is_token(value: &str) -> bool {
    !value.starts_with("sk_") && value.bytes().filter(|b| *b == b'.').count() == 2
}

/// The id of the key `token` names, from its header; the header must say HS256.
pub fn key_id(token: &str) -> Result<String, TenantTokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TenantTokenError::Malformed);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| TenantTokenError::Malformed)?;
    match (header.alg, header.kid) {
        (Algorithm::HS256, Some(kid)) if kid.starts_with("key_") && kid.len() <= 64 => Ok(kid),
        _ => Err(TenantTokenError::Malformed),
    }
}

/// Verifies `token` under `key` at `now` (seconds since the epoch).
pub fn verify(token: &str, key: &[u8], now: i64) -> Result<Grant, TenantTokenError> {
    let mut validation = Validation::new(Algorithm::HS256);
    // Times are checked below against `now`, the one clock of the request.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp"]);
    let claims = jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(key), &validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::Json(e) => TenantTokenError::Claims(e.to_string()),
            jsonwebtoken::errors::ErrorKind::MissingRequiredClaim(c) => {
                TenantTokenError::Claims(format!("`{c}` is required"))
            }
            _ => TenantTokenError::NotVerified,
        })?
        .claims;
    let leeway = LEEWAY_SECONDS as i64;
    if claims.exp + leeway < now {
        return Err(TenantTokenError::Expired);
    }
    if claims.exp > now + MAX_LIFETIME_SECONDS + leeway {
        return Err(TenantTokenError::TooLong);
    }
    if claims.nbf.is_some_and(|nbf| nbf > now + leeway) {
        return Err(TenantTokenError::NotYetValid);
    }
    let filters = claims.filters.unwrap_or_default();
    bounded(
        &claims.index_ids.clone().unwrap_or_default(),
        "index_ids",
        MAX_INDEX_IDS,
        64,
    )?;
    if claims.index_ids.as_ref().is_some_and(Vec::is_empty) {
        return Err(TenantTokenError::Claims(
            "`index_ids`, when given, names at least one index".into(),
        ));
    }
    bounded(
        &filters.media_ids,
        "filters.media_ids",
        MAX_MEDIA_IDS,
        MAX_MEDIA_ID_CHARS,
    )?;
    bounded(
        &filters.labels,
        "filters.labels",
        MAX_LABELS,
        MAX_LABEL_CHARS,
    )?;
    Ok(Grant {
        index_ids: claims.index_ids,
        filters: ForcedFilters {
            media_ids: filters.media_ids,
            labels: filters.labels,
        },
    })
}

fn bounded(
    values: &[String],
    name: &str,
    max_items: usize,
    max_chars: usize,
) -> Result<(), TenantTokenError> {
    if values.len() > max_items {
        return Err(TenantTokenError::Claims(format!(
            "`{name}` has more than {max_items} entries"
        )));
    }
    let bad = |v: &String| v.is_empty() || v.chars().count() > max_chars || v.contains('\0');
    if values.iter().any(bad) {
        return Err(TenantTokenError::Claims(format!(
            "each of `{name}` must be 1–{max_chars} characters without U+0000"
        )));
    }
    Ok(())
}

/// The indexes a token over a key restricted to `key_indexes` (empty: every index) may
/// touch: the token's, each within the key's, else the key's.
pub fn narrowed_indexes(
    key_indexes: &[String],
    grant: &Grant,
) -> Result<Vec<String>, TenantTokenError> {
    let Some(asked) = &grant.index_ids else {
        return Ok(key_indexes.to_vec());
    };
    if let Some(outside) = asked
        .iter()
        .find(|id| !key_indexes.is_empty() && !key_indexes.contains(id))
    {
        return Err(TenantTokenError::Widened(outside.clone()));
    }
    let mut ids = asked.clone();
    ids.sort();
    ids.dedup();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    const SECRET: &str = "sk_test_0123456789abcdefghijABCDEFGHIJ01234567";

    fn mint(kid: Option<&str>, claims: serde_json::Value, secret: &str) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_secret(&signing_key(secret)),
        )
        .unwrap()
    }

    #[test]
    fn a_token_minted_by_the_recipe_verifies_and_narrows() {
        let now = 1_900_000_000;
        let token = mint(
            Some("key_1"),
            json!({"exp": now + 600, "index_ids": ["idx_b", "idx_a"],
                   "filters": {"labels": ["tenant:1"]}}),
            SECRET,
        );
        assert!(is_token(&token));
        assert!(!is_token(SECRET));
        assert_eq!(key_id(&token).unwrap(), "key_1");
        let grant = verify(&token, &signing_key(SECRET), now).unwrap();
        assert_eq!(grant.filters.labels, ["tenant:1"]);
        assert_eq!(narrowed_indexes(&[], &grant).unwrap(), ["idx_a", "idx_b"]);
        assert_eq!(
            narrowed_indexes(&["idx_a".into()], &grant),
            Err(TenantTokenError::Widened("idx_b".into()))
        );
    }

    #[test]
    fn forged_expired_long_lived_and_odd_tokens_are_refused() {
        let now = 1_900_000_000;
        let key = signing_key(SECRET);
        let other = mint(Some("key_1"), json!({"exp": now + 60}), "sk_test_another");
        assert_eq!(
            verify(&other, &key, now),
            Err(TenantTokenError::NotVerified)
        );
        let expired = mint(Some("key_1"), json!({"exp": now - 120}), SECRET);
        assert_eq!(verify(&expired, &key, now), Err(TenantTokenError::Expired));
        let early = mint(
            Some("key_1"),
            json!({"exp": now + 600, "nbf": now + 300}),
            SECRET,
        );
        assert_eq!(
            verify(&early, &key, now),
            Err(TenantTokenError::NotYetValid)
        );
        let long = mint(Some("key_1"), json!({"exp": now + 2 * 86_400}), SECRET);
        assert_eq!(verify(&long, &key, now), Err(TenantTokenError::TooLong));
        let no_exp = mint(Some("key_1"), json!({"index_ids": ["idx_a"]}), SECRET);
        assert!(matches!(
            verify(&no_exp, &key, now),
            Err(TenantTokenError::Claims(_))
        ));
        let unknown = mint(
            Some("key_1"),
            json!({"exp": now + 60, "scopes": ["admin"]}),
            SECRET,
        );
        assert!(matches!(
            verify(&unknown, &key, now),
            Err(TenantTokenError::Claims(_))
        ));
        let empty = mint(
            Some("key_1"),
            json!({"exp": now + 60, "index_ids": []}),
            SECRET,
        );
        assert!(matches!(
            verify(&empty, &key, now),
            Err(TenantTokenError::Claims(_))
        ));
        let nul = mint(
            Some("key_1"),
            json!({"exp": now + 60, "filters": {"labels": ["a\u{0}"]}}),
            SECRET,
        );
        assert!(matches!(
            verify(&nul, &key, now),
            Err(TenantTokenError::Claims(_))
        ));
        assert_eq!(
            key_id(&mint(None, json!({"exp": now + 60}), SECRET)),
            Err(TenantTokenError::Malformed)
        );
        // `alg: none`, and a token signed with another algorithm, never reach verification.
        let none = format!(
            "{}.{}.",
            base64_url(r#"{"alg":"none","typ":"JWT","kid":"key_1"}"#),
            base64_url(&json!({"exp": now + 60}).to_string())
        );
        assert_eq!(key_id(&none), Err(TenantTokenError::Malformed));
        assert_eq!(
            key_id(&"a.b.c".repeat(2000)),
            Err(TenantTokenError::Malformed)
        );
    }

    fn base64_url(text: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
    }
}
