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
use super::{headers_of, Context, Disposition};
use crate::metrics::{ChannelLabels, DestinationLabels};
use crate::store::DeliveryKey;

/// Headers a delivery carries between attempts.
pub const ATTEMPT_HEADER: &str = "fanout-attempt";
pub const FIRST_HEADER: &str = "fanout-first";
pub const SLOT_HEADER: &str = "fanout-slot";

/// How early a slot or due time may be taken as come.
const EARLY: i64 = 250;

pub async fn handle(ctx: &Context, message: &AmqpMessage) -> Disposition {
    let order = match DeliveryOrder::decode(&message.data) {
        Ok(order) => order,
        Err(e) => return Disposition::dead("deliver", "malformed", e),
    };
    let headers = headers_of(message);
    let int = |name: &str| headers.get(name).and_then(serde_json::Value::as_i64);
    let now = chrono::Utc::now().timestamp_millis();
    let attempt = int(ATTEMPT_HEADER).unwrap_or(1).clamp(1, 1000) as u32;
    let first = int(FIRST_HEADER).unwrap_or(now);
    let enqueued = int(super::ENQUEUED_HEADER).unwrap_or(now);
    let name = order.target.destination.clone();
    let Some(destination) = ctx.config.destinations.get(&name) else {
        return Disposition::dead(
            "deliver",
            "unknown_destination",
            format!("destination {name:?} is not in this worker's config"),
        );
    };
    let channel = destination.kind().name();
    let key = DeliveryKey {
        job_id: order.job.id.clone(),
        step: order.step,
        destination: name.clone(),
    };
    match ctx.store.was_sent(&key).await {
        Ok(Some(_)) => {
            info!(message = "Already sent; not sending again.", job = %key.job_id, destination = %name);
            ctx.metrics.delivery(channel, &name, "duplicate");
            return Disposition::Done;
        }
        Ok(None) => {}
        // Sending twice is better than not paging at all.
        Err(e) => warn!(message = "Notification log unreadable; sending anyway.", error = %e),
    }
    if let Some(rate) = destination.rate {
        let held = int(SLOT_HEADER).filter(|s| *s > 0);
        let slot = match held {
            Some(slot) => slot,
            None => match ctx.store.reserve_slot(&name, rate, now).await {
                Ok(slot) => slot,
                Err(e) => {
                    warn!(message = "Rate limit unreadable; sending now.", destination = %name, error = %e);
                    now
                }
            },
        };
        if slot > now + EARLY {
            ctx.metrics
                .rate_limited
                .get_or_create(&DestinationLabels {
                    destination: name.clone(),
                })
                .inc();
            return Disposition::Later {
                due_ms: slot,
                headers: vec![(SLOT_HEADER, AMQPValue::LongLongInt(slot))],
            };
        }
    }
    let delivery = order.into_delivery(ctx.charts.storage(), attempt).await;
    // With "Delivered." below, this brackets the one window in which a
    // crash can cause a duplicate: sent, not yet recorded.
    let id = format!("{}/{}/{}", key.job_id, key.step, key.destination);
    debug!(message = "Sending.", delivery = %id, attempt);
    let result = ctx.destinations.send_once(&delivery).await;
    let latency = (chrono::Utc::now().timestamp_millis() - enqueued).max(0) as f64 / 1000.0;
    match result {
        Ok(sent) => {
            if let Err(e) = ctx.store.record_sent(&key, &sent.detail).await {
                warn!(message = "Sent, but not recorded: a redelivery may send it again.", job = %key.job_id, destination = %name, error = %e);
            }
            info!(message = "Delivered.", delivery = %id, channel, attempt, detail = %sent.detail);
            ctx.metrics.delivery(channel, &name, "delivered");
            ctx.metrics
                .delivery_seconds
                .get_or_create(&ChannelLabels {
                    channel: channel.to_string(),
                })
                .observe(latency);
            Disposition::Done
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
                    Disposition::Later {
                        due_ms: now + wait.as_millis() as i64,
                        headers: vec![
                            (ATTEMPT_HEADER, AMQPValue::LongLongInt(attempt as i64 + 1)),
                            (FIRST_HEADER, AMQPValue::LongLongInt(first)),
                            // A new attempt takes a new rate-limit slot.
                            (SLOT_HEADER, AMQPValue::LongLongInt(0)),
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
                    Disposition::dead(
                        "deliver",
                        format!("{kind}_{}", error.reason),
                        format!(
                            "{name} ({channel}): {why}: {}: {}",
                            error.reason, error.message
                        ),
                    )
                }
            }
        }
    }
}
