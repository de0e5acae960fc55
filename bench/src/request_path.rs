//! `request-path`: what the layers every request passes for the sake of connections and
//! fairness cost, each against the same run without it, in this process.
//!
//! - **Connection keeping** (`http::keep_alive`: an unread body drained after the answer,
//!   or `Connection: close`; `http::lingering`: a closing connection read out first) and
//!   **client addresses** (`client_address::find_client`, the trusted-proxy rule): two tiny
//!   poem servers on loopback with the same two routes, one bare (plain `TcpAcceptor`, no
//!   layer), one with the layers as `http::routes` installs them. Loaded with GETs, and with
//!   POSTs of a 4 KiB body refused before it is read (the case the layers exist for: on the
//!   bare server such a connection may be dropped, which shows as errors).
//! - **Request ids** (`http::request_id::assign`, with its span, and `request_context`'s
//!   task-local): a third server with those on top of the connection layers, measured
//!   against the layered one (the access log off, as no subscriber listens here).
//! - **Searches on the blocking pool** (`SearchEngine::search_off_thread`): the same
//!   queries, run on the async workers and through `spawn_blocking`, with a 1 ms timer
//!   task beside them whose lateness is what every other request on those workers waits.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use poem::{
    get, handler, http::StatusCode, listener::TcpAcceptor, post, EndpointExt, Route, Server,
};
use videovector_server::{
    client_address::{find_client, TrustedProxies},
    http::{keep_alive::keep_connections_usable, lingering::LingeringAcceptor, request_id},
    request_context,
    search::{query::SearchQuery, SearchEngine},
};

use crate::{load, report::Report, Options};

const BARE: &str = "bare poem server (baseline)";
const LAYERED: &str = "with keep-alive, lingering close and client address";
const WITH_IDS: &str = "with those and request ids (id, span, request context)";
const REFUSED_BODY: usize = 4 * 1024;

#[handler]
fn ping() -> &'static str {
    "ok"
}

/// Refuses without reading the body, as an authentication failure does.
#[handler]
fn refuse() -> StatusCode {
    StatusCode::UNAUTHORIZED
}

/// Which layers a server has.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layers {
    Bare,
    Connection,
    RequestIds,
}

/// Serves the two routes with `layers` on a free loopback port.
async fn serve(layers: Layers) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let routes = Route::new()
        .at("/ping", get(ping))
        .at("/refuse", post(refuse));
    let trusted = Arc::new(TrustedProxies::from_config(&[])?);
    let acceptor = LingeringAcceptor(TcpAcceptor::from_tokio(listener)?);
    match layers {
        Layers::Bare => {
            let acceptor = acceptor.0;
            tokio::spawn(Server::new_with_acceptor(acceptor).run(routes));
        }
        Layers::Connection => {
            let app = routes
                .around(move |next, req| find_client(next, req, trusted.clone()))
                .around(keep_connections_usable);
            tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
        }
        Layers::RequestIds => {
            let app = routes
                .around(request_context::enter)
                .around(move |next, req| find_client(next, req, trusted.clone()))
                .around(|next, req| request_id::assign(next, req, false))
                .around(keep_connections_usable);
            tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
        }
    }
    Ok(addr)
}

pub async fn run(report: &mut Report, o: &Options) -> anyhow::Result<()> {
    connection_layers(report, o).await?;
    blocking_searches(report, o).await
}

async fn connection_layers(report: &mut Report, o: &Options) -> anyhow::Result<()> {
    let servers = [
        (BARE, serve(Layers::Bare).await?),
        (LAYERED, serve(Layers::Connection).await?),
        (WITH_IDS, serve(Layers::RequestIds).await?),
    ];
    let body = Arc::new(vec![b'x'; REFUSED_BODY]);
    for (what, path) in [
        ("GET /ping", "/ping"),
        ("POST 4 KiB, refused unread", "/refuse"),
    ] {
        // Rounds in turn, each series keeping its median, as in `auth`.
        let mut rounds: Vec<Vec<load::Stats>> = vec![Vec::new(); servers.len()];
        for _ in 0..3 {
            for ((_, addr), measured) in servers.iter().zip(&mut rounds) {
                let http = reqwest::Client::new();
                let url = format!("http://{addr}{path}");
                let body = body.clone();
                let stats = load::run(o.concurrency, o.duration / 3, move |_| {
                    let (http, url, body) = (http.clone(), url.clone(), body.clone());
                    async move {
                        let request = if url.ends_with("/refuse") {
                            http.post(&url).body(body.to_vec())
                        } else {
                            http.get(&url)
                        };
                        match request.send().await {
                            Ok(r) => r.bytes().await.is_ok(),
                            Err(_) => false,
                        }
                    }
                })
                .await;
                measured.push(stats);
            }
        }
        for ((name, _), measured) in servers.iter().zip(rounds) {
            let series = format!("{what}: {name}");
            // Each against the one below it: the connection layers against the bare
            // server, request ids against the connection layers.
            let below = match *name {
                LAYERED => Some(BARE),
                WITH_IDS => Some(LAYERED),
                _ => None,
            };
            let baseline = below.map(|b| format!("{what}: {b}"));
            let against = baseline.as_deref();
            let stats = load::median_by_throughput(measured);
            report.series("request-path", &series, o.concurrency, stats, against);
        }
    }
    Ok(())
}

async fn blocking_searches(report: &mut Report, o: &Options) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let engine = Arc::new(SearchEngine::new(dir.path().to_path_buf())?);
    crate::scenarios::index_corpus(&engine, o.segments.min(100_000))?;
    let queries = Arc::new(crate::scenarios::queries());
    const INLINE: &str = "search on the async workers (baseline)";
    const OFF_THREAD: &str = "search on the blocking pool (search_off_thread)";
    for (name, off_thread) in [(INLINE, false), (OFF_THREAD, true)] {
        let stop = Arc::new(AtomicBool::new(false));
        let lateness = Arc::new(Mutex::new(Vec::new()));
        let timer = {
            let (stop, lateness) = (stop.clone(), lateness.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let asked = Instant::now();
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    let late = asked.elapsed().saturating_sub(Duration::from_millis(1));
                    lateness.lock().unwrap().push(late);
                }
            })
        };
        let (engine, queries) = (engine.clone(), queries.clone());
        let stats = load::run(o.concurrency, o.duration, move |i| {
            let (engine, queries) = (engine.clone(), queries.clone());
            async move {
                // As a request arriving: the task gives way first, so the searches of the
                // 32 clients interleave on the workers as requests do.
                tokio::task::yield_now().await;
                let q = SearchQuery {
                    text: queries[i % queries.len()].clone(),
                    top_k: 10,
                    ..Default::default()
                };
                if off_thread {
                    engine
                        .search_off_thread(vec![("bench".into(), q)])
                        .await
                        .is_ok()
                } else {
                    engine.search("bench", &q).is_ok()
                }
            }
        })
        .await;
        stop.store(true, Ordering::Relaxed);
        let _ = timer.await;
        let against = (name != INLINE).then_some(INLINE);
        report.series("request-path", name, o.concurrency, stats, against);
        let late = load::Stats::from_latencies(
            std::mem::take(&mut *lateness.lock().unwrap()),
            0,
            o.duration,
        );
        report.figure(
            "request-path",
            &format!("1 ms timer lateness p99 beside it: {name}"),
            late.p99_us / 1000.0,
            "ms",
            "",
            None,
        );
    }
    Ok(())
}
