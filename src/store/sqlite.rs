//! The embedded notification log: one SQLite file, for a single node.

use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension};

use super::{DeliveryKey, StoreError};

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
            c.query_row(
                "SELECT detail FROM notification_log WHERE job_id = ?1 AND step = ?2 AND destination = ?3",
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
            c.execute(
                "INSERT OR IGNORE INTO notification_log (job_id, step, destination, sent_at, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![key.job_id, key.step as i64, key.destination, now, detail],
            )
            .map(|_| ())
        })
        .await
    }

    pub async fn forget(&self, key: &DeliveryKey) -> Result<(), StoreError> {
        let key = key.clone();
        self.with(move |c| {
            c.execute(
                "DELETE FROM notification_log WHERE job_id = ?1 AND step = ?2 AND destination = ?3",
                params![key.job_id, key.step as i64, key.destination],
            )
            .map(|_| ())
        })
        .await
    }
}
