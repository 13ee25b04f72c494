//! RabbitMQ: the topology fanout declares, and publishing with confirms.
//!
//! Declared idempotently at start: a durable direct exchange `fanout` and
//! quorum queues — `fanout.jobs` (routing keys `job` and `signal`) and
//! `fanout.dead`. All names take `[broker] prefix`, so two deployments (or
//! two test runs) can share a vhost. The worker's stage, delivery and delay
//! queues join this topology with the worker.

use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer, ExchangeKind};
use serde_json::{Map, Value};

use crate::config::BrokerConfig;

/// Why the broker could not be used. Never holds the password.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("broker {shown}: {message}")]
pub struct BrokerError {
    pub shown: String,
    pub message: String,
}

/// The names of everything fanout declares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    pub exchange: String,
    pub jobs: String,
    pub dead: String,
}

impl Topology {
    pub fn new(prefix: &str) -> Self {
        Self {
            exchange: format!("{prefix}fanout"),
            jobs: format!("{prefix}fanout.jobs"),
            dead: format!("{prefix}fanout.dead"),
        }
    }
}

/// Routing keys producers publish with.
pub const JOB_KEY: &str = "job";
pub const SIGNAL_KEY: &str = "signal";

/// A connection with a confirming channel and the topology declared.
pub struct Broker {
    _connection: Connection,
    channel: Channel,
    pub topology: Topology,
    shown: String,
}

fn quorum() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args
}

impl Broker {
    /// Connect, enable publisher confirms, declare the topology.
    pub async fn connect(config: &BrokerConfig) -> Result<Self, BrokerError> {
        let shown = crate::config::reader::redact_userinfo(config.url.expose()).into_owned();
        let fail = |e: lapin::Error| BrokerError {
            shown: shown.clone(),
            message: e.to_string(),
        };
        let connection = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            Connection::connect(config.url.expose(), ConnectionProperties::default()),
        )
        .await
        .map_err(|_| BrokerError {
            shown: shown.clone(),
            message: "no answer within 10s".into(),
        })?
        .map_err(fail)?;
        let channel = connection.create_channel().await.map_err(fail)?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(fail)?;
        let topology = Topology::new(&config.prefix);
        declare(&channel, &topology).await.map_err(fail)?;
        Ok(Self {
            _connection: connection,
            channel,
            topology,
            shown,
        })
    }

    /// Publish a persistent JSON message and wait for the broker's confirm.
    pub async fn publish(
        &self,
        routing_key: &str,
        message_id: &str,
        body: &[u8],
    ) -> Result<(), BrokerError> {
        let fail = |message: String| BrokerError {
            shown: self.shown.clone(),
            message,
        };
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type(ShortString::from("application/json"))
            .with_message_id(ShortString::from(message_id));
        let confirm = self
            .channel
            .basic_publish(
                ShortString::from(self.topology.exchange.as_str()),
                ShortString::from(routing_key),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                body,
                properties,
            )
            .await
            .map_err(|e| fail(e.to_string()))?
            .await
            .map_err(|e| fail(e.to_string()))?;
        if confirm.is_nack() {
            return Err(fail("the broker refused the message (nack)".into()));
        }
        if confirm.take_message().is_some() {
            return Err(fail(
                "the message was returned: no queue is bound to that routing key".into(),
            ));
        }
        Ok(())
    }

    /// The URL without its password.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Consume `fanout.jobs` with manual acks and at most `prefetch`
    /// unacknowledged messages (per consumer: quorum queues refuse global QoS).
    pub async fn consume_jobs(&self, prefetch: u16, tag: &str) -> Result<Consumer, BrokerError> {
        let fail = |e: lapin::Error| BrokerError {
            shown: self.shown.clone(),
            message: e.to_string(),
        };
        self.channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await
            .map_err(fail)?;
        self.channel
            .basic_consume(
                self.topology.jobs.as_str().into(),
                tag.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(fail)
    }

    /// Put a message that cannot be processed on `fanout.dead`, body
    /// untouched, with why and where in its headers; waits for the confirm.
    pub async fn dead_letter(
        &self,
        body: &[u8],
        original: &BasicProperties,
        stage: &str,
        reason: &str,
    ) -> Result<(), BrokerError> {
        let mut headers = original.headers().clone().unwrap_or_default();
        headers.insert("x-fanout-stage".into(), AMQPValue::LongString(stage.into()));
        headers.insert(
            "x-fanout-reason".into(),
            AMQPValue::LongString(reason.into()),
        );
        let mut properties = original.clone().with_headers(headers).with_delivery_mode(2);
        if properties.content_type().is_none() {
            properties = properties.with_content_type("application/octet-stream".into());
        }
        let confirm = self
            .channel
            .basic_publish(
                "".into(),
                self.topology.dead.as_str().into(),
                BasicPublishOptions::default(),
                body,
                properties,
            )
            .await
            .map_err(|e| BrokerError {
                shown: self.shown.clone(),
                message: e.to_string(),
            })?
            .await
            .map_err(|e| BrokerError {
                shown: self.shown.clone(),
                message: e.to_string(),
            })?;
        if confirm.is_nack() {
            return Err(BrokerError {
                shown: self.shown.clone(),
                message: "the broker refused the dead letter (nack)".into(),
            });
        }
        Ok(())
    }
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

async fn declare(channel: &Channel, t: &Topology) -> lapin::Result<()> {
    channel
        .exchange_declare(
            t.exchange.as_str().into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    for queue in [&t.jobs, &t.dead] {
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions::durable(),
                quorum(),
            )
            .await?;
    }
    for key in [JOB_KEY, SIGNAL_KEY] {
        channel
            .queue_bind(
                t.jobs.as_str().into(),
                t.exchange.as_str().into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}
