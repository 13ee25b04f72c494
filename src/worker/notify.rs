//! A notify step → one delivery per target, each target judged by its
//! destination's default suppression when the job sets none of its own,
//! and each first attempted right here ([`attempt_or_forward`]). Used by
//! the escalate stage (jobs without charts, resolved notices) and the
//! render stage.

use chrono::Utc;
use tracing::{info, warn};

use lapin::types::AMQPValue;

use super::deliver::{self, Parked};
use super::message::DeliveryOrder;
use super::pool::Stage;
use super::{Context, FailedAt, Outgoing};
use crate::broker::Route;
use crate::chain::group::GroupState;
use crate::chain::{Cursor, RESOLVED_STEP};
use crate::channels::ChannelKind;
use crate::delivery::ChartImage;
use crate::job::{Job, Suppress, Target};
use crate::metrics::ScopeLabels;
use crate::pipeline::Attempt;
use crate::suppress::{self, Verdict};

/// The deliveries of the cursor's notify step, in plan order.
/// `known`: the group's state when the message being handled has just
/// started the chain (nothing of it can be in the notification log yet),
/// so the first attempts need not read the store again.
pub async fn deliveries(
    ctx: &Context,
    cursor: &Cursor,
    charts: &[ChartImage],
    enqueued: i64,
    known: Option<Option<&GroupState>>,
) -> Vec<Outgoing> {
    let mut out: Vec<(ChannelKind, DeliveryOrder)> = Vec::new();
    for planned in crate::plan::plan(&cursor.job, cursor.step) {
        // Validation checked every destination against this config.
        let Some(destination) = ctx.destinations.get(&planned.target.destination) else {
            continue;
        };
        let mut suppressed = cursor.suppressed.clone();
        if let (None, Some(rule)) = (&cursor.job.suppress, destination.suppress()) {
            match judge(ctx, rule, &cursor.job, destination.name()).await {
                Verdict::Suppressed => {
                    info!(message = "Suppressed a repeat.", job = %cursor.job.id, destination = %destination.name());
                    ctx.metrics
                        .suppressed
                        .get_or_create(&ScopeLabels {
                            scope: destination.name().to_string(),
                        })
                        .inc();
                    continue;
                }
                Verdict::Send(summary) => suppressed = summary,
            }
        }
        let order =
            DeliveryOrder::new(&cursor.job, planned, charts).in_round(cursor.round, suppressed);
        out.push((destination.kind(), order));
    }
    attempt_or_forward(ctx, out, enqueued, known).await
}

/// Each order's first attempt, made here when this pool delivers its
/// channel (the common case: the alert goes out with no second queue
/// hop); what is left — a retry, a rate-limit slot ahead, a channel
/// another pool delivers — becomes a message on its delivery queue, and a
/// permanent failure a dead letter. The message being handled is acked
/// only once every send here is recorded and every message confirmed, so
/// a crash repeats the step and the notification log stops a second send.
async fn attempt_or_forward(
    ctx: &Context,
    orders: Vec<(ChannelKind, DeliveryOrder)>,
    enqueued: i64,
    known: Option<Option<&GroupState>>,
) -> Vec<Outgoing> {
    let inline =
        |kind: &ChannelKind| ctx.pool.runs(Stage::Deliver) && ctx.pool.channels.contains(kind);
    let attempts = orders.into_iter().map(|(kind, order)| async move {
        let route = Route::Deliver(kind);
        if !inline(&kind) {
            return Some(Outgoing::now(route, order.encode(), enqueued));
        }
        let body = order.encode();
        let mut first = Attempt::first(enqueued);
        first.known = known.map(|state| state.cloned());
        let first_ms = first.first_ms;
        match deliver::attempt(ctx, order, first).await {
            Parked::Done => None,
            Parked::Later { due_ms, headers } => {
                let mut out = Outgoing::at(route, body, enqueued, due_ms);
                for (name, value) in headers {
                    out.headers.insert(name.into(), value);
                }
                out.headers.insert(
                    crate::broker::FIRST_HEADER.into(),
                    AMQPValue::LongLongInt(first_ms),
                );
                Some(out)
            }
            Parked::Dead { label, reason } => Some(Outgoing::dead(
                route,
                body,
                FailedAt::Deliver,
                label,
                reason,
            )),
        }
    });
    futures::future::join_all(attempts)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// The "resolved" notice to each target notified in the group's chain.
pub async fn resolved_notices(ctx: &Context, job: &Job, targets: &[Target]) -> Vec<Outgoing> {
    let now = Utc::now().timestamp_millis();
    let orders = targets
        .iter()
        .enumerate()
        .filter_map(|(i, target)| {
            // A destination since removed from the config gets no notice.
            let kind = ctx.destinations.get(&target.destination)?.kind();
            let order = DeliveryOrder::new(
                job,
                crate::plan::Planned {
                    seq: i + 1,
                    step: RESOLVED_STEP,
                    target: target.clone(),
                },
                &[],
            );
            Some((kind, order))
        })
        .collect();
    attempt_or_forward(ctx, orders, now, None).await
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
