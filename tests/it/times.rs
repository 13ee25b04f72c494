//! Times people read: impossible ones are not printed as facts, every
//! one comes in the configured zone, and every zone field is checked the
//! same way. Through the real binary, into an outbox of every chat and
//! email channel.

use crate::support::{fanout_in, files_with_ext, write_file};

/// Every channel with a text a person reads, in Shanghai time.
const CONFIG: &str = r#"
[templates]
timezone = "Asia/Shanghai"

[destinations.mail]
channel = "email"
smtp_url = "smtp://127.0.0.1:25"
from = "fanout <fanout@localhost>"
to = ["oncall@example.com"]

[destinations.wx]
channel = "wecom"
webhook_url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k-test"

[destinations.pa]
channel = "prometheusalert"
url = "http://127.0.0.1:9/prometheusalert?type=wx&tpl=fanout-wx"

[destinations.sl]
channel = "slack"
token = "xoxb-test"
channel_id = "C0123ABCD"
"#;

fn job(id: &str, status: &str, started: &str, ended: &str) -> String {
    format!(
        r#"{{"version":1,"id":"{id}","alert":{{"group_id":"g-{id}","title":"p99 latency > 1s","status":"{status}",
            "started_at":"{started}","ended_at":"{ended}","labels":{{"service":"gateway"}}}},
            "targets":[{{"destination":"mail"}},{{"destination":"wx"}},{{"destination":"pa"}},{{"destination":"sl"}}]}}"#
    )
}

/// Send `job` into an outbox; every file written, as text, by name.
fn send(job: &str) -> (Vec<(String, String)>, crate::support::Run) {
    let (dir, run) = crate::support::send_to_outbox(CONFIG, job);
    run.assert_code(0);
    let out = dir.path().join("outbox");
    let mut files = Vec::new();
    for sub in std::fs::read_dir(&out).unwrap() {
        let sub = sub.unwrap().path();
        for ext in ["eml", "json"] {
            for f in files_with_ext(&sub, ext) {
                let text = std::fs::read_to_string(&f).unwrap();
                // Email bodies are quoted-printable: read them decoded.
                let text = if ext == "eml" {
                    let msg = mail_parser::MessageParser::default()
                        .parse(text.as_bytes())
                        .unwrap();
                    format!(
                        "{}\n{}\n{}",
                        msg.subject().unwrap_or_default(),
                        msg.body_text(0).unwrap_or_default(),
                        msg.body_html(0).unwrap_or_default()
                    )
                } else {
                    text
                };
                files.push((f.display().to_string(), text));
            }
        }
    }
    assert_eq!(files.len(), 4, "one message per channel: {files:?}\n{run}");
    (files, run)
}

#[test]
fn go_s_zero_time_on_a_firing_alert_is_not_printed_as_its_end() {
    // Alertmanager sends exactly this for a firing alert.
    let (files, run) = send(&job(
        "zero-end",
        "firing",
        "2026-11-23T03:00:00Z",
        "0001-01-01T00:00:00Z",
    ));
    for (name, text) in &files {
        assert!(
            !text.contains("0001"),
            "{name} prints the zero time:\n{text}"
        );
        assert!(!text.contains("LMT"), "{name}:\n{text}");
        assert!(
            !text.contains("Ended") && !text.contains("ended "),
            "{name} has an end:\n{text}"
        );
        // The start is a fact, in the configured zone.
        assert!(
            text.contains("2026-11-23 11:00:00 CST"),
            "{name} lacks the local start:\n{text}"
        );
    }
    let warnings: Vec<&str> = run.stderr.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "one warning per job:\n{}", run.stderr);
    assert!(warnings[0].contains("zero value"), "{}", warnings[0]);
}

#[test]
fn an_end_before_the_start_and_an_epoch_in_the_wrong_unit_are_unset() {
    // The end is before the start; a millisecond epoch given as the start
    // is read as milliseconds, not as the year 55,000.
    let (files, _) = send(&job(
        "bad-end",
        "resolved",
        "2026-11-23T03:00:00Z",
        "2026-11-23T02:00:00Z",
    ));
    for (name, text) in &files {
        assert!(
            !text.contains("10:00:00 CST"),
            "{name} shows the impossible end:\n{text}"
        );
    }
    let epoch = job("ms-start", "firing", "X", "").replace(
        r#""started_at":"X","ended_at":"","#,
        r#""started_at":1795402800000,"#,
    );
    let (files, _) = send(&epoch);
    for (name, text) in &files {
        assert!(text.contains("2026-11-23 11:00:00 CST"), "{name}:\n{text}");
    }
}

#[test]
fn a_resolved_notice_shows_its_end_in_the_configured_zone_everywhere() {
    let (files, _) = send(&job(
        "resolved",
        "resolved",
        "2026-11-23T03:00:00Z",
        "2026-11-23T03:40:05Z",
    ));
    for (name, text) in &files {
        assert!(
            text.contains("2026-11-23 11:40:05 CST"),
            "{name} lacks the local end:\n{text}"
        );
    }
    let pa = &files
        .iter()
        .find(|(n, _)| n.ends_with(".prometheusalert.json"))
        .unwrap()
        .1;
    let pa: serde_json::Value = serde_json::from_str(pa).unwrap();
    assert_eq!(pa["body"]["ended_at_local"], "2026-11-23 11:40:05 CST");
    assert_eq!(pa["body"]["timezone"], "Asia/Shanghai");
}

#[test]
fn every_zone_field_is_checked_the_same_way_with_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    // A chart's Grafana zone, like the others.
    let cfg = write_file(dir.path(), "fanout.toml", CONFIG);
    let chart = job("tz", "firing", "2026-11-23T03:00:00Z", "").replace(
        r#""targets""#,
        r#""charts":[{"grafana":{"dashboard_uid":"abc","panel_id":1,"tz":"Asia/Beijing"}}],"targets""#,
    );
    let path = write_file(dir.path(), "job.json", &chart);
    let run = fanout_in(
        dir.path(),
        &["send", &path, "--config", &cfg, "--outbox", "o"],
        None,
        &[],
    );
    run.assert_code(2);
    assert!(
        run.stderr.contains(
            "charts[0].grafana.tz: \"Asia/Beijing\" is not an IANA time zone; did you mean Asia/Shanghai?"
        ),
        "{run}"
    );
    // A case-only mistake, in the config and in an escalation window.
    let cfg = write_file(
        dir.path(),
        "case.toml",
        &CONFIG.replace("\"Asia/Shanghai\"", "\"asia/shanghai\""),
    );
    let run = fanout_in(
        dir.path(),
        &["check", "--offline", "--config", &cfg],
        None,
        &[],
    );
    run.assert_code(2);
    assert!(
        run.stderr
            .contains("templates.timezone: \"asia/shanghai\" is not an IANA time zone; did you mean Asia/Shanghai?"),
        "{run}"
    );
    let cfg = write_file(dir.path(), "fanout.toml", CONFIG);
    let window = job("win", "firing", "2026-11-23T03:00:00Z", "").replace(
        r#""targets""#,
        r#""escalation":[{"if_time":{"from":"09:00","to":"18:00","tz":"europe/berlin"}},{"notify":["mail"]}],"targets""#,
    );
    let path = write_file(dir.path(), "win.json", &window);
    let run = fanout_in(
        dir.path(),
        &["send", &path, "--config", &cfg, "--outbox", "o"],
        None,
        &[],
    );
    run.assert_code(2);
    assert!(
        run.stderr
            .contains("escalation[0].if_time.tz: \"europe/berlin\" is not an IANA time zone; did you mean Europe/Berlin?"),
        "{run}"
    );
}
