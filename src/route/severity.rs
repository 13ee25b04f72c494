//! A route's `severity`: what the alerts it takes are called, when the
//! monitor's words are not fanout's (`P1`…`P4`, `sev1`, `page`).
//!
//! - `severity = "critical"`: every alert on the route;
//! - `severity = { from = "priority", map = { P1 = "critical", P2 = "error" } }`:
//!   by a label's value (`from` defaults to `severity`); a value the map
//!   does not name keeps the severity the source gave.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::job::{Alert, Severity};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum SeverityRule {
    Fixed(Severity),
    ByLabel(ByLabel),
}

/// A label's value → a severity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByLabel {
    #[serde(default = "severity_label")]
    pub from: String,
    pub map: BTreeMap<String, Severity>,
}

fn severity_label() -> String {
    "severity".to_string()
}

impl SeverityRule {
    /// Read a route's `severity` value. Err: (the key under `severity`,
    /// what is wrong).
    pub fn read(value: serde_json::Value) -> Result<Self, (String, String)> {
        match value {
            serde_json::Value::String(_) => serde_json::from_value(value)
                .map(SeverityRule::Fixed)
                .map_err(|e| (String::new(), e.to_string())),
            serde_json::Value::Object(_) => serde_path_to_error::deserialize(value)
                .map(SeverityRule::ByLabel)
                .map_err(|e| {
                    let at = e.path().to_string();
                    let at = if at == "." { String::new() } else { format!(".{at}") };
                    (at, e.into_inner().to_string())
                }),
            _ => Err((
                String::new(),
                "is a severity (\"critical\") or a mapping ({ from = \"priority\", map = { P1 = \"critical\" } })".into(),
            )),
        }
    }

    /// The severity `alert` gets on this route.
    pub fn apply(&self, alert: &Alert) -> Severity {
        match self {
            SeverityRule::Fixed(s) => *s,
            SeverityRule::ByLabel(rule) => alert
                .labels
                .get(&rule.from)
                .and_then(|value| rule.map.get(value))
                .copied()
                .unwrap_or(alert.severity),
        }
    }
}
