//! Any JSON object or array, mapped by templates in config, so Zabbix,
//! Uptime Kuma or a script need no code.
//!
//! Each alert is one element of the array at `items` (a JSON pointer; by
//! default the body when it is an array, else the body itself). Every
//! field is a template over `item` (the element) and `body` (the whole);
//! a field left out is read from the names monitors commonly use:
//!
//! | field | default: the first non-empty of `item.…` |
//! |---|---|
//! | `title` | `title`, `name`, `summary`, `subject`, `alertname` |
//! | `message` | `message`, `description`, `text`, `body`, `details` |
//! | `severity` | `severity`, `level`, `priority` |
//! | `status` | `status`, `state`: `resolved`, `ok`, `recovered`, `up`, `closed`, `inactive`, `normal` resolve; anything else fires |
//! | `group_key` | `group_key`, `id`, `key`, `fingerprint`, `alert_id`; else the title and labels |
//! | `labels` | `labels`, `tags` (an object) |
//! | `started_at` | `started_at`, `startsAt`, `timestamp`, `time`, `date` |
//! | `source_url` | `source_url`, `url`, `link` |

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{alert, read, severity_of, IngestError, Incoming, Parsed, Source};
use crate::job::Status;
use crate::template::Templates;

pub struct Generic;

/// `[ingest.generic]`'s mapping: a template per field, each optional.
#[derive(Clone, Debug, Default)]
pub struct Mapping {
    pub items: Option<String>,
    pub title: Option<String>,
    pub message: Option<String>,
    pub severity: Option<String>,
    pub status: Option<String>,
    pub group_key: Option<String>,
    pub started_at: Option<String>,
    pub source_url: Option<String>,
    pub labels: Vec<(String, String)>,
}

impl Mapping {
    /// The mapping's keys, as `[ingest.generic]` names them.
    pub const KEYS: &'static [&'static str] = &[
        "items",
        "title",
        "message",
        "severity",
        "status",
        "group_key",
        "started_at",
        "source_url",
        "labels",
    ];
}

const RESOLVED_WORDS: &[&str] = &[
    "resolved", "ok", "recovered", "up", "closed", "inactive", "normal",
];

impl Source for Generic {
    const NAME: &'static str = "generic";

    fn parse(body: &[u8], now: DateTime<Utc>) -> Result<Parsed, IngestError> {
        parse_mapped(body, now, &Mapping::default())
    }
}

/// Read `body` with `mapping`.
pub fn parse_mapped(
    body: &[u8],
    _now: DateTime<Utc>,
    mapping: &Mapping,
) -> Result<Parsed, IngestError> {
    let whole: Value = read(Generic::NAME, body)?;
    let error = |path: &str, message: String| IngestError {
        monitor: Generic::NAME,
        path: path.to_string(),
        message,
    };
    let items = match &mapping.items {
        Some(pointer) => match whole.pointer(pointer) {
            Some(Value::Array(items)) => items.clone(),
            Some(one @ Value::Object(_)) => vec![one.clone()],
            _ => return Err(error(pointer, "no array or object here (the `items` pointer)".into())),
        },
        None => match &whole {
            Value::Array(items) => items.clone(),
            Value::Object(_) => vec![whole.clone()],
            _ => return Err(error(".", "expected a JSON object or array".into())),
        },
    };
    let templates = Templates::new(chrono_tz::UTC);
    let mut parsed = Parsed::default();
    for (i, item) in items.into_iter().enumerate() {
        let context = serde_json::json!({ "item": item, "body": whole });
        let field = |name: &str, template: &Option<String>, defaults: &[&str]| -> Result<String, IngestError> {
            match template {
                Some(source) => templates
                    .render_inline(&format!("ingest.generic.{name}"), source, &context)
                    .map(|s| s.trim().to_string())
                    .map_err(|e| error(&format!("[{i}]"), format!("{name}: {e}"))),
                None => Ok(first_text(&item, defaults)),
            }
        };
        let mut labels = BTreeMap::new();
        if mapping.labels.is_empty() {
            for key in ["labels", "tags"] {
                if let Some(Value::Object(map)) = item.get(key) {
                    for (k, v) in map {
                        labels.insert(k.clone(), text(v));
                    }
                }
            }
        }
        for (name, source) in &mapping.labels {
            let value = templates
                .render_inline(&format!("ingest.generic.labels.{name}"), source, &context)
                .map_err(|e| error(&format!("[{i}]"), format!("labels.{name}: {e}")))?;
            labels.insert(name.clone(), value.trim().to_string());
        }
        let title = match field("title", &mapping.title, &["title", "name", "summary", "subject", "alertname"])? {
            t if t.is_empty() => format!("Alert {}", i + 1),
            t => t,
        };
        let status_word = field("status", &mapping.status, &["status", "state"])?;
        let status = if RESOLVED_WORDS.contains(&status_word.to_ascii_lowercase().as_str()) {
            Status::Resolved
        } else {
            Status::Firing
        };
        let key = match field("group_key", &mapping.group_key, &["group_key", "id", "key", "fingerprint", "alert_id"])? {
            k if k.is_empty() => {
                let described: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("{title}\u{0}{}", described.join("\u{0}"))
            }
            k => k,
        };
        let mut a = alert(
            format!("generic:{}", crate::delivery::short_hash(&key)),
            title,
            status,
        );
        a.message = field("message", &mapping.message, &["message", "description", "text", "body", "details"])?;
        let severity = field("severity", &mapping.severity, &["severity", "level", "priority"])?;
        if !severity.is_empty() {
            match severity_of(&severity) {
                Some(s) => a.severity = s,
                None => parsed.notes.push(format!("severity {severity:?} is not one fanout knows: read as warning")),
            }
        }
        let started = field("started_at", &mapping.started_at, &["started_at", "startsAt", "timestamp", "time", "date"])?;
        a.started_at = crate::clock::instant::parse_text(&started);
        a.source_url = Some(field("source_url", &mapping.source_url, &["source_url", "url", "link"])?)
            .filter(|u| !u.is_empty());
        a.labels = labels;
        a.payload = item;
        parsed.alerts.push(Incoming::new(a, key));
    }
    Ok(parsed)
}

/// The first of `keys` the item has as non-empty text (or number).
fn first_text(item: &Value, keys: &[&str]) -> String {
    keys.iter()
        .filter_map(|k| item.get(*k))
        .map(text)
        .find(|t| !t.is_empty())
        .unwrap_or_default()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.trim().to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
