//! Bad configs: each file under `tests/data/config/bad/` is one rule seen in
//! the field; its `# expect:` lines are the messages `fanout` must print,
//! all in one run, and nothing more.

use std::path::PathBuf;

use crate::support::{fanout, fanout_in, files_with_ext, repo};

fn bad_configs() -> Vec<PathBuf> {
    files_with_ext(&repo().join("tests/data/config/bad"), "toml")
}

#[test]
fn every_bad_config_is_refused_with_every_bad_key_named() {
    let files = bad_configs();
    assert!(files.len() >= 15, "the corpus went missing: {files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let expected: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .collect();
        assert!(
            !expected.is_empty(),
            "{} has no # expect: line",
            file.display()
        );
        let path = file.display().to_string();
        for command in [
            &["check", "--offline", "--config", &path][..],
            &["send", "-", "--config", &path],
        ] {
            let run = fanout(command, Some(b"{}"));
            run.assert_code(2);
            for line in &expected {
                assert!(
                    run.stderr.contains(line),
                    "{}: missing {line:?}\n{run}",
                    file.display()
                );
            }
            let n = expected.len();
            let count = format!("config has {n} problem{}", if n == 1 { "" } else { "s" });
            assert!(
                run.stderr.contains(&count),
                "{}: expected {count:?}\n{run}",
                file.display()
            );
        }
    }
}

#[test]
fn env_variables_fill_values_and_fanout_config_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("fanout.toml"),
        "[destinations.ops-mail]\nchannel = \"email\"\nsmtp_url = \"smtp://${SMTP_HOST}:2525\"\n\
         from = \"a@example.com\"\nto = [\"b@example.com\"]\n",
    )
    .unwrap();
    let run = fanout_in(
        dir.path(),
        &["check", "--offline"],
        None,
        &[("FANOUT_CONFIG", "fanout.toml"), ("SMTP_HOST", "127.0.0.1")],
    );
    run.assert_code(0);
    assert!(run.stdout.contains("fanout.toml"), "{run}");

    let run = fanout_in(
        dir.path(),
        &["check", "--offline"],
        None,
        &[("FANOUT_CONFIG", "fanout.toml"), ("SMTP_HOST", "")],
    );
    run.assert_code(2);
    assert!(run.stderr.contains("SMTP_HOST is set but empty"), "{run}");
}

#[test]
fn the_shipped_configs_are_valid() {
    // The documented example and the compose stack's config, with the
    // variables their docs say to set.
    let dir = tempfile::tempdir().unwrap();
    let ca = rcgen::generate_simple_self_signed(vec!["mailpit".to_string()]).unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.cert.pem()).unwrap();
    let ca_file = ca_file.display().to_string();
    let env = [
        ("SMTP_PASSWORD", "example-password"),
        ("GRAFANA_TOKEN", "glsa_example"),
        ("FANOUT_SIGNING_KEY", "an-example-signing-key-of-32-bytes!!"),
        ("FANOUT_ACTION_KEY", "an-example-action-link-key-32-bytes!"),
        ("WECOM_BOT_KEY", "693a91f6-example-bot-key"),
        ("SLACK_BOT_TOKEN", "xoxb-example-token"),
        ("RABBITMQ_PASSWORD", "guest"),
        ("S3_SECRET_ACCESS_KEY", "example-s3-secret"),
        ("REDIS_PASSWORD", "example-redis-password"),
        ("SMTP_CA_FILE", ca_file.as_str()),
    ];
    for file in ["examples/config/fanout.toml", "docker/fanout.toml"] {
        let path = repo().join(file).display().to_string();
        let run = fanout_in(
            dir.path(),
            &["check", "--offline", "--config", &path],
            None,
            &env,
        );
        run.assert_code(0);
    }
}

#[test]
fn a_missing_or_broken_file_is_a_clear_error() {
    let run = fanout(&["check", "--config", "/nonexistent/fanout.toml"], None);
    run.assert_code(2);
    assert!(
        run.stderr
            .contains("cannot read config /nonexistent/fanout.toml"),
        "{run}"
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.toml"), "[http\nlisten=").unwrap();
    let run = fanout_in(dir.path(), &["check", "--config", "f.toml"], None, &[]);
    run.assert_code(2);
    assert!(run.stderr.contains("is not valid TOML"), "{run}");
}

#[test]
fn check_reports_an_unwritable_storage_dir() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a-file"), "not a dir").unwrap();
    let cfg = "[http]\npublic_url = \"http://127.0.0.1:9\"\n\n[storage]\nkind = \"internal\"\n\
               dir = \"a-file/images\"\nsigning_key = \"0123456789abcdef0123456789abcdef\"\n";
    std::fs::write(dir.path().join("fanout.toml"), cfg).unwrap();
    let run = fanout_in(dir.path(), &["check", "--config", "fanout.toml"], None, &[]);
    run.assert_code(1);
    let row = run
        .stdout
        .lines()
        .find(|l| l.starts_with("storage internal"))
        .unwrap_or_default();
    assert!(
        row.contains("FAIL") && row.contains("create [storage] dir"),
        "{run}"
    );
}
