//! `fanout dead list|replay|purge`: look at the dead-letter queue, send its
//! messages back where they failed, or drop them.
//!
//! Listing reads without acking and closes its channel, so every message
//! stays. Replaying publishes each message (confirmed) to the queue its
//! `fanout-route` header names, with a fresh attempt budget, and only then
//! acks the dead copy: a crash mid-replay duplicates, never loses.

use lapin::options::{BasicAckOptions, BasicGetOptions, QueuePurgeOptions};
use lapin::types::{AMQPValue, FieldTable};
use serde::Serialize;

use super::{headers_to_json, Broker, BrokerError, Route, ROUTE_HEADER};

/// One dead letter, as `fanout dead list` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct DeadLetter {
    pub stage: String,
    pub reason: String,
    /// The queue it came from (`job`, `render`, `deliver.email`, …).
    pub route: String,
    pub bytes: usize,
    /// The start of the body, as text, for a glance.
    pub preview: String,
}

/// Headers that describe a past life, removed on replay.
const SPENT: &[&str] = &[
    super::STAGE_HEADER,
    super::REASON_HEADER,
    super::DUE_HEADER,
    super::ATTEMPT_HEADER,
    super::FIRST_HEADER,
    super::SLOT_HEADER,
    "x-death",
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-last-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
];

fn describe(message: &lapin::message::Delivery) -> DeadLetter {
    let headers = message
        .properties
        .headers()
        .as_ref()
        .map(headers_to_json)
        .unwrap_or_default();
    let text = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let preview: String = String::from_utf8_lossy(&message.data[..message.data.len().min(160)])
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    DeadLetter {
        stage: text(super::STAGE_HEADER),
        reason: text(super::REASON_HEADER),
        route: text(ROUTE_HEADER),
        bytes: message.data.len(),
        preview,
    }
}

impl Broker {
    /// Up to `limit` dead letters, oldest first; all stay in the queue.
    pub async fn dead_list(&self, limit: usize) -> Result<Vec<DeadLetter>, BrokerError> {
        let fail = |e: lapin::Error| self.error(e.to_string());
        // A channel of its own: closing it hands every read message back.
        let channel = self.connection.create_channel().await.map_err(fail)?;
        let mut out = Vec::new();
        while out.len() < limit {
            let got = channel
                .basic_get(
                    self.topology.dead.as_str().into(),
                    BasicGetOptions::default(),
                )
                .await
                .map_err(fail)?;
            let Some(got) = got else { break };
            out.push(describe(&got.delivery));
        }
        let _ = channel.close(200, "listed".into()).await;
        Ok(out)
    }

    /// Send up to `limit` dead letters back to their queues; returns how
    /// many went back and how many had no queue to go to (left dead).
    pub async fn dead_replay(&self, limit: usize) -> Result<(usize, usize), BrokerError> {
        let fail = |e: lapin::Error| self.error(e.to_string());
        let channel = self.connection.create_channel().await.map_err(fail)?;
        let (mut replayed, mut stuck) = (0, 0);
        while replayed + stuck < limit {
            let got = channel
                .basic_get(
                    self.topology.dead.as_str().into(),
                    BasicGetOptions::default(),
                )
                .await
                .map_err(fail)?;
            let Some(got) = got else { break };
            let message = got.delivery;
            let route = describe(&message).route;
            // Dead letters from before routes were recorded came from jobs.
            let Some(route) = (if route.is_empty() {
                Some(Route::Jobs)
            } else {
                Route::parse(&route)
            }) else {
                stuck += 1;
                continue;
            };
            let mut headers = FieldTable::default();
            if let Some(old) = message.properties.headers() {
                for (k, v) in old.inner() {
                    if !SPENT.contains(&k.as_str()) && k.as_str() != ROUTE_HEADER {
                        headers.insert(k.clone(), v.clone());
                    }
                }
            }
            headers.insert(
                "fanout-replayed".into(),
                AMQPValue::LongLongInt(chrono::Utc::now().timestamp_millis()),
            );
            let properties = message.properties.clone().with_headers(headers);
            self.publish_confirmed(
                "",
                &self.topology.queue(route),
                true,
                &message.data,
                properties,
            )
            .await?;
            message
                .ack(BasicAckOptions::default())
                .await
                .map_err(fail)?;
            replayed += 1;
        }
        // Messages read but not replayed go back to the dead queue.
        let _ = channel.close(200, "replayed".into()).await;
        Ok((replayed, stuck))
    }

    /// How many dead letters wait now.
    pub async fn dead_count(&self) -> Result<u32, BrokerError> {
        self.channel
            .queue_declare(
                self.topology.dead.as_str().into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map(|q| q.message_count())
            .map_err(|e| self.error(e.to_string()))
    }

    /// Drop every dead letter; returns how many there were.
    pub async fn dead_purge(&self) -> Result<u32, BrokerError> {
        self.channel
            .queue_purge(
                self.topology.dead.as_str().into(),
                QueuePurgeOptions::default(),
            )
            .await
            .map_err(|e| self.error(e.to_string()))
    }
}
