//! The worker against failure on real parts: `kill -9` with 10,000
//! deliveries in flight, and the broker closing its connection mid-run.

use std::process::Command;
use std::time::Duration;

use crate::support::rabbit::Declared;
use crate::support::receiver::Receiver;
use crate::support::worker::{config_text, delivered_ids, hook, logged_deliveries, WorkerProcess};
use crate::support::{wait_for, write_file};

const TARGETS: usize = 5;

/// A job for `hook0..hook4`: five deliveries.
fn five_target_job(id: &str) -> Vec<u8> {
    let targets: Vec<String> = (0..TARGETS)
        .map(|k| format!(r#"{{"destination":"hook{k}"}}"#))
        .collect();
    format!(
        r#"{{"version":1,"id":"{id}","alert":{{"group_id":"{id}","title":"t"}},"targets":[{}]}}"#,
        targets.join(",")
    )
    .into_bytes()
}

fn five_hook_config(dir: &std::path::Path, declared: &Declared, receiver: &Receiver) -> String {
    let hooks: String = (0..TARGETS)
        .map(|k| hook(&format!("hook{k}"), receiver, ""))
        .collect();
    let text = config_text(
        declared,
        receiver,
        "127.0.0.1:0",
        &format!("[store]\nurl = \"sqlite://state.db\"\n\n{hooks}"),
    );
    write_file(dir, "fanout.toml", &text)
}

#[test]
fn kill_9_with_ten_thousand_deliveries_in_flight_loses_none() {
    const JOBS: usize = 2_000;
    let declared = Declared::new();
    let receiver = Receiver::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = five_hook_config(dir.path(), &declared, &receiver);
    let mut first = WorkerProcess::start_as(dir.path(), &cfg, "first", &[]);
    declared.publish_jobs(
        (0..JOBS)
            .map(|i| five_target_job(&format!("t-{i}")))
            .collect(),
    );
    let total = JOBS * TARGETS;
    wait_for("a first part delivered", Duration::from_secs(120), || {
        (receiver.received().len() >= total / 4).then_some(())
    });
    // No shutdown, no goodbye.
    let _ = first.child.kill();
    let _ = first.child.wait();
    let at_kill = delivered_ids(&receiver).len();
    let _second = WorkerProcess::start_as(dir.path(), &cfg, "second", &[]);

    let ids = wait_for("every delivery", Duration::from_secs(300), || {
        let ids = delivered_ids(&receiver);
        (ids.len() == total).then_some(ids)
    });
    let duplicated: Vec<&String> = ids
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id)
        .collect();
    println!(
        "kill -9 after {at_kill} of {total} deliveries: 0 lost, {} duplicate(s)",
        duplicated.len()
    );
    // Every duplicate is a send the first worker had made but not yet
    // recorded: it logged "Sending." for it and never "Delivered.".
    let log = first.log_text();
    let sending = logged_deliveries(&log, "Sending.");
    let recorded = logged_deliveries(&log, "Delivered.");
    for id in &duplicated {
        assert!(
            sending.contains(*id) && !recorded.contains(*id),
            "{id} was sent twice outside the send→record window"
        );
    }
    assert_eq!(declared.count("fanout.jobs"), 0);
    assert_eq!(declared.count("fanout.dead"), 0);
}

/// The RabbitMQ name of this test's worker connection (see `Broker::connect`).
fn connection_pid(prefix: &str) -> Option<String> {
    let out = Command::new("rabbitmqctl")
        .args(["-q", "list_connections", "pid", "client_properties"])
        .output()
        .expect("rabbitmqctl runs (it comes with rabbitmq-server)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.contains(&format!("fanout {prefix}pid")))
        .and_then(|l| l.split('\t').next())
        .map(str::to_string)
}

#[test]
fn the_worker_reconnects_when_the_broker_drops_it_and_loses_nothing() {
    const JOBS: usize = 400;
    let declared = Declared::new();
    let receiver = Receiver::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = five_hook_config(dir.path(), &declared, &receiver);
    let mut worker = WorkerProcess::start(dir.path(), &cfg);
    let pid = wait_for("the worker's connection", Duration::from_secs(20), || {
        connection_pid(&declared.prefix)
    });
    declared.publish_jobs(
        (0..JOBS)
            .map(|i| five_target_job(&format!("c-{i}")))
            .collect(),
    );
    let total = JOBS * TARGETS;
    wait_for("a first part delivered", Duration::from_secs(60), || {
        (receiver.received().len() >= total / 5).then_some(())
    });
    let closed = Command::new("rabbitmqctl")
        .args(["-q", "close_connection", &pid, "fanout test: closing"])
        .status()
        .unwrap();
    assert!(closed.success());

    wait_for("every delivery", Duration::from_secs(120), || {
        (delivered_ids(&receiver).len() == total).then_some(())
    });
    assert!(
        worker.child.try_wait().unwrap().is_none(),
        "the same process carries on"
    );
    // Deliveries already in hand finish while the connection is down, so
    // the last one can land before the worker consumes again: wait for that.
    let log = wait_for(
        "consuming again after reconnecting",
        Duration::from_secs(30),
        || {
            let log = worker.log_text();
            (log.matches("Worker consuming.").count() >= 2).then_some(log)
        },
    );
    assert!(log.contains("Lost the broker; reconnecting."), "{log}");
    assert_eq!(
        log.matches("Worker consuming.").count(),
        2,
        "one reconnect, one new consumer:\n{log}"
    );
    assert_eq!(declared.count("fanout.dead"), 0);
}

/// What the worker's /readyz answers, or 0 when nothing answers.
fn readyz(port: u16) -> u16 {
    reqwest::blocking::get(format!("http://127.0.0.1:{port}/readyz"))
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[test]
fn a_worker_started_before_its_store_and_broker_waits_for_them() {
    use crate::support::forward::Forwarder;
    use crate::support::free_port;

    let declared = Declared::new();
    let _keys = crate::support::redis::RedisKeys::new(&declared.prefix);
    let receiver = Receiver::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on these yet: the worker starts first, as it often
    // does under compose or Kubernetes.
    let (broker_port, redis_port, http_port) = (free_port(), free_port(), free_port());
    let text = config_text(
        &declared,
        &receiver,
        &format!("127.0.0.1:{http_port}"),
        &format!("[store]\nurl = \"redis://127.0.0.1:{redis_port}/\"\n"),
    )
    .replace("127.0.0.1:5672", &format!("127.0.0.1:{broker_port}"));
    let cfg = write_file(dir.path(), "fanout.toml", &text);
    let mut worker = WorkerProcess::spawn(dir.path(), &cfg, "worker", &[]);
    let log_text = || std::fs::read_to_string(dir.path().join("worker.log")).unwrap_or_default();
    let tries = |what: &str| {
        log_text()
            .lines()
            .filter(|l| {
                l.contains("Dependency not reachable; retrying.")
                    && l.contains(&format!("what=\"{what}\""))
            })
            .count()
    };

    wait_for("two tries at the store", Duration::from_secs(15), || {
        (tries("store") >= 2).then_some(())
    });
    assert_eq!(
        worker.child.try_wait().unwrap(),
        None,
        "still running:\n{}",
        log_text()
    );
    assert_eq!(readyz(http_port), 503, "not ready while it waits");
    assert!(
        log_text().contains("hint="),
        "each try says what to check:\n{}",
        log_text()
    );

    let _redis = Forwarder::start(redis_port, "127.0.0.1:6379");
    wait_for("two tries at the broker", Duration::from_secs(20), || {
        (tries("broker") >= 2).then_some(())
    });
    assert_eq!(
        worker.child.try_wait().unwrap(),
        None,
        "still running:\n{}",
        log_text()
    );
    assert_eq!(readyz(http_port), 503);

    let _rabbit = Forwarder::start(broker_port, "127.0.0.1:5672");
    wait_for("the worker to consume", Duration::from_secs(40), || {
        log_text().contains("Worker consuming.").then_some(())
    });
    assert_eq!(readyz(http_port), 200);
    declared.publish_jobs(vec![
        crate::support::worker::job("late-broker", "hook").into_bytes()
    ]);
    wait_for("the job delivered", Duration::from_secs(20), || {
        (!receiver.received().is_empty()).then_some(())
    });
    // A clean stop after all that is still exit 0, with no error logged.
    let _ = Command::new("kill")
        .args(["-TERM", &worker.child.id().to_string()])
        .status();
    let status = wait_for("the worker to stop", Duration::from_secs(40), || {
        worker.child.try_wait().unwrap()
    });
    assert_eq!(status.code(), Some(0), "{}", log_text());
    assert!(!log_text().contains("ERROR"), "{}", log_text());
}
