//! What the guard observes of each request below the API's base path (REST calls and MCP
//! tool calls alike): counts by operation, status and credential scheme, latency by
//! operation and scheme, refusals by reason, rate-limit decisions by family. Labels are
//! bounded: operations come from the spec, never ids from a path.
//!
//! The hot path takes a read lock and bumps atomics; only a series' first sample takes the
//! write lock.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        RwLock,
    },
    time::Duration,
};

use videovector_api_spec::dto::rate_limits::RateLimitFamily;

use super::exposition::{Exposition, Kind};
pub use crate::request_context::Scheme;

/// Latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    /// Samples per bucket (not cumulative); above the last bound only in `count`.
    buckets: [AtomicU64; BUCKETS.len()],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// A map of series that grows on a series' first sample.
struct Series<K, V> {
    map: RwLock<HashMap<K, V>>,
}

impl<K: std::hash::Hash + Eq + Copy, V: Default> Series<K, V> {
    fn new() -> Self {
        Series {
            map: RwLock::new(HashMap::new()),
        }
    }

    fn with(&self, key: K, f: impl Fn(&V)) {
        if let Some(value) = self.map.read().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return f(value);
        }
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        f(map.entry(key).or_default());
    }

    fn each(&self, mut f: impl FnMut(&K, &V)) {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        for (key, value) in map.iter() {
            f(key, value);
        }
    }
}

/// The request metrics of one server.
pub struct RequestMetrics {
    /// Every operation of the spec by index, then `unmatched`.
    operations: Vec<String>,
    index: HashMap<String, u16>,
    counts: Series<(u16, Scheme, u16), AtomicU64>,
    durations: Series<(u16, Scheme), Histogram>,
    refusals: Series<&'static str, AtomicU64>,
    rate_limits: Series<(RateLimitFamily, bool), AtomicU64>,
}

impl RequestMetrics {
    pub fn new<'a>(operation_ids: impl IntoIterator<Item = &'a str>) -> RequestMetrics {
        let mut operations: Vec<String> = operation_ids.into_iter().map(str::to_string).collect();
        operations.sort();
        operations.push("unmatched".into());
        let index = operations
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), i as u16))
            .collect();
        RequestMetrics {
            operations,
            index,
            counts: Series::new(),
            durations: Series::new(),
            refusals: Series::new(),
            rate_limits: Series::new(),
        }
    }

    /// Records an answer to a request of `operation` (`unmatched` for none): its status,
    /// how long it took, and for a refusal of the credential (401, 403) its problem code.
    pub fn observe(
        &self,
        operation: &str,
        scheme: Scheme,
        status: u16,
        elapsed: Duration,
        refusal: Option<&'static str>,
    ) {
        let unmatched = (self.operations.len() - 1) as u16;
        let op = self.index.get(operation).copied().unwrap_or(unmatched);
        self.counts.with((op, scheme, status), |n| {
            n.fetch_add(1, Ordering::Relaxed);
        });
        self.durations.with((op, scheme), |h| h.observe(elapsed));
        if let Some(reason) = refusal.filter(|_| matches!(status, 401 | 403)) {
            self.refusals.with(reason, |n| {
                n.fetch_add(1, Ordering::Relaxed);
            });
        }
    }

    /// Records a rate-limit decision in `family`.
    pub fn rate_limit(&self, family: RateLimitFamily, allowed: bool) {
        self.rate_limits.with((family, allowed), |n| {
            n.fetch_add(1, Ordering::Relaxed);
        });
    }

    pub fn write(&self, out: &mut Exposition) {
        let counts = "videovector_http_requests_total";
        out.metric(
            counts,
            Kind::Counter,
            "Answers by operation (spec operationId, `unmatched` for none), status and credential scheme.",
        );
        self.counts.each(|(op, scheme, status), n| {
            let status = status.to_string();
            out.sample(
                counts,
                &[
                    ("operation", &self.operations[*op as usize]),
                    ("status", &status),
                    ("scheme", scheme.name()),
                ],
                n.load(Ordering::Relaxed) as f64,
            );
        });
        let durations = "videovector_http_request_duration_seconds";
        out.metric(
            durations,
            Kind::Histogram,
            "Time from the guard receiving a request to its answer, by operation and scheme.",
        );
        self.durations.each(|(op, scheme), h| {
            let buckets: Vec<(f64, u64)> = BUCKETS
                .iter()
                .zip(&h.buckets)
                .map(|(bound, n)| (*bound, n.load(Ordering::Relaxed)))
                .collect();
            out.histogram(
                durations,
                &[
                    ("operation", &self.operations[*op as usize]),
                    ("scheme", scheme.name()),
                ],
                &buckets,
                h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
                h.count.load(Ordering::Relaxed),
            );
        });
        let refusals = "videovector_auth_refusals_total";
        out.metric(
            refusals,
            Kind::Counter,
            "401 and 403 answers by problem code (invalid_api_key, insufficient_scope, ...).",
        );
        self.refusals.each(|reason, n| {
            out.sample(
                refusals,
                &[("reason", reason)],
                n.load(Ordering::Relaxed) as f64,
            );
        });
        let decisions = "videovector_rate_limit_decisions_total";
        out.metric(
            decisions,
            Kind::Counter,
            "Rate-limit checks by family and decision (allowed, refused).",
        );
        self.rate_limits.each(|(family, allowed), n| {
            let decision = if *allowed { "allowed" } else { "refused" };
            out.sample(
                decisions,
                &[("family", family.as_str()), ("decision", decision)],
                n.load(Ordering::Relaxed) as f64,
            );
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_timed_and_refusals_named() {
        let metrics = RequestMetrics::new(["index_search", "index_list"]);
        let fast = Duration::from_micros(700);
        metrics.observe("index_search", Scheme::ApiKey, 200, fast, None);
        let slow = Duration::from_millis(3);
        metrics.observe("index_search", Scheme::ApiKey, 200, slow, None);
        let refused = Some("invalid_api_key");
        metrics.observe("no_such", Scheme::None, 401, fast, refused);
        metrics.rate_limit(RateLimitFamily::Search, false);
        let mut out = Exposition::default();
        metrics.write(&mut out);
        let text = out.finish();
        for line in [
            "videovector_http_requests_total{operation=\"index_search\",status=\"200\",scheme=\"api_key\"} 2",
            "videovector_http_requests_total{operation=\"unmatched\",status=\"401\",scheme=\"none\"} 1",
            "videovector_http_request_duration_seconds_bucket{operation=\"index_search\",scheme=\"api_key\",le=\"0.001\"} 1",
            "videovector_http_request_duration_seconds_bucket{operation=\"index_search\",scheme=\"api_key\",le=\"0.005\"} 2",
            "videovector_http_request_duration_seconds_count{operation=\"index_search\",scheme=\"api_key\"} 2",
            "videovector_auth_refusals_total{reason=\"invalid_api_key\"} 1",
            "videovector_rate_limit_decisions_total{family=\"search\",decision=\"refused\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
