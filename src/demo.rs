//! The demo panel server behind the embedded default config.
//!
//! `fanout send` with no `--config` must show a real chart with nothing
//! installed but Chromium. So it starts this small HTTPS server on
//! 127.0.0.1 with a self-signed certificate for *another* name — the case
//! seen in the field, a Grafana on https://localhost whose certificate says
//! something else — and renders from it with `ignore_https_errors` (which
//! fanout allows for loopback only). The page behaves like a Grafana solo
//! panel: it wants a bearer token, fetches its data late, draws it, then
//! gives Grafana's ready signal.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

/// The running demo server; stops when dropped.
pub struct DemoGrafana {
    pub url: String,
    pub token: String,
    handle: axum_server::Handle,
}

impl Drop for DemoGrafana {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

#[derive(Clone)]
struct Demo {
    token: Arc<String>,
    data_delay: Duration,
}

/// How late the demo data arrives, as a data source's would.
pub const DATA_DELAY: Duration = Duration::from_millis(300);

/// Start the demo server on a free loopback port.
pub async fn start() -> std::io::Result<DemoGrafana> {
    start_with(DATA_DELAY).await
}

/// Start it with another data delay (benchmarks).
pub async fn start_with(data_delay: Duration) -> std::io::Result<DemoGrafana> {
    let cert = rcgen::generate_simple_self_signed(vec!["grafana.demo.invalid".to_string()])
        .map_err(std::io::Error::other)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into()),
        )
        .map_err(std::io::Error::other)?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    let token = format!("demo-{:016x}", fastrand::u64(..));
    let app = Router::new()
        .route("/d-solo/{uid}/", get(panel))
        .route("/api/ds/query", get(data))
        .route("/api/org", get(org))
        .with_state(Demo {
            token: Arc::new(token.clone()),
            data_delay,
        });
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(
        listener,
        axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls)),
    )
    .handle(handle.clone());
    tokio::spawn(async move {
        if let Err(e) = server.serve(app.into_make_service()).await {
            tracing::warn!(message = "Demo panel server stopped.", error = %e);
        }
    });
    Ok(DemoGrafana {
        url: format!("https://localhost:{port}"),
        token,
        handle,
    })
}

fn authorized(demo: &Demo, headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {}", demo.token))
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({"message": "Unauthorized"})),
    )
        .into_response()
}

async fn panel(State(demo): State<Demo>, headers: HeaderMap) -> Response {
    if !authorized(&demo, &headers) {
        return unauthorized();
    }
    Html(PANEL_HTML).into_response()
}

async fn org(State(demo): State<Demo>, headers: HeaderMap) -> Response {
    if !authorized(&demo, &headers) {
        return unauthorized();
    }
    Json(serde_json::json!({"id": 1, "name": "fanout demo"})).into_response()
}

#[derive(serde::Deserialize)]
struct DataQuery {
    #[serde(rename = "panelId")]
    panel_id: Option<u64>,
}

/// A latency series that crosses its 1 s threshold, answered late, as a
/// real data source is.
async fn data(
    State(demo): State<Demo>,
    headers: HeaderMap,
    Query(q): Query<DataQuery>,
) -> Response {
    if !authorized(&demo, &headers) {
        return unauthorized();
    }
    tokio::time::sleep(demo.data_delay).await;
    let seed = q.panel_id.unwrap_or(7) as f64;
    let series: Vec<f64> = (0..60)
        .map(|i| {
            let t = f64::from(i);
            let base = 0.45 + 0.08 * (t / 5.0 + seed).sin();
            let spike = if i > 38 {
                0.55 + 0.25 * ((t - 38.0) / 4.0).sin().abs()
            } else {
                0.0
            };
            ((base + spike) * 1000.0).round() / 1000.0
        })
        .collect();
    Json(serde_json::json!({"title": "gateway p99 latency", "unit": "s", "threshold": 1.0, "series": series}))
        .into_response()
}

const PANEL_HTML: &str = r##"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>demo panel</title>
<script>window.__grafanaSceneContext = {}; window.__grafanaRunningQueryCount = 1;</script>
<style>html,body{margin:0;height:100%;background:#181b1f;font-family:Inter,Helvetica,Arial,sans-serif}
canvas{display:block;width:100%;height:100%}</style></head>
<body><canvas id="panel"></canvas>
<script>
(async () => {
  const q = new URLSearchParams(location.search);
  const res = await fetch('/api/ds/query?panelId=' + (q.get('panelId') || '7'));
  const d = await res.json();
  const c = document.getElementById('panel');
  const dpr = window.devicePixelRatio || 1, W = innerWidth, H = innerHeight;
  c.width = W * dpr; c.height = H * dpr;
  const g = c.getContext('2d'); g.scale(dpr, dpr);
  g.fillStyle = '#181b1f'; g.fillRect(0, 0, W, H);
  g.fillStyle = '#ccccdc'; g.font = '600 14px sans-serif'; g.fillText(d.title, 12, 22);
  const L = 48, T = 36, R = W - 16, B = H - 28, max = 1.5;
  const y = v => B - (v / max) * (B - T), x = i => L + i * (R - L) / (d.series.length - 1);
  g.strokeStyle = '#2c3235'; g.fillStyle = '#8e8e9e'; g.font = '11px sans-serif'; g.lineWidth = 1;
  for (let v = 0; v <= max + 1e-9; v += 0.5) {
    g.beginPath(); g.moveTo(L, y(v)); g.lineTo(R, y(v)); g.stroke();
    g.fillText(v.toFixed(1) + ' ' + d.unit, 8, y(v) + 4);
  }
  g.setLineDash([6, 4]); g.strokeStyle = '#f2495c'; g.beginPath();
  g.moveTo(L, y(d.threshold)); g.lineTo(R, y(d.threshold)); g.stroke(); g.setLineDash([]);
  g.beginPath(); d.series.forEach((v, i) => i ? g.lineTo(x(i), y(v)) : g.moveTo(x(i), y(v)));
  g.lineTo(R, B); g.lineTo(L, B); g.closePath(); g.fillStyle = 'rgba(255,152,48,0.25)'; g.fill();
  g.beginPath(); d.series.forEach((v, i) => i ? g.lineTo(x(i), y(v)) : g.moveTo(x(i), y(v)));
  g.strokeStyle = '#ff9830'; g.lineWidth = 2; g.stroke();
  requestAnimationFrame(() => { window.__grafanaRunningQueryCount = 0; });
})().catch(() => { window.__grafanaRunningQueryCount = 0; });
</script></body></html>"##;
