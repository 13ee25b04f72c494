//! `fanout send`: one job through the whole flow in this process, with no
//! broker: decode → validate → plan → render charts once → deliver (each target on its
//! own, concurrently) → outcomes.

use std::sync::Arc;

use crate::config::Config;
use crate::deliver::destinations::Destinations;
use crate::deliver::{Delivery, Outcome};
use crate::job::decode::decode_job;
use crate::job::{validate, DecodeError, JobErrors};
use crate::plan;
use crate::render::Charts;

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
    bytes: &[u8],
) -> Result<Vec<Outcome>, Refused> {
    let job = decode_job(bytes)?;
    validate(&job, config)?;
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
    });
    Ok(futures::future::join_all(deliveries.map(|d| destinations.deliver(d))).await)
}
