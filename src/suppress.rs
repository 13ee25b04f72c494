//! Suppression of repeats: a job whose key was notified within the window
//! is not sent; it is counted, and the first notification after the window
//! says how many were held back ("…and 12 more like this in the last 10m").
//!
//! The key is a template over the job (`{{ alert.labels.app }}:{{
//! alert.labels.line }}`), set on the job or as a destination's default.
//! Each window is one record in the store, changed atomically, so workers
//! sharing Redis agree on which job opened it. The job that opened a window
//! owns it: when its message is redelivered it is sent again, never
//! suppressed by its own first pass.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::delivery::Summary;

use crate::span::Span;
use crate::store::{Store, StoreError};

/// The store's kind for suppression windows.
pub const KIND: &str = "suppress";

/// One key's window, as the store keeps it.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Window {
    opened_at: DateTime<Utc>,
    /// The job that opened it, and so was sent.
    owner: String,
    /// Jobs suppressed since it opened.
    suppressed: u64,
    /// What the owner's notification said of the window before.
    summary: Option<Summary>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send, saying this of the jobs held back before (if any were).
    Send(Option<Summary>),
    /// Held back and counted.
    Suppressed,
}

/// The pure rule: what a job arriving at `now` does to the window.
fn decide(
    current: Option<Window>,
    job_id: &str,
    window: Span,
    now: DateTime<Utc>,
) -> (Option<Window>, Verdict) {
    match current {
        Some(w) if w.owner == job_id => (None, Verdict::Send(w.summary)),
        Some(mut w)
            if now < w.opened_at + chrono::Duration::from_std(window.0).unwrap_or_default() =>
        {
            w.suppressed += 1;
            (Some(w), Verdict::Suppressed)
        }
        previous => {
            let summary = previous.filter(|w| w.suppressed > 0).map(|w| Summary {
                count: w.suppressed,
                window,
                since: w.opened_at,
            });
            let opened = Window {
                opened_at: now,
                owner: job_id.to_string(),
                suppressed: 0,
                summary: summary.clone(),
            };
            (Some(opened), Verdict::Send(summary))
        }
    }
}

/// The store id of `key` within `scope` (`job`, or a destination's name):
/// a hash, so any text can be a key.
pub fn record_id(scope: &str, key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{scope}\0{key}").as_bytes());
    format!("{scope}:{}", hex::encode(&digest[..16]))
}

/// Judge job `job_id` with rendered `key` in `scope`.
pub async fn judge(
    store: &Store,
    scope: &str,
    key: &str,
    job_id: &str,
    window: Span,
    now: DateTime<Utc>,
) -> Result<Verdict, StoreError> {
    let job_id = job_id.to_string();
    store
        .update(KIND, &record_id(scope, key), move |current| {
            decide(current, &job_id, window, now)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
    }

    fn run(window: &mut Option<Window>, job: &str, at: i64) -> Verdict {
        let ten = Span::parse("10m").unwrap();
        let (new, verdict) = decide(window.clone(), job, ten, t(at));
        if let Some(new) = new {
            *window = Some(new);
        }
        verdict
    }

    #[test]
    fn repeats_inside_the_window_are_counted_and_the_next_one_after_says_how_many() {
        let mut w = None;
        assert_eq!(run(&mut w, "j1", 0), Verdict::Send(None));
        for (i, at) in (1..=12).zip((30..).step_by(30)) {
            assert_eq!(run(&mut w, &format!("r{i}"), at), Verdict::Suppressed);
        }
        match run(&mut w, "j2", 601) {
            Verdict::Send(Some(s)) => {
                assert_eq!(s.count, 12);
                assert_eq!(s.since, t(0));
                assert_eq!(s.window.to_string(), "10m");
            }
            other => panic!("expected a summary, got {other:?}"),
        }
        // A quiet window reports nothing.
        assert_eq!(run(&mut w, "j3", 1300), Verdict::Send(None));
    }

    #[test]
    fn the_job_that_opened_a_window_is_sent_again_when_redelivered() {
        let mut w = None;
        run(&mut w, "j1", 0);
        run(&mut w, "r1", 10);
        run(&mut w, "j2", 700);
        assert!(matches!(run(&mut w, "j2", 705), Verdict::Send(Some(s)) if s.count == 1));
    }

    #[test]
    fn keys_are_kept_apart_by_scope() {
        assert_ne!(record_id("job", "a"), record_id("ops-mail", "a"));
        assert_eq!(record_id("job", "a"), record_id("job", "a"));
    }
}
