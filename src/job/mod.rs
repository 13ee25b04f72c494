//! The job contract (version 1): what producers put on the queue.
//!
//! The types here are the contract. Every struct rejects unknown fields so a
//! typo (`"destinaton"`) fails loudly instead of silently dropping a target,
//! and `fanout schema` prints the JSON Schema generated from these types.
//! Decoding (bytes → [`Inbound`]) is in [`decode`]; checks that need the
//! config (destinations exist, recipients known) are in [`validate`].

pub mod celery;
pub mod decode;
pub mod times;

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use crate::span::Span;

pub use decode::{decode, DecodeError, Inbound, MAX_MESSAGE_BYTES, MAX_READ_BYTES};

/// The only contract version this build reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct V1;

impl Serialize for V1 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(1)
    }
}

impl<'de> Deserialize<'de> for V1 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match u64::deserialize(d)? {
            1 => Ok(V1),
            other => Err(de::Error::custom(format!(
                "unsupported version {other}; this fanout reads version 1"
            ))),
        }
    }
}

impl JsonSchema for V1 {
    fn schema_name() -> Cow<'static, str> {
        "Version".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "integer", "const": 1 })
    }
}

/// One notification job: an alert, the charts to show with it, who gets it
/// and how the escalation runs.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Job {
    pub version: V1,
    /// Unique per job; keys the notification log, so a redelivered job is
    /// not sent twice. Letters, digits and `._:@-`, at most 128.
    pub id: String,
    pub alert: Alert,
    /// Panels rendered once per job and shown in every delivery.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub charts: Vec<Chart>,
    /// Destinations (by name, from the config) with per-target overrides.
    pub targets: Vec<Target>,
    /// Escalation steps; with none, every target is notified once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<StepSchema>")]
    pub escalation: Vec<Step>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppress: Option<Suppress>,
}

/// The alert as the upstream tool described it.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Alert {
    /// Alert group: notifications of one group share a thread.
    pub group_id: String,
    pub title: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub severity: Severity,
    #[serde(default)]
    pub status: Status,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Link back to the source (dashboard, alert rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    /// When the alert began: RFC 3339, ISO 8601 without an offset (UTC),
    /// or a Unix epoch in s, ms, µs or ns. A zero value (Go's
    /// `0001-01-01T00:00:00Z`) or one more than a day ahead is dropped
    /// at intake, with a warning ([`times::settle`]).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::clock::instant::serde_opt"
    )]
    #[schemars(schema_with = "time_schema")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended, in the same forms. Dropped at intake on a firing
    /// alert (Alertmanager sends a future end for those), and when it
    /// lies before the start.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::clock::instant::serde_opt"
    )]
    #[schemars(schema_with = "time_schema")]
    pub ended_at: Option<DateTime<Utc>>,
    /// The raw upstream body (Alertmanager, SkyWalking, …), for templates.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub payload: serde_json::Value,
    /// Set by fanout when the job was over the size limit and `payload`
    /// was trimmed to fit: the payload's size in bytes before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_trimmed: Option<u64>,
}

/// A time field: text or an epoch number.
fn time_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "RFC 3339 (`2026-11-23T03:00:00Z`), ISO 8601 without an offset (read as UTC), or a Unix epoch in seconds, milliseconds, microseconds or nanoseconds (told apart by size).",
        "type": ["string", "integer", "number", "null"]
    })
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Error,
    #[default]
    Warning,
    Info,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Firing,
    Resolved,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// A chart to render: a Grafana panel or any page on an allowed origin.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Chart {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grafana: Option<GrafanaPanel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default = "Chart::default_width")]
    pub width: u32,
    #[serde(default = "Chart::default_height")]
    pub height: u32,
    /// Device scale factor: 2 renders a sharper image of twice the pixels.
    #[serde(default = "Chart::default_scale")]
    pub scale: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

impl Chart {
    pub const MIN_SIDE: u32 = 100;
    pub const MAX_SIDE: u32 = 4000;
    pub const MAX_SCALE: f64 = 3.0;

    /// 1: CSS pixels.
    pub fn default_scale() -> f64 {
        1.0
    }

    /// 1000 CSS pixels.
    pub fn default_width() -> u32 {
        1000
    }

    /// 500 CSS pixels.
    pub fn default_height() -> u32 {
        500
    }
}

/// A Grafana panel, rendered through `/d-solo/{uid}/`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrafanaPanel {
    pub dashboard_uid: String,
    pub panel_id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<u64>,
    #[serde(default = "GrafanaPanel::default_from")]
    pub from: String,
    #[serde(default = "GrafanaPanel::default_to")]
    pub to: String,
    /// Dashboard variables, sent as `var-<name>=<value>`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tz: Option<String>,
}

impl GrafanaPanel {
    fn default_from() -> String {
        "now-1h".into()
    }

    fn default_to() -> String {
        "now".into()
    }
}

/// A destination named in the config, with what this job changes for it.
/// Which overrides a destination accepts depends on its channel: each
/// channel declares its own and checks them at validation (the job schema
/// lists every channel's).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Target {
    pub destination: String,
    /// The overrides this job sets (`to`, `channel_id`, …), by their JSON
    /// names, as the job gave them.
    #[serde(flatten)]
    pub overrides: serde_json::Map<String, serde_json::Value>,
}

/// `destination`, and every other field kept as an override for the
/// channel to check. A target without `destination` says which of its
/// keys looks like a misspelling of it.
impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut overrides =
            serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        match overrides.remove("destination") {
            Some(serde_json::Value::String(destination)) => Ok(Self {
                destination,
                overrides,
            }),
            Some(other) => Err(D::Error::custom(format!(
                "`destination` must be a string, not {other}"
            ))),
            None => {
                let near = overrides
                    .keys()
                    .find(|k| strsim::damerau_levenshtein(k, "destination") <= 2);
                Err(D::Error::custom(match near {
                    Some(key) => format!(
                        "missing field `destination` (`{key}` is not a field: a misspelling?)"
                    ),
                    None => "missing field `destination`".to_string(),
                }))
            }
        }
    }
}

impl Target {
    /// A target of `destination` with no overrides.
    pub fn to(destination: impl Into<String>) -> Self {
        Self {
            destination: destination.into(),
            overrides: serde_json::Map::new(),
        }
    }

    /// The same target with override `field` set to `value`.
    pub fn with(mut self, field: &str, value: serde_json::Value) -> Self {
        self.overrides.insert(field.to_string(), value);
        self
    }
}

/// The contract's frame of a target; [`schema_with_targets`] adds each
/// channel's overrides to it.
impl JsonSchema for Target {
    fn schema_name() -> Cow<'static, str> {
        "Target".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A destination named in the config, with what this job changes for it.\nWhich overrides a destination accepts depends on its channel.",
            "type": "object",
            "properties": { "destination": { "type": "string" } },
            "required": ["destination"],
            "additionalProperties": false
        })
    }
}

/// Drop repeats: a job whose rendered key was notified within `window` is
/// not sent again.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Suppress {
    /// A template, e.g. `{{ alert.labels.service }}`.
    pub key: String,
    pub window: Span,
}

/// One escalation step. On the wire each step is an object with exactly one
/// of `notify`, `wait`, `repeat`, `if_time`, `resolve`.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    Notify {
        destinations: Vec<String>,
        important: bool,
    },
    Wait(Span),
    Repeat(u32),
    IfTime(TimeWindow),
    Resolve,
}

/// Run the next step only inside this window of local time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeWindow {
    /// `HH:MM`
    pub from: String,
    /// `HH:MM`
    pub to: String,
    /// IANA time zone, e.g. `Asia/Shanghai`.
    #[serde(default = "TimeWindow::default_tz")]
    pub tz: String,
    /// `mon` … `sun`; empty means every day.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<String>,
}

impl TimeWindow {
    fn default_tz() -> String {
        "UTC".into()
    }
}

/// The wire form of a step, one optional field per kind; [`Step`] is what
/// the code uses once exactly one is known to be set.
#[derive(Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStep {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    notify: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    important: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wait: Option<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    repeat: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    if_time: Option<TimeWindow>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resolve: Option<bool>,
}

impl TryFrom<RawStep> for Step {
    type Error = String;

    fn try_from(raw: RawStep) -> Result<Self, String> {
        let kinds = [
            raw.notify.is_some(),
            raw.wait.is_some(),
            raw.repeat.is_some(),
            raw.if_time.is_some(),
            raw.resolve.is_some(),
        ];
        let set = kinds.iter().filter(|k| **k).count();
        if set != 1 {
            return Err(format!(
                "a step has exactly one of notify, wait, repeat, if_time, resolve ({set} given)"
            ));
        }
        if raw.important.is_some() && raw.notify.is_none() {
            return Err("important goes with notify".into());
        }
        Ok(if let Some(destinations) = raw.notify {
            Step::Notify {
                destinations,
                important: raw.important.unwrap_or(false),
            }
        } else if let Some(wait) = raw.wait {
            Step::Wait(wait)
        } else if let Some(n) = raw.repeat {
            Step::Repeat(n)
        } else if let Some(window) = raw.if_time {
            Step::IfTime(window)
        } else if raw.resolve == Some(true) {
            Step::Resolve
        } else {
            return Err("resolve, when given, must be true".into());
        })
    }
}

impl From<&Step> for RawStep {
    fn from(step: &Step) -> Self {
        match step {
            Step::Notify {
                destinations,
                important,
            } => RawStep {
                notify: Some(destinations.clone()),
                important: important.then_some(true),
                ..RawStep::default()
            },
            Step::Wait(span) => RawStep {
                wait: Some(*span),
                ..RawStep::default()
            },
            Step::Repeat(n) => RawStep {
                repeat: Some(*n),
                ..RawStep::default()
            },
            Step::IfTime(window) => RawStep {
                if_time: Some(window.clone()),
                ..RawStep::default()
            },
            Step::Resolve => RawStep {
                resolve: Some(true),
                ..RawStep::default()
            },
        }
    }
}

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Step::try_from(RawStep::deserialize(d)?).map_err(de::Error::custom)
    }
}

impl Serialize for Step {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        RawStep::from(self).serialize(s)
    }
}

/// The schema of a step: one object shape per kind.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum StepSchema {
    Notify(NotifySchema),
    Wait(WaitSchema),
    Repeat(RepeatSchema),
    IfTime(IfTimeSchema),
    Resolve(ResolveSchema),
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct NotifySchema {
    notify: Vec<String>,
    #[serde(default)]
    important: bool,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct WaitSchema {
    wait: Span,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RepeatSchema {
    #[schemars(range(min = 1, max = 5))]
    repeat: u32,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct IfTimeSchema {
    if_time: TimeWindow,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ResolveSchema {
    #[schemars(extend("const" = true))]
    resolve: bool,
}

/// A change to an alert group's state, sent with routing key `signal`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Signal {
    pub version: V1,
    pub signal: SignalKind,
    pub group_id: String,
    /// For `silence`: an RFC 3339 time or a duration from now (`"1h"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Who sent it, for the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// Why a signal cannot be applied: the field and what is wrong with it
/// (`group_id: use 1 to 200 of …`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SignalError {
    pub field: &'static str,
    pub message: String,
}

impl Signal {
    /// The one check of a signal, made by whoever sends it (`fanout
    /// signal`) and by the worker that applies it: the group id is plain
    /// ([`valid_id`], at most 200 bytes), and a silence has an end — an RFC
    /// 3339 time or a duration from `now` — that is ahead and within a
    /// year. Returns that end for a silence, `None` otherwise (`until` on
    /// another kind is ignored).
    pub fn check(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, SignalError> {
        if !valid_id(&self.group_id, 200) {
            return Err(SignalError {
                field: "group_id",
                message: "use 1 to 200 of letters, digits and `._:@-`, not starting with `.`"
                    .into(),
            });
        }
        match (self.signal, self.until.as_deref()) {
            (SignalKind::Silence, Some(text)) => crate::clock::instant::silence_until(text, now)
                .map(Some)
                .map_err(|message| SignalError {
                    field: "until",
                    message,
                }),
            (SignalKind::Silence, None) => Err(SignalError {
                field: "until",
                message: "a silence needs an end (\"1h\" or an RFC 3339 time)".into(),
            }),
            _ => Ok(None),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SignalKind {
    Acknowledge,
    Resolve,
    Silence,
    Unsilence,
}

/// What `fanout schema` prints: the job contract, with signals alongside,
/// and `overrides` (each channel's per-target fields, by name) in
/// `$defs.Target`.
pub fn schema_with_targets(
    overrides: serde_json::Map<String, serde_json::Value>,
) -> serde_json::Value {
    let mut value = schema();
    if let Some(properties) = value
        .pointer_mut("/$defs/Target/properties")
        .and_then(|p| p.as_object_mut())
    {
        properties.extend(overrides);
    }
    value
}

/// The job contract with signals alongside, and targets with no overrides.
pub fn schema() -> serde_json::Value {
    let mut root = schemars::schema_for!(Job);
    let signal = schemars::schema_for!(Signal);
    root.insert(
        "description".into(),
        "A fanout job, version 1. Signals (routing key `signal`) are described under $defs.Signal."
            .into(),
    );
    let mut value = root.to_value();
    if let Some(defs) = value.get_mut("$defs").and_then(|d| d.as_object_mut()) {
        let mut signal = signal.to_value();
        if let Some(obj) = signal.as_object_mut() {
            if let Some(serde_json::Value::Object(inner)) = obj.remove("$defs") {
                for (k, v) in inner {
                    defs.entry(k).or_insert(v);
                }
            }
            obj.remove("$schema");
        }
        defs.insert("Signal".into(), signal);
    }
    value
}

/// Ids are used in file names, headers and queue keys: keep them plain.
pub fn valid_id(id: &str, max: usize) -> bool {
    !id.is_empty()
        && id.len() <= max
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:@-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(kind: SignalKind, group: &str, until: Option<&str>) -> Signal {
        Signal {
            version: V1,
            signal: kind,
            group_id: group.into(),
            until: until.map(str::to_string),
            by: None,
        }
    }

    #[test]
    fn a_signal_is_checked_once_for_sender_and_worker() {
        let now = Utc::now();
        let ok = signal(SignalKind::Silence, "ag-1", Some("1h"))
            .check(now)
            .unwrap();
        assert_eq!(ok, Some(now + chrono::Duration::hours(1)));
        assert_eq!(
            signal(SignalKind::Acknowledge, "ag-1", None).check(now),
            Ok(None)
        );
        let field = |s: Signal| s.check(now).unwrap_err().field;
        assert_eq!(field(signal(SignalKind::Resolve, "../x", None)), "group_id");
        assert_eq!(field(signal(SignalKind::Resolve, "", None)), "group_id");
        assert_eq!(field(signal(SignalKind::Silence, "ag-1", None)), "until");
        assert_eq!(
            field(signal(SignalKind::Silence, "ag-1", Some("whenever"))),
            "until"
        );
        assert_eq!(
            field(signal(
                SignalKind::Silence,
                "ag-1",
                Some("2000-01-01T00:00:00Z")
            )),
            "until"
        );
    }
}
