//! Holds each request to what its operation declares in the committed spec, after the guard
//! and before a handler parses anything: path, query and header parameters, and the JSON
//! body. A body that is not JSON gets 400; every value that breaks its schema is named, by
//! location and JSON pointer, in one 422 `validation_failed`. An optional body may be left
//! out entirely, `Content-Type` included.
//!
//! The schemas come from the spec the server enforces, so a constraint exists in one place:
//! the declaration that produced the spec (or the spec's post-processing, for the rule that
//! no string holds U+0000, which no database column can store).
//!
//! A parsed body costs many times its size (a 32 MiB array of small objects is about 250 MiB
//! of JSON values), so bodies over [`LARGE_BODY_BYTES`] are checked and handled only while
//! they fit in [`LARGE_BODY_BUDGET_BYTES`] together; the others wait their turn, their bytes
//! read but not yet parsed. A slow sender holds no part of the budget: it is taken once the
//! whole body has arrived.

use std::{collections::HashMap, sync::Arc};

use poem::{
    http::{header::CONTENT_TYPE, HeaderValue},
    Endpoint, IntoResponse, Middleware, Request, Response,
};
use serde_json::Value;
use videovector_api_spec::{
    contract::{Contract, Operation, Parameter, RequestBody, Segment},
    problem::{FieldError, FieldLocation},
    schema_check::SchemaChecker,
    security::RawBody,
    ApiError, ErrorCode,
};

use crate::auth::guard::MatchedRule;

/// Bodies above this size are large: parsed only within the budget below.
pub const LARGE_BODY_BYTES: usize = 1024 * 1024;
/// At most this many bytes of large bodies are parsed and handled at once: one body of the
/// 32 MiB limit, or 32 of 1 MiB.
pub const LARGE_BODY_BUDGET_BYTES: usize = 32 * 1024 * 1024;
/// The budget's unit: a large body takes its size in these, rounded up.
const BUDGET_UNIT: usize = 1024 * 1024;

/// What one operation takes.
struct OperationInput {
    /// The path template's segments: `Some(name)` for a `{name}` parameter.
    path_segments: Vec<Option<String>>,
    params: Vec<Parameter>,
    body: Option<RequestBody>,
}

/// Every operation's declared input, from the contract model.
pub struct RequestContract {
    checker: SchemaChecker,
    operations: HashMap<String, OperationInput>,
}

impl RequestContract {
    /// The checks of every operation of `contract`.
    pub fn from_contract(contract: &Contract) -> anyhow::Result<Self> {
        let operations = contract
            .operations()
            .iter()
            .map(|operation| (operation.id().to_string(), read_input(operation)))
            .collect();
        Ok(RequestContract {
            checker: SchemaChecker::new(contract.document().clone())
                .map_err(anyhow::Error::msg)?
                .with_meanings(videovector_api_spec::patterns::PATTERN_MEANINGS)
                .with_tests(videovector_api_spec::patterns::PATTERN_TESTS),
            operations,
        })
    }

    fn check_params(&self, input: &OperationInput, req: &Request) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let path_values = path_values(input, req.uri().path());
        let query: Vec<(String, String)> =
            form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        for param in &input.params {
            let raw: Option<Result<String, &str>> = match param.location {
                FieldLocation::Path => path_values.get(param.name.as_str()).cloned(),
                FieldLocation::Query => query
                    .iter()
                    .find(|(k, _)| *k == param.name)
                    .map(|(_, v)| Ok(v.clone())),
                FieldLocation::Header => req.headers().get(param.name.as_str()).map(|v| {
                    v.to_str()
                        .map(str::to_string)
                        .map_err(|_| "must be visible ASCII")
                }),
                FieldLocation::Body => None,
            };
            let pointer = format!("/{}", param.name);
            let fail = |message: &str| FieldError::at(param.location, pointer.clone(), message);
            match raw {
                None if param.required => errors.push(fail("is required")),
                None => {}
                Some(Err(message)) => errors.push(fail(message)),
                Some(Ok(text)) => match typed(&param.schema, &self.checker, text) {
                    Err(message) => errors.push(fail(message)),
                    Ok(value) => errors.extend(
                        self.checker
                            .check(&param.schema, &value)
                            .into_iter()
                            .map(|v| FieldError::at(param.location, pointer.clone(), v.message)),
                    ),
                },
            }
        }
        errors
    }

    /// Checks a JSON body against the body schema of `operation_id` (the benchmark measures
    /// this). `None` when the operation takes no body.
    pub fn check_operation_body(
        &self,
        operation_id: &str,
        body: &[u8],
    ) -> Option<Result<Vec<FieldError>, ApiError>> {
        let expected = self.operations.get(operation_id)?.body.as_ref()?;
        Some(self.check_body(&expected.schema, body))
    }

    fn check_body(&self, schema: &Value, body: &[u8]) -> Result<Vec<FieldError>, ApiError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(
                ErrorCode::BadRequest,
                format!("the body is not valid JSON: {e}"),
            )
        })?;
        Ok(self
            .checker
            .check(schema, &value)
            .into_iter()
            .map(|v| FieldError::body(v.pointer, v.message))
            .collect())
    }
}

fn read_input(operation: &Operation) -> OperationInput {
    OperationInput {
        path_segments: operation
            .template
            .iter()
            .map(|segment| match segment {
                Segment::Param(name) => Some(name.clone()),
                Segment::Literal(_) => None,
            })
            .collect(),
        params: operation.parameters.clone(),
        body: operation.body.clone(),
    }
}

/// The decoded values of the path's parameters (an error for one that is not UTF-8).
fn path_values<'a>(
    input: &'a OperationInput,
    path: &str,
) -> HashMap<&'a str, Result<String, &'static str>> {
    let below = path
        .strip_prefix(videovector_api_spec::spec::BASE_PATH)
        .unwrap_or(path);
    input
        .path_segments
        .iter()
        .zip(below.trim_start_matches('/').split('/'))
        .filter_map(|(segment, raw)| {
            let name = segment.as_deref()?;
            let decoded = percent_encoding::percent_decode_str(raw)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| "is not UTF-8 once percent-decoded");
            Some((name, decoded))
        })
        .collect()
}

/// A parameter's text as the JSON value its schema's type calls for.
fn typed(schema: &Value, checker: &SchemaChecker, text: String) -> Result<Value, &'static str> {
    let schema = match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => checker.resolve(reference).unwrap_or(schema),
        None => schema,
    };
    Ok(match schema["type"].as_str() {
        Some("integer") => text
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| text.parse::<u64>().map(Value::from))
            .map_err(|_| "must be an integer")?,
        Some("number") => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or("must be a number")?,
        Some("boolean") => match text.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err("must be `true` or `false`"),
        },
        _ => Value::String(text),
    })
}

fn is_json(content_type: &str) -> bool {
    content_type.parse::<mime::Mime>().is_ok_and(|m| {
        m.type_() == "application"
            && (m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json"))
    })
}

pub struct RequestChecks {
    pub contract: Arc<RequestContract>,
    /// [`LARGE_BODY_BUDGET_BYTES`] in [`BUDGET_UNIT`]s, shared by every operation.
    pub large_bodies: Arc<tokio::sync::Semaphore>,
}

/// The budget of large bodies for [`RequestChecks::large_bodies`].
pub fn large_body_budget() -> Arc<tokio::sync::Semaphore> {
    Arc::new(tokio::sync::Semaphore::new(
        LARGE_BODY_BUDGET_BYTES / BUDGET_UNIT,
    ))
}

impl<E: Endpoint> Middleware<E> for RequestChecks {
    type Output = RequestChecksEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        RequestChecksEndpoint {
            inner,
            contract: self.contract.clone(),
            large_bodies: self.large_bodies.clone(),
        }
    }
}

pub struct RequestChecksEndpoint<E> {
    inner: E,
    contract: Arc<RequestContract>,
    large_bodies: Arc<tokio::sync::Semaphore>,
}

impl<E: Endpoint> Endpoint for RequestChecksEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let Some((input, signed_body)) = req.data::<MatchedRule>().and_then(|rule| {
            self.contract
                .operations
                .get(&rule.0.operation_id)
                .map(|input| (input, rule.0.signed_body))
        }) else {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        };
        let mut errors = self.contract.check_params(input, &req);
        // Held until the answer: the handler parses the body again.
        let mut _large_body_share = None;
        if let Some(RequestBody {
            schema, required, ..
        }) = &input.body
        {
            let body = req.take_body().into_bytes().await?;
            if body.len() > LARGE_BODY_BYTES {
                let units = body
                    .len()
                    .div_ceil(BUDGET_UNIT)
                    .min(LARGE_BODY_BUDGET_BYTES / BUDGET_UNIT);
                _large_body_share = Some(
                    self.large_bodies
                        .clone()
                        .acquire_many_owned(units as u32)
                        .await
                        .map_err(|_| ApiError::internal())?,
                );
            }
            let content_type = req
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            if body.is_empty() {
                if *required {
                    errors.push(FieldError::body("", "a JSON body is required"));
                } else if content_type.is_none() {
                    // An optional body left out: let the JSON extractor see `null`.
                    req.headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                }
            } else if content_type.is_some_and(is_json) {
                match self.contract.check_body(schema, &body) {
                    Ok(found) => errors.extend(found),
                    Err(malformed) => return Ok(malformed.into_problem_response()),
                }
            }
            if signed_body {
                req.set_data(RawBody(body.clone()));
            }
            req.set_body(body);
        }
        if !errors.is_empty() {
            return Ok(ApiError::validation(errors).into_problem_response());
        }
        self.inner.call(req).await.map(IntoResponse::into_response)
    }
}
