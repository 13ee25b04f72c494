//! Alertmanager bodies, written after its webhook documentation.

use chrono::{TimeZone, Utc};

use super::Alertmanager;
use crate::ingest::Source;
use crate::job::{Severity, Status};

fn parse(fixture: &str) -> crate::ingest::Parsed {
    let path = format!(
        "{}/tests/data/ingest/alertmanager/{fixture}",
        env!("CARGO_MANIFEST_DIR")
    );
    let body = std::fs::read(&path).expect("fixture");
    Alertmanager::parse(&body, Utc::now()).expect("the fixture reads")
}

#[test]
fn a_firing_alert_keeps_what_a_person_needs() {
    let parsed = parse("firing.json");
    assert_eq!(parsed.alerts.len(), 1);
    assert!(parsed.notes.is_empty(), "{:?}", parsed.notes);
    let a = &parsed.alerts[0];
    assert_eq!(a.alert.group_id, "alertmanager:3f2a9c0d81b7e645");
    assert_eq!(a.alert.title, "Checkout p99 latency above 2s");
    assert_eq!(
        a.alert.message,
        "p99 latency is 2.41s on checkout-1:8080 (threshold 2s)."
    );
    assert_eq!(a.alert.severity, Severity::Critical);
    assert_eq!(a.alert.status, Status::Firing);
    assert_eq!(a.alert.labels["team"], "payments");
    assert_eq!(
        a.alert.started_at.map(|t| t.timestamp_millis()),
        Some(Utc.with_ymd_and_hms(2026, 11, 30, 8, 0, 0).unwrap().timestamp_millis() + 123)
    );
    // A firing alert's endsAt is Alertmanager's guess at a future end.
    assert_eq!(a.alert.ended_at, None);
    assert_eq!(
        a.alert.source_url.as_deref(),
        Some("http://prometheus.internal:9090/graph?g0.expr=checkout_p99+%3E+2&g0.tab=1")
    );
    assert_eq!(
        a.runbook_url.as_deref(),
        Some("https://runbooks.internal/checkout-latency")
    );
    let silence = a.silence_url.as_deref().unwrap();
    assert!(
        silence.starts_with("http://alertmanager.internal:9093/#/silences/new?filter=%7B"),
        "{silence}"
    );
    assert!(silence.contains("team%3D%22payments%22"), "{silence}");
    assert_eq!(a.alert.payload["receiver"], "fanout");
    assert_eq!(a.alert.payload["fingerprint"], "3f2a9c0d81b7e645");
}

#[test]
fn each_alert_of_a_group_keeps_its_own_status() {
    let parsed = parse("mixed.json");
    let statuses: Vec<Status> = parsed.alerts.iter().map(|a| a.alert.status).collect();
    assert_eq!(statuses, [Status::Firing, Status::Resolved]);
    let (firing, resolved) = (&parsed.alerts[0].alert, &parsed.alerts[1].alert);
    assert_eq!(firing.title, "DiskFull", "no summary: the alertname");
    assert_eq!(firing.source_url, None, "an empty generatorURL is none");
    assert_eq!(firing.ended_at, None, "Go's zero time is no time");
    assert_eq!(
        resolved.ended_at,
        Some(Utc.with_ymd_and_hms(2026, 11, 30, 7, 30, 0).unwrap())
    );
    assert_eq!(resolved.severity, Severity::Error, "P2");
    assert_ne!(firing.group_id, resolved.group_id);
    // A trailing slash in externalURL makes no double slash.
    assert!(parsed.alerts[0]
        .silence_url
        .as_deref()
        .unwrap()
        .starts_with("http://alertmanager.internal:9093/#/"));
}

#[test]
fn left_out_alerts_and_guesses_are_reported() {
    let parsed = parse("truncated.json");
    assert_eq!(parsed.truncated, 148);
    assert_eq!(parsed.alerts.len(), 1);
    let notes = parsed.notes.join("\n");
    assert!(notes.contains("148 alert(s)"), "{notes}");
    assert!(notes.contains("without a fingerprint"), "{notes}");
    assert!(notes.contains("\"spicy\""), "{notes}");
    let a = &parsed.alerts[0];
    assert_eq!(a.alert.severity, Severity::Warning);
    assert_eq!(a.fingerprint.len(), 16);
    assert_eq!(a.alert.group_id, format!("alertmanager:{}", a.fingerprint));
    // The same labels give the same made-up fingerprint, so repeats group.
    assert_eq!(parse("truncated.json").alerts[0].fingerprint, a.fingerprint);
    // Fields a newer release adds are kept, not refused.
    assert_eq!(a.alert.payload["someFieldANewerReleaseAdds"]["x"], 1);
}

#[test]
fn a_body_that_cannot_be_read_names_the_path() {
    let cases: &[(&str, &str)] = &[
        (r#"{"alerts":[{"status":"firing","labels":{"a":1}}]}"#, "alerts[0].labels.a"),
        (r#"{"alerts":[{"status":"burning"}]}"#, "alerts[0].status"),
        (r#"{"alerts":[{"labels":{}}]}"#, "alerts[0]"),
        (r#"{"version":"4"}"#, "."),
        (r#"{"alerts":"#, "alerts"),
        ("[]", "."),
    ];
    for (body, path) in cases {
        let e = Alertmanager::parse(body.as_bytes(), Utc::now()).unwrap_err();
        assert_eq!(&e.path, path, "{body}: {e}");
        assert!(e.to_string().starts_with("alertmanager body: "), "{e}");
    }
    let invalid_utf8 = b"{\"alerts\":[{\"status\":\"firing\",\"labels\":{\"a\":\"\xff\"}}]}";
    assert!(Alertmanager::parse(invalid_utf8, Utc::now()).is_err());
}

#[test]
fn an_empty_group_yields_no_alert() {
    let parsed = Alertmanager::parse(br#"{"version":"4","alerts":[]}"#, Utc::now()).unwrap();
    assert!(parsed.alerts.is_empty());
}
