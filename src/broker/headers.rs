//! Every header fanout reads or writes on a message, in one place, and
//! the conversions between AMQP header tables and JSON.

use lapin::types::{AMQPValue, FieldTable};
use lapin::BasicProperties;
use serde_json::{Map, Value};

/// The header naming the queue a delayed message returns to. (RabbitMQ's
/// headers exchange ignores `x-` headers, hence no prefix.)
pub const ROUTE_HEADER: &str = "fanout-route";

/// When the job entered fanout (unix ms), for the latency histogram.
pub const ENQUEUED_HEADER: &str = "fanout-enqueued";

/// The header that carries when a delayed message is due (unix ms).
pub const DUE_HEADER: &str = "x-fanout-due";

/// Why a dead letter is in `fanout.dead`: where in the flow it failed.
pub const STAGE_HEADER: &str = "x-fanout-stage";

/// Why a dead letter is in `fanout.dead`: the reason, secrets scrubbed.
pub const REASON_HEADER: &str = "x-fanout-reason";

/// A delivery's attempt number (1 on the first try).
pub const ATTEMPT_HEADER: &str = "fanout-attempt";

/// When a delivery's first attempt was made (unix ms): retries count
/// their give-up time from it.
pub const FIRST_HEADER: &str = "fanout-first";

/// The rate-limit slot a delivery holds (unix ms).
pub const SLOT_HEADER: &str = "fanout-slot";

/// Where a channel's previous attempt stopped (e.g. a Slack upload's
/// file id), so a retry resumes instead of repeating.
pub const PROGRESS_HEADER: &str = "fanout-progress";

/// The original properties, persistent, with `extra` headers set, and
/// without a per-message TTL (`expiration`). A Celery 5.3+ producer sets
/// one for `expires=`; fanout's escalate stage honours `expires` itself,
/// and a message parked in a delay tier or kept in `fanout.dead` must not
/// vanish when the producer's TTL runs out there.
pub(super) fn with_headers(
    original: &BasicProperties,
    extra: &[(&str, AMQPValue)],
) -> BasicProperties {
    let mut headers = original.headers().clone().unwrap_or_default();
    for (name, value) in extra {
        headers.insert((*name).into(), value.clone());
    }
    let mut properties = BasicProperties::default()
        .with_headers(headers)
        .with_delivery_mode(2);
    if let Some(v) = original.content_type() {
        properties = properties.with_content_type(v.clone());
    }
    if let Some(v) = original.content_encoding() {
        properties = properties.with_content_encoding(v.clone());
    }
    if let Some(v) = original.priority() {
        properties = properties.with_priority(*v);
    }
    if let Some(v) = original.correlation_id() {
        properties = properties.with_correlation_id(v.clone());
    }
    if let Some(v) = original.reply_to() {
        properties = properties.with_reply_to(v.clone());
    }
    if let Some(v) = original.message_id() {
        properties = properties.with_message_id(v.clone());
    }
    if let Some(v) = original.timestamp() {
        properties = properties.with_timestamp(*v);
    }
    if let Some(v) = original.kind() {
        properties = properties.with_type(v.clone());
    }
    if let Some(v) = original.app_id() {
        properties = properties.with_app_id(v.clone());
    }
    properties
}

/// AMQP headers as plain JSON (what Celery's headers look like in Python).
pub fn headers_to_json(table: &FieldTable) -> Map<String, Value> {
    table
        .inner()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), amqp_to_json(v)))
        .collect()
}

fn amqp_to_json(value: &AMQPValue) -> Value {
    match value {
        AMQPValue::Boolean(b) => Value::Bool(*b),
        AMQPValue::ShortShortInt(n) => (*n).into(),
        AMQPValue::ShortShortUInt(n) => (*n).into(),
        AMQPValue::ShortInt(n) => (*n).into(),
        AMQPValue::ShortUInt(n) => (*n).into(),
        AMQPValue::LongInt(n) => (*n).into(),
        AMQPValue::LongUInt(n) => (*n).into(),
        AMQPValue::LongLongInt(n) => (*n).into(),
        AMQPValue::Timestamp(n) => (*n).into(),
        AMQPValue::Float(f) => (*f).into(),
        AMQPValue::Double(f) => (*f).into(),
        AMQPValue::ShortString(s) => s.as_str().into(),
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned().into(),
        AMQPValue::FieldArray(a) => Value::Array(a.as_slice().iter().map(amqp_to_json).collect()),
        AMQPValue::FieldTable(t) => Value::Object(headers_to_json(t)),
        AMQPValue::DecimalValue(_) | AMQPValue::ByteArray(_) | AMQPValue::Void => Value::Null,
    }
}

/// Plain JSON as an AMQP header table (for producers and tests).
pub fn json_to_headers(map: &Map<String, Value>) -> FieldTable {
    let mut table = FieldTable::default();
    for (k, v) in map {
        table.insert(k.as_str().into(), json_to_amqp(v));
    }
    table
}

fn json_to_amqp(value: &Value) -> AMQPValue {
    match value {
        Value::Null => AMQPValue::Void,
        Value::Bool(b) => AMQPValue::Boolean(*b),
        Value::Number(n) => n
            .as_i64()
            .map(AMQPValue::LongLongInt)
            .unwrap_or_else(|| AMQPValue::Double(n.as_f64().unwrap_or_default())),
        Value::String(s) => AMQPValue::LongString(s.as_str().into()),
        Value::Array(a) => {
            let mut array = lapin::types::FieldArray::default();
            for v in a {
                array.push(json_to_amqp(v));
            }
            AMQPValue::FieldArray(array)
        }
        Value::Object(o) => AMQPValue::FieldTable(json_to_headers(o)),
    }
}
