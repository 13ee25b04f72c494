//! Graylog event notification bodies, written after Graylog's docs.

use chrono::{TimeZone, Utc};

use super::Graylog;
use crate::ingest::Source;
use crate::job::{Severity, Status};

fn body() -> String {
    std::fs::read_to_string(format!(
        "{}/tests/data/ingest/graylog/event.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture")
}

#[test]
fn an_event_is_one_firing_alert_keyed_by_its_definition_and_key() {
    let parsed = Graylog::parse(body().as_bytes(), Utc::now()).unwrap();
    assert_eq!(parsed.alerts.len(), 1);
    let a = &parsed.alerts[0].alert;
    assert_eq!(a.title, "Failed logins: 203.0.113.9");
    assert_eq!(a.message, "Failed logins: 37 from 203.0.113.9");
    assert_eq!(a.status, Status::Firing);
    assert_eq!(a.severity, Severity::Critical, "priority 3");
    assert_eq!(a.labels["src_ip"], "203.0.113.9");
    assert_eq!(a.labels["count"], "37");
    assert_eq!(a.labels["event_definition"], "Failed logins");
    assert!(a.group_id.starts_with("graylog:6655aa01c2d3e4f5a6b7c8d9:"));
    assert_eq!(
        a.started_at.map(|t| t.timestamp_millis()),
        Some(Utc.with_ymd_and_hms(2026, 11, 30, 8, 15, 42).unwrap().timestamp_millis() + 120)
    );
    assert_eq!(a.payload["backlog"].as_array().map(Vec::len), Some(2));
    assert!(parsed.notes[0].contains("2 backlog"));
}

#[test]
fn a_repeat_of_one_key_joins_its_group_and_another_key_does_not() {
    let first = Graylog::parse(body().as_bytes(), Utc::now()).unwrap();
    let repeat = body().replace("01JDQX6S0W4N0V8K3Z2Y1X0W9V", "01JDQX9999999999999999999");
    let repeat = Graylog::parse(repeat.as_bytes(), Utc::now()).unwrap();
    let other = body().replace("\"key\": \"203.0.113.9\"", "\"key\": \"198.51.100.4\"");
    let other = Graylog::parse(other.as_bytes(), Utc::now()).unwrap();
    assert_eq!(first.alerts[0].alert.group_id, repeat.alerts[0].alert.group_id);
    assert_ne!(first.alerts[0].alert.group_id, other.alerts[0].alert.group_id);
}

#[test]
fn a_body_without_an_event_names_what_is_missing() {
    let e = Graylog::parse(br#"{"event_definition_title":"x"}"#, Utc::now()).unwrap_err();
    assert!(e.message.contains("event"), "{e}");
    let e = Graylog::parse(br#"{"event":{"priority":"high"}}"#, Utc::now()).unwrap_err();
    assert_eq!(e.path, "event.priority", "{e}");
}
