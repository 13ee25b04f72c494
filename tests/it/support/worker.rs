//! A `fanout worker` process on the machine's RabbitMQ, for tests: its
//! config (the test's queue prefix, a webhook to a test receiver), its log,
//! and jobs to feed it.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lapin::types::AMQPValue;
use lapin::BasicProperties;

use super::celery::celery_message;
use super::rabbit::{Declared, URL};
use super::receiver::Receiver;
use super::{fanout_in, wait_for, write_file};

pub struct WorkerProcess {
    pub child: Child,
    pub log: std::path::PathBuf,
}

impl WorkerProcess {
    pub fn start(dir: &std::path::Path, cfg: &str) -> Self {
        Self::start_as(dir, cfg, "worker", &[])
    }

    /// A worker logging to `{name}.log` (debug: every send is bracketed by
    /// "Sending." and "Delivered."), with `args` after `--config`.
    pub fn start_as(dir: &std::path::Path, cfg: &str, name: &str, args: &[&str]) -> Self {
        let w = Self::spawn(dir, cfg, name, args);
        wait_for("the worker to consume", Duration::from_secs(30), || {
            w.log_text().contains("Worker consuming.").then_some(())
        });
        w
    }

    /// The same worker, not waited for: it may be waiting for its broker.
    /// Killed when dropped, so a failing test leaves no worker behind.
    pub fn spawn(dir: &std::path::Path, cfg: &str, name: &str, args: &[&str]) -> Self {
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_fanout"))
            .args(["worker", "--config", cfg])
            .args(args)
            .current_dir(dir)
            .env("RUST_LOG", "info,fanout=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn fanout worker");
        Self { child, log }
    }

    pub fn log_text(&self) -> String {
        let mut s = String::new();
        let _ = std::fs::File::open(&self.log).and_then(|mut f| f.read_to_string(&mut s));
        s
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn job(id: &str, destination: &str) -> String {
    format!(
        r#"{{"version":1,"id":"{id}","alert":{{"group_id":"{id}","title":"t"}},"targets":[{{"destination":"{destination}"}}]}}"#
    )
}

pub fn header(props: &BasicProperties, name: &str) -> String {
    match props.headers().as_ref().and_then(|h| h.inner().get(name)) {
        Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        other => format!("{other:?}"),
    }
}

/// A test's broker prefix, webhook receiver, directory and config.
pub struct Setup {
    pub declared: Declared,
    pub receiver: Receiver,
    pub dir: tempfile::TempDir,
    pub cfg: String,
}

/// Everything a worker test needs, with `first` already enqueued (which
/// declares the topology before the worker starts).
pub fn setup(store: bool, first: &str) -> Setup {
    let declared = Declared::new();
    let receiver = Receiver::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let extra = if store {
        "[store]\nurl = \"sqlite://state.db\"\n"
    } else {
        ""
    };
    let cfg = worker_config(dir.path(), &declared, &receiver, extra);
    let path = write_file(dir.path(), "first.json", &job(first, "hook"));
    fanout_in(dir.path(), &["enqueue", &path, "--config", &cfg], None, &[]).assert_code(0);
    Setup {
        declared,
        receiver,
        dir,
        cfg,
    }
}

/// A config with the test's broker prefix and a webhook to `receiver`.
pub fn worker_config(
    dir: &std::path::Path,
    declared: &Declared,
    receiver: &Receiver,
    extra: &str,
) -> String {
    write_file(
        dir,
        "fanout.toml",
        &config_text(declared, receiver, "127.0.0.1:0", extra),
    )
}

/// The text of [`worker_config`], listening on `listen`; `extra` may add
/// sections and more destinations.
pub fn config_text(declared: &Declared, receiver: &Receiver, listen: &str, extra: &str) -> String {
    format!(
        "[http]\nlisten = \"{listen}\"\n\n[broker]\nurl = \"{URL}\"\nprefix = \"{}\"\n\n{extra}\n\
         [destinations.hook]\nchannel = \"webhook\"\nurl = \"{}\"\ntimeout = \"5s\"\n",
        declared.prefix, receiver.url
    )
}

/// A webhook destination block for `extra`.
pub fn hook(name: &str, receiver: &Receiver, more: &str) -> String {
    format!(
        "[destinations.{name}]\nchannel = \"webhook\"\nurl = \"{}\"\ntimeout = \"5s\"\n{more}\n",
        receiver.url
    )
}

/// The `delivery=` ids of log lines with `message` in a worker's log.
pub fn logged_deliveries(log: &str, message: &str) -> std::collections::HashSet<String> {
    log.lines()
        .filter(|l| l.contains(message))
        .filter_map(|l| {
            let rest = &l[l.find("delivery=")? + "delivery=".len()..];
            Some(
                rest.split_whitespace()
                    .next()?
                    .trim_matches('"')
                    .to_string(),
            )
        })
        .collect()
}

/// What the worker at `port` serves at /metrics.
pub fn metrics(port: u16) -> String {
    reqwest::blocking::get(format!("http://127.0.0.1:{port}/metrics"))
        .and_then(|r| r.text())
        .unwrap_or_default()
}

/// The value of one series in a metrics text (0 when absent).
pub fn series(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The ids (`job/step/destination`) a receiver answered 2xx, with counts.
pub fn delivered_ids(receiver: &Receiver) -> std::collections::HashMap<String, usize> {
    let mut ids = std::collections::HashMap::new();
    for r in receiver.received() {
        if (200..300).contains(&r.status) {
            let id = r.headers["x-fanout-delivery"].to_str().unwrap().to_string();
            *ids.entry(id).or_default() += 1;
        }
    }
    ids
}

/// Build a Celery v2 message for `job` with the real Celery client and
/// publish it as Celery would.
pub fn publish_celery(declared: &Declared, job: &str, args: &[&str]) {
    let m = celery_message(job, args);
    declared.publish_raw(
        m.body,
        BasicProperties::default()
            .with_headers(fanout::broker::json_to_headers(&m.headers))
            .with_content_type(m.content_type.as_str().into())
            .with_content_encoding(m.content_encoding.as_str().into()),
    );
}
