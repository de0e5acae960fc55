//! Failed-login rate limiting: a sliding window of attempts per key (email, client address).
//! Kept in memory: each instance limits what it sees.
//!
//! An attempt is reserved, and counted as a failure, before the password is checked: the
//! check takes hundreds of milliseconds, and counting only afterwards let a burst of
//! concurrent guesses all through. A correct password takes its reservation back.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

pub struct LoginLimiter {
    max_failures: u32,
    window: Duration,
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl LoginLimiter {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        LoginLimiter {
            max_failures,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Reserves one attempt under every key, or `Err(seconds to wait)` when any key is at
    /// its limit (nothing is reserved then). Check and reservation are one step.
    pub fn reserve(&self, keys: &[&str]) -> Result<Instant, u64> {
        let now = Instant::now();
        let mut attempts = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if attempts.len() > 100_000 {
            attempts.retain(|_, times| times.iter().any(|t| now.duration_since(*t) < self.window));
        }
        let mut wait = None;
        for key in keys {
            if let Some(times) = attempts.get_mut(*key) {
                times.retain(|t| now.duration_since(*t) < self.window);
                if times.len() >= self.max_failures as usize {
                    let secs = self
                        .window
                        .saturating_sub(now.duration_since(times[0]))
                        .as_secs()
                        + 1;
                    wait = Some(wait.map_or(secs, |w: u64| w.max(secs)));
                }
            }
        }
        if let Some(wait) = wait {
            return Err(wait);
        }
        for key in keys {
            attempts.entry(key.to_string()).or_default().push(now);
        }
        Ok(now)
    }

    /// The attempt reserved at `at` succeeded: `cleared` keys forget their failures, and
    /// under the `other` keys the attempt no longer counts.
    pub fn succeeded(&self, at: Instant, cleared: &[&str], other: &[&str]) {
        let mut attempts = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        for key in cleared {
            attempts.remove(*key);
        }
        for key in other {
            if let Some(times) = attempts.get_mut(*key) {
                if let Some(i) = times.iter().position(|t| *t == at) {
                    times.remove(i);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_count_before_the_outcome_and_success_takes_them_back() {
        let limiter = LoginLimiter::new(2, Duration::from_secs(60));
        // Two attempts in flight use up the limit: a third waits, whatever they turn out.
        let first = limiter.reserve(&["a", "c"]).unwrap();
        limiter.reserve(&["a", "c"]).unwrap();
        let wait = limiter.reserve(&["a", "c"]).unwrap_err();
        assert!(wait > 0 && wait <= 61);
        assert!(limiter.reserve(&["b"]).is_ok());
        // The first was the right password: the email forgets, the address keeps the other.
        limiter.succeeded(first, &["a"], &["c"]);
        assert!(limiter.reserve(&["a"]).is_ok());
        assert!(limiter.reserve(&["c"]).is_ok());
        assert!(limiter.reserve(&["c"]).is_err());
    }
}
