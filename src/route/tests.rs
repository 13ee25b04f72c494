//! Routes: matchers, first match and `continue`, group_by, the job.

use std::rc::Rc;

use chrono::Utc;

use super::Matcher;
use crate::config::Config;
use crate::ingest::{Incoming, SourceKind};

fn alerts(source: SourceKind, fixture: &str) -> Vec<Incoming> {
    let path = format!(
        "{}/tests/data/ingest/{}/{fixture}",
        env!("CARGO_MANIFEST_DIR"),
        source.name()
    );
    source
        .parse(&std::fs::read(path).unwrap(), Utc::now())
        .unwrap()
        .alerts
}

const DESTINATIONS: &str = r#"
[destinations.ops-mail]
channel = "email"
smtp_url = "smtp://127.0.0.1:25"
from = "fanout@example.com"
to = ["ops@example.com"]

[destinations.lead-mail]
channel = "email"
smtp_url = "smtp://127.0.0.1:25"
from = "fanout@example.com"
to = ["lead@example.com"]

[destinations.hook]
channel = "webhook"
url = "http://127.0.0.1:9/hook"
"#;

fn config(routes: &str) -> Result<Config, String> {
    Config::parse(
        &format!("{DESTINATIONS}\n{routes}"),
        "test",
        Rc::new(|_| None),
    )
    .map_err(|e| e.to_string())
}

#[test]
fn matchers_read_and_match_as_alertmanagers_do() {
    let a = &alerts(SourceKind::Alertmanager, "firing.json")[0];
    for (text, want) in [
        ("team=payments", true),
        ("team = \"payments\"", true),
        ("team!=payments", false),
        ("severity=~\"crit.*|error\"", true),
        ("severity=~crit", false),
        ("instance!~\"checkout-.*\"", false),
        ("missing=\"\"", true),
        ("status=firing", true),
        ("title=~\".*p99.*\"", true),
    ] {
        let m = Matcher::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(m.matches(a), want, "{text}");
    }
    for bad in ["team", "=x", "team!x", "te am=x", "a=~(", "a!~[z-a]"] {
        assert!(Matcher::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn the_first_matching_route_wins_unless_it_continues() {
    let config = config(
        r#"
[escalations.page-then-lead]
steps = [{ notify = ["ops-mail"] }, { wait = "10m" }, { notify = ["lead-mail"] }]

[[routes]]
source = "alertmanager"
matchers = ["team=payments", "severity=critical"]
targets = [{ destination = "ops-mail" }, { destination = "lead-mail" }]
escalation = "page-then-lead"
continue = true

[[routes]]
matchers = ["team=payments"]
targets = [{ destination = "hook" }]

[[routes]]
targets = [{ destination = "ops-mail", to = ["fallback@example.com"] }]
"#,
    )
    .unwrap();
    let routes = &config.routes;
    let critical = &alerts(SourceKind::Alertmanager, "firing.json")[0];
    let routed = routes.jobs("alertmanager", critical, Utc::now());
    let taken: Vec<usize> = routed.iter().map(|r| r.route).collect();
    assert_eq!(taken, [0, 1], "route 0 continues to 1, which stops");
    let job = &routed[0].job;
    assert_eq!(job.targets.len(), 2);
    assert_eq!(job.escalation.len(), 3);
    assert_eq!(job.alert.group_id, "alertmanager:3f2a9c0d81b7e645");
    assert!(crate::job::valid_id(&job.id, 128), "{}", job.id);
    crate::validate::validate(job, &config).expect("a routed job is a valid job");
    // The same body again: the same job ids (delivered once).
    let again = routes.jobs("alertmanager", critical, Utc::now());
    assert_eq!(again[0].job.id, job.id);
    assert_ne!(again[1].job.id, job.id, "another route, another job");
    // Not payments: the default route at the end.
    let disk = &alerts(SourceKind::Alertmanager, "mixed.json")[0];
    let routed = routes.jobs("alertmanager", disk, Utc::now());
    assert_eq!(routed.iter().map(|r| r.route).collect::<Vec<_>>(), [2]);
    crate::validate::validate(&routed[0].job, &config).unwrap();
}

#[test]
fn group_by_makes_one_group_of_alerts_that_share_the_labels() {
    let config = config(
        r#"
[[routes]]
group_by = ["alertname"]
targets = [{ destination = "hook" }]
"#,
    )
    .unwrap();
    let both = alerts(SourceKind::Alertmanager, "mixed.json");
    let a = config.routes.jobs("alertmanager", &both[0], Utc::now());
    let b = config.routes.jobs("alertmanager", &both[1], Utc::now());
    assert_eq!(a[0].job.alert.group_id, b[0].job.alert.group_id);
    assert!(a[0].job.alert.group_id.starts_with("alertmanager:r0:"));
    assert_ne!(a[0].job.id, b[0].job.id);
}

#[test]
fn an_alert_no_route_matches_becomes_no_job() {
    let config = config(
        r#"
[[routes]]
source = "graylog"
targets = [{ destination = "hook" }]
"#,
    )
    .unwrap();
    let a = &alerts(SourceKind::Alertmanager, "firing.json")[0];
    assert!(config.routes.jobs("alertmanager", a, Utc::now()).is_empty());
}

#[test]
fn every_bad_route_key_is_named_at_once() {
    let e = config(
        r#"
[escalations.short]
steps = [{ notify = ["hook"] }, { wiat = "5m" }]

[escalations.lead]
steps = [{ notify = ["lead-mail"] }]

[[routes]]
source = "zabbix"
matchers = ["team", "a=~("]
targets = [{ destination = "nope" }, { destination = "hook", channel_id = "C1" }]
escalation = "missing"
suppres = { key = "x", window = "5m" }

[[routes]]
targets = [{ destination = "ops-mail" }]
escalation = "lead"

[[routes]]
escalation = "lead"
"#,
    )
    .unwrap_err();
    for expected in [
        "escalations.short.steps[1]",
        "routes[0].source: \"zabbix\" is not a source fanout reads",
        "routes[0].matchers[0]",
        "routes[0].matchers[1]",
        "routes[0].targets[0].destination: \"nope\" is not a configured destination",
        "routes[0].targets[1].channel_id: is not an override for webhook destination",
        "routes[0].escalation: no [escalations.missing] policy",
        "routes[0].suppres: unknown key (hint: did you mean `suppress`?)",
        "routes[1].escalation: policy \"lead\" notifies [\"lead-mail\"]",
        "routes[2].targets: is required",
    ] {
        assert!(e.contains(expected), "missing {expected:?} in:\n{e}");
    }
}

#[test]
fn a_routes_chart_takes_its_variables_from_the_alerts_labels() {
    let routed = config(
        r#"
[[routes]]
targets = [{ destination = "hook" }]
charts = [{ grafana = { dashboard_uid = "checkout", panel_id = 4, vars = { instance = "{{ alert.labels.instance }}", env = "prod" } }, title = "{{ alert.labels.alertname }} on {{ alert.labels.instance }}" }]
"#,
    )
    .unwrap();
    let a = &alerts(SourceKind::Alertmanager, "firing.json")[0];
    let job = &routed.routes.jobs("alertmanager", a, Utc::now())[0].job;
    let chart = job.charts.last().expect("the route's chart");
    let grafana = chart.grafana.as_ref().unwrap();
    assert_eq!(grafana.vars["instance"], "checkout-1:8080");
    assert_eq!(grafana.vars["env"], "prod");
    assert_eq!(
        chart.title.as_deref(),
        Some("CheckoutLatencyHigh on checkout-1:8080")
    );
    crate::validate::validate(job, &routed).unwrap();

    let e = config(
        r#"
[[routes]]
targets = [{ destination = "hook" }]
charts = [{ grafana = { dashboard_uid = "x", panel_id = 1 }, colour = "red" }]
"#,
    )
    .unwrap_err();
    assert!(e.contains("routes[0].charts[0]"), "{e}");
}

#[test]
fn when_is_a_template_expression_over_the_alert_and_a_failing_one_does_not_match() {
    let routes = config(
        r#"
[[routes]]
when = "'2.41s' in annotations.description and alert.labels.team in ['payments', 'billing']"
targets = [{ destination = "ops-mail" }]

[[routes]]
when = "labels.instance | int > 0"
targets = [{ destination = "lead-mail" }]

[[routes]]
when = "alert.severity == 'warning' and source == 'alertmanager' and fingerprint != ''"
targets = [{ destination = "lead-mail" }]

[[routes]]
targets = [{ destination = "hook" }]
"#,
    )
    .unwrap()
    .routes;
    let taken = |a: &Incoming| {
        routes
            .jobs("alertmanager", a, Utc::now())
            .iter()
            .map(|r| r.route)
            .collect::<Vec<_>>()
    };
    let [firing] = &alerts(SourceKind::Alertmanager, "firing.json")[..] else {
        panic!("one alert");
    };
    assert_eq!(taken(firing), [0]);
    let mut other_team = firing.clone();
    other_team
        .alert
        .labels
        .insert("team".into(), "search".into());
    // Route 1's `int` fails on "checkout-1:8080": not a match, and the
    // alert goes on; route 2 needs a warning; the default takes it.
    assert_eq!(taken(&other_team), [3]);
    other_team.alert.severity = crate::job::Severity::Warning;
    assert_eq!(taken(&other_team), [2]);

    let e = config(
        r#"
[[routes]]
when = "alert.labels.team =="
targets = [{ destination = "hook" }]

[[routes]]
when = "{{ alert }}"
targets = [{ destination = "hook" }]

[[routes]]
when = "annotations.summary is containing('disk')"
targets = [{ destination = "hook" }]

[[routes]]
when = "alert.title | lowercase == 'x'"
targets = [{ destination = "hook" }]
"#,
    )
    .unwrap_err();
    for expected in [
        "routes[0].when: is not a template expression",
        "routes[1].when: is not a template expression",
        "routes[2].when: is not a template expression: unknown test",
        "routes[3].when: is not a template expression: unknown filter",
    ] {
        assert!(e.contains(expected), "missing {expected:?} in:\n{e}");
    }
}

#[test]
fn a_routes_severity_names_the_alerts_severity_fixed_or_by_a_labels_value() {
    let config = config(
        r#"
[[routes]]
matchers = ["team=payments"]
severity = { from = "priority", map = { P1 = "critical", P3 = "warning" } }
targets = [{ destination = "hook" }]
continue = true

[[routes]]
severity = "info"
targets = [{ destination = "hook" }]
"#,
    )
    .unwrap();
    let [firing] = &alerts(SourceKind::Alertmanager, "firing.json")[..] else {
        panic!("one alert");
    };
    let severities = |a: &Incoming| {
        config
            .routes
            .jobs("alertmanager", a, Utc::now())
            .iter()
            .map(|r| r.job.alert.severity)
            .collect::<Vec<_>>()
    };
    use crate::job::Severity::*;
    // No `priority` label: the source's severity stays on route 0.
    assert_eq!(severities(firing), [Critical, Info]);
    let mut p3 = firing.clone();
    p3.alert.labels.insert("priority".into(), "P3".into());
    assert_eq!(severities(&p3), [Warning, Info]);
    let mut unmapped = firing.clone();
    unmapped.alert.labels.insert("priority".into(), "P2".into());
    assert_eq!(severities(&unmapped), [Critical, Info]);

    let e = crate::route::tests::config(
        r#"
[[routes]]
severity = "sev1"
targets = [{ destination = "hook" }]

[[routes]]
severity = { form = "priority", map = { P1 = "critical" } }
targets = [{ destination = "hook" }]

[[routes]]
severity = { map = { P1 = "urgent" } }
targets = [{ destination = "hook" }]

[[routes]]
severity = 3
targets = [{ destination = "hook" }]
"#,
    )
    .unwrap_err();
    for expected in [
        "routes[0].severity: unknown variant `sev1`",
        "routes[1].severity.form: unknown field `form`",
        "routes[2].severity.map.P1: unknown variant `urgent`",
        "routes[3].severity: is a severity",
    ] {
        assert!(e.contains(expected), "missing {expected:?} in:\n{e}");
    }
}
