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
