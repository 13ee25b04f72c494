//! Any JSON: the common names by default, templates from config.

use chrono::{TimeZone, Utc};

use super::{parse_mapped, Generic, Mapping};
use crate::ingest::Source;
use crate::job::{Severity, Status};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/ingest/generic/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture")
}

#[test]
fn common_field_names_need_no_mapping() {
    let parsed = Generic::parse(&fixture("defaults.json"), Utc::now()).unwrap();
    let (firing, ok) = (&parsed.alerts[0].alert, &parsed.alerts[1].alert);
    assert_eq!(firing.title, "db-1 disk /var 93%");
    assert_eq!(firing.message, "/var is 93% full");
    assert_eq!(firing.severity, Severity::Critical);
    assert_eq!(firing.status, Status::Firing);
    assert_eq!(firing.labels["host"], "db-1");
    assert_eq!(
        firing.started_at,
        Some(Utc.with_ymd_and_hms(2025, 11, 30, 8, 0, 0).unwrap())
    );
    assert!(firing.source_url.as_deref().unwrap().contains("triggerid=1"));
    // `OK` resolves, and the same id is the same group.
    assert_eq!(ok.status, Status::Resolved);
    assert_eq!(ok.group_id, firing.group_id);
}

#[test]
fn templates_map_any_shape() {
    // Uptime Kuma's webhook: a heartbeat (status 0 down, 1 up) and a monitor.
    let mapping = Mapping {
        title: Some("{{ item.monitor.name }} is {{ 'down' if item.heartbeat.status == 0 else 'up' }}".into()),
        message: Some("{{ item.heartbeat.msg }}".into()),
        status: Some("{{ 'firing' if item.heartbeat.status == 0 else 'resolved' }}".into()),
        group_key: Some("kuma-{{ item.monitor.id }}".into()),
        started_at: Some("{{ item.heartbeat.time }}".into()),
        source_url: Some("{{ item.monitor.url }}".into()),
        severity: Some("critical".into()),
        labels: vec![("monitor".into(), "{{ item.monitor.name }}".into())],
        ..Mapping::default()
    };
    let down = parse_mapped(&fixture("kuma.json"), Utc::now(), &mapping).unwrap();
    let a = &down.alerts[0].alert;
    assert_eq!(a.title, "checkout-api is down");
    assert_eq!(a.message, "connect ECONNREFUSED 10.0.0.7:443");
    assert_eq!(a.status, Status::Firing);
    assert_eq!(a.labels["monitor"], "checkout-api");
    assert_eq!(a.severity, Severity::Critical);
    assert_eq!(
        a.started_at,
        Some(Utc.with_ymd_and_hms(2026, 11, 30, 8, 0, 0).unwrap())
    );
    let up_body = String::from_utf8(fixture("kuma.json"))
        .unwrap()
        .replace("\"status\": 0", "\"status\": 1");
    let up = parse_mapped(up_body.as_bytes(), Utc::now(), &mapping).unwrap();
    assert_eq!(up.alerts[0].alert.status, Status::Resolved);
    assert_eq!(up.alerts[0].alert.group_id, a.group_id);
}

#[test]
fn items_point_into_the_body_and_a_bad_pointer_or_template_says_where() {
    let body = br#"{"data":{"alerts":[{"name":"a"},{"name":"b"}]}}"#;
    let mapping = Mapping {
        items: Some("/data/alerts".into()),
        ..Mapping::default()
    };
    let parsed = parse_mapped(body, Utc::now(), &mapping).unwrap();
    assert_eq!(parsed.alerts.len(), 2);
    let e = parse_mapped(
        body,
        Utc::now(),
        &Mapping {
            items: Some("/data/nope".into()),
            ..Mapping::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.path, "/data/nope");
    let e = parse_mapped(
        br#"[{"n":1}]"#,
        Utc::now(),
        &Mapping {
            title: Some("{{ item.n | nosuchfilter }}".into()),
            ..Mapping::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.path, "[0]");
    assert!(e.message.starts_with("title:"), "{e}");
    assert!(Generic::parse(b"42", Utc::now()).is_err());
}
