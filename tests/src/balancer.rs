//! A round-robin HTTP balancer for tests: every request, not every connection, goes to the
//! next instance in turn, as a layer-7 load balancer without stickiness sends them. Clients
//! that pool one connection (rmcp's, httpx) still reach each instance alternately.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use futures_util::TryStreamExt;
use poem::{
    http::{header, StatusCode},
    listener::{Acceptor, Listener, TcpListener},
    Body, Endpoint, Request, Response,
};

/// Headers that belong to one hop, not to the request or answer.
const HOP_BY_HOP: [header::HeaderName; 5] = [
    header::CONNECTION,
    header::HOST,
    header::TRANSFER_ENCODING,
    header::CONTENT_LENGTH,
    header::UPGRADE,
];

/// A running balancer.
pub struct RoundRobin {
    /// Its base URL: send requests here.
    pub url: String,
    /// How many requests each instance answered, in the order given.
    pub answered: Arc<Vec<AtomicUsize>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Forward {
    instances: Arc<Vec<String>>,
    next: Arc<AtomicUsize>,
    answered: Arc<Vec<AtomicUsize>>,
    http: reqwest::Client,
}

impl Endpoint for Forward {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let which = self.next.fetch_add(1, Ordering::SeqCst) % self.instances.len();
        let target = format!(
            "{}{}",
            self.instances[which],
            req.uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/")
        );
        let mut out = self.http.request(req.method().clone(), target);
        for (name, value) in req.headers() {
            if !HOP_BY_HOP.contains(name) {
                out = out.header(name, value);
            }
        }
        let body = req.into_body().into_bytes().await?;
        let answer = match out.body(body).send().await {
            Ok(answer) => answer,
            Err(_) => return Ok(StatusCode::BAD_GATEWAY.into()),
        };
        self.answered[which].fetch_add(1, Ordering::SeqCst);
        let mut response = Response::builder().status(answer.status());
        for (name, value) in answer.headers() {
            if !HOP_BY_HOP.contains(name) {
                response = response.header(name, value);
            }
        }
        Ok(response.body(Body::from_bytes_stream(
            answer.bytes_stream().map_err(std::io::Error::other),
        )))
    }
}

impl RoundRobin {
    /// Listens on 127.0.0.1 and forwards to `instances` (base URLs) in turn.
    pub async fn start(instances: Vec<String>) -> RoundRobin {
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("the balancer binds");
        let addr = acceptor.local_addr()[0]
            .as_socket_addr()
            .copied()
            .expect("a TCP address");
        let answered: Arc<Vec<AtomicUsize>> =
            Arc::new(instances.iter().map(|_| AtomicUsize::new(0)).collect());
        let forward = Forward {
            instances: Arc::new(instances),
            next: Arc::new(AtomicUsize::new(0)),
            answered: answered.clone(),
            http: reqwest::Client::new(),
        };
        let task = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(forward).await;
        });
        RoundRobin {
            url: format!("http://{addr}"),
            answered,
            task,
        }
    }

    /// Requests each instance answered.
    pub fn counts(&self) -> Vec<usize> {
        self.answered
            .iter()
            .map(|n| n.load(Ordering::SeqCst))
            .collect()
    }
}

impl Drop for RoundRobin {
    fn drop(&mut self) {
        self.task.abort();
    }
}
