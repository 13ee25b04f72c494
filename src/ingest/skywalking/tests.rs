//! SkyWalking alarm bodies, written after its alarm documentation.

use chrono::{TimeZone, Utc};

use super::SkyWalking;
use crate::ingest::{Parsed, Source};
use crate::job::{Severity, Status};

fn parse(fixture: &str) -> Parsed {
    let path = format!(
        "{}/tests/data/ingest/skywalking/{fixture}",
        env!("CARGO_MANIFEST_DIR")
    );
    SkyWalking::parse(&std::fs::read(&path).expect("fixture"), Utc::now()).expect("it reads")
}

#[test]
fn each_alarm_of_the_array_is_an_alert() {
    let parsed = parse("alarms.json");
    assert_eq!(parsed.alerts.len(), 2);
    assert!(parsed.notes.is_empty(), "{:?}", parsed.notes);
    let service = &parsed.alerts[0].alert;
    assert_eq!(
        service.title,
        "Response time of service checkout is more than 1000ms in 3 minutes of last 10 minutes."
    );
    assert_eq!(service.severity, Severity::Critical);
    assert_eq!(service.status, Status::Firing);
    assert_eq!(
        service.started_at,
        Some(Utc.with_ymd_and_hms(2025, 11, 30, 8, 0, 0).unwrap())
    );
    assert_eq!(service.labels["service"], "checkout");
    assert_eq!(service.labels["rule"], "service_resp_time_rule");
    assert_eq!(service.labels["team"], "payments");
    assert!(
        service
            .group_id
            .starts_with("skywalking:service_resp_time_rule:"),
        "{}",
        service.group_id
    );
    // An endpoint relation's name gives both ends, for routes to match.
    let relation = &parsed.alerts[1].alert;
    assert_eq!(relation.labels["scope"], "ENDPOINT_RELATION");
    assert_eq!(relation.labels["endpoint"], "POST:/api/pay");
    assert_eq!(relation.labels["service"], "checkout");
    assert_eq!(relation.labels["dest_endpoint"], "POST:/charge");
    assert_eq!(relation.labels["dest_service"], "payment-gateway");
    assert_eq!(relation.severity, Severity::Warning);
}

#[test]
fn a_recovery_resolves_the_same_group() {
    let firing = parse("alarms.json").alerts.remove(0);
    let recovered = parse("recovered.json").alerts.remove(0);
    assert_eq!(recovered.alert.status, Status::Resolved);
    assert_eq!(recovered.alert.group_id, firing.alert.group_id);
    assert_eq!(
        recovered.alert.ended_at,
        Some(Utc.with_ymd_and_hms(2025, 11, 30, 8, 10, 0).unwrap())
    );
}

#[test]
fn the_group_comes_from_rule_scope_and_entity_not_the_uuid() {
    let body = std::fs::read_to_string(format!(
        "{}/tests/data/ingest/skywalking/alarms.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let again = body.replace("9a3e7c1d0a01", "ffffffffffff");
    let a = SkyWalking::parse(body.as_bytes(), Utc::now()).unwrap();
    let b = SkyWalking::parse(again.as_bytes(), Utc::now()).unwrap();
    assert_ne!(a.alerts[0].fingerprint, b.alerts[0].fingerprint);
    assert_eq!(a.alerts[0].alert.group_id, b.alerts[0].alert.group_id);
    assert_ne!(a.alerts[0].alert.group_id, a.alerts[1].alert.group_id);
}

#[test]
fn a_batch_of_fifty_gives_fifty_groups() {
    let parsed = parse("batch50.json");
    assert_eq!(parsed.alerts.len(), 50);
    let mut groups: Vec<&str> = parsed
        .alerts
        .iter()
        .map(|a| a.alert.group_id.as_str())
        .collect();
    groups.sort();
    groups.dedup();
    assert_eq!(groups.len(), 50);
}

#[test]
fn an_older_release_with_numeric_ids_and_no_scope_name_reads() {
    let parsed = parse("legacy.json");
    let a = &parsed.alerts[0].alert;
    assert_eq!(a.labels["scope"], "SERVICE_INSTANCE");
    assert_eq!(a.labels["instance"], "checkout-pod-7");
    assert_eq!(a.labels["service"], "checkout");
    assert!(a.group_id.starts_with("skywalking:"));
    assert_eq!(a.severity, Severity::Warning);
}

#[test]
fn a_body_that_cannot_be_read_names_the_path() {
    for (body, path) in [
        (r#"[{"name":"a","startTime":"yesterday"}]"#, "[0].startTime"),
        (r#"[{"name":"a"},{"tags":[{"value":"x"}]}]"#, "[1].tags[0]"),
        ("\"alarm\"", "."),
        ("[", "."),
    ] {
        let e = SkyWalking::parse(body.as_bytes(), Utc::now()).unwrap_err();
        assert_eq!(e.path, path, "{body}: {e}");
    }
    let one = SkyWalking::parse(br#"{"name":"solo","alarmMessage":"x"}"#, Utc::now()).unwrap();
    assert_eq!(one.alerts.len(), 1);
    assert!(one.notes[0].contains("one alarm object"));
}
