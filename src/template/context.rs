//! What a template sees: `alert`, `payload`, `charts`, `job`, `step`,
//! `destination`. One builder, so every channel's templates read the same
//! names.

use serde::Serialize;

use crate::deliver::Delivery;
use crate::job::{Alert, Job, Step};

#[derive(Serialize)]
pub struct Context<'a> {
    pub alert: &'a Alert,
    /// The raw upstream body (`alert.payload`), at the top for brevity.
    pub payload: &'a serde_json::Value,
    pub charts: Vec<ChartContext>,
    pub job: &'a Job,
    pub step: StepContext,
    pub destination: &'a str,
    /// Links that acknowledge, resolve or silence the group (`[actions]`).
    pub actions: Option<&'a crate::actions::ActionUrls>,
    /// Repeats held back before this one: `{count, window, since, text}`.
    pub suppressed: Option<SuppressedContext>,
}

#[derive(Serialize)]
pub struct SuppressedContext {
    pub count: u64,
    /// The window as written, e.g. `10m`.
    pub window: String,
    pub since: chrono::DateTime<chrono::Utc>,
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

impl<'a> Context<'a> {
    pub fn new(delivery: &'a Delivery) -> Self {
        let job = &*delivery.job;
        let important = matches!(
            job.escalation.get(delivery.step),
            Some(Step::Notify {
                important: true,
                ..
            })
        );
        Context {
            alert: &job.alert,
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
                text: format!("…and {} more like this in the last {}", s.count, s.window),
            }),
        }
    }
}
