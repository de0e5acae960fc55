//! A kept-alive HTTP/1.1 connection is never ended without saying so.
//!
//! A refusal (401, 403, 404, 413...) is often answered before its request body was read. hyper
//! then reads only what has already arrived of that body; if the rest is still on its way, it
//! closes the connection after the answer *without* `Connection: close`, and a pooled client
//! that sends its next request on that connection sees "server disconnected" (httpx does not
//! retry). So, around every route, the request body is tracked: when the answer is ready and
//! the body was not read to its end, the rest is read and thrown away, up to
//! [`DRAIN_LIMIT_BYTES`] and [`DRAIN_TIME`], and the connection stays usable; a body that is
//! larger, slower, or waiting for `100 Continue` is not read, and the answer says
//! `Connection: close` instead, so the client knows not to reuse it. HTTP/2 needs neither: an
//! unread stream is reset on its own and the connection lives on.
//!
//! Closing with unread bytes in the socket would make the kernel answer them with a reset
//! that can destroy the answer before the client reads it; [`super::lingering`] handles that.

use std::{
    io,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::{combinators::BoxBody, BodyExt};
use poem::{
    http::{header, HeaderValue, Version},
    Body, Endpoint, IntoResponse, Request, Response,
};

/// At most this much of an unread body is read to keep its connection.
pub const DRAIN_LIMIT_BYTES: u64 = 4 * 1024 * 1024;
/// For at most this long; a slower body costs its connection instead.
pub const DRAIN_TIME: Duration = Duration::from_secs(1);

type SharedBody = Arc<Mutex<Tracked>>;

/// The request body, shared between the request (which may read it or drop it) and this
/// middleware (which finishes it).
struct Tracked {
    body: BoxBody<Bytes, io::Error>,
    /// The body said it ended, or failed.
    finished: bool,
}

/// The request's view of a [`Tracked`] body.
struct TrackedBody(SharedBody);

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let mut tracked = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if tracked.finished {
            return Poll::Ready(None);
        }
        let polled = Pin::new(&mut tracked.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            tracked.finished = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        let tracked = self.0.lock().unwrap_or_else(|e| e.into_inner());
        tracked.finished || tracked.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let tracked = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if tracked.finished {
            SizeHint::with_exact(0)
        } else {
            tracked.body.size_hint()
        }
    }
}

/// The middleware: wraps the body, calls `next`, then drains what was left unread or marks
/// the answer `Connection: close`.
pub async fn keep_connections_usable<E: Endpoint>(
    next: E,
    mut req: Request,
) -> poem::Result<Response> {
    if req.version() != Version::HTTP_11 && req.version() != Version::HTTP_10 {
        return Ok(answer(next.call(req).await));
    }
    let expects_continue = req
        .headers()
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let shared: SharedBody = Arc::new(Mutex::new(Tracked {
        body: req.take_body().into(),
        finished: false,
    }));
    req.set_body(Body::from(BoxBody::new(TrackedBody(shared.clone()))));
    let mut response = answer(next.call(req).await);
    let unread = {
        let mut tracked = shared.lock().unwrap_or_else(|e| e.into_inner());
        let ended = tracked.finished || tracked.body.is_end_stream();
        // Whoever holds the request's half may still poll it; it then sees an empty body.
        tracked.finished = true;
        (!ended).then(|| std::mem::take(&mut tracked.body))
    };
    if let Some(body) = unread {
        // Asking for the body after a final answer would make hyper send `100 Continue`
        // for bytes nobody wants: such a body is never read.
        let keep = !expects_continue && drained(body).await;
        if !keep {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
    Ok(response)
}

fn answer<R: IntoResponse>(result: poem::Result<R>) -> Response {
    match result {
        Ok(response) => response.into_response(),
        Err(error) => error.into_response(),
    }
}

/// Reads `body` to its end and throws it away, within [`DRAIN_LIMIT_BYTES`] (declared or
/// read) and [`DRAIN_TIME`]. True when it ended.
async fn drained(mut body: BoxBody<Bytes, io::Error>) -> bool {
    if body
        .size_hint()
        .upper()
        .is_some_and(|declared| declared > DRAIN_LIMIT_BYTES)
    {
        return false;
    }
    let read_to_end = async {
        let mut read: u64 = 0;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return false };
            if let Some(data) = frame.data_ref() {
                read += data.len() as u64;
                if read > DRAIN_LIMIT_BYTES {
                    return false;
                }
            }
        }
        true
    };
    tokio::time::timeout(DRAIN_TIME, read_to_end)
        .await
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use poem::{handler, http::StatusCode};

    use super::*;

    #[handler]
    fn refuse() -> StatusCode {
        StatusCode::UNAUTHORIZED
    }

    #[handler]
    async fn read_all(body: Vec<u8>) -> String {
        body.len().to_string()
    }

    fn post(body: Body) -> Request {
        Request::builder()
            .method(poem::http::Method::POST)
            .version(Version::HTTP_11)
            .body(body)
    }

    /// A stream body that yields `chunks` chunks of `size` bytes and then, if `stall`, never
    /// ends.
    fn streamed(chunks: usize, size: usize, stall: bool) -> Body {
        let data = futures_util::stream::iter(
            (0..chunks).map(move |_| Ok::<_, io::Error>(Bytes::from(vec![b'x'; size]))),
        );
        if stall {
            use futures_util::StreamExt;
            Body::from_bytes_stream(data.chain(futures_util::stream::pending()))
        } else {
            Body::from_bytes_stream(data)
        }
    }

    async fn call(ep: impl Endpoint + 'static, req: Request) -> Response {
        keep_connections_usable(ep, req).await.unwrap()
    }

    #[tokio::test]
    async fn an_unread_body_that_ends_is_drained_and_the_connection_kept() {
        let response = call(refuse, post(streamed(8, 64 * 1024, false))).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().get(header::CONNECTION).is_none());
    }

    #[tokio::test]
    async fn a_read_body_needs_nothing() {
        let response = call(read_all, post(streamed(3, 10, false))).await;
        assert!(response.headers().get(header::CONNECTION).is_none());
        assert_eq!(response.into_body().into_string().await.unwrap(), "30");
    }

    #[tokio::test]
    async fn a_body_that_does_not_end_in_time_closes_the_connection_with_notice() {
        let response = call(refuse, post(streamed(1, 10, true))).await;
        assert_eq!(response.headers()[header::CONNECTION], "close");
    }

    #[tokio::test]
    async fn a_body_larger_than_the_drain_limit_closes_the_connection_with_notice() {
        let chunks = (DRAIN_LIMIT_BYTES / (64 * 1024)) as usize + 1;
        let response = call(refuse, post(streamed(chunks, 64 * 1024, false))).await;
        assert_eq!(response.headers()[header::CONNECTION], "close");
        let declared = post(Body::from(vec![0u8; DRAIN_LIMIT_BYTES as usize + 1]));
        let response = call(refuse, declared).await;
        assert_eq!(response.headers()[header::CONNECTION], "close");
    }

    #[tokio::test]
    async fn a_body_waiting_for_100_continue_is_not_asked_for() {
        let mut req = post(streamed(1, 10, false));
        req.headers_mut()
            .insert(header::EXPECT, HeaderValue::from_static("100-continue"));
        let response = call(refuse, req).await;
        assert_eq!(response.headers()[header::CONNECTION], "close");
    }

    #[tokio::test]
    async fn http2_is_left_to_its_streams() {
        let mut req = post(streamed(1, 10, true));
        req.set_version(Version::HTTP_2);
        let response = call(refuse, req).await;
        assert!(response.headers().get(header::CONNECTION).is_none());
    }
}
