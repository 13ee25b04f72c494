//! fanout's HTTP server: `/healthz` (the process answers), `/readyz` (the
//! worker is connected to the broker and consuming), `/metrics`
//! (Prometheus), and `/images/<key>.png` for charts in internal storage.
//! The worker runs the same server; `fanout serve` runs it alone.

mod ingest;

pub use ingest::IngestEndpoint;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use tracing::{info, warn};

use std::sync::atomic::{AtomicBool, Ordering};

use crate::actions::{Action, ActionLinks, SignalSender};
use crate::clock::unix_now;
use crate::images::internal::{InternalStore, Refusal};
use crate::metrics::Metrics;

#[derive(Clone, Default)]
pub struct HttpState {
    /// Set when `[storage] kind = "internal"`: the server serves its images.
    pub images: Option<Arc<InternalStore>>,
    /// Set by a worker: true while it is connected and consuming.
    pub ready: Option<Arc<AtomicBool>>,
    pub metrics: Option<Arc<Metrics>>,
    /// Set when `[actions]` and `[broker]` are configured: action links
    /// are checked here and their signals sent through the broker.
    pub actions: Option<Arc<ActionEndpoint>>,
    /// Set when `[ingest]` is configured: monitors post their alerts here.
    pub ingest: Option<Arc<IngestEndpoint>>,
}

/// What `/actions/…` needs: the links' signer and a way to send signals.
pub struct ActionEndpoint {
    pub links: ActionLinks,
    pub signals: SignalSender,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/images/{file}", get(image))
        .route("/actions/{action}/{group}", get(confirm).post(act))
        .route(
            "/ingest/{source}",
            // Each source's own `max_body` is enforced while reading: an
            // over-limit body is counted and answered 413 (see ingest.rs).
            post(ingest::ingest).layer(DefaultBodyLimit::disable()),
        )
        .with_state(state)
}

/// Serve on `listener` until `shutdown` resolves; sweeps old images meanwhile.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: HttpState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Some(store) = state.images.clone() {
        tokio::spawn(sweep_forever(store));
    }
    if let Ok(addr) = listener.local_addr() {
        info!(message = "HTTP server listening.", %addr);
    }
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn sweep_forever(store: Arc<InternalStore>) {
    let mut every = tokio::time::interval(Duration::from_secs(600));
    loop {
        every.tick().await;
        let store = store.clone();
        match tokio::task::spawn_blocking(move || store.sweep()).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => info!(message = "Removed images past their retention.", count = n),
            Ok(Err(e)) => warn!(message = "Image sweep failed.", error = %e),
            Err(e) => warn!(message = "Image sweep failed.", error = %e),
        }
    }
}

/// 200 while the worker consumes; 503 while it (re)connects. A server
/// without a worker (`fanout serve`) is ready when it answers.
async fn readyz(State(state): State<HttpState>) -> Response {
    match state.ready {
        Some(ready) if !ready.load(Ordering::SeqCst) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not connected to the broker\n",
        )
            .into_response(),
        _ => "ready\n".into_response(),
    }
}

async fn metrics(State(state): State<HttpState>) -> Response {
    let Some(metrics) = state.metrics else {
        return (StatusCode::NOT_FOUND, "no metrics: not a worker\n").into_response();
    };
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        metrics.encode(),
    )
        .into_response()
}

#[derive(Deserialize)]
struct Signed {
    exp: Option<String>,
    sig: Option<String>,
}

/// 403 for anything unsigned, expired or tampered, 404 for what does not
/// exist; neither says which check failed.
async fn image(
    State(state): State<HttpState>,
    Path(file): Path<String>,
    Query(q): Query<Signed>,
) -> Response {
    let Some(store) = state.images else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let Some(key) = file.strip_suffix(".png") else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let expires = q.exp.as_deref().and_then(|e| e.parse::<u64>().ok());
    let (Some(expires), Some(sig)) = (expires, q.sig) else {
        return (StatusCode::FORBIDDEN, "forbidden\n").into_response();
    };
    match store.open(key, expires, &sig) {
        Ok(path) => match tokio::fs::read(&path).await {
            Ok(bytes) => {
                let max_age = expires.saturating_sub(unix_now());
                let cache = HeaderValue::from_str(&format!("private, max-age={max_age}"))
                    .unwrap_or(HeaderValue::from_static("private, no-store"));
                (
                    [
                        (header::CONTENT_TYPE, HeaderValue::from_static("image/png")),
                        (header::CACHE_CONTROL, cache),
                        (
                            header::X_CONTENT_TYPE_OPTIONS,
                            HeaderValue::from_static("nosniff"),
                        ),
                    ],
                    bytes,
                )
                    .into_response()
            }
            Err(_) => (StatusCode::NOT_FOUND, "not found\n").into_response(),
        },
        Err(Refusal::Forbidden(_)) => (StatusCode::FORBIDDEN, "forbidden\n").into_response(),
        Err(Refusal::NotFound) => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

/// Headers for action pages: never cached, never framed, and the signed
/// URL is not sent on as a referrer.
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title}</title></head>\n<body style=\"font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:32em;margin:3em auto;padding:0 1em\">\n\
         <h1 style=\"font-size:1.3em\">{title}</h1>\n{body}\n</body></html>\n"
    );
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        ],
        html,
    )
        .into_response()
}

fn forbidden() -> Response {
    page(
        StatusCode::FORBIDDEN,
        "This link does not work",
        "<p>It has expired or is not a link fanout made. Use the newest notification, or fanout signal.</p>",
    )
}

/// Why an action link is refused.
enum Refused {
    /// No action links here, or no such action.
    NotFound,
    /// Forged, expired, or for a group id no job could have.
    Forbidden,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::NotFound => (StatusCode::NOT_FOUND, "not found\n").into_response(),
            Refused::Forbidden => forbidden(),
        }
    }
}

/// The action and group of a link, if its signature and expiry hold.
fn checked(
    state: &HttpState,
    action: &str,
    group: &str,
    q: &Signed,
) -> Result<(Arc<ActionEndpoint>, Action), Refused> {
    let endpoint = state.actions.clone().ok_or(Refused::NotFound)?;
    let action = Action::parse(action).ok_or(Refused::NotFound)?;
    // Only ids a job could have: nothing else is ever signed or echoed.
    if !crate::job::valid_id(group, 200) {
        return Err(Refused::Forbidden);
    }
    let expires = q.exp.as_deref().and_then(|e| e.parse::<u64>().ok());
    let (Some(expires), Some(sig)) = (expires, q.sig.as_deref()) else {
        return Err(Refused::Forbidden);
    };
    endpoint
        .links
        .verify(action, group, expires, sig, unix_now())
        .map_err(|_| Refused::Forbidden)?;
    Ok((endpoint, action))
}

/// GET: a page that asks; it changes nothing. Mail scanners and chat link
/// previews fetch links with GET, so they never act on an alert.
async fn confirm(
    State(state): State<HttpState>,
    Path((action, group)): Path<(String, String)>,
    Query(q): Query<Signed>,
) -> Response {
    let action = match checked(&state, &action, &group, &q) {
        Ok((_, action)) => action,
        Err(refused) => return refused.into_response(),
    };
    let verb = action.verb();
    page(
        StatusCode::OK,
        &format!("{verb} alert group {group}?"),
        &format!(
            "<p>Nothing has changed yet.</p>\n\
             <form method=\"post\"><button type=\"submit\" style=\"font-size:1em;padding:.6em 1.2em\">{verb}</button></form>"
        ),
    )
}

/// POST (from the confirmation page): send the signal through the broker.
async fn act(
    State(state): State<HttpState>,
    Path((action, group)): Path<(String, String)>,
    Query(q): Query<Signed>,
) -> Response {
    let (endpoint, action) = match checked(&state, &action, &group, &q) {
        Ok(ok) => ok,
        Err(refused) => return refused.into_response(),
    };
    let signal = action.signal(&group, "action link");
    match endpoint.signals.send(&signal).await {
        Ok(()) => {
            info!(message = "Action link used.", action = action.name(), group = %group);
            let done = match action {
                Action::Acknowledge => "Acknowledged: the escalation stops before its next step.",
                Action::Resolve => "Resolved: everyone notified gets the resolved notice.",
                Action::Silence1h => "Silenced for one hour: the escalation waits until then.",
            };
            page(
                StatusCode::OK,
                &format!("Alert group {group}"),
                &format!("<p>{done}</p>"),
            )
        }
        Err(e) => {
            warn!(message = "Action link could not send its signal.", action = action.name(), group = %group, error = %e);
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Not done",
                "<p>fanout could not reach its broker. Nothing changed; try again in a moment.</p>",
            )
        }
    }
}
