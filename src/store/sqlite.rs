//! The embedded notification log: one SQLite file, for a single node.

use std::sync::mpsc;

use tokio::sync::oneshot;

use rusqlite::{params, Connection, OptionalExtension};

use super::{DeliveryKey, StoreError};
use crate::rate::{next_slot, push_slot, RateLimit};

pub struct SqliteStore {
    path: String,
    /// Calls for the store's thread, which owns the connection.
    calls: mpsc::Sender<Box<dyn Call>>,
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// The most calls one transaction takes.
const MAX_BATCH: usize = 256;

/// One store call, run on the store's thread inside a batch's
/// transaction, and answered once the batch has committed (or not).
trait Call: Send {
    /// Run the call; false if it failed.
    fn run(&mut self, conn: &Connection) -> bool;
    fn answer(self: Box<Self>, committed: Result<(), StoreError>);
}

struct Pending<F, T> {
    work: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<F, T> Call for Pending<F, T>
where
    F: FnOnce(&Connection) -> rusqlite::Result<T> + Send,
    T: Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let result = work(conn).map_err(err);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn answer(self: Box<Self>, committed: Result<(), StoreError>) {
        let this = *self;
        let outcome = committed.and_then(|()| {
            this.result
                .unwrap_or_else(|| Err(StoreError("the store call failed before answering".into())))
        });
        // The caller may have gone (its task cancelled); nothing to tell.
        let _ = this.reply.send(outcome);
    }
}

impl SqliteStore {
    pub async fn open(path: &str) -> Result<Self, StoreError> {
        let owned = path.to_string();
        let (ready, opened) = oneshot::channel();
        let (calls, queue) = mpsc::channel::<Box<dyn Call>>();
        std::thread::Builder::new()
            .name("fanout-sqlite".into())
            .spawn(move || match connect(&owned) {
                Ok(conn) => {
                    let _ = ready.send(Ok(()));
                    serve(&conn, &queue);
                }
                Err(e) => {
                    let _ = ready.send(Err(e));
                }
            })
            .map_err(|e| StoreError(format!("cannot start the store's thread: {e}")))?;
        opened
            .await
            .map_err(|_| StoreError("the store's thread stopped while opening".into()))??;
        Ok(Self {
            path: path.to_string(),
            calls,
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Run `f` on the store's thread, in a transaction that also holds
    /// whatever other calls were waiting: one commit for all of them.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let call = Box::new(Pending {
            work: Some(f),
            result: None,
            reply,
        });
        let stopped = || StoreError("the store's thread has stopped".into());
        self.calls.send(call).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    pub async fn was_sent(&self, key: &DeliveryKey) -> Result<Option<String>, StoreError> {
        let key = key.clone();
        self.with(move |c| sent_detail(c, &key)).await
    }

    pub async fn record_sent(&self, key: &DeliveryKey, detail: &str) -> Result<(), StoreError> {
        let (key, detail) = (key.clone(), detail.to_string());
        let now = crate::clock::unix_now() as i64;
        self.with(move |c| log_sent(c, &key, &detail, now)).await
    }

    pub async fn forget(&self, key: &DeliveryKey) -> Result<(), StoreError> {
        let key = key.clone();
        self.with(move |c| {
            c.prepare_cached(
                "DELETE FROM notification_log WHERE job_id = ?1 AND step = ?2 AND destination = ?3",
            )?
            .execute(params![key.job_id, key.step as i64, key.destination])
            .map(|_| ())
        })
        .await
    }

    /// The record `kind`/`id`, if there is one.
    pub async fn get(&self, kind: &str, id: &str) -> Result<Option<String>, StoreError> {
        let (kind, id) = (kind.to_string(), id.to_string());
        self.with(move |c| record_value(c, &kind, &id)).await
    }

    /// The log's entry for `key` and the record `kind`/`id`, read
    /// together: one call on the store's thread instead of two.
    pub async fn lookup(
        &self,
        key: &DeliveryKey,
        kind: &str,
        id: &str,
    ) -> Result<(Option<String>, Option<String>), StoreError> {
        let (key, kind, id) = (key.clone(), kind.to_string(), id.to_string());
        self.with(move |c| Ok((sent_detail(c, &key)?, record_value(c, &kind, &id)?)))
            .await
    }

    /// Read, change and write the record `kind`/`id` in one immediate
    /// transaction: processes sharing the file see each change whole.
    /// With `sent`, the same transaction writes that log entry too.
    pub async fn update<R: Send + 'static>(
        &self,
        kind: &str,
        id: &str,
        sent: Option<(DeliveryKey, String)>,
        mut change: impl FnMut(Option<&str>) -> (Option<String>, R) + Send + 'static,
    ) -> Result<R, StoreError> {
        let (kind, id) = (kind.to_string(), id.to_string());
        let now = crate::clock::unix_now() as i64;
        self.with(move |c| {
            if let Some((key, detail)) = &sent {
                log_sent(c, key, detail, now)?;
            }
            let (new, result) = change(record_value(c, &kind, &id)?.as_deref());
            if let Some(new) = new {
                c.prepare_cached(
                    "INSERT INTO records (kind, id, value, updated_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(kind, id) DO UPDATE
                     SET value = excluded.value, updated_at = excluded.updated_at",
                )?
                .execute(params![kind, id, new, now])?;
            }
            Ok(result)
        })
        .await
    }

    /// Reserve the next send slot of `name` (see [`crate::rate`]);
    /// one immediate transaction, so processes sharing the file agree.
    pub async fn reserve_slot(
        &self,
        name: &str,
        limit: RateLimit,
        cost: u32,
        now_ms: i64,
        within_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let name = name.to_string();
        self.with(move |c| {
            let stored: Option<String> = c
                .prepare_cached("SELECT recent FROM rate_slots WHERE name = ?1")?
                .query_row(params![name], |row| row.get(0))
                .optional()?;
            let mut recent: Vec<i64> = stored
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default();
            let slot = next_slot(&recent, limit, cost, now_ms);
            if slot - now_ms > within_ms {
                return Ok(None);
            }
            push_slot(&mut recent, slot, limit, cost);
            let recent = serde_json::to_string(&recent).unwrap_or_else(|_| "[]".into());
            c.prepare_cached(
                "INSERT INTO rate_slots (name, recent) VALUES (?1, ?2)
                 ON CONFLICT(name) DO UPDATE SET recent = excluded.recent",
            )?
            .execute(params![name, recent])?;
            Ok(Some(slot))
        })
        .await
    }
}

fn sent_detail(c: &Connection, key: &DeliveryKey) -> rusqlite::Result<Option<String>> {
    c.prepare_cached(
        "SELECT detail FROM notification_log WHERE job_id = ?1 AND step = ?2 AND destination = ?3",
    )?
    .query_row(
        params![key.job_id, key.step as i64, key.destination],
        |row| row.get(0),
    )
    .optional()
}

/// The first record of a send stays: a redelivery does not rewrite it.
fn log_sent(c: &Connection, key: &DeliveryKey, detail: &str, now: i64) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT OR IGNORE INTO notification_log (job_id, step, destination, sent_at, detail)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        key.job_id,
        key.step as i64,
        key.destination,
        now,
        detail
    ])
    .map(|_| ())
}

fn record_value(c: &Connection, kind: &str, id: &str) -> rusqlite::Result<Option<String>> {
    c.prepare_cached("SELECT value FROM records WHERE kind = ?1 AND id = ?2")?
        .query_row(params![kind, id], |row| row.get(0))
        .optional()
}

/// Open the file, set it up for WAL, and create the tables.
fn connect(owned: &str) -> Result<Connection, StoreError> {
    if let Some(dir) = std::path::Path::new(owned)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError(format!("cannot create {}: {e}", dir.display())))?;
    }
    let conn =
        Connection::open(owned).map_err(|e| StoreError(format!("cannot open {owned}: {e}")))?;
    // WAL: readers never wait for the writer; a crash loses nothing
    // that was committed.
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(err)?;
    // In WAL mode NORMAL survives a crash of any process; only a
    // power cut may lose the last commits.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(err)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(err)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS notification_log (
            job_id TEXT NOT NULL,
            step INTEGER NOT NULL,
            destination TEXT NOT NULL,
            sent_at INTEGER NOT NULL,
            detail TEXT NOT NULL,
            PRIMARY KEY (job_id, step, destination)
        );
        CREATE TABLE IF NOT EXISTS rate_slots (
            name TEXT PRIMARY KEY,
            recent TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS records (
            kind TEXT NOT NULL,
            id TEXT NOT NULL,
            value TEXT NOT NULL,
            updated_at INTEGER NOT NULL,
            PRIMARY KEY (kind, id)
        )",
    )
    .map_err(err)?;
    Ok(conn)
}

/// The store's thread: take the waiting calls, run each in a savepoint of
/// one immediate transaction (a failing call rolls back only itself),
/// commit once, then answer them all. Ends when the store is dropped.
fn serve(conn: &Connection, queue: &mpsc::Receiver<Box<dyn Call>>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(call) => batch.push(call),
                Err(_) => break,
            }
        }
        let committed = run_batch(conn, &mut batch);
        for call in batch {
            call.answer(committed.clone());
        }
    }
}

fn run_batch(conn: &Connection, batch: &mut [Box<dyn Call>]) -> Result<(), StoreError> {
    let exec = |sql: &str| conn.prepare_cached(sql).and_then(|mut s| s.execute([]));
    exec("BEGIN IMMEDIATE").map_err(err)?;
    for call in batch.iter_mut() {
        if let Err(e) = exec("SAVEPOINT call") {
            let _ = exec("ROLLBACK");
            return Err(err(e));
        }
        // A call that failed keeps its error, and none of its writes.
        // Rolling back to a savepoint leaves it open: release it too.
        // A call that panics fails alone; the thread goes on serving.
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call.run(conn)));
        if !matches!(ran, Ok(true)) {
            // Some errors (a full disk, I/O) roll back the whole
            // transaction: then every call in it has failed.
            if conn.is_autocommit() {
                return Err(StoreError(
                    "the transaction was rolled back by an error in one of its calls".into(),
                ));
            }
            let _ = exec("ROLLBACK TO call");
        }
        let _ = exec("RELEASE call");
    }
    exec("COMMIT").map_err(|e| {
        let _ = exec("ROLLBACK");
        err(e)
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
        (dir, store)
    }

    fn insert(c: &Connection, id: &str) -> rusqlite::Result<()> {
        c.execute(
            "INSERT INTO records (kind, id, value, updated_at) VALUES ('t', ?1, '{}', 0)",
            params![id],
        )
        .map(|_| ())
    }

    /// Calls sent together share a transaction; one that fails or panics
    /// loses its own writes and nobody else's, and the thread goes on.
    #[tokio::test]
    async fn a_failing_call_in_a_batch_rolls_back_alone() {
        let (_dir, store) = store().await;
        let calls = (0..40).map(|n| {
            let store = &store;
            async move {
                store
                    .with(move |c| {
                        insert(c, &format!("r{n}"))?;
                        match n {
                            13 => Err(rusqlite::Error::InvalidQuery),
                            27 => panic!("a call that panics"),
                            _ => Ok(n),
                        }
                    })
                    .await
            }
        });
        let results = futures::future::join_all(calls).await;
        for (n, result) in results.iter().enumerate() {
            assert_eq!(result.is_ok(), n != 13 && n != 27, "call {n}: {result:?}");
        }
        let kept: Vec<String> = store
            .with(|c| {
                let mut s = c.prepare("SELECT id FROM records ORDER BY id")?;
                let ids = s.query_map([], |r| r.get(0))?.collect();
                ids
            })
            .await
            .unwrap();
        assert_eq!(kept.len(), 38, "{kept:?}");
        assert!(!kept.contains(&"r13".to_string()) && !kept.contains(&"r27".to_string()));
    }

    /// An error that ends the whole transaction fails every call in it:
    /// a call answers Ok exactly when its write was kept.
    #[tokio::test]
    async fn an_error_that_ends_the_transaction_fails_its_whole_batch() {
        let (_dir, store) = store().await;
        let calls = (0..40).map(|n| {
            let store = &store;
            async move {
                store
                    .with(move |c| {
                        insert(c, &format!("r{n:02}"))?;
                        if n == 20 {
                            // What SQLite does on a full disk or an I/O error.
                            c.execute_batch("ROLLBACK")?;
                            return Err(rusqlite::Error::InvalidQuery);
                        }
                        Ok(())
                    })
                    .await
            }
        });
        let results = futures::future::join_all(calls).await;
        assert!(results[20].is_err());
        for (n, result) in results.iter().enumerate() {
            let kept = store.get("t", &format!("r{n:02}")).await.unwrap().is_some();
            assert_eq!(result.is_ok(), kept, "call {n}: {result:?}");
        }
    }

    /// The thread ends with the store, and what it committed stays.
    #[tokio::test]
    async fn what_a_batch_commits_survives_reopening() {
        let (dir, store) = store().await;
        store.with(|c| insert(c, "kept")).await.unwrap();
        drop(store);
        let again = SqliteStore::open(dir.path().join("state.db").to_str().unwrap())
            .await
            .unwrap();
        assert_eq!(again.get("t", "kept").await.unwrap().as_deref(), Some("{}"));
    }
}
