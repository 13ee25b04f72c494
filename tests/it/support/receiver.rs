//! A webhook receiver on 127.0.0.1:0 (axum) that answers from a script of
//! statuses and hands back every request it got.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;

#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
    /// What the receiver answered.
    pub status: u16,
}

/// A status to answer with, and a `Retry-After` value to send along.
pub type Answer = (u16, Option<&'static str>);

#[derive(Clone, Default)]
struct Shared {
    script: Arc<Mutex<VecDeque<Answer>>>,
    got: Arc<Mutex<Vec<Received>>>,
}

pub struct Receiver {
    pub url: String,
    shared: Shared,
    _running: super::serve::Running,
}

impl Receiver {
    /// Answers each request with the next (status, Retry-After) of
    /// `script`, then 200 once the script is used up.
    pub fn start(script: &[Answer]) -> Self {
        let shared = Shared::default();
        shared.script.lock().unwrap().extend(script.iter().copied());
        let listener = super::serve::bind();
        let url = format!(
            "http://{}/hook/secret-path-key",
            listener.local_addr().unwrap()
        );
        let app = Router::new()
            .route("/hook/{*rest}", post(handle))
            .with_state(shared.clone());
        let running = super::serve::serve(listener, app);
        Self {
            url,
            shared,
            _running: running,
        }
    }

    /// The next requests get these answers (then 200 again).
    pub fn answer_next(&self, answers: &[Answer]) {
        self.shared
            .script
            .lock()
            .unwrap()
            .extend(answers.iter().copied());
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.got.lock().unwrap().clone()
    }
}

async fn handle(
    State(shared): State<Shared>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let (status, retry_after) = shared
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or((200, None));
    shared.got.lock().unwrap().push(Received {
        path: uri.path().to_string(),
        headers,
        body,
        at: Instant::now(),
        status,
    });
    let mut out = HeaderMap::new();
    if let Some(v) = retry_after {
        out.insert("retry-after", v.parse().unwrap());
    }
    (StatusCode::from_u16(status).unwrap(), out, "ok")
}
