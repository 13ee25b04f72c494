//! The shared notification log in Redis, for several workers.

use redis::aio::ConnectionManager;
use redis::AsyncCommands;

use super::{DeliveryKey, StoreError, REMEMBER_SECS};
use crate::rate::{RateLimit, REDIS_RESERVE};

/// How often a contended update reads and tries again.
const CAS_ROUNDS: u32 = 100;

/// Set KEYS[1] to ARGV[3] (expiring in ARGV[4] s) only if it still holds
/// what was read: ARGV[2] when ARGV[1] is "1", nothing when "0". With a
/// KEYS[2], first write that log entry (ARGV[5]) if it is not there: a
/// sent delivery is recorded even when the swap has to run again.
const COMPARE_AND_SET: &str = r#"
if KEYS[2] then redis.call('SET', KEYS[2], ARGV[5], 'NX', 'EX', ARGV[4]) end
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4])
return 1
"#;

pub struct RedisStore {
    shown: String,
    /// Put before every key: deployments sharing a Redis (their broker
    /// `prefix`) keep apart logs and rate limits.
    namespace: String,
    conn: ConnectionManager,
}

impl RedisStore {
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let shown = crate::net::redact_userinfo(url).into_owned();
        let client = redis::Client::open(url).map_err(|e| StoreError(format!("{shown}: {e}")))?;
        // A few quick tries per connect: a Redis that is down is waited
        // for by the caller (the worker retries with its own backoff and
        // says so), not inside one call for tens of seconds; a Redis that
        // hangs fails a command after 10 s instead of holding it forever.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_factor(2)
            .set_max_delay(2_000)
            .set_connection_timeout(std::time::Duration::from_secs(5))
            .set_response_timeout(std::time::Duration::from_secs(10));
        let conn = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            ConnectionManager::new_with_config(client, config),
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

    fn record_key(&self, kind: &str, id: &str) -> String {
        format!("{}fanout:{kind}:{id}", self.namespace)
    }

    /// The log's entry for `key` and the record `kind`/`id`, in one MGET.
    pub async fn lookup(
        &self,
        key: &DeliveryKey,
        kind: &str,
        id: &str,
    ) -> Result<(Option<String>, Option<String>), StoreError> {
        let mut conn = self.conn.clone();
        let (sent, record): (Option<String>, Option<String>) = redis::cmd("MGET")
            .arg(self.key(key))
            .arg(self.record_key(kind, id))
            .query_async(&mut conn)
            .await
            .map_err(|e| StoreError(e.to_string()))?;
        Ok((sent, record))
    }

    /// The record `kind`/`id`, if there is one.
    pub async fn get(&self, kind: &str, id: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn.clone();
        conn.get(self.record_key(kind, id))
            .await
            .map_err(|e| StoreError(e.to_string()))
    }

    /// Read, change and write the record `kind`/`id`: the write happens
    /// only if nobody changed the record since it was read (compare and
    /// set in one script), else the change runs again on the new value.
    ///
    /// With `sent`, that log entry is written by the same script.
    pub async fn update<R>(
        &self,
        kind: &str,
        id: &str,
        sent: Option<(DeliveryKey, String)>,
        mut change: impl FnMut(Option<&str>) -> (Option<String>, R),
    ) -> Result<R, StoreError> {
        let key = self.record_key(kind, id);
        let script = redis::Script::new(COMPARE_AND_SET);
        for round in 0..CAS_ROUNDS {
            let mut conn = self.conn.clone();
            let current: Option<String> = conn
                .get(&key)
                .await
                .map_err(|e| StoreError(e.to_string()))?;
            let (new, result) = change(current.as_deref());
            let Some(new) = new else {
                if let Some((sent, detail)) = &sent {
                    self.record_sent(sent, detail).await?;
                }
                return Ok(result);
            };
            let mut invocation = script.key(&key);
            if let Some((sent, _)) = &sent {
                invocation.key(self.key(sent));
            }
            let swapped: i64 = invocation
                .arg(if current.is_some() { "1" } else { "0" })
                .arg(current.as_deref().unwrap_or(""))
                .arg(&new)
                .arg(REMEMBER_SECS)
                .arg(sent.as_ref().map_or("", |(_, detail)| detail.as_str()))
                .invoke_async(&mut conn)
                .await
                .map_err(|e| StoreError(e.to_string()))?;
            if swapped == 1 {
                return Ok(result);
            }
            // Someone else changed it: read again, after a little jitter so
            // two racing workers do not collide in step.
            let pause = 1 + fastrand::u64(0..(2 + round as u64 * 2));
            tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
        }
        Err(StoreError(format!(
            "{kind} {id}: changed by others {CAS_ROUNDS} times in a row; giving up"
        )))
    }

    /// Reserve the next send slot of `name`, atomically in Redis.
    pub async fn reserve_slot(
        &self,
        name: &str,
        limit: RateLimit,
        cost: u32,
        now_ms: i64,
        within_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let mut conn = self.conn.clone();
        let at: i64 = redis::Script::new(REDIS_RESERVE)
            .key(format!("{}fanout:rate:{name}", self.namespace))
            .arg(now_ms)
            .arg(limit.count)
            .arg(limit.period_ms())
            .arg(cost)
            .arg(within_ms)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| StoreError(e.to_string()))?;
        Ok((at >= 0).then_some(at))
    }
}
