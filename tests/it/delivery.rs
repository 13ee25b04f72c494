//! The deliver stage on the machine's RabbitMQ: retries through the delay
//! tiers against a flaky sink, a permanent error dead-lettered once, a
//! flood of malformed messages, rate limits shared by two workers through
//! Redis, and metrics without secrets.

use std::time::Duration;

use lapin::BasicProperties;

use crate::support::rabbit::Declared;
use crate::support::receiver::{Answer, Receiver};
use crate::support::worker::{
    config_text, delivered_ids, header, job, metrics, series, WorkerProcess,
};
use crate::support::{free_port, wait_for, write_file};

const STORE: &str = "[store]\nurl = \"sqlite://state.db\"\n";

fn json() -> BasicProperties {
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
}

#[test]
fn a_flaky_sink_gets_every_delivery_once_within_the_attempt_budget() {
    const JOBS: usize = 60;
    let declared = Declared::new();
    // 30% of the first 90 answers fail: 500s, and 429s asking for 1 s.
    let script: Vec<Answer> = (0..90)
        .map(|i| match i % 10 {
            2 | 5 => (500, None),
            8 => (429, Some("1")),
            _ => (200, None),
        })
        .collect();
    let receiver = Receiver::start(&script);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // The test's own config: hook may try ten times.
    let text = config_text(&declared, &receiver, &format!("127.0.0.1:{port}"), STORE)
        + "max_attempts = 10\n";
    let cfg = write_file(dir.path(), "fanout.toml", &text);
    let _worker = WorkerProcess::start(dir.path(), &cfg);
    declared.publish_jobs(
        (0..JOBS)
            .map(|i| job(&format!("f-{i}"), "hook").into_bytes())
            .collect(),
    );

    let ids = wait_for("every job delivered", Duration::from_secs(90), || {
        let ids = delivered_ids(&receiver);
        (ids.len() == JOBS).then_some(ids)
    });
    assert!(
        ids.values().all(|n| *n == 1),
        "each delivered once: {ids:?}"
    );
    let got = receiver.received();
    let failures = got.iter().filter(|r| r.status != 200).count();
    assert!(failures >= 20, "the sink failed only {failures} times");
    assert_eq!(got.len(), JOBS + failures, "one retry per failure");
    // A 429's Retry-After is honoured: that delivery's next try waits.
    for (i, r) in got.iter().enumerate().filter(|(_, r)| r.status == 429) {
        let id = &r.headers["x-fanout-delivery"];
        let next = got[i + 1..]
            .iter()
            .find(|n| n.headers["x-fanout-delivery"] == id)
            .expect("a 429 is retried");
        let waited = next.at.duration_since(r.at);
        assert!(
            waited >= Duration::from_millis(900),
            "retried after {waited:?}"
        );
    }
    let text = metrics(port);
    assert_eq!(
        series(&text, "fanout_retries_total{destination=\"hook\"}"),
        failures as f64,
        "{text}"
    );
    assert_eq!(
        series(
            &text,
            "fanout_deliveries_total{channel=\"webhook\",destination=\"hook\",outcome=\"delivered\"}"
        ),
        JOBS as f64
    );
    assert!(
        !text.contains("secret-path-key"),
        "the webhook URL's secret path leaked into metrics"
    );
    assert_eq!(declared.count("fanout.dead"), 0);
}

#[test]
fn a_400_is_dead_lettered_once_with_its_reason() {
    let declared = Declared::new();
    let receiver = Receiver::start(&[(400, None)]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_file(
        dir.path(),
        "fanout.toml",
        &config_text(&declared, &receiver, "127.0.0.1:0", STORE),
    );
    let worker = WorkerProcess::start(dir.path(), &cfg);
    declared.publish_jobs(vec![job("p-1", "hook").into_bytes()]);
    let (body, props) = wait_for("the dead letter", Duration::from_secs(30), || {
        declared.get_dead()
    });
    assert_eq!(header(&props, "x-fanout-stage"), "deliver");
    let reason = header(&props, "x-fanout-reason");
    assert!(
        reason.contains("hook") && reason.contains("permanent") && reason.contains("400"),
        "{reason}"
    );
    assert!(
        !reason.contains("secret-path-key"),
        "secret in the reason: {reason}"
    );
    let order: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        order["job"]["id"], "p-1",
        "the delivery message is kept whole"
    );

    // A later job goes through; the 400 was never tried again.
    declared.publish_jobs(vec![job("p-2", "hook").into_bytes()]);
    wait_for("the next job", Duration::from_secs(30), || {
        delivered_ids(&receiver)
            .contains_key("p-2/0/hook")
            .then_some(())
    });
    let tries = receiver
        .received()
        .iter()
        .filter(|r| r.headers["x-fanout-delivery"] == "p-1/0/hook")
        .count();
    assert_eq!(tries, 1, "a permanent error is not retried");
    assert!(!worker.log_text().contains("secret-path-key"));
}

#[test]
fn a_thousand_malformed_messages_are_dead_lettered_while_good_jobs_flow() {
    const BAD: usize = 1000;
    let declared = Declared::new();
    let receiver = Receiver::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_file(
        dir.path(),
        "fanout.toml",
        &config_text(&declared, &receiver, "127.0.0.1:0", STORE),
    );
    let worker = WorkerProcess::start(dir.path(), &cfg);

    // A real Celery message to spoil in ways a broken producer would.
    let celery = crate::support::celery::celery_message(&job("c-x", "hook"), &[]);
    let celery_props = |headers: serde_json::Map<String, serde_json::Value>, ct: &str| {
        BasicProperties::default()
            .with_headers(fanout::broker::json_to_headers(&headers))
            .with_content_type(ct.into())
            .with_content_encoding("utf-8".into())
    };
    let mut no_id = celery.headers.clone();
    no_id.remove("id");
    let mut wrong_task = celery.headers.clone();
    wrong_task.insert("task".into(), "billing.charge".into());
    let huge = {
        let mut body = b"{\"version\":1,\"id\":\"".to_vec();
        body.resize(fanout::job::decode::MAX_MESSAGE_BYTES + 10, b'x');
        body
    };
    let mut messages = Vec::new();
    let mut good = Vec::new();
    for i in 0..BAD {
        let bad = match i % 7 {
            _ if i % 100 == 99 => (huge.clone(), json()),
            0 => (b"{\"version\": 1, \"id\": ".to_vec(), json()),
            1 => (
                br#"{"version":1,"id":5,"alert":{"group_id":"g","title":"t"},"targets":[]}"#
                    .to_vec(),
                json(),
            ),
            2 => (job(&format!("u-{i}"), "nowhere").into_bytes(), json()),
            3 => (
                celery.body.clone(),
                celery_props(no_id.clone(), "application/json"),
            ),
            4 => (
                celery.body.clone(),
                celery_props(celery.headers.clone(), "application/x-python-serialize"),
            ),
            5 => (
                celery.body.clone(),
                celery_props(wrong_task.clone(), "application/json"),
            ),
            _ => (vec![0xff, 0xfe, 0x00, 0x01], BasicProperties::default()),
        };
        messages.push(bad);
        if i % 100 == 50 {
            let id = format!("g-{i}");
            messages.push((job(&id, "hook").into_bytes(), json()));
            good.push(format!("{id}/0/hook"));
        }
    }
    declared.publish_many(messages);

    wait_for("every bad message dead", Duration::from_secs(120), || {
        (declared.count("fanout.dead") as usize == BAD).then_some(())
    });
    let ids = wait_for("the good jobs", Duration::from_secs(30), || {
        let ids = delivered_ids(&receiver);
        (ids.len() == good.len()).then_some(ids)
    });
    for id in &good {
        assert_eq!(ids.get(id), Some(&1), "{id}");
    }
    for _ in 0..20 {
        let (_, props) = declared.get_dead().unwrap();
        let stage = header(&props, "x-fanout-stage");
        assert!(["decode", "validate"].contains(&stage.as_str()), "{stage}");
        assert!(!header(&props, "x-fanout-reason").is_empty());
    }
    assert!(
        !worker.log_text().contains("panicked"),
        "the worker panicked"
    );
    assert_eq!(declared.count("fanout.jobs"), 0);
}

#[test]
fn two_workers_sharing_redis_keep_one_rate_limit() {
    const JOBS: usize = 20;
    let declared = Declared::new();
    let receiver = Receiver::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let redis = "[store]\nurl = \"redis://127.0.0.1:6379/\"\n";
    let text = config_text(&declared, &receiver, "127.0.0.1:0", redis) + "rate = \"5/2s\"\n";
    let cfg = write_file(dir.path(), "fanout.toml", &text);
    let one = WorkerProcess::start_as(dir.path(), &cfg, "one", &["--prefetch", "2"]);
    let two = WorkerProcess::start_as(dir.path(), &cfg, "two", &["--prefetch", "2"]);
    declared.publish_jobs(
        (0..JOBS)
            .map(|i| job(&format!("r-{i}"), "hook").into_bytes())
            .collect(),
    );
    wait_for("every job delivered", Duration::from_secs(60), || {
        (delivered_ids(&receiver).len() == JOBS).then_some(())
    });
    let mut at: Vec<_> = receiver.received().iter().map(|r| r.at).collect();
    at.sort();
    // At most 5 in any 2 s (less a little for delivery jitter).
    for (i, start) in at.iter().enumerate() {
        let within = at[i..]
            .iter()
            .take_while(|t| t.duration_since(*start) < Duration::from_millis(1500))
            .count();
        assert!(within <= 5, "{within} deliveries within 1.5 s");
    }
    let span = at[JOBS - 1].duration_since(at[0]);
    assert!(
        span >= Duration::from_millis(5_400),
        "20 at 5 per 2 s take 6 s, not {span:?}"
    );
    for w in [&one, &two] {
        assert!(
            w.log_text().contains("Delivered."),
            "both workers share the work (and the limit)"
        );
    }
}

#[test]
fn dead_letters_are_listed_replayed_and_purged() {
    let declared = Declared::new();
    // The first try is refused for good; the replay then goes through.
    let receiver = Receiver::start(&[(400, None)]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_file(
        dir.path(),
        "fanout.toml",
        &config_text(&declared, &receiver, "127.0.0.1:0", STORE),
    );
    let _worker = WorkerProcess::start(dir.path(), &cfg);
    declared.publish_jobs(vec![job("d-1", "hook").into_bytes()]);
    wait_for("the dead letter", Duration::from_secs(30), || {
        (declared.count("fanout.dead") == 1).then_some(())
    });

    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--config", &cfg]);
        crate::support::fanout_in(dir.path(), &all, None, &[])
    };
    let listed = run(&["dead", "list"]);
    listed.assert_code(0);
    assert!(
        listed.stdout.contains("deliver.webhook") && listed.stdout.contains("permanent"),
        "{}",
        listed.all_output()
    );
    assert_eq!(
        declared.count("fanout.dead"),
        1,
        "listing keeps the message"
    );
    let as_json = run(&["dead", "list", "--json"]);
    let letter: serde_json::Value = serde_json::from_str(as_json.stdout.trim()).unwrap();
    assert_eq!(letter["stage"], "deliver");

    let replayed = run(&["dead", "replay"]);
    replayed.assert_code(0);
    assert!(
        replayed.stdout.contains("replayed 1"),
        "{}",
        replayed.all_output()
    );
    wait_for("the replayed delivery", Duration::from_secs(30), || {
        delivered_ids(&receiver)
            .contains_key("d-1/0/hook")
            .then_some(())
    });
    assert_eq!(declared.count("fanout.dead"), 0);

    declared.publish_many(vec![(b"not json".to_vec(), json())]);
    wait_for("a new dead letter", Duration::from_secs(30), || {
        (declared.count("fanout.dead") == 1).then_some(())
    });
    run(&["dead", "purge"]).assert_code(2);
    assert_eq!(declared.count("fanout.dead"), 1, "no purge without --yes");
    let purged = run(&["dead", "purge", "--yes"]);
    purged.assert_code(0);
    assert!(
        purged.stdout.contains("purged 1"),
        "{}",
        purged.all_output()
    );
    assert_eq!(declared.count("fanout.dead"), 0);
}
