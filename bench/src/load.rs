//! Closed-loop load: a fixed number of concurrent workers, each sending its next request as
//! soon as the previous answered, for a fixed duration; latencies of every request kept.

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

/// Latency and throughput of one measured series.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Stats {
    pub requests: usize,
    pub errors: usize,
    pub requests_per_second: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
}

impl Stats {
    pub fn from_latencies(mut latencies: Vec<Duration>, errors: usize, elapsed: Duration) -> Stats {
        latencies.sort();
        let at = |q: f64| {
            if latencies.is_empty() {
                return 0.0;
            }
            let i = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
            latencies[i].as_secs_f64() * 1e6
        };
        Stats {
            requests: latencies.len(),
            errors,
            requests_per_second: latencies.len() as f64 / elapsed.as_secs_f64().max(1e-9),
            p50_us: at(0.50),
            p99_us: at(0.99),
            p999_us: at(0.999),
        }
    }
}

/// Runs `request(i)` from `concurrency` workers for `duration`. A request returns whether
/// it succeeded; failures are counted, not timed.
pub async fn run<F, Fut>(concurrency: usize, duration: Duration, request: F) -> Stats
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let request = Arc::new(request);
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let request = request.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            let mut i = worker;
            while Instant::now() < deadline {
                let sent = Instant::now();
                if request(i).await {
                    latencies.push(sent.elapsed());
                } else {
                    errors += 1;
                }
                i += concurrency;
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers {
        if let Ok((l, e)) = worker.await {
            latencies.extend(l);
            errors += e;
        }
    }
    Stats::from_latencies(latencies, errors, start.elapsed())
}

/// Times `f` sequentially `n` times (for in-process baselines).
/// The run with the median requests/s.
pub fn median_by_throughput(mut runs: Vec<Stats>) -> Stats {
    runs.sort_by(|a, b| a.requests_per_second.total_cmp(&b.requests_per_second));
    runs.swap_remove(runs.len() / 2)
}

pub fn time_each(n: usize, mut f: impl FnMut(usize)) -> Stats {
    let start = Instant::now();
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        f(i);
        latencies.push(t.elapsed());
    }
    Stats::from_latencies(latencies, 0, start.elapsed())
}

/// One GET with one header: whether it answered 2xx and its body was read whole.
pub async fn get_ok(http: &reqwest::Client, url: &str, header: (&str, &str)) -> bool {
    match http.get(url).header(header.0, header.1).send().await {
        Ok(r) => {
            let ok = r.status().is_success();
            ok & r.bytes().await.is_ok()
        }
        Err(_) => false,
    }
}
