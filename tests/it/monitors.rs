//! A real Prometheus and a real Alertmanager in front of fanout: a rule
//! fires, Alertmanager posts its webhook to `/ingest/alertmanager`, the
//! route's escalation policy pages a webhook sink and email; the rule stops
//! firing, and the resolved notice reaches both. Nothing in this path but
//! fanout is written by the project.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;

use crate::support::monitors::{alertmanager, prometheus};
use crate::support::rabbit::Declared;
use crate::support::receiver::Receiver;
use crate::support::serve::{bind, serve};
use crate::support::smtp::{Options, SmtpServer};
use crate::support::worker::{config_text, WorkerProcess};
use crate::support::{free_port, wait_for, write_file};

const TOKEN: &str = "am-ingest-token-7a6b5c4d3e2f";

const RULES: &str = r#"groups:
  - name: checkout
    interval: 1s
    rules:
      - alert: CheckoutLatencyHigh
        expr: checkout_p99_seconds > 2
        labels:
          severity: critical
          team: payments
        annotations:
          summary: Checkout p99 above 2s
          description: "p99 is {{ $value }}s on {{ $labels.instance }}"
"#;

#[test]
fn a_prometheus_rule_pages_through_alertmanager_and_fanout_and_resolves() {
    // What Prometheus scrapes: checkout's p99, set by the test.
    let p99 = Arc::new(AtomicU64::new(3));
    let value = p99.clone();
    let target = bind();
    let target_addr = target.local_addr().unwrap().to_string();
    let _target =
        serve(
            target,
            axum::Router::new().route(
                "/metrics",
                get(move || {
                    let v = value.load(Ordering::SeqCst);
                    async move {
                        format!("# TYPE checkout_p99_seconds gauge\ncheckout_p99_seconds {v}\n")
                    }
                }),
            ),
        );

    let declared = Declared::new();
    let sink = Receiver::start(&[]);
    let smtp = SmtpServer::start(Options::default());
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let extra = format!(
        "[store]\nurl = \"sqlite://state.db\"\n\n\
         [ingest.alertmanager]\ntoken = \"{TOKEN}\"\n\n\
         [escalations.page]\nsteps = [{{ notify = [\"hook\", \"oncall-mail\"] }}, {{ wait = \"1h\" }}, {{ notify = [\"oncall-mail\"] }}]\n\n\
         [[routes]]\nsource = \"alertmanager\"\nmatchers = [\"team=payments\", \"severity=~critical|error\"]\n\
         targets = [{{ destination = \"hook\" }}, {{ destination = \"oncall-mail\" }}]\nescalation = \"page\"\n\n\
         [[routes]]\ntargets = [{{ destination = \"hook\" }}]\n\n\
         [destinations.oncall-mail]\nchannel = \"email\"\nsmtp_url = \"smtp://127.0.0.1:{}\"\n\
         from = \"fanout@example.com\"\nto = [\"oncall@example.com\"]\n",
        smtp.port
    );
    let text = config_text(&declared, &sink, &format!("127.0.0.1:{port}"), &extra);
    let cfg = write_file(dir.path(), "fanout.toml", &text);
    let worker = WorkerProcess::start(dir.path(), &cfg);

    let am = alertmanager(
        dir.path(),
        &format!("http://127.0.0.1:{port}/ingest/alertmanager"),
        TOKEN,
    );
    let _prometheus = prometheus(dir.path(), &target_addr, RULES, am.port);

    // Firing: the sink and the mailbox each get the page.
    let bodies = |status: &str| -> Vec<serde_json::Value> {
        sink.received()
            .iter()
            .filter_map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok())
            .filter(|b| b["alert"]["status"] == status)
            .collect()
    };
    let firing = wait_for(
        "the page at the webhook sink",
        Duration::from_secs(90),
        || bodies("firing").into_iter().next(),
    );
    assert_eq!(firing["alert"]["title"], "Checkout p99 above 2s");
    assert_eq!(firing["alert"]["labels"]["team"], "payments");
    assert_eq!(firing["alert"]["severity"], "critical");
    let mails = smtp.wait_for_messages(1);
    let first = String::from_utf8_lossy(&mails[0].raw).into_owned();
    assert!(first.contains("Checkout p99 above 2s"), "{first}");

    // The rule stops firing: the resolved notice reaches both, once.
    p99.store(1, Ordering::SeqCst);
    let resolved = wait_for(
        "the resolved notice at the sink",
        Duration::from_secs(90),
        || bodies("resolved").into_iter().next(),
    );
    assert_eq!(resolved["alert"]["title"], "Checkout p99 above 2s");
    let mails = smtp.wait_for_messages(2);
    let second = String::from_utf8_lossy(&mails[1].raw).into_owned();
    assert!(second.to_ascii_uppercase().contains("RESOLVED"), "{second}");
    assert_eq!(
        bodies("firing").len(),
        1,
        "one page, though Alertmanager may post again"
    );
    let log = worker.log_text();
    assert!(log.contains("Ingested."), "{log}");
    assert!(
        !am.log_text().contains("status code 4") && !am.log_text().contains("status code 5"),
        "Alertmanager saw an error from fanout:\n{}",
        am.log_text()
    );
}

#[test]
fn the_panel_a_grafana_alert_names_is_rendered_into_its_page() {
    use crate::support::grafana::{FakeGrafana, Options as GrafanaOptions};
    use mail_parser::{MessageParser, MimeHeaders};

    let declared = Declared::new();
    let grafana = FakeGrafana::start(GrafanaOptions::default());
    let sink = Receiver::start(&[]);
    let smtp = SmtpServer::start(Options::default());
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let extra = format!(
        "[store]\nurl = \"sqlite://state.db\"\n\n\
         [render]\nignore_https_errors = true\n\n[render.grafana]\nurl = \"{}\"\ntoken = \"{}\"\n\n\
         [ingest.grafana]\ntoken = \"{TOKEN}\"\n\n\
         [[routes]]\ntargets = [{{ destination = \"oncall-mail\" }}]\n\n\
         [destinations.oncall-mail]\nchannel = \"email\"\nsmtp_url = \"smtp://127.0.0.1:{}\"\n\
         from = \"fanout@example.com\"\nto = [\"oncall@example.com\"]\n",
        grafana.url, grafana.token, smtp.port
    );
    let text = config_text(&declared, &sink, &format!("127.0.0.1:{port}"), &extra);
    let cfg = write_file(dir.path(), "fanout.toml", &text);
    let _worker = WorkerProcess::start(dir.path(), &cfg);

    // The documented Grafana body, its first alert: it names panel 7.
    let fixture = crate::support::repo().join("tests/data/ingest/grafana/panel.json");
    let mut body: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture).unwrap()).unwrap();
    let first = body["alerts"][0].clone();
    body["alerts"] = serde_json::json!([first]);
    let response = reqwest::blocking::Client::new()
        .post(format!("http://127.0.0.1:{port}/ingest/grafana"))
        .bearer_auth(TOKEN)
        .timeout(Duration::from_secs(30))
        .body(serde_json::to_vec(&body).unwrap())
        .send()
        .expect("an answer");
    assert_eq!(response.status().as_u16(), 202);

    let mail = smtp.wait_for_messages(1);
    let message = MessageParser::default().parse(&mail[0].raw).unwrap();
    let image = message
        .parts
        .iter()
        .find(|p| p.content_id().is_some_and(|c| c.starts_with("chart0.")))
        .expect("the panel is inline in the page");
    let (w, h, drawn) = crate::render::count_colour(image.contents(), [0xff, 0x57, 0x22]);
    assert_eq!((w, h), (1000, 500));
    assert!(drawn > 2_000, "the panel's data is drawn ({drawn} pixels)");
    // Grafana was asked for the alert's own dashboard, with the token.
    assert!(
        grafana
            .requests()
            .iter()
            .any(|(path, auth)| path.starts_with("/d-solo/checkout-svc")
                && auth.as_deref() == Some(&format!("Bearer {}", grafana.token))),
        "{:?}",
        grafana.requests()
    );
}
