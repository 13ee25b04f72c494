//! The `escalate` stage (`fanout.jobs`): decode, validate, plan.
//!
//! A job with charts goes to `fanout.render` to be drawn once; a job
//! without goes straight to one delivery message per target. A Celery job
//! whose `eta` lies ahead waits in the delay tiers; one past its `expires`
//! is dropped and counted.

use lapin::message::Delivery as AmqpMessage;
use tracing::info;

use super::{headers_of, Context, Disposition};
use crate::broker::Route;
use crate::job::{celery, decode, validate, Inbound, Job};

pub async fn handle(ctx: &Context, message: &AmqpMessage) -> Disposition {
    let headers = headers_of(message);
    let job = if headers.contains_key("task") {
        let content_type = message
            .properties
            .content_type()
            .as_ref()
            .map(|c| c.as_str().to_string());
        let encoding = message
            .properties
            .content_encoding()
            .as_ref()
            .map(|c| c.as_str().to_string());
        match celery::decode_celery(
            &headers,
            content_type.as_deref(),
            encoding.as_deref(),
            &message.data,
        ) {
            Ok(c) => {
                let now = chrono::Utc::now();
                if c.expires.is_some_and(|t| t < now) {
                    info!(message = "Dropped an expired Celery job.", job = %c.job.id, task = %c.task_id);
                    ctx.metrics.expired.inc();
                    return Disposition::Done;
                }
                if let Some(eta) = c
                    .eta
                    .filter(|t| *t > now + chrono::Duration::milliseconds(250))
                {
                    return Disposition::later(eta.timestamp_millis());
                }
                c.job
            }
            Err(e) => return Disposition::dead("decode", "malformed", e.to_string()),
        }
    } else {
        match decode(&message.data) {
            Ok(Inbound::Job(job)) => *job,
            Ok(Inbound::Signal(_)) => {
                return Disposition::dead(
                    "decode",
                    "unsupported",
                    "signals act on escalations, which this version does not run yet",
                )
            }
            Err(e) => return Disposition::dead("decode", "malformed", e.to_string()),
        }
    };
    if let Err(e) = validate(&job, &ctx.config) {
        return Disposition::dead("validate", "invalid", e.to_string());
    }
    let enqueued = headers
        .get(super::ENQUEUED_HEADER)
        .and_then(serde_json::Value::as_i64)
        .unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
    if job.charts.is_empty() {
        return Disposition::Forward(super::deliveries(ctx, &job, &[], enqueued));
    }
    Disposition::Forward(vec![super::Outgoing {
        route: Route::Render,
        body: job_body(&job),
        headers: super::enqueued_header(enqueued),
    }])
}

/// A validated job as the render stage reads it (native v1 JSON).
fn job_body(job: &Job) -> Vec<u8> {
    serde_json::to_vec(job).unwrap_or_default()
}
