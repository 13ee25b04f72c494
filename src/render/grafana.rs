//! `fanout check` for Grafana: does it answer, does the token work, is the
//! org right? A bare 403 in the field meant any of these; this says which.

use super::config::RenderConfig;
use crate::check::CheckRow;
use crate::net::is_loopback;

pub async fn check(render: &RenderConfig) -> Option<CheckRow> {
    let grafana = render.grafana.as_ref()?;
    let component = "grafana";
    let target = grafana.url.origin().ascii_serialization();
    let loopback = grafana.url.host_str().is_some_and(is_loopback);
    let client = match reqwest::Client::builder()
        // The same rule as rendering: only a loopback Grafana may have a
        // certificate for another name.
        .danger_accept_invalid_certs(render.ignore_https_errors && loopback)
        .timeout(render.timeout)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            return Some(CheckRow::fail(
                component,
                target,
                e.to_string(),
                "TLS setup failed",
            ))
        }
    };
    let url = format!("{}/api/org", grafana.url.as_str().trim_end_matches('/'));
    let mut request = client
        .get(&url)
        .header("X-Grafana-Org-Id", grafana.org_id.to_string());
    if let Some(token) = &grafana.token {
        request = request.bearer_auth(token.expose());
    }
    let row = match request.send().await {
        Ok(r) if r.status().is_success() => {
            let name = r
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|v| v["name"].as_str().map(str::to_string))
                .unwrap_or_default();
            CheckRow::ok(component, target, format!("token accepted, org {} {name}", grafana.org_id))
        }
        Ok(r) if r.status() == reqwest::StatusCode::UNAUTHORIZED => CheckRow::fail(
            component,
            target,
            "401 Unauthorized",
            "the token is missing, wrong or expired: create a service-account token (Viewer) and set [render.grafana] token",
        ),
        Ok(r) if r.status() == reqwest::StatusCode::FORBIDDEN => CheckRow::fail(
            component,
            target,
            "403 Forbidden",
            "the token does not belong to this org: check [render.grafana] org_id and the service account's org",
        ),
        Ok(r) => CheckRow::fail(component, target, format!("answered {}", r.status()), "is [render.grafana] url Grafana's root URL?"),
        Err(e) => CheckRow::fail(
            component,
            target,
            e.to_string().replace(&url, "/api/org"),
            if e.is_connect() {
                "is Grafana running and reachable at that address? (a certificate for another name is accepted only on loopback with ignore_https_errors)"
            } else {
                "is [render.grafana] url right?"
            },
        ),
    };
    Some(row)
}
