//! Graylog's HTTP event notification: one event (with its definition and
//! a backlog of the messages behind it) per body, one alert.
//!
//! Read after Graylog's event notification documentation: at the top
//! `event_definition_id`, `event_definition_title`,
//! `event_definition_description`, `event_definition_type`; the `event`
//! with `id`, `timestamp`, `message`, `source`, `key`, `key_tuple`,
//! `priority`, `alert`, `fields`, `group_by_fields`; and `backlog`.
//!
//! - group key: the event definition and the event's `key`
//!   (`graylog:<definition>:<hash>`), so a repeat of one key joins its
//!   group (a route's suppression window then holds it back);
//! - title: the definition's title, with the key when there is one;
//! - message: the event's message;
//! - labels: the event's fields and group-by fields, `source`, `key`,
//!   `event_definition`;
//! - severity from `priority`: 1 info, 2 warning, 3 and above critical;
//! - Graylog sends no resolution: its alerts only fire.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::{alert, read, IngestError, Incoming, Parsed, Source};
use crate::job::{Severity, Status};

pub struct Graylog;

#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    event_definition_id: String,
    #[serde(default)]
    event_definition_title: String,
    #[serde(default)]
    event_definition_description: String,
    event: Event,
    #[serde(default)]
    backlog: Vec<Value>,
}

#[derive(Deserialize)]
struct Event {
    #[serde(default)]
    id: String,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    message: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    priority: Option<i64>,
    #[serde(default)]
    fields: BTreeMap<String, Value>,
    #[serde(default)]
    group_by_fields: BTreeMap<String, Value>,
}

impl Source for Graylog {
    const NAME: &'static str = "graylog";

    fn parse(body: &[u8], _now: DateTime<Utc>) -> Result<Parsed, IngestError> {
        let raw: Value = read(Self::NAME, body)?;
        let body: Body = serde_path_to_error::deserialize(&raw).map_err(|e| IngestError {
            monitor: Self::NAME,
            path: e.path().to_string(),
            message: e.into_inner().to_string(),
        })?;
        let mut parsed = Parsed::default();
        let event = body.event;
        let definition = match body.event_definition_id.as_str() {
            "" => "unknown".to_string(),
            id => id
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
                .take(64)
                .collect(),
        };
        let key_hash = crate::delivery::short_hash(&event.key);
        let title = match (body.event_definition_title.as_str(), event.key.as_str()) {
            ("", "") => format!("Graylog event {}", event.id),
            ("", key) => format!("Graylog event for {key}"),
            (title, "") => title.to_string(),
            (title, key) => format!("{title}: {key}"),
        };
        let mut a = alert(
            format!("graylog:{definition}:{key_hash}"),
            title,
            Status::Firing,
        );
        a.message = match event.message.trim() {
            "" => body.event_definition_description.clone(),
            m => m.to_string(),
        };
        a.severity = match event.priority {
            Some(p) if p >= 3 => Severity::Critical,
            Some(2) => Severity::Warning,
            Some(_) => Severity::Info,
            None => Severity::Warning,
        };
        for (k, v) in event.fields.iter().chain(event.group_by_fields.iter()) {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            a.labels.insert(k.clone(), text);
        }
        for (k, v) in [
            ("source", &event.source),
            ("key", &event.key),
            ("event_definition", &body.event_definition_title),
        ] {
            if !v.is_empty() {
                a.labels.insert(k.into(), v.clone());
            }
        }
        a.started_at = event
            .timestamp
            .as_deref()
            .and_then(crate::clock::instant::parse_text);
        if !body.backlog.is_empty() {
            parsed.notes.push(format!(
                "{} backlog message(s) kept in the payload",
                body.backlog.len()
            ));
        }
        a.payload = raw;
        parsed.alerts.push(Incoming::new(a, event.id));
        Ok(parsed)
    }
}
