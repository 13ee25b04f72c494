//! A publisher for the HTTP server's endpoints (action links, ingest):
//! one connection, opened at the first use and again when it was lost,
//! shared by concurrent publishes, each confirmed by the broker.

use std::sync::{Arc, RwLock};

use tokio::sync::Mutex;

use super::{Broker, BrokerError};
use crate::config::BrokerConfig;

pub struct Publisher {
    config: BrokerConfig,
    /// The open connection: read by every publish without waiting.
    broker: RwLock<Option<Arc<Broker>>>,
    /// Held while a connection is opened, so only one opens at a time.
    opening: Mutex<()>,
}

impl Publisher {
    pub fn new(config: BrokerConfig) -> Self {
        Self {
            config,
            broker: RwLock::new(None),
            opening: Mutex::new(()),
        }
    }

    fn current(&self) -> Option<Arc<Broker>> {
        self.broker
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .filter(|b| b.is_connected())
            .cloned()
    }

    fn set(&self, broker: Option<Arc<Broker>>) {
        *self.broker.write().unwrap_or_else(|e| e.into_inner()) = broker;
    }

    /// The connection, opened when there is none or it was lost.
    async fn connected(&self) -> Result<Arc<Broker>, BrokerError> {
        if let Some(broker) = self.current() {
            return Ok(broker);
        }
        let _opening = self.opening.lock().await;
        // Another publish may have opened it while this one waited.
        if let Some(broker) = self.current() {
            return Ok(broker);
        }
        let broker = Arc::new(Broker::connect(&self.config).await?);
        self.set(Some(broker.clone()));
        Ok(broker)
    }

    /// Publish `body` with `routing_key` and wait for the broker's confirm.
    pub async fn publish(
        &self,
        routing_key: &str,
        message_id: &str,
        body: &[u8],
    ) -> Result<(), BrokerError> {
        let broker = self.connected().await?;
        let sent = broker.publish(routing_key, message_id, body).await;
        if sent.is_err() {
            // Open a fresh connection next time.
            let mut held = self.broker.write().unwrap_or_else(|e| e.into_inner());
            if held.as_ref().is_some_and(|b| Arc::ptr_eq(b, &broker)) {
                *held = None;
            }
        }
        sent
    }
}
