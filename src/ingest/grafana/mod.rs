//! Grafana-managed alerting's webhook contact point: Alertmanager's body
//! (Grafana's notifier is Alertmanager's) with Grafana's fields on each
//! alert.
//!
//! Read after Grafana's documentation of the webhook notifier: at the top
//! `receiver`, `status`, `orgId`, `groupKey`, `truncatedAlerts`,
//! `externalURL`, `title`, `message`, `state`; per alert, besides
//! Alertmanager's fields, `silenceURL`, `dashboardURL`, `panelURL`,
//! `values` (by query ref), `valueString` and `imageURL`.
//!
//! What differs from [`super::alertmanager`]:
//! - group key `grafana:<fingerprint>`;
//! - the source link is the panel, else the dashboard, else the rule;
//! - the silence link is Grafana's own `silenceURL`;
//! - the message falls back to `valueString` (the values that fired);
//! - **the panel becomes the alert's chart**: from `panelURL`
//!   (`/d/<uid>…?viewPanel=<id>`, `panel-<id>` in Grafana 11.3+), else from
//!   the `__dashboardUid__`/`__panelId__` annotations (or labels) that some
//!   versions send; the org from `orgId`; the time range from an hour
//!   before the alert began to now (to its end when resolved).

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::alertmanager::{self, Element};
use super::{each, read, Incoming, IngestError, Parsed, Source};
use crate::job::{Chart, GrafanaPanel, Status};

pub struct Grafana;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    #[serde(default)]
    truncated_alerts: u64,
    #[serde(default)]
    receiver: Option<String>,
    #[serde(default)]
    org_id: Option<u64>,
    #[serde(default, rename = "externalURL")]
    external_url: Option<String>,
    alerts: Vec<Value>,
}

/// A Grafana alert: Alertmanager's, and Grafana's links.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GrafanaAlert {
    #[serde(flatten)]
    core: Element,
    #[serde(default, rename = "silenceURL")]
    silence_url: Option<String>,
    #[serde(default, rename = "dashboardURL")]
    dashboard_url: Option<String>,
    #[serde(default, rename = "panelURL")]
    panel_url: Option<String>,
    #[serde(default)]
    value_string: Option<String>,
}

impl Source for Grafana {
    const NAME: &'static str = "grafana";

    fn parse(body: &[u8], now: DateTime<Utc>) -> Result<Parsed, IngestError> {
        let body: Body = read(Self::NAME, body)?;
        let mut parsed = Parsed {
            truncated: body.truncated_alerts,
            ..Parsed::default()
        };
        if body.truncated_alerts > 0 {
            parsed.notes.push(format!(
                "{} alert(s) were left out by Grafana's contact point (max alerts)",
                body.truncated_alerts
            ));
        }
        for (g, raw) in each::<GrafanaAlert>(Self::NAME, "alerts", body.alerts)? {
            let panel = panel_of(&g);
            let links = [&g.panel_url, &g.dashboard_url]
                .into_iter()
                .find_map(|u| u.clone().filter(|u| !u.is_empty()));
            let value_string = g.value_string.filter(|v| !v.is_empty());
            let silence = g.silence_url.filter(|u| !u.is_empty());
            let mut incoming = alertmanager::incoming(
                Self::NAME,
                g.core,
                raw,
                body.external_url.as_deref(),
                body.receiver.as_deref(),
                &mut parsed.notes,
            );
            if let Some(link) = links {
                incoming.alert.source_url = Some(link);
            }
            // Grafana's external URL is Grafana, not an Alertmanager UI.
            incoming.silence_url = silence;
            if incoming.alert.message.is_empty() {
                incoming.alert.message = value_string.unwrap_or_default();
            }
            if let Some((uid, panel_id)) = panel {
                incoming
                    .charts
                    .push(chart(&uid, panel_id, body.org_id, &incoming, now));
            }
            parsed.alerts.push(incoming);
        }
        Ok(parsed)
    }
}

/// The dashboard uid and panel id an alert names, if it names one.
fn panel_of(g: &GrafanaAlert) -> Option<(String, u64)> {
    if let Some(found) = g.panel_url.as_deref().and_then(panel_in_url) {
        return Some(found);
    }
    let find = |key: &str| {
        g.core
            .annotations
            .get(key)
            .or_else(|| g.core.labels.get(key))
            .filter(|v| !v.is_empty())
    };
    let uid = find("__dashboardUid__")?;
    let panel = find("__panelId__")?.parse().ok()?;
    Some((uid.clone(), panel))
}

/// `…/d/<uid>[/<slug>]?…viewPanel=<id>` (or `panel-<id>`).
fn panel_in_url(url: &str) -> Option<(String, u64)> {
    let url = url::Url::parse(url).ok()?;
    let mut segments = url.path_segments()?;
    segments.find(|s| *s == "d")?;
    let uid = segments.next().filter(|s| !s.is_empty())?.to_string();
    let panel = url
        .query_pairs()
        .find(|(k, _)| k == "viewPanel")
        .and_then(|(_, v)| v.trim_start_matches("panel-").parse().ok())?;
    Some((uid, panel))
}

/// The panel over the alert's time: from an hour before it began to now,
/// or to ten minutes after its end when resolved.
fn chart(
    uid: &str,
    panel_id: u64,
    org_id: Option<u64>,
    incoming: &Incoming,
    now: DateTime<Utc>,
) -> Chart {
    let a = &incoming.alert;
    let began = a.started_at.unwrap_or(now);
    let to = match (a.status, a.ended_at) {
        (Status::Resolved, Some(end)) => (end + Duration::minutes(10))
            .timestamp_millis()
            .to_string(),
        _ => "now".to_string(),
    };
    Chart {
        grafana: Some(GrafanaPanel {
            dashboard_uid: uid.to_string(),
            panel_id,
            org_id,
            from: (began - Duration::hours(1)).timestamp_millis().to_string(),
            to,
            vars: BTreeMap::new(),
            tz: None,
        }),
        url: None,
        width: Chart::default_width(),
        height: Chart::default_height(),
        scale: Chart::default_scale(),
        title: Some(a.title.clone()),
    }
}
