//! The shared notification log in Redis, for several workers.

use redis::aio::ConnectionManager;
use redis::AsyncCommands;

use super::{DeliveryKey, StoreError, REMEMBER_SECS};
use crate::deliver::rate::{RateLimit, REDIS_RESERVE};

pub struct RedisStore {
    shown: String,
    /// Put before every key: deployments sharing a Redis (their broker
    /// `prefix`) keep apart logs and rate limits.
    namespace: String,
    conn: ConnectionManager,
}

impl RedisStore {
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let shown = crate::config::reader::redact_userinfo(url).into_owned();
        let client = redis::Client::open(url).map_err(|e| StoreError(format!("{shown}: {e}")))?;
        let conn = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            ConnectionManager::new(client),
        )
        .await
        .map_err(|_| StoreError(format!("{shown}: no answer within 10s")))?
        .map_err(|e| StoreError(format!("{shown}: {e}")))?;
        Ok(Self {
            shown,
            namespace: String::new(),
            conn,
        })
    }

    /// The URL without its password.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Keys start with `namespace` from now on.
    pub fn with_namespace(mut self, namespace: &str) -> Self {
        self.namespace = namespace.to_string();
        self
    }

    fn key(&self, key: &DeliveryKey) -> String {
        // Job ids and destination names are restricted to `[A-Za-z0-9._:@-]`.
        format!(
            "{}fanout:sent:{}:{}:{}",
            self.namespace, key.job_id, key.step, key.destination
        )
    }

    pub async fn was_sent(&self, key: &DeliveryKey) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn.clone();
        conn.get(self.key(key))
            .await
            .map_err(|e| StoreError(e.to_string()))
    }

    pub async fn record_sent(&self, key: &DeliveryKey, detail: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let options = redis::SetOptions::default()
            .conditional_set(redis::ExistenceCheck::NX)
            .with_expiration(redis::SetExpiry::EX(REMEMBER_SECS));
        let _: Option<String> = conn
            .set_options(self.key(key), detail, options)
            .await
            .map_err(|e| StoreError(e.to_string()))?;
        Ok(())
    }

    pub async fn forget(&self, key: &DeliveryKey) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: i64 = conn
            .del(self.key(key))
            .await
            .map_err(|e| StoreError(e.to_string()))?;
        Ok(())
    }

    /// Reserve the next send slot of `name`, atomically in Redis.
    pub async fn reserve_slot(
        &self,
        name: &str,
        limit: RateLimit,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let mut conn = self.conn.clone();
        redis::Script::new(REDIS_RESERVE)
            .key(format!("{}fanout:rate:{name}", self.namespace))
            .arg(now_ms)
            .arg(limit.count)
            .arg(limit.period.as_millis() as i64)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| StoreError(e.to_string()))
    }
}
