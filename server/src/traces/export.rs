//! The OTLP/HTTP span exporter, sending through the server's own HTTP client (reqwest on
//! Tokio): the SDK batches spans on a thread of its own, which has no Tokio runtime, so each
//! export is handed to the runtime the server started on.

use std::{collections::BTreeMap, time::Duration};

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};

/// How long one export may take before it is abandoned (the spans in it are dropped).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The exporter posting protobuf to `url` (the collector's `/v1/traces`) with `headers`.
pub fn span_exporter(
    url: &str,
    headers: &BTreeMap<String, String>,
) -> anyhow::Result<opentelemetry_otlp::SpanExporter> {
    let client = reqwest::Client::builder()
        .timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| anyhow::anyhow!("building the OTLP client: {e}"))?;
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| anyhow::anyhow!("traces are exported from a Tokio runtime"))?;
    opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .with_timeout(EXPORT_TIMEOUT)
        .with_headers(headers.clone().into_iter().collect())
        .with_http_client(OnRuntime { client, runtime })
        .build()
        .map_err(|e| anyhow::anyhow!("traces.otlp_endpoint: {e}"))
}

/// reqwest, driven by the server's runtime whatever thread asks.
#[derive(Debug)]
struct OnRuntime {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for OnRuntime {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        self.runtime
            .spawn(async move {
                let answer = client.execute(request).await?;
                let mut response = Response::builder().status(answer.status());
                if let Some(headers) = response.headers_mut() {
                    *headers = answer.headers().clone();
                }
                let body = answer.bytes().await?;
                Ok::<_, HttpError>(response.body(body)?)
            })
            .await?
    }
}
