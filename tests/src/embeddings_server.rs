//! An OpenAI-compatible embeddings server for tests, built from the server's own built-in
//! model: `POST /v1/embeddings` with `{"model", "input": [texts]}` answers
//! `{"object": "list", "data": [{"object": "embedding", "index", "embedding"}], "model"}`.
//!
//! It can be told to misbehave, as real model servers do: answer slowly, fail with 500 a
//! number of times, answer vectors of other dimensions, hang, or refuse a missing or wrong
//! API key (401). It counts the calls and texts it was sent.

use std::sync::{
    atomic::{AtomicU64, AtomicUsize, Ordering},
    Arc, Mutex,
};

use poem::{
    http::StatusCode,
    listener::{Acceptor, Listener, TcpListener},
    Endpoint, Request, Response,
};
use serde_json::{json, Value};
use videovector_server::embed::builtin::BuiltIn;

/// The key a client must send (`Authorization: Bearer …`).
pub const API_KEY: &str = "sk-test-embeddings-0123456789";

/// What the server does with the next calls.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Behaviour {
    /// Answers correctly.
    Fine,
    /// Answers correctly after this many milliseconds.
    Slow(u64),
    /// Answers 500 to this many calls, then correctly.
    FailTimes(usize),
    /// Answers vectors with one value too many.
    WrongDimensions,
    /// Answers this many calls correctly, then holds every call (for an hour) until told
    /// otherwise: a caller killed meanwhile never gets its answer.
    StallAfter(usize),
}

#[derive(Clone)]
struct Model {
    model: Arc<BuiltIn>,
    behaviour: Arc<Mutex<Behaviour>>,
    calls: Arc<AtomicUsize>,
    texts: Arc<AtomicU64>,
}

/// A running embeddings server.
pub struct EmbeddingsServer {
    /// The endpoint's URL (`…/v1/embeddings`).
    pub url: String,
    behaviour: Arc<Mutex<Behaviour>>,
    calls: Arc<AtomicUsize>,
    texts: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Endpoint for Model {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        if req.uri().path() != "/v1/embeddings" || req.method() != poem::http::Method::POST {
            return Ok(StatusCode::NOT_FOUND.into());
        }
        let authorised = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            == Some(format!("Bearer {API_KEY}").as_str());
        self.calls.fetch_add(1, Ordering::SeqCst);
        if !authorised {
            return Ok(json_answer(
                StatusCode::UNAUTHORIZED,
                json!({"error": {"message": "Incorrect API key provided"}}),
            ));
        }
        let body: Value = serde_json::from_slice(&req.into_body().into_vec().await?)
            .map_err(|e| poem::Error::from_string(e.to_string(), StatusCode::BAD_REQUEST))?;
        let inputs: Vec<String> = match &body["input"] {
            Value::String(one) => vec![one.clone()],
            Value::Array(many) => many
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => return Ok(StatusCode::BAD_REQUEST.into()),
        };
        self.texts.fetch_add(inputs.len() as u64, Ordering::SeqCst);
        let behaviour = {
            let mut now = self.behaviour.lock().unwrap();
            let current = *now;
            match current {
                Behaviour::FailTimes(n) if n <= 1 => *now = Behaviour::Fine,
                Behaviour::FailTimes(n) => *now = Behaviour::FailTimes(n - 1),
                Behaviour::StallAfter(n) if n > 0 => *now = Behaviour::StallAfter(n - 1),
                _ => {}
            }
            current
        };
        match behaviour {
            Behaviour::FailTimes(_) => {
                return Ok(json_answer(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": {"message": "the model server fell over"}}),
                ))
            }
            Behaviour::Slow(ms) => tokio::time::sleep(std::time::Duration::from_millis(ms)).await,
            Behaviour::StallAfter(0) => {
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await
            }
            Behaviour::Fine | Behaviour::WrongDimensions | Behaviour::StallAfter(_) => {}
        }
        let data: Vec<Value> = inputs
            .iter()
            .enumerate()
            .map(|(index, text)| {
                let mut embedding = self.model.embed(text);
                if behaviour == Behaviour::WrongDimensions {
                    embedding.push(0.5);
                }
                json!({"object": "embedding", "index": index, "embedding": embedding})
            })
            .collect();
        Ok(json_answer(
            StatusCode::OK,
            json!({"object": "list", "data": data, "model": body["model"],
                   "usage": {"prompt_tokens": 0, "total_tokens": 0}}),
        ))
    }
}

fn json_answer(status: StatusCode, body: Value) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(body.to_string())
}

impl EmbeddingsServer {
    /// Listens on 127.0.0.1, answering correctly.
    pub async fn start() -> EmbeddingsServer {
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("the embeddings server binds");
        let addr = acceptor.local_addr()[0]
            .as_socket_addr()
            .copied()
            .expect("a TCP address");
        let model = Model {
            model: BuiltIn::shared().expect("the built-in model loads"),
            behaviour: Arc::new(Mutex::new(Behaviour::Fine)),
            calls: Arc::new(AtomicUsize::new(0)),
            texts: Arc::new(AtomicU64::new(0)),
        };
        let (behaviour, calls, texts) = (
            model.behaviour.clone(),
            model.calls.clone(),
            model.texts.clone(),
        );
        let task = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(model).await;
        });
        EmbeddingsServer {
            url: format!("http://{addr}/v1/embeddings"),
            behaviour,
            calls,
            texts,
            task,
        }
    }

    /// What the next calls get.
    pub fn behave(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    /// Calls received so far (refused ones included).
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Texts received so far, in calls it answered past the key check.
    pub fn texts(&self) -> u64 {
        self.texts.load(Ordering::SeqCst)
    }
}

impl Drop for EmbeddingsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
