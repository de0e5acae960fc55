//! The check on every authenticated request: the limits of its family for its credential,
//! counted in this instance's windows, with grants from the shared counter when instances
//! share a PostgreSQL database. What it decided becomes the `RateLimit-Policy` and
//! `RateLimit` headers, and a refusal the 429.

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use poem::http::StatusCode;
use sea_orm::DatabaseConnection;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use videovector_api_spec::{
    dto::rate_limits::RateLimitFamily, ApiError, Credential, ErrorCode, Principal,
};

use super::{
    policy::Policy,
    shared,
    windows::{policy_header, standing_header, Admission, Decision, Granting, Limit, Windows},
};
use crate::{client_address::limit_key, db::point_reads::PointReads};

/// Rounds of asking the shared counter before a check gives up (other requests of this
/// instance spent each grant before this one could).
const MAX_GRANT_ROUNDS: usize = 16;

/// What a check decided, ready to be said in headers (or a 429).
#[derive(Debug, Clone)]
pub struct Verdict {
    pub allowed: bool,
    /// The `RateLimit-Policy` header: every limit of the family.
    pub policy: String,
    /// The `RateLimit` header: the limit with the fewest requests left.
    pub standing: Option<String>,
    /// When refused: the limit that refused, and the seconds to wait.
    pub refused_by: Option<(String, u64)>,
}

impl Verdict {
    fn of(limits: &[Limit<'_>], decision: &Decision<'_>) -> Verdict {
        Verdict {
            allowed: decision.allowed,
            policy: policy_header(limits),
            standing: decision.tightest.as_ref().map(standing_header),
            refused_by: match (&decision.tightest, decision.retry_after()) {
                (Some(standing), Some(wait)) => {
                    Some((standing.name.to_string(), wait.as_secs().max(1)))
                }
                _ => None,
            },
        }
    }

    /// The headers every answer carries.
    pub fn headers(self) -> impl Iterator<Item = (&'static str, String)> {
        std::iter::once(("RateLimit-Policy", self.policy))
            .chain(self.standing.map(|s| ("RateLimit", s)))
    }

    /// The 429 of a refusal.
    pub fn refusal(self) -> ApiError {
        let (name, wait) = self
            .refused_by
            .clone()
            .unwrap_or_else(|| ("a rate limit".into(), 1));
        let mut error = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            format!("the limit `{name}` is spent; retry after {wait} seconds"),
        )
        .with_header("Retry-After", wait.to_string());
        error.headers.extend(self.headers());
        error
    }
}

pub struct RateLimiter {
    policy: Policy,
    reads: Arc<PointReads>,
    windows: Windows,
    /// The shared counter's database (PostgreSQL); `None`: this instance counts alone.
    shared: Option<DatabaseConnection>,
}

impl RateLimiter {
    pub fn new(policy: Policy, reads: Arc<PointReads>, shared: Option<DatabaseConnection>) -> Self {
        let granting = match shared {
            Some(_) => Granting::Shared,
            None => Granting::Local,
        };
        RateLimiter {
            policy,
            reads,
            windows: Windows::new(granting),
            shared,
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Counts a request of `who`, from a client at `client`, in `family`; `None` when no
    /// limit holds. A key's `client_rate_limits` are counted first, per client address (an
    /// IPv6 client by its /64): one visitor's flood is refused before it spends the key's
    /// budget.
    pub async fn check(
        &self,
        who: &Principal,
        family: RateLimitFamily,
        client: Option<std::net::IpAddr>,
    ) -> Result<Option<Verdict>, ApiError> {
        if let Some(client) = client {
            let per_client: Vec<Limit<'_>> = who
                .client_rate_limits
                .iter()
                .filter(|l| l.family == family)
                .map(Limit::of)
                .collect();
            if !per_client.is_empty() {
                let subject = format!("{}@{}", subject(who, family), limit_key(client));
                let verdict = self.admit(&subject, &per_client).await?;
                if !verdict.allowed {
                    return Ok(Some(verdict));
                }
            }
        }
        // A key with limits of its own in the family needs nothing of its organisation's.
        let org = match who.rate_limits.iter().any(|l| l.family == family) {
            true => None,
            false => self.reads.org_rate_limits(&who.org_id).await.map_err(|e| {
                tracing::error!(error = %e, "reading an organisation's rate limits");
                ApiError::unavailable("rate limits cannot be checked right now; retry shortly")
            })?,
        };
        let limits = self
            .policy
            .effective(&who.rate_limits, org.as_deref(), family);
        if limits.is_empty() {
            return Ok(None);
        }
        self.admit(&subject(who, family), &limits).await.map(Some)
    }

    /// Counts a request of `subject` against `limits`.
    async fn admit(&self, subject: &str, limits: &[Limit<'_>]) -> Result<Verdict, ApiError> {
        for _ in 0..MAX_GRANT_ROUNDS {
            match self.windows.admit(subject, limits, SystemTime::now()) {
                Admission::Decided(decision) => return Ok(Verdict::of(limits, &decision)),
                Admission::NeedsGrants(needs) => {
                    for need in needs {
                        let (grant, total) = match &self.shared {
                            Some(db) => shared::claim(db, &need).await.unwrap_or_else(|e| {
                                // Alone until the database answers again: a grant of what
                                // was asked, counted nowhere else.
                                tracing::warn!(error = %e, "asking the shared rate limit counter");
                                (need.want, 0)
                            }),
                            None => (need.want, 0),
                        };
                        self.windows.granted(&need, grant, total);
                    }
                }
            }
        }
        tracing::warn!("a rate limit check found every grant spent by other requests");
        Err(ApiError::unavailable(
            "rate limits cannot be checked right now; retry shortly",
        ))
    }

    /// Deletes ended windows of the shared counter each minute, until `shutdown`.
    pub fn spawn_maintenance(self: &Arc<Self>, shutdown: CancellationToken) {
        let Some(db) = self.shared.clone() else {
            return;
        };
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = shutdown.cancelled() => return,
                }
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                if let Err(e) = shared::forget_ended(&db, now).await {
                    tracing::warn!(error = %e, "deleting ended rate limit windows");
                }
            }
        });
    }
}

/// Who is counted: the key, or the operator (by a digest of issuer and subject, which may
/// be long), in one family.
fn subject(who: &Principal, family: RateLimitFamily) -> String {
    match &who.credential {
        Credential::ApiKey { key_id } => format!("{key_id}:{}", family.as_str()),
        Credential::Jwt { issuer, subject } => {
            let digest = Sha256::digest(format!("{issuer}\n{subject}").as_bytes());
            let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
            format!("op_{hex}:{}", family.as_str())
        }
    }
}
