//! Rate limits (issue 22, first part: the counting; not yet on the request path).
//!
//! A subject (an API key, an operator) has named limits per operation family: at most
//! `quota` requests per `window_seconds`, several at once (per second and per day, say), all
//! enforced. Requests are counted in fixed windows aligned to the epoch, which is what the
//! IETF RateLimit header fields describe (a quota, a window, what remains of it and when it
//! resets) and what instances can add up between them: each instance counts locally, and a
//! sync adds its new counts to a shared total per window and reads everyone's back
//! ([`Windows::unsynced`], [`Windows::absorb`]). Between two syncs an instance decides on
//! its own counts plus the others' as last read, so N instances admit at most one sync
//! interval's worth of the others' requests too many.
//!
//! A refused request is not counted: a client that waits as told gets its budget back.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// One named limit: at most `quota` requests per `window_seconds`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    pub name: String,
    pub quota: u32,
    pub window_seconds: u32,
}

/// Where a request leaves one limit: for the `RateLimit` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub name: String,
    pub quota: u32,
    pub window_seconds: u32,
    /// Requests left in the current window.
    pub remaining: u32,
    /// Seconds until the current window ends (at least 1).
    pub reset_seconds: u32,
}

/// A check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The limit with the fewest requests left (the one that refused, when refused).
    pub tightest: Option<Standing>,
}

impl Decision {
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

#[derive(Debug, Default, Clone, Copy)]
struct Count {
    /// Everyone's requests in the window as far as this instance knows (its own included).
    seen: u32,
    /// This instance's requests not yet handed to a sync.
    unsynced: u32,
    /// When the window ends (epoch seconds): then it is forgotten.
    ends: u64,
}

/// Every subject's counts in their current windows.
#[derive(Default)]
pub struct Windows {
    counts: Mutex<HashMap<WindowKey, Count>>,
}

impl Windows {
    /// Checks `subject`'s `limits` at `now` and, when every one has room, counts the
    /// request in each.
    pub fn admit(&self, subject: &str, limits: &[Limit], now: SystemTime) -> Decision {
        let seconds = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let mut standings = Vec::with_capacity(limits.len());
        let mut allowed = true;
        for limit in limits {
            let window = u64::from(limit.window_seconds.max(1));
            let start = seconds - seconds % window;
            let key = (subject.to_string(), limit.name.clone(), start);
            let seen = counts.get(&key).map_or(0, |c| c.seen);
            allowed &= seen < limit.quota;
            standings.push((key, limit, seen, start + window));
        }
        let mut tightest: Option<Standing> = None;
        for (key, limit, seen, ends) in standings {
            let seen = match allowed {
                true => {
                    let count = counts.entry(key).or_insert(Count {
                        ends,
                        ..Count::default()
                    });
                    count.seen += 1;
                    count.unsynced += 1;
                    count.seen
                }
                false => seen,
            };
            let standing = Standing {
                name: limit.name.clone(),
                quota: limit.quota,
                window_seconds: limit.window_seconds,
                remaining: limit.quota.saturating_sub(seen),
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
        counts.retain(|_, c| c.ends > seconds);
        Decision { allowed, tightest }
    }

    /// Hands over this instance's counts not yet synced (and forgets them as unsynced): a
    /// sync adds them to the shared totals, then gives each total to [`Self::absorb`].
    pub fn unsynced(&self) -> Vec<(WindowKey, u32)> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts
            .iter_mut()
            .filter(|(_, c)| c.unsynced > 0)
            .map(|(key, c)| {
                let n = c.unsynced;
                c.unsynced = 0;
                (key.clone(), n)
            })
            .collect()
    }

    /// Takes every instance's total for a window (this one's synced counts included), as a
    /// sync read it; requests counted here since then come on top.
    pub fn absorb(&self, key: WindowKey, total: u32, ends: u64) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(key).or_insert(Count {
            ends,
            ..Count::default()
        });
        count.seen = count.seen.max(total + count.unsynced);
    }
}

/// The `RateLimit-Policy` header of `limits` (draft-ietf-httpapi-ratelimit-headers):
/// `"name";q=quota;w=window`, comma-separated.
pub fn policy_header(limits: &[Limit]) -> String {
    limits
        .iter()
        .map(|l| format!("\"{}\";q={};w={}", l.name, l.quota, l.window_seconds))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `RateLimit` header of a standing: `"name";r=remaining;t=reset`.
pub fn standing_header(standing: &Standing) -> String {
    format!(
        "\"{}\";r={};t={}",
        standing.name, standing.remaining, standing.reset_seconds
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(name: &str, quota: u32, window_seconds: u32) -> Limit {
        Limit {
            name: name.into(),
            quota,
            window_seconds,
        }
    }

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn a_quota_holds_within_its_window_and_comes_back_with_the_next() {
        let windows = Windows::default();
        let limits = [limit("search-minute", 3, 60)];
        let now = at(6_000_010);
        for left in [2, 1, 0] {
            let decision = windows.admit("key_a", &limits, now);
            assert!(decision.allowed);
            assert_eq!(decision.tightest.unwrap().remaining, left);
        }
        let refused = windows.admit("key_a", &limits, now);
        assert!(!refused.allowed);
        // The window started at 6,000,000 (a multiple of 60): 50 s left.
        assert_eq!(refused.retry_after(), Some(Duration::from_secs(50)));
        // Another subject has its own budget; refusals were not counted.
        assert!(windows.admit("key_b", &limits, now).allowed);
        let next = windows.admit("key_a", &limits, at(6_000_060));
        assert!(next.allowed);
        assert_eq!(next.tightest.unwrap().remaining, 2);
    }

    #[test]
    fn every_named_limit_is_enforced_and_the_one_that_refuses_says_how_long() {
        let windows = Windows::default();
        let limits = [limit("per-second", 2, 1), limit("per-day", 3, 86_400)];
        let day = 86_400 * 20_000;
        assert!(windows.admit("k", &limits, at(day)).allowed);
        assert!(windows.admit("k", &limits, at(day)).allowed);
        let second_full = windows.admit("k", &limits, at(day));
        assert!(!second_full.allowed);
        assert_eq!(second_full.tightest.as_ref().unwrap().name, "per-second");
        assert_eq!(second_full.retry_after(), Some(Duration::from_secs(1)));
        assert!(windows.admit("k", &limits, at(day + 1)).allowed);
        // Now the day is spent: the next second has room, the day does not.
        let day_full = windows.admit("k", &limits, at(day + 2));
        assert!(!day_full.allowed);
        assert_eq!(day_full.tightest.as_ref().unwrap().name, "per-day");
        assert_eq!(day_full.retry_after(), Some(Duration::from_secs(86_398)));
    }

    #[test]
    fn other_instances_counts_absorbed_by_a_sync_take_their_share() {
        let here = Windows::default();
        let limits = [limit("search-minute", 10, 60)];
        let now = at(120);
        for _ in 0..3 {
            assert!(here.admit("k", &limits, now).allowed);
        }
        let handed = here.unsynced();
        assert_eq!(handed, vec![(("k".into(), "search-minute".into(), 120), 3)]);
        assert!(here.unsynced().is_empty(), "handed over once");
        // One more here meanwhile; the shared total says 9 (6 from elsewhere).
        assert!(here.admit("k", &limits, now).allowed);
        here.absorb(("k".into(), "search-minute".into(), 120), 9, 180);
        let decision = here.admit("k", &limits, now);
        assert!(!decision.allowed, "9 + 1 unsynced = 10: spent");
        assert_eq!(decision.tightest.unwrap().remaining, 0);
        // A stale total never lowers what is known.
        here.absorb(("k".into(), "search-minute".into(), 120), 2, 180);
        assert!(!here.admit("k", &limits, now).allowed);
    }

    #[test]
    fn headers_follow_the_draft() {
        let limits = [
            limit("search", 100, 60),
            limit("search-day", 10_000, 86_400),
        ];
        assert_eq!(
            policy_header(&limits),
            "\"search\";q=100;w=60, \"search-day\";q=10000;w=86400"
        );
        let windows = Windows::default();
        let standing = windows.admit("k", &limits, at(30)).tightest.unwrap();
        assert_eq!(standing_header(&standing), "\"search\";r=99;t=30");
    }
}
