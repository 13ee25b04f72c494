//! `fanout worker`: consume jobs from RabbitMQ and deliver them.
//!
//! Each message on `fanout.jobs` is decoded (native JSON or Celery v2),
//! validated, rendered once and delivered to every target, with the
//! notification log (when `[store]` is set) keeping each delivery to one
//! send. A message is acked only once its outcome is durable: delivered
//! and recorded, or copied to `fanout.dead` with its reason and confirmed
//! by the broker. If even that fails it is handed back (nack, requeue).
//!
//! A Celery job whose `eta` (or `countdown`) lies ahead waits in the
//! broker's delay tiers, hop by hop, never in this process.
//!
//! This is the first stage of the worker: retries happen in the worker
//! (bounded by each destination's `max_attempts`); per-target delivery
//! queues retried through the delay tiers replace that.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::message::Delivery as AmqpMessage;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::broker::{headers_to_json, Broker, BrokerError};
use crate::config::{BrokerConfig, Config};
use crate::deliver::destinations::Destinations;
use crate::job::{celery, decode, validate, Inbound};
use crate::render::Charts;
use crate::store::Store;

/// How long in-flight jobs may finish after a shutdown signal.
pub const DRAIN: Duration = Duration::from_secs(30);

/// Why the worker could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("{0}")]
    Setup(String),
}

struct Worker {
    config: Config,
    broker: Broker,
    destinations: Destinations,
    charts: Charts,
    store: Option<Store>,
}

/// What becomes of one message.
enum Disposition {
    Ack,
    Dead {
        stage: &'static str,
        reason: String,
    },
    /// Not yet: wait in the delay tiers until this unix-ms time.
    Delay {
        due_ms: i64,
    },
}

/// Run until `shutdown` resolves, then drain for at most [`DRAIN`].
pub async fn run(
    config: Config,
    broker_config: &BrokerConfig,
    prefetch: u16,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WorkerError> {
    let broker = Broker::connect(broker_config).await?;
    let destinations = Destinations::build(&config, None).map_err(WorkerError::Setup)?;
    let charts = Charts::from_config(&config)
        .await
        .map_err(|e| WorkerError::Setup(format!("storage: {e}")))?;
    let store = match &config.store {
        Some(s) => Some(
            Store::open(&s.url)
                .await
                .map_err(|e| WorkerError::Setup(e.to_string()))?,
        ),
        None => None,
    };
    let tag = format!("fanout-{}", std::process::id());
    let mut consumer = broker.consume_jobs(prefetch, &tag).await?;
    info!(message = "Worker consuming.", queue = %broker.topology.jobs, prefetch);
    let worker = Arc::new(Worker {
        config,
        broker,
        destinations,
        charts,
        store,
    });

    let mut in_flight = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            next = consumer.next() => match next {
                Some(Ok(message)) => {
                    let worker = worker.clone();
                    in_flight.spawn(async move { worker.handle(message).await });
                }
                Some(Err(e)) => {
                    return Err(WorkerError::Broker(BrokerError { shown: worker.broker.shown().to_string(), message: e.to_string() }));
                }
                None => return Err(WorkerError::Setup("the broker closed the consumer".into())),
            },
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
        }
    }
    info!(
        message = "Shutting down; finishing jobs in flight.",
        jobs = in_flight.len()
    );
    // Whatever does not finish in time is never acked: the broker hands it
    // to another worker when this connection closes.
    let _ = tokio::time::timeout(DRAIN, async {
        while in_flight.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}

impl Worker {
    async fn handle(&self, message: AmqpMessage) {
        // Delayed and dead messages are first copied elsewhere (confirmed);
        // only then is the original acked. If the copy fails, hand it back.
        let moved = match self.process(&message).await {
            Disposition::Ack => Ok(()),
            Disposition::Delay { due_ms } => self
                .broker
                .delay(&message.data, &message.properties, due_ms)
                .await
                .map(|tier| {
                    info!(message = "Parked a job in a delay tier.", tier = %humantime::format_duration(tier), due_ms);
                }),
            Disposition::Dead { stage, reason } => {
                warn!(message = "Dead-lettering a message.", stage, %reason);
                self.broker
                    .dead_letter(&message.data, &message.properties, stage, &reason)
                    .await
            }
        };
        let settled = match moved {
            Ok(()) => message.ack(BasicAckOptions::default()).await,
            Err(e) => {
                warn!(message = "Could not move the message; handing it back.", error = %e);
                let requeue = BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                };
                message.nack(requeue).await
            }
        };
        if let Err(e) = settled {
            warn!(message = "Could not settle a message; the broker will redeliver it.", error = %e);
        }
    }

    async fn process(&self, message: &AmqpMessage) -> Disposition {
        let dead = |stage, reason: String| Disposition::Dead { stage, reason };
        let headers = message
            .properties
            .headers()
            .as_ref()
            .map(headers_to_json)
            .unwrap_or_default();
        let job = if headers.contains_key("task") {
            let content_type = message
                .properties
                .content_type()
                .as_ref()
                .map(|c| c.as_str().to_string());
            let encoding = message
                .properties
                .content_encoding()
                .as_ref()
                .map(|c| c.as_str().to_string());
            match celery::decode_celery(
                &headers,
                content_type.as_deref(),
                encoding.as_deref(),
                &message.data,
            ) {
                Ok(c) => {
                    let now = chrono::Utc::now();
                    if c.expires.is_some_and(|t| t < now) {
                        info!(message = "Dropped an expired Celery job.", job = %c.job.id, task = %c.task_id);
                        return Disposition::Ack;
                    }
                    if let Some(eta) = c
                        .eta
                        .filter(|t| *t > now + chrono::Duration::milliseconds(250))
                    {
                        return Disposition::Delay {
                            due_ms: eta.timestamp_millis(),
                        };
                    }
                    c.job
                }
                Err(e) => return dead("decode", e.to_string()),
            }
        } else {
            match decode(&message.data) {
                Ok(Inbound::Job(job)) => *job,
                Ok(Inbound::Signal(_)) => {
                    return dead(
                        "decode",
                        "signals act on escalations, which this version does not run yet".into(),
                    )
                }
                Err(e) => return dead("decode", e.to_string()),
            }
        };
        if let Err(e) = validate(&job, &self.config) {
            return dead("validate", e.to_string());
        }
        let id = job.id.clone();
        let outcomes =
            crate::send::deliver_job(&self.destinations, &self.charts, self.store.as_ref(), job)
                .await;
        let failed: Vec<String> = outcomes
            .iter()
            .filter_map(|o| {
                o.result.as_ref().err().map(|e| {
                    format!(
                        "{}: {} {}: {}",
                        o.destination,
                        if e.is_retryable() {
                            "retries exhausted"
                        } else {
                            "permanent"
                        },
                        e.reason,
                        e.message
                    )
                })
            })
            .collect();
        if failed.is_empty() {
            info!(message = "Job delivered.", job = %id, targets = outcomes.len());
            Disposition::Ack
        } else {
            dead("deliver", failed.join("; "))
        }
    }
}
