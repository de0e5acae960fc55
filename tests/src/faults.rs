//! A fault-injecting HTTP/1.1 proxy for tests of the client's retries: it forwards each
//! request to a real server, except those a test scripted a fault for, which it answers
//! with a status of its choosing, or drops the connection of before or after forwarding
//! (the worst case for a write: the server acted, the caller never heard). Faults live here,
//! in the test harness, never in the server.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// What the proxy does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Forward it and return the answer.
    Pass,
    /// Answer with this status and `Retry-After` (seconds), without forwarding: the
    /// problem our server sends for a 429 or 503, a gateway's text for another status.
    Answer {
        status: u16,
        retry_after: Option<u64>,
    },
    /// Close the connection without forwarding or answering.
    DropBeforeForwarding,
    /// Forward it, let the server act, then close the connection without answering.
    DropAfterForwarding,
}

/// A request the proxy received, and what it did with it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub idempotency_key: Option<String>,
    pub fault: Fault,
}

#[derive(Default)]
struct Shared {
    script: Mutex<VecDeque<Fault>>,
    seen: Mutex<Vec<SeenRequest>>,
}

/// A running proxy in front of one server.
pub struct FaultyProxy {
    /// Its root URL: build clients with it instead of the server's.
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultyProxy {
    /// Starts a proxy to `upstream` (a server's root URL) on 127.0.0.1.
    pub async fn start(upstream: &str) -> FaultyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let shared = Arc::new(Shared::default());
        let upstream = upstream.trim_end_matches('/').to_string();
        let http = reqwest::Client::new();
        let task = tokio::spawn({
            let shared = shared.clone();
            async move {
                while let Ok((socket, _)) = listener.accept().await {
                    tokio::spawn(serve(
                        socket,
                        shared.clone(),
                        upstream.clone(),
                        http.clone(),
                    ));
                }
            }
        });
        FaultyProxy { url, shared, task }
    }

    /// The faults for the next requests, in order; requests after them pass.
    pub fn script(&self, faults: impl IntoIterator<Item = Fault>) {
        self.shared.script.lock().unwrap().extend(faults);
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<SeenRequest> {
        self.shared.seen.lock().unwrap().clone()
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One request's head and body, as read off a connection.
struct Incoming {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

async fn read_request(socket: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<Incoming> {
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buffer.len() > 64 * 1024 {
            return None;
        }
        let mut chunk = [0u8; 8192];
        let read = socket.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8(buffer[..head_end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let (method, target) = (
        request_line.next()?.to_string(),
        request_line.next()?.to_string(),
    );
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        let mut chunk = [0u8; 8192];
        let read = socket.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
    let body = buffer[head_end..head_end + length].to_vec();
    buffer.drain(..head_end + length);
    Some(Incoming {
        method,
        target,
        headers,
        body,
    })
}

async fn serve(
    mut socket: TcpStream,
    shared: Arc<Shared>,
    upstream: String,
    http: reqwest::Client,
) {
    let mut buffer = Vec::new();
    while let Some(request) = read_request(&mut socket, &mut buffer).await {
        let fault = shared
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Fault::Pass);
        shared.seen.lock().unwrap().push(SeenRequest {
            method: request.method.clone(),
            target: request.target.clone(),
            idempotency_key: request
                .headers
                .iter()
                .find(|(name, _)| name == "idempotency-key")
                .map(|(_, value)| value.clone()),
            fault: fault.clone(),
        });
        let answer = match fault {
            Fault::DropBeforeForwarding => return,
            Fault::Answer {
                status,
                retry_after,
            } => {
                let retry_after = retry_after
                    .map(|s| format!("retry-after: {s}\r\n"))
                    .unwrap_or_default();
                let (content_type, body) = injected_body(status);
                format!(
                    "HTTP/1.1 {status} Injected\r\n{retry_after}content-type: {content_type}\r\n\
                     content-length: {}\r\n\r\n{body}",
                    body.len()
                )
                .into_bytes()
            }
            Fault::Pass | Fault::DropAfterForwarding => {
                let Some(answer) = forward(&http, &upstream, request).await else {
                    return;
                };
                if fault == Fault::DropAfterForwarding {
                    return;
                }
                answer
            }
        };
        if socket.write_all(&answer).await.is_err() {
            return;
        }
    }
}

/// The body an injected answer carries: the problem our server sends for a 429 or a 503
/// (`rate_limited`, `unavailable`), a gateway's plain text for any other status.
fn injected_body(status: u16) -> (&'static str, String) {
    let code = match status {
        429 => "rate_limited",
        503 => "unavailable",
        _ => return ("text/plain", format!("{status} from a gateway")),
    };
    let problem = serde_json::json!({
        "type": format!("urn:videovector:problem:{code}"),
        "title": "Injected",
        "status": status,
        "code": code,
        "detail": "injected by the test proxy",
    });
    ("application/problem+json", problem.to_string())
}

/// Sends `request` to the server and writes its answer as HTTP/1.1 bytes.
async fn forward(http: &reqwest::Client, upstream: &str, request: Incoming) -> Option<Vec<u8>> {
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).ok()?;
    let mut out = http.request(method, format!("{upstream}{}", request.target));
    for (name, value) in &request.headers {
        if !matches!(
            name.as_str(),
            "host" | "connection" | "content-length" | "transfer-encoding"
        ) {
            out = out.header(name, value);
        }
    }
    let answer = out.body(request.body).send().await.ok()?;
    let mut bytes = format!("HTTP/1.1 {}\r\n", answer.status()).into_bytes();
    for (name, value) in answer.headers() {
        if !matches!(
            name.as_str(),
            "connection" | "content-length" | "transfer-encoding"
        ) {
            bytes.extend_from_slice(format!("{name}: ").as_bytes());
            bytes.extend_from_slice(value.as_bytes());
            bytes.extend_from_slice(b"\r\n");
        }
    }
    let body = answer.bytes().await.ok()?;
    bytes.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    bytes.extend_from_slice(&body);
    Some(bytes)
}
