//! What a template sees: `alert`, `payload`, `charts`, `job`, `step`,
//! `destination`, `actions`, `suppressed`, `timezone`, `now_local`.
//! Every time a person reads has a `*_local` form in `[templates] timezone`. One builder, so every channel's templates read the same
//! names.

use chrono_tz::Tz;
use serde::Serialize;

use crate::delivery::Delivery;
use crate::job::{Alert, Job, Step};

/// How every `*_local` time is written: `2026-11-23 11:00:00 CST`.
pub const LOCAL_FORMAT: &str = "%Y-%m-%d %H:%M:%S %Z";

#[derive(Serialize)]
pub struct Context<'a> {
    pub alert: AlertContext<'a>,
    /// The raw upstream body (`alert.payload`), at the top for brevity.
    pub payload: &'a serde_json::Value,
    pub charts: Vec<ChartContext>,
    pub job: &'a Job,
    pub step: StepContext,
    pub destination: &'a str,
    /// Links that acknowledge, resolve or silence the group (`[actions]`).
    pub actions: Option<&'a crate::delivery::ActionUrls>,
    /// Repeats held back before this one: `{count, window, since, text}`.
    pub suppressed: Option<SuppressedContext>,
    /// The zone of every `*_local` time (`[templates] timezone`).
    pub timezone: &'static str,
    /// When this notification was written, in that zone.
    pub now_local: String,
}

/// The alert as the job gave it, with each of its times also in the
/// configured zone: `started_at_local`, `ended_at_local`
/// ([`LOCAL_FORMAT`]; absent when the time is).
#[derive(Serialize)]
pub struct AlertContext<'a> {
    #[serde(flatten)]
    pub alert: &'a Alert,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at_local: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at_local: Option<String>,
}

#[derive(Serialize)]
pub struct SuppressedContext {
    pub count: u64,
    /// The window as written, e.g. `10m`.
    pub window: String,
    pub since: chrono::DateTime<chrono::Utc>,
    pub since_local: String,
    /// "…and 12 more like this in the last 10m".
    pub text: String,
}

#[derive(Serialize)]
pub struct ChartContext {
    pub index: usize,
    pub title: String,
    pub width: u32,
    pub height: u32,
    /// For email: `<img src="cid:{{ chart.content_id }}">` shows the inline PNG.
    pub content_id: String,
    pub has_image: bool,
    /// Signed URL to the stored PNG, when storage is configured.
    pub url: Option<String>,
    /// The panel itself.
    pub link: Option<String>,
    /// Why the chart is missing, when it is.
    pub error: Option<String>,
}

#[derive(Serialize)]
pub struct StepContext {
    pub index: usize,
    pub important: bool,
    pub attempt: u32,
    /// How many times a `repeat` sent the chain back to its start.
    pub round: u32,
}

/// `t` in `tz`, as people read it.
pub fn local(t: chrono::DateTime<chrono::Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format(LOCAL_FORMAT).to_string()
}

impl<'a> Context<'a> {
    /// What the templates of `delivery` see, times in `tz`.
    pub fn new(delivery: &'a Delivery, tz: Tz) -> Self {
        Self::with_alert(delivery, &delivery.job.alert, tz)
    }

    /// The same, with `alert` in place of the job's (a copy whose free
    /// text was cut to fit a vendor's limit).
    pub fn with_alert(delivery: &'a Delivery, alert: &'a Alert, tz: Tz) -> Self {
        let job = &*delivery.job;
        let important = matches!(
            job.escalation.get(delivery.step),
            Some(Step::Notify {
                important: true,
                ..
            })
        );
        Context {
            alert: AlertContext {
                alert,
                started_at_local: alert.started_at.map(|t| local(t, tz)),
                ended_at_local: alert.ended_at.map(|t| local(t, tz)),
            },
            payload: &job.alert.payload,
            charts: delivery
                .charts
                .iter()
                .enumerate()
                .map(|(index, chart)| ChartContext {
                    index,
                    title: chart.title.clone(),
                    width: chart.width,
                    height: chart.height,
                    content_id: delivery.content_id(index),
                    has_image: chart.png.is_some(),
                    url: chart.url.clone(),
                    link: chart.link.clone(),
                    error: chart.error.clone(),
                })
                .collect(),
            job,
            step: StepContext {
                index: delivery.step,
                important,
                attempt: delivery.attempt,
                round: delivery.round,
            },
            destination: delivery.destination(),
            actions: delivery.actions.as_ref(),
            suppressed: delivery.suppressed.as_ref().map(|s| SuppressedContext {
                count: s.count,
                window: s.window.to_string(),
                since: s.since,
                since_local: local(s.since, tz),
                text: format!("…and {} more like this in the last {}", s.count, s.window),
            }),
            timezone: tz.name(),
            now_local: local(chrono::Utc::now(), tz),
        }
    }
}
