//! The `escalate` stage: jobs and signals (`fanout.jobs`), and the steps of
//! running chains (`fanout.chains`).
//!
//! A job is decoded, validated, judged for suppression, then claims its
//! alert group: the first firing job starts the group's chain, later ones
//! join it (counted, not sent) until the group is resolved. A chain step
//! reads the group's state first — acknowledged or resolved stops it,
//! silenced postpones it — then runs its notify steps (to `fanout.render`
//! when the job has charts, else straight to delivery messages) and parks
//! the cursor in the delay tiers for its next wait. A signal changes the
//! group's state; a resolve sends the "resolved" notice to everyone the
//! chain notified.

use chrono::{DateTime, Utc};
use lapin::message::Delivery as AmqpMessage;
use serde_json::Value;
use tracing::{info, warn};

use super::{headers_of, notify, Context, Disposition, FailedAt, Outgoing};
use crate::broker::Route;
use crate::chain::group::{self, Applied, Claim, Gate, GroupState, Scheduled};
use crate::chain::{self, Cursor, Then};
use crate::job::{celery, decode, Inbound, Job, Signal, SignalKind, Status};
use crate::metrics::{ScopeLabels, SignalLabels};
use crate::store::StoreError;
use crate::suppress::Verdict;
use crate::validate::validate;

/// A silenced chain looks again at least this often, so an `unsilence`
/// takes effect within it.
const SILENCE_RECHECK: chrono::Duration = chrono::Duration::seconds(60);

/// When the store does not answer, the message waits this long and comes
/// back (nothing is decided without the group's state).
const STORE_RETRY_MS: i64 = 5_000;

pub async fn handle(ctx: &Context, message: &AmqpMessage) -> Disposition {
    let headers = headers_of(message);
    let content_type = message
        .properties
        .content_type()
        .as_ref()
        .map(|c| c.as_str().to_string());
    let job = if celery::is_celery(&headers, content_type.as_deref()) {
        match from_celery(ctx, &headers, content_type.as_deref(), message) {
            Ok(job) => job,
            Err(disposition) => return disposition,
        }
    } else {
        match decode(&message.data) {
            Ok(Inbound::Job(job)) => *job,
            Ok(Inbound::Signal(signal)) => return apply_signal(ctx, signal).await,
            // Celery's protocol 1 names its task in the body, not the
            // headers: told apart only when the native reading fails.
            Err(_) if celery::is_protocol_1(&message.data) => {
                match from_celery(ctx, &headers, content_type.as_deref(), message) {
                    Ok(job) => job,
                    Err(disposition) => return disposition,
                }
            }
            Err(e) => return Disposition::dead(FailedAt::Decode, "malformed", e.to_string()),
        }
    };
    if let Err(e) = validate(&job, &ctx.config) {
        return Disposition::dead(FailedAt::Validate, "invalid", e.to_string());
    }
    let enqueued = headers
        .get(super::ENQUEUED_HEADER)
        .and_then(Value::as_i64)
        .unwrap_or_else(|| Utc::now().timestamp_millis());
    // When the producer stamped it: the chain's first wait counts from then.
    let stamped = headers
        .get(super::ENQUEUED_HEADER)
        .and_then(Value::as_i64)
        .and_then(DateTime::from_timestamp_millis);
    match start(ctx, job, enqueued, stamped).await {
        Ok(disposition) => disposition,
        Err(e) => store_unavailable(e),
    }
}

/// The job of a Celery message, or what becomes of the message instead:
/// dead-lettered when it cannot be read, dropped when it expired, parked
/// in the delay tiers until its `eta`.
fn from_celery(
    ctx: &Context,
    headers: &serde_json::Map<String, Value>,
    content_type: Option<&str>,
    message: &AmqpMessage,
) -> Result<Job, Disposition> {
    let encoding = message
        .properties
        .content_encoding()
        .as_ref()
        .map(|c| c.as_str().to_string());
    let c = celery::decode_celery(headers, content_type, encoding.as_deref(), &message.data)
        .map_err(|e| Disposition::dead(FailedAt::Decode, "malformed", e.to_string()))?;
    let now = Utc::now();
    if c.expires.is_some_and(|t| t < now) {
        info!(message = "Dropped an expired Celery job.", job = %c.job.id, task = %c.task_id);
        ctx.metrics.expired.inc();
        return Err(Disposition::Done);
    }
    if let Some(eta) = c
        .eta
        .filter(|t| *t > now + chrono::Duration::milliseconds(crate::clock::EARLY_MS))
    {
        return Err(Disposition::later(eta.timestamp_millis()));
    }
    if !c.links_not_run.is_empty() {
        warn!(
            message = "Celery links are not run by fanout; the job is delivered without them.",
            job = %c.job.id, task = %c.task_id, links = %c.links_not_run.join(", ")
        );
    }
    Ok(c.job)
}

/// A step of a running chain, back from the delay tiers.
pub async fn handle_step(ctx: &Context, message: &AmqpMessage) -> Disposition {
    let cursor = match Cursor::decode(&message.data) {
        Ok(cursor) => cursor,
        Err(e) => return Disposition::dead(FailedAt::Escalate, "malformed", e),
    };
    let headers = headers_of(message);
    let enqueued = headers
        .get(super::ENQUEUED_HEADER)
        .and_then(Value::as_i64)
        .unwrap_or_else(|| Utc::now().timestamp_millis());
    // When this step was due: its wait ended then.
    let scheduled = headers
        .get(crate::broker::DUE_HEADER)
        .and_then(Value::as_i64)
        .and_then(DateTime::from_timestamp_millis);
    let state = ctx
        .store
        .get::<GroupState>(group::KIND, &cursor.job.alert.group_id)
        .await;
    match state {
        Ok(state) => match step(ctx, cursor, state, enqueued, scheduled, Fresh::No, None).await {
            Ok(disposition) => disposition,
            Err(e) => store_unavailable(e),
        },
        Err(e) => store_unavailable(e),
    }
}

fn store_unavailable(e: StoreError) -> Disposition {
    warn!(message = "Store unavailable; the message waits and comes back.", error = %e);
    Disposition::later(Utc::now().timestamp_millis() + STORE_RETRY_MS)
}

/// A valid job: resolve its group, or be suppressed, join a chain, or
/// start one.
async fn start(
    ctx: &Context,
    job: Job,
    enqueued: i64,
    stamped: Option<DateTime<Utc>>,
) -> Result<Disposition, StoreError> {
    let now = Utc::now();
    let group_id = job.alert.group_id.clone();
    if job.alert.status == Status::Resolved {
        let alert = job.alert.clone();
        let applied = ctx
            .store
            .update(group::KIND, &group_id, move |s| {
                group::apply(s, SignalKind::Resolve, None, Some("resolved job"), now)
            })
            .await?;
        return Ok(match applied {
            Applied::Resolved {
                job: mut chain_job,
                notify,
            } => {
                ctx.metrics.chain("resolved");
                // The producer's words for the resolution, the chain's id.
                chain_job.alert = alert;
                Disposition::Forward(notify::resolved_notices(ctx, &chain_job, &notify).await)
            }
            // No chain ever ran for it: deliver it as it is, once.
            Applied::UnknownGroup => {
                let cursor = Cursor::start(job, None);
                Disposition::Forward(notify::deliveries(ctx, &cursor, &[], enqueued, None).await)
            }
            Applied::Unchanged | Applied::Changed => Disposition::Done,
        });
    }
    let mut summary = None;
    if let Some(rule) = &job.suppress {
        match notify::judge(ctx, rule, &job, "job").await {
            Verdict::Suppressed => {
                info!(message = "Suppressed a repeat.", job = %job.id, group = %group_id);
                ctx.metrics
                    .suppressed
                    .get_or_create(&ScopeLabels {
                        scope: "job".into(),
                    })
                    .inc();
                return Ok(Disposition::Done);
            }
            Verdict::Send(s) => summary = s,
        }
    }
    let claimed = job.clone();
    // What the chain's first message runs, worked out before the claim so
    // that a chain started by this very claim (not a redelivery of the
    // message that started it) is noted in the same write: its steps, and
    // that nothing of it can be in the notification log yet.
    let cursor = Cursor::start(job, summary);
    let (notices, then) = chain::advance(&cursor, now, chain::wait_from(stamped, now));
    let foldable = then != Then::Resolve;
    let noting = (notices.clone(), then.clone());
    let (claim, state, fresh) = ctx
        .store
        .update(group::KIND, &group_id, move |s| {
            let (new, claim) = group::claim(s.clone(), &claimed, now);
            let fresh = new.is_some() && claim == Claim::Started;
            let new = match new {
                Some(started) if fresh && foldable => {
                    group::note_steps(Some(started), &claimed, &noting.0, &noting.1, now)
                }
                other => other,
            };
            let state = new.clone().or(s);
            (new, (claim, state, fresh))
        })
        .await?;
    let job = cursor.job.clone();
    match claim {
        Claim::Joined { chain } => {
            info!(message = "Joined the group's running chain; not sent.", job = %job.id, group = %group_id, %chain);
            ctx.metrics.chain("joined");
            Ok(Disposition::Done)
        }
        Claim::Started => {
            ctx.metrics.chain("started");
            let first = Fresh::from(fresh);
            let noted = (fresh && foldable).then_some((notices, then));
            step(ctx, cursor, state, enqueued, stamped, first, noted).await
        }
    }
}

/// Run the chain from the cursor: check the group's `state`, run the
/// notify steps due now, park the cursor for the next wait (counted from
/// when this step was `scheduled`, see [`chain::wait_from`]).
/// Whether the chain was started by the message being handled: then its
/// first notify needs no read of the notification log (nothing of this
/// chain can be there yet) and the group's state is the one just written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fresh {
    Yes,
    No,
}

impl From<bool> for Fresh {
    fn from(fresh: bool) -> Self {
        if fresh {
            Fresh::Yes
        } else {
            Fresh::No
        }
    }
}

async fn step(
    ctx: &Context,
    cursor: Cursor,
    state: Option<GroupState>,
    enqueued: i64,
    scheduled: Option<DateTime<Utc>>,
    fresh: Fresh,
    noted: Option<(Vec<chain::Notice>, Then)>,
) -> Result<Disposition, StoreError> {
    let now = Utc::now();
    let group_id = cursor.job.alert.group_id.clone();
    match group::gate(state.as_ref(), &cursor.job.id, now) {
        Gate::Go => {}
        Gate::Stop(why) => {
            info!(message = "Chain stopped.", job = %cursor.job.id, group = %group_id, %why);
            ctx.metrics.chain("stopped");
            return Ok(Disposition::Done);
        }
        Gate::Postpone(until) => {
            let look = until.min(now + SILENCE_RECHECK);
            let (chain_id, next) = (
                cursor.job.id.clone(),
                Scheduled {
                    step: cursor.step,
                    round: cursor.round,
                    due: until,
                },
            );
            ctx.store
                .update(group::KIND, &group_id, move |s| {
                    (group::note_postponed(s, &chain_id, next.clone()), ())
                })
                .await?;
            info!(message = "Group silenced; chain postponed.", job = %cursor.job.id, group = %group_id, until = %until);
            ctx.metrics.chain("postponed");
            return Ok(Disposition::Forward(vec![park(&cursor, look, enqueued)]));
        }
    }
    // Steps the claim has noted already come worked out; others now.
    let already_noted = noted.is_some();
    let (notices, then) =
        noted.unwrap_or_else(|| chain::advance(&cursor, now, chain::wait_from(scheduled, now)));
    let mut out = Vec::new();
    for (i, notice) in notices.iter().enumerate() {
        let mut at = cursor.at(notice.step, notice.round);
        if i == 0 {
            at.suppressed = cursor.suppressed.clone();
        }
        if at.job.charts.is_empty() {
            // Only the first notice: a later one in this message may
            // continue a conversation the first opened (a Slack thread).
            let known = (i == 0 && fresh == Fresh::Yes).then_some(state.as_ref());
            out.extend(notify::deliveries(ctx, &at, &[], enqueued, known).await);
        } else {
            out.push(Outgoing::now(Route::Render, at.encode(), enqueued));
        }
    }
    match &then {
        Then::Wait { step, round, due } => {
            out.push(park(&cursor.at(*step, *round), *due, enqueued))
        }
        Then::Finish => ctx.metrics.chain("finished"),
        Then::Resolve => {}
    }
    if already_noted {
        return Ok(Disposition::Forward(out));
    }
    // One write for the steps run, and for a `resolve` step's resolve.
    let (job, noted) = (cursor.job.clone(), then.clone());
    let applied = ctx
        .store
        .update(group::KIND, &group_id, move |s| {
            let noted_state = group::note_steps(s.clone(), &job, &notices, &noted, now);
            if noted != Then::Resolve {
                return (noted_state, None);
            }
            let (resolved, applied) = group::apply(
                noted_state.or(s),
                SignalKind::Resolve,
                None,
                Some("escalation"),
                now,
            );
            (resolved, Some(applied))
        })
        .await?;
    if let Some(Applied::Resolved { job, notify }) = applied {
        ctx.metrics.chain("resolved");
        out.extend(notify::resolved_notices(ctx, &job, &notify).await);
    }
    Ok(Disposition::Forward(out))
}

/// The cursor, parked in the delay tiers until `due`.
fn park(cursor: &Cursor, due: DateTime<Utc>, enqueued: i64) -> Outgoing {
    Outgoing::at(
        Route::Chains,
        cursor.encode(),
        enqueued,
        due.timestamp_millis(),
    )
}

async fn apply_signal(ctx: &Context, signal: Signal) -> Disposition {
    let now = Utc::now();
    let until = match signal.check(now) {
        Ok(until) => until,
        Err(e) => return Disposition::dead(FailedAt::Validate, "invalid", e.to_string()),
    };
    let kind = signal.signal;
    let by = signal.by.clone();
    let applied = ctx
        .store
        .update(group::KIND, &signal.group_id, move |s| {
            group::apply(s, kind, until, by.as_deref(), now)
        })
        .await;
    let applied = match applied {
        Ok(applied) => applied,
        Err(e) => return store_unavailable(e),
    };
    let name = match kind {
        SignalKind::Acknowledge => "acknowledge",
        SignalKind::Resolve => "resolve",
        SignalKind::Silence => "silence",
        SignalKind::Unsilence => "unsilence",
    };
    let outcome = match &applied {
        Applied::UnknownGroup => "unknown_group",
        Applied::Unchanged => "unchanged",
        Applied::Changed | Applied::Resolved { .. } => "changed",
    };
    info!(message = "Signal applied.", signal = name, group = %signal.group_id, outcome, by = signal.by.as_deref().unwrap_or(""));
    ctx.metrics
        .signals
        .get_or_create(&SignalLabels {
            signal: name,
            outcome,
        })
        .inc();
    match applied {
        Applied::Resolved { job, notify } => {
            ctx.metrics.chain("resolved");
            Disposition::Forward(notify::resolved_notices(ctx, &job, &notify).await)
        }
        _ => Disposition::Done,
    }
}
