//! Turns a presented credential into a [`Principal`]: API keys by digest lookup through
//! [`PointReads`] (revocation and deletion take effect on the next request on the instance
//! that made them and when their notice arrives on the others; expiry is checked here on
//! every use), JWTs by the [`TokenVerifier`].

use chrono::Utc;
use std::sync::Arc;

use sea_orm::{sea_query::Expr, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use subtle::ConstantTimeEq;
use videovector_api_spec::{Credential, Principal, Scope};

use super::{
    api_key_secret,
    jwt::{TokenError, TokenVerifier},
    tenant_tokens::{self, TenantTokenError},
    verified_tokens::VerifiedToken,
};
use crate::db::{
    columns::{IndexIdList, RateLimitList},
    entities::api_key,
    point_reads::PointReads,
};
use crate::secrets_at_rest::{places, Keyring};

/// `last_used_at` is written at most this often per key, off the request path.
const LAST_USED_GRANULARITY_SECONDS: i64 = 60;

/// Why a credential was refused.
#[derive(Debug)]
pub enum CredentialError {
    /// Unknown or deleted key, or an old secret past its rotation's grace period.
    InvalidKey,
    /// Not a secret this API could have issued (prefix, length or checksum): a typo.
    MalformedKey,
    /// The caller holds the key's secret, and the key was revoked.
    RevokedKey,
    /// The caller holds the key's secret, and the key expired at this time.
    ExpiredKey(chrono::DateTime<Utc>),
    /// A valid key used from an address outside its `allowed_cidrs`.
    AddressNotAllowed,
    /// A valid key used from a web page outside its `allowed_origins`.
    OriginNotAllowed,
    /// A tenant token refused, and why.
    InvalidTenantToken(TenantTokenError),
    InvalidToken(TokenError),
    /// The database could not be asked (logged; a 503-class failure, not the client's).
    Unavailable,
}

/// Ok when a valid key may be used from `client` and the page at `origin`.
fn held_to_networks_and_pages(
    key: &api_key::Model,
    client: Option<std::net::IpAddr>,
    origin: Option<&str>,
) -> Result<(), CredentialError> {
    if !key.allowed_cidrs.admits(client) {
        return Err(CredentialError::AddressNotAllowed);
    }
    if origin.is_some_and(|origin| !key.allowed_origins.admits(origin)) {
        return Err(CredentialError::OriginNotAllowed);
    }
    Ok(())
}

pub struct Authenticator {
    db: DatabaseConnection,
    reads: Arc<PointReads>,
    pepper: Vec<u8>,
    verifier: TokenVerifier,
    /// Opens the keys tenant tokens are signed with.
    keyring: Arc<Keyring>,
}

impl Authenticator {
    pub fn new(
        db: DatabaseConnection,
        reads: Arc<PointReads>,
        pepper: Vec<u8>,
        verifier: TokenVerifier,
        keyring: Arc<Keyring>,
    ) -> Self {
        Authenticator {
            db,
            reads,
            pepper,
            verifier,
            keyring,
        }
    }

    pub fn pepper(&self) -> &[u8] {
        &self.pepper
    }

    /// The principal of the key `secret` (or of a tenant token), used by a client at
    /// `client` (`None`: unknown) from the web page at `origin` (`None`: not from another
    /// site's page).
    pub async fn api_key(
        &self,
        secret: &str,
        client: Option<std::net::IpAddr>,
        origin: Option<&str>,
    ) -> Result<Principal, CredentialError> {
        if tenant_tokens::is_token(secret) {
            return self.tenant_token(secret, client, origin).await;
        }
        if !api_key_secret::is_well_formed(secret) {
            return Err(CredentialError::MalformedKey);
        }
        let digest = api_key_secret::digest(&self.pepper, secret);
        let key = self
            .reads
            .api_key_by_digest(&digest)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "looking up an API key");
                CredentialError::Unavailable
            })?
            .ok_or(CredentialError::InvalidKey)?;
        let now = Utc::now();
        let current = bool::from(key.digest.as_bytes().ct_eq(digest.as_bytes()));
        let previous_still_valid = key
            .previous_digest
            .as_deref()
            .is_some_and(|p| bool::from(p.as_bytes().ct_eq(digest.as_bytes())))
            && key.previous_valid_until.is_some_and(|until| until > now);
        if !(current || previous_still_valid) {
            return Err(CredentialError::InvalidKey);
        }
        // Only a caller holding the secret learns why it stopped working, which its owner
        // sees anyway in `api_key_view`.
        if key.revoked_at.is_some() {
            return Err(CredentialError::RevokedKey);
        }
        if let Some(at) = key.expires_at.filter(|at| *at <= now) {
            return Err(CredentialError::ExpiredKey(at));
        }
        held_to_networks_and_pages(&key, client, origin)?;
        self.note_use(&key, &digest, now);
        Ok(Principal {
            org_id: key.org_id,
            credential: Credential::ApiKey { key_id: key.id },
            scopes: key.scopes.to_vec(),
            verified: false,
            rate_limits: key.rate_limits.0,
            client_rate_limits: key.client_rate_limits.0,
            index_ids: key.index_ids.0,
            max_top_k: key.max_top_k.and_then(|n| u32::try_from(n).ok()),
            forced_filters: None,
        })
    }

    /// The principal of a tenant token: its key's organisation and budget, the `search`
    /// scope alone, the token's indexes within the key's, and its filters forced.
    async fn tenant_token(
        &self,
        token: &str,
        client: Option<std::net::IpAddr>,
        origin: Option<&str>,
    ) -> Result<Principal, CredentialError> {
        let refused = CredentialError::InvalidTenantToken;
        let key_id = tenant_tokens::key_id(token).map_err(refused)?;
        let key = self
            .reads
            .api_key_by_id(&key_id)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "looking up a tenant token's API key");
                CredentialError::Unavailable
            })?
            .ok_or(refused(TenantTokenError::NotVerified))?;
        let now = Utc::now();
        if key.revoked_at.is_some() || key.expires_at.is_some_and(|at| at <= now) {
            return Err(refused(TenantTokenError::NotVerified));
        }
        let sealed = key
            .tenant_key
            .as_deref()
            .ok_or(refused(TenantTokenError::KeyPredatesTokens))?;
        let signing_key = self
            .keyring
            .open(&places::api_key_tenant_key(&key.id), sealed)
            .map_err(|e| {
                tracing::error!(error = %e, key_id = %key.id, "opening a tenant token key");
                refused(TenantTokenError::KeyUnreadable)
            })?;
        let grant = tenant_tokens::verify(token, &signing_key, now.timestamp()).map_err(refused)?;
        held_to_networks_and_pages(&key, client, origin)?;
        let index_ids =
            tenant_tokens::narrowed_indexes(&key.index_ids.0, &grant).map_err(refused)?;
        self.note_use(&key, &format!("id:{}", key.id), now);
        Ok(Principal {
            org_id: key.org_id,
            credential: Credential::ApiKey { key_id: key.id },
            scopes: vec![Scope::Search],
            verified: false,
            rate_limits: key.rate_limits.0,
            client_rate_limits: key.client_rate_limits.0,
            index_ids: index_ids.into(),
            max_top_k: key.max_top_k.and_then(|n| u32::try_from(n).ok()),
            forced_filters: Some(Arc::new(grant.filters)),
        })
    }

    /// Records the key's use, at most once a [`LAST_USED_GRANULARITY_SECONDS`], off the
    /// request path; `cached_as` is the key's place in the read cache.
    fn note_use(&self, key: &api_key::Model, cached_as: &str, now: chrono::DateTime<Utc>) {
        let due = key
            .last_used_at
            .is_none_or(|at| (now - at).num_seconds() >= LAST_USED_GRANULARITY_SECONDS);
        if !due {
            return;
        }
        // Recorded in the cached row too, so the next requests do not write again.
        self.reads.note_last_use(cached_as, now);
        let db = self.db.clone();
        let id = key.id.clone();
        tokio::spawn(async move {
            let result = api_key::Entity::update_many()
                .col_expr(api_key::Column::LastUsedAt, Expr::value(now))
                .filter(api_key::Column::Id.eq(id))
                .exec(&db)
                .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "recording an API key's last use");
            }
        });
    }

    pub async fn bearer(&self, token: &str) -> Result<Principal, CredentialError> {
        let VerifiedToken {
            issuer,
            subject,
            org_id,
            scopes,
            verified,
        } = self
            .verifier
            .verify(token)
            .await
            .map_err(CredentialError::InvalidToken)?;
        Ok(Principal {
            org_id,
            credential: Credential::Jwt { issuer, subject },
            scopes,
            verified,
            rate_limits: RateLimitList::none().0,
            client_rate_limits: RateLimitList::none().0,
            index_ids: IndexIdList::every().0,
            max_top_k: None,
            forced_filters: None,
        })
    }
}
