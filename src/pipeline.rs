//! The per-target pipeline: one delivery to one target, the same for
//! `fanout send` and the worker.
//!
//! One attempt ([`Pipeline::attempt`]) runs, in order:
//!
//! 1. **notification log**: sent already? then nothing is sent again;
//! 2. **gate**: a step planned before the group was acknowledged or
//!    resolved is not sent after it (a resolved notice is not a step);
//! 3. **rate**: the destination's limit gives the send a slot; a slot
//!    ahead means "later";
//! 4. **send**: the charts are loaded, the channel sends once;
//! 5. **record**: the log entry and the group's note of the send (the
//!    thread it opened), one write.
//!
//! A failure the destination's [`crate::retry::RetryPolicy`] retries,
//! like a slot ahead, comes back as [`Attempted::Later`]. The only
//! difference between the two callers is how "later" is spent:
//! [`Pipeline::deliver`] sleeps in this process (`fanout send`), the
//! worker parks the delivery in the broker's delay tiers.
//!
//! Without a store (a dry run) steps 1, 2, 3 and 5 have nothing to read
//! or keep: every delivery is sent, with no rate limit.

use std::future::Future;
use std::time::{Duration, Instant};

use chrono::Utc;
use tracing::{debug, info, warn};

use crate::actions::ActionLinks;
use crate::chain::group::{self, Gate, GroupState};
use crate::chain::RESOLVED_STEP;
use crate::delivery::{log_step, Delivery, Outcome, Reason, SendError, Sent};
use crate::destinations::{Destination, Destinations};
use crate::digest;
use crate::job::{Job, Target};
use crate::metrics::{ChannelLabels, DestinationLabels, Metrics};
use crate::rate::{Backlog, RateLimit, SlotTime};
use crate::store::{DeliveryKey, Store};

/// A delivery before its charts are loaded: what the pipeline reads to
/// decide whether and when to send, and how to load the rest.
pub trait Pending: Send {
    fn job(&self) -> &Job;
    fn target(&self) -> &Target;
    /// The escalation step ([`RESOLVED_STEP`] for a resolved notice).
    fn step(&self) -> usize;
    /// The chain's repeat round.
    fn round(&self) -> u32;
    /// How many charts have a PNG (the vendor messages it costs).
    fn images(&self) -> usize;
    /// The delivery a channel sends, its charts loaded.
    fn into_delivery(self) -> impl Future<Output = Delivery> + Send;
}

impl Pending for Delivery {
    fn job(&self) -> &Job {
        &self.job
    }
    fn target(&self) -> &Target {
        &self.target
    }
    fn step(&self) -> usize {
        self.step
    }
    fn round(&self) -> u32 {
        self.round
    }
    fn images(&self) -> usize {
        self.charts.iter().filter(|c| c.png.is_some()).count()
    }
    async fn into_delivery(self) -> Delivery {
        self
    }
}

/// What a delivery carries from one attempt to the next.
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
    /// The group's state, when the caller has just started the group's
    /// chain: nothing of it can be in the notification log, so neither
    /// needs reading again.
    pub known: Option<Option<GroupState>>,
}

impl Attempt {
    /// The first attempt, made now.
    pub fn first(enqueued_ms: i64) -> Self {
        Self {
            number: 1,
            first_ms: Utc::now().timestamp_millis(),
            enqueued_ms,
            slot_ms: None,
            progress: None,
            known: None,
        }
    }

    /// The attempt after waiting for [`Attempted::Later`]'s `next`.
    pub fn then(self, next: Next) -> Self {
        match next {
            Next::Slot(at) => Self {
                slot_ms: Some(at),
                known: None,
                ..self
            },
            Next::Retry { number, progress } => Self {
                number,
                slot_ms: None,
                progress,
                known: None,
                ..self
            },
        }
    }
}

/// Why the next attempt waits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// The rate-limit slot at this time (unix ms), held.
    Slot(i64),
    /// A retry: attempt `number`, resuming at `progress`; it takes a new
    /// rate-limit slot.
    Retry {
        number: u32,
        progress: Option<String>,
    },
}

/// What became of one attempt.
#[derive(Debug)]
pub enum Attempted {
    /// Sent now, and recorded (or said why not in a warning).
    Sent(Sent),
    /// The notification log says it was sent: its words.
    AlreadySent(String),
    /// The group's chain was stopped (acknowledged, resolved) since this
    /// step was planned: why.
    Stopped(String),
    /// Not now: try again at `due_ms` (unix ms).
    Later { due_ms: i64, next: Next },
    /// Failed for good: permanent, or the retry policy gave up.
    Failed {
        error: SendError,
        attempts: u32,
        /// The destination's channel, for the reason a dead letter gives.
        channel: &'static str,
    },
    /// No destination of that name in this config.
    UnknownDestination(String),
}

/// Everything the pipeline reads and keeps.
pub struct Pipeline<'a> {
    pub destinations: &'a Destinations,
    /// The notification log, the groups' state and the rate-limit slots;
    /// `None` for a dry run.
    pub store: Option<&'a Store>,
    /// Signs the action links put in every notification but a resolved
    /// notice, when configured.
    pub actions: Option<&'a ActionLinks>,
    pub metrics: Option<&'a Metrics>,
}

impl<'a> Pipeline<'a> {
    /// A pipeline with no store, no action links and no metrics: each
    /// delivery is sent and retried, nothing more.
    pub fn bare(destinations: &'a Destinations) -> Self {
        Self {
            destinations,
            store: None,
            actions: None,
            metrics: None,
        }
    }

    /// Deliver in this process (`fanout send`, which has no broker to
    /// park in): each "later" is slept, then attempted again, until the
    /// delivery is sent or fails for good.
    pub async fn deliver(&self, delivery: Delivery) -> Outcome {
        let started = Instant::now();
        let destination = delivery.destination().to_string();
        let channel = self
            .destinations
            .get(&destination)
            .map_or("?", |d| d.channel());
        let now = Utc::now().timestamp_millis();
        let mut attempt = Attempt::first(now);
        loop {
            let number = attempt.number;
            let result = match self.attempt(delivery.clone(), attempt.clone()).await {
                Attempted::Sent(sent) => Ok(sent),
                Attempted::AlreadySent(detail) => {
                    return Outcome {
                        destination,
                        channel,
                        attempts: 0,
                        elapsed: started.elapsed(),
                        result: Ok(Sent::new(format!("(notification log: {detail})"))),
                    }
                }
                Attempted::Stopped(why) => Ok(Sent::new(format!("(not sent: {why})"))),
                Attempted::Later { due_ms, next } => {
                    let wait = (due_ms - Utc::now().timestamp_millis()).max(0) as u64;
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    attempt = attempt.then(next);
                    continue;
                }
                Attempted::Failed { error, .. } => Err(error),
                Attempted::UnknownDestination(name) => Err(SendError::permanent(
                    Reason::Client,
                    format!("unknown destination {name:?}"),
                )),
            };
            return Outcome {
                destination,
                channel,
                attempts: number,
                elapsed: started.elapsed(),
                result,
            };
        }
    }

    /// One attempt at one delivery (see the module's steps).
    pub async fn attempt(&self, pending: impl Pending, attempt: Attempt) -> Attempted {
        let name = pending.target().destination.clone();
        let Some(destination) = self.destinations.get(&name) else {
            return Attempted::UnknownDestination(name);
        };
        let channel = destination.channel();
        let resolved_notice = pending.step() == RESOLVED_STEP;
        let key = DeliveryKey {
            job_id: pending.job().id.clone(),
            step: log_step(pending.step(), pending.round()),
            destination: name.clone(),
        };
        let group_id = pending.job().alert.group_id.clone();

        // 1. Sent already? And the group's state: one read for both.
        let (sent, state) = match (self.store, attempt.known) {
            (None, _) => (None, None),
            (Some(_), Some(state)) => (None, state),
            (Some(store), None) => {
                match store
                    .lookup::<GroupState>(&key, group::KIND, &group_id)
                    .await
                {
                    Ok(found) => found,
                    // Sending twice is better than not paging at all.
                    Err(e) => {
                        warn!(message = "Store unreadable; sending anyway.", error = %e);
                        (None, None)
                    }
                }
            }
        };
        if let Some(detail) = sent {
            info!(message = "Already sent; not sending again.", job = %key.job_id, destination = %name);
            self.count(channel, &name, "duplicate");
            return Attempted::AlreadySent(detail);
        }

        // 2. The gate.
        if !resolved_notice {
            if let Gate::Stop(why) = group::gate(state.as_ref(), &key.job_id, Utc::now()) {
                info!(message = "Not sending: the chain was stopped.", job = %key.job_id, destination = %name, %why);
                self.count(channel, &name, "stopped");
                return Attempted::Stopped(why);
            }
        }
        let thread_key = destination.thread_key(pending.target());
        let thread = state
            .filter(|s| s.chain == key.job_id)
            .and_then(|mut s| s.threads.remove(&thread_key));

        // 3. The rate limit: the slot this send keeps, if any. Past the
        // destination's `digest_after`, the notification is folded into
        // the digest instead (see `digest`).
        let me = format!("{}/{}/{}", key.job_id, key.step, key.destination);
        let mut slot = None;
        let mut folded_in = None;
        if let (Some(store), Some(rate)) = (self.store, destination.rate()) {
            let cost = destination.messages(pending.images(), pending.target());
            let scope = destination.rate_scope(pending.target());
            // A carrier (this attempt or a retry of it) sends the digest.
            if let Backlog::Digest { .. } = destination.backlog() {
                folded_in = digest::carried(store, &name, &me).await.unwrap_or_else(|e| {
                    warn!(message = "Digest unreadable; sending this notification alone.", destination = %name, error = %e);
                    None
                });
            }
            let at = match (attempt.slot_ms, destination.backlog()) {
                (Some(at), _) => at,
                (None, Backlog::Digest { .. }) if folded_in.is_some() => {
                    reserve(store, &scope, rate, cost, &name).await
                }
                (None, Backlog::Digest { after }) => {
                    match reserve_within(store, &scope, rate, cost, &name, after).await {
                        Some(at) => at,
                        None => {
                            let entry = digest::Folded::of(pending.job());
                            match digest::fold(store, &name, &me, entry).await {
                                Ok(true) => {
                                    info!(message = "Backlog past digest_after: this notification carries the digest.", delivery = %me, destination = %name);
                                    self.count(channel, &name, "folded");
                                    let at = reserve(store, &scope, rate, cost, &name).await;
                                    return self.rate_limited(&name, at);
                                }
                                Ok(false) => {
                                    let sent = Sent::new(digest::FOLDED);
                                    let noted = Noted {
                                        target: pending.target().clone(),
                                        thread_key: destination.thread_key(pending.target()),
                                        resolved_notice,
                                    };
                                    record(store, &key, &group_id, noted, &sent).await;
                                    info!(message = "Folded into the digest.", delivery = %me, destination = %name);
                                    self.count(channel, &name, "folded");
                                    return Attempted::Sent(sent);
                                }
                                Err(e) => {
                                    warn!(message = "Digest unwritable; queueing this notification.", destination = %name, error = %e);
                                    reserve(store, &scope, rate, cost, &name).await
                                }
                            }
                        }
                    }
                }
                (None, Backlog::Queue) => reserve(store, &scope, rate, cost, &name).await,
            };
            if SlotTime::of(at, Utc::now().timestamp_millis()) == SlotTime::Ahead {
                return self.rate_limited(&name, at);
            }
            slot = Some((store, scope, rate, cost, at));
        }

        // 4. Send.
        let actions = match (self.actions, resolved_notice) {
            (Some(links), false) => Some(links.urls(&group_id, Utc::now())),
            _ => None,
        };
        let mut delivery = pending.into_delivery().await;
        delivery.attempt = attempt.number;
        delivery.thread = thread;
        delivery.progress = attempt.progress;
        if actions.is_some() {
            delivery.actions = actions;
        }
        // The digest's carrier sends the summary in place of its own
        // notification (alone, it is just late).
        let carried = folded_in;
        if let Some(entries) = carried.as_ref().filter(|e| e.len() > 1) {
            info!(message = "Sending the digest.", delivery = %me, destination = %name, alerts = entries.len());
            delivery = digest::summary(&delivery, entries);
        }
        // Loading the charts, or a backlog, may have made the send late: a
        // missed slot is given up for a new one rather than crowding the
        // next. A sender too busy to keep even a fresh slot sends after a
        // few tries.
        if let Some((store, scope, rate, cost, mut at)) = slot {
            let mut missed = 0;
            loop {
                match SlotTime::of(at, Utc::now().timestamp_millis()) {
                    SlotTime::Ahead => return self.rate_limited(&name, at),
                    SlotTime::Soon(wait) => tokio::time::sleep(wait).await,
                    SlotTime::Now => break,
                    SlotTime::Missed if missed == 3 => break,
                    SlotTime::Missed => {
                        missed += 1;
                        debug!(message = "Rate-limit slot missed; taking a new one.", destination = %name, late_ms = Utc::now().timestamp_millis() - at);
                        at = reserve(store, &scope, rate, cost, &name).await;
                    }
                }
            }
        }
        // With "Delivered." below, this brackets the one window in which a
        // crash can cause a duplicate: sent, not yet recorded.
        let id = me;
        debug!(message = "Sending.", delivery = %id, attempt = attempt.number);
        let target = delivery.target.clone();
        let result = destination.send(&delivery).await;
        drop(delivery);
        // The carrier is done with what it sent, or (failed for good)
        // hands the entries on to the next fold.
        if let (Some(store), Some(entries)) = (self.store, &carried) {
            let retry_later = matches!(&result, Err(e) if e.is_retryable());
            if !retry_later {
                let sent = if result.is_ok() { entries.len() } else { 0 };
                if let Err(e) = digest::done(store, &name, &id, sent).await {
                    warn!(message = "Digest sent, but not cleared: its alerts may be listed again.", destination = %name, error = %e);
                }
            }
        }

        // 5. Record, or decide what comes next.
        match result {
            Ok(sent) => {
                if let Some(store) = self.store {
                    let noted = Noted {
                        target,
                        thread_key,
                        resolved_notice,
                    };
                    record(store, &key, &group_id, noted, &sent).await;
                }
                info!(message = "Delivered.", delivery = %id, channel, attempt = attempt.number, detail = %sent.detail);
                if let Some(metrics) = self.metrics {
                    metrics.delivery(channel, &name, "delivered");
                    let latency = (Utc::now().timestamp_millis() - attempt.enqueued_ms).max(0);
                    metrics
                        .delivery_seconds
                        .get_or_create(&ChannelLabels {
                            channel: channel.to_string(),
                        })
                        .observe(latency as f64 / 1000.0);
                }
                Attempted::Sent(sent)
            }
            Err(error) => self.failed(destination, &key, attempt.number, attempt.first_ms, error),
        }
    }

    /// A failed send: again later, within the destination's retry policy,
    /// or for good.
    fn failed(
        &self,
        destination: &Destination,
        key: &DeliveryKey,
        number: u32,
        first_ms: i64,
        error: SendError,
    ) -> Attempted {
        let (name, channel) = (destination.name(), destination.channel());
        let age = Duration::from_millis((Utc::now().timestamp_millis() - first_ms).max(0) as u64);
        let next = destination.retry().next_delay_within(number, age, &error);
        warn!(
            message = "Delivery failed.", job = %key.job_id, destination = %name, channel, attempt = number,
            retryable = error.is_retryable(), will_retry = next.is_some(), reason = %error.reason, %error
        );
        let Some(wait) = next else {
            self.count(channel, name, "dead");
            return Attempted::Failed {
                error,
                attempts: number,
                channel,
            };
        };
        self.count(channel, name, "retried");
        if let Some(metrics) = self.metrics {
            metrics
                .retries
                .get_or_create(&DestinationLabels {
                    destination: name.to_string(),
                })
                .inc();
        }
        // The wait counts from the answer, not from when we began: a
        // `Retry-After: 1` means one second after it was said.
        Attempted::Later {
            due_ms: Utc::now().timestamp_millis() + wait.as_millis() as i64,
            next: Next::Retry {
                number: number + 1,
                progress: error.progress,
            },
        }
    }

    /// Wait for the slot at `at`, holding it.
    fn rate_limited(&self, name: &str, at: i64) -> Attempted {
        if let Some(metrics) = self.metrics {
            metrics
                .rate_limited
                .get_or_create(&DestinationLabels {
                    destination: name.to_string(),
                })
                .inc();
        }
        Attempted::Later {
            due_ms: at,
            next: Next::Slot(at),
        }
    }

    fn count(&self, channel: &str, destination: &str, outcome: &'static str) {
        if let Some(metrics) = self.metrics {
            metrics.delivery(channel, destination, outcome);
        }
    }
}

/// What the group's state notes of a send.
struct Noted {
    target: Target,
    /// Where the thread the send opened is kept.
    thread_key: String,
    /// A resolved notice is logged, not noted: the group is over.
    resolved_notice: bool,
}

/// The log entry and, for a step, the group's note of it (who was
/// notified, the thread the send opened): one write.
async fn record(store: &Store, key: &DeliveryKey, group_id: &str, noted: Noted, sent: &Sent) {
    let Noted {
        target,
        thread_key,
        resolved_notice,
    } = noted;
    let recorded = if resolved_notice {
        store.record_sent(key, &sent.detail).await
    } else {
        let (chain, step, at) = (key.job_id.clone(), key.step, Utc::now());
        let opened = sent.thread.clone();
        let what = if sent.detail == digest::FOLDED {
            "folded into the digest of"
        } else {
            "sent to"
        };
        store
            .record_sent_and_update(key, &sent.detail, group::KIND, group_id, move |s| {
                let opened = opened.as_deref().map(|t| (thread_key.as_str(), t));
                let new = group::note_sent(s, &chain, &target, step, what, opened, at);
                (new, ())
            })
            .await
    };
    if let Err(e) = recorded {
        warn!(message = "Sent, but not recorded: a retry may send it again, and the group's resolved notice may miss this destination.", job = %key.job_id, destination = %key.destination, group = %group_id, error = %e);
    }
}

/// A new slot in `scope`'s limit, counted from now. An unreadable store
/// sends now rather than not at all.
async fn reserve(store: &Store, scope: &str, rate: RateLimit, cost: u32, name: &str) -> i64 {
    reserve_within(store, scope, rate, cost, name, Duration::MAX)
        .await
        .unwrap_or_else(|| Utc::now().timestamp_millis())
}

/// [`reserve`], but only a slot at most `within` ahead: `None` (nothing
/// reserved) when the backlog is longer. An unreadable store sends now.
async fn reserve_within(
    store: &Store,
    scope: &str,
    rate: RateLimit,
    cost: u32,
    name: &str,
    within: Duration,
) -> Option<i64> {
    let now = Utc::now().timestamp_millis();
    let within = i64::try_from(within.as_millis()).unwrap_or(i64::MAX);
    match store
        .reserve_slot_within(scope, rate, cost, now, within)
        .await
    {
        Ok(at) => at,
        Err(e) => {
            warn!(message = "Rate limit unreadable; sending now.", destination = %name, error = %e);
            Some(now)
        }
    }
}
