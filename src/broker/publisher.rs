//! A publisher for the HTTP server's endpoints (action links, ingest):
//! one connection, opened at the first use and again when it was lost,
//! shared by concurrent publishes, each confirmed by the broker.

use std::sync::Arc;

use tokio::sync::Mutex;

use super::{Broker, BrokerError};
use crate::config::BrokerConfig;

pub struct Publisher {
    config: BrokerConfig,
    broker: Mutex<Option<Arc<Broker>>>,
}

impl Publisher {
    pub fn new(config: BrokerConfig) -> Self {
        Self {
            config,
            broker: Mutex::new(None),
        }
    }

    /// The connection, opened when there is none or it was lost.
    async fn connected(&self) -> Result<Arc<Broker>, BrokerError> {
        let mut held = self.broker.lock().await;
        if let Some(broker) = held.as_ref().filter(|b| b.is_connected()) {
            return Ok(broker.clone());
        }
        let broker = Arc::new(Broker::connect(&self.config).await?);
        *held = Some(broker.clone());
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
            let mut held = self.broker.lock().await;
            if held.as_ref().is_some_and(|b| Arc::ptr_eq(b, &broker)) {
                *held = None;
            }
        }
        sent
    }
}
