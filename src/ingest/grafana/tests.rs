//! Grafana webhook bodies, written after Grafana's webhook notifier docs.

use chrono::{TimeZone, Utc};

use super::Grafana;
use crate::ingest::{Parsed, Source};
use crate::job::{Severity, Status};

fn parse() -> Parsed {
    let path = format!(
        "{}/tests/data/ingest/grafana/panel.json",
        env!("CARGO_MANIFEST_DIR")
    );
    Grafana::parse(&std::fs::read(&path).expect("fixture"), Utc::now()).expect("it reads")
}

#[test]
fn a_grafana_alert_names_its_panel_and_the_panel_becomes_its_chart() {
    let parsed = parse();
    assert_eq!(parsed.alerts.len(), 3);
    let a = &parsed.alerts[0];
    assert_eq!(a.alert.group_id, "grafana:a1b2c3d4e5f60718");
    assert_eq!(a.alert.title, "Checkout p99 above 2s");
    assert_eq!(a.alert.severity, Severity::Critical);
    assert_eq!(
        a.alert.source_url.as_deref(),
        Some("https://grafana.internal/d/checkout-svc?orgId=1&viewPanel=7")
    );
    assert!(a
        .silence_url
        .as_deref()
        .unwrap()
        .contains("/alerting/silence/new"));
    assert_eq!(a.alert.payload["values"]["A"], 2.41);
    let chart = a.charts[0].grafana.as_ref().expect("a Grafana chart");
    assert_eq!(chart.dashboard_uid, "checkout-svc");
    assert_eq!(chart.panel_id, 7);
    assert_eq!(chart.org_id, Some(1));
    let began = Utc.with_ymd_and_hms(2026, 11, 30, 8, 0, 0).unwrap();
    assert_eq!(
        chart.from,
        (began - chrono::Duration::hours(1))
            .timestamp_millis()
            .to_string()
    );
    assert_eq!(chart.to, "now");
}

#[test]
fn annotations_name_the_panel_when_the_url_does_not() {
    let parsed = parse();
    let a = &parsed.alerts[1];
    assert_eq!(a.alert.status, Status::Resolved);
    assert_eq!(
        a.alert.message, "[ var='B' labels={queue=orders} value=1200 ]",
        "no description: the values that fired"
    );
    assert_eq!(a.silence_url, None, "an empty silenceURL is none");
    let chart = a.charts[0].grafana.as_ref().unwrap();
    assert_eq!((chart.dashboard_uid.as_str(), chart.panel_id), ("queues", 12));
    let end = Utc.with_ymd_and_hms(2026, 11, 30, 7, 10, 0).unwrap();
    assert_eq!(chart.to, end.timestamp_millis().to_string());
    assert_eq!(
        a.alert.source_url.as_deref(),
        Some("https://grafana.internal/alerting/grafana/q9/view")
    );
}

#[test]
fn grafana_11_panel_ids_and_slugs_are_read() {
    let parsed = parse();
    let chart = parsed.alerts[2].charts[0].grafana.as_ref().unwrap();
    assert_eq!((chart.dashboard_uid.as_str(), chart.panel_id), ("ops", 3));
}

#[test]
fn an_alert_that_names_no_panel_has_no_chart() {
    let body = br#"{"alerts":[{"status":"firing","labels":{"alertname":"x"},"panelURL":"https://g/d/abc"}]}"#;
    let parsed = Grafana::parse(body, Utc::now()).unwrap();
    assert!(parsed.alerts[0].charts.is_empty());
    let e = Grafana::parse(br#"{"alerts":[{"status":"firing","values":{"A":"high"},"panelURL":7}]}"#, Utc::now())
        .unwrap_err();
    assert_eq!(e.path, "alerts[0].panelURL", "{e}");
}
