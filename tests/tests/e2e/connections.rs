//! Connections, not only requests: a kept-alive connection is never ended without saying so
//! (the review's finding 1: a pooled client lost 1.8% of its requests after refusals that
//! carried bodies), and a client still streaming an oversized upload reads its 413.

use std::time::Duration;

use bytes::Bytes;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use videovector_api_spec::Scope;
use videovector_tests::TestServer;

/// One HTTP/1.1 answer read off a socket.
struct Answer {
    status: u16,
    /// Header names lower-cased.
    headers: Vec<(String, String)>,
}

impl Answer {
    fn closes(&self) -> bool {
        self.headers
            .iter()
            .any(|(name, value)| name == "connection" && value.eq_ignore_ascii_case("close"))
    }
}

/// Reads one answer (a `content-length` body, or none) from `socket`; `None` when the
/// connection ended first.
async fn read_answer(socket: &mut TcpStream, pending: &mut Vec<u8>) -> Option<Answer> {
    let mut buf = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(pos) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&pending[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    let length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    while pending.len() < head_end + length {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
        }
    }
    pending.drain(..head_end + length);
    Some(Answer { status, headers })
}

fn request_head(method: &str, path: &str, credential: Option<&str>, length: usize) -> String {
    let credential = credential
        .map(|key| format!("x-api-key: {key}\r\n"))
        .unwrap_or_default();
    format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
         {credential}content-length: {length}\r\n\r\n"
    )
}

/// A JSON body of about `size` bytes.
fn body_of(size: usize) -> Vec<u8> {
    format!(r#"{{"padding": "{}"}}"#, "x".repeat(size)).into_bytes()
}

/// Refusals answered before their body is read, on one kept-alive connection: after each, the
/// connection either answers the next request or the refusal said `Connection: close`. A body
/// sent at once is drained and the connection kept; a body held back until the answer came
/// costs the connection, with notice. Seen failing before: the held-back case answered with
/// no `Connection: close`, and the next request on the connection got no answer.
#[tokio::test]
async fn a_refusal_never_ends_a_kept_alive_connection_silently() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let (_, read_key) = server.api_key(&org, &[Scope::Read]).await;
    let (_, write_key) = server.api_key(&org, &[Scope::Write]).await;
    let authority = server.url().trim_start_matches("http://").to_string();
    let refusals: [(&str, Option<&str>, u16); 4] = [
        ("/api/v2/runs/run_x/retry", None, 401),
        ("/api/v2/indexes", Some(&read_key), 403),
        ("/api/v2/runs/run_missing/retry", Some(&write_key), 404),
        ("/api/v2/no/such/route", Some(&write_key), 404),
    ];
    let mut socket = TcpStream::connect(&authority).await.unwrap();
    let mut pending = Vec::new();
    for round in 0..40 {
        let (path, key, status) = refusals[round % refusals.len()];
        let body = body_of(16 * 1024 * (1 + round % 16));
        let mut request = request_head("POST", path, key, body.len()).into_bytes();
        request.extend_from_slice(&body);
        socket.write_all(&request).await.unwrap();
        let answer = read_answer(&mut socket, &mut pending)
            .await
            .expect("an answer to the refusal");
        assert_eq!(answer.status, status, "POST {path}");
        assert!(
            !answer.closes(),
            "a body sent whole is drained and the connection kept (round {round})"
        );
        socket
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            .await
            .unwrap();
        let next = read_answer(&mut socket, &mut pending)
            .await
            .unwrap_or_else(|| panic!("round {round}: the connection ended silently"));
        assert_eq!(next.status, 200);
    }

    // The body held back until the answer: the server cannot drain it in time, so it says so.
    for (path, key, status) in refusals {
        let body = body_of(64 * 1024);
        let mut socket = TcpStream::connect(&authority).await.unwrap();
        let mut pending = Vec::new();
        let head = request_head("POST", path, key, body.len());
        socket.write_all(head.as_bytes()).await.unwrap();
        socket.write_all(&body[..1024]).await.unwrap();
        let answer = read_answer(&mut socket, &mut pending)
            .await
            .expect("an answer to the refusal");
        assert_eq!(answer.status, status, "POST {path}");
        let _ = socket.write_all(&body[1024..]).await;
        let _ = socket
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            .await;
        let next = read_answer(&mut socket, &mut pending).await;
        assert!(
            answer.closes() || next.is_some_and(|a| a.status == 200),
            "POST {path}: the connection ended without Connection: close"
        );
    }
    server.stop().await;
}

/// What one request of the mixed run is.
struct Mixed {
    method: reqwest::Method,
    path: String,
    key: Option<String>,
    body: Option<Vec<u8>>,
    status: u16,
}

/// A mix of answers and refusals, most with bodies of varied sizes.
fn mixed_requests(count: usize, read_key: &str, write_key: &str) -> Vec<Mixed> {
    (0..count)
        .map(|i| {
            let body = Some(body_of(512 * (1 + (i * 7919) % 200)));
            let (method, path, key, body, status) = match i % 7 {
                0 => (reqwest::Method::GET, "/indexes", Some(read_key), None, 200),
                1 => (reqwest::Method::POST, "/runs/run_x/retry", None, body, 401),
                2 => (reqwest::Method::POST, "/indexes", Some(read_key), body, 403),
                3 => (
                    reqwest::Method::POST,
                    "/runs/run_missing/retry",
                    Some(write_key),
                    body,
                    404,
                ),
                4 => (
                    reqwest::Method::POST,
                    "/indexes/idx_missing/search",
                    Some(read_key),
                    body,
                    422,
                ),
                5 => (
                    reqwest::Method::POST,
                    "/indexes",
                    Some(write_key),
                    body,
                    422,
                ),
                _ => (
                    reqwest::Method::GET,
                    "/runs/run_missing",
                    Some(read_key),
                    None,
                    404,
                ),
            };
            Mixed {
                method,
                path: path.to_string(),
                key: key.map(str::to_string),
                body,
                status,
            }
        })
        .collect()
}

/// A pooled HTTP/1.1 client (reqwest's, as an SDK user holds one) and an h2c connection each
/// send a mix of 2,000 requests, eight at a time: every one is answered with its status, none
/// is lost to a closed connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_client_loses_no_request_in_a_mixed_run() {
    use futures_util::StreamExt;
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let (_, read_key) = server.api_key(&org, &[Scope::Read]).await;
    let (_, write_key) = server.api_key(&org, &[Scope::Write]).await;
    let mix = mixed_requests(2_000, &read_key, &write_key);

    let pooled = reqwest::Client::builder()
        .pool_max_idle_per_host(8)
        .build()
        .unwrap();
    let lost = futures_util::stream::iter(&mix)
        .map(|request| {
            let pooled = pooled.clone();
            let url = server.api(&request.path);
            async move {
                let mut builder = pooled.request(request.method.clone(), url);
                if let Some(key) = &request.key {
                    builder = builder.header("x-api-key", key);
                }
                if let Some(body) = &request.body {
                    builder = builder
                        .header("content-type", "application/json")
                        .body(body.clone());
                }
                match builder.send().await {
                    Ok(answer) => {
                        assert_eq!(answer.status().as_u16(), request.status, "{}", request.path);
                        answer.bytes().await.is_err()
                    }
                    Err(_) => true,
                }
            }
        })
        .buffer_unordered(8)
        .filter(|lost| std::future::ready(*lost))
        .count()
        .await;
    assert_eq!(lost, 0, "requests of the pooled HTTP/1.1 client lost");

    let authority = server.url().trim_start_matches("http://").to_string();
    let tcp = TcpStream::connect(&authority).await.unwrap();
    let (h2, connection) = h2::client::handshake(tcp).await.unwrap();
    let driver = tokio::spawn(connection);
    let lost = futures_util::stream::iter(&mix)
        .map(|request| {
            let h2 = h2.clone();
            let authority = authority.clone();
            async move {
                let mut head = http::Request::builder()
                    .method(request.method.as_str())
                    .uri(format!("http://{authority}/api/v2{}", request.path));
                if let Some(key) = &request.key {
                    head = head.header("x-api-key", key);
                }
                if request.body.is_some() {
                    head = head.header("content-type", "application/json");
                }
                let Ok(mut h2) = h2.ready().await else {
                    return true;
                };
                let Ok((answer, mut stream)) =
                    h2.send_request(head.body(()).unwrap(), request.body.is_none())
                else {
                    return true;
                };
                if let Some(body) = &request.body {
                    // The window may be smaller than the body: the answer may come first.
                    let _ = stream.send_data(Bytes::from(body.clone()), true);
                }
                let Ok(answer) = answer.await else {
                    return true;
                };
                assert_eq!(answer.status().as_u16(), request.status, "{}", request.path);
                let mut body = answer.into_body();
                while let Some(chunk) = body.data().await {
                    let Ok(chunk) = chunk else { return true };
                    let _ = body.flow_control().release_capacity(chunk.len());
                }
                false
            }
        })
        .buffer_unordered(8)
        .filter(|lost| std::future::ready(*lost))
        .count()
        .await;
    assert_eq!(lost, 0, "requests on the h2c connection lost");
    drop(h2);
    driver.abort();
    server.stop().await;
}

/// A client that sends its whole oversized upload (chunked, or with its length declared)
/// before reading, as httpx and curl do, reads the 413: the server goes on reading what is
/// sent after its answer for a moment instead of closing on it, which would fail the
/// client's writes with a reset (seen: once in six uploads under load).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_upload_reads_its_413() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let (_, write_key) = server.api_key(&org, &[Scope::Write]).await;
    let authority = server.url().trim_start_matches("http://").to_string();
    const TOTAL: usize = 40 * 1024 * 1024;
    for attempt in 0..4 {
        let chunked = attempt % 2 == 0;
        let mut socket = TcpStream::connect(&authority).await.unwrap();
        let framing = if chunked {
            "transfer-encoding: chunked".to_string()
        } else {
            format!("content-length: {TOTAL}")
        };
        let head = format!(
            "POST /api/v2/indexes/idx_big/segments HTTP/1.1\r\nhost: 127.0.0.1\r\n\
             content-type: application/json\r\nx-api-key: {write_key}\r\n{framing}\r\n\r\n"
        );
        let chunk = vec![b' '; 256 * 1024];
        let framed = if chunked {
            [
                format!("{:x}\r\n", chunk.len()).into_bytes(),
                chunk,
                b"\r\n".to_vec(),
            ]
            .concat()
        } else {
            chunk
        };
        let sent = async {
            socket.write_all(head.as_bytes()).await?;
            for _ in 0..TOTAL / (256 * 1024) {
                socket.write_all(&framed).await?;
            }
            if chunked {
                socket.write_all(b"0\r\n\r\n").await?;
            }
            Ok::<_, std::io::Error>(())
        }
        .await;
        assert!(
            sent.is_ok(),
            "attempt {attempt} (chunked: {chunked}): sending failed: {sent:?}"
        );
        let mut received = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(30), socket.read_to_end(&mut received))
            .await
            .expect("the server ends the connection");
        let text = String::from_utf8_lossy(&received);
        assert!(
            text.starts_with("HTTP/1.1 413") && read.is_ok(),
            "attempt {attempt} (chunked: {chunked}): read {read:?}, {:?}",
            &text[..text.len().min(200)]
        );
    }
    server.stop().await;
}
