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

/// Every fixture of every source.
fn fixtures() -> Vec<(fanout::ingest::SourceKind, Vec<u8>)> {
    let mut out = Vec::new();
    for kind in fanout::ingest::SourceKind::ALL {
        let dir = repo().join(format!("tests/data/ingest/{}", kind.name()));
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: every source has fixtures: {e}", dir.display()));
        for entry in entries.flatten() {
            out.push((*kind, std::fs::read(entry.path()).unwrap()));
        }
    }
    out
}

#[test]
fn bad_bodies_get_a_reason_and_never_a_panic() {
    use fanout::ingest::SourceKind;
    let now = chrono::Utc::now();
    let huge = format!(
        "[{}]",
        vec![r#"{"name":"x","alarmMessage":"m"}"#; 10_000].join(",")
    );
    let twenty_mb = format!(r#"{{"alerts":[],"pad":"{}"}}"#, "x".repeat(20 << 20));
    for kind in SourceKind::ALL {
        for body in [
            &b""[..],
            b"{",
            b"[]",
            b"{}",
            b"null",
            b"\xff\xfe{\"alerts\":[]}",
            b"{\"alerts\":[{\"status\":\"firing\",\"labels\":[1,2]}]}",
            b"{\"event\":{\"fields\":{\"a\":{\"b\":[1,{\"c\":null}]}}}}",
        ] {
            // Ok or a reason; the point is that it returns.
            if let Err(e) = kind.parse(body, now) {
                assert!(!e.message.is_empty(), "{}: {e}", kind.name());
                assert!(e.to_string().starts_with(kind.name()), "{e}");
            }
        }
        // A 20 MB body is read whole (the size limit is the endpoint's).
        let big = kind.parse(twenty_mb.as_bytes(), now);
        if *kind == SourceKind::Alertmanager {
            assert!(big.map(|p| p.alerts.is_empty()).unwrap_or(false));
        }
    }
    // SkyWalking batches of 10,000 alarms read whole.
    let parsed = SourceKind::SkyWalking.parse(huge.as_bytes(), now).unwrap();
    assert_eq!(parsed.alerts.len(), 10_000);
}

mod fuzz {
    use proptest::prelude::*;

    use fanout::ingest::SourceKind;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            for kind in SourceKind::ALL {
                let _ = kind.parse(&bytes, chrono::Utc::now());
            }
        }

        #[test]
        fn mutated_fixtures_never_panic(pick in 0usize..100, at in 0usize..100_000, byte in any::<u8>(), cut in 0usize..100_000) {
            let fixtures = super::fixtures();
            let (kind, mut bytes) = fixtures[pick % fixtures.len()].clone();
            let at = at % bytes.len();
            bytes[at] = byte;
            bytes.truncate(bytes.len() - cut % bytes.len() / 4);
            let _ = kind.parse(&bytes, chrono::Utc::now());
        }
    }
}

const ROUTED: &str = r#"
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

[escalations.page-then-lead]
steps = [{ notify = ["ops-mail"] }, { wait = "10m" }, { notify = ["lead-mail"] }]

[[routes]]
source = "alertmanager"
matchers = ["team=payments", "severity=~critical|error"]
targets = [{ destination = "ops-mail" }, { destination = "lead-mail" }]
escalation = "page-then-lead"
group_by = ["alertname"]

[[routes]]
when = "alert.labels.alertname == 'DiskFull' and alert.status == 'firing'"
severity = "critical"
targets = [{ destination = "hook" }]

[[routes]]
targets = [{ destination = "hook" }]
"#;

#[test]
fn route_test_shows_the_route_targets_and_escalation_an_alert_takes() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::support::write_file(dir.path(), "fanout.toml", ROUTED);
    let route_test = |name: &str| {
        let fixture = fixture("alertmanager", name);
        let args = ["route-test", "alertmanager", &fixture, "--config", &config];
        let run = crate::support::fanout_in(dir.path(), &args, None, &[]);
        run.assert_code(0);
        run
    };
    // Not payments: a disk filling up is taken by `when`, and called
    // critical there; once resolved, by the default route, last.
    let run = route_test("mixed.json");
    assert!(
        run.stdout.contains(
            "route    routes[1] when \"alert.labels.alertname == 'DiskFull' and alert.status == 'firing'\"\n     to     hook\n     severity critical\n"
        ),
        "{run}"
    );
    assert!(run.stdout.contains("route    routes[2] (default)"), "{run}");
    let run = route_test("firing.json");
    assert!(
        run.stdout
            .contains("route    routes[0] source=alertmanager team=\"payments\""),
        "{run}"
    );
    assert!(run.stdout.contains("to     ops-mail, lead-mail"), "{run}");
    assert!(
        run.stdout.contains(
            "steps  page-then-lead: {\"notify\":[\"ops-mail\"]} → {\"wait\":\"10m\"} → {\"notify\":[\"lead-mail\"]}"
        ),
        "{run}"
    );
    assert!(run.stdout.contains("group  alertmanager:r0:"), "{run}");
}

mod endpoint {
    //! `/ingest/<source>` on a worker, the machine's RabbitMQ between them.

    use std::time::Duration;

    use crate::support::rabbit::Declared;
    use crate::support::receiver::Receiver;
    use crate::support::worker::{config_text, metrics, series, WorkerProcess};
    use crate::support::{free_port, wait_for, write_file};

    const TOKEN: &str = "ingest-token-5f4e3d2c1b0a";
    const HMAC_SECRET: &str = "grafana-hmac-secret-9a8b7c6d";
    const SIGNATURE: &str = "X-Grafana-Alerting-Signature";
    const STAMP: &str = "X-Grafana-Alerting-Timestamp";

    fn post(port: u16, path: &str, auth: Option<&str>, body: Vec<u8>) -> (u16, serde_json::Value) {
        post_with(port, path, auth, &[], body)
    }

    fn post_with(
        port: u16,
        path: &str,
        auth: Option<&str>,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> (u16, serde_json::Value) {
        let client = reqwest::blocking::Client::new();
        let mut request = client
            .post(format!("http://127.0.0.1:{port}{path}"))
            .timeout(Duration::from_secs(20))
            .header("content-type", "application/json")
            .body(body);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().expect("the worker answers");
        let status = response.status().as_u16();
        (status, response.json().unwrap_or_default())
    }

    #[test]
    fn an_alertmanager_body_is_routed_delivered_once_and_bad_posts_are_answered_honestly() {
        let declared = Declared::new();
        let receiver = Receiver::start(&[]);
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let extra = format!(
            "[store]\nurl = \"sqlite://state.db\"\n\n\
             [ingest.alertmanager]\ntoken = \"{TOKEN}\"\nmax_body = 65536\n\n\
             [ingest.grafana]\nhmac_secret = \"{HMAC_SECRET}\"\nhmac_timestamp_header = \"{STAMP}\"\n\n\
             [[routes]]\ntargets = [{{ destination = \"hook\" }}]\n"
        );
        let text = config_text(&declared, &receiver, &format!("127.0.0.1:{port}"), &extra);
        let cfg = write_file(dir.path(), "fanout.toml", &text);
        let worker = WorkerProcess::start(dir.path(), &cfg);
        let body = std::fs::read(super::fixture("alertmanager", "firing.json")).unwrap();

        let bearer = format!("Bearer {TOKEN}");
        let (status, answer) = post(port, "/ingest/alertmanager", Some(&bearer), body.clone());
        assert_eq!(status, 202, "{answer}");
        assert_eq!(answer["alerts"], 1);
        let job = answer["jobs"][0].as_str().expect("a job id").to_string();
        let got = wait_for("the alert at the webhook", Duration::from_secs(30), || {
            let got = receiver.received();
            (!got.is_empty()).then_some(got)
        });
        let delivered: serde_json::Value = serde_json::from_slice(&got[0].body).unwrap();
        assert_eq!(delivered["alert"]["title"], "Checkout p99 latency above 2s");
        assert_eq!(delivered["job_id"], job.as_str());

        // The same body again (a monitor's retry): the same job, not sent twice.
        let (status, again) = post(port, "/ingest/alertmanager", Some(&bearer), body.clone());
        assert_eq!(status, 202, "{again}");
        assert_eq!(again["jobs"][0], job.as_str());
        wait_for("the repeat to be seen", Duration::from_secs(30), || {
            let log = worker.log_text();
            (log.contains("Already sent") || log.contains("Joined the group")).then_some(())
        });
        assert_eq!(receiver.received().len(), 1);

        // Basic auth and a token in the URL are taken too.
        let basic = format!(
            "Basic {}",
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                format!("am:{TOKEN}")
            )
        );
        assert_eq!(
            post(port, "/ingest/alertmanager", Some(&basic), body.clone()).0,
            202
        );
        let in_url = format!("/ingest/alertmanager?token={TOKEN}");
        assert_eq!(post(port, &in_url, None, body.clone()).0, 202);

        // Refusals: each with its status and reason, none enqueues a job.
        let (status, _) = post(
            port,
            "/ingest/alertmanager",
            Some("Bearer wrong-token-000000"),
            body.clone(),
        );
        assert_eq!(status, 401);
        assert_eq!(
            post(port, "/ingest/alertmanager", None, body.clone()).0,
            401
        );
        let (status, why) = post(
            port,
            "/ingest/alertmanager",
            Some(&bearer),
            br#"{"alerts":[{"status":"x"}]}"#.to_vec(),
        );
        assert_eq!(status, 400);
        assert_eq!(why["path"], "alerts[0].status", "{why}");
        let (status, why) = post(port, "/ingest/graylog", Some(&bearer), body.clone());
        assert_eq!(status, 404, "{why}");
        let mut big = body.clone();
        big.truncate(big.len() - 1);
        big.extend(format!(r#","pad":"{}"}}"#, "x".repeat(70_000)).into_bytes());
        assert_eq!(
            post(port, "/ingest/alertmanager", Some(&bearer), big).0,
            413
        );

        // Grafana signs its body (HMAC-SHA256 over "<unix time>:<body>", in
        // hex), as its contact point does with a timestamp header set.
        let grafana = serde_json::to_vec(&serde_json::json!({
            "receiver": "fanout", "status": "firing", "orgId": 1, "version": "1",
            "groupKey": "{}:{alertname=\"DiskFull\"}", "truncatedAlerts": 0,
            "alerts": [{"status": "firing", "labels": {"alertname": "DiskFull", "instance": "db-1"},
                "annotations": {"summary": "Disk on db-1 is 95% full"},
                "startsAt": "2026-11-30T08:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": "7d1c2b3a4e5f6071", "silenceURL": "", "dashboardURL": "", "panelURL": ""}],
        }))
        .unwrap();
        let signed = |body: &[u8], at: i64| {
            let at = at.to_string();
            vec![
                (
                    SIGNATURE,
                    fanout::ingest::auth::sign(HMAC_SECRET, Some(&at), body),
                ),
                (STAMP, at),
            ]
        };
        let now = chrono::Utc::now().timestamp();
        let (status, answer) = post_with(
            port,
            "/ingest/grafana",
            None,
            &signed(&grafana, now),
            grafana.clone(),
        );
        assert_eq!(status, 202, "{answer}");
        wait_for(
            "Grafana's alert at the webhook",
            Duration::from_secs(30),
            || {
                receiver
                    .received()
                    .iter()
                    .any(|r| {
                        serde_json::from_slice::<serde_json::Value>(&r.body)
                            .is_ok_and(|v| v["alert"]["title"] == "Disk on db-1 is 95% full")
                    })
                    .then_some(())
            },
        );
        let delivered = receiver.received().len();
        // Refused: the body changed after signing, a signature replayed ten
        // minutes late, Alertmanager's token at Grafana's door, and
        // Grafana's secret at Alertmanager's.
        let mut changed = grafana.clone();
        changed[10] = b' ';
        for (headers, body) in [
            (signed(&grafana, now), changed),
            (signed(&grafana, now - 600), grafana.clone()),
            (Vec::new(), grafana.clone()),
        ] {
            assert_eq!(
                post_with(port, "/ingest/grafana", Some(&bearer), &headers, body).0,
                401
            );
        }
        let (status, why) = post(
            port,
            "/ingest/alertmanager",
            Some(&format!("Bearer {HMAC_SECRET}")),
            body.clone(),
        );
        assert_eq!(status, 401, "{why}");

        let text = metrics(port);
        let bodies = |source: &str, outcome: &str| {
            series(
                &text,
                &format!("fanout_ingest_bodies_total{{source=\"{source}\",outcome=\"{outcome}\"}}"),
            )
        };
        assert_eq!(bodies("alertmanager", "accepted"), 4.0, "{text}");
        assert_eq!(bodies("alertmanager", "unauthorized"), 3.0, "{text}");
        assert_eq!(bodies("alertmanager", "unreadable"), 1.0, "{text}");
        assert_eq!(bodies("alertmanager", "too_large"), 1.0, "{text}");
        assert_eq!(bodies("grafana", "accepted"), 1.0, "{text}");
        assert_eq!(bodies("grafana", "bad_signature"), 2.0, "{text}");
        assert_eq!(bodies("grafana", "stale_signature"), 1.0, "{text}");
        // Nothing refused was enqueued: no delivery came after the last accepted one.
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(receiver.received().len(), delivered);
        // No credential reaches the log.
        let log = worker.log_text();
        for secret in [TOKEN, "wrong-token-000000", HMAC_SECRET] {
            assert!(!log.contains(secret), "{secret} was logged");
        }
    }
}

mod spool {
    //! While the broker is away, `/ingest` answers 202 from the spool; the
    //! jobs reach the broker, in order and each once, when it is back,
    //! even across a `kill -9` of the server holding them.

    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    use crate::support::forward::Forwarder;
    use crate::support::rabbit::Declared;
    use crate::support::receiver::Receiver;
    use crate::support::worker::{config_text, WorkerProcess};
    use crate::support::{free_port, wait_for, write_file};

    const TOKEN: &str = "spool-token-0a1b2c3d4e5f";

    /// `fanout serve`, killed (SIGKILL) when dropped.
    struct Server(Child);

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn serve(dir: &std::path::Path, cfg: &str, port: u16, name: &str) -> Server {
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_fanout"))
            .args(["serve", "--config", cfg])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("fanout serve");
        let server = Server(child);
        wait_for("fanout serve to answer", Duration::from_secs(20), || {
            reqwest::blocking::get(format!("http://127.0.0.1:{port}/healthz"))
                .ok()
                .filter(|r| r.status().is_success())
                .map(drop)
        });
        server
    }

    fn post(port: u16, body: Vec<u8>) -> serde_json::Value {
        let response = reqwest::blocking::Client::new()
            .post(format!("http://127.0.0.1:{port}/ingest/alertmanager"))
            .bearer_auth(TOKEN)
            .timeout(Duration::from_secs(30))
            .body(body)
            .send()
            .expect("an answer");
        assert_eq!(response.status().as_u16(), 202);
        response.json().unwrap()
    }

    #[test]
    fn bodies_posted_while_the_broker_is_away_are_delivered_once_it_is_back() {
        let declared = Declared::new();
        let receiver = Receiver::start(&[]);
        let dir = tempfile::tempdir().unwrap();
        let routes = "[[routes]]\ntargets = [{ destination = \"hook\" }]\n";
        // The worker reaches RabbitMQ; the server only through a port on
        // which nothing listens yet.
        let worker_cfg = write_file(
            dir.path(),
            "worker.toml",
            &config_text(
                &declared,
                &receiver,
                "127.0.0.1:0",
                "[store]\nurl = \"sqlite://state.db\"\n",
            ),
        );
        let _worker = WorkerProcess::start(dir.path(), &worker_cfg);
        let (broker_port, http_port) = (free_port(), free_port());
        let server_text = config_text(
            &declared,
            &receiver,
            &format!("127.0.0.1:{http_port}"),
            &format!("[ingest.alertmanager]\ntoken = \"{TOKEN}\"\n\n[spool]\npath = \"spool.sqlite\"\n\n{routes}"),
        )
        .replace("127.0.0.1:5672", &format!("127.0.0.1:{broker_port}"));
        let server_cfg = write_file(dir.path(), "server.toml", &server_text);
        let server = serve(dir.path(), &server_cfg, http_port, "serve-1");

        let fixture = |name: &str| std::fs::read(super::fixture("alertmanager", name)).unwrap();
        let first = post(http_port, fixture("firing.json"));
        assert_eq!(first["spooled"], 1, "{first}");
        let second = post(http_port, fixture("mixed.json"));
        assert_eq!(second["spooled"], 2, "{second}");
        assert!(receiver.received().is_empty());

        // The server dies holding them; the broker comes back; a new
        // server on the same spool sends them on.
        drop(server);
        let _broker = Forwarder::start(broker_port, "127.0.0.1:5672");
        let _server = serve(dir.path(), &server_cfg, http_port, "serve-2");
        let got = wait_for(
            "the three alerts at the sink",
            Duration::from_secs(60),
            || {
                let got = receiver.received();
                (got.len() >= 3).then_some(got)
            },
        );
        let mut ids: Vec<String> = got
            .iter()
            .map(|r| r.headers["x-fanout-delivery"].to_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 3, "each delivered once: {ids:?}");
        let log = std::fs::read_to_string(dir.path().join("serve-2.log")).unwrap_or_default();
        assert!(log.contains("Published spooled jobs."), "{log}");
    }
}

#[test]
fn route_test_maps_any_json_with_the_generic_sources_templates() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::support::write_file(
        dir.path(),
        "fanout.toml",
        r#"
[broker]
url = "amqp://guest:guest@127.0.0.1:5672/%2f"

[ingest.generic]
token = "a-long-enough-token-1234"
title = "{{ item.monitor.name }} is {{ 'down' if item.heartbeat.status == 0 else 'up' }}"
status = "{{ 'firing' if item.heartbeat.status == 0 else 'resolved' }}"
group_key = "kuma-{{ item.monitor.id }}"
labels = { monitor = "{{ item.monitor.name }}" }

[[routes]]
targets = [{ destination = "hook" }]

[destinations.hook]
channel = "webhook"
url = "http://127.0.0.1:9/hook"
"#,
    );
    let body = fixture("generic", "kuma.json");
    let run = crate::support::fanout_in(
        dir.path(),
        &["route-test", "generic", &body, "--config", &config],
        None,
        &[],
    );
    run.assert_code(0);
    assert!(
        run.stdout
            .contains("firing    warning   checkout-api is down"),
        "{run}"
    );
    assert!(
        run.stdout.contains("labels   monitor=checkout-api"),
        "{run}"
    );
    assert!(run.stdout.contains("route    routes[0] (default)"), "{run}");
}

mod bad_bodies {
    //! The corpus through the worker's endpoint: each bad body gets its
    //! status and reason, the worker keeps serving, and every refusal is
    //! counted.

    use std::time::Duration;

    use crate::support::rabbit::Declared;
    use crate::support::receiver::Receiver;
    use crate::support::worker::{config_text, metrics, series, WorkerProcess};
    use crate::support::{free_port, write_file};

    const TOKEN: &str = "corpus-token-9f8e7d6c5b4a";

    #[test]
    fn each_bad_body_gets_its_status_and_reason_and_the_worker_keeps_serving() {
        let declared = Declared::new();
        let receiver = Receiver::start(&[]);
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let sources = [
            "alertmanager",
            "grafana",
            "skywalking",
            "graylog",
            "generic",
        ];
        let mut extra = String::from("[store]\nurl = \"sqlite://state.db\"\n\n");
        for source in sources {
            extra += &format!("[ingest.{source}]\ntoken = \"{TOKEN}\"\n\n");
        }
        extra += "[[routes]]\ntargets = [{ destination = \"hook\" }]\n";
        let text = config_text(&declared, &receiver, &format!("127.0.0.1:{port}"), &extra);
        let cfg = write_file(dir.path(), "fanout.toml", &text);
        let worker = WorkerProcess::start(dir.path(), &cfg);
        // One kept-alive connection: a 413 is answered after the body is
        // read, so the sender hears it and the connection stays usable.
        let client = reqwest::blocking::Client::new();
        let post = |source: &str, body: Vec<u8>| {
            let response = client
                .post(format!("http://127.0.0.1:{port}/ingest/{source}"))
                .bearer_auth(TOKEN)
                .timeout(Duration::from_secs(60))
                .body(body)
                .send()
                .expect("the worker answers");
            let status = response.status().as_u16();
            let answer: serde_json::Value = response.json().unwrap_or_default();
            // Still serving after each.
            let health = client
                .get(format!("http://127.0.0.1:{port}/healthz"))
                .timeout(Duration::from_secs(10))
                .send()
                .expect("/healthz answers");
            assert!(health.status().is_success());
            (status, answer)
        };

        let twenty_mb = format!(r#"{{"alerts":[],"pad":"{}"}}"#, "x".repeat(20 << 20));
        for source in sources {
            for (body, path, says) in [
                (&b""[..], Some("."), "EOF while parsing"),
                (b"{\"alerts\": [", None, "EOF while parsing"),
                (b"\xff\xfe{\"alerts\":[]}", Some("."), "not UTF-8"),
            ] {
                let (status, why) = post(source, body.to_vec());
                assert_eq!(status, 400, "{source} {body:?}: {why}");
                if let Some(path) = path {
                    assert_eq!(why["path"], path, "{source}: {why}");
                }
                let error = why["error"].as_str().unwrap_or_default();
                assert!(error.starts_with(&format!("{source} body")), "{why}");
                assert!(error.contains(says), "{source}: {why}");
            }
            let (status, why) = post(source, twenty_mb.clone().into_bytes());
            assert_eq!(status, 413, "{source}: {why}");
            assert!(
                why["error"]
                    .as_str()
                    .unwrap()
                    .contains("max_body of 16777216"),
                "{why}"
            );
        }
        // Wrong types: named by their path.
        let (status, why) = post(
            "alertmanager",
            br#"{"alerts":[{"status":"firing","labels":["a","b"]}]}"#.to_vec(),
        );
        assert_eq!(
            (status, why["path"].as_str()),
            (400, Some("alerts[0].labels")),
            "{why}"
        );
        // An empty array: nothing to do, said so; an object where an array
        // belongs is refused.
        let (status, answer) = post("skywalking", b"[]".to_vec());
        assert_eq!(
            (status, answer["alerts"].as_u64()),
            (202, Some(0)),
            "{answer}"
        );
        assert_eq!(post("alertmanager", b"[]".to_vec()).0, 400);
        // Fields a newer Alertmanager adds are taken.
        let mut newer: serde_json::Value = serde_json::from_slice(
            &std::fs::read(super::fixture("alertmanager", "firing.json")).unwrap(),
        )
        .unwrap();
        newer["someFutureField"] = serde_json::json!({"nested": [1, 2]});
        newer["alerts"][0]["anotherNewField"] = serde_json::json!("x");
        let (status, answer) = post("alertmanager", serde_json::to_vec(&newer).unwrap());
        assert_eq!(
            (status, answer["alerts"].as_u64()),
            (202, Some(1)),
            "{answer}"
        );
        // A SkyWalking array of 10,000 alarms: each read; the repeats of
        // one alarm are one job.
        let alarms: Vec<serde_json::Value> = (0..10_000)
            .map(|i| {
                serde_json::json!({"scopeId": 1, "scope": "SERVICE", "name": format!("svc-{}", i % 100),
                    "id0": format!("c3ZjLXtpfQ==.{}", i % 100), "id1": "", "ruleName": "service_resp_time_rule",
                    "alarmMessage": format!("Response time of svc-{} is over 1000ms", i % 100),
                    "startTime": 1_764_489_600_000_i64, "tags": []})
            })
            .collect();
        let (status, answer) = post("skywalking", serde_json::to_vec(&alarms).unwrap());
        assert_eq!(status, 202, "{answer}");
        assert_eq!(answer["alerts"], 10_000);
        assert_eq!(
            answer["jobs"].as_array().map(Vec::len),
            Some(100),
            "{answer}"
        );

        let text = metrics(port);
        let count = |source: &str, outcome: &str| {
            series(
                &text,
                &format!("fanout_ingest_bodies_total{{source=\"{source}\",outcome=\"{outcome}\"}}"),
            )
        };
        for source in sources {
            assert_eq!(count(source, "too_large"), 1.0, "{source}: {text}");
            let unreadable = if source == "alertmanager" { 5.0 } else { 3.0 };
            assert_eq!(count(source, "unreadable"), unreadable, "{source}: {text}");
        }
        assert!(
            !worker.log_text().contains("panicked"),
            "{}",
            worker.log_text()
        );
    }
}
