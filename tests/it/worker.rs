//! `fanout worker` on the machine's RabbitMQ: native and Celery jobs are
//! delivered; malformed and invalid ones land in `fanout.dead` with their
//! reason while the worker goes on; SIGTERM stops it cleanly.

use std::process::Command;
use std::time::Duration;

use lapin::BasicProperties;

use crate::support::worker::{header, job, publish_celery, setup, Setup, WorkerProcess};
use crate::support::{fanout_in, wait_for, write_file};

#[test]
fn the_worker_delivers_good_jobs_and_dead_letters_bad_ones() {
    // Declares the topology by enqueuing a first job.
    let Setup {
        declared,
        receiver,
        dir,
        cfg,
    } = setup(true, "w-1");
    let mut worker = WorkerProcess::start(dir.path(), &cfg);

    let json = BasicProperties::default().with_content_type("application/json".into());
    // Malformed, then invalid: each to the dead-letter queue with its reason.
    declared.publish_raw(b"{\"version\": 1, \"id\": ".to_vec(), json.clone());
    declared.publish_raw(job("w-bad", "nope").into_bytes(), json.clone());
    // A Celery v2 message, built by the real Celery client.
    publish_celery(&declared, &job("w-celery", "hook"), &[]);
    // And a good one after the bad ones: the worker goes on.
    let last = write_file(dir.path(), "last.json", &job("w-2", "hook"));
    fanout_in(dir.path(), &["enqueue", &last, "--config", &cfg], None, &[]).assert_code(0);

    let delivered = wait_for("three deliveries", Duration::from_secs(30), || {
        let got = receiver.received();
        (got.len() >= 3).then_some(got)
    });
    let mut ids: Vec<String> = delivered
        .iter()
        .map(|r| r.headers["x-fanout-delivery"].to_str().unwrap().to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, ["w-1/0/hook", "w-2/0/hook", "w-celery/0/hook"]);

    let mut dead = Vec::new();
    wait_for("two dead letters", Duration::from_secs(30), || {
        dead.extend(declared.get_dead());
        (dead.len() >= 2).then_some(())
    });
    let (body, props) = &dead[0];
    assert_eq!(
        body.as_slice(),
        b"{\"version\": 1, \"id\": ",
        "the body is untouched"
    );
    assert_eq!(header(props, "x-fanout-stage"), "decode");
    assert!(
        header(props, "x-fanout-reason").contains("not JSON"),
        "{}",
        header(props, "x-fanout-reason")
    );
    let (_, props) = &dead[1];
    assert_eq!(header(props, "x-fanout-stage"), "validate");
    assert!(header(props, "x-fanout-reason").contains("unknown destination \"nope\""));
    assert!(declared.get_job().is_none(), "every message was settled");

    // SIGTERM: stop consuming, finish, exit 0.
    let killed = Command::new("kill")
        .args(["-TERM", &worker.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = wait_for("the worker to exit", Duration::from_secs(20), || {
        worker.child.try_wait().ok().flatten()
    });
    assert!(status.success(), "{}", worker.log_text());
    assert_eq!(receiver.received().len(), 3, "nothing was sent twice");
}

#[test]
fn a_celery_countdown_waits_in_the_broker_not_in_the_worker() {
    let Setup {
        declared,
        receiver,
        dir,
        cfg,
    } = setup(false, "d-0");
    let mut worker = WorkerProcess::start(dir.path(), &cfg);
    wait_for("the first job", Duration::from_secs(20), || {
        (receiver.received().len() == 1).then_some(())
    });

    let published = std::time::Instant::now();
    publish_celery(&declared, &job("d-later", "hook"), &["--countdown", "4"]);
    // Kill the worker while the job waits: if the wait lived in its memory,
    // the job would be lost with it.
    wait_for("the job to be parked", Duration::from_secs(10), || {
        worker
            .log_text()
            .contains("Parked in a delay tier.")
            .then_some(())
    });
    let _ = worker.child.kill();
    let _ = worker.child.wait();
    let _second = WorkerProcess::start(dir.path(), &cfg);

    let got = wait_for("the delayed job", Duration::from_secs(30), || {
        let got = receiver.received();
        (got.len() == 2).then_some(got)
    });
    let waited = got[1].at.duration_since(published);
    assert_eq!(got[1].headers["x-fanout-delivery"], "d-later/0/hook");
    assert!(
        waited >= Duration::from_millis(3_500),
        "delivered before its countdown: {waited:?}"
    );
    assert!(declared.get_dead().is_none(), "nothing was dead-lettered");
}

#[test]
fn a_real_celery_client_enqueues_with_send_task_and_countdown() {
    let Setup {
        declared,
        receiver,
        dir,
        cfg,
    } = setup(true, "e-0");
    let _worker = WorkerProcess::start(dir.path(), &cfg);
    let producer = |id: &str, extra: &[&str]| {
        let path = write_file(dir.path(), &format!("{id}.json"), &job(id, "hook"));
        let out = Command::new("python3")
            .arg(crate::support::repo().join("examples/celery_producer.py"))
            .args([
                "--job",
                &path,
                "--broker",
                "amqp://guest:guest@127.0.0.1:5672//",
            ])
            .args(["--prefix", &declared.prefix])
            .args(extra)
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "the Celery producer failed (pip install -r tests/requirements.txt): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let sent = std::time::Instant::now();
    producer("e-later", &["--countdown", "3"]);
    producer("e-now", &[]);
    let got = wait_for("both Celery jobs", Duration::from_secs(30), || {
        let got = receiver.received();
        (got.len() == 3).then_some(got)
    });
    let ids: Vec<_> = got
        .iter()
        .map(|r| r.headers["x-fanout-delivery"].to_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["e-0/0/hook", "e-now/0/hook", "e-later/0/hook"]);
    assert!(
        got[2].at.duration_since(sent) >= Duration::from_millis(2_500),
        "the countdown was honoured"
    );
    assert_eq!(declared.count("fanout.dead"), 0);
}

/// An alert storm: 1.6 MB, nearly all of it the raw upstream body.
fn storm(id: &str) -> Vec<u8> {
    let alerts: Vec<serde_json::Value> = (0..10_000)
        .map(|i| {
            serde_json::json!({"status": "firing",
                "labels": {"alertname": "HighLatency", "instance": format!("api-{i}:9100")},
                "annotations": {"description": "p99 latency over 1s for 5 minutes on this instance"}})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "version": 1, "id": id,
        "alert": {"group_id": id, "title": "10000 instances slow",
                  "payload": {"version": "4", "status": "firing", "alerts": alerts}},
        "targets": [{"destination": "hook"}]
    }))
    .unwrap()
}

#[test]
fn an_alert_storm_over_the_size_limit_still_pages_from_send_enqueue_and_the_worker() {
    let Setup {
        declared,
        receiver,
        dir,
        cfg,
    } = setup(true, "storm-0");
    let limit = fanout::job::MAX_MESSAGE_BYTES;
    let sizes: Vec<usize> = ["storm-send", "storm-enqueue", "storm-raw"]
        .iter()
        .map(|id| storm(id).len())
        .collect();
    assert!(sizes.iter().all(|s| *s > limit + limit / 2), "{sizes:?}");

    // `fanout send`, in process: delivered, and says it trimmed.
    let path = write_file(
        dir.path(),
        "send.json",
        &String::from_utf8(storm("storm-send")).unwrap(),
    );
    let sent = fanout_in(dir.path(), &["send", &path, "--config", &cfg], None, &[]);
    sent.assert_code(0);
    assert!(sent.stderr.contains("raw payload was trimmed"), "{sent}");

    // `fanout enqueue`: what reaches the broker is within the limit.
    let _worker = WorkerProcess::start(dir.path(), &cfg);
    let path = write_file(
        dir.path(),
        "enqueue.json",
        &String::from_utf8(storm("storm-enqueue")).unwrap(),
    );
    fanout_in(dir.path(), &["enqueue", &path, "--config", &cfg], None, &[]).assert_code(0);
    // A producer that publishes it as it is: the worker trims it itself.
    declared.publish_jobs(vec![storm("storm-raw")]);

    let got = wait_for("every storm delivered", Duration::from_secs(60), || {
        let got = receiver.received();
        let ids: Vec<String> = got
            .iter()
            .map(|r| r.headers["x-fanout-delivery"].to_str().unwrap().to_string())
            .collect();
        ["storm-send", "storm-enqueue", "storm-raw"]
            .iter()
            .all(|id| ids.contains(&format!("{id}/0/hook")))
            .then_some(got)
    });
    for r in got.iter().filter(|r| {
        r.headers["x-fanout-delivery"]
            .to_str()
            .unwrap()
            .starts_with("storm-")
            && !r.headers["x-fanout-delivery"]
                .to_str()
                .unwrap()
                .starts_with("storm-0")
    }) {
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let alert = &body["alert"];
        assert_eq!(alert["title"], "10000 instances slow");
        let original = alert["payload_trimmed"]
            .as_u64()
            .expect("marked as trimmed");
        assert!(original as usize > limit, "{original}");
        // The start of the storm is kept in its shape, for templates.
        assert_eq!(alert["payload"]["status"], "firing");
        assert_eq!(
            alert["payload"]["alerts"][0]["labels"]["instance"],
            "api-0:9100"
        );
        let kept = alert["payload"]["alerts"].as_array().unwrap().len();
        assert!(kept > 100 && kept < 10_000, "{kept}");
    }
    assert_eq!(declared.count("fanout.dead"), 0);
}
