//! Rate limits: the families operations are counted in, a named limit, an organisation's
//! default limits, and usage counts.

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};

use super::text::LimitName;

/// The family of operations a limit counts. Each operation's family is its
/// `x-rate-limit-family` in the spec: `search` for operations that need the `search` scope,
/// `read` for `read`, `write` for `write` and `admin`; `audit` for the audit log alone (a
/// SIEM's polling is budgeted apart from people's reads).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[oai(rename_all = "lowercase")]
pub enum RateLimitFamily {
    Search,
    Read,
    Write,
    Audit,
}

impl RateLimitFamily {
    /// Every family, in order.
    pub const ALL: [RateLimitFamily; 4] = [Self::Search, Self::Read, Self::Write, Self::Audit];

    /// The family's name, as the spec and the API write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Search => "search",
            Self::Read => "read",
            Self::Write => "write",
            Self::Audit => "audit",
        }
    }

    /// The family named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

/// One named limit: at most `quota` requests of `family` per `window_seconds`, counted in
/// fixed windows aligned to the epoch (a 60-second window starts on each whole minute).
#[derive(Object, Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    /// The limit's name, unique among the limits it is given with; the `RateLimit` and
    /// `RateLimit-Policy` headers name it.
    pub name: LimitName,
    /// The operations it counts.
    pub family: RateLimitFamily,
    /// Requests allowed per window.
    #[oai(validator(minimum(value = "1"), maximum(value = "1000000000")))]
    pub quota: u32,
    /// The window's length in seconds, from 1 to 86,400 (a day).
    #[oai(validator(minimum(value = "1"), maximum(value = "86400")))]
    pub window_seconds: u32,
}

/// Where an organisation's limits come from.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum RateLimitSource {
    /// The server's defaults: the organisation has set none.
    Server,
    /// The organisation's own.
    Organization,
}

/// An organisation's default limits: every key without limits of its own in a family, and
/// every operator's token, is held to these.
#[derive(Object, Debug, Clone)]
pub struct RateLimitPolicy {
    /// The limits, per family; a family none of them names falls back to the server's
    /// defaults for it.
    pub limits: Vec<RateLimit>,
    pub source: RateLimitSource,
    /// The most any limit of a key or an organisation may allow, averaged over its window,
    /// in requests per second: the server operator's ceiling.
    pub max_requests_per_second: u32,
}

/// New default limits of an organisation.
#[derive(Object, Debug, Clone)]
pub struct RateLimitPolicyUpdate {
    /// The limits, per family (names unique); a family none of them names falls back to the
    /// server's defaults. An empty list returns every family to the server's defaults.
    #[oai(validator(max_items = 24))]
    pub limits: Vec<RateLimit>,
}

/// The time buckets usage is counted in.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[oai(rename_all = "lowercase")]
pub enum UsageGranularity {
    Minute,
    Hour,
    Day,
}

/// Requests of one family in one time bucket, by outcome.
#[derive(Object, Debug, Clone, PartialEq, Eq)]
pub struct UsageBucket {
    /// When the bucket starts (UTC, on the minute, hour or day).
    pub start: DateTime<Utc>,
    pub family: RateLimitFamily,
    /// Answered with a success (2xx).
    pub allowed: u64,
    /// Refused with 429 `rate_limited`.
    pub rate_limited: u64,
    /// Refused with 403 (the key lacks the operation's scope).
    pub refused_by_scope: u64,
    /// Answered 404.
    pub not_found: u64,
    /// Answered with another 4xx.
    pub client_error: u64,
    /// Answered with a 5xx.
    pub server_error: u64,
}

/// One key's usage over a time range.
#[derive(Object, Debug, Clone)]
pub struct ApiKeyUsage {
    pub key_id: String,
    /// The key's name (absent when the key has been deleted since).
    #[oai(skip_serializing_if_is_none)]
    pub name: Option<String>,
    /// Buckets with at least one request, oldest first, by family.
    pub buckets: Vec<UsageBucket>,
}

/// Usage over a time range: one key's, or every key's of the organisation.
#[derive(Object, Debug, Clone)]
pub struct UsageReport {
    pub granularity: UsageGranularity,
    /// The range's start (inclusive), rounded down to the granularity.
    pub from: DateTime<Utc>,
    /// The range's end (exclusive).
    pub to: DateTime<Utc>,
    /// Each key with requests in the range, by key id.
    pub keys: Vec<ApiKeyUsage>,
}
