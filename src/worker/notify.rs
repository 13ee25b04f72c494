//! A notify step → one delivery message per target, each target judged by
//! its destination's default suppression when the job sets none of its own.
//! Used by the escalate stage (jobs without charts) and the render stage.

use chrono::Utc;
use tracing::{info, warn};

use super::message::DeliveryOrder;
use super::{Context, Outgoing};
use crate::broker::Route;
use crate::chain::{Cursor, RESOLVED_STEP};
use crate::deliver::ChartImage;
use crate::job::{Job, Suppress, Target};
use crate::metrics::ScopeLabels;
use crate::suppress::{self, Verdict};

/// The deliveries of the cursor's notify step, in plan order.
pub async fn deliveries(
    ctx: &Context,
    cursor: &Cursor,
    charts: &[ChartImage],
    enqueued: i64,
) -> Vec<Outgoing> {
    let mut out = Vec::new();
    for planned in crate::plan::plan(&cursor.job, cursor.step) {
        // Validation checked every destination against this config.
        let Some(destination) = ctx.config.destinations.get(&planned.target.destination) else {
            continue;
        };
        let mut suppressed = cursor.suppressed.clone();
        if let (None, Some(rule)) = (&cursor.job.suppress, &destination.suppress) {
            match judge(ctx, rule, &cursor.job, &destination.name).await {
                Verdict::Suppressed => {
                    info!(message = "Suppressed a repeat.", job = %cursor.job.id, destination = %destination.name);
                    ctx.metrics
                        .suppressed
                        .get_or_create(&ScopeLabels {
                            scope: destination.name.clone(),
                        })
                        .inc();
                    continue;
                }
                Verdict::Send(summary) => suppressed = summary,
            }
        }
        let order =
            DeliveryOrder::new(&cursor.job, planned, charts).in_round(cursor.round, suppressed);
        out.push(Outgoing::now(
            Route::Deliver(destination.kind()),
            order.encode(),
            enqueued,
        ));
    }
    out
}

/// The "resolved" notice to each target notified in the group's chain.
pub fn resolved_notices(ctx: &Context, job: &Job, targets: &[Target]) -> Vec<Outgoing> {
    let now = Utc::now().timestamp_millis();
    targets
        .iter()
        .enumerate()
        .filter_map(|(i, target)| {
            // A destination since removed from the config gets no notice.
            let kind = ctx.config.destinations.get(&target.destination)?.kind();
            let order = DeliveryOrder::new(
                job,
                crate::plan::Planned {
                    seq: i + 1,
                    step: RESOLVED_STEP,
                    target: target.clone(),
                },
                &[],
            );
            Some(Outgoing::now(Route::Deliver(kind), order.encode(), now))
        })
        .collect()
}

/// Judge `job` against a suppression rule in `scope`. A key that does not
/// render, or a store that does not answer, lets the job through: a
/// duplicate page is better than a lost one.
pub async fn judge(ctx: &Context, rule: &Suppress, job: &Job, scope: &str) -> Verdict {
    let context = serde_json::json!({
        "alert": job.alert,
        "payload": job.alert.payload,
        "job": job,
        "destination": scope,
    });
    let key = match ctx
        .destinations
        .templates()
        .render_inline("suppress.key", &rule.key, &context)
    {
        Ok(key) => key,
        Err(e) => {
            warn!(message = "Suppression key does not render; not suppressing.", job = %job.id, error = %e);
            return Verdict::Send(None);
        }
    };
    match suppress::judge(&ctx.store, scope, &key, &job.id, rule.window, Utc::now()).await {
        Ok(verdict) => verdict,
        Err(e) => {
            warn!(message = "Suppression window unreadable; not suppressing.", job = %job.id, error = %e);
            Verdict::Send(None)
        }
    }
}
