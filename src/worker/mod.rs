//! `fanout worker`: the pipeline on RabbitMQ.
//!
//! ```text
//! fanout.jobs ─[escalate]─▶ fanout.render ─[render]─▶ fanout.deliver.<channel> ─[deliver]─▶ vendor
//!        │ not yet due / retry: fanout.delay.<tier> ─▶ back where it came from
//!        └ malformed, invalid, permanent failure, attempts spent: fanout.dead
//! ```
//!
//! Each stage reads one message and says what becomes of it
//! ([`Disposition`]); this module carries that out. A message is acked only
//! once its outcome is durable: delivered and recorded, or every message it
//! turned into (next stage, delay, dead letter) confirmed by the broker.
//! Otherwise it is handed back (nack, requeue), and the notification log
//! keeps a second run from sending twice.
//!
//! The worker reconnects with backoff when the broker goes away; work in
//! flight on the lost connection is redelivered by the broker. On shutdown
//! it stops consuming, hands back what it had not started, finishes what
//! it had for at most [`DRAIN`], and closes the connection.

pub mod deliver;
pub mod escalate;
pub mod message;
pub mod notify;
pub mod pool;
pub mod render;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use lapin::message::Delivery as AmqpMessage;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicNackOptions};
use lapin::types::{AMQPValue, FieldTable};
use serde_json::{Map, Value};
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::broker::{headers_to_json, Broker, BrokerError, Route, DUE_HEADER};
use crate::config::{BrokerConfig, Config};
use crate::destinations::Destinations;
use crate::metrics::Metrics;
use crate::render::Charts;
use crate::store::Store;
use pool::{Pool, Stage};

/// A message this close to its due time (ms) is held until then rather
/// than sent through the shortest delay tier again: at most that tier's
/// length, so the consumer's prefetch is never held long.
const HOLD_MS: i64 = 250;

/// How long in-flight messages may finish after a shutdown signal.
pub const DRAIN: Duration = Duration::from_secs(30);

pub use crate::broker::ENQUEUED_HEADER;

/// Where the worker keeps its notification log when `[store]` is not set.
pub const DEFAULT_STORE: &str = "sqlite://fanout-state.sqlite";

/// Why the worker could not start.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// A setting that cannot work (exit status 2).
    #[error("{0}")]
    Setup(String),
    /// Shut down while waiting for a dependency to come up.
    #[error("stopped before the worker started")]
    Stopped,
}

/// The first wait between tries of a dependency that does not answer;
/// it doubles up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Try `connect` until it answers. A dependency that is not up yet (the
/// broker or the store, when the worker starts first under compose or
/// Kubernetes) is waited for, not a reason to exit: each failed try is
/// one warning naming `what`, the error and `hint`, and the next comes
/// after a backoff from 1 s to 30 s. `None` when `shutdown` comes first.
pub async fn until_up<T, E, F>(
    what: &str,
    hint: &str,
    mut connect: impl FnMut() -> F,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Option<T>
where
    E: std::fmt::Display,
    F: Future<Output = Result<T, E>>,
{
    let mut backoff = RETRY_FIRST;
    let mut attempt = 1u32;
    loop {
        let result = tokio::select! {
            _ = shutdown.as_mut() => return None,
            r = connect() => r,
        };
        match result {
            Ok(up) => {
                if attempt > 1 {
                    info!(message = "Dependency is up.", what, attempts = attempt);
                }
                return Some(up);
            }
            Err(e) => {
                warn!(message = "Dependency not reachable; retrying.", what, attempt, error = %e, retry_in_secs = backoff.as_secs_f64(), hint);
            }
        }
        tokio::select! {
            _ = shutdown.as_mut() => return None,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(RETRY_MAX);
        attempt += 1;
    }
}

/// Where in the flow a message failed for good: its dead letter's
/// `x-fanout-stage` header and the `stage` label of
/// `fanout_dead_letters_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailedAt {
    /// Not a job or signal fanout can read.
    Decode,
    /// Read, but against the contract or the configured destinations.
    Validate,
    /// A chain's cursor that cannot be read.
    Escalate,
    /// A render order that cannot be read.
    Render,
    /// A delivery that failed for good, or cannot be read.
    Deliver,
}

impl FailedAt {
    pub fn name(self) -> &'static str {
        match self {
            FailedAt::Decode => "decode",
            FailedAt::Validate => "validate",
            FailedAt::Escalate => "escalate",
            FailedAt::Render => "render",
            FailedAt::Deliver => "deliver",
        }
    }
}

/// What every stage reads from: the config and everything built from it.
pub struct Context {
    pub config: Config,
    pub pool: Pool,
    pub destinations: Destinations,
    pub charts: Charts,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    /// Signs the action links put in every notification, when configured.
    pub actions: Option<crate::actions::ActionLinks>,
}

impl Context {
    /// The per-target pipeline over this worker's destinations, store,
    /// action links and metrics.
    pub fn pipeline(&self) -> crate::pipeline::Pipeline<'_> {
        crate::pipeline::Pipeline {
            destinations: &self.destinations,
            store: Some(&self.store),
            actions: self.actions.as_ref(),
            metrics: Some(&self.metrics),
        }
    }
}

/// A message to publish to a stage's queue, now or (through the delay
/// tiers) at `due_ms`.
pub struct Outgoing {
    pub route: Route,
    pub body: Vec<u8>,
    pub headers: FieldTable,
    pub due_ms: Option<i64>,
    /// To `fanout.dead` instead, as if it had failed in `route`:
    /// (stage, metrics label, reason).
    pub dead: Option<(FailedAt, String, String)>,
}

impl Outgoing {
    /// For the queue of `route` at once; `enqueued` (unix ms) travels on
    /// for the latency histogram.
    pub fn now(route: Route, body: Vec<u8>, enqueued: i64) -> Self {
        Self {
            route,
            body,
            headers: enqueued_header(enqueued),
            due_ms: None,
            dead: None,
        }
    }

    /// A message that failed for good before it was ever queued (a first
    /// attempt made by the stage that planned it): a dead letter of `route`.
    pub fn dead(
        route: Route,
        body: Vec<u8>,
        stage: FailedAt,
        label: String,
        reason: String,
    ) -> Self {
        Self {
            route,
            body,
            headers: FieldTable::default(),
            due_ms: None,
            dead: Some((stage, label, reason)),
        }
    }

    /// For the queue of `route` when `due_ms` has come.
    pub fn at(route: Route, body: Vec<u8>, enqueued: i64, due_ms: i64) -> Self {
        Self {
            due_ms: Some(due_ms),
            ..Self::now(route, body, enqueued)
        }
    }
}

/// What becomes of one message.
pub enum Disposition {
    /// Finished: ack.
    Done,
    /// Publish these (confirmed), then ack.
    Forward(Vec<Outgoing>),
    /// Not yet: wait in the delay tiers until `due_ms`, then come back to
    /// the same queue with `headers` set.
    Later {
        due_ms: i64,
        headers: Vec<(&'static str, AMQPValue)>,
    },
    /// Copy to `fanout.dead` with the reason (confirmed), then ack.
    Dead {
        stage: FailedAt,
        /// A bounded label for metrics.
        label: String,
        reason: String,
    },
}

impl Disposition {
    pub fn dead(stage: FailedAt, label: impl Into<String>, reason: impl Into<String>) -> Self {
        Disposition::Dead {
            stage,
            label: label.into(),
            reason: reason.into(),
        }
    }

    pub fn later(due_ms: i64) -> Self {
        Disposition::Later {
            due_ms,
            headers: Vec::new(),
        }
    }
}

/// A message's headers as JSON.
pub fn headers_of(message: &AmqpMessage) -> Map<String, Value> {
    message
        .properties
        .headers()
        .as_ref()
        .map(headers_to_json)
        .unwrap_or_default()
}

fn enqueued_header(ms: i64) -> FieldTable {
    let mut headers = FieldTable::default();
    headers.insert(ENQUEUED_HEADER.into(), AMQPValue::LongLongInt(ms));
    headers
}

impl Context {
    /// Build everything the pool's stages need. Chromium starts at the
    /// first render, so delivery-only pools never start it.
    /// A store that does not answer yet is waited for ([`until_up`]);
    /// `shutdown` ends that wait with [`WorkerError::Stopped`].
    pub async fn build(
        config: Config,
        pool: Pool,
        metrics: Arc<Metrics>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<Self, WorkerError> {
        let destinations = Destinations::build(&config, None).map_err(WorkerError::Setup)?;
        let charts = Charts::new(
            &config.render,
            config.storage.as_ref(),
            config.http.public_url.as_ref(),
        )
        .await
        .map_err(|e| WorkerError::Setup(format!("storage: {e}")))?;
        let url = match &config.store {
            Some(s) => s.url.clone(),
            None => {
                info!(
                    message =
                        "No [store] set; keeping the notification log in the working directory.",
                    url = DEFAULT_STORE
                );
                crate::secret::Secret::new(DEFAULT_STORE.to_string())
            }
        };
        let namespace = config.broker.as_ref().map_or("", |b| b.prefix.as_str());
        tokio::pin!(shutdown);
        let store = until_up(
            "store",
            "is [store] url right, and the store (Redis, or the SQLite file's directory) up and writable?",
            || Store::open_in(&url, namespace),
            &mut shutdown,
        )
        .await
        .ok_or(WorkerError::Stopped)?;
        let actions = crate::actions::ActionLinks::from_config(&config);
        Ok(Self {
            config,
            pool,
            destinations,
            charts,
            store,
            metrics,
            actions,
        })
    }

    /// The queues this pool consumes.
    fn routes(&self) -> Vec<Route> {
        let mut routes = Vec::new();
        if self.pool.runs(Stage::Escalate) {
            routes.push(Route::Jobs);
            routes.push(Route::Chains);
        }
        if self.pool.runs(Stage::Render) {
            routes.push(Route::Render);
        }
        if self.pool.runs(Stage::Deliver) {
            routes.extend(self.pool.channels.iter().map(|k| Route::Deliver(*k)));
        }
        routes
    }
}

/// Run until `shutdown` resolves, reconnecting whenever the broker goes
/// away; `ready` is true while connected and consuming.
pub async fn run(
    ctx: Context,
    broker_config: &BrokerConfig,
    ready: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WorkerError> {
    let ctx = Arc::new(ctx);
    let slots = Arc::new(Semaphore::new(ctx.pool.concurrency));
    let tag = format!("fanout-{}", std::process::id());
    tokio::pin!(shutdown);
    let hint = "is RabbitMQ up at [broker] url, with that user, password and vhost? The worker keeps trying; /readyz answers 503 meanwhile";
    loop {
        // At start as after a loss: a broker that is not up yet is waited
        // for (Celery's workers do the same), never a reason to exit.
        let Some(broker) = until_up(
            "broker",
            hint,
            || Broker::connect(broker_config),
            &mut shutdown,
        )
        .await
        else {
            return Ok(());
        };
        let broker = Arc::new(broker);
        let ended = consume(&ctx, &broker, &slots, &tag, &ready, &mut shutdown).await;
        ready.store(false, Ordering::SeqCst);
        ctx.metrics.connected.set(0);
        match ended {
            Ok(channels) => {
                drain(&ctx, &slots).await;
                // Each channel closed in turn, then the connection: what
                // is still unacked goes back to its queue now, and a clean
                // stop logs no connection error.
                for channel in channels {
                    let _ = channel.close(200, "fanout stopping".into()).await;
                }
                broker.close().await;
                return Ok(());
            }
            Err(e) => {
                warn!(message = "Lost the broker; reconnecting. Unacked messages will be redelivered.", error = %e);
            }
        }
    }
}

/// Let what is running finish, for at most [`DRAIN`].
async fn drain(ctx: &Context, slots: &Semaphore) {
    info!(
        message = "Shutting down; finishing messages in flight.",
        in_flight = ctx.pool.concurrency - slots.available_permits()
    );
    // Every running message holds a permit: all permits back = all done.
    let drained =
        tokio::time::timeout(DRAIN, slots.acquire_many(ctx.pool.concurrency as u32)).await;
    if drained.is_err() {
        warn!(message = "Grace period over; the broker gets the rest back.");
    }
}

/// Consume on one connection until shutdown (`Ok`, with the consuming
/// channels, still open so the messages in flight can be acked) or until
/// the connection is lost.
async fn consume(
    ctx: &Arc<Context>,
    broker: &Arc<Broker>,
    slots: &Arc<Semaphore>,
    tag: &str,
    ready: &AtomicBool,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Result<Vec<lapin::Channel>, BrokerError> {
    let mut channels = Vec::new();
    let mut streams = Vec::new();
    for route in ctx.routes() {
        let (channel, consumer) = broker.consume(route, ctx.pool.prefetch, tag).await?;
        channels.push(channel);
        streams.push(consumer.map(move |m| (route, m)).boxed());
    }
    let mut merged = futures::stream::select_all(streams);
    ready.store(true, Ordering::SeqCst);
    ctx.metrics.connected.set(1);
    info!(message = "Worker consuming.", queues = ?ctx.routes().iter().map(|r| broker.topology.queue(*r)).collect::<Vec<_>>(), prefetch = ctx.pool.prefetch, concurrency = ctx.pool.concurrency);
    loop {
        let permit = tokio::select! {
            _ = shutdown.as_mut() => break,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let next = tokio::select! {
            _ = shutdown.as_mut() => break,
            next = merged.next() => next,
        };
        match next {
            Some((route, Ok(message))) => {
                let (ctx, broker) = (ctx.clone(), broker.clone());
                tokio::spawn(async move {
                    handle(&ctx, &broker, route, message).await;
                    drop(permit);
                });
            }
            Some((_, Err(e))) => return Err(broker_error(broker, e)),
            None => return Err(broker_error(broker, "the broker closed the consumers")),
        }
    }
    // Stop deliveries, then hand back what arrived but was not started.
    for channel in &channels {
        let _ = channel
            .basic_cancel(tag.into(), BasicCancelOptions::default())
            .await;
    }
    let mut handed_back = 0;
    while let Some(Some((_, Ok(message)))) = merged.next().now_or_never() {
        let _ = message.nack(requeue()).await;
        handed_back += 1;
    }
    if handed_back > 0 {
        info!(
            message = "Handed back messages not yet started.",
            count = handed_back
        );
    }
    Ok(channels)
}

fn broker_error(broker: &Broker, e: impl std::fmt::Display) -> BrokerError {
    BrokerError {
        shown: broker.shown().to_string(),
        message: e.to_string(),
    }
}

fn requeue() -> BasicNackOptions {
    BasicNackOptions {
        requeue: true,
        ..BasicNackOptions::default()
    }
}

async fn handle(ctx: &Context, broker: &Broker, route: Route, message: AmqpMessage) {
    ctx.metrics.in_flight.inc();
    let now = chrono::Utc::now().timestamp_millis();
    let mut due = headers_of(&message)
        .get(DUE_HEADER)
        .and_then(Value::as_i64)
        .filter(|due| *due > now);
    // The last stretch of a wait is waited here, not in another tier
    // hop: a hop is a whole tier (250 ms) late at worst, a sleep is on
    // time. Never early: a message is handled at its due time, not before.
    if let Some(left) = due.map(|d| d - now).filter(|left| *left <= HOLD_MS) {
        tokio::time::sleep(Duration::from_millis(left as u64)).await;
        due = None;
    }
    let disposition = match (due, route) {
        // Still early: one more hop through the tiers.
        (Some(due_ms), _) => Disposition::later(due_ms),
        (None, Route::Jobs) => escalate::handle(ctx, &message).await,
        (None, Route::Chains) => escalate::handle_step(ctx, &message).await,
        (None, Route::Render) => render::handle(ctx, &message).await,
        (None, Route::Deliver(_)) => deliver::handle(ctx, &message).await,
    };
    settle(ctx, broker, route, &message, disposition).await;
    ctx.metrics.in_flight.dec();
}

/// Carry out a disposition: publish what it asks for, then ack; if any
/// publish fails, hand the message back instead.
async fn settle(
    ctx: &Context,
    broker: &Broker,
    route: Route,
    message: &AmqpMessage,
    disposition: Disposition,
) {
    let moved = match disposition {
        Disposition::Done => Ok(()),
        Disposition::Forward(outgoing) => {
            let sends = outgoing.into_iter().map(|o| async move {
                if let Some((stage, label, reason)) = o.dead {
                    let stage = stage.name();
                    warn!(message = "Dead-lettering a message.", stage, %reason);
                    ctx.metrics.dead(stage, label);
                    let properties = lapin::BasicProperties::default()
                        .with_content_type("application/json".into());
                    return broker
                        .dead_letter(&o.body, &properties, o.route, stage, &reason)
                        .await;
                }
                match o.due_ms {
                    None => broker.send_to(o.route, &o.body, o.headers).await,
                    Some(due_ms) => {
                        let properties = lapin::BasicProperties::default()
                            .with_content_type("application/json".into())
                            .with_headers(o.headers);
                        broker
                            .delay(&o.body, &properties, due_ms, o.route, &[])
                            .await
                            .map(drop)
                    }
                }
            });
            futures::future::join_all(sends)
                .await
                .into_iter()
                .collect::<Result<Vec<()>, _>>()
                .map(drop)
        }
        Disposition::Later { due_ms, headers } => broker
            .delay(&message.data, &message.properties, due_ms, route, &headers)
            .await
            .map(|tier| {
                info!(message = "Parked in a delay tier.", route = %route.name(), tier = %humantime::format_duration(tier), due_ms);
            }),
        Disposition::Dead {
            stage,
            label,
            reason,
        } => {
            let stage = stage.name();
            warn!(message = "Dead-lettering a message.", stage, %reason);
            ctx.metrics.dead(stage, label);
            broker
                .dead_letter(&message.data, &message.properties, route, stage, &reason)
                .await
        }
    };
    let settled = match moved {
        Ok(()) => message.ack(BasicAckOptions::default()).await,
        Err(e) => {
            warn!(message = "Could not pass the message on; handing it back.", error = %e);
            // Not at once: whatever failed (the broker, the store) gets a
            // moment before the message comes round again.
            tokio::time::sleep(Duration::from_millis(200)).await;
            message.nack(requeue()).await
        }
    };
    if let Err(e) = settled {
        warn!(message = "Could not settle a message; the broker will redeliver it.", error = %e);
    }
}
