//! fanout's HTTP server: `/healthz` (the process answers), `/readyz` (the
//! worker is connected to the broker and consuming), `/metrics`
//! (Prometheus), and `/images/<key>.png` for charts in internal storage.
//! The worker runs the same server; `fanout serve` runs it alone.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use tracing::{info, warn};

use std::sync::atomic::{AtomicBool, Ordering};

use crate::metrics::Metrics;
use crate::storage::internal::{InternalStore, Refusal};
use crate::storage::signing::unix_now;

#[derive(Clone, Default)]
pub struct HttpState {
    /// Set when `[storage] kind = "internal"`: the server serves its images.
    pub images: Option<Arc<InternalStore>>,
    /// Set by a worker: true while it is connected and consuming.
    pub ready: Option<Arc<AtomicBool>>,
    pub metrics: Option<Arc<Metrics>>,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/images/{file}", get(image))
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
