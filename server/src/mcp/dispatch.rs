//! Runs a tool call as its REST operation, in process: the request is built in memory and
//! handed to the same endpoint chain a REST request passes through (the guard with the
//! spec's schemes and scopes, the request checks, `Idempotency-Key`, the handler and its
//! services). No socket, no HTTP client: the one behaviour of each operation serves both.

use std::sync::Arc;

use poem::{
    endpoint::BoxEndpoint,
    http::{HeaderName, HeaderValue, Uri},
    Endpoint, Request, Response,
};
use poem_openapi::types::ToJSON;
use serde_json::Value;
use videovector_api_spec::{security::ClientAddress, spec::BASE_PATH, ApiError, ErrorCode};

use super::catalog::ApiCall;

/// The credential header an MCP request carried, sent on with each call it makes, and the
/// client's address it came from (a key's `allowed_cidrs` hold for tool calls too).
#[derive(Clone)]
pub struct Credential {
    pub name: HeaderName,
    pub value: HeaderValue,
    pub client: Option<ClientAddress>,
}

/// What an operation answered.
#[derive(Debug)]
pub struct ApiAnswer {
    pub status: u16,
    /// The JSON body, or `Null` for none.
    pub body: Value,
    /// The answer's `Retry-After`, in seconds (a 429, a 503).
    pub retry_after: Option<u64>,
}

/// A call refused before it reached the API, answered as the API answers.
fn refused(problem: ApiError) -> ApiAnswer {
    ApiAnswer {
        status: problem.status().as_u16(),
        body: serde_json::to_value(problem.problem.to_json()).unwrap_or_default(),
        retry_after: None,
    }
}

/// The API's endpoint chain, for tool calls.
#[derive(Clone)]
pub struct Dispatch {
    /// Takes the full path (`/api/v2/...`), as a REST request would.
    api: Arc<BoxEndpoint<'static, Response>>,
}

impl Dispatch {
    pub fn new(api: Arc<BoxEndpoint<'static, Response>>) -> Dispatch {
        Dispatch { api }
    }

    pub async fn call(&self, credential: &Credential, call: &ApiCall) -> ApiAnswer {
        // Built fallibly: poem's `uri_str` panics on a URI it cannot parse.
        let uri = match Uri::try_from(format!("{BASE_PATH}{}", call.path_and_query)) {
            Ok(uri) => uri,
            Err(e) => {
                return refused(ApiError::bad_request(
                    ErrorCode::BadRequest,
                    format!("the arguments do not make a valid URL: {e}"),
                ));
            }
        };
        let mut request = Request::builder()
            .method(call.method.clone())
            .uri(uri)
            .header(credential.name.clone(), credential.value.clone());
        if let Some(key) = &call.idempotency_key {
            // poem's builder drops a value it cannot use; such a key must not go missing.
            match HeaderValue::from_str(key) {
                Ok(value) => request = request.header("idempotency-key", value),
                Err(_) => {
                    return refused(ApiError::bad_request(
                        ErrorCode::BadRequest,
                        "the idempotency key cannot be sent as a header",
                    ))
                }
            }
        }
        let mut request = match &call.body {
            Some(body) => request.content_type("application/json").body(body.clone()),
            None => request.finish(),
        };
        if let Some(client) = credential.client {
            request.set_data(client);
        }
        let response = match self.api.call(request).await {
            Ok(response) => response,
            Err(error) => error.into_response(),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let bytes = response.into_body().into_vec().await.unwrap_or_default();
        ApiAnswer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            retry_after,
        }
    }
}
