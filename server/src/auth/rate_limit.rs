//! Failed-login rate limiting: a sliding window of failures per key (email, client address).
//! Kept in memory: each instance limits what it sees.

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

    /// `Some(seconds to wait)` when any key is over its limit.
    pub fn blocked(&self, keys: &[&str]) -> Option<u64> {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait = None;
        for key in keys {
            if let Some(times) = failures.get_mut(*key) {
                times.retain(|t| now.duration_since(*t) < self.window);
                if times.len() >= self.max_failures as usize {
                    let oldest = times[0];
                    let secs = self
                        .window
                        .saturating_sub(now.duration_since(oldest))
                        .as_secs()
                        + 1;
                    wait = Some(wait.map_or(secs, |w: u64| w.max(secs)));
                }
            }
        }
        wait
    }

    pub fn record_failure(&self, keys: &[&str]) {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() > 100_000 {
            failures.retain(|_, times| times.iter().any(|t| now.duration_since(*t) < self.window));
        }
        for key in keys {
            failures.entry(key.to_string()).or_default().push(now);
        }
    }

    pub fn record_success(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_failures() {
        let limiter = LoginLimiter::new(2, Duration::from_secs(60));
        assert!(limiter.blocked(&["a"]).is_none());
        limiter.record_failure(&["a"]);
        limiter.record_failure(&["a"]);
        let wait = limiter.blocked(&["a", "b"]).unwrap();
        assert!(wait > 0 && wait <= 61);
        assert!(limiter.blocked(&["b"]).is_none());
        limiter.record_success("a");
        assert!(limiter.blocked(&["a"]).is_none());
    }
}
