//! Templates as users meet them: per-destination overrides, errors that
//! name the template and line, OnCall filters on a SkyWalking payload.

use crate::support::{fanout_in, repo, write_file, Run};

fn config(template_dir: &str) -> String {
    format!(
        "[templates]\ntimezone = \"Asia/Shanghai\"\n\n[destinations.ops-mail]\nchannel = \"email\"\n\
         smtp_url = \"smtp://127.0.0.1:25\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]\n\
         template = \"{template_dir}\"\n"
    )
}

const JOB: &str = r#"{"version":1,"id":"sw-1","alert":{"group_id":"sw","title":"Response time of service gateway",
  "payload":{"scopeId":1,"name":"gateway","alarmMessage":"Response time of service gateway is more than 1000ms",
             "startTime":1700000000000}},"targets":[{"destination":"ops-mail"}]}"#;

fn outbox_message(dir: &std::path::Path) -> mail_parser::Message<'static> {
    let bytes = std::fs::read(dir.join("outbox/sw-1/1-ops-mail.eml")).expect("outbox eml");
    mail_parser::MessageParser::default()
        .parse(&bytes)
        .expect("MIME")
        .into_owned()
}

/// A temp dir with `tpl/` holding `files`, a config whose `ops-mail` uses
/// it, and the SkyWalking job; returns the dir and the config path.
fn with_override(files: &[(&str, &str)]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let tpl = dir.path().join("tpl");
    std::fs::create_dir(&tpl).unwrap();
    for (name, text) in files {
        std::fs::write(tpl.join(name), text).unwrap();
    }
    write_file(dir.path(), "job.json", JOB);
    let cfg = write_file(
        dir.path(),
        "fanout.toml",
        &config(&tpl.display().to_string()),
    );
    (dir, cfg)
}

fn send_to_outbox(dir: &std::path::Path, cfg: &str) -> Run {
    fanout_in(
        dir,
        &["send", "job.json", "--config", cfg, "--outbox", "outbox"],
        None,
        &[],
    )
}

#[test]
fn an_override_replaces_only_the_templates_it_has() {
    let (dir, cfg) = with_override(&[(
        "subject.j2",
        "{{ payload.name }} at {{ payload.startTime | datetimeformat('%H:%M:%S') }} \
         {{ payload.alarmMessage | regex_replace('more than (\\\\d+)ms', '> \\\\1 ms') }}",
    )]);
    send_to_outbox(dir.path(), &cfg).assert_code(0);
    let msg = outbox_message(dir.path());
    // 1700000000000 ms is 2023-11-14T22:13:20Z, 06:13:20 in Asia/Shanghai.
    assert_eq!(
        msg.subject(),
        Some("gateway at 06:13:20 Response time of service gateway is > 1000 ms")
    );
    // The default text template is still used.
    assert!(msg
        .body_text(0)
        .unwrap()
        .contains("Response time of service gateway"));
}

#[test]
fn a_syntax_error_in_an_override_stops_the_start() {
    let (dir, cfg) = with_override(&[
        ("html.j2", "<p>\n{% if alert.title %}\nno endif\n"),
        ("subjcet.j2", "typo"),
    ]);
    let check = |dir: &std::path::Path| {
        fanout_in(dir, &["check", "--offline", "--config", &cfg], None, &[])
    };
    let run = check(dir.path());
    run.assert_code(2);
    assert!(
        run.stderr.contains(
            "destinations.ops-mail.template: subjcet.j2 is not a template of channel email"
        ),
        "{run}"
    );

    std::fs::remove_file(dir.path().join("tpl/subjcet.j2")).unwrap();
    let run = check(dir.path());
    run.assert_code(2);
    assert!(run.stderr.contains("html.j2 line"), "{run}");
}

#[test]
fn a_failing_template_is_a_permanent_error_naming_template_and_line() {
    let (dir, cfg) = with_override(&[(
        "text.j2",
        "ok\n{{ payload.startTime | datetimeformat('%H', 'Nowhere/City') }}\n",
    )]);
    let run = send_to_outbox(dir.path(), &cfg);
    run.assert_code(1);
    assert!(run.stdout.contains("permanent template"), "{run}");
    assert!(run.stdout.contains("text.j2 line 2"), "{run}");
    assert!(run.stdout.contains("Nowhere/City"), "{run}");
}

#[test]
fn the_skywalking_example_renders_its_payload() {
    let dir = tempfile::tempdir().unwrap();
    let job = repo()
        .join("examples/jobs/skywalking.json")
        .display()
        .to_string();
    let run = fanout_in(dir.path(), &["send", &job], None, &[]);
    run.assert_code(0);
}
