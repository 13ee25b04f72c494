//! The ingest spool: jobs taken from a monitor while the broker is down or
//! slow, kept on local disk (one SQLite file, every write synced) and
//! published in order, each once, as soon as the broker is back.
//!
//! Monitors rarely retry a failed webhook (Grafana waits for its next group
//! interval, SkyWalking never retries), so a `503` would lose their alerts:
//! the endpoint answers `202` once a job is confirmed by the broker *or*
//! written here. While anything waits here, new jobs queue behind it, so a
//! resolution never overtakes the alert it resolves.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{params, Connection};
use tracing::{info, warn};

use super::publisher::Publisher;

/// The spool could not be written or read.
#[derive(Debug, thiserror::Error)]
#[error("spool: {0}")]
pub struct SpoolError(String);

/// One job waiting for the broker.
pub struct Spooled {
    pub routing_key: String,
    pub id: String,
    pub body: Vec<u8>,
}

pub struct Spool {
    conn: Mutex<Connection>,
    /// How many jobs the file holds: counted once at open, then kept
    /// beside every write, so the endpoint's "does anything wait?" costs
    /// no query.
    held: AtomicU64,
    /// The most jobs it holds; past that, the endpoint answers 503.
    max_jobs: u64,
}

impl Spool {
    pub fn open(path: &Path, max_jobs: u64) -> Result<Self, SpoolError> {
        let fail = |e: rusqlite::Error| SpoolError(format!("{}: {e}", path.display()));
        let conn = Connection::open(path).map_err(fail)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(fail)?;
        // Every push is on disk before the monitor hears 202.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(fail)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS spool (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                routing_key TEXT NOT NULL,
                id TEXT NOT NULL,
                body BLOB NOT NULL
            )",
        )
        .map_err(fail)?;
        let held = conn
            .query_row("SELECT COUNT(*) FROM spool", [], |r| r.get::<_, i64>(0))
            .map_err(fail)?;
        Ok(Self {
            conn: Mutex::new(conn),
            held: AtomicU64::new(held.max(0) as u64),
            max_jobs,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many jobs wait.
    pub fn len(&self) -> u64 {
        self.held.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keep `jobs`, in order, all or none; refused when that would hold
    /// more than the spool's `max_jobs`.
    pub fn push(&self, jobs: &[Spooled]) -> Result<(), SpoolError> {
        let mut conn = self.lock();
        let held = self.len();
        if held + jobs.len() as u64 > self.max_jobs {
            return Err(SpoolError(format!(
                "full: {held} job(s) wait, and {} more would pass max_jobs = {}",
                jobs.len(),
                self.max_jobs
            )));
        }
        let fail = |e: rusqlite::Error| SpoolError(e.to_string());
        let tx = conn.transaction().map_err(fail)?;
        for job in jobs {
            tx.execute(
                "INSERT INTO spool (routing_key, id, body) VALUES (?1, ?2, ?3)",
                params![job.routing_key, job.id, job.body],
            )
            .map_err(fail)?;
        }
        tx.commit().map_err(fail)?;
        self.held.fetch_add(jobs.len() as u64, Ordering::AcqRel);
        Ok(())
    }

    /// The oldest `n` jobs, with their place.
    fn oldest(&self, n: usize) -> Vec<(i64, Spooled)> {
        let conn = self.lock();
        let Ok(mut statement) =
            conn.prepare("SELECT seq, routing_key, id, body FROM spool ORDER BY seq LIMIT ?1")
        else {
            return Vec::new();
        };
        statement
            .query_map([n as i64], |r| {
                Ok((
                    r.get(0)?,
                    Spooled {
                        routing_key: r.get(1)?,
                        id: r.get(2)?,
                        body: r.get(3)?,
                    },
                ))
            })
            .map(|rows| rows.flatten().collect())
            .unwrap_or_default()
    }

    /// Remove the jobs at `seqs` (published), in one synced transaction.
    fn remove(&self, seqs: &[i64]) -> Result<(), SpoolError> {
        let fail = |e: rusqlite::Error| SpoolError(e.to_string());
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(fail)?;
        let mut removed = 0;
        for seq in seqs {
            removed += tx
                .execute("DELETE FROM spool WHERE seq = ?1", [seq])
                .map_err(fail)?;
        }
        tx.commit().map_err(fail)?;
        self.held.fetch_sub(removed as u64, Ordering::AcqRel);
        Ok(())
    }
}

/// Publish what the spool holds, oldest first, each removed once the
/// broker confirmed it; forever, every `every` while it is empty and
/// with backoff while the broker is away.
pub async fn drain(spool: Arc<Spool>, publisher: Arc<Publisher>, every: Duration) {
    let mut backoff = every;
    loop {
        if spool.is_empty() {
            tokio::time::sleep(every).await;
            continue;
        }
        let batch = {
            let spool = spool.clone();
            tokio::task::spawn_blocking(move || spool.oldest(100))
                .await
                .unwrap_or_default()
        };
        if batch.is_empty() {
            tokio::time::sleep(every).await;
            continue;
        }
        // Published in order, one confirm at a time; removed together
        // (one synced write per batch, not per job). A crash between the
        // two sends some again: the notification log catches that.
        let mut published = Vec::new();
        let mut failed = false;
        for (seq, job) in batch {
            if let Err(e) = publisher
                .publish(&job.routing_key, &job.id, &job.body)
                .await
            {
                warn!(message = "Spooled jobs still wait for the broker.", error = %e);
                failed = true;
                break;
            }
            published.push(seq);
        }
        let sent = published.len();
        if sent > 0 {
            let spool = spool.clone();
            let removed = tokio::task::spawn_blocking(move || spool.remove(&published)).await;
            if !matches!(removed, Ok(Ok(()))) {
                warn!(message = "Published spooled jobs could not be removed from the spool; they will be published again.");
                failed = true;
            }
        }
        if sent > 0 {
            info!(message = "Published spooled jobs.", jobs = sent);
        }
        if failed {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
        } else {
            backoff = every;
        }
    }
}
