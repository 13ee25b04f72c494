//! Secrets never appear in a log line, an error, the check table or the
//! outbox, whatever the command and log format.

use crate::support::{fanout_in, repo, write_file, Run};

const SMTP_PASSWORD: &str = "smtp-Pw-5c1f9e";
const GRAFANA_TOKEN: &str = "glsa_token_8d2b7a";
const SIGNING_KEY: &str = "signing-key-3e9a6f0c1d2b4a5e6f708192a3b4c5d6";
const S3_SECRET: &str = "s3-secret-7f6e5d";
const BROKER_PASSWORD: &str = "amqp-Pw-1a2b3c";

const SECRETS: [&str; 5] = [
    SMTP_PASSWORD,
    GRAFANA_TOKEN,
    SIGNING_KEY,
    S3_SECRET,
    BROKER_PASSWORD,
];

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("SMTP_PASSWORD", SMTP_PASSWORD),
        ("GRAFANA_TOKEN", GRAFANA_TOKEN),
        ("SIGNING_KEY", SIGNING_KEY),
        ("S3_SECRET", S3_SECRET),
        ("BROKER_PASSWORD", BROKER_PASSWORD),
    ]
}

/// Every secret-bearing key set, SMTP pointed at a port nobody listens on.
fn config(port: u16) -> String {
    format!(
        r#"
[http]
public_url = "https://fanout.example.com"

[broker]
url = "amqp://fanout:${{BROKER_PASSWORD}}@127.0.0.1:5672/%2f"

[storage]
kind = "s3"
signing_key = "${{SIGNING_KEY}}"

[storage.s3]
bucket = "charts"
endpoint = "http://127.0.0.1:9000"
access_key_id = "fanout"
secret_access_key = "${{S3_SECRET}}"

[render.grafana]
url = "https://localhost:3000"
token = "${{GRAFANA_TOKEN}}"

[destinations.ops-mail]
channel = "email"
smtp_url = "smtps://alerts:${{SMTP_PASSWORD}}@127.0.0.1:{port}"
from = "alerts@example.com"
to = ["oncall@example.com"]
max_attempts = 1
timeout = "5s"
"#
    )
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} leaked {secret:?}:\n{text}");
    }
}

fn scan(run: &Run) {
    assert_no_secret("output", &run.all_output());
}

#[test]
fn no_command_prints_a_secret() {
    let port = crate::support::free_port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_file(dir.path(), "fanout.toml", &config(port));
    let job_text = std::fs::read_to_string(repo().join("examples/jobs/skywalking.json")).unwrap();
    let job = write_file(dir.path(), "job.json", &job_text);
    let env = env();

    for format in ["text", "json"] {
        // check: the SMTP probe fails (nothing listens) and prints a row.
        let run = fanout_in(
            dir.path(),
            &["--log-format", format, "check", "--config", &cfg],
            None,
            &env,
        );
        run.assert_code(1);
        assert!(run.stdout.contains("alerts:***@127.0.0.1"), "{run}");
        scan(&run);

        // send: the delivery fails, with logs at info.
        let run = fanout_in(
            dir.path(),
            &["--log-format", format, "send", &job, "--config", &cfg],
            None,
            &env,
        );
        run.assert_code(1);
        assert!(run.stderr.contains("Delivery failed"), "{run}");
        scan(&run);

        // send to the outbox: the written message holds no secret either.
        let outbox = dir.path().join(format!("outbox-{format}"));
        let run = fanout_in(
            dir.path(),
            &[
                "--log-format",
                format,
                "send",
                &job,
                "--config",
                &cfg,
                "--outbox",
                &outbox.display().to_string(),
            ],
            None,
            &env,
        );
        run.assert_code(0);
        scan(&run);
        let mut files = 0;
        for entry in walk(&outbox) {
            files += 1;
            assert_no_secret(
                &entry.display().to_string(),
                &String::from_utf8_lossy(&std::fs::read(&entry).unwrap()),
            );
        }
        assert!(files > 0, "the outbox is empty\n{run}");
    }
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let job = repo()
        .join("examples/jobs/firing.json")
        .display()
        .to_string();
    let run = fanout_in(
        dir.path(),
        &["--log-format", "json", "send", &job],
        None,
        &[],
    );
    run.assert_code(0);
    let lines: Vec<_> = run.stderr.lines().collect();
    assert!(!lines.is_empty(), "{run}");
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string() && v["message"].is_string(), "{line}");
    }
}

#[test]
fn a_bad_config_does_not_echo_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_file(
        dir.path(),
        "fanout.toml",
        "[broker]\nurl = \"amqp://u:${BROKER_PASSWORD}@bad host/\"\n\n[destinations.x]\nchannel = \"email\"\n\
         smtp_url = \"smtp://u:${SMTP_PASSWORD}@mail.example.com\"\nfrom = \"a@example.com\"\n",
    );
    let run = fanout_in(
        dir.path(),
        &["check", "--offline", "--config", &cfg],
        None,
        &env(),
    );
    run.assert_code(2);
    assert!(run.stderr.contains("broker.url"), "{run}");
    assert!(run.stderr.contains("destinations.x.smtp_url"), "{run}");
    scan(&run);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
