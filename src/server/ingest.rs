//! `POST /ingest/<source>`: a monitor's own webhook body → its alerts →
//! the routes they take → jobs, each durable before the answer: confirmed
//! by the broker, or written to the spool while the broker is away.
//!
//! Answers (never 200-and-drop): `202` with the job ids once every job is
//! durable; `400` with the JSON path of what cannot be read; `401` for a
//! missing or wrong token or signature (counted by reason, never logged);
//! `404` for a source not in `[ingest]`; `413` over the source's
//! `max_body`; `503` only when the broker did not confirm and the spool is
//! full or off (logged as an error; job ids are stable, so the monitor's
//! next notification sends nothing twice).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use tracing::{info, warn};

use super::HttpState;
use crate::broker::publisher::Publisher;
use crate::broker::spool::{Spool, Spooled};
use crate::broker::JOB_KEY;
use crate::config::Config;
use crate::ingest::auth::Refusal;
use crate::metrics::{IngestLabels, Metrics, SourceLabels};

/// What `/ingest/<source>` needs: the config (sources, routes,
/// destinations) and the broker.
pub struct IngestEndpoint {
    pub config: Arc<Config>,
    pub publisher: Arc<Publisher>,
    /// Where jobs wait while the broker is away; `None`: answer 503.
    pub spool: Option<Arc<Spool>>,
}

/// How long the broker has to confirm a body's jobs before they go to
/// the spool.
const CONFIRM_WITHIN: Duration = Duration::from_secs(5);

impl IngestEndpoint {
    /// The largest body any source may send.
    pub fn max_body(&self) -> usize {
        self.config
            .ingest
            .values()
            .map(|s| s.max_body)
            .max()
            .unwrap_or(0)
    }
}

#[derive(Deserialize)]
pub(super) struct TokenQuery {
    #[serde(default)]
    token: Option<String>,
}

pub(super) async fn ingest(
    State(state): State<HttpState>,
    Path(source): Path<String>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let metrics = state.metrics.clone();
    let Some(endpoint) = state.ingest.clone() else {
        return answer(
            StatusCode::NOT_FOUND,
            json!({"error": "this server takes no alerts from monitors ([ingest] is not configured)"}),
        );
    };
    let Some(settings) = endpoint.config.ingest.get(&source) else {
        count(metrics.as_deref(), "unknown", "unknown_source");
        let known: Vec<&String> = endpoint.config.ingest.keys().collect();
        return answer(
            StatusCode::NOT_FOUND,
            json!({"error": format!("{source:?} is not a configured source (configured: {known:?})")}),
        );
    };
    let now = chrono::Utc::now();
    let refused = |refusal: Refusal| {
        count(metrics.as_deref(), &source, refusal.label());
        warn!(message = "Ingest refused.", source = %source, reason = refusal.message());
        answer(
            StatusCode::UNAUTHORIZED,
            json!({"error": refusal.message()}),
        )
    };
    // The token before the body is read; the signature needs the body.
    if let Err(refusal) = settings
        .credentials
        .check_token(&headers, query.token.as_deref())
    {
        return refused(refusal);
    }
    let body = match read_body(body, settings.max_body).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            count(metrics.as_deref(), &source, "too_large");
            return answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"error": format!("the body is over this source's max_body of {} bytes", settings.max_body)}),
            );
        }
        Err(BodyError::Unreadable(why)) => {
            count(metrics.as_deref(), &source, "unreadable");
            return answer(
                StatusCode::BAD_REQUEST,
                json!({"error": format!("the body could not be read: {why}")}),
            );
        }
    };
    if let Err(refusal) = settings
        .credentials
        .check_signature(&headers, &body, now.timestamp())
    {
        return refused(refusal);
    }
    let parsed = match settings
        .kind
        .parse_configured(&body, now, settings.mapping.as_ref())
    {
        Ok(parsed) => parsed,
        Err(e) => {
            count(metrics.as_deref(), &source, "unreadable");
            return answer(
                StatusCode::BAD_REQUEST,
                json!({"error": e.to_string(), "path": e.path}),
            );
        }
    };
    let config = &endpoint.config;
    let mut jobs = Vec::new();
    for incoming in &parsed.alerts {
        for routed in config.routes.jobs(&source, incoming, now) {
            if let Err(e) = crate::validate::validate(&routed.job, config) {
                count(metrics.as_deref(), &source, "invalid");
                return answer(
                    StatusCode::BAD_REQUEST,
                    json!({"error": format!("an alert makes no valid job: {e}")}),
                );
            }
            jobs.push(routed.job);
        }
    }
    // One alert sent twice in one body (a SkyWalking batch repeating an
    // alarm) is one job: published once, its id answered once.
    let mut seen = std::collections::HashSet::new();
    jobs.retain(|job| seen.insert(job.id.clone()));
    let spooled = match make_durable(&endpoint, &jobs).await {
        Ok(spooled) => spooled,
        Err(why) => {
            count(metrics.as_deref(), &source, "unavailable");
            tracing::error!(message = "Ingest answered 503: jobs are neither confirmed by the broker nor spooled.", source = %source, jobs = jobs.len(), error = %why);
            return answer(StatusCode::SERVICE_UNAVAILABLE, json!({"error": why}));
        }
    };
    count(metrics.as_deref(), &source, "accepted");
    if let Some(m) = metrics.as_deref() {
        let labels = SourceLabels {
            source: source.clone(),
        };
        m.ingest_alerts
            .get_or_create(&labels)
            .inc_by(parsed.alerts.len() as u64);
        m.ingest_jobs
            .get_or_create(&labels)
            .inc_by(jobs.len() as u64);
        m.ingest_seconds
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
    }
    info!(message = "Ingested.", source = %source, alerts = parsed.alerts.len(), jobs = jobs.len(), truncated = parsed.truncated);
    let ids: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
    answer(
        StatusCode::ACCEPTED,
        json!({
            "alerts": parsed.alerts.len(),
            "jobs": ids,
            "spooled": spooled,
            "truncated": parsed.truncated,
            "notes": parsed.notes,
        }),
    )
}

/// How much of a body over `max_body` is read and dropped so the sender,
/// still writing, hears the 413 instead of a broken pipe; past that the
/// connection is closed.
const DRAIN_OVER_LIMIT: usize = 64 << 20;

enum BodyError {
    TooLarge,
    Unreadable(String),
}

/// The body, up to `max` bytes. Over that, the rest is read and dropped
/// (up to [`DRAIN_OVER_LIMIT`]) and the answer is [`BodyError::TooLarge`].
async fn read_body(body: Body, max: usize) -> Result<Bytes, BodyError> {
    use http_body_util::BodyExt as _;
    let mut body = body;
    let mut kept: Vec<u8> = Vec::new();
    let mut dropped = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Unreadable(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if dropped == 0 && kept.len() + data.len() <= max {
            kept.extend_from_slice(&data);
            continue;
        }
        dropped += data.len();
        if dropped > DRAIN_OVER_LIMIT {
            break;
        }
    }
    if dropped > 0 {
        return Err(BodyError::TooLarge);
    }
    Ok(Bytes::from(kept))
}

/// Every job confirmed by the broker, or kept in the spool: how many were
/// spooled. While the spool holds anything, new jobs queue behind it, in
/// order. Err: neither (no spool, or it is full), with why.
async fn make_durable(
    endpoint: &IngestEndpoint,
    jobs: &[crate::job::Job],
) -> Result<usize, String> {
    // Each job serialized once: published from this, spooled from this.
    let items: Vec<Spooled> = jobs
        .iter()
        .map(|job| Spooled {
            routing_key: JOB_KEY.to_string(),
            id: job.id.clone(),
            body: serde_json::to_vec(job).unwrap_or_default(),
        })
        .collect();
    let waiting = endpoint.spool.as_ref().is_some_and(|s| !s.is_empty());
    let unconfirmed: Vec<Spooled> = if waiting {
        items
    } else {
        let publisher = &endpoint.publisher;
        let published = tokio::time::timeout(
            CONFIRM_WITHIN,
            futures::future::join_all(items.iter().map(|item| async move {
                publisher
                    .publish(&item.routing_key, &item.id, &item.body)
                    .await
                    .is_ok()
            })),
        )
        .await
        .unwrap_or_else(|_| vec![false; items.len()]);
        items
            .into_iter()
            .zip(published)
            .filter(|(_, ok)| !ok)
            .map(|(item, _)| item)
            .collect()
    };
    if unconfirmed.is_empty() {
        return Ok(0);
    }
    let Some(spool) = endpoint.spool.clone() else {
        return Err("the broker did not confirm every job, and [spool] is off".into());
    };
    let n = unconfirmed.len();
    tokio::task::spawn_blocking(move || spool.push(&unconfirmed))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("the broker did not confirm every job, and the {e}"))?;
    warn!(
        message = "Jobs spooled: the broker did not confirm them in time.",
        jobs = n
    );
    Ok(n)
}

fn count(metrics: Option<&Metrics>, source: &str, outcome: &'static str) {
    if let Some(m) = metrics {
        m.ingest_bodies
            .get_or_create(&IngestLabels {
                source: source.to_string(),
                outcome,
            })
            .inc();
    }
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}
