//! JWTs: the built-in issuer (HS256 with a server secret) and verification of tokens from
//! it or from configured identity providers.
//!
//! Each issuer pins its algorithms; `exp`, `iss` and `aud` are required; the key is chosen
//! by the token's `iss` (and `kid` for JWKS), never by its `alg`, so `alg: none` and HS/RS
//! confusion cannot pass (jsonwebtoken also refuses a key of another family).

use std::{str::FromStr, sync::Arc, time::Duration};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use jsonwebtoken::{
    decode, decode_header, encode, jwk::JwkSet, Algorithm, DecodingKey, EncodingKey, Header,
    Validation,
};
use serde_json::{json, Value};
use tokio::sync::RwLock;
use videovector_api_spec::Scope;

use super::verified_tokens::{VerifiedToken, VerifiedTokens, LEEWAY_SECONDS};
use crate::config::{ExternalIssuer, JwtConfig};

/// Why a token was refused (said to the client in general terms only).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's issuer is not trusted")]
    UnknownIssuer,
    #[error("the token's algorithm is not accepted for its issuer")]
    AlgorithmNotAllowed,
    #[error("no key matches the token")]
    UnknownKey,
    #[error("the token is invalid: {0}")]
    Invalid(String),
    /// Its signature verified, and it expired (past the leeway).
    #[error("the token expired")]
    Expired,
    #[error("the token names no organisation")]
    NoOrganization,
}

/// Signs tokens for operators.
pub struct TokenIssuer {
    key: EncodingKey,
    issuer: String,
    audience: String,
    ttl: Duration,
    organization_claim: String,
    verified_claim: String,
}

/// A token to mint.
pub struct TokenGrant<'a> {
    pub subject: &'a str,
    pub org_id: &'a str,
    pub email: &'a str,
    pub scopes: &'a [Scope],
    pub verified: bool,
}

impl TokenIssuer {
    pub fn new(config: &JwtConfig, secret: &[u8]) -> Self {
        TokenIssuer {
            key: EncodingKey::from_secret(secret),
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            ttl: Duration::from_secs(config.token_ttl_seconds),
            organization_claim: config.organization_claim.clone(),
            verified_claim: config.verified_claim.clone(),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn mint(&self, grant: TokenGrant<'_>) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let scope: Vec<&str> = grant.scopes.iter().map(|s| s.as_str()).collect();
        let mut claims = json!({
            "iss": self.issuer,
            "aud": self.audience,
            "sub": grant.subject,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl.as_secs() as i64,
            "email": grant.email,
            "scope": scope.join(" "),
        });
        claims[&self.organization_claim] = json!(grant.org_id);
        claims[&self.verified_claim] = json!(grant.verified);
        Ok(encode(&Header::new(Algorithm::HS256), &claims, &self.key)?)
    }
}

enum KeySource {
    Single(DecodingKey),
    Jwks(Arc<RwLock<JwkSet>>),
}

struct TrustedIssuer {
    issuer: String,
    /// One per pinned algorithm, built once (they are the same for every token).
    validations: Vec<Validation>,
    keys: KeySource,
    default_organization: Option<String>,
}

impl TrustedIssuer {
    fn new(
        issuer: String,
        audience: &str,
        algorithms: &[Algorithm],
        keys: KeySource,
        default_organization: Option<String>,
    ) -> Self {
        let validations = algorithms
            .iter()
            .map(|alg| {
                let mut validation = Validation::new(*alg);
                validation.algorithms = vec![*alg];
                validation.set_issuer(&[&issuer]);
                validation.set_audience(&[audience]);
                validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
                validation.leeway = LEEWAY_SECONDS as u64;
                validation.validate_nbf = true;
                validation
            })
            .collect();
        TrustedIssuer {
            issuer,
            validations,
            keys,
            default_organization,
        }
    }
}

/// Verifies tokens from every trusted issuer.
pub struct TokenVerifier {
    issuers: Vec<TrustedIssuer>,
    recently_verified: VerifiedTokens,
    organization_claim: String,
    verified_claim: String,
}

impl TokenVerifier {
    /// The built-in issuer plus every configured one. JWKS URLs are fetched now and
    /// refreshed in the background every ten minutes.
    pub async fn new(config: &JwtConfig, builtin_secret: &[u8]) -> anyhow::Result<Self> {
        let mut issuers = vec![TrustedIssuer::new(
            config.issuer.clone(),
            &config.audience,
            &[Algorithm::HS256],
            KeySource::Single(DecodingKey::from_secret(builtin_secret)),
            None,
        )];
        for external in &config.external_issuers {
            issuers.push(trusted_external(external, &config.audience).await?);
        }
        Ok(TokenVerifier {
            issuers,
            recently_verified: VerifiedTokens::default(),
            organization_claim: config.organization_claim.clone(),
            verified_claim: config.verified_claim.clone(),
        })
    }

    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        let now = chrono::Utc::now().timestamp();
        if let Some(verified) = self.recently_verified.get(token, now) {
            return Ok(verified);
        }
        let header = decode_header(token).map_err(|_| TokenError::Malformed)?;
        let claimed_issuer = unverified_issuer(token).ok_or(TokenError::Malformed)?;
        let trusted = self
            .issuers
            .iter()
            .find(|i| i.issuer == claimed_issuer)
            .ok_or(TokenError::UnknownIssuer)?;
        let validation = trusted
            .validations
            .iter()
            .find(|v| v.algorithms == [header.alg])
            .ok_or(TokenError::AlgorithmNotAllowed)?;
        let data = match &trusted.keys {
            KeySource::Single(key) => decode::<Value>(token, key, validation),
            KeySource::Jwks(set) => {
                let set = set.read().await;
                let jwk = match &header.kid {
                    Some(kid) => set.find(kid),
                    None if set.keys.len() == 1 => set.keys.first(),
                    None => None,
                }
                .ok_or(TokenError::UnknownKey)?;
                let key = DecodingKey::from_jwk(jwk).map_err(|_| TokenError::UnknownKey)?;
                decode::<Value>(token, &key, validation)
            }
        }
        .map_err(|e| match e.kind() {
            // jsonwebtoken checks `exp` only after the signature.
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
            _ => TokenError::Invalid(e.to_string()),
        })?;
        let claims = data.claims;
        let org_id = claims
            .get(&self.organization_claim)
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| trusted.default_organization.clone())
            .filter(|o| !o.is_empty())
            .ok_or(TokenError::NoOrganization)?;
        let verified = VerifiedToken {
            issuer: trusted.issuer.clone(),
            subject: claims
                .get("sub")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            org_id,
            scopes: scopes_of(&claims),
            verified: claims.get(&self.verified_claim) == Some(&Value::Bool(true)),
        };
        // Keys from a JWKS set are refreshed, so only fixed keys' tokens are kept.
        let time = |name: &str| claims.get(name).and_then(Value::as_f64).map(|t| t as i64);
        if let (KeySource::Single(_), Some(expires)) = (&trusted.keys, time("exp")) {
            self.recently_verified
                .insert(token, verified.clone(), time("nbf"), expires, now);
        }
        Ok(verified)
    }
}

/// Scopes from `scope` (space-separated) or `scopes` (array or string); unknown names are
/// ignored.
fn scopes_of(claims: &Value) -> Vec<Scope> {
    let names: Vec<String> = match (claims.get("scope"), claims.get("scopes")) {
        (Some(Value::String(s)), _) | (None, Some(Value::String(s))) => {
            s.split_whitespace().map(str::to_string).collect()
        }
        (_, Some(Value::Array(items))) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    let mut scopes: Vec<Scope> = names.iter().filter_map(|n| Scope::parse(n)).collect();
    scopes.sort();
    scopes.dedup();
    scopes
}

/// The `iss` claim read without verification, only to choose the issuer to verify against.
fn unverified_issuer(token: &str) -> Option<String> {
    /// Only `iss`: the other claims are skipped, not built into a tree.
    #[derive(serde::Deserialize)]
    struct Issuer {
        iss: String,
    }
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<Issuer>(&bytes).ok().map(|c| c.iss)
}

async fn trusted_external(
    external: &ExternalIssuer,
    default_audience: &str,
) -> anyhow::Result<TrustedIssuer> {
    let algorithms = external
        .algorithms
        .iter()
        .map(|a| Algorithm::from_str(a).map_err(|_| anyhow::anyhow!("unknown JWT algorithm {a}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let keys = if let Some(path) = &external.jwks_file {
        let set: JwkSet = serde_json::from_slice(&std::fs::read(path)?)?;
        KeySource::Jwks(Arc::new(RwLock::new(set)))
    } else if let Some(url) = &external.jwks_url {
        let set = Arc::new(RwLock::new(fetch_jwks(url).await?));
        spawn_jwks_refresh(url.clone(), set.clone());
        KeySource::Jwks(set)
    } else if let Some(path) = &external.pem_file {
        let pem = std::fs::read(path)?;
        let key = match algorithms.first() {
            Some(Algorithm::ES256 | Algorithm::ES384) => DecodingKey::from_ec_pem(&pem)?,
            Some(Algorithm::EdDSA) => DecodingKey::from_ed_pem(&pem)?,
            _ => DecodingKey::from_rsa_pem(&pem)?,
        };
        KeySource::Single(key)
    } else if let Some(secret) = &external.shared_secret {
        anyhow::ensure!(
            algorithms
                .iter()
                .all(|a| matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)),
            "issuer {}: a shared secret only goes with HS algorithms",
            external.issuer
        );
        KeySource::Single(DecodingKey::from_secret(secret.as_bytes()))
    } else {
        anyhow::bail!("issuer {} has no key source", external.issuer);
    };
    Ok(TrustedIssuer::new(
        external.issuer.clone(),
        external.audience.as_deref().unwrap_or(default_audience),
        &algorithms,
        keys,
        external.default_organization.clone(),
    ))
}

async fn fetch_jwks(url: &str) -> anyhow::Result<JwkSet> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    Ok(client
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

fn spawn_jwks_refresh(url: String, set: Arc<RwLock<JwkSet>>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(600)).await;
            match fetch_jwks(&url).await {
                Ok(fresh) => *set.write().await = fresh,
                Err(e) => {
                    tracing::warn!(%url, error = %e, "refreshing JWKS failed; keeping the previous keys")
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_come_from_scope_or_scopes() {
        assert_eq!(
            scopes_of(&json!({"scope": "read search bogus"})),
            vec![Scope::Search, Scope::Read]
        );
        assert_eq!(scopes_of(&json!({"scopes": ["admin"]})), vec![Scope::Admin]);
        assert!(scopes_of(&json!({})).is_empty());
    }
}
