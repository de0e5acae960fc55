//! `token_create`: operator login with rate limiting, and the operator and organisation
//! records behind it (bootstrap, CLI).

use std::{net::IpAddr, sync::Arc};

use async_trait::async_trait;
use chrono::Utc;
use poem::http::StatusCode;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
};
use videovector_api_spec::ErrorCode;
use videovector_api_spec::{
    dto::{
        audit::{AuditAction, AuditActorType, AuditTargetType},
        auth::{TokenRequest, TokenResponse},
    },
    services::{AuthService, ServiceResult},
    ApiError, Scope,
};

use super::internal;
use crate::{
    audit::{Actor, AuditLog, Entry},
    auth::{
        jwt::{TokenGrant, TokenIssuer},
        login_turns::{LoginTurns, BACKOFF_CAP},
        passwords,
        rate_limit::{Counted, LoginLimiter},
    },
    client_address::limit_key,
    db::{
        columns::Role,
        entities::{operator, organization},
    },
    ids::new_id,
};

pub struct Auth {
    pub db: DatabaseConnection,
    pub issuer: Arc<TokenIssuer>,
    pub limiter: LoginLimiter,
    pub limits: LoginLimits,
    /// When each attempt may check its password (fairness under a flood).
    turns: LoginTurns,
    /// Records each login, and each wrong password for a known operator.
    audit: AuditLog,
}

/// How many failed logins are allowed in the limiter's window.
#[derive(Clone, Copy, Debug)]
pub struct LoginLimits {
    /// Per email and client address together: then 429 for that pair only. It is also the
    /// number of failures, from anywhere, past which an email's attempts slow down.
    pub per_pair: u32,
    /// Per client address, over every email it tries.
    pub per_client: u32,
}

impl Auth {
    pub fn new(
        db: DatabaseConnection,
        issuer: Arc<TokenIssuer>,
        limiter: LoginLimiter,
        limits: LoginLimits,
        audit: AuditLog,
    ) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Auth {
            db,
            issuer,
            limiter,
            limits,
            turns: LoginTurns::new(cores),
            audit,
        }
    }

    /// Records a login of `op` (its outcome), as the operator.
    async fn record_login(&self, op_id: &str, org_id: &str, succeeded: bool) {
        let entry = Entry::new(
            org_id,
            AuditAction::OperatorLogin,
            Actor::new(AuditActorType::Operator, op_id),
            AuditTargetType::Operator,
            op_id,
        );
        let entry = if succeeded { entry } else { entry.failed() };
        self.audit.record(&self.db, entry).await;
    }

    /// Mints a token for an operator record (login and `videovector token`).
    pub fn mint_for(
        &self,
        op: &operator::Model,
        requested: Option<Vec<Scope>>,
    ) -> ServiceResult<TokenResponse> {
        let role_scope = op.role.scope();
        let scopes = match requested {
            None => vec![role_scope],
            Some(list) => {
                if let Some(bad) = list.iter().find(|s| !role_scope.satisfies(**s)) {
                    return Err(ApiError::unprocessable(
                        ErrorCode::ScopeNotAllowed,
                        format!("the operator's role does not hold the `{bad}` scope"),
                    ));
                }
                let mut list = list;
                list.sort();
                list.dedup();
                list
            }
        };
        let token = self
            .issuer
            .mint(TokenGrant {
                subject: &op.id,
                org_id: &op.org_id,
                email: &op.email,
                scopes: &scopes,
                verified: op.verified,
            })
            .map_err(|e| internal("minting a token", e))?;
        Ok(TokenResponse {
            access_token: token,
            token_type: "Bearer".into(),
            expires_in: self.issuer.ttl().as_secs(),
            scopes,
            organization_id: op.org_id.clone(),
        })
    }
}

#[async_trait]
impl AuthService for Auth {
    async fn token_create(
        &self,
        request: TokenRequest,
        client: Option<IpAddr>,
    ) -> ServiceResult<TokenResponse> {
        // Who may try how often (OWASP's authentication guidance): a hard limit per email
        // and client together, so a stranger's failures never lock the operator out from
        // elsewhere; a hard limit per client over all emails, against one address trying
        // many accounts; per email only a count, which slows attempts down past the limit
        // (see `LoginTurns`) but never refuses them.
        let email = request.email.trim().to_lowercase();
        let client = client.map(limit_key).unwrap_or_default();
        let pair_key = format!("pair:{email}|{client}");
        let client_key = format!("client:{client}");
        let email_key = format!("email:{email}");
        let known = self
            .limiter
            .is_known(&pair_key)
            .await
            .map_err(|e| internal("reading known login clients", e))?;
        let attempt = self
            .limiter
            .reserve(&[
                Counted {
                    key: &pair_key,
                    limit: Some(self.limits.per_pair),
                },
                Counted {
                    key: &client_key,
                    limit: Some(self.limits.per_client),
                },
                Counted {
                    key: &email_key,
                    limit: None,
                },
            ])
            .await
            .map_err(|e| internal("reserving a login attempt", e))?
            .map_err(|wait| {
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    ErrorCode::TooManyAttempts,
                    "too many failed logins; retry later",
                )
                .with_header("Retry-After", wait.to_string())
            })?;
        let over = attempt.before[2] - i64::from(self.limits.per_pair);
        let _account_turn = self
            .turns
            .account_turn(&email, known, (over >= 0).then_some(over))
            .await
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    ErrorCode::TooManyAttempts,
                    "too many logins for this email at once; retry later",
                )
                .with_header("Retry-After", BACKOFF_CAP.as_secs().to_string())
            })?;
        let found = operator::Entity::find()
            .filter(operator::Column::Email.eq(&email))
            .one(&self.db)
            .await
            .map_err(|e| internal("looking up an operator", e))?;
        let password = request.password;
        let attempted = found.as_ref().map(|op| (op.id.clone(), op.org_id.clone()));
        let ok_operator = match found {
            Some(op) => {
                let _slot = self.turns.slot(known).await;
                let hash = op.password_hash.clone();
                let matches =
                    tokio::task::spawn_blocking(move || passwords::verify(&password, &hash))
                        .await
                        .unwrap_or(false);
                matches.then_some(op)
            }
            // No password to check: as long as a check takes now, without taking a slot.
            None => {
                if self.turns.imitate().await.is_none() {
                    let _slot = self.turns.slot(known).await;
                    let _ = tokio::task::spawn_blocking(move || passwords::verify_dummy(&password))
                        .await;
                }
                None
            }
        };
        let Some(op) = ok_operator else {
            // The reservation stands as the failure.
            if let Some((op_id, org_id)) = attempted {
                self.record_login(&op_id, &org_id, false).await;
            }
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::InvalidCredentials,
                "the email or password is wrong",
            )
            .with_header("WWW-Authenticate", "Bearer realm=\"videovector\""));
        };
        self.limiter
            .succeeded(attempt, &[&pair_key, &email_key])
            .await
            .map_err(|e| internal("clearing login failures", e))?;
        self.limiter
            .remember(&pair_key)
            .await
            .map_err(|e| internal("remembering a login client", e))?;
        let minted = self.mint_for(&op, request.scopes)?;
        self.record_login(&op.id, &op.org_id, true).await;
        Ok(minted)
    }
}

/// Creates an organisation.
pub async fn create_organization(
    db: &DatabaseConnection,
    name: &str,
) -> anyhow::Result<organization::Model> {
    let org = organization::Model {
        id: new_id("org"),
        name: name.to_string(),
        created_at: Utc::now(),
        rate_limits: None,
        revoke_leaked_keys: true,
    };
    organization::Entity::insert(organization::ActiveModel {
        id: Set(org.id.clone()),
        name: Set(org.name.clone()),
        created_at: Set(org.created_at),
        rate_limits: Set(None),
        revoke_leaked_keys: Set(true),
    })
    .exec(db)
    .await?;
    Ok(org)
}

/// Creates an operator with an argon2id password hash.
pub async fn create_operator(
    db: &DatabaseConnection,
    org_id: &str,
    email: &str,
    password: &str,
    role: Role,
    verified: bool,
) -> anyhow::Result<operator::Model> {
    anyhow::ensure!(
        password.len() >= 8,
        "the password must be at least 8 characters"
    );
    let password = password.to_string();
    let hash = tokio::task::spawn_blocking(move || passwords::hash(&password)).await??;
    let model = operator::ActiveModel {
        id: Set(new_id("op")),
        org_id: Set(org_id.to_string()),
        email: Set(email.trim().to_lowercase()),
        password_hash: Set(hash),
        role: Set(role),
        verified: Set(verified),
        created_at: Set(Utc::now()),
    };
    let id = model.id.clone().unwrap();
    operator::Entity::insert(model).exec(db).await?;
    operator::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the operator vanished"))
}

/// On first start with an empty database: an organisation and an admin operator. Returns
/// the generated password when none was configured (to be printed once).
pub async fn bootstrap(
    db: &DatabaseConnection,
    email: Option<&str>,
    password: Option<&str>,
) -> anyhow::Result<Option<(String, Option<String>)>> {
    if organization::Entity::find().count(db).await? > 0 {
        return Ok(None);
    }
    let email = email.unwrap_or("admin@localhost").to_string();
    let (password, generated) = match password {
        Some(p) => (p.to_string(), None),
        None => {
            let p = crate::auth::api_key_secret::generate("sk_live_")[8..32].to_string();
            (p.clone(), Some(p))
        }
    };
    let org = create_organization(db, "Default organization").await?;
    create_operator(db, &org.id, &email, &password, Role::Admin, true).await?;
    Ok(Some((email, generated)))
}
