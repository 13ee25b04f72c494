//! Email against a real SMTP server: MIME structure, inline chart, threading,
//! TLS modes, AUTH, and retryable vs permanent replies.

use std::rc::Rc;
use std::sync::Arc;

use mail_parser::{MessageParser, MimeHeaders};

use crate::support::smtp::{Options, SmtpServer, TlsMode};
use crate::support::{fanout_in, fixture_png, write_file, Run};
use fanout::config::Config;
use fanout::delivery::{ChartImage, Delivery, Reason};
use fanout::destinations::Destinations;
use fanout::job::Job;
use fanout::pipeline::Pipeline;

/// A config with one email destination `ops-mail` pointing at `server`.
fn config_text(server: &SmtpServer, userinfo: &str, extra: &str) -> String {
    let (scheme, query) = match server.ca_file {
        None => ("smtp", ""),
        Some(_) if extra.contains("implicit") => ("smtps", ""),
        Some(_) => ("smtp", "?tls=starttls"),
    };
    let ca = server
        .ca_file
        .as_ref()
        .map(|p| format!("tls_ca_file = \"{}\"\n", p.display()))
        .unwrap_or_default();
    let extra = extra.replace("# implicit", "");
    format!(
        r#"
[templates]
timezone = "Asia/Shanghai"

[destinations.ops-mail]
channel = "email"
smtp_url = "{scheme}://{userinfo}127.0.0.1:{port}{query}"
from = "fanout alerts <alerts@example.com>"
to = ["oncall@example.com", "Lead <lead@example.com>"]
timeout = "10s"
{ca}{extra}
"#,
        port = server.port
    )
}

/// Write a config for `server` and a job, run `fanout send`, return the run.
fn send_via(
    server: &SmtpServer,
    userinfo: &str,
    extra: &str,
    job_id: &str,
) -> (Run, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(
        dir.path(),
        "fanout.toml",
        &config_text(server, userinfo, extra),
    );
    let job = write_file(dir.path(), "job.json", &job_json(job_id, "firing"));
    let run = fanout_in(dir.path(), &["send", &job, "--config", &config], None, &[]);
    (run, dir, config)
}

fn job(id: &str, status: &str) -> Job {
    serde_json::from_str(&job_json(id, status)).expect("test job")
}

fn job_json(id: &str, status: &str) -> String {
    format!(
        r#"{{"version":1,"id":"{id}","alert":{{"group_id":"ag-42","title":"p99 latency > 1s",
            "message":"gateway p99 is 1.4 s","severity":"critical","status":"{status}",
            "labels":{{"service":"gateway"}},"started_at":"2026-11-23T03:00:00Z"}},
            "targets":[{{"destination":"ops-mail"}}]}}"#
    )
}

fn delivery_with_chart(job: Job) -> Delivery {
    Delivery::to_first_target(job).with_charts(vec![ChartImage {
        title: "p99 latency".into(),
        png: Some(Arc::new(fixture_png())),
        link: Some("https://grafana.example/d/abc?viewPanel=7".into()),
        ..ChartImage::default()
    }])
}

fn load(text: &str) -> Config {
    Config::parse(text, "test", Rc::new(|_| None)).expect("valid test config")
}

#[tokio::test]
async fn delivers_text_html_and_the_chart_inline_by_content_id() {
    let server = SmtpServer::start(Options::default());
    let config = load(&config_text(&server, "", ""));
    let destinations = Destinations::build(&config, None).expect("build");
    let outcome = Pipeline::bare(&destinations)
        .deliver(delivery_with_chart(job("ag-42-firing-1", "firing")))
        .await;
    assert!(outcome.delivered(), "{outcome}");

    let received = server.wait_for_messages(1);
    let meta = &received[0].meta;
    assert_eq!(meta["mail_from"], "alerts@example.com");
    assert_eq!(
        meta["rcpt_tos"],
        serde_json::json!(["oncall@example.com", "lead@example.com"])
    );
    let msg = MessageParser::default()
        .parse(&received[0].raw)
        .expect("the server received valid MIME");
    assert_eq!(
        msg.subject(),
        Some("[FIRING CRITICAL] p99 latency > 1s (gateway)")
    );
    let from = msg.from().and_then(|f| f.first()).expect("From");
    assert_eq!(from.address(), Some("alerts@example.com"));
    assert_eq!(from.name(), Some("fanout alerts"));
    let to: Vec<_> = msg
        .to()
        .expect("To")
        .iter()
        .filter_map(|a| a.address())
        .collect();
    assert_eq!(to, ["oncall@example.com", "lead@example.com"]);

    let text = msg.body_text(0).expect("text part");
    assert!(text.contains("gateway p99 is 1.4 s"), "{text}");
    // The template's time zone (Asia/Shanghai) applies: 03:00Z is 11:00 there.
    assert!(text.contains("2026-11-23 11:00:00 CST"), "{text}");
    let html = msg.body_html(0).expect("html part");
    let cid = html
        .split("cid:")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the HTML references the chart by cid:");
    let image = msg
        .parts
        .iter()
        .find(|p| p.content_id() == Some(cid))
        .expect("a part whose Content-ID matches the HTML's cid:");
    assert_eq!(
        image.content_type().map(|c| (c.ctype(), c.subtype())),
        Some(("image", Some("png")))
    );
    assert_eq!(image.contents(), fixture_png().as_slice());
    assert!(
        html.contains("grafana.example") && html.contains("viewPanel=7"),
        "the chart links to its panel"
    );
}

#[test]
fn notifications_of_one_group_share_a_thread() {
    let server = SmtpServer::start(Options::default());
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(dir.path(), "fanout.toml", &config_text(&server, "", ""));
    let firing = write_file(
        dir.path(),
        "firing.json",
        &job_json("ag-42-firing-1", "firing"),
    );
    let resolved = write_file(
        dir.path(),
        "resolved.json",
        &job_json("ag-42-resolved-1", "resolved"),
    );
    for job in [&firing, &resolved] {
        fanout_in(dir.path(), &["send", job, "--config", &config], None, &[]).assert_code(0);
    }
    let received = server.wait_for_messages(2);
    let parsed: Vec<_> = received
        .iter()
        .map(|r| MessageParser::default().parse(&r.raw).expect("MIME"))
        .collect();
    let ids: Vec<_> = parsed
        .iter()
        .map(|m| m.message_id().map(str::to_string))
        .collect();
    assert!(
        ids[0].is_some() && ids[0] != ids[1],
        "distinct Message-IDs: {ids:?}"
    );
    let refs: Vec<_> = parsed
        .iter()
        .map(|m| m.references().as_text().map(str::to_string))
        .collect();
    let replies: Vec<_> = parsed
        .iter()
        .map(|m| m.in_reply_to().as_text().map(str::to_string))
        .collect();
    assert!(refs[0].is_some(), "References set");
    assert_eq!(refs[0], refs[1], "one thread root for the group");
    assert_eq!(replies[0], refs[0]);
    assert_eq!(replies[1], refs[1]);
    assert_eq!(
        parsed[1].subject(),
        Some("[RESOLVED] p99 latency > 1s (gateway)")
    );
}

#[test]
fn implicit_tls_with_auth() {
    let server = SmtpServer::start(Options {
        tls: TlsMode::Implicit,
        auth: Some(("alice", "pa:ss@word")),
        ..Options::default()
    });
    let (run, dir, config) = send_via(&server, "alice:pa%3Ass%40word@", "# implicit", "tls-1");
    run.assert_code(0);
    let meta = &server.wait_for_messages(1)[0].meta;
    assert_eq!(meta["tls"], true);
    assert_eq!(meta["auth_login"], "alice");

    let check = fanout_in(dir.path(), &["check", "--config", &config], None, &[]);
    check.assert_code(0);
    assert!(
        check.stdout.contains("connected, TLS, EHLO, AUTH"),
        "{check}"
    );
}

#[test]
fn starttls_is_required_and_used() {
    let server = SmtpServer::start(Options {
        tls: TlsMode::StartTls,
        auth: Some(("bob", "secret-pw")),
        ..Options::default()
    });
    send_via(&server, "bob:secret-pw@", "", "starttls-1")
        .0
        .assert_code(0);
    let meta = &server.wait_for_messages(1)[0].meta;
    assert_eq!(meta["tls"], true);
    assert_eq!(meta["auth_login"], "bob");
}

#[test]
fn a_451_is_retried_and_then_delivered() {
    let server = SmtpServer::start(Options {
        fail: Some("451 4.3.0 Try again later"),
        fail_times: 1,
        ..Options::default()
    });
    let (run, _dir, _config) = send_via(&server, "", "max_attempts = 3", "retry-1");
    run.assert_code(0);
    assert!(run.stdout.contains("delivered after 2 attempts"), "{run}");
    assert_eq!(server.attempts(), ["DATA 451", "DATA 250"]);
    assert_eq!(server.accepted(), 1);
}

#[test]
fn a_550_is_not_retried_and_fails_the_run() {
    let server = SmtpServer::start(Options {
        fail: Some("550 5.1.1 No such user"),
        ..Options::default()
    });
    let (run, _dir, _config) = send_via(&server, "", "max_attempts = 5", "perm-1");
    run.assert_code(1);
    assert!(run.stdout.contains("FAILED"), "{run}");
    assert!(run.stdout.contains("permanent client"), "{run}");
    assert_eq!(server.attempts(), ["DATA 550"]);
}

#[tokio::test]
async fn a_refused_connection_is_retryable() {
    // Bind and drop a listener: nothing listens on that port afterwards.
    let port = crate::support::free_port();
    let text = format!(
        "[destinations.ops-mail]\nchannel = \"email\"\nsmtp_url = \"smtp://127.0.0.1:{port}\"\n\
         from = \"a@example.com\"\nto = [\"b@example.com\"]\nmax_attempts = 1\n"
    );
    let destinations = Destinations::build(&load(&text), None).unwrap();
    let outcome = Pipeline::bare(&destinations)
        .deliver(delivery_with_chart(job("down-1", "firing")))
        .await;
    let error = outcome.result.expect_err("nothing listens");
    assert!(error.is_retryable(), "{error:?}");
}

#[test]
fn a_wrong_password_is_permanent_and_check_says_so() {
    let server = SmtpServer::start(Options {
        auth: Some(("alice", "right")),
        ..Options::default()
    });
    let (run, dir, config) = send_via(
        &server,
        "alice:wrong-Pw-9431@",
        "max_attempts = 3",
        "auth-1",
    );
    run.assert_code(1);
    assert!(run.stdout.contains("permanent auth"), "{run}");
    assert!(run.stdout.contains("535"), "{run}");
    assert_eq!(server.accepted(), 0);

    let check = fanout_in(dir.path(), &["check", "--config", &config], None, &[]);
    check.assert_code(1);
    assert!(check.stdout.contains("FAIL"), "{check}");
    assert!(
        check.stdout.contains("check the user and password"),
        "{check}"
    );
    assert!(check.stdout.contains("alice:***@127.0.0.1"), "{check}");
    for run in [&run, &check] {
        assert!(
            !run.all_output().contains("wrong-Pw-9431"),
            "password leaked:\n{run}"
        );
    }
}

#[tokio::test]
async fn a_server_that_stalls_is_a_retryable_timeout_not_a_hang() {
    // A real TCP peer that accepts and never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let text = format!(
        "[destinations.ops-mail]\nchannel = \"email\"\nsmtp_url = \"smtp://127.0.0.1:{port}\"\n\
         from = \"a@example.com\"\nto = [\"b@example.com\"]\nmax_attempts = 1\ntimeout = \"1s\"\n"
    );
    let destinations = Destinations::build(&load(&text), None).unwrap();
    let outcome = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        Pipeline::bare(&destinations).deliver(delivery_with_chart(job("stall-1", "firing"))),
    )
    .await
    .expect("the delivery gave up by itself");
    let error = outcome.result.expect_err("the server never answered");
    assert_eq!(error.reason, Reason::Timeout, "{error:?}");
    assert!(error.is_retryable());
    assert!(error.message.contains("no answer within 1s"), "{error}");
    holder.abort();
}

#[test]
fn a_rendered_chart_arrives_inline_over_real_smtp() {
    use crate::support::grafana::{FakeGrafana, Options as GrafanaOptions};
    let grafana = FakeGrafana::start(GrafanaOptions::default());
    let server = SmtpServer::start(Options::default());
    let extra = format!(
        "\n[render]\nignore_https_errors = true\n\n[render.grafana]\nurl = \"{}\"\ntoken = \"{}\"\n",
        grafana.url, grafana.token
    );
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(
        dir.path(),
        "fanout.toml",
        &format!("{}{extra}", config_text(&server, "", "")),
    );
    let job = job_json("chart-1", "firing").replace(
        "\"targets\"",
        r#""charts":[{"grafana":{"dashboard_uid":"abc","panel_id":7},"width":600,"height":300,"title":"p99"}],"targets""#,
    );
    let job = write_file(dir.path(), "job.json", &job);
    fanout_in(dir.path(), &["send", &job, "--config", &config], None, &[]).assert_code(0);
    let received = server.wait_for_messages(1);
    let msg = MessageParser::default().parse(&received[0].raw).unwrap();
    let html = msg.body_html(0).unwrap();
    let cid = html
        .split("cid:")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("cid in HTML");
    let image = msg
        .parts
        .iter()
        .find(|p| p.content_id() == Some(cid))
        .expect("inline image");
    let (w, h, n) = crate::render::count_colour(image.contents(), [0xff, 0x57, 0x22]);
    assert_eq!((w, h), (600, 300));
    assert!(n > 2_000, "the panel's data is drawn ({n} pixels)");
}

/// The whole pipeline with the chart: a render pool draws and stores it, a
/// separate escalate+deliver pool fetches the PNG by its storage key and
/// sends it inline over real SMTP.
#[test]
fn the_worker_pools_render_once_and_deliver_the_stored_chart_inline() {
    use crate::support::grafana::{FakeGrafana, Options as GrafanaOptions};
    use crate::support::rabbit::{Declared, URL};
    use crate::support::worker::WorkerProcess;
    let declared = Declared::new();
    let grafana = FakeGrafana::start(GrafanaOptions::default());
    let server = SmtpServer::start(Options::default());
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "\n[render]\nignore_https_errors = true\n\n[render.grafana]\nurl = \"{}\"\ntoken = \"{}\"\n\n\
         [broker]\nurl = \"{URL}\"\nprefix = \"{}\"\n\n[store]\nurl = \"sqlite://state.db\"\n\n\
         [storage]\nkind = \"internal\"\ndir = \"{}\"\nsigning_key = \"a-test-signing-key-of-32-bytes!!!\"\n",
        grafana.url,
        grafana.token,
        declared.prefix,
        dir.path().join("images").display()
    );
    let text = format!("{}{extra}", config_text(&server, "", "")).replace(
        "[templates]",
        "[http]\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://127.0.0.1:9\"\n\n[templates]",
    );
    let config = write_file(dir.path(), "fanout.toml", &text);
    let render = write_file(dir.path(), "render.toml", "stages = [\"render\"]\n");
    let deliver = write_file(
        dir.path(),
        "deliver.toml",
        "stages = [\"escalate\", \"deliver\"]\n",
    );
    let renderer = WorkerProcess::start_as(dir.path(), &config, "render", &["--pool", &render]);
    let deliverer = WorkerProcess::start_as(dir.path(), &config, "deliver", &["--pool", &deliver]);

    // Two notify steps a second apart: each step's chart is drawn then.
    let job = job_json("pool-1", "firing").replace(
        "\"targets\"",
        r#""charts":[{"grafana":{"dashboard_uid":"abc","panel_id":7},"width":600,"height":300,"title":"p99"}],
           "escalation":[{"notify":["ops-mail"]},{"wait":"1s"},{"notify":["ops-mail"],"important":true}],
           "targets""#,
    );
    let job = write_file(dir.path(), "job.json", &job);
    fanout_in(
        dir.path(),
        &["enqueue", &job, "--config", &config],
        None,
        &[],
    )
    .assert_code(0);
    let received = server.wait_for_messages(2);
    for message in &received[..2] {
        let msg = MessageParser::default().parse(&message.raw).unwrap();
        let image = msg
            .parts
            .iter()
            .find(|p| p.content_id().is_some_and(|c| c.starts_with("chart0.")))
            .expect("inline image");
        let (w, h, n) = crate::render::count_colour(image.contents(), [0xff, 0x57, 0x22]);
        assert_eq!((w, h), (600, 300));
        assert!(n > 2_000, "the panel's data is drawn ({n} pixels)");
    }
    assert!(
        renderer.log_text().contains("Worker consuming.")
            && !renderer.log_text().contains("Delivered."),
        "the render pool only renders"
    );
    assert!(
        deliverer.log_text().contains("Delivered."),
        "{}",
        deliverer.log_text()
    );
    // The PNG travelled by storage key, not inside the messages. Each
    // notify step drew the panel anew (both renders ran at once, in two
    // tabs); the same data drew the same PNG, stored once by its content.
    assert_eq!(
        crate::support::files_with_ext(&dir.path().join("images"), "png").len(),
        1
    );
    assert_eq!(
        renderer.log_text().matches("step=\"screenshot\"").count(),
        2,
        "one render per notify step"
    );
}
