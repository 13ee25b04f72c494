//! Request interception: every request a tab makes is paused and judged
//! by the [`OriginPolicy`] — blocked, passed (with Grafana's token where
//! it belongs), or, for a loopback origin whose certificate names another
//! host, fetched by fanout and handed to the page.

use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use chromiumoxide::cdp::browser_protocol::fetch::{
    ContinueRequestParams, EventRequestPaused, FailRequestParams, FulfillRequestParams, HeaderEntry,
};
use chromiumoxide::cdp::browser_protocol::network::ErrorReason;
use chromiumoxide::Page;
use futures::StreamExt;
use tracing::{debug, warn};

use super::{origin_of, RenderError};
use crate::render::origin::{OriginPolicy, Verdict};

/// The request gate of one tab (see [`OriginPolicy`]): every request the
/// page makes is paused until judged here. Each is answered on a task of
/// its own, so a slow proxied fetch never holds up the others.
pub(super) async fn gate(
    page: Page,
    mut paused: chromiumoxide::listeners::EventStream<EventRequestPaused>,
    policy: Arc<OriginPolicy>,
    proxy: reqwest::Client,
) {
    while let Some(event) = paused.next().await {
        let (page, policy, proxy) = (page.clone(), policy.clone(), proxy.clone());
        tokio::spawn(async move {
            let id = event.request_id.clone();
            let request = &event.request;
            let answered = match policy.judge(&request.url) {
                Verdict::Block => {
                    warn!(message = "Blocked a request to an origin that is not allowed.", origin = %origin_of(&request.url));
                    page.execute(FailRequestParams::new(id, ErrorReason::BlockedByClient))
                        .await
                        .map(drop)
                }
                Verdict::Pass { bearer: false } => {
                    page.execute(ContinueRequestParams::new(id)).await.map(drop)
                }
                Verdict::Pass { bearer: true } => {
                    let mut params = ContinueRequestParams::new(id);
                    params.headers = Some(with_bearer(
                        request.headers.inner(),
                        policy.token().map(|t| t.expose()),
                    ));
                    page.execute(params).await.map(drop)
                }
                Verdict::Proxy { bearer } => {
                    let token = policy.token().filter(|_| bearer).map(|t| t.expose());
                    let started = Instant::now();
                    match fetch_loopback(&proxy, request, token).await {
                        Ok(response) => {
                            debug!(message = "Fetched a loopback request.", origin = %origin_of(&request.url), ms = started.elapsed().as_millis() as u64);
                            let mut params = FulfillRequestParams::new(id, response.status);
                            params.response_headers = Some(response.headers);
                            params.body = Some(response.body.into());
                            page.execute(params).await.map(drop)
                        }
                        Err(e) => {
                            debug!(message = "Loopback fetch failed.", origin = %origin_of(&request.url), error = %e);
                            page.execute(FailRequestParams::new(id, ErrorReason::ConnectionFailed))
                                .await
                                .map(drop)
                        }
                    }
                }
            };
            // A request the page gave up on (a navigation away) cannot be
            // answered any more; nothing to do about it.
            if let Err(e) = answered {
                debug!(message = "A paused request was not answered.", error = %e);
            }
        });
    }
}

/// The request's headers with `Authorization: Bearer` set (and any other
/// Authorization dropped).
fn with_bearer(headers: &serde_json::Value, token: Option<&str>) -> Vec<HeaderEntry> {
    let mut out: Vec<HeaderEntry> = headers
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("authorization"))
        .map(|(name, value)| HeaderEntry::new(name.clone(), value.as_str().unwrap_or_default()))
        .collect();
    if let Some(token) = token {
        out.push(HeaderEntry::new("Authorization", format!("Bearer {token}")));
    }
    out
}

/// A loopback response, ready to hand to the page.
struct Proxied {
    status: i64,
    headers: Vec<HeaderEntry>,
    /// Base64, as Fetch.fulfillRequest takes it.
    body: String,
}

/// The most fanout reads of one proxied (loopback) response.
const MAX_PROXIED_BYTES: usize = 64 * 1024 * 1024;

/// Fetch a loopback URL ourselves (its certificate may name another host)
/// and hand the response to the page as if the browser had fetched it.
async fn fetch_loopback(
    client: &reqwest::Client,
    request: &chromiumoxide::cdp::browser_protocol::network::Request,
    token: Option<&str>,
) -> Result<Proxied, RenderError> {
    let method =
        reqwest::Method::from_bytes(request.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut builder = client.request(method, &request.url);
    for entry in with_bearer(request.headers.inner(), token) {
        builder = builder.header(entry.name, entry.value);
    }
    // A POST's body (Grafana's queries) comes in base64 parts.
    if let Some(entries) = &request.post_data_entries {
        let mut body = Vec::new();
        for entry in entries {
            if let Some(bytes) = &entry.bytes {
                let part = base64::engine::general_purpose::STANDARD
                    .decode(AsRef::<str>::as_ref(bytes))
                    .map_err(|e| RenderError::Browser(format!("loopback request body: {e}")))?;
                body.extend_from_slice(&part);
            }
        }
        builder = builder.body(body);
    }
    let mut response = builder
        .send()
        .await
        .map_err(|e| RenderError::Browser(format!("loopback fetch: {}", e.without_url())))?;
    let status = i64::from(response.status().as_u16());
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| {
            HeaderEntry::new(name.as_str(), String::from_utf8_lossy(value.as_bytes()))
        })
        .collect();
    // A page resource larger than this is not a chart: cut it rather than
    // let one loopback server fill fanout's memory.
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| RenderError::Browser(format!("loopback read: {}", e.without_url())))?
    {
        let room = MAX_PROXIED_BYTES.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    Ok(Proxied {
        status,
        headers,
        body: base64::engine::general_purpose::STANDARD.encode(&body),
    })
}
