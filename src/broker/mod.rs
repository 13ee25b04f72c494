//! RabbitMQ: the topology fanout declares, and publishing with confirms.
//!
//! Declared idempotently at start: a durable direct exchange `fanout`
//! (routing keys `job` and `signal` → `fanout.jobs`); quorum queues for each
//! stage — `fanout.jobs`, `fanout.chains` (steps of running escalations),
//! `fanout.render`, `fanout.deliver.<channel>` — and `fanout.dead`; the delay tiers `fanout.delay.<tier>`, whose expired
//! messages dead-letter (at least once) to the headers exchange
//! `fanout.return`, which sends each back to the queue its `fanout-route`
//! header names. All names take `[broker] prefix`, so two deployments (or
//! two test runs) can share a vhost.

use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer, ExchangeKind};
use std::time::Duration;

pub mod dead;
pub mod headers;
pub mod publisher;
pub mod spool;
pub mod topology;

pub use headers::*;
pub use topology::*;

use crate::config::BrokerConfig;

/// Why the broker could not be used. Never holds the password.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("broker {shown}: {message}")]
pub struct BrokerError {
    pub shown: String,
    pub message: String,
}

/// A connection with a confirming channel and the topology declared.
pub struct Broker {
    connection: Connection,
    channel: Channel,
    pub topology: Topology,
    shown: String,
}

impl Broker {
    /// Connect, enable publisher confirms, declare the topology.
    pub async fn connect(config: &BrokerConfig) -> Result<Self, BrokerError> {
        let shown = crate::net::redact_userinfo(config.url.expose()).into_owned();
        let fail = |e: lapin::Error| BrokerError {
            shown: shown.clone(),
            message: e.to_string(),
        };
        let connection = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            Connection::connect(
                config.url.expose(),
                // The name operators (and tests) find it by in RabbitMQ.
                ConnectionProperties::default().with_connection_name(
                    format!("fanout {}pid {}", config.prefix, std::process::id()).into(),
                ),
            ),
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
            connection,
            channel,
            topology,
            shown,
        })
    }

    fn error(&self, message: impl Into<String>) -> BrokerError {
        BrokerError {
            shown: self.shown.clone(),
            message: message.into(),
        }
    }

    /// Publish and wait for the broker's confirm; a nack, or a return of
    /// a mandatory message that no queue took, is an error.
    async fn publish_confirmed(
        &self,
        exchange: &str,
        routing_key: &str,
        mandatory: bool,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<(), BrokerError> {
        let options = BasicPublishOptions {
            mandatory,
            ..BasicPublishOptions::default()
        };
        let confirm = self
            .channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                options,
                body,
                properties,
            )
            .await
            .map_err(|e| self.error(e.to_string()))?
            .await
            .map_err(|e| self.error(e.to_string()))?;
        if confirm.is_nack() {
            return Err(self.error(format!(
                "the broker refused the message to {routing_key} (nack)"
            )));
        }
        if confirm.take_message().is_some() {
            return Err(self.error(format!(
                "the message was returned: no queue is bound to {routing_key}"
            )));
        }
        Ok(())
    }

    /// Publish a persistent JSON job to the exchange.
    pub async fn publish(
        &self,
        routing_key: &str,
        message_id: &str,
        body: &[u8],
    ) -> Result<(), BrokerError> {
        let mut headers = FieldTable::default();
        headers.insert(
            ENQUEUED_HEADER.into(),
            AMQPValue::LongLongInt(chrono::Utc::now().timestamp_millis()),
        );
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type(ShortString::from("application/json"))
            .with_message_id(ShortString::from(message_id))
            .with_headers(headers);
        self.publish_confirmed(&self.topology.exchange, routing_key, true, body, properties)
            .await
    }

    /// The URL without its password.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Consume a stage's queue on a channel of its own, with manual acks
    /// and at most `prefetch` unacknowledged messages (per consumer: quorum
    /// queues refuse global QoS).
    pub async fn consume(
        &self,
        route: Route,
        prefetch: u16,
        tag: &str,
    ) -> Result<(Channel, Consumer), BrokerError> {
        let fail = |e: lapin::Error| self.error(e.to_string());
        let channel = self.connection.create_channel().await.map_err(fail)?;
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await
            .map_err(fail)?;
        let consumer = channel
            .basic_consume(
                self.topology.queue(route).as_str().into(),
                tag.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(fail)?;
        Ok((channel, consumer))
    }

    /// Whether the connection is still open.
    pub fn is_connected(&self) -> bool {
        self.connection.status().connected()
    }

    /// Close the connection: whatever is still unacknowledged goes back
    /// to its queue at once.
    pub async fn close(&self) {
        // The publishing channel first: closing the connection under an
        // open channel makes lapin log a connection error for a clean stop.
        let _ = self.channel.close(200, "fanout stopping".into()).await;
        let _ = self.connection.close(200, "fanout stopping".into()).await;
    }

    /// Publish a persistent message straight to a stage's queue.
    pub async fn send_to(
        &self,
        route: Route,
        body: &[u8],
        headers: FieldTable,
    ) -> Result<(), BrokerError> {
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type(ShortString::from("application/json"))
            .with_headers(headers);
        self.publish_confirmed("", &self.topology.queue(route), true, body, properties)
            .await
    }

    /// Park a message until `due` (unix ms) in the delay tiers: body and
    /// headers kept, the due time added; waits for the confirm.
    /// The message comes back to the queue of `route`; `extra` headers are
    /// set on the way (attempt counts, rate-limit slots).
    pub async fn delay(
        &self,
        body: &[u8],
        original: &BasicProperties,
        due_ms: i64,
        route: Route,
        extra: &[(&str, AMQPValue)],
    ) -> Result<Duration, BrokerError> {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let tier = tier_for(Duration::from_millis(
            due_ms.saturating_sub(now_ms).max(0) as u64
        ));
        let mut headers = vec![
            (DUE_HEADER, AMQPValue::LongLongInt(due_ms)),
            (ROUTE_HEADER, AMQPValue::LongString(route.name().into())),
        ];
        headers.extend(extra.iter().cloned());
        let properties = with_headers(original, &headers);
        self.publish_confirmed("", &self.topology.delay(tier), true, body, properties)
            .await?;
        Ok(tier)
    }

    /// Put a message that cannot be processed on `fanout.dead`, body
    /// untouched, with why and where in its headers; waits for the confirm.
    /// `route` is where it was read from: `fanout dead replay` sends it back there.
    pub async fn dead_letter(
        &self,
        body: &[u8],
        original: &BasicProperties,
        route: Route,
        stage: &str,
        reason: &str,
    ) -> Result<(), BrokerError> {
        let mut properties = with_headers(
            original,
            &[
                (STAGE_HEADER, AMQPValue::LongString(stage.into())),
                (REASON_HEADER, AMQPValue::LongString(reason.into())),
                (ROUTE_HEADER, AMQPValue::LongString(route.name().into())),
            ],
        );
        if properties.content_type().is_none() {
            properties = properties.with_content_type("application/octet-stream".into());
        }
        self.publish_confirmed("", &self.topology.dead, true, body, properties)
            .await
    }
}

async fn durable_exchange(channel: &Channel, name: &str, kind: ExchangeKind) -> lapin::Result<()> {
    channel
        .exchange_declare(
            name.into(),
            kind,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
}

async fn declare(channel: &Channel, t: &Topology) -> lapin::Result<()> {
    durable_exchange(channel, &t.exchange, ExchangeKind::Direct).await?;
    durable_exchange(channel, &t.returns, ExchangeKind::Headers).await?;
    channel
        .queue_declare(
            t.dead.as_str().into(),
            QueueDeclareOptions::durable(),
            quorum(),
        )
        .await?;
    for route in Route::all() {
        let queue = t.queue(route);
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions::durable(),
                quorum(),
            )
            .await?;
        let mut args = FieldTable::default();
        args.insert("x-match".into(), AMQPValue::LongString("all".into()));
        args.insert(
            ROUTE_HEADER.into(),
            AMQPValue::LongString(route.name().into()),
        );
        channel
            .queue_bind(
                queue.as_str().into(),
                t.returns.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                args,
            )
            .await?;
    }
    for tier in DELAY_TIERS {
        let mut args = quorum();
        args.insert(
            "x-message-ttl".into(),
            AMQPValue::LongLongInt(tier.as_millis() as i64),
        );
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(t.returns.as_str().into()),
        );
        // At-least-once dead-lettering: a delayed message is never dropped
        // between the tier and the queue it returns to.
        args.insert(
            "x-dead-letter-strategy".into(),
            AMQPValue::LongString("at-least-once".into()),
        );
        args.insert(
            "x-overflow".into(),
            AMQPValue::LongString("reject-publish".into()),
        );
        channel
            .queue_declare(
                t.delay(tier).as_str().into(),
                QueueDeclareOptions::durable(),
                args,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::ChannelKind;

    #[test]
    fn a_wait_takes_the_largest_tier_that_does_not_overshoot() {
        let s = Duration::from_secs;
        assert_eq!(
            tier_for(Duration::from_millis(100)),
            Duration::from_millis(250)
        );
        assert_eq!(
            tier_for(Duration::from_millis(300)),
            Duration::from_millis(250)
        );
        assert_eq!(tier_for(s(1)), s(1));
        assert_eq!(tier_for(s(4)), s(1));
        assert_eq!(tier_for(s(5)), s(5));
        assert_eq!(tier_for(s(299)), s(120));
        assert_eq!(tier_for(s(86_400)), s(3600));
    }

    #[test]
    fn names_carry_the_prefix() {
        let t = Topology::new("blue.");
        assert_eq!(t.delay(Duration::from_secs(120)), "blue.fanout.delay.2m");
        assert_eq!(
            t.queues().len(),
            4 + ChannelKind::ALL.len() + DELAY_TIERS.len()
        );
        assert_eq!(t.queue(Route::Chains), "blue.fanout.chains");
        assert_eq!(
            t.queue(Route::Deliver(ChannelKind::Email)),
            "blue.fanout.deliver.email"
        );
        for route in Route::all() {
            assert_eq!(Route::parse(&route.name()), Some(route));
        }
        assert!(t.queues().iter().all(|q| q.starts_with("blue.fanout.")));
    }
}
