//! The `deliver` stage (`fanout.deliver.<channel>`): one target, one try.
//!
//! In order: the notification log (sent already? ack and count), the
//! destination's rate limit (a slot ahead? wait in the delay tiers), one
//! send, then record it. A retryable failure goes back through the delay
//! tiers with the next attempt's number; a permanent one, or the last
//! allowed, goes to `fanout.dead` with the reason.

use std::time::Duration;

use lapin::message::Delivery as AmqpMessage;
use lapin::types::AMQPValue;
use tracing::{debug, info, warn};

use super::message::DeliveryOrder;
use super::{headers_of, Context, Disposition, FailedAt};
use crate::chain::group::{self, Gate, GroupState};
use crate::metrics::{ChannelLabels, DestinationLabels};
use crate::rate::{RateLimit, SlotTime};

use crate::broker::{ATTEMPT_HEADER, FIRST_HEADER, PROGRESS_HEADER, SLOT_HEADER};

/// What a delivery carries between attempts (in its message's headers,
/// or from the stage that planned it for a first attempt there).
#[derive(Clone, Debug)]
pub struct Attempt {
    /// 1 on the first try.
    pub number: u32,
    /// When the first attempt began (unix ms): `max_age` counts from it.
    pub first_ms: i64,
    /// When the producer enqueued the job (unix ms), for the latency metric.
    pub enqueued_ms: i64,
    /// A rate-limit slot this delivery holds (unix ms), if any.
    pub slot_ms: Option<i64>,
    /// Where a failed send of several requests stopped.
    pub progress: Option<String>,
    /// The group's state, when the stage making this first attempt has
    /// just started the group's chain: nothing of it can be in the
    /// notification log, so neither needs reading again.
    pub known: Option<Option<GroupState>>,
}

impl Attempt {
    /// The first attempt, made now.
    pub fn first(enqueued_ms: i64) -> Self {
        Self {
            number: 1,
            first_ms: chrono::Utc::now().timestamp_millis(),
            enqueued_ms,
            slot_ms: None,
            progress: None,
            known: None,
        }
    }

    fn of(message: &AmqpMessage) -> Self {
        let headers = headers_of(message);
        let int = |name: &str| headers.get(name).and_then(serde_json::Value::as_i64);
        let now = chrono::Utc::now().timestamp_millis();
        Self {
            number: int(ATTEMPT_HEADER).unwrap_or(1).clamp(1, 1000) as u32,
            first_ms: int(FIRST_HEADER).unwrap_or(now),
            enqueued_ms: int(super::ENQUEUED_HEADER).unwrap_or(now),
            slot_ms: int(SLOT_HEADER).filter(|s| *s > 0),
            progress: headers
                .get(PROGRESS_HEADER)
                .and_then(serde_json::Value::as_str)
                .filter(|p| !p.is_empty())
                .map(str::to_string),
            known: None,
        }
    }
}

/// What became of one attempt.
pub enum Attempted {
    /// Sent and recorded, sent already, or no longer wanted: nothing left.
    Done,
    /// Not now: come back to the delivery queue at `due_ms` with these
    /// headers (a rate-limit slot ahead, or a retry).
    Later {
        due_ms: i64,
        headers: Vec<(&'static str, AMQPValue)>,
    },
    /// Permanent, or out of attempts: to `fanout.dead`.
    Dead { label: String, reason: String },
}

/// The deliver stage's message: one delivery order, one attempt.
pub async fn handle(ctx: &Context, message: &AmqpMessage) -> Disposition {
    let order = match DeliveryOrder::decode(&message.data) {
        Ok(order) => order,
        Err(e) => return Disposition::dead(FailedAt::Deliver, "malformed", e),
    };
    match attempt(ctx, order, Attempt::of(message)).await {
        Attempted::Done => Disposition::Done,
        Attempted::Later { due_ms, headers } => Disposition::Later { due_ms, headers },
        Attempted::Dead { label, reason } => Disposition::dead(FailedAt::Deliver, label, reason),
    }
}

/// One attempt at one delivery: the notification log (sent already?), the
/// group's gate, the destination's rate limit, one send, the record. The
/// deliver stage runs it for each message; the stages that plan
/// deliveries run each target's first attempt themselves (see
/// [`super::notify`]), so the common case costs no second queue hop.
pub async fn attempt(ctx: &Context, order: DeliveryOrder, meta: Attempt) -> Attempted {
    let now = chrono::Utc::now().timestamp_millis();
    let Attempt {
        number: attempt,
        first_ms: first,
        enqueued_ms: enqueued,
        slot_ms: held,
        progress,
        known,
    } = meta;
    let name = order.target.destination.clone();
    let Some(destination) = ctx.config.destinations.get(&name) else {
        return Attempted::Dead {
            label: "unknown_destination".into(),
            reason: format!("destination {name:?} is not in this worker's config"),
        };
    };
    let channel = destination.kind().name();
    let key = order.key();
    let group_id = order.job.alert.group_id.clone();
    // Sent already? And the group's state: one read for both (none when
    // this message has just started the chain).
    let looked_up = match known {
        Some(state) => Ok((None, state)),
        None => {
            ctx.store
                .lookup::<GroupState>(&key, group::KIND, &group_id)
                .await
        }
    };
    let (sent, state) = match looked_up {
        Ok(found) => found,
        // Sending twice is better than not paging at all.
        Err(e) => {
            warn!(message = "Store unreadable; sending anyway.", error = %e);
            (None, None)
        }
    };
    if sent.is_some() {
        info!(message = "Already sent; not sending again.", job = %key.job_id, destination = %name);
        ctx.metrics.delivery(channel, &name, "duplicate");
        return Attempted::Done;
    }
    // A step planned before an acknowledge or resolve is not sent after it,
    // even if it waited for a rate-limit slot or a retry. A resolved notice
    // is not a step: nothing stops it.
    if !order.is_resolved_notice() {
        if let Gate::Stop(why) = group::gate(state.as_ref(), &order.job.id, chrono::Utc::now()) {
            info!(message = "Not sending: the chain was stopped.", job = %key.job_id, destination = %name, %why);
            ctx.metrics.delivery(channel, &name, "stopped");
            return Attempted::Done;
        }
    }
    let thread = state
        .filter(|s| s.chain == order.job.id)
        .and_then(|mut s| s.threads.remove(&order.target.thread_key()));
    // The slot this send keeps, if the destination has a rate limit.
    let mut slot = None;
    if let Some(rate) = destination.rate {
        let images = order.charts.iter().filter(|c| c.has_image()).count();
        let cost = destination.channel.messages(images, &order.target);
        let scope = destination.channel.rate_scope(&name, &order.target);
        let at = match held {
            Some(at) => at,
            None => reserve(ctx, &scope, rate, cost, &name).await,
        };
        if SlotTime::of(at, chrono::Utc::now().timestamp_millis()) == SlotTime::Ahead {
            return rate_limited(ctx, &name, at);
        }
        slot = Some((scope, rate, cost, at));
    }
    let actions = match (&ctx.actions, order.is_resolved_notice()) {
        (Some(links), false) => Some(links.urls(&group_id, chrono::Utc::now())),
        _ => None,
    };
    let resolved_notice = order.is_resolved_notice();
    let target = order.target.clone();
    let mut delivery = order
        .into_delivery(ctx.charts.storage(), attempt, actions)
        .await;
    delivery.thread = thread;
    delivery.progress = progress;
    // Loading the charts, or a backlog, may have made the send late: a
    // missed slot is given up for a new one rather than crowding the next.
    // A worker too busy to keep even a fresh slot sends after a few tries.
    if let Some((scope, rate, cost, mut at)) = slot {
        let mut missed = 0;
        loop {
            match SlotTime::of(at, chrono::Utc::now().timestamp_millis()) {
                SlotTime::Ahead => return rate_limited(ctx, &name, at),
                SlotTime::Soon(wait) => tokio::time::sleep(wait).await,
                SlotTime::Now => break,
                SlotTime::Missed if missed == 3 => break,
                SlotTime::Missed => {
                    missed += 1;
                    debug!(message = "Rate-limit slot missed; taking a new one.", destination = %name, late_ms = chrono::Utc::now().timestamp_millis() - at);
                    at = reserve(ctx, &scope, rate, cost, &name).await;
                }
            }
        }
    }
    // With "Delivered." below, this brackets the one window in which a
    // crash can cause a duplicate: sent, not yet recorded.
    let id = format!("{}/{}/{}", key.job_id, key.step, key.destination);
    debug!(message = "Sending.", delivery = %id, attempt);
    let result = ctx.destinations.send_once(&delivery).await;
    let latency = (chrono::Utc::now().timestamp_millis() - enqueued).max(0) as f64 / 1000.0;
    match result {
        Ok(sent) => {
            // The log entry and, for a step, the group's note of it: one write.
            let recorded = if resolved_notice {
                ctx.store.record_sent(&key, &sent.detail).await
            } else {
                let (chain, step, at) = (key.job_id.clone(), key.step, chrono::Utc::now());
                let opened = sent.thread.clone();
                ctx.store
                    .record_sent_and_update(&key, &sent.detail, group::KIND, &group_id, move |s| {
                        let new = group::note_sent(s, &chain, &target, step, opened.as_deref(), at);
                        (new, ())
                    })
                    .await
            };
            if let Err(e) = recorded {
                warn!(message = "Sent, but not recorded: a redelivery may send it again, and the group's resolved notice may miss this destination.", job = %key.job_id, destination = %name, group = %group_id, error = %e);
            }
            info!(message = "Delivered.", delivery = %id, channel, attempt, detail = %sent.detail);
            ctx.metrics.delivery(channel, &name, "delivered");
            ctx.metrics
                .delivery_seconds
                .get_or_create(&ChannelLabels {
                    channel: channel.to_string(),
                })
                .observe(latency);
            Attempted::Done
        }
        Err(error) => {
            let age = Duration::from_millis((now - first).max(0) as u64);
            let next = destination.retry.next_delay_within(attempt, age, &error);
            warn!(
                message = "Delivery failed.", job = %key.job_id, destination = %name, channel, attempt,
                retryable = error.is_retryable(), will_retry = next.is_some(), reason = %error.reason, %error
            );
            match next {
                Some(wait) => {
                    ctx.metrics.delivery(channel, &name, "retried");
                    ctx.metrics
                        .retries
                        .get_or_create(&DestinationLabels {
                            destination: name.clone(),
                        })
                        .inc();
                    // The wait counts from the answer, not from when we began:
                    // a `Retry-After: 1` means one second after it was said.
                    Attempted::Later {
                        due_ms: chrono::Utc::now().timestamp_millis() + wait.as_millis() as i64,
                        headers: vec![
                            (ATTEMPT_HEADER, AMQPValue::LongLongInt(attempt as i64 + 1)),
                            (FIRST_HEADER, AMQPValue::LongLongInt(first)),
                            // A new attempt takes a new rate-limit slot.
                            (SLOT_HEADER, AMQPValue::LongLongInt(0)),
                            (
                                PROGRESS_HEADER,
                                AMQPValue::LongString(
                                    error.progress.clone().unwrap_or_default().into(),
                                ),
                            ),
                        ],
                    }
                }
                None => {
                    ctx.metrics.delivery(channel, &name, "dead");
                    let (kind, why) = if error.is_retryable() {
                        ("exhausted", format!("gave up after {attempt} attempt(s)"))
                    } else {
                        ("permanent", "permanent".to_string())
                    };
                    Attempted::Dead {
                        label: format!("{kind}_{}", error.reason),
                        reason: format!(
                            "{name} ({channel}): {why}: {}: {}",
                            error.reason, error.message
                        ),
                    }
                }
            }
        }
    }
}

/// A new slot in `scope`'s limit, counted from now. An unreadable store
/// sends now rather than not at all.
async fn reserve(ctx: &Context, scope: &str, rate: RateLimit, cost: u32, name: &str) -> i64 {
    let now = chrono::Utc::now().timestamp_millis();
    match ctx.store.reserve_slot(scope, rate, cost, now).await {
        Ok(at) => at,
        Err(e) => {
            warn!(message = "Rate limit unreadable; sending now.", destination = %name, error = %e);
            now
        }
    }
}

/// Wait in the delay tiers for the slot at `at`, holding it.
fn rate_limited(ctx: &Context, name: &str, at: i64) -> Attempted {
    ctx.metrics
        .rate_limited
        .get_or_create(&DestinationLabels {
            destination: name.to_string(),
        })
        .inc();
    Attempted::Later {
        due_ms: at,
        headers: vec![(SLOT_HEADER, AMQPValue::LongLongInt(at))],
    }
}
