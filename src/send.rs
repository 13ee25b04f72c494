//! `fanout send`: one job through the whole flow in this process, with no
//! broker: decode → validate → plan → render charts once → deliver (each
//! target on its own, concurrently) → outcomes.
//!
//! What it sends is what the worker sends for the same job: the same
//! action links (with `[actions]`), and, with a `[store]`, the same
//! alert-group conversation. A firing job claims its group (a repeat
//! while the group fires joins it and is not sent; a job-level
//! `suppress` holds repeats back), every send is noted in the group (who
//! was notified, the Slack thread it opened), and a resolved job resolves
//! the group and sends the resolved notice to everyone notified, in their
//! threads. So a cron job or relay script that calls `fanout send` for
//! the firing and then the resolved job gets one conversation, as the
//! worker would give it. Later escalation steps need the broker's delay
//! tiers and run only in the worker.

use std::sync::Arc;

use chrono::Utc;
use tracing::{info, warn};

use crate::actions::ActionLinks;
use crate::chain::group::{self, Applied, Claim};
use crate::chain::{Notice, Then, RESOLVED_STEP};
use crate::config::Config;
use crate::delivery::{Delivery, Outcome};
use crate::destinations::Destinations;
use crate::job::decode::decode_job;
use crate::job::{DecodeError, Job, SignalKind, Status};
use crate::pipeline::Pipeline;
use crate::plan::{self, Planned};
use crate::render::Charts;
use crate::store::Store;
use crate::suppress::{self, Verdict};
use crate::validate::{validate, JobErrors};

/// Why a job was refused before any delivery (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("bad job: {0}")]
    Decode(#[from] DecodeError),
    #[error("bad job: {0}")]
    Invalid(#[from] JobErrors),
}

/// What `send` delivers through: the built destinations, the chart
/// renderer, and (optionally) the store and the action links.
pub struct Sending<'a> {
    pub destinations: &'a Destinations,
    pub charts: &'a Charts,
    /// The notification log and the groups' state; `None` for a dry run.
    pub store: Option<&'a Store>,
    pub actions: Option<&'a ActionLinks>,
}

/// Send the job in `bytes` to its targets and report each outcome.
pub async fn send(
    config: &Config,
    sending: &Sending<'_>,
    bytes: &[u8],
) -> Result<Vec<Outcome>, Refused> {
    let job = decode_job(bytes)?;
    validate(&job, config)?;
    Ok(deliver_job(sending, job).await)
}

/// Plan, render once and deliver a validated job; one outcome per
/// delivery made (none when the group's state says nothing is due).
pub async fn deliver_job(sending: &Sending<'_>, job: Job) -> Vec<Outcome> {
    let Some((job, planned)) = plan_for_group(sending, job).await else {
        return Vec::new();
    };
    let resolved_notice = planned.first().is_some_and(|p| p.step == RESOLVED_STEP);
    let charts = Arc::new(if resolved_notice {
        Vec::new()
    } else {
        sending.charts.for_job(&job).await
    });
    let job = Arc::new(job);
    let pipeline = Pipeline {
        destinations: sending.destinations,
        store: sending.store,
        actions: sending.actions,
        metrics: None,
    };
    let deliveries = planned.into_iter().map(|p| {
        Delivery::new(job.clone(), p.target)
            .at_step(p.step, p.seq, 0)
            .with_shared_charts(charts.clone())
    });
    futures::future::join_all(deliveries.map(|d| pipeline.deliver(d))).await
}

/// What to send for `job`, as the worker's escalate stage decides it:
/// the job's first notify step, or the resolved notice of its group, or
/// nothing (a repeat that joins the firing group, a suppressed repeat, a
/// group resolved already).
async fn plan_for_group(sending: &Sending<'_>, job: Job) -> Option<(Job, Vec<Planned>)> {
    let step = plan::first_notify(&job).unwrap_or(0);
    if job.escalation.len() > step + 1 {
        info!(
            message = "Ran the first notify step only; later escalation steps run in the worker.",
            job = %job.id,
            step
        );
    }
    let Some(store) = sending.store else {
        let planned = plan::plan(&job, step);
        return Some((job, planned));
    };
    let now = Utc::now();
    let group_id = job.alert.group_id.clone();
    // A store that does not answer must not cost the page: send as if
    // there were none.
    let unreadable = |e: crate::store::StoreError| {
        warn!(message = "Store unreadable; sending without the group's state.", group = %group_id, error = %e);
    };
    if job.alert.status == Status::Resolved {
        let applied = store
            .update(group::KIND, &group_id, move |s| {
                group::apply(s, SignalKind::Resolve, None, Some("resolved job"), now)
            })
            .await;
        return match applied {
            Ok(Applied::Resolved {
                job: mut chain_job,
                notify,
            }) => {
                // The producer's words for the resolution, the chain's id.
                chain_job.alert = job.alert;
                let planned = notify
                    .into_iter()
                    .enumerate()
                    .map(|(i, target)| Planned {
                        seq: i + 1,
                        step: RESOLVED_STEP,
                        target,
                    })
                    .collect();
                Some((*chain_job, planned))
            }
            Ok(Applied::UnknownGroup) => Some((job.clone(), plan::plan(&job, step))),
            Ok(Applied::Unchanged | Applied::Changed) => {
                info!(message = "The group was resolved already; nothing to send.", job = %job.id, group = %group_id);
                None
            }
            Err(e) => {
                unreadable(e);
                Some((job.clone(), plan::plan(&job, step)))
            }
        };
    }
    if let Some(rule) = &job.suppress {
        let context = serde_json::json!({"alert": job.alert, "payload": job.alert.payload, "job": job, "destination": "job"});
        match sending
            .destinations
            .templates()
            .render_inline("suppress.key", &rule.key, &context)
        {
            Ok(key) => match suppress::judge(store, "job", &key, &job.id, rule.window, now).await {
                Ok(Verdict::Suppressed) => {
                    info!(message = "Suppressed a repeat.", job = %job.id, group = %group_id);
                    return None;
                }
                Ok(Verdict::Send(_)) => {}
                Err(e) => unreadable(e),
            },
            Err(e) => {
                warn!(message = "Suppression key does not render; not suppressing.", job = %job.id, error = %e)
            }
        }
    }
    let claimed = job.clone();
    let claim = store
        .update(group::KIND, &group_id, move |s| {
            let (new, claim) = group::claim(s, &claimed, now);
            let noted = match (&claim, new) {
                (Claim::Started, Some(started)) => group::note_steps(
                    Some(started),
                    &claimed,
                    &[Notice { step, round: 0 }],
                    &Then::Finish,
                    now,
                ),
                (_, new) => new,
            };
            (noted, claim)
        })
        .await;
    match claim {
        Ok(Claim::Joined { chain }) => {
            info!(message = "Joined the group's running chain; not sent.", job = %job.id, group = %group_id, %chain);
            None
        }
        Ok(Claim::Started) => Some((job.clone(), plan::plan(&job, step))),
        Err(e) => {
            unreadable(e);
            Some((job.clone(), plan::plan(&job, step)))
        }
    }
}
