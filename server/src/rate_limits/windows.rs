//! Counting requests against named limits, in fixed windows aligned to the epoch.
//!
//! A subject (an API key or an operator, in one family) has limits: at most `quota`
//! requests per `window_seconds`, several at once (per second and per day, say), all
//! enforced. Fixed windows are what the IETF RateLimit header fields describe (a quota, a
//! window, what remains and when it resets), and what instances can share cheaply.
//!
//! A request spends one *grant* of every limit. On one instance (SQLite) the grants are the
//! whole quota, taken here. Instances sharing a PostgreSQL database take grants from a
//! shared counter ([`super::shared`]) that never hands out more than the quota: each grant
//! is a batch, doubling while the instance keeps using them and never more than a quarter
//! of what is left, so the database is asked a few times per window, not per request, and
//! the instances together never admit more than the quota. What is wasted is what an
//! instance was granted and did not use before its window ended.
//!
//! A refused request spends nothing: a client that waits as told gets its budget back.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// One named limit: at most `quota` requests per `window_seconds` (borrowed from the
/// key's, the organisation's or the server's limits: a check allocates little).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit<'a> {
    pub name: &'a str,
    pub quota: u32,
    pub window_seconds: u32,
}

impl<'a> Limit<'a> {
    /// The limit `limit` sets, borrowed.
    pub fn of(limit: &'a videovector_api_spec::dto::rate_limits::RateLimit) -> Limit<'a> {
        Limit {
            name: &limit.name,
            quota: limit.quota,
            window_seconds: limit.window_seconds,
        }
    }
}

/// Where a request leaves one limit: for the `RateLimit` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing<'a> {
    pub name: &'a str,
    pub quota: u32,
    pub window_seconds: u32,
    /// Requests left in the current window.
    pub remaining: u32,
    /// Seconds until the current window ends (at least 1).
    pub reset_seconds: u32,
}

/// A check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<'a> {
    pub allowed: bool,
    /// The limit with the fewest requests left (the one that refused, when refused).
    pub tightest: Option<Standing<'a>>,
}

impl Decision<'_> {
    /// How long to wait before trying again, when refused.
    pub fn retry_after(&self) -> Option<Duration> {
        match (&self.tightest, self.allowed) {
            (Some(standing), false) => Some(Duration::from_secs(standing.reset_seconds.into())),
            _ => None,
        }
    }
}

/// A counter's key: the subject, the limit's name, and the window's start (epoch seconds).
pub type WindowKey = (String, String, u64);

/// A grant a check needs before it can decide: `want` more requests of `key`'s window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRequest {
    pub key: WindowKey,
    pub quota: u32,
    pub want: u32,
    /// When the window ends (epoch seconds).
    pub ends: u64,
}

/// What [`Windows::admit`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission<'a> {
    Decided(Decision<'a>),
    /// Some limit has no grant left here and may have some in the shared counter: ask it
    /// ([`Windows::granted`]), then check again.
    NeedsGrants(Vec<GrantRequest>),
}

/// Who grants requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granting {
    /// This instance alone: a limit's whole quota is granted here.
    Local,
    /// A shared counter grants batches.
    Shared,
}

#[derive(Debug, Default, Clone, Copy)]
struct Count {
    /// Requests granted to every instance in the window, as far as this one knows.
    granted_total: u32,
    /// Grants this instance holds and has not used.
    held: u32,
    /// Grants this instance received in the window (the next batch doubles it).
    received: u32,
    /// Requests this instance admitted in the window.
    used: u32,
    /// The quota the grants were taken under (a changed limit asks again).
    quota: u32,
    /// When the window ends (epoch seconds).
    ends: u64,
}

impl Count {
    fn remaining(&self, quota: u32) -> u32 {
        quota.saturating_sub(self.granted_total) + self.held
    }

    /// Whether nothing more can be granted in the window under `quota`.
    fn spent(&self, quota: u32) -> bool {
        self.quota == quota && self.granted_total >= quota
    }
}

/// One limit's count in its current window.
#[derive(Debug)]
struct Slot {
    name: String,
    start: u64,
    count: Count,
}

/// Every subject's counts in their current windows: a few slots per subject, one per limit,
/// found by name (a check allocates nothing for a subject it has seen).
pub struct Windows {
    granting: Granting,
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    by_subject: HashMap<String, Vec<Slot>>,
    /// When subjects whose windows all ended were last forgotten (epoch seconds).
    pruned_at: u64,
}

/// How often subjects with only ended windows are forgotten.
const PRUNE_EVERY_SECONDS: u64 = 60;

impl Counts {
    fn prune(&mut self, seconds: u64) {
        if seconds >= self.pruned_at + PRUNE_EVERY_SECONDS {
            self.pruned_at = seconds;
            self.by_subject
                .retain(|_, slots| slots.iter().any(|s| s.count.ends > seconds));
        }
    }

    /// The slot of `limit` in its window starting at `start`, made or renewed as needed.
    fn slot(&mut self, subject: &str, limit: &Limit<'_>, start: u64, ends: u64) -> &mut Count {
        if !self.by_subject.contains_key(subject) {
            self.by_subject.insert(subject.to_string(), Vec::new());
        }
        let slots = self.by_subject.get_mut(subject).expect("just made");
        let fresh = Count {
            ends,
            quota: limit.quota,
            ..Count::default()
        };
        let at = match slots.iter().position(|s| s.name == limit.name) {
            Some(at) => at,
            None => {
                slots.push(Slot {
                    name: limit.name.to_string(),
                    start,
                    count: fresh,
                });
                slots.len() - 1
            }
        };
        let slot = &mut slots[at];
        if slot.start != start {
            // A new window: the last one's counts are done with.
            slot.start = start;
            slot.count = fresh;
        }
        &mut slot.count
    }
}

/// The most one grant may be.
const MAX_GRANT: u32 = 10_000;

impl Windows {
    pub fn new(granting: Granting) -> Self {
        Windows {
            granting,
            counts: Mutex::default(),
        }
    }

    /// Checks `subject`'s `limits` at `now` and, when every one has a grant, spends one of
    /// each.
    pub fn admit<'a>(&self, subject: &str, limits: &[Limit<'a>], now: SystemTime) -> Admission<'a> {
        let seconds = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.prune(seconds);
        let window = |limit: &Limit<'_>| {
            let length = u64::from(limit.window_seconds.max(1));
            let start = seconds - seconds % length;
            (start, start + length)
        };
        let mut needs = Vec::new();
        let mut allowed = true;
        for limit in limits {
            let (start, ends) = window(limit);
            let count = counts.slot(subject, limit, start, ends);
            if count.quota != limit.quota {
                // The limit changed: what is held was granted under another quota.
                count.held = 0;
                count.quota = limit.quota;
            }
            if self.granting == Granting::Local {
                // Alone, everything not used is this instance's.
                count.held = limit.quota.saturating_sub(count.used);
                count.granted_total = count.used + count.held;
            } else if count.held == 0 && !count.spent(limit.quota) {
                // Each batch as large as all before it in the window, at most a quarter
                // of what is left.
                let left = limit.quota.saturating_sub(count.granted_total);
                needs.push(GrantRequest {
                    key: (subject.to_string(), limit.name.to_string(), start),
                    quota: limit.quota,
                    want: count.received.clamp(1, (left / 4).clamp(1, MAX_GRANT)),
                    ends,
                });
            }
            allowed &= count.held > 0;
        }
        if !needs.is_empty() {
            return Admission::NeedsGrants(needs);
        }
        let mut tightest: Option<Standing<'a>> = None;
        for limit in limits {
            let (start, ends) = window(limit);
            let count = counts.slot(subject, limit, start, ends);
            if allowed {
                count.held -= 1;
                count.used += 1;
            }
            let standing = Standing {
                name: limit.name,
                quota: limit.quota,
                window_seconds: limit.window_seconds,
                remaining: count.remaining(limit.quota),
                reset_seconds: (ends - seconds).max(1) as u32,
            };
            // The tightest: the fewest left; when refused, one that has none left and ends
            // last (waiting for an earlier one would not be enough).
            let tighter = match &tightest {
                None => true,
                Some(t) if !allowed => {
                    (
                        standing.remaining,
                        std::cmp::Reverse(standing.reset_seconds),
                    ) < (t.remaining, std::cmp::Reverse(t.reset_seconds))
                }
                Some(t) => standing.remaining < t.remaining,
            };
            if tighter {
                tightest = Some(standing);
            }
        }
        Admission::Decided(Decision { allowed, tightest })
    }

    /// Records what a shared counter granted for `request`: `grant` requests for this
    /// instance, and `total` granted to all instances in the window so far.
    pub fn granted(&self, request: &GrantRequest, grant: u32, total: u32) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let (subject, name, start) = &request.key;
        let limit = Limit {
            name,
            quota: request.quota,
            window_seconds: 1,
        };
        let count = counts.slot(subject, &limit, *start, request.ends);
        if count.quota != request.quota {
            count.held = 0;
            count.quota = request.quota;
        }
        count.held += grant;
        count.received += grant;
        count.granted_total = count.granted_total.max(total);
    }
}

/// The `RateLimit-Policy` header of `limits` (draft-ietf-httpapi-ratelimit-headers):
/// `"name";q=quota;w=window`, comma-separated.
pub fn policy_header(limits: &[Limit<'_>]) -> String {
    use std::fmt::Write;
    let mut header = String::with_capacity(limits.len() * 48);
    for (i, l) in limits.iter().enumerate() {
        let comma = if i == 0 { "" } else { ", " };
        let _ = write!(
            header,
            "{comma}\"{}\";q={};w={}",
            l.name, l.quota, l.window_seconds
        );
    }
    header
}

/// The `RateLimit` header of a standing: `"name";r=remaining;t=reset`.
pub fn standing_header(standing: &Standing<'_>) -> String {
    format!(
        "\"{}\";r={};t={}",
        standing.name, standing.remaining, standing.reset_seconds
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(name: &str, quota: u32, window_seconds: u32) -> Limit<'_> {
        Limit {
            name,
            quota,
            window_seconds,
        }
    }

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn decided(admission: Admission<'_>) -> Decision<'_> {
        match admission {
            Admission::Decided(d) => d,
            other => panic!("expected a decision, got {other:?}"),
        }
    }

    #[test]
    fn a_quota_holds_within_its_window_and_comes_back_with_the_next() {
        let windows = Windows::new(Granting::Local);
        let limits = [limit("search_minute", 3, 60)];
        let now = at(6_000_010);
        for left in [2, 1, 0] {
            let decision = decided(windows.admit("key_a", &limits, now));
            assert!(decision.allowed);
            assert_eq!(decision.tightest.unwrap().remaining, left);
        }
        let refused = decided(windows.admit("key_a", &limits, now));
        assert!(!refused.allowed);
        // The window started at 6,000,000 (a multiple of 60): 50 s left.
        assert_eq!(refused.retry_after(), Some(Duration::from_secs(50)));
        // Another subject has its own budget; refusals were not counted.
        assert!(decided(windows.admit("key_b", &limits, now)).allowed);
        let next = decided(windows.admit("key_a", &limits, at(6_000_060)));
        assert!(next.allowed);
        assert_eq!(next.tightest.unwrap().remaining, 2);
    }

    #[test]
    fn every_named_limit_is_enforced_and_the_one_that_refuses_says_how_long() {
        let windows = Windows::new(Granting::Local);
        let limits = [limit("per_second", 2, 1), limit("per_day", 3, 86_400)];
        let day = 86_400 * 20_000;
        assert!(decided(windows.admit("k", &limits, at(day))).allowed);
        assert!(decided(windows.admit("k", &limits, at(day))).allowed);
        let second_full = decided(windows.admit("k", &limits, at(day)));
        assert!(!second_full.allowed);
        assert_eq!(second_full.tightest.as_ref().unwrap().name, "per_second");
        assert_eq!(second_full.retry_after(), Some(Duration::from_secs(1)));
        assert!(decided(windows.admit("k", &limits, at(day + 1))).allowed);
        // Now the day is spent: the next second has room, the day does not.
        let day_full = decided(windows.admit("k", &limits, at(day + 2)));
        assert!(!day_full.allowed);
        assert_eq!(day_full.tightest.as_ref().unwrap().name, "per_day");
        assert_eq!(day_full.retry_after(), Some(Duration::from_secs(86_398)));
    }

    #[test]
    fn a_changed_limit_holds_at_once_in_the_same_window() {
        let windows = Windows::new(Granting::Local);
        let now = at(600);
        for _ in 0..5 {
            assert!(decided(windows.admit("k", &[limit("m", 10, 60)], now)).allowed);
        }
        // Lowered below what was used: spent.
        assert!(!decided(windows.admit("k", &[limit("m", 4, 60)], now)).allowed);
        // Raised: the requests already made still count.
        let raised = decided(windows.admit("k", &[limit("m", 7, 60)], now));
        assert!(raised.allowed);
        assert_eq!(raised.tightest.unwrap().remaining, 1);
    }

    #[test]
    fn shared_grants_come_in_doubling_batches_and_never_past_the_quota() {
        let windows = Windows::new(Granting::Shared);
        let limits = [limit("m", 100, 60)];
        let now = at(1_200);
        let mut total = 0;
        let mut asked = Vec::new();
        let mut admitted = 0;
        // A counter that another instance has already taken 40 from.
        let mut shared = 40;
        for _ in 0..200 {
            match windows.admit("k", &limits, now) {
                Admission::Decided(d) if d.allowed => admitted += 1,
                Admission::Decided(_) => break,
                Admission::NeedsGrants(needs) => {
                    for need in needs {
                        asked.push(need.want);
                        let grant = need.want.min(need.quota - shared);
                        shared += grant;
                        total += grant;
                        windows.granted(&need, grant, shared);
                    }
                }
            }
        }
        assert_eq!(admitted, 60, "all that was left, no more");
        assert_eq!(total, 60);
        assert_eq!(&asked[..5], &[1, 1, 2, 4, 8], "batches double: {asked:?}");
        assert!(
            asked.iter().all(|w| *w <= 15),
            "at most a quarter of what is left"
        );
        // Spent: refused without asking again.
        assert!(!decided(windows.admit("k", &limits, now)).allowed);
    }

    #[test]
    fn headers_follow_the_draft() {
        let limits = [
            limit("search", 100, 60),
            limit("search_day", 10_000, 86_400),
        ];
        assert_eq!(
            policy_header(&limits),
            "\"search\";q=100;w=60, \"search_day\";q=10000;w=86400"
        );
        let windows = Windows::new(Granting::Local);
        let standing = decided(windows.admit("k", &limits, at(30)))
            .tightest
            .unwrap();
        assert_eq!(standing_header(&standing), "\"search\";r=99;t=30");
    }
}
