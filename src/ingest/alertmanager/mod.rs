//! Alertmanager's webhook receiver body (`webhook_configs`, version 4):
//! one alert per element of `alerts`, each with its own `status` (a group
//! whose top-level status says firing can carry resolved alerts).
//!
//! Read from Alertmanager's `notify/webhook` message type: `version`,
//! `groupKey`, `truncatedAlerts` (alerts left out by `max_alerts`),
//! `status`, `receiver`, `groupLabels`, `commonLabels`,
//! `commonAnnotations`, `externalURL`, and per alert `status`, `labels`,
//! `annotations`, `startsAt`, `endsAt`, `generatorURL`, `fingerprint`.
//! Fields newer releases add are accepted and kept in the payload.
//!
//! - group key: `alertmanager:<fingerprint>` (a repeat of the alert joins
//!   its group; its resolution resolves it);
//! - title: the `summary` annotation, else the `alertname` label;
//! - message: the `description` (or `message`) annotation;
//! - severity: the `severity` label;
//! - started/ended: `startsAt`; `endsAt` only on a resolved alert (a
//!   firing one carries a future end);
//! - the source link is `generatorURL`, the silence link Alertmanager's
//!   own silence form with the alert's labels as matchers.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::{alert, each, read, severity_of, IngestError, Incoming, Parsed, Source};
use crate::job::Status;

pub struct Alertmanager;

/// The group as the webhook posts it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    group_key: Option<String>,
    #[serde(default)]
    truncated_alerts: u64,
    #[serde(default)]
    receiver: Option<String>,
    #[serde(default, rename = "externalURL")]
    external_url: Option<String>,
    /// Kept raw, each read on its own, so one element's path names it.
    alerts: Vec<Value>,
}

/// One alert of the group (also the core of a Grafana alert).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Element {
    pub(super) status: Status,
    #[serde(default)]
    pub(super) labels: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) starts_at: Option<String>,
    #[serde(default)]
    pub(super) ends_at: Option<String>,
    #[serde(default, rename = "generatorURL")]
    pub(super) generator_url: Option<String>,
    #[serde(default)]
    pub(super) fingerprint: Option<String>,
}

impl Source for Alertmanager {
    const NAME: &'static str = "alertmanager";

    fn parse(body: &[u8], _now: DateTime<Utc>) -> Result<Parsed, IngestError> {
        let body: Body = read(Self::NAME, body)?;
        let mut parsed = Parsed {
            truncated: body.truncated_alerts,
            ..Parsed::default()
        };
        if let Some(version) = body.version.as_deref().filter(|v| *v != "4") {
            parsed.notes.push(format!(
                "version {version:?}: read as version 4, the one this reader knows"
            ));
        }
        if body.truncated_alerts > 0 {
            parsed.notes.push(format!(
                "{} alert(s) of group {} were left out by the receiver's max_alerts",
                body.truncated_alerts,
                body.group_key.as_deref().unwrap_or("?")
            ));
        }
        for (element, raw) in each::<Element>(Self::NAME, "alerts", body.alerts)? {
            parsed.alerts.push(incoming(
                Self::NAME,
                element,
                raw,
                body.external_url.as_deref(),
                body.receiver.as_deref(),
                &mut parsed.notes,
            ));
        }
        Ok(parsed)
    }
}

/// An Alertmanager-shaped alert of `monitor` (Alertmanager's, or the
/// core of Grafana's), its group key `<monitor>:<fingerprint>`.
pub(super) fn incoming(
    monitor: &str,
    element: Element,
    raw: Value,
    external_url: Option<&str>,
    receiver: Option<&str>,
    notes: &mut Vec<String>,
) -> Incoming {
    let fingerprint = match element.fingerprint.filter(|f| !f.is_empty()) {
        Some(f) => f,
        None => {
            notes.push("an alert without a fingerprint: one was made from its labels".into());
            label_fingerprint(&element.labels)
        }
    };
    let title = element
        .annotations
        .get("summary")
        .or_else(|| element.labels.get("alertname"))
        .cloned()
        .unwrap_or_else(|| format!("{monitor} alert {fingerprint}"));
    let mut alert = alert(format!("{monitor}:{fingerprint}"), title, element.status);
    alert.message = element
        .annotations
        .get("description")
        .or_else(|| element.annotations.get("message"))
        .cloned()
        .unwrap_or_default();
    if let Some(word) = element.labels.get("severity") {
        match severity_of(word) {
            Some(severity) => alert.severity = severity,
            None => notes.push(format!(
                "severity {word:?} is not one fanout knows: read as warning"
            )),
        }
    }
    alert.started_at = element.starts_at.as_deref().and_then(time);
    if element.status == Status::Resolved {
        alert.ended_at = element.ends_at.as_deref().and_then(time);
    }
    alert.source_url = element.generator_url.filter(|u| !u.is_empty());
    let silence_url = external_url
        .filter(|u| !u.is_empty())
        .map(|base| silence_form(base, &element.labels));
    let runbook_url = element
        .annotations
        .get("runbook_url")
        .or_else(|| element.annotations.get("runbook"))
        .cloned();
    alert.labels = element.labels;
    alert.payload = match (raw, receiver) {
        (Value::Object(mut map), Some(receiver)) => {
            map.insert("receiver".into(), Value::String(receiver.into()));
            Value::Object(map)
        }
        (raw, _) => raw,
    };
    Incoming {
        alert,
        annotations: element.annotations,
        fingerprint,
        silence_url,
        runbook_url,
        charts: Vec::new(),
    }
}

/// A time as Alertmanager writes it; Go's zero time (and anything before
/// 2000) is no time at all.
pub(super) fn time(text: &str) -> Option<DateTime<Utc>> {
    crate::clock::instant::parse_text(text).filter(|t| t.year() >= 2000)
}

/// Alertmanager's new-silence form, filled with the alert's labels.
fn silence_form(external_url: &str, labels: &BTreeMap<String, String>) -> String {
    let matchers: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    let filter = format!("{{{}}}", matchers.join(","));
    let encoded: String = url::form_urlencoded::byte_serialize(filter.as_bytes()).collect();
    format!(
        "{}/#/silences/new?filter={encoded}",
        external_url.trim_end_matches('/')
    )
}

/// A stable name for an alert that came without a fingerprint: 16 hex
/// digits of SHA-256 over its sorted labels.
fn label_fingerprint(labels: &BTreeMap<String, String>) -> String {
    let text: String = labels
        .iter()
        .map(|(k, v)| format!("{k}\u{0}{v}\u{0}"))
        .collect();
    crate::delivery::short_hash(&text)
}
