//! `fanout send`: one job through the whole flow in this process, with no
//! broker: decode → validate → plan → render charts once → deliver (each target on its
//! own, concurrently) → outcomes.

use std::sync::Arc;

use crate::config::Config;
use crate::deliver::destinations::Destinations;
use crate::deliver::{Delivery, Outcome, Sent};
use crate::job::decode::decode_job;
use crate::job::{validate, DecodeError, JobErrors};
use crate::plan;
use crate::render::Charts;
use crate::store::{DeliveryKey, Store};

/// Why a job was refused before any delivery (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("bad job: {0}")]
    Decode(#[from] DecodeError),
    #[error("bad job: {0}")]
    Invalid(#[from] JobErrors),
}

/// Send the job in `bytes` to its targets and report each outcome.
pub async fn send(
    config: &Config,
    destinations: &Destinations,
    charts: &Charts,
    store: Option<&Store>,
    bytes: &[u8],
) -> Result<Vec<Outcome>, Refused> {
    let job = decode_job(bytes)?;
    validate(&job, config)?;
    Ok(deliver_job(destinations, charts, store, job).await)
}

/// Plan, render once and deliver a validated job; one outcome per target.
pub async fn deliver_job(
    destinations: &Destinations,
    charts: &Charts,
    store: Option<&Store>,
    job: crate::job::Job,
) -> Vec<Outcome> {
    let step = plan::first_notify(&job).unwrap_or(0);
    let planned = plan::plan(&job, step);
    if job.escalation.len() > step + 1 {
        tracing::info!(
            message = "Ran the first notify step only; later escalation steps run in the worker.",
            job = %job.id,
            step
        );
    }
    let charts = Arc::new(charts.for_job(&job).await);
    let job = Arc::new(job);
    let deliveries = planned.into_iter().map(|p| Delivery {
        job: job.clone(),
        step: p.step,
        seq: p.seq,
        target: p.target,
        charts: charts.clone(),
        attempt: 1,
        round: 0,
        suppressed: None,
        actions: None,
        thread: None,
        progress: None,
    });
    futures::future::join_all(deliveries.map(|d| deliver_once(destinations, store, d))).await
}

/// Deliver unless the notification log says it was sent; record it after.
async fn deliver_once(
    destinations: &Destinations,
    store: Option<&Store>,
    delivery: Delivery,
) -> Outcome {
    let Some(store) = store else {
        return destinations.deliver(delivery).await;
    };
    let key = DeliveryKey::of(&delivery);
    match store.was_sent(&key).await {
        Ok(Some(detail)) => {
            tracing::info!(message = "Already sent; not sending again.", job = %key.job_id, destination = %key.destination);
            return Outcome {
                destination: key.destination,
                channel: destinations.channel_name(delivery.destination()),
                attempts: 0,
                elapsed: std::time::Duration::ZERO,
                result: Ok(Sent::new(format!("(notification log: {detail})"))),
            };
        }
        Ok(None) => {}
        // Sending twice is better than not paging at all.
        Err(e) => {
            tracing::warn!(message = "Notification log unreadable; sending anyway.", error = %e)
        }
    }
    let outcome = destinations.deliver(delivery).await;
    if let Ok(sent) = &outcome.result {
        if let Err(e) = store.record_sent(&key, &sent.detail).await {
            tracing::warn!(message = "Sent, but not recorded: a retry may send it again.", job = %key.job_id, destination = %key.destination, error = %e);
        }
    }
    outcome
}
