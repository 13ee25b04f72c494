//! Celery protocol v2 messages built by the real Celery client
//! (`tests/support/celery_message.py`) decode to the same job.

use fanout::job::celery::{decode_celery, TASK};
use fanout::job::DecodeError;

use crate::support::celery::{celery_message, CeleryMessage};
use crate::support::repo;

/// Ask Celery to build the message for `job` with extra `args`.
fn celery(job: &str, args: &[&str]) -> CeleryMessage {
    celery_message(job, args)
}

fn decode(m: &CeleryMessage) -> Result<fanout::job::celery::CeleryJob, DecodeError> {
    decode_celery(
        &m.headers,
        Some(&m.content_type),
        Some(&m.content_encoding),
        &m.body,
    )
}

fn firing() -> String {
    std::fs::read_to_string(repo().join("examples/jobs/firing.json")).unwrap()
}

#[test]
fn send_task_with_kwargs_job_decodes_to_the_same_job() {
    let m = celery(&firing(), &["--countdown", "30", "--expires", "600"]);
    assert_eq!(m.headers["task"], TASK);
    let got = decode(&m).expect("decodes");
    let native = fanout::job::decode::decode_job(firing().as_bytes()).unwrap();
    assert_eq!(
        serde_json::to_value(&got.job).unwrap(),
        serde_json::to_value(&native).unwrap(),
        "the same job either way"
    );
    assert_eq!(got.task_id, "3f0c1a2e-0000-4000-8000-000000000001");
    let (eta, expires) = (
        got.eta.expect("countdown → eta"),
        got.expires.expect("expires"),
    );
    let now = chrono::Utc::now();
    assert!(
        eta > now + chrono::Duration::seconds(20) && eta < now + chrono::Duration::seconds(40),
        "{eta}"
    );
    assert!(expires > now + chrono::Duration::seconds(590), "{expires}");
    assert_eq!(got.retries, 0);
}

#[test]
fn wrong_task_serializer_arguments_and_jobs_are_refused_with_a_reason() {
    let cases: Vec<(Vec<&str>, String, &str)> = vec![
        (
            vec!["--task", "oncall.notify"],
            firing(),
            "headers.task: \"oncall.notify\" is not a fanout task",
        ),
        (
            vec!["--serializer", "pickle"],
            firing(),
            "content_type: application/x-python-serialize is not accepted",
        ),
        (
            vec!["--positional"],
            firing(),
            "args: pass the job as the keyword argument `job`",
        ),
        (
            vec![],
            firing().replace("\"severity\": \"critical\"", "\"severity\": \"urgent\""),
            "kwargs.job.alert.severity: unknown variant `urgent`",
        ),
    ];
    for (args, job, expect) in cases {
        let err = decode(&celery(&job, &args)).expect_err(expect).to_string();
        assert!(err.contains(expect), "{args:?}: {err}");
    }
    // Not a Celery message at all.
    let err = decode_celery(
        &serde_json::Map::new(),
        Some("application/json"),
        None,
        b"{}",
    )
    .unwrap_err();
    assert!(err.to_string().contains("headers.task: missing"), "{err}");
}
