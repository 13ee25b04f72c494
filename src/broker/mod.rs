//! RabbitMQ: the topology fanout declares, and publishing with confirms.
//!
//! Declared idempotently at start: a durable direct exchange `fanout` and
//! quorum queues — `fanout.jobs` (routing keys `job` and `signal`) and
//! `fanout.dead`. All names take `[broker] prefix`, so two deployments (or
//! two test runs) can share a vhost. The worker's stage, delivery and delay
//! queues join this topology with the worker.

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};

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
