//! The digest: when a rate-limited destination's backlog grows past its
//! `digest_after`, the notifications that would wait longer are folded
//! into one summary per destination instead of being dropped or sent
//! stale, hours late. Nothing is lost: each folded notification is
//! recorded in the notification log as delivered in the digest, counted
//! (`fanout_deliveries_total{outcome="folded"}`) and logged.
//!
//! How: the first notification folded while no digest is pending becomes
//! the digest's **carrier**. It takes the destination's next free slot
//! (however far) and waits for it as any rate-limited send does (parked
//! in the delay tiers by the worker, slept by `fanout send`). Later folds
//! only add their entry. When the carrier's slot comes, it reads every
//! entry and sends the summary in place of its own notification: the most
//! severe first, one line per alert group with its count and link. Once
//! sent, those entries are removed and the next fold starts a new digest;
//! a carrier whose send is retried sends them on its next attempt.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::delivery::Delivery;
use crate::job::{Severity, Status};
use crate::store::{Store, StoreError};

/// The store kind of a destination's pending digest.
pub const KIND: &str = "digest";

/// What the notification log says of a folded notification.
pub const FOLDED: &str = "folded into the digest";

/// One folded notification.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Folded {
    pub job_id: String,
    pub group_id: String,
    pub title: String,
    pub severity: Severity,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

impl Folded {
    pub fn of(delivery_job: &crate::job::Job) -> Self {
        let alert = &delivery_job.alert;
        Self {
            job_id: delivery_job.id.clone(),
            group_id: alert.group_id.clone(),
            title: alert.title.clone(),
            severity: alert.severity,
            status: alert.status,
            link: alert.source_url.clone(),
        }
    }
}

/// A destination's pending digest: who carries it, and what it holds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Pending {
    #[serde(default)]
    carrier: Option<String>,
    #[serde(default)]
    entries: Vec<Folded>,
}

/// Fold `entry` into `destination`'s digest; `true` when `me` (a
/// delivery's key) became its carrier.
pub async fn fold(
    store: &Store,
    destination: &str,
    me: &str,
    entry: Folded,
) -> Result<bool, StoreError> {
    let me = me.to_string();
    store
        .update::<Pending, bool>(KIND, destination, move |pending| {
            let mut pending = pending.unwrap_or_default();
            pending.entries.push(entry.clone());
            let carrier = pending.carrier.is_none();
            if carrier {
                pending.carrier = Some(me.clone());
            }
            (Some(pending), carrier)
        })
        .await
}

/// When `me` carries `destination`'s digest: its entries so far (kept
/// until [`done`], so a carrier whose send is retried sends them then).
/// `None` for any other delivery.
pub async fn carried(
    store: &Store,
    destination: &str,
    me: &str,
) -> Result<Option<Vec<Folded>>, StoreError> {
    let me = me.to_string();
    store
        .update::<Pending, Option<Vec<Folded>>>(KIND, destination, move |pending| match pending {
            Some(p) if p.carrier.as_deref() == Some(me.as_str()) => (None, Some(p.entries)),
            _ => (None, None),
        })
        .await
}

/// The carrier `me` is done with the first `sent` entries (sent in its
/// digest; or, with `sent` 0, its send failed for good): they are
/// removed, and the next fold carries what is left.
pub async fn done(
    store: &Store,
    destination: &str,
    me: &str,
    sent: usize,
) -> Result<(), StoreError> {
    let me = me.to_string();
    store
        .update::<Pending, ()>(KIND, destination, move |pending| match pending {
            Some(mut p) if p.carrier.as_deref() == Some(me.as_str()) => {
                p.entries.drain(..sent.min(p.entries.len()));
                p.carrier = None;
                (Some(p), ())
            }
            _ => (None, ()),
        })
        .await
}

fn rank(s: Severity) -> u8 {
    match s {
        Severity::Critical => 0,
        Severity::Error => 1,
        Severity::Warning => 2,
        Severity::Info => 3,
    }
}

/// The summary the carrier sends instead of its own notification: "N
/// alerts in M groups", then per group (most severe first, then the
/// largest) its severity, title, count and link. No charts, no thread, no
/// action links: it stands for many groups.
pub fn summary(delivery: &Delivery, entries: &[Folded]) -> Delivery {
    let mut groups: BTreeMap<&str, (Severity, &Folded, usize, usize)> = BTreeMap::new();
    for e in entries {
        let g = groups.entry(&e.group_id).or_insert((e.severity, e, 0, 0));
        if rank(e.severity) < rank(g.0) {
            g.0 = e.severity;
        }
        g.2 += 1;
        if e.status == Status::Resolved {
            g.3 += 1;
        }
    }
    let mut rows: Vec<_> = groups.into_values().collect();
    rows.sort_by(|a, b| rank(a.0).cmp(&rank(b.0)).then(b.2.cmp(&a.2)));
    let worst = rows.first().map_or(Severity::Warning, |r| r.0);
    let lines: Vec<String> = rows
        .iter()
        .map(|(severity, first, count, resolved)| {
            let mut line = format!(
                "[{}] {} ×{count}",
                format!("{severity:?}").to_uppercase(),
                first.title
            );
            if *resolved > 0 {
                line.push_str(&format!(" ({resolved} resolved)"));
            }
            if let Some(link) = &first.link {
                line.push_str(&format!(" {link}"));
            }
            line
        })
        .collect();
    let mut job = (*delivery.job).clone();
    job.alert.title = format!(
        "{} alerts in {} groups (digest: the rate limit's backlog)",
        entries.len(),
        rows.len()
    );
    job.alert.message = lines.join("\n");
    job.alert.severity = worst;
    job.alert.status = Status::Firing;
    job.alert.labels = BTreeMap::new();
    job.alert.source_url = None;
    job.alert.payload = serde_json::Value::Null;
    let mut digest = delivery.clone();
    digest.job = Arc::new(job);
    digest.charts = Arc::new(Vec::new());
    digest.actions = None;
    digest.thread = None;
    digest.progress = None;
    digest
}
