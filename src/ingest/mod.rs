//! Ingest: a monitor's own webhook body → the alerts it carries, each as
//! fanout's [`Alert`] with what its source says about it.
//!
//! One folder per source, registered in the one [`registry!`] line at the
//! bottom, shaped like a channel: a parser from the monitor's body to
//! [`Incoming`] alerts, its own tests, its fixtures under
//! `tests/data/ingest/<source>/`. A parser never panics on input: a body
//! it cannot read is an [`IngestError`] naming the JSON path, and an
//! element it can read only in part still yields an alert, with what was
//! missing in [`Parsed::notes`].
//!
//! What comes next (routes, group keys from `group_by`, escalation
//! policies, the `/ingest/<source>` endpoint) reads [`Incoming`] only.

pub mod auth;
pub mod config;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::job::{Alert, Severity, Status};

/// An alert as a monitor sent it, in fanout's words.
#[derive(Clone, Debug, Serialize)]
pub struct Incoming {
    /// The alert as a job carries it. `group_id` holds the group key the
    /// source suggests (Alertmanager: the alert's fingerprint); a route's
    /// `group_by` may replace it.
    pub alert: Alert,
    /// The source's annotations (`summary`, `description`, `runbook_url`,
    /// …): what templates and routes may read besides the labels.
    pub annotations: BTreeMap<String, String>,
    /// What names this alert at its source across repeats (Alertmanager's
    /// `fingerprint`), for the log.
    pub fingerprint: String,
    /// Where the source silences it, when it says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silence_url: Option<String>,
    /// Where its runbook is, when it says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runbook_url: Option<String>,
    /// Charts the alert names itself (a Grafana alert's panel).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub charts: Vec<crate::job::Chart>,
}

impl Incoming {
    /// `alert`, named `fingerprint` at its source, with no annotations,
    /// links or charts yet.
    pub fn new(alert: Alert, fingerprint: String) -> Self {
        Self {
            alert,
            annotations: BTreeMap::new(),
            fingerprint,
            silence_url: None,
            runbook_url: None,
            charts: Vec::new(),
        }
    }
}

/// What one body yields.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Parsed {
    pub alerts: Vec<Incoming>,
    /// Alerts the source says it left out of this body (Alertmanager's
    /// `truncatedAlerts`): reported, never silently dropped.
    pub truncated: u64,
    /// What the parser had to guess or leave out, one line each.
    pub notes: Vec<String>,
}

/// A body that cannot be read: where, and why. Never quotes the body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{monitor} body: {path}: {message}")]
pub struct IngestError {
    /// The source's name (`alertmanager`).
    pub monitor: &'static str,
    /// The JSON path of the fault (`alerts[3].labels`), `.` for the whole.
    pub path: String,
    pub message: String,
}

/// What every source does: read its monitor's body.
pub trait Source {
    /// Its name in `/ingest/<name>` and in `[ingest.<name>]`.
    const NAME: &'static str;

    /// The alerts in `body`, received at `now` (for the times a source
    /// leaves out).
    fn parse(body: &[u8], now: DateTime<Utc>) -> Result<Parsed, IngestError>;
}

/// Read `body` as `T`, an error naming the JSON path where it is not.
pub fn read<T: serde::de::DeserializeOwned>(
    source: &'static str,
    body: &[u8],
) -> Result<T, IngestError> {
    if let Err(e) = std::str::from_utf8(body) {
        return Err(IngestError {
            monitor: source,
            path: ".".into(),
            message: format!(
                "the body is not UTF-8 (byte {} is not), so it is not JSON",
                e.valid_up_to()
            ),
        });
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        // "?": the error came before any path (a body cut short).
        let path = match e.path().to_string() {
            unknown if unknown == "?" => ".".to_string(),
            path => path,
        };
        IngestError {
            monitor: source,
            path,
            message: e.into_inner().to_string(),
        }
    })
}

/// Each element of `elements` read as `E`, with its raw value; an error
/// names the element's path (`{array}[3].labels`).
pub fn each<E: serde::de::DeserializeOwned>(
    monitor: &'static str,
    array: &str,
    elements: Vec<serde_json::Value>,
) -> Result<Vec<(E, serde_json::Value)>, IngestError> {
    elements
        .into_iter()
        .enumerate()
        .map(|(i, raw)| {
            let element = serde_path_to_error::deserialize(&raw).map_err(|e| {
                let inner = e.path().to_string();
                IngestError {
                    monitor,
                    path: match inner.as_str() {
                        "." => format!("{array}[{i}]"),
                        _ => format!("{array}[{i}].{inner}"),
                    },
                    message: e.into_inner().to_string(),
                }
            })?;
            Ok((element, raw))
        })
        .collect()
}

/// A severity as monitors spell it (`critical`, `P1`, `warn`, `major`,
/// Zabbix's `disaster` and `average`, …), case aside; `None` for words it
/// does not know.
pub fn severity_of(word: &str) -> Option<Severity> {
    match word.trim().to_ascii_lowercase().as_str() {
        "critical" | "crit" | "fatal" | "emergency" | "emerg" | "alert" | "disaster" | "p0"
        | "p1" | "high" | "urgent" | "page" => Some(Severity::Critical),
        "error" | "err" | "major" | "p2" => Some(Severity::Error),
        "warning" | "warn" | "minor" | "average" | "medium" | "p3" => Some(Severity::Warning),
        "info" | "information" | "informational" | "notice" | "low" | "none" | "ok" | "p4"
        | "p5" | "debug" => Some(Severity::Info),
        _ => None,
    }
}

/// A new alert with fanout's defaults, to be filled in by a source.
pub fn alert(group_id: String, title: String, status: Status) -> Alert {
    Alert {
        group_id,
        title,
        message: String::new(),
        severity: Severity::default(),
        status,
        labels: BTreeMap::new(),
        source_url: None,
        started_at: None,
        ended_at: None,
        payload: serde_json::Value::Null,
        payload_trimmed: None,
    }
}

/// Generates the closed set of sources and the dispatch over it.
macro_rules! registry {
    ($($variant:ident => $module:ident :: $source:ident),+ $(,)?) => {
        $(pub mod $module;)+

        /// The monitors fanout reads.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum SourceKind {
            $($variant),+
        }

        impl SourceKind {
            pub const ALL: &'static [SourceKind] = &[$(SourceKind::$variant),+];

            pub fn name(self) -> &'static str {
                match self {
                    $(SourceKind::$variant => <$module::$source as Source>::NAME),+
                }
            }

            pub fn parse(self, body: &[u8], now: DateTime<Utc>) -> Result<Parsed, IngestError> {
                match self {
                    $(SourceKind::$variant => <$module::$source as Source>::parse(body, now)),+
                }
            }
        }
    };
}

registry! {
    Alertmanager => alertmanager::Alertmanager,
    SkyWalking => skywalking::SkyWalking,
    Grafana => grafana::Grafana,
    Graylog => graylog::Graylog,
    Generic => generic::Generic,
}

impl SourceKind {
    /// [`SourceKind::parse`], with the `generic` source's `[ingest.generic]`
    /// mapping when there is one (the only source configured this way).
    pub fn parse_configured(
        self,
        body: &[u8],
        now: DateTime<Utc>,
        mapping: Option<&generic::Mapping>,
    ) -> Result<Parsed, IngestError> {
        match (self, mapping) {
            (SourceKind::Generic, Some(mapping)) => generic::parse_mapped(body, now, mapping),
            _ => self.parse(body, now),
        }
    }

    /// The source called `name` (`alertmanager`, …).
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_as_monitors_spell_them() {
        assert_eq!(severity_of("CRITICAL"), Some(Severity::Critical));
        assert_eq!(severity_of(" P1 "), Some(Severity::Critical));
        assert_eq!(severity_of("major"), Some(Severity::Error));
        assert_eq!(severity_of("warn"), Some(Severity::Warning));
        assert_eq!(severity_of("average"), Some(Severity::Warning));
        assert_eq!(severity_of("info"), Some(Severity::Info));
        assert_eq!(severity_of("spicy"), None);
    }

    #[test]
    fn every_source_is_named_once() {
        let mut names: Vec<&str> = SourceKind::ALL.iter().map(|k| k.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), SourceKind::ALL.len());
        for kind in SourceKind::ALL {
            assert_eq!(SourceKind::named(kind.name()), Some(*kind));
        }
    }
}
