//! Deliver: one message to one target, and what became of it.
//!
//! A [`Delivery`] is what the planner hands a channel: the job, which step,
//! which target, and the charts rendered once for the whole job. A channel
//! answers [`Sent`] or a [`SendError`] that says, in its type, whether trying
//! again can help. The retry arithmetic lives in [`retry`], not in channels.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::job::{Job, Target};
use crate::span::Span;

/// One notification to one target.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub job: Arc<Job>,
    /// Index of the escalation step that asked for this delivery.
    pub step: usize,
    /// 1-based position in the job's plan; names outbox files.
    pub seq: usize,
    pub target: Target,
    pub charts: Arc<Vec<ChartImage>>,
    /// 1 on the first try.
    pub attempt: u32,
    /// How many times a `repeat` sent the chain back to its start.
    pub round: u32,
    /// Repeats held back before this notification, when any were.
    pub suppressed: Option<Summary>,
    /// Signed links that acknowledge, resolve or silence the group.
    pub actions: Option<ActionUrls>,
    /// The channel's handle on the group's conversation (a Slack thread's
    /// ts), as an earlier [`Sent::thread`] of this destination left it.
    pub thread: Option<String>,
    /// Where the previous attempt stopped ([`SendError::progress`]).
    pub progress: Option<String>,
}

impl Delivery {
    /// The first attempt of `job`'s first step (step 0, seq 1, round 0)
    /// to `target`: no charts, no action links, no thread, nothing
    /// suppressed. Add the rest with the `with_*` methods.
    pub fn new(job: Arc<Job>, target: Target) -> Self {
        Delivery {
            job,
            step: 0,
            seq: 1,
            target,
            charts: Arc::new(Vec::new()),
            attempt: 1,
            round: 0,
            suppressed: None,
            actions: None,
            thread: None,
            progress: None,
        }
    }

    /// [`Delivery::new`] to the job's first target (a job with no target
    /// gets a target named `""`, which no destination has).
    pub fn to_first_target(job: Job) -> Self {
        let target = job.targets.first().cloned().unwrap_or_default();
        Delivery::new(Arc::new(job), target)
    }

    /// The charts rendered for the job, in its order.
    pub fn with_charts(mut self, charts: Vec<ChartImage>) -> Self {
        self.charts = Arc::new(charts);
        self
    }

    /// Charts already shared with the job's other deliveries.
    pub fn with_shared_charts(mut self, charts: Arc<Vec<ChartImage>>) -> Self {
        self.charts = charts;
        self
    }

    /// What was held back in a suppression window before this one.
    pub fn with_suppressed(mut self, suppressed: Option<Summary>) -> Self {
        self.suppressed = suppressed;
        self
    }

    /// Signed links that acknowledge, resolve or silence the group.
    pub fn with_actions(mut self, actions: ActionUrls) -> Self {
        self.actions = Some(actions);
        self
    }

    /// The conversation an earlier send of this destination opened.
    pub fn with_thread(mut self, thread: Option<&str>) -> Self {
        self.thread = thread.map(str::to_string);
        self
    }

    /// Escalation step `step` (`seq`: its 1-based place in the job's
    /// plan) in repeat round `round`.
    pub fn at_step(mut self, step: usize, seq: usize, round: u32) -> Self {
        self.step = step;
        self.seq = seq;
        self.round = round;
        self
    }

    pub fn destination(&self) -> &str {
        &self.target.destination
    }

    /// The step as the notification log numbers it: unique per repeat
    /// round, and for the "resolved" notice.
    pub fn log_step(&self) -> usize {
        log_step(self.step, self.round)
    }

    /// The Content-ID of chart `index` in this delivery's email: unique
    /// per job (RFC 2392 wants it globally unique), stable across retries.
    pub fn content_id(&self, index: usize) -> String {
        format!("chart{index}.{}@fanout", short_hash(&self.job.id))
    }
}

/// 16 hex digits of SHA-256: enough to tell ids apart, safe in headers.
pub fn short_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

/// A chart as deliveries see it: the PNG when it was rendered, else why not.
#[derive(Clone, Debug, Default)]
pub struct ChartImage {
    pub title: String,
    /// The requested size in CSS pixels (the PNG is `scale` times larger).
    pub width: u32,
    pub height: u32,
    pub png: Option<Arc<Vec<u8>>>,
    /// A signed URL to the stored PNG, where storage is configured.
    pub url: Option<String>,
    /// The storage key of the PNG, where storage is configured.
    pub key: Option<String>,
    /// The panel itself (Grafana), for people who want to dig in.
    pub link: Option<String>,
    /// Why there is no PNG; the alert goes out without it.
    pub error: Option<String>,
}

/// What a channel reports on success.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    /// One line for the operator: the server's reply, or the outbox file.
    pub detail: String,
    /// A conversation this send opened, for the group's later notices to
    /// join (kept in the group's state).
    pub thread: Option<String>,
}

impl Sent {
    pub fn new(detail: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
            thread: None,
        }
    }
}

/// Whether a failed send may succeed later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Try again; `after` is the server's own wish (`Retry-After`).
    Retry { after: Option<Duration> },
    /// The same request will fail the same way: dead-letter it.
    Permanent,
}

/// Why a send failed, for metrics and logs (Alertmanager's list).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Client,
    Server,
    Auth,
    RateLimited,
    Timeout,
    Canceled,
    Template,
    Other,
}

impl Reason {
    pub const ALL: [Reason; 8] = [
        Reason::Client,
        Reason::Server,
        Reason::Auth,
        Reason::RateLimited,
        Reason::Timeout,
        Reason::Canceled,
        Reason::Template,
        Reason::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Client => "client",
            Reason::Server => "server",
            Reason::Auth => "auth",
            Reason::RateLimited => "rate_limited",
            Reason::Timeout => "timeout",
            Reason::Canceled => "canceled",
            Reason::Template => "template",
            Reason::Other => "other",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed send. The message is written by the channel and must hold no
/// secret: channels build it from redacted parts only.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub class: Class,
    pub reason: Reason,
    pub message: String,
    /// How far a send of several requests got before it failed (the
    /// channel's own words, e.g. "2" messages sent): the next attempt
    /// resumes there instead of sending those again.
    pub progress: Option<String>,
}

impl SendError {
    pub fn retry(reason: Reason, message: impl Into<String>) -> Self {
        Self::new(Class::Retry { after: None }, reason, message)
    }

    pub fn permanent(reason: Reason, message: impl Into<String>) -> Self {
        Self::new(Class::Permanent, reason, message)
    }

    pub fn new(class: Class, reason: Reason, message: impl Into<String>) -> Self {
        Self {
            class,
            reason,
            message: message.into(),
            progress: None,
        }
    }

    /// The outbox (`fanout send --outbox`) could not be written.
    pub fn outbox(error: &std::io::Error) -> Self {
        Self::permanent(Reason::Other, format!("cannot write the outbox: {error}"))
    }

    pub fn with_progress(self, progress: Option<String>) -> Self {
        Self { progress, ..self }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self.class, Class::Retry { .. })
    }
}

/// The outcome of one delivery after all its attempts, for reports.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub destination: String,
    pub channel: &'static str,
    /// 0 when the notification log said it was sent already.
    pub attempts: u32,
    pub elapsed: Duration,
    pub result: Result<Sent, SendError>,
}

impl Outcome {
    pub fn delivered(&self) -> bool {
        self.result.is_ok()
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.elapsed.as_millis();
        let tries = if self.attempts == 1 {
            String::new()
        } else {
            format!(" after {} attempts", self.attempts)
        };
        match &self.result {
            Ok(sent) if self.attempts == 0 => write!(
                f,
                "{:<16} {:<8} already sent {ms:>4} ms  {}",
                self.destination, self.channel, sent.detail
            ),
            Ok(sent) => write!(
                f,
                "{:<16} {:<8} delivered{tries} {ms:>6} ms  {}",
                self.destination, self.channel, sent.detail
            ),
            Err(e) => {
                let class = if e.is_retryable() {
                    "retryable"
                } else {
                    "permanent"
                };
                write!(
                    f,
                    "{:<16} {:<8} FAILED{tries} {ms:>6} ms  {class} {}: {}",
                    self.destination, self.channel, e.reason, e.message
                )
            }
        }
    }
}

/// The URLs a template sees as `actions`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ActionUrls {
    pub acknowledge: String,
    pub resolve: String,
    pub silence_1h: String,
}

/// What the first notification after a window says about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// Jobs held back in the window.
    pub count: u64,
    /// The window's length, as configured (`10m`).
    pub window: Span,
    /// When the window opened.
    pub since: DateTime<Utc>,
}

/// Notification-log steps of round `r` start at `r * ROUND_STRIDE`, so a
/// repeated step is a new delivery, not a duplicate of the first round.
pub const ROUND_STRIDE: usize = 1000;

/// The notification-log step of `step` in `round`.
pub fn log_step(step: usize, round: u32) -> usize {
    round as usize * ROUND_STRIDE + step
}
