//! The channel testkit: the same three checks for every channel, like
//! Alertmanager's shared notifier tests.
//!
//! 1. **Classification table.** Each answer the vendor (or the network)
//!    can give — an HTTP status with or without `Retry-After`, an errcode,
//!    an SMTP reply, a refused connection — goes through the shared
//!    [`Pipeline`] once: it must come out sent, retried (at the time
//!    `Retry-After` asked for, when it did) or failed for good with the
//!    right reason.
//! 2. **No secret anywhere.** Keys, tokens and passwords never appear in a
//!    log line (every line the run logged, as JSON), an error, an outbox
//!    file or the config's `Debug`.
//! 3. **The outbox writes what would be sent.** The same delivery, once to
//!    the outbox and once to the vendor's fake: the file and the request
//!    the fake received say the same thing.
//!
//! A channel takes part by implementing [`Vendor`] in a file of this folder
//! and calling [`check`].

mod dingtalk;
mod discord;
mod email;
mod feishu;
mod prometheusalert;
mod slack;
mod teams;
mod telegram;
mod webhook;
mod wecom;

use std::fmt::Debug;
use std::io::Write;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use fanout::config::Config;
use fanout::delivery::{ChartImage, Delivery, Reason};
use fanout::destinations::Destinations;
use fanout::job::{Job, Target};
use fanout::outbox::Outbox;
use fanout::pipeline::{Attempt, Attempted, Next, Pipeline};
use serde_json::Value;

use crate::support::fixture_png;

/// What fanout must make of one answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    Sent,
    /// Retried, at a time of fanout's own choosing.
    Retry,
    /// Retried after the seconds the vendor's `Retry-After` said.
    RetryAfter(u64),
    /// Failed for good, for this reason.
    Permanent(Reason),
}

impl Want {
    /// Whether `got` (from an attempt begun at `began_ms`) is this.
    fn matches(self, got: &Attempted, began_ms: i64) -> bool {
        match (self, got) {
            (Want::Sent, Attempted::Sent(_)) => true,
            (
                Want::Retry,
                Attempted::Later {
                    next: Next::Retry { .. },
                    ..
                },
            ) => true,
            (
                Want::RetryAfter(secs),
                Attempted::Later {
                    due_ms,
                    next: Next::Retry { .. },
                },
            ) => {
                let wait = due_ms - began_ms;
                let asked = secs as i64 * 1000;
                // The wait counts from the answer, a moment after we began.
                (asked..asked + 2_000).contains(&wait)
            }
            (Want::Permanent(reason), Attempted::Failed { error, .. }) => {
                !error.is_retryable() && error.reason == reason
            }
            _ => false,
        }
    }
}

/// A channel's vendor, as the testkit drives it.
pub trait Vendor {
    /// What the fake (or the network) can answer.
    type Answer: Debug;

    /// `channel = "…"`.
    const CHANNEL: &'static str;

    /// The destination's keys (after `channel = …`), ready to get `answer`
    /// for the next delivery: the fake scripted to give it, or a server
    /// started that gives it. `None`: ready to accept.
    fn prepare(&mut self, answer: Option<&Self::Answer>) -> String;

    /// Every answer worth telling apart, and what fanout must make of it.
    fn table(&self) -> Vec<(Self::Answer, Want)>;

    /// What must never be shown: keys, tokens, passwords.
    fn secrets(&self) -> Vec<String>;

    /// The target of the delivery: the channel's own overrides, when it
    /// has any worth sending.
    fn target(&self) -> Target {
        Target::to("d")
    }

    /// What the vendor received for the delivery it accepted last, in a
    /// shape [`Vendor::outboxed`] shares.
    fn received(&self) -> Value;

    /// The outbox file of the same delivery, in that shape.
    fn outboxed(&self, file: &[u8]) -> Value;
}

/// Run the three checks on `vendor`.
pub async fn check<V: Vendor>(mut vendor: V) {
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(logs.clone())
        .finish();
    // A current-thread runtime: everything the run logs is on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);
    let delivery = delivery(vendor.target());
    let mut shown: Vec<String> = Vec::new();

    // 1. The classification table.
    let mut wrong = Vec::new();
    for (answer, want) in vendor.table() {
        let table = vendor.prepare(Some(&answer));
        let (config, destinations) = build::<V>(&table, None);
        shown.push(format!("{config:?}"));
        let began = chrono::Utc::now().timestamp_millis();
        let got = Pipeline::bare(&destinations)
            .attempt(delivery.clone(), Attempt::first(began))
            .await;
        if let Attempted::Failed { error, .. } = &got {
            shown.push(error.to_string());
        }
        if !want.matches(&got, began) {
            wrong.push(format!("  {answer:?}: wanted {want:?}, got {got:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{}: answers classified wrong:\n{}",
        V::CHANNEL,
        wrong.join("\n")
    );

    // 3. The outbox writes what would be sent.
    let table = vendor.prepare(None);
    let outbox = tempfile::tempdir().expect("outbox dir");
    let (_, to_outbox) = build::<V>(&table, Some(outbox.path()));
    let written = match Pipeline::bare(&to_outbox)
        .attempt(delivery.clone(), Attempt::first(0))
        .await
    {
        Attempted::Sent(sent) => sent.detail,
        other => panic!("{}: the outbox write failed: {other:?}", V::CHANNEL),
    };
    let path = written
        .strip_prefix("outbox ")
        .unwrap_or_else(|| panic!("{}: not an outbox write: {written}", V::CHANNEL));
    let file = std::fs::read(path).expect("the outbox file");
    let (_, to_vendor) = build::<V>(&table, None);
    let sent = Pipeline::bare(&to_vendor)
        .attempt(delivery.clone(), Attempt::first(0))
        .await;
    assert!(
        matches!(sent, Attempted::Sent(_)),
        "{}: the vendor did not take the delivery: {sent:?}",
        V::CHANNEL
    );
    let (outboxed, received) = (vendor.outboxed(&file), vendor.received());
    assert!(
        outboxed == received,
        "{}: the outbox file says something else than what was sent:\noutbox:   {outboxed:#}\nreceived: {received:#}",
        V::CHANNEL
    );

    // 2. No secret anywhere.
    for entry in walk(outbox.path()) {
        shown.push(String::from_utf8_lossy(&std::fs::read(&entry).expect("read")).into_owned());
    }
    let logged = logs.text();
    assert!(
        logged.contains("Delivery failed."),
        "{}: the run's log lines were not captured",
        V::CHANNEL
    );
    shown.push(logged);
    for secret in vendor.secrets() {
        assert!(!secret.is_empty());
        for text in &shown {
            assert!(
                !text.contains(&secret),
                "{}: a secret ({} chars) is shown in:\n{text}",
                V::CHANNEL,
                secret.len()
            );
        }
    }
}

/// The config of one destination `d` with `keys`, and its registry.
fn build<V: Vendor>(keys: &str, outbox: Option<&std::path::Path>) -> (Config, Destinations) {
    let text = format!(
        "[destinations.d]\nchannel = \"{}\"\nmax_attempts = 5\n{keys}\n",
        V::CHANNEL
    );
    let config = Config::parse(&text, "conformance", Rc::new(|_| None))
        .unwrap_or_else(|e| panic!("{}: config: {e}\n{text}", V::CHANNEL));
    let destinations =
        Destinations::build(&config, outbox.map(Outbox::new)).expect("the destination builds");
    (config, destinations)
}

/// A firing alert with labels, a message, a link and a rendered chart.
fn delivery(target: Target) -> Delivery {
    let job: Job = serde_json::from_value(serde_json::json!({
        "version": 1,
        "id": "conf-1",
        "alert": {
            "group_id": "g-conf",
            "title": "Checkout p99 above 2s",
            "severity": "critical",
            "message": "p99 latency is 2.4s on checkout-api",
            "labels": {"service": "checkout", "env": "prod"},
            "source_url": "https://grafana.example.com/d/abc?viewPanel=7",
            "started_at": "2026-11-30T08:00:00Z"
        },
        "targets": [{"destination": "d"}]
    }))
    .expect("the testkit's job");
    let png = fixture_png();
    Delivery::new(Arc::new(job), target).with_charts(vec![ChartImage {
        title: "p99 latency".into(),
        width: 1000,
        height: 500,
        png: Some(Arc::new(png)),
        url: Some("https://fanout.example.com/images/c.png?exp=1&sig=2".into()),
        key: None,
        link: Some("https://grafana.example.com/d/abc?viewPanel=7".into()),
        error: None,
    }])
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// A port nothing listens on (bound, then let go).
pub fn closed_port() -> u16 {
    crate::support::free_port()
}

/// `url` (`http://127.0.0.1:PORT/…`) pointed at a port nothing listens on.
pub fn unreachable(url: &str) -> String {
    let parsed = url::Url::parse(url).expect("a fake's URL");
    let port = parsed.port().expect("a fake's URL has its port");
    url.replacen(&format!(":{port}/"), &format!(":{}/", closed_port()), 1)
}

/// Where the run's log lines go.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
