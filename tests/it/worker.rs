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
