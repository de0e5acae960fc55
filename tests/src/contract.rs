//! Holds every answer a test receives to the committed spec. The harness installs a
//! [`ResponseTap`] on each server it starts, so no request escapes the check, whichever client
//! sent it (the generated client, raw HTTP, a second instance). An answer conforms when:
//! - its status is one its operation declares (an unknown path answers 404 and a known path
//!   with an undeclared method 405 with `Allow`, both as problems; a CORS preflight
//!   `OPTIONS` 204 with the path's methods);
//! - its content type is the declared one (no body where none is declared);
//! - its body validates against the declared schema under OpenAPI 3.0 rules;
//! - a problem's `status` is the HTTP status;
//! - each response header it declares (`RateLimit`, `RateLimit-Policy`, `Retry-After`,
//!   `X-Request-Id`) holds its schema when sent, a required one (`X-Request-Id`) is always
//!   sent, and the rate limit headers are sent only where declared.
//!
//! A violation fails the test that received it when its server is dropped or stopped: the
//! message names the operation, the status and the JSON pointer.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, OnceLock,
    },
};

use serde_json::Value;
use videovector_api_spec::{
    contract::{essence, Operation},
    problem::PROBLEM_CONTENT_TYPE,
    schema_check::SchemaChecker,
    spec::BASE_PATH,
};
use videovector_server::{
    auth::route_table::RouteTable,
    http::response_tap::{Exchange, ResponseTap},
};

/// Where the harness appends each server's count of checked answers, when set (`.ci/run`
/// totals it).
pub const COUNT_FILE_ENV: &str = "VIDEOVECTOR_TEST_CONTRACT_COUNT_FILE";

/// The committed spec, compiled once per test process.
pub struct Contract {
    checker: SchemaChecker,
    table: RouteTable,
    /// By operation id.
    operations: HashMap<String, Operation>,
    /// The document, for what the model does not carry (response headers).
    document: Value,
}

/// What the contract says of one answer: the operation it belongs to, if any.
pub type Verdict = Result<Option<String>, String>;

impl Contract {
    pub fn committed() -> &'static Contract {
        static CONTRACT: OnceLock<Contract> = OnceLock::new();
        CONTRACT.get_or_init(|| {
            Contract::over(videovector_api_spec::contract::Contract::committed())
                .expect("the committed spec loads")
        })
    }

    pub fn new(spec: &str) -> Result<Contract, String> {
        Contract::over(&videovector_api_spec::contract::Contract::parse(spec)?)
    }

    /// The checker of a parsed contract model.
    fn over(model: &videovector_api_spec::contract::Contract) -> Result<Contract, String> {
        Ok(Contract {
            table: RouteTable::from_contract(model),
            operations: model
                .operations()
                .iter()
                .map(|o| (o.id().to_string(), o.clone()))
                .collect(),
            checker: SchemaChecker::new(model.document().clone())?,
            document: model.document().clone(),
        })
    }

    /// Checks the headers of an answer of `operation_id` with `status`.
    pub fn check_headers(
        &self,
        operation_id: &str,
        status: u16,
        headers: &poem::http::HeaderMap,
    ) -> Result<(), String> {
        let Some(operation) = self.operations.get(operation_id) else {
            return Ok(());
        };
        let rule = &operation.rule;
        let responses =
            &self.document["paths"][&rule.path][rule.method.to_lowercase()]["responses"];
        let declared = responses
            .get(status.to_string())
            .or_else(|| responses.get("default"))
            .and_then(|r| r.get("headers"))
            .and_then(Value::as_object);
        let fail = |what: String| Err(format!("{operation_id} answered {status}: {what}"));
        let is_declared =
            |name: &str| declared.is_some_and(|d| d.keys().any(|k| k.eq_ignore_ascii_case(name)));
        for name in ["ratelimit", "ratelimit-policy"] {
            if headers.contains_key(name) && !is_declared(name) {
                return fail(format!("the header `{name}` is not declared"));
            }
        }
        for (name, header) in declared.into_iter().flatten() {
            let header = match header["$ref"].as_str() {
                Some(pointer) => self
                    .document
                    .pointer(pointer.trim_start_matches('#'))
                    .unwrap_or(&Value::Null),
                None => header,
            };
            let Some(value) = headers.get(name.as_str()) else {
                if header["required"] == Value::Bool(true) {
                    return fail(format!("the required header `{name}` is missing"));
                }
                continue;
            };
            let schema = &header["schema"];
            let text = value.to_str().unwrap_or("\u{0}");
            let value = match schema["type"].as_str() {
                Some("integer") => match text.parse::<i64>() {
                    Ok(n) => Value::from(n),
                    Err(_) => return fail(format!("`{name}: {text}` is not an integer")),
                },
                _ => Value::String(text.to_string()),
            };
            if let Some(violation) = self.checker.check(schema, &value).first() {
                return fail(format!("`{name}: {text}` {}", violation.message));
            }
        }
        Ok(())
    }

    /// Checks one answer. `Ok(None)` for paths outside the API (docs, health, the spec).
    pub fn check(
        &self,
        method: &str,
        path: &str,
        status: u16,
        content_type: Option<&str>,
        allow: Option<&str>,
        body: &[u8],
    ) -> Verdict {
        let Some(below) = path.strip_prefix(BASE_PATH) else {
            return Ok(None);
        };
        if below == "/openapi.json" {
            return Ok(None);
        }
        let method_parsed =
            poem::http::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let Some(rule) = self.table.find(&method_parsed, below) else {
            return self.check_unrouted(method, below, status, content_type, allow, body);
        };
        let id = rule.operation_id.clone();
        let operation = &self.operations[&id];
        let fail = |what: String| Err(format!("{id} ({method} {path}) answered {status}: {what}"));
        let Some(declared) = operation.response_for(status) else {
            let listed: Vec<&str> = operation
                .responses
                .iter()
                .map(|r| r.status.as_str())
                .collect();
            return fail(format!("the status is not declared (declared: {listed:?})"));
        };
        let Some(media) = content_type.and_then(|t| declared.media(t)) else {
            if declared.content.is_empty() {
                return match body.is_empty() {
                    true => Ok(Some(id)),
                    false => fail("a body where the spec declares none".into()),
                };
            }
            let listed: Vec<&str> = declared
                .content
                .iter()
                .map(|m| m.media_type.as_str())
                .collect();
            return fail(format!(
                "content type {content_type:?} is not one of {listed:?}"
            ));
        };
        let declared_type = essence(&media.media_type);
        let value: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return fail(format!("the {declared_type} body is not JSON: {e}")),
        };
        self.check_body(&media.schema, &value, status, &declared_type)
            .map(|()| Some(id.clone()))
            .or_else(fail)
    }

    fn check_unrouted(
        &self,
        method: &str,
        below: &str,
        status: u16,
        content_type: Option<&str>,
        allow: Option<&str>,
        body: &[u8],
    ) -> Verdict {
        let methods = self.table.allowed_methods(below);
        let what = format!("{method} {BASE_PATH}{below} (no operation) answered {status}");
        if method == "OPTIONS" && status == 204 && !methods.is_empty() {
            // A CORS preflight (the spec's description): its allowed methods, no body.
            let listed: BTreeSet<String> = allow
                .unwrap_or_default()
                .split(',')
                .map(|m| m.trim().to_string())
                .collect();
            let wanted: BTreeSet<String> = methods.iter().map(|m| m.to_string()).collect();
            return match listed == wanted && body.is_empty() {
                true => Ok(None),
                false => Err(format!(
                    "{what}: a preflight allowing {allow:?}, expected {wanted:?}"
                )),
            };
        }
        let expected = if methods.is_empty() { 404 } else { 405 };
        if status != expected {
            return Err(format!("{what}: expected {expected}"));
        }
        if expected == 405 {
            let listed: BTreeSet<String> = allow
                .unwrap_or_default()
                .split(',')
                .map(|m| m.trim().to_uppercase())
                .filter(|m| !m.is_empty())
                .collect();
            let wanted: BTreeSet<String> = methods.iter().map(|m| m.to_string()).collect();
            if listed != wanted {
                return Err(format!("{what}: `Allow` is {allow:?}, expected {wanted:?}"));
            }
        }
        if content_type.map(essence).as_deref() != Some(PROBLEM_CONTENT_TYPE) {
            return Err(format!(
                "{what}: content type {content_type:?} is not a problem"
            ));
        }
        let value: Value = serde_json::from_slice(body).map_err(|e| format!("{what}: {e}"))?;
        let schema = serde_json::json!({"$ref": "#/components/schemas/Problem"});
        self.check_body(&schema, &value, status, PROBLEM_CONTENT_TYPE)
            .map(|()| None)
            .map_err(|e| format!("{what}: {e}"))
    }

    fn check_body(
        &self,
        schema: &Value,
        value: &Value,
        status: u16,
        content_type: &str,
    ) -> Result<(), String> {
        let violations = self.checker.check(schema, value);
        if let Some(first) = violations.first() {
            let all: Vec<String> = violations
                .iter()
                .map(|v| format!("`{}` {}", v.pointer, v.message))
                .collect();
            return Err(format!(
                "the body breaks its schema at `{}`: {}",
                first.pointer,
                all.join("; ")
            ));
        }
        if content_type == PROBLEM_CONTENT_TYPE && value["status"] != status {
            return Err(format!(
                "the problem's `status` {} is not the HTTP status",
                value["status"]
            ));
        }
        // Each code has one status, which the errors guide states.
        if content_type == PROBLEM_CONTENT_TYPE {
            let declared = videovector_api_spec::ErrorCode::ALL
                .iter()
                .find(|c| value["code"] == c.as_str())
                .map(|c| c.status());
            if let Some(declared) = declared.filter(|d| *d != status) {
                return Err(format!(
                    "a `{}` problem came with {status}, not the {declared} its code declares",
                    value["code"]
                ));
            }
        }
        Ok(())
    }
}

/// The answers one test's servers gave, and what broke the contract.
#[derive(Default)]
pub struct ContractLog {
    checked: AtomicUsize,
    violations: Mutex<Vec<String>>,
    operations: Mutex<BTreeSet<String>>,
}

impl ContractLog {
    /// A tap that checks each exchange against the committed spec into this log.
    pub fn tap(self: &Arc<Self>) -> ResponseTap {
        let log = self.clone();
        ResponseTap::new(move |exchange: &Exchange<'_>| log.record(exchange))
    }

    fn record(&self, exchange: &Exchange<'_>) {
        let header = |name: &str| exchange.headers.get(name).and_then(|v| v.to_str().ok());
        let verdict = Contract::committed().check(
            exchange.method.as_str(),
            exchange.path,
            exchange.status.as_u16(),
            header("content-type"),
            // A preflight's methods stand where a 405's `Allow` does.
            header("allow").or(header("access-control-allow-methods")),
            exchange.body,
        );
        self.checked.fetch_add(1, Ordering::Relaxed);
        let verdict = verdict.and_then(|operation| match &operation {
            Some(id) => Contract::committed()
                .check_headers(id, exchange.status.as_u16(), exchange.headers)
                .map(|()| operation),
            None => Ok(operation),
        });
        match verdict {
            Ok(Some(operation)) => {
                self.operations.lock().unwrap().insert(operation);
            }
            Ok(None) => {}
            Err(violation) => self.violations.lock().unwrap().push(violation),
        }
    }

    /// Answers checked so far.
    pub fn checked(&self) -> usize {
        self.checked.load(Ordering::Relaxed)
    }

    /// The operations that answered at least once.
    pub fn operations(&self) -> BTreeSet<String> {
        self.operations.lock().unwrap().clone()
    }

    /// Contract violations so far.
    pub fn violations(&self) -> Vec<String> {
        self.violations.lock().unwrap().clone()
    }
}

/// Fails the test when its servers broke the contract; owned by the test's server, so it
/// speaks when the server is stopped or dropped.
pub struct ContractGuard(pub Arc<ContractLog>);

impl Drop for ContractGuard {
    fn drop(&mut self) {
        if let Ok(path) = std::env::var(COUNT_FILE_ENV) {
            use std::io::Write;
            if let Ok(mut file) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = writeln!(file, "{}", self.0.checked());
            }
        }
        let violations = self.0.violations();
        if !violations.is_empty() && !std::thread::panicking() {
            panic!(
                "{} answer(s) broke the committed spec:\n- {}",
                violations.len(),
                violations.join("\n- ")
            );
        }
    }
}
