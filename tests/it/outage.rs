//! The broker stopped mid-run (`rabbitmqctl stop_app`, on a RabbitMQ node
//! of the test's own): bodies from a real Alertmanager and from the
//! Grafana and SkyWalking fixtures, posted while it is away, are answered
//! `202` from the spool; the worker holding them is killed with `kill -9`;
//! after `start_app`, a new worker on the same spool delivers every alert,
//! each exactly once.

use std::time::Duration;

use crate::support::grafana::{FakeGrafana, Options as GrafanaOptions};
use crate::support::monitors::alertmanager;
use crate::support::rabbit_node::RabbitNode;
use crate::support::receiver::Receiver;
use crate::support::worker::{delivered_ids, metrics, series, WorkerProcess};
use crate::support::{free_port, repo, wait_for, write_file};

const TOKEN: &str = "outage-ingest-token-1a2b3c4d";

fn post(port: u16, source: &str, body: Vec<u8>) -> serde_json::Value {
    let response = reqwest::blocking::Client::new()
        .post(format!("http://127.0.0.1:{port}/ingest/{source}"))
        .bearer_auth(TOKEN)
        .timeout(Duration::from_secs(30))
        .body(body)
        .send()
        .expect("the worker answers");
    assert_eq!(response.status().as_u16(), 202, "{source}");
    response.json().expect("a JSON answer")
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(repo().join("tests/data/ingest").join(path)).expect(path)
}

/// Jobs the spool file holds now.
fn spooled(dir: &std::path::Path) -> i64 {
    rusqlite::Connection::open(dir.join("spool.sqlite"))
        .and_then(|c| c.query_row("SELECT COUNT(*) FROM spool", [], |r| r.get(0)))
        .expect("the spool file")
}

#[test]
fn alerts_posted_while_the_broker_is_stopped_are_delivered_once_after_a_kill_9() {
    let node = RabbitNode::start();
    let grafana = FakeGrafana::start(GrafanaOptions::default());
    let sink = Receiver::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\n\n\
         [broker]\nurl = \"{}\"\nprefix = \"outage.\"\n\n\
         [store]\nurl = \"sqlite://state.db\"\n\n\
         [render]\nignore_https_errors = true\n\n[render.grafana]\nurl = \"{}\"\ntoken = \"{}\"\n\n\
         [ingest.alertmanager]\ntoken = \"{TOKEN}\"\n\n\
         [ingest.grafana]\ntoken = \"{TOKEN}\"\n\n\
         [ingest.skywalking]\ntoken = \"{TOKEN}\"\n\n\
         [spool]\npath = \"spool.sqlite\"\n\n\
         [[routes]]\ntargets = [{{ destination = \"hook\" }}]\n\n\
         [destinations.hook]\nchannel = \"webhook\"\nurl = \"{}\"\ntimeout = \"5s\"\n",
        node.url(),
        grafana.url,
        grafana.token,
        sink.url
    );
    let cfg = write_file(dir.path(), "fanout.toml", &config);
    let mut first = WorkerProcess::start_as(dir.path(), &cfg, "first", &[]);
    let am = alertmanager(
        dir.path(),
        &format!("http://127.0.0.1:{port}/ingest/alertmanager"),
        TOKEN,
    );

    node.stop_app();

    // The real Alertmanager: three alerts pushed to its API, as Prometheus
    // does; it groups them and posts one webhook to fanout.
    let now = chrono::Utc::now().to_rfc3339();
    let alerts: Vec<serde_json::Value> = (1..=3)
        .map(|i| {
            serde_json::json!({
                "labels": {"alertname": "QueueBacklog", "instance": format!("mq-{i}"), "severity": "critical"},
                "annotations": {"summary": format!("Backlog on mq-{i}")},
                "startsAt": now,
            })
        })
        .collect();
    let pushed = reqwest::blocking::Client::new()
        .post(format!("http://127.0.0.1:{}/api/v2/alerts", am.port))
        .json(&alerts)
        .timeout(Duration::from_secs(10))
        .send()
        .expect("Alertmanager's API");
    assert!(pushed.status().is_success(), "{pushed:?}");
    let jobs = |source: &str| {
        series(
            &metrics(port),
            &format!("fanout_ingest_jobs_total{{source=\"{source}\"}}"),
        )
    };
    wait_for(
        "Alertmanager's three alerts taken",
        Duration::from_secs(30),
        || (jobs("alertmanager") >= 3.0).then_some(()),
    );

    // Grafana's documented body (its first alert names a panel) and
    // SkyWalking's alarm array, posted during the outage too.
    let mut body: serde_json::Value =
        serde_json::from_slice(&fixture("grafana/panel.json")).unwrap();
    body["alerts"] = serde_json::json!([body["alerts"][0].clone()]);
    let from_grafana = post(port, "grafana", serde_json::to_vec(&body).unwrap());
    assert_eq!(from_grafana["spooled"], 1, "{from_grafana}");
    let from_skywalking = post(port, "skywalking", fixture("skywalking/alarms.json"));
    assert_eq!(from_skywalking["spooled"], 2, "{from_skywalking}");
    let total = 3 + 1 + 2;
    // Alertmanager may post its group more than once (same job ids).
    let held = spooled(dir.path());
    assert!(held >= total as i64, "{held} spooled");
    assert!(sink.received().is_empty(), "nothing can be delivered yet");

    // The worker dies holding them; the broker comes back; a new worker
    // on the same spool sends each on.
    first.child.kill().unwrap();
    let _ = first.child.wait();
    assert_eq!(spooled(dir.path()), held, "kill -9 lost nothing");
    node.start_app();
    let second = WorkerProcess::start_as(dir.path(), &cfg, "second", &[]);
    wait_for("every alert at the sink", Duration::from_secs(90), || {
        (delivered_ids(&sink).len() == total).then_some(())
    });
    // A late duplicate would come within the spool's next drain.
    std::thread::sleep(Duration::from_secs(2));
    let ids = delivered_ids(&sink);
    assert_eq!(ids.len(), total, "{ids:?}");
    assert!(ids.values().all(|n| *n == 1), "each exactly once: {ids:?}");
    assert_eq!(spooled(dir.path()), 0);
    let titles: Vec<String> = sink
        .received()
        .iter()
        .filter_map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok())
        .map(|b| b["alert"]["title"].as_str().unwrap_or_default().to_string())
        .collect();
    for i in 1..=3 {
        assert!(titles.contains(&format!("Backlog on mq-{i}")), "{titles:?}");
    }
    assert!(second.log_text().contains("Published spooled jobs."));
    // Alertmanager heard 202 every time: it has nothing to retry.
    let log = am.log_text();
    assert!(!log.contains("Notify for alerts failed"), "{log}");
}
