//! The `render` stage (`fanout.render`): draw a notify step's charts once,
//! store them, and fan the step out to one delivery message per target. A chart
//! that cannot be drawn never holds the alert back.

use std::time::Instant;

use lapin::message::Delivery as AmqpMessage;

use super::{headers_of, Context, Disposition, FailedAt};
use crate::chain::Cursor;
use crate::job::decode::decode_job;
use crate::metrics::RenderLabels;

pub async fn handle(ctx: &Context, message: &AmqpMessage) -> Disposition {
    // A chain's notify step; a bare job (from an older worker) is its
    // first notify step.
    let cursor = match Cursor::decode(&message.data) {
        Ok(cursor) => cursor,
        Err(_) => match decode_job(&message.data) {
            Ok(job) => {
                let step = crate::plan::first_notify(&job).unwrap_or(0);
                Cursor::start(job, None).at(step, 0)
            }
            Err(e) => return Disposition::dead(FailedAt::Render, "malformed", e.to_string()),
        },
    };
    let job = &cursor.job;
    let started = Instant::now();
    let charts = ctx.charts.for_job(job).await;
    ctx.metrics
        .render_seconds
        .observe(started.elapsed().as_secs_f64());
    for chart in &charts {
        let outcome = if chart.png.is_some() {
            "rendered"
        } else {
            "failed"
        };
        ctx.metrics
            .renders
            .get_or_create(&RenderLabels { outcome })
            .inc();
    }
    let enqueued = headers_of(message)
        .get(super::ENQUEUED_HEADER)
        .and_then(serde_json::Value::as_i64)
        .unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
    Disposition::Forward(super::notify::deliveries(ctx, &cursor, &charts, enqueued, None).await)
}
