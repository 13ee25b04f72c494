//! `fanout enqueue` on the machine's real RabbitMQ: the topology is
//! declared, a valid job is published persistent and confirmed, a bad one
//! never reaches the queue. Each test uses its own name prefix and removes
//! what it declared.

use crate::support::rabbit::{Declared, URL};
use crate::support::{fanout_in, write_file};

fn config(prefix: &str) -> String {
    format!(
        "[broker]\nurl = \"{URL}\"\nprefix = \"{prefix}\"\n\n[destinations.hook]\nchannel = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\n"
    )
}

const JOB: &str = r#"{"version":1,"id":"enq-1","alert":{"group_id":"g","title":"t"},"targets":[{"destination":"hook"}]}"#;

#[test]
fn a_valid_job_is_published_persistent_and_confirmed() {
    let declared = Declared::new();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_file(dir.path(), "fanout.toml", &config(&declared.prefix));
    let job = write_file(dir.path(), "job.json", JOB);
    let run = fanout_in(dir.path(), &["enqueue", &job, "--config", &cfg], None, &[]);
    run.assert_code(0);
    assert!(
        run.stdout.contains(&format!(
            "enqueued enq-1 to {}fanout (key job)",
            declared.prefix
        )),
        "{run}"
    );

    let (body, props) = declared.get_job().expect("the job is on the queue");
    assert_eq!(body, JOB.as_bytes(), "the bytes as the producer wrote them");
    assert_eq!(props.delivery_mode(), &Some(2), "persistent");
    assert_eq!(
        props.content_type().as_ref().map(|c| c.as_str()),
        Some("application/json")
    );
    assert_eq!(
        props.message_id().as_ref().map(|m| m.as_str()),
        Some("enq-1")
    );
    assert!(declared.get_job().is_none(), "exactly one message");
    assert!(
        !run.all_output().contains("guest:guest"),
        "the password is not shown\n{run}"
    );

    let check = fanout_in(dir.path(), &["check", "--config", &cfg], None, &[]);
    let row = check
        .stdout
        .lines()
        .find(|l| l.starts_with("broker"))
        .unwrap_or_default();
    assert!(
        row.contains("connected, topology declared") && row.contains("***@127.0.0.1"),
        "{check}"
    );
}

#[test]
fn a_bad_job_never_reaches_the_queue() {
    let declared = Declared::new();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_file(dir.path(), "fanout.toml", &config(&declared.prefix));
    // Declare the topology first, so an empty queue is observable.
    let good = write_file(dir.path(), "good.json", JOB);
    fanout_in(dir.path(), &["enqueue", &good, "--config", &cfg], None, &[]).assert_code(0);
    assert!(declared.get_job().is_some());

    let bad = JOB.replace("\"hook\"", "\"nope\"");
    let run = fanout_in(
        dir.path(),
        &["enqueue", "-", "--config", &cfg],
        Some(bad.as_bytes()),
        &[],
    );
    run.assert_code(2);
    assert!(
        run.stderr
            .contains("targets[0].destination: unknown destination \"nope\""),
        "{run}"
    );
    assert!(declared.get_job().is_none(), "nothing was published");
}

#[test]
fn an_unreachable_broker_is_exit_1_with_the_password_hidden() {
    let port = crate::support::free_port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_file(
        dir.path(),
        "fanout.toml",
        &config("x.")
            .replace("127.0.0.1:5672", &format!("127.0.0.1:{port}"))
            .replace("guest:guest", "guest:Pw-7Q1"),
    );
    let job = write_file(dir.path(), "job.json", JOB);
    let run = fanout_in(dir.path(), &["enqueue", &job, "--config", &cfg], None, &[]);
    run.assert_code(1);
    assert!(run.stderr.contains("broker amqp://***@127.0.0.1"), "{run}");
    assert!(!run.all_output().contains("Pw-7Q1"), "{run}");
}
