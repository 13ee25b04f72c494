//! The built senders of every configured destination, by name.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use tracing::{info, warn};

use super::retry::RetryPolicy;
use crate::channels::{BuildContext, Channel};
use crate::check::CheckRow;
use crate::config::Config;
use crate::delivery::{Delivery, Outcome, Reason, SendError, Sent};
use crate::outbox::Outbox;
use crate::template::Templates;

struct Built {
    channel: Channel,
    retry: RetryPolicy,
}

/// Every destination of the config, ready to send.
pub struct Destinations {
    built: BTreeMap<String, Built>,
    templates: Arc<Templates>,
}

impl Destinations {
    /// Build every destination's sender. With `outbox`, nothing is sent:
    /// every channel writes what it would send there instead.
    pub fn build(config: &Config, outbox: Option<Outbox>) -> Result<Self, String> {
        let mut templates = Templates::new(config.templates.timezone);
        for (name, d) in &config.destinations {
            if let Some(dir) = &d.template {
                templates
                    .add_overrides(name, d.kind().name(), d.kind().templates(), dir)
                    .map_err(|e| format!("destinations.{name}.template: {e}"))?;
            }
        }
        let templates = Arc::new(templates);
        let ctx = BuildContext {
            templates: templates.clone(),
            outbox,
        };
        let mut built = BTreeMap::new();
        for (name, d) in &config.destinations {
            let channel = Channel::build(name, &d.channel, &ctx)
                .map_err(|e| format!("destinations.{name}: {e}"))?;
            built.insert(
                name.clone(),
                Built {
                    channel,
                    retry: d.retry,
                },
            );
        }
        Ok(Self { built, templates })
    }

    /// The compiled templates (for keys a job gives as templates).
    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    /// Deliver with retries in this process (for `fanout send`, which has
    /// no broker to park a retry in). Gives up after the destination's
    /// `max_attempts` or at the first permanent error.
    pub async fn deliver(&self, mut delivery: Delivery) -> Outcome {
        let started = Instant::now();
        let destination = delivery.destination().to_string();
        let Some(built) = self.built.get(&destination) else {
            // Validation rejects unknown destinations before we get here.
            return Outcome {
                channel: "?",
                attempts: 0,
                elapsed: started.elapsed(),
                result: Err(SendError::permanent(
                    Reason::Client,
                    format!("unknown destination {destination:?}"),
                )),
                destination,
            };
        };
        let channel = built.channel.kind().name();
        loop {
            let result = built.channel.send(&delivery).await;
            match &result {
                Ok(sent) => info!(
                    message = "Delivered.",
                    job = %delivery.job.id, destination, channel,
                    attempt = delivery.attempt, detail = %sent.detail
                ),
                Err(error) => warn!(
                    message = "Delivery failed.",
                    job = %delivery.job.id, destination, channel, attempt = delivery.attempt,
                    retryable = error.is_retryable(), reason = %error.reason, %error
                ),
            }
            let wait = match &result {
                Err(error) => built.retry.next_delay(delivery.attempt, error),
                Ok(_) => None,
            };
            match wait {
                Some(wait) => {
                    tokio::time::sleep(wait).await;
                    delivery.attempt += 1;
                    if let Err(error) = &result {
                        delivery.progress = error.progress.clone();
                    }
                }
                None => {
                    return Outcome {
                        destination,
                        channel,
                        attempts: delivery.attempt,
                        elapsed: started.elapsed(),
                        result,
                    }
                }
            }
        }
    }

    /// One attempt, no retry: the worker parks retries in the broker.
    pub async fn send_once(&self, delivery: &Delivery) -> Result<Sent, SendError> {
        match self.built.get(delivery.destination()) {
            Some(built) => built.channel.send(delivery).await,
            None => Err(SendError::permanent(
                Reason::Client,
                format!(
                    "destination {:?} is not in this worker's config",
                    delivery.destination()
                ),
            )),
        }
    }

    /// The channel name of a destination, for reports.
    pub fn channel_name(&self, destination: &str) -> &'static str {
        self.built
            .get(destination)
            .map_or("?", |b| b.channel.kind().name())
    }

    /// One check row per destination, probed concurrently.
    pub async fn check(&self) -> Vec<CheckRow> {
        let probes = self.built.values().map(|b| b.channel.check());
        futures::future::join_all(probes).await
    }
}
