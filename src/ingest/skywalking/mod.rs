//! SkyWalking's alarm webhook (`alarm-settings.yml`, hook type
//! `webhook`): a JSON array of alarm messages, one alert each.
//!
//! Read after SkyWalking's alarm documentation (`backend-alarm.md`): each
//! element has `scopeId`, `scope`, `name` (the entity, e.g. `{endpoint} in
//! {service}`), `id0`/`id1` (the entity ids; numbers in older releases),
//! `ruleName`, `alarmMessage`, `startTime` (ms), `tags` (`[{key, value}]`)
//! and, since 10.x, `uuid` and `recoveryTime`. A recovery notification
//! (posted to the hook's `recovery-urls`) is the same message with
//! `recoveryTime` set: it resolves its alarm. SkyWalking never retries a
//! hook, so nothing here may refuse a body over a field it does not know.
//!
//! - group key: the rule, scope and entity ids (`skywalking:<rule>:<hash>`),
//!   never `uuid`, so the same alarm sent again joins its group;
//! - title: the first line of `alarmMessage`; message: all of it;
//! - labels: `rule`, `scope`, the entity's parts (`service`, `instance`,
//!   `endpoint`, and `dest_*` for a relation) and every tag;
//! - severity: the `level` (or `severity`) tag.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::{alert, each, read, severity_of, IngestError, Incoming, Parsed, Source};
use crate::job::Status;

pub struct SkyWalking;

/// One alarm message.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Alarm {
    #[serde(default)]
    scope_id: Option<i64>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    id0: Option<Id>,
    #[serde(default)]
    id1: Option<Id>,
    #[serde(default)]
    rule_name: Option<String>,
    #[serde(default)]
    alarm_message: String,
    #[serde(default)]
    start_time: Option<i64>,
    #[serde(default)]
    recovery_time: Option<i64>,
    #[serde(default)]
    uuid: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
}

/// An entity id: text since 8.x, a number before.
#[derive(Deserialize)]
#[serde(untagged)]
enum Id {
    Text(String),
    Number(i64),
}

impl Id {
    fn text(&self) -> String {
        match self {
            Id::Text(s) => s.clone(),
            Id::Number(n) => n.to_string(),
        }
    }
}

#[derive(Deserialize)]
struct Tag {
    key: String,
    #[serde(default)]
    value: String,
}

/// The longest title taken from an alarm message, in characters.
const TITLE_MAX: usize = 200;

impl Source for SkyWalking {
    const NAME: &'static str = "skywalking";

    fn parse(body: &[u8], _now: DateTime<Utc>) -> Result<Parsed, IngestError> {
        let value: Value = read(Self::NAME, body)?;
        let mut parsed = Parsed::default();
        let elements = match value {
            Value::Array(elements) => elements,
            Value::Object(_) => {
                parsed
                    .notes
                    .push("one alarm object, not an array: read as one alarm".into());
                vec![value]
            }
            _ => {
                return Err(IngestError {
                    monitor: Self::NAME,
                    path: ".".into(),
                    message: "expected an array of alarm messages".into(),
                })
            }
        };
        for (alarm, raw) in each::<Alarm>(Self::NAME, "", elements)? {
            parsed.alerts.push(incoming(alarm, raw, &mut parsed.notes));
        }
        Ok(parsed)
    }
}

fn incoming(alarm: Alarm, raw: Value, notes: &mut Vec<String>) -> Incoming {
    let scope = alarm
        .scope
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| alarm.scope_id.and_then(scope_name).map(str::to_string))
        .unwrap_or_else(|| "UNKNOWN".into());
    let rule = alarm.rule_name.clone().unwrap_or_default();
    let (id0, id1) = (
        alarm.id0.as_ref().map(Id::text).unwrap_or_default(),
        alarm.id1.as_ref().map(Id::text).unwrap_or_default(),
    );
    let key = crate::delivery::short_hash(&format!(
        "{rule}\u{0}{scope}\u{0}{id0}\u{0}{id1}\u{0}{}",
        if id0.is_empty() { alarm.name.as_str() } else { "" }
    ));
    let readable_rule: String = rule
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .take(80)
        .collect();
    let group_id = match readable_rule.as_str() {
        "" => format!("skywalking:{key}"),
        rule => format!("skywalking:{rule}:{key}"),
    };
    let first_line = alarm.alarm_message.lines().next().unwrap_or_default().trim();
    let title = match first_line {
        "" => format!("{rule} on {scope} {}", alarm.name),
        line => line.chars().take(TITLE_MAX).collect(),
    };
    let status = if alarm.recovery_time.is_some() {
        Status::Resolved
    } else {
        Status::Firing
    };
    let mut a = alert(group_id, title, status);
    a.message = alarm.alarm_message.trim().to_string();
    let mut labels = entity_labels(&scope, &alarm.name);
    labels.insert("scope".into(), scope.clone());
    if !rule.is_empty() {
        labels.insert("rule".into(), rule.clone());
    }
    for tag in &alarm.tags {
        labels.insert(tag.key.clone(), tag.value.clone());
    }
    let level = labels.get("level").or_else(|| labels.get("severity"));
    if let Some(word) = level {
        match severity_of(word) {
            Some(severity) => a.severity = severity,
            None => notes.push(format!(
                "level {word:?} is not one fanout knows: read as warning"
            )),
        }
    }
    a.labels = labels;
    a.started_at = alarm.start_time.and_then(crate::clock::instant::from_epoch_int);
    a.ended_at = alarm
        .recovery_time
        .and_then(crate::clock::instant::from_epoch_int);
    a.payload = raw;
    Incoming::new(a, alarm.uuid.filter(|u| !u.is_empty()).unwrap_or(key))
}

/// `DefaultScopeDefine`'s names of the scopes alarms are raised on.
fn scope_name(id: i64) -> Option<&'static str> {
    Some(match id {
        1 => "SERVICE",
        2 => "SERVICE_INSTANCE",
        3 => "ENDPOINT",
        4 => "SERVICE_RELATION",
        5 => "SERVICE_INSTANCE_RELATION",
        6 => "ENDPOINT_RELATION",
        _ => return None,
    })
}

/// The parts of an entity name, as SkyWalking writes them per scope:
/// `{instance} of {service}`, `{endpoint} in {service}`, and a relation's
/// source and destination joined by ` to `.
fn entity_labels(scope: &str, name: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut put = |k: &str, v: &str| {
        if !v.is_empty() {
            labels.insert(k.to_string(), v.trim().to_string());
        }
    };
    let one = |side: &str, of: &str| -> (String, String) {
        match side.rsplit_once(of) {
            Some((part, service)) => (part.to_string(), service.to_string()),
            None => (String::new(), side.to_string()),
        }
    };
    match scope {
        "SERVICE" => put("service", name),
        "SERVICE_INSTANCE" => {
            let (instance, service) = one(name, " of ");
            put("instance", &instance);
            put("service", &service);
        }
        "ENDPOINT" => {
            let (endpoint, service) = one(name, " in ");
            put("endpoint", &endpoint);
            put("service", &service);
        }
        "SERVICE_RELATION" | "SERVICE_INSTANCE_RELATION" | "ENDPOINT_RELATION" => {
            let sep = match scope {
                "SERVICE_INSTANCE_RELATION" => " of ",
                "ENDPOINT_RELATION" => " in ",
                _ => "",
            };
            if let Some((source, dest)) = name.split_once(" to ") {
                let part = if scope == "SERVICE_INSTANCE_RELATION" {
                    "instance"
                } else {
                    "endpoint"
                };
                if sep.is_empty() {
                    put("service", source);
                    put("dest_service", dest);
                } else {
                    let (sp, ss) = one(source, sep);
                    let (dp, ds) = one(dest, sep);
                    put(part, &sp);
                    put("service", &ss);
                    put(&format!("dest_{part}"), &dp);
                    put("dest_service", &ds);
                }
            }
        }
        _ => {}
    }
    labels.insert("entity".into(), name.to_string());
    labels
}
