//! Prometheus metrics, served at `GET /metrics` on their own listener (`metrics_listen`),
//! never on the API's: they tell how busy each operation and organisation-wide queue is,
//! which is the operator's business and not a caller's, and a separate port is what a
//! firewall or a Kubernetes `NetworkPolicy` keeps to the scraper without a credential to
//! manage. Unset, nothing is collected or served.
//!
//! `requests` is counted on the request path by the guard; `sampled` is read at scrape
//! time; `exposition` writes the text format.

pub mod exposition;
pub mod requests;
pub mod sampled;

use std::sync::Arc;

use poem::{handler, web::Data, EndpointExt, Response, Route, Server};
use tokio_util::sync::CancellationToken;

use self::{exposition::Exposition, requests::RequestMetrics, sampled::Sources};

/// One server's metrics.
pub struct Metrics {
    pub requests: RequestMetrics,
    sources: Sources,
}

/// The content type of the text format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

impl Metrics {
    pub fn new(requests: RequestMetrics, sources: Sources) -> Metrics {
        Metrics { requests, sources }
    }

    /// Every metric, in the text format.
    pub async fn render(&self) -> String {
        let mut out = Exposition::default();
        self.requests.write(&mut out);
        self.sources.write(&mut out).await;
        out.finish()
    }

    /// Serves `GET /metrics` on `listener` until `shutdown`.
    pub fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        let acceptor = poem::listener::TcpAcceptor::from_tokio(listener)?;
        tokio::spawn(async move {
            let app = Route::new().at("/metrics", scrape).data(self);
            let served = Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(app, shutdown.cancelled_owned(), None)
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "metrics: the listener stopped");
            }
        });
        Ok(())
    }
}

#[handler]
async fn scrape(metrics: Data<&Arc<Metrics>>) -> Response {
    Response::builder()
        .content_type(TEXT_FORMAT)
        .body(metrics.render().await)
}
