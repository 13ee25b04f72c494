//! The examples people copy are tested: every job in `examples/jobs/` is
//! valid against the embedded default and sends; the schema file is what
//! `fanout schema` prints; the README's offline check passes as written.

use crate::support::{fanout, fanout_in, files_with_ext, repo};
use fanout::config::Config;

fn example_jobs() -> Vec<std::path::PathBuf> {
    files_with_ext(&repo().join("examples/jobs"), "json")
}

#[test]
fn every_example_job_is_valid() {
    let config = Config::embedded("https://localhost:1", "demo-token")
        .expect("the embedded default is valid");
    let jobs = example_jobs();
    assert!(jobs.len() >= 3, "examples went missing: {jobs:?}");
    for path in jobs {
        let bytes = std::fs::read(&path).unwrap();
        let job = fanout::job::decode::decode_job(&bytes)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        fanout::validate::validate(&job, &config)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

#[test]
fn the_first_command_of_the_readme_writes_an_outbox() {
    // `fanout send examples/jobs/firing.json`, run as a newcomer would.
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let job = repo().join("examples/jobs/firing.json");
    let run = fanout_in(
        dir.path(),
        &["send", &job.display().to_string()],
        None,
        // As a newcomer runs it: no RUST_LOG, so the default filter.
        &[
            ("TMPDIR", &tmp.path().display().to_string()),
            ("RUST_LOG", ""),
        ],
    );
    run.assert_code(0);
    assert_eq!(run.stdout.lines().count(), 3, "one line per target\n{run}");
    // A clean run logs nothing an operator must act on, and Chromium's
    // profile directory goes with the browser.
    assert!(
        !run.stderr.contains(" WARN ") && !run.stderr.contains(" ERROR "),
        "{run}"
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind in TMPDIR: {left:?}");
    let eml = dir.path().join("outbox/ag-42-firing-1/1-ops-mail.eml");
    let bytes = std::fs::read(&eml).unwrap_or_else(|e| panic!("{}: {e}\n{run}", eml.display()));
    let msg = mail_parser::MessageParser::default()
        .parse(&bytes)
        .expect("MIME");
    assert!(msg.subject().is_some_and(|s| s.contains("p99 latency")));
    assert!(msg.body_html(0).is_some() && msg.body_text(0).is_some());
    // A real chart, rendered by Chromium from the demo panel server (HTTPS
    // on localhost, certificate for another name), inline by Content-ID.
    let image = msg
        .parts
        .iter()
        .find(|p| {
            mail_parser::MimeHeaders::content_id(*p).is_some_and(|id| id.starts_with("chart0."))
        })
        .expect("the chart is attached inline");
    let (w, h, orange) = crate::render::count_colour(image.contents(), [0xff, 0x98, 0x30]);
    assert_eq!((w, h), (1000, 500));
    assert!(orange > 500, "the series line is drawn ({orange} pixels)");
    assert!(
        dir.path()
            .join("outbox/ag-42-firing-1/1-ops-mail-chart0.png")
            .is_file(),
        "the PNG is written beside the message"
    );

    // `fanout check` on the embedded default checks what it uses.
    let check = fanout_in(dir.path(), &["check"], None, &[]);
    check.assert_code(0);
    assert!(check.stdout.contains("outbox writable"), "{check}");
    assert!(check.stdout.contains("token accepted"), "{check}");
}

#[test]
fn the_schema_file_is_what_fanout_schema_prints() {
    let run = fanout(&["schema"], None);
    run.assert_code(0);
    let printed: serde_json::Value = serde_json::from_str(&run.stdout).expect("schema is JSON");
    let file =
        std::fs::read_to_string(repo().join("docs/job.schema.json")).expect("docs/job.schema.json");
    let stored: serde_json::Value = serde_json::from_str(&file).expect("stored schema is JSON");
    assert!(
        printed == stored,
        "docs/job.schema.json is stale: run `cargo run -q -- schema > docs/job.schema.json`"
    );
    // The schema says what the decoder does: unknown fields are refused.
    assert_eq!(printed["additionalProperties"], false);
    assert!(printed["$defs"]["Signal"].is_object());
}

#[test]
fn a_chart_that_cannot_render_never_holds_the_alert_back() {
    // Grafana is not configured at all: the chart fails, the email goes.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("fanout.toml"),
        "[destinations.ops-mail]\nchannel = \"email\"\nsmtp_url = \"smtp://127.0.0.1:25\"\n\
         from = \"a@example.com\"\nto = [\"b@example.com\"]\n",
    )
    .unwrap();
    let job = repo()
        .join("examples/jobs/firing.json")
        .display()
        .to_string();
    let text = std::fs::read_to_string(&job).unwrap();
    let job: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut job = job;
    job["targets"] = serde_json::json!([{"destination": "ops-mail"}]);
    job["escalation"] = serde_json::json!([]);
    let bytes = serde_json::to_vec(&job).unwrap();
    let run = fanout_in(
        dir.path(),
        &["send", "-", "--config", "fanout.toml", "--outbox", "outbox"],
        Some(&bytes),
        &[],
    );
    run.assert_code(0);
    assert!(
        run.stderr
            .contains("Chart not rendered; sending without it."),
        "{run}"
    );
    let eml = std::fs::read(dir.path().join("outbox/ag-42-firing-1/1-ops-mail.eml")).unwrap();
    let msg = mail_parser::MessageParser::default().parse(&eml).unwrap();
    assert!(msg
        .parts
        .iter()
        .all(|p| !mail_parser::MimeHeaders::is_content_type(p, "image", "png")));
    let text = msg.body_text(0).unwrap();
    assert!(
        text.contains("a grafana chart needs [render.grafana] url"),
        "{text}"
    );
}

#[test]
fn the_readme_s_offline_check_of_the_example_config_passes_as_written() {
    // The variables the README sets before `fanout check --offline` are
    // the ones the example config reads: a new destination that reads
    // another fails here until the README sets it too.
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let lines: Vec<&str> = readme.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("fanout check --offline --config examples/config/fanout.toml"))
        .expect("the README shows the offline check of the example config");
    let mut start = at;
    while start > 0 && lines[start - 1].trim_end().ends_with('\\') {
        start -= 1;
    }
    let random_key = "ab".repeat(32);
    let env: Vec<(String, String)> = lines[start..at]
        .iter()
        .flat_map(|l| l.split_whitespace())
        .filter_map(|word| word.split_once('='))
        .filter(|(name, _)| name.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .map(|(name, value)| {
            let value = if value.starts_with("$(openssl") {
                random_key.clone()
            } else {
                value.to_string()
            };
            (name.to_string(), value)
        })
        .collect();
    assert!(env.len() >= 5, "{env:?}");
    let env: Vec<(&str, &str)> = env.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let run = fanout_in(
        &repo(),
        &[
            "check",
            "--offline",
            "--config",
            "examples/config/fanout.toml",
        ],
        None,
        &env,
    );
    run.assert_code(0);
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces
/// to hyphens.
fn anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .collect::<String>()
        .replace(' ', "-")
}

#[test]
fn every_link_between_the_readme_and_docs_lands() {
    // The README is the front page and docs/ the reference: a section
    // moved or renamed must not leave a link pointing at nothing.
    let root = repo();
    let mut pages = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "md") {
            pages.push(entry.path());
        }
    }
    let anchors = |path: &std::path::Path| -> Vec<String> {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut in_code = false;
        let mut out = Vec::new();
        for line in text.lines() {
            if line.starts_with("```") {
                in_code = !in_code;
            } else if !in_code && line.starts_with('#') {
                out.push(anchor(line.trim_start_matches('#').trim()));
            }
        }
        out
    };
    let link = regex::Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        for m in link.captures_iter(&text) {
            let target = &m[1];
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (file, fragment) = target.split_once('#').unwrap_or((target, ""));
            let file = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            // Outside the repository (../shared/DESIGN.md): not ours to check.
            let mut resolved = std::path::PathBuf::new();
            for part in file.components() {
                match part {
                    std::path::Component::ParentDir => {
                        resolved.pop();
                    }
                    std::path::Component::CurDir => {}
                    other => resolved.push(other),
                }
            }
            if !resolved.starts_with(&root) {
                continue;
            }
            let file = resolved;
            if !file.exists() {
                broken.push(format!("{}: {target} (no such file)", page.display()));
            } else if !fragment.is_empty()
                && file.extension().is_some_and(|e| e == "md")
                && !anchors(&file).iter().any(|a| a == fragment)
            {
                broken.push(format!("{}: {target} (no such heading)", page.display()));
            }
        }
    }
    assert!(checked > 20, "read the links: only {checked}");
    assert!(
        broken.is_empty(),
        "links that land nowhere:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_readme_s_ingest_config_is_a_valid_config_with_its_destinations() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let section = readme
        .split("## Taking alerts straight from the monitors")
        .nth(1)
        .expect("the README's ingest section");
    let toml = section
        .split("```toml\n")
        .nth(1)
        .and_then(|block| block.split("```").next())
        .expect("its TOML block");
    assert!(toml.contains("[ingest.alertmanager]"), "{toml}");
    let mut text = format!("[broker]\nurl = \"amqp://guest:guest@127.0.0.1:5672/%2f\"\n\n{toml}\n");
    for (name, to) in [("oncall-mail", "oncall"), ("lead-mail", "lead")] {
        text += &format!(
            "[destinations.{name}]\nchannel = \"email\"\nsmtp_url = \"smtp://127.0.0.1:25\"\n\
             from = \"fanout@example.com\"\nto = [\"{to}@example.com\"]\n\n"
        );
    }
    text += "[destinations.ops-wecom]\nchannel = \"wecom\"\nwebhook_url = \"http://127.0.0.1:9/cgi-bin/webhook/send?key=k\"\n";
    let env = |name: &str| (name == "INGEST_TOKEN").then(|| "a-token-of-24-characters".to_string());
    let config = fanout::config::Config::parse(&text, "README", std::rc::Rc::new(env))
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(config.routes.routes.len(), 2);
    assert!(config.routes.escalations.contains_key("page"));
}

#[test]
fn the_readme_s_alertmanager_receiver_is_one_alertmanager_takes() {
    // Checked by Alertmanager's own `amtool check-config` (Debian's
    // prometheus-alertmanager), with a route sending to it.
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let yaml = readme
        .split("## Taking alerts straight from the monitors")
        .nth(1)
        .and_then(|s| s.split("```yaml\n").nth(1))
        .and_then(|block| block.split("  ```").next())
        .expect("the README's alertmanager.yml block");
    let dir = tempfile::tempdir().unwrap();
    let unindented: String = yaml
        .lines()
        .map(|l| l.strip_prefix("  ").unwrap_or(l))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .replace("<token>", "a-token-of-24-characters");
    let config = format!("route:\n  receiver: fanout\n{unindented}");
    let path = crate::support::write_file(dir.path(), "alertmanager.yml", &config);
    let out = std::process::Command::new("amtool")
        .args(["check-config", &path])
        .output()
        .expect("amtool (apt-get install prometheus-alertmanager; .ci/test installs it)");
    assert!(
        out.status.success(),
        "{}{}\n{config}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
