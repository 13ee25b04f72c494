//! Monitors' webhook bodies read through the binary: `fanout route-test`.

use crate::support::{fanout, repo};

fn fixture(source: &str, name: &str) -> String {
    repo()
        .join(format!("tests/data/ingest/{source}/{name}"))
        .display()
        .to_string()
}

#[test]
fn route_test_shows_each_alert_of_an_alertmanager_group_and_sends_nothing() {
    let run = fanout(
        &[
            "route-test",
            "alertmanager",
            &fixture("alertmanager", "mixed.json"),
        ],
        None,
    );
    run.assert_code(0);
    let out = &run.stdout;
    assert!(out.contains("2 alert(s)"), "{run}");
    assert!(out.contains("nothing is sent"), "{run}");
    assert!(out.contains("1  firing    warning   DiskFull"), "{run}");
    assert!(out.contains("2  resolved  error     DiskFull"), "{run}");
    assert!(
        out.contains("group    alertmanager:8899aabbccddeeff"),
        "{run}"
    );
    assert!(out.contains("ended    2026-11-30 07:30:00 UTC"), "{run}");
}

#[test]
fn route_test_reports_left_out_alerts_and_prints_json() {
    let run = fanout(
        &[
            "route-test",
            "alertmanager",
            &fixture("alertmanager", "truncated.json"),
            "--json",
        ],
        None,
    );
    run.assert_code(0);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(doc["truncated"], 148);
    assert_eq!(doc["alerts"][0]["alert"]["labels"]["job"], "node");
    assert!(doc["notes"][0].as_str().unwrap().contains("148"), "{run}");
}

#[test]
fn route_test_refuses_a_bad_body_and_an_unknown_source_with_why() {
    let bad = br#"{"alerts":[{"status":"firing","labels":{"a":["not","text"]}}]}"#;
    let run = fanout(&["route-test", "alertmanager", "-"], Some(bad));
    run.assert_code(2);
    assert!(
        run.stderr
            .contains("alertmanager body: alerts[0].labels.a:"),
        "{run}"
    );
    let run = fanout(&["route-test", "zabbix", "-"], Some(b"{}"));
    run.assert_code(2);
    assert!(run.stderr.contains("it reads: alertmanager"), "{run}");
}

#[test]
fn route_test_shows_the_panel_a_grafana_alert_names_as_its_chart() {
    let run = fanout(
        &["route-test", "grafana", &fixture("grafana", "panel.json")],
        None,
    );
    run.assert_code(0);
    assert!(run.stdout.contains("3 alert(s)"), "{run}");
    assert!(
        run.stdout
            .contains("chart    grafana checkout-svc panel 7 org 1, "),
        "{run}"
    );
}

#[test]
fn route_test_reads_a_skywalking_batch_alarm_by_alarm() {
    let run = fanout(
        &[
            "route-test",
            "skywalking",
            &fixture("skywalking", "batch50.json"),
        ],
        None,
    );
    run.assert_code(0);
    assert!(run.stdout.contains("50 alert(s)"), "{run}");
    assert!(run.stdout.contains("svc-49"), "{run}");
}

#[test]
fn route_test_reads_a_graylog_event() {
    let run = fanout(
        &["route-test", "graylog", &fixture("graylog", "event.json")],
        None,
    );
    run.assert_code(0);
    assert!(
        run.stdout
            .contains("1  firing    critical  Failed logins: 203.0.113.9"),
        "{run}"
    );
    assert!(run.stdout.contains("note: 2 backlog message(s)"), "{run}");
}
