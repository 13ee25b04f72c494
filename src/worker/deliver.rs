//! The `deliver` stage (`fanout.deliver.<channel>`): one target, one try
//! through the [`crate::pipeline`], "later" parked in the delay tiers.
//!
//! The attempt's number, its first try, a held rate-limit slot and a
//! partial send's progress travel in the message's headers
//! ([`crate::broker::headers`]). A retry goes back through the delay
//! tiers with the next attempt's number; a permanent failure, or the
//! last allowed, goes to `fanout.dead` with the reason.

use lapin::message::Delivery as AmqpMessage;
use lapin::types::AMQPValue;

use super::message::{DeliveryOrder, Stored};
use super::{headers_of, Context, Disposition, FailedAt};
use crate::broker::{ATTEMPT_HEADER, ENQUEUED_HEADER, FIRST_HEADER, PROGRESS_HEADER, SLOT_HEADER};
use crate::pipeline::{Attempt, Attempted, Next};

/// What the worker does with an attempt's result.
pub enum Parked {
    /// Sent, sent already, or no longer wanted: nothing left.
    Done,
    /// Back to the delivery queue at `due_ms` with these headers.
    Later {
        due_ms: i64,
        headers: Vec<(&'static str, AMQPValue)>,
    },
    /// To `fanout.dead`: a metrics label and the reason.
    Dead { label: String, reason: String },
}

/// The deliver stage's message: one delivery order, one attempt.
pub async fn handle(ctx: &Context, message: &AmqpMessage) -> Disposition {
    let order = match DeliveryOrder::decode(&message.data) {
        Ok(order) => order,
        Err(e) => return Disposition::dead(FailedAt::Deliver, "malformed", e),
    };
    match attempt(ctx, order, attempt_of(message)).await {
        Parked::Done => Disposition::Done,
        Parked::Later { due_ms, headers } => Disposition::Later { due_ms, headers },
        Parked::Dead { label, reason } => Disposition::dead(FailedAt::Deliver, label, reason),
    }
}

/// One attempt at `order` through the pipeline, its "later" as headers
/// for the delay tiers. The deliver stage runs it for each message; the
/// stages that plan deliveries run each target's first attempt
/// themselves (see [`super::notify`]), so the common case costs no
/// second queue hop.
pub async fn attempt(ctx: &Context, order: DeliveryOrder, attempt: Attempt) -> Parked {
    let name = order.target.destination.clone();
    let pending = Stored {
        order,
        storage: ctx.charts.storage(),
    };
    let first_ms = attempt.first_ms;
    match ctx.pipeline().attempt(pending, attempt).await {
        Attempted::Sent(_) | Attempted::AlreadySent(_) | Attempted::Stopped(_) => Parked::Done,
        Attempted::Later {
            due_ms,
            next: Next::Slot(at),
        } => Parked::Later {
            due_ms,
            headers: vec![(SLOT_HEADER, AMQPValue::LongLongInt(at))],
        },
        Attempted::Later {
            due_ms,
            next: Next::Retry { number, progress },
        } => Parked::Later {
            due_ms,
            headers: vec![
                (ATTEMPT_HEADER, AMQPValue::LongLongInt(number.into())),
                (FIRST_HEADER, AMQPValue::LongLongInt(first_ms)),
                // A new attempt takes a new rate-limit slot.
                (SLOT_HEADER, AMQPValue::LongLongInt(0)),
                (
                    PROGRESS_HEADER,
                    AMQPValue::LongString(progress.unwrap_or_default().into()),
                ),
            ],
        },
        Attempted::Failed {
            error,
            attempts,
            channel,
        } => {
            let (kind, why) = if error.is_retryable() {
                ("exhausted", format!("gave up after {attempts} attempt(s)"))
            } else {
                ("permanent", "permanent".to_string())
            };
            Parked::Dead {
                label: format!("{kind}_{}", error.reason),
                reason: format!(
                    "{name} ({channel}): {why}: {}: {}",
                    error.reason, error.message
                ),
            }
        }
        Attempted::UnknownDestination(name) => Parked::Dead {
            label: "unknown_destination".into(),
            reason: format!("destination {name:?} is not in this worker's config"),
        },
    }
}

/// The attempt a delivery message carries in its headers.
fn attempt_of(message: &AmqpMessage) -> Attempt {
    let headers = headers_of(message);
    let int = |name: &str| headers.get(name).and_then(serde_json::Value::as_i64);
    let now = chrono::Utc::now().timestamp_millis();
    Attempt {
        number: int(ATTEMPT_HEADER).unwrap_or(1).clamp(1, 1000) as u32,
        first_ms: int(FIRST_HEADER).unwrap_or(now),
        enqueued_ms: int(ENQUEUED_HEADER).unwrap_or(now),
        slot_ms: int(SLOT_HEADER).filter(|s| *s > 0),
        progress: headers
            .get(PROGRESS_HEADER)
            .and_then(serde_json::Value::as_str)
            .filter(|p| !p.is_empty())
            .map(str::to_string),
        known: None,
    }
}
