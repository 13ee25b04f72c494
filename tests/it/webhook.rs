//! The webhook channel against a real HTTP receiver: the request as the
//! receiver sees it, retries (Retry-After honoured), permanent failures,
//! the outbox, and no secret anywhere.

use std::time::Duration;

use crate::support::receiver::Receiver;
use crate::support::{fanout_in, write_file};

const SECRET: &str = "whsec-0123456789abcdef";
const TOKEN: &str = "tok-98765";

fn config(url: &str) -> String {
    format!(
        "[destinations.hook]\nchannel = \"webhook\"\nurl = \"{url}\"\nsecret = \"{SECRET}\"\n\
         headers = {{ Authorization = \"Bearer {TOKEN}\" }}\nmax_attempts = 3\ntimeout = \"5s\"\n"
    )
}

const JOB: &str = r#"{"version":1,"id":"hook-1","alert":{"group_id":"g-1","title":"Queue backlog","severity":"error",
  "labels":{"queue":"orders"}},"targets":[{"destination":"hook"}]}"#;

fn send(url: &str, extra_args: &[&str]) -> (crate::support::Run, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_file(dir.path(), "fanout.toml", &config(url));
    let job = write_file(dir.path(), "job.json", JOB);
    let mut args = vec!["send", job.as_str(), "--config", cfg.as_str()];
    args.extend_from_slice(extra_args);
    let run = fanout_in(dir.path(), &args, None, &[]);
    (run, dir)
}

#[test]
fn the_receiver_gets_signed_json_with_the_alert() {
    let receiver = Receiver::start(&[]);
    let (run, _dir) = send(&receiver.url, &[]);
    run.assert_code(0);
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.path, "/hook/secret-path-key");
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(
        r.headers["authorization"],
        format!("Bearer {TOKEN}").as_str()
    );
    assert_eq!(r.headers["x-fanout-delivery"], "hook-1/0/hook");
    let body: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
    assert_eq!(body["alert"]["title"], "Queue backlog");
    assert_eq!(body["alert"]["labels"]["queue"], "orders");

    // Verify the signature as a receiver would, from the header alone.
    let sig = r.headers["x-fanout-signature"].to_str().unwrap();
    let (t, v1) = sig
        .strip_prefix("t=")
        .and_then(|s| s.split_once(",v1="))
        .expect("t=…,v1=…");
    let t: u64 = t.parse().unwrap();
    assert_eq!(fanout::channels::webhook::sign(SECRET, t, &r.body), v1);
    assert_ne!(
        fanout::channels::webhook::sign("another-secret-key", t, &r.body),
        v1
    );
    assert!(
        !run.all_output().contains(SECRET) && !run.all_output().contains(TOKEN),
        "{run}"
    );
    assert!(
        !run.all_output().contains("secret-path-key"),
        "the URL path is redacted\n{run}"
    );
}

#[test]
fn a_503_and_a_429_with_retry_after_are_retried() {
    let receiver = Receiver::start(&[(503, None), (429, Some("2"))]);
    let (run, _dir) = send(&receiver.url, &[]);
    run.assert_code(0);
    assert!(run.stdout.contains("delivered after 3 attempts"), "{run}");
    let got = receiver.received();
    assert_eq!(got.len(), 3);
    let waited = got[2].at.duration_since(got[1].at);
    assert!(
        waited >= Duration::from_millis(1900),
        "Retry-After: 2 was honoured ({waited:?})"
    );
    // Each attempt is the same delivery, so a receiver can drop repeats.
    assert!(got
        .iter()
        .all(|r| r.headers["x-fanout-delivery"] == "hook-1/0/hook"));
}

#[test]
fn a_400_is_permanent_and_not_retried() {
    let receiver = Receiver::start(&[(400, None)]);
    let (run, _dir) = send(&receiver.url, &[]);
    run.assert_code(1);
    assert!(run.stdout.contains("permanent client"), "{run}");
    assert!(run.stdout.contains("400 Bad Request"), "{run}");
    assert_eq!(receiver.received().len(), 1);
}

#[test]
fn the_outbox_holds_the_request_without_secrets() {
    let receiver = Receiver::start(&[]);
    let (run, dir) = send(&receiver.url, &["--outbox", "outbox"]);
    run.assert_code(0);
    assert!(
        receiver.received().is_empty(),
        "nothing is sent in outbox mode"
    );
    let text =
        std::fs::read_to_string(dir.path().join("outbox/hook-1/1-hook.json")).expect("outbox json");
    for secret in [SECRET, TOKEN, "secret-path-key"] {
        assert!(!text.contains(secret), "{secret} in the outbox:\n{text}");
    }
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["method"], "POST");
    assert_eq!(doc["body"]["job_id"], "hook-1");
}

#[test]
fn check_probes_reachability_without_posting() {
    let receiver = Receiver::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_file(dir.path(), "fanout.toml", &config(&receiver.url));
    let run = fanout_in(dir.path(), &["check", "--config", &cfg], None, &[]);
    run.assert_code(0);
    assert!(run.stdout.contains("accepts connections"), "{run}");
    assert!(receiver.received().is_empty(), "check posted something");

    let port = crate::support::free_port();
    let cfg = write_file(
        dir.path(),
        "down.toml",
        &config(&format!("http://127.0.0.1:{port}/hook")),
    );
    let run = fanout_in(dir.path(), &["check", "--config", &cfg], None, &[]);
    run.assert_code(1);
    assert!(run.stdout.contains("is the receiver running"), "{run}");
}
