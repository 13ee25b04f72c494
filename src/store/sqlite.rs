//! The embedded notification log: one SQLite file, for a single node.

use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension};

use super::{DeliveryKey, StoreError};
use crate::deliver::rate::{next_slot, push_slot, RateLimit};

pub struct SqliteStore {
    path: String,
    conn: Arc<Mutex<Connection>>,
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

impl SqliteStore {
    pub async fn open(path: &str) -> Result<Self, StoreError> {
        let owned = path.to_string();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection, StoreError> {
            if let Some(dir) = std::path::Path::new(&owned)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StoreError(format!("cannot create {}: {e}", dir.display())))?;
            }
            let conn = Connection::open(&owned)
                .map_err(|e| StoreError(format!("cannot open {owned}: {e}")))?;
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
        })
        .await
        .map_err(err)??;
        Ok(Self {
            path: path.to_string(),
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&conn).map_err(err)
        })
        .await
        .map_err(err)?
    }

    pub async fn was_sent(&self, key: &DeliveryKey) -> Result<Option<String>, StoreError> {
        let key = key.clone();
        self.with(move |c| {
            c.prepare_cached("SELECT detail FROM notification_log WHERE job_id = ?1 AND step = ?2 AND destination = ?3")?.query_row(
                params![key.job_id, key.step as i64, key.destination],
                |row| row.get(0),
            )
            .optional()
        })
        .await
    }

    pub async fn record_sent(&self, key: &DeliveryKey, detail: &str) -> Result<(), StoreError> {
        let (key, detail) = (key.clone(), detail.to_string());
        let now = crate::storage::signing::unix_now() as i64;
        self.with(move |c| {
            c.prepare_cached("INSERT OR IGNORE INTO notification_log (job_id, step, destination, sent_at, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5)")?.execute(
                params![key.job_id, key.step as i64, key.destination, now, detail],
            )
            .map(|_| ())
        })
        .await
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
        self.with(move |c| {
            c.prepare_cached("SELECT value FROM records WHERE kind = ?1 AND id = ?2")?
                .query_row(params![kind, id], |row| row.get(0))
                .optional()
        })
        .await
    }

    /// The log's entry for `key` and the record `kind`/`id`, read
    /// together: one trip to the blocking pool instead of two.
    pub async fn lookup(
        &self,
        key: &DeliveryKey,
        kind: &str,
        id: &str,
    ) -> Result<(Option<String>, Option<String>), StoreError> {
        let (key, kind, id) = (key.clone(), kind.to_string(), id.to_string());
        self.with(move |c| {
            let sent = c.prepare_cached("SELECT detail FROM notification_log WHERE job_id = ?1 AND step = ?2 AND destination = ?3")?.query_row(
                    params![key.job_id, key.step as i64, key.destination],
                    |row| row.get(0),
                )
                .optional()?;
            let record = c.prepare_cached("SELECT value FROM records WHERE kind = ?1 AND id = ?2")?.query_row(
                    params![kind, id],
                    |row| row.get(0),
                )
                .optional()?;
            Ok((sent, record))
        })
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
        let now = crate::storage::signing::unix_now() as i64;
        self.with(move |c| {
            let tx =
                rusqlite::Transaction::new_unchecked(c, rusqlite::TransactionBehavior::Immediate)?;
            if let Some((key, detail)) = &sent {
                tx.prepare_cached("INSERT OR IGNORE INTO notification_log (job_id, step, destination, sent_at, detail)
                     VALUES (?1, ?2, ?3, ?4, ?5)")?.execute(
                    params![key.job_id, key.step as i64, key.destination, now, detail],
                )?;
            }
            let current: Option<String> = tx.prepare_cached("SELECT value FROM records WHERE kind = ?1 AND id = ?2")?.query_row(
                    params![kind, id],
                    |row| row.get(0),
                )
                .optional()?;
            let (new, result) = change(current.as_deref());
            if let Some(new) = new {
                tx.prepare_cached("INSERT INTO records (kind, id, value, updated_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(kind, id) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at")?.execute(
                    params![kind, id, new, now],
                )?;
            }
            tx.commit()?;
            Ok(result)
        })
        .await
    }

    /// Reserve the next send slot of `name` (see [`crate::deliver::rate`]);
    /// one immediate transaction, so processes sharing the file agree.
    pub async fn reserve_slot(
        &self,
        name: &str,
        limit: RateLimit,
        cost: u32,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let name = name.to_string();
        self.with(move |c| {
            let tx =
                rusqlite::Transaction::new_unchecked(c, rusqlite::TransactionBehavior::Immediate)?;
            let stored: Option<String> = tx
                .prepare_cached("SELECT recent FROM rate_slots WHERE name = ?1")?
                .query_row(params![name], |row| row.get(0))
                .optional()?;
            let mut recent: Vec<i64> = stored
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default();
            let slot = next_slot(&recent, limit, cost, now_ms);
            push_slot(&mut recent, slot, limit, cost);
            let recent = serde_json::to_string(&recent).unwrap_or_else(|_| "[]".into());
            tx.prepare_cached(
                "INSERT INTO rate_slots (name, recent) VALUES (?1, ?2)
                 ON CONFLICT(name) DO UPDATE SET recent = excluded.recent",
            )?
            .execute(params![name, recent])?;
            tx.commit()?;
            Ok(slot)
        })
        .await
    }
}
