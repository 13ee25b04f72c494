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
            "content_type: application/x-python-serialize (pickle) is refused",
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

/// Publish `cases` through the real Celery client (`tests/support/celery_send.py`)
/// to the worker's exchange; the job ids it printed, by case.
fn celery_send(
    declared: &crate::support::rabbit::Declared,
    dir: &std::path::Path,
    cases: &[&str],
) -> std::collections::HashMap<String, String> {
    let job = crate::support::write_file(
        dir,
        "celery-job.json",
        &crate::support::worker::job("cel", "hook"),
    );
    let out = std::process::Command::new("python3")
        .arg(repo().join("tests/support/celery_send.py"))
        .args([
            "--broker",
            crate::support::rabbit::URL,
            "--prefix",
            &declared.prefix,
        ])
        .args(["--job", &job, "--cases", &cases.join(",")])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "the Celery client failed (python3 -m pip install -r tests/requirements.txt): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line per case");
            (
                v["case"].as_str().unwrap().to_string(),
                v["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn every_way_a_stock_celery_producer_sends_a_job_is_delivered_once() {
    use crate::support::worker::{delivered_ids, setup, Setup, WorkerProcess};
    use std::time::Duration;

    let Setup {
        declared,
        receiver,
        dir,
        cfg,
    } = setup(true, "cel-first");
    let worker = WorkerProcess::start(dir.path(), &cfg);
    let delivered: &[&str] = &[
        "naive-eta",
        "naive-expires",
        "float-expires",
        "positional",
        "delay",
        "options",
        "zlib",
        "bzip2",
        "lzma",
        "brotli",
        "zstd",
        "msgpack",
        "protocol1",
        "datetime",
        "nan",
        "link",
    ];
    let refused: &[&str] = &["pickle", "yaml"];
    let sent = std::time::Instant::now();
    let ids = celery_send(&declared, dir.path(), &[delivered, refused].concat());

    let want: Vec<String> = delivered
        .iter()
        .map(|c| format!("{}/0/hook", ids[*c]))
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let got = loop {
        let got = delivered_ids(&receiver);
        let missing: Vec<&String> = want.iter().filter(|w| !got.contains_key(*w)).collect();
        if missing.is_empty() {
            break got;
        }
        if std::time::Instant::now() > deadline {
            let mut dead = Vec::new();
            while let Some((_, props)) = declared.get_dead() {
                dead.push(crate::support::worker::header(&props, "x-fanout-reason"));
            }
            panic!(
                "not delivered: {missing:?}\ndead letters: {dead:#?}\nworker log:\n{}",
                worker.log_text()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for w in &want {
        assert_eq!(got[w], 1, "{w} delivered once");
    }

    // The naive eta was waited for, as Celery's worker would (as UTC).
    let bodies = receiver.received();
    let body_of = |case: &str| -> serde_json::Value {
        let id = format!("{}/0/hook", ids[case]);
        let r = bodies
            .iter()
            .find(|r| r.headers["x-fanout-delivery"] == id.as_str())
            .expect("received");
        serde_json::from_slice(&r.body).unwrap()
    };
    let eta = bodies
        .iter()
        .find(|r| r.headers["x-fanout-delivery"] == format!("{}/0/hook", ids["naive-eta"]).as_str())
        .unwrap();
    assert!(
        eta.at.duration_since(sent) >= Duration::from_millis(2_500),
        "the naive eta was honoured"
    );
    // kombu's datetime wrapper and Python's NaN arrive as plain values.
    let started = body_of("datetime")["alert"]["started_at"]
        .as_str()
        .unwrap()
        .to_string();
    let started = chrono::DateTime::parse_from_rfc3339(&started).unwrap();
    let ago = chrono::Utc::now().signed_duration_since(started);
    assert!(
        ago > chrono::Duration::minutes(4) && ago < chrono::Duration::minutes(7),
        "{started}"
    );
    assert_eq!(
        body_of("nan")["alert"]["payload"],
        serde_json::json!({"value": null, "threshold": null})
    );

    // Pickle and YAML are refused on purpose, each naming the producer setting.
    let mut reasons = Vec::new();
    crate::support::wait_for(
        "the two refusals in fanout.dead",
        Duration::from_secs(30),
        || {
            while let Some((_, props)) = declared.get_dead() {
                reasons.push(crate::support::worker::header(&props, "x-fanout-reason"));
            }
            (reasons.len() >= 2).then_some(())
        },
    );
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("application/x-python-serialize (pickle) is refused")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("application/x-yaml is not read")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .all(|r| r.contains("task_serializer = \"json\"")),
        "{reasons:?}"
    );
    // The callback fanout cannot run is said, not silently dropped.
    let log = worker.log_text();
    assert!(
        log.contains("Celery links are not run") && log.contains(&ids["link"]),
        "{log}"
    );
}
