//! Record: the notification log, so a delivery is sent once.
//!
//! Each delivery is keyed by (job id, step, destination). Before a send the
//! log is read; right after the vendor accepts it, the send is written. A
//! job seen again — redelivered by the broker, or `fanout send` run twice —
//! is acked and counted, not sent. The one window left: a crash between
//! the vendor's "accepted" and the write, where the next attempt sends
//! again (channels that can, pass a stable id so the receiver drops it).
//!
//! `[store] url` picks the backend: `sqlite://PATH` (embedded, one node,
//! survives restarts; its calls run on one thread, batched into one
//! transaction per round) or `redis://…` (shared by many workers).

pub mod redis;
pub mod sqlite;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::check::CheckRow;
use crate::delivery::Delivery;
use crate::secret::Secret;

/// What the log keys a delivery by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryKey {
    pub job_id: String,
    pub step: usize,
    pub destination: String,
}

impl DeliveryKey {
    pub fn of(delivery: &Delivery) -> Self {
        Self {
            job_id: delivery.job.id.clone(),
            step: delivery.log_step(),
            destination: delivery.destination().to_string(),
        }
    }
}

/// The log could not be read or written. Never holds the store's password.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("store: {0}")]
pub struct StoreError(pub String);

fn parse_record<T: DeserializeOwned>(kind: &str, id: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError(format!("{kind} {id}: unreadable record: {e}")))
}

/// How long a redis entry is kept: longer than any retry schedule.
pub const REMEMBER_SECS: u64 = 30 * 86_400;

pub enum Store {
    Sqlite(sqlite::SqliteStore),
    Redis(redis::RedisStore),
}

impl Store {
    pub async fn open(url: &Secret) -> Result<Self, StoreError> {
        let url = url.expose();
        if let Some(path) = url.strip_prefix("sqlite://") {
            return sqlite::SqliteStore::open(path).await.map(Store::Sqlite);
        }
        redis::RedisStore::open(url).await.map(Store::Redis)
    }

    /// Open with every shared key under `namespace` (the broker prefix):
    /// two deployments on one Redis do not see each other's entries.
    pub async fn open_in(url: &Secret, namespace: &str) -> Result<Self, StoreError> {
        Ok(match Self::open(url).await? {
            Store::Redis(r) => Store::Redis(r.with_namespace(namespace)),
            other => other,
        })
    }

    /// The detail recorded when this delivery was sent, if it was.
    pub async fn was_sent(&self, key: &DeliveryKey) -> Result<Option<String>, StoreError> {
        match self {
            Store::Sqlite(s) => s.was_sent(key).await,
            Store::Redis(s) => s.was_sent(key).await,
        }
    }

    /// Write down that this delivery was accepted by the vendor.
    pub async fn record_sent(&self, key: &DeliveryKey, detail: &str) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.record_sent(key, detail).await,
            Store::Redis(s) => s.record_sent(key, detail).await,
        }
    }

    /// Reserve the next send slot (unix ms) of a rate-limited destination.
    pub async fn reserve_slot(
        &self,
        name: &str,
        limit: crate::rate::RateLimit,
        cost: u32,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        self.reserve_slot_within(name, limit, cost, now_ms, i64::MAX)
            .await
            .map(|slot| slot.unwrap_or(now_ms))
    }

    /// [`Store::reserve_slot`], but only a slot at most `within_ms` ahead
    /// of `now_ms`: `None` (and nothing reserved) when the backlog is
    /// longer than that.
    pub async fn reserve_slot_within(
        &self,
        name: &str,
        limit: crate::rate::RateLimit,
        cost: u32,
        now_ms: i64,
        within_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        match self {
            Store::Sqlite(s) => s.reserve_slot(name, limit, cost, now_ms, within_ms).await,
            Store::Redis(s) => s.reserve_slot(name, limit, cost, now_ms, within_ms).await,
        }
    }

    /// The record `kind`/`id` (a group's state, a suppression window).
    pub async fn get<T: DeserializeOwned>(
        &self,
        kind: &str,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        let text = match self {
            Store::Sqlite(s) => s.get(kind, id).await?,
            Store::Redis(s) => s.get(kind, id).await?,
        };
        text.map(|t| parse_record(kind, id, &t)).transpose()
    }

    /// Change the record `kind`/`id` atomically, across every worker
    /// sharing the store. `change` sees the current value (or `None`) and
    /// returns the new one (`None`: leave it) and a result; it may run more
    /// than once when others change the record at the same time.
    pub async fn update<T, R>(
        &self,
        kind: &'static str,
        id: &str,
        change: impl FnMut(Option<T>) -> (Option<T>, R) + Send + 'static,
    ) -> Result<R, StoreError>
    where
        T: Serialize + DeserializeOwned,
        R: Send + 'static,
    {
        self.update_with(kind, id, None, change).await
    }

    /// [`Store::record_sent`] and [`Store::update`] in one write: the
    /// deliver stage notes a send in its group as it logs it.
    pub async fn record_sent_and_update<T, R>(
        &self,
        key: &DeliveryKey,
        detail: &str,
        kind: &'static str,
        id: &str,
        change: impl FnMut(Option<T>) -> (Option<T>, R) + Send + 'static,
    ) -> Result<R, StoreError>
    where
        T: Serialize + DeserializeOwned,
        R: Send + 'static,
    {
        let sent = Some((key.clone(), detail.to_string()));
        self.update_with(kind, id, sent, change).await
    }

    /// What the deliver stage reads before a send, in one round trip: the
    /// detail logged if this delivery was sent, and the record `kind`/`id`.
    /// A record this build cannot read comes back as `None`, loudly.
    pub async fn lookup<T: DeserializeOwned>(
        &self,
        key: &DeliveryKey,
        kind: &str,
        id: &str,
    ) -> Result<(Option<String>, Option<T>), StoreError> {
        let (sent, record) = match self {
            Store::Sqlite(s) => s.lookup(key, kind, id).await?,
            Store::Redis(s) => s.lookup(key, kind, id).await?,
        };
        let record = record.and_then(|t| {
            parse_record(kind, id, &t)
                .map_err(|e| tracing::warn!(message = "Unreadable record; reading it as none.", error = %e))
                .ok()
        });
        Ok((sent, record))
    }

    async fn update_with<T, R>(
        &self,
        kind: &'static str,
        id: &str,
        sent: Option<(DeliveryKey, String)>,
        mut change: impl FnMut(Option<T>) -> (Option<T>, R) + Send + 'static,
    ) -> Result<R, StoreError>
    where
        T: Serialize + DeserializeOwned,
        R: Send + 'static,
    {
        let owned_id = id.to_string();
        let mut typed = move |current: Option<&str>| {
            // A record this build cannot read is started afresh, loudly:
            // the alternative is a group that can never be changed again.
            let current = current.and_then(|t| match parse_record(kind, &owned_id, t) {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::warn!(message = "Unreadable record; starting it afresh.", error = %e);
                    None
                }
            });
            let (new, result) = change(current);
            (new.and_then(|v| serde_json::to_string(&v).ok()), result)
        };
        match self {
            Store::Sqlite(s) => s.update(kind, id, sent, typed).await,
            Store::Redis(s) => s.update(kind, id, sent, &mut typed).await,
        }
    }

    /// Remove an entry (the check's probe).
    pub async fn forget(&self, key: &DeliveryKey) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.forget(key).await,
            Store::Redis(s) => s.forget(key).await,
        }
    }

    /// A write, a read and a removal of a probe entry.
    pub async fn check(&self) -> CheckRow {
        let probe = DeliveryKey {
            job_id: format!("fanout-check-{}", std::process::id()),
            step: 0,
            destination: "check".into(),
        };
        let (component, target) = match self {
            Store::Sqlite(s) => ("store sqlite", s.path().to_string()),
            Store::Redis(s) => ("store redis", s.shown().to_string()),
        };
        let round_trip = async {
            self.record_sent(&probe, "probe").await?;
            let found = self.was_sent(&probe).await;
            self.forget(&probe).await?;
            found
        };
        match round_trip.await {
            Ok(Some(_)) => CheckRow::ok(component, target, "read and write ok"),
            Ok(None) => CheckRow::fail(
                component,
                target,
                "a written entry was not found",
                "is another process clearing the store?",
            ),
            Err(e) => CheckRow::fail(
                component,
                target,
                e.0,
                "check [store] url and that the store is up and writable",
            ),
        }
    }
}
