//! The registry of destinations: every `[destinations.NAME]` of the
//! config with its built sender, its retry policy and its rate limit,
//! looked up once by name.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::channels::{BuildContext, Channel, ChannelKind};
use crate::check::CheckRow;
use crate::config::{self, Config};
use crate::delivery::{Delivery, SendError, Sent};
use crate::job::{Suppress, Target};
use crate::outbox::Outbox;
use crate::rate::RateLimit;
use crate::retry::RetryPolicy;
use crate::template::Templates;

/// One configured destination, ready to send.
pub struct Destination {
    settings: config::Destination,
    sender: Channel,
    /// When set, what would be sent is written here instead.
    outbox: Option<Outbox>,
}

impl Destination {
    /// Its `[destinations.NAME]` name.
    pub fn name(&self) -> &str {
        &self.settings.name
    }

    pub fn kind(&self) -> ChannelKind {
        self.settings.kind()
    }

    /// Its channel's name (`slack`, `wecom`, …), for logs and metrics.
    pub fn channel(&self) -> &'static str {
        self.kind().name()
    }

    pub fn retry(&self) -> &RetryPolicy {
        &self.settings.retry
    }

    /// Sends allowed per period, kept by fanout (`rate = "20/min"`).
    pub fn rate(&self) -> Option<RateLimit> {
        self.settings.rate
    }

    /// What a long backlog of this destination becomes.
    pub fn backlog(&self) -> crate::rate::Backlog {
        self.settings.backlog
    }

    /// Repeat suppression for jobs that set none of their own.
    pub fn suppress(&self) -> Option<&Suppress> {
        self.settings.suppress.as_ref()
    }

    /// What its rate limit counts against for `target` (one WeCom bot,
    /// one Slack channel), so destinations sharing it share the limit.
    pub fn rate_scope(&self, target: &Target) -> String {
        self.settings.channel.rate_scope(self.name(), target)
    }

    /// Where the group's conversation lives for `target` (the key of the
    /// thread a send opened).
    pub fn thread_key(&self, target: &Target) -> String {
        self.settings.channel.thread_key(self.name(), target)
    }

    /// How many vendor messages a delivery with `images` charts makes.
    pub fn messages(&self, images: usize, target: &Target) -> u32 {
        self.settings.channel.messages(images, target)
    }

    /// One attempt (with an outbox: written there, not sent). Retrying
    /// is the [`crate::pipeline`]'s business.
    pub async fn send(&self, delivery: &Delivery) -> Result<Sent, SendError> {
        self.sender.send(delivery, self.outbox.as_ref()).await
    }

    /// Its `fanout check` row: the vendor's probe, or the outbox's.
    pub async fn check(&self) -> CheckRow {
        self.sender.check(self.name(), self.outbox.as_ref()).await
    }
}

/// Every destination of the config, ready to send.
pub struct Destinations {
    built: BTreeMap<String, Destination>,
    templates: Arc<Templates>,
}

impl Destinations {
    /// Build every destination's sender. With `outbox`, nothing is sent:
    /// every channel writes what it would send there instead.
    pub fn build(config: &Config, outbox: Option<Outbox>) -> Result<Self, String> {
        let mut templates = crate::channels::default_templates(config.templates.timezone);
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
        };
        let mut built = BTreeMap::new();
        for (name, d) in &config.destinations {
            let sender = Channel::build(name, &d.channel, &ctx)
                .map_err(|e| format!("destinations.{name}: {e}"))?;
            built.insert(
                name.clone(),
                Destination {
                    settings: d.clone(),
                    sender,
                    outbox: outbox.clone(),
                },
            );
        }
        Ok(Self { built, templates })
    }

    /// The destination called `name`, if the config has it.
    pub fn get(&self, name: &str) -> Option<&Destination> {
        self.built.get(name)
    }

    /// The compiled templates (for keys a job gives as templates).
    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    /// One check row per destination, probed concurrently.
    pub async fn check(&self) -> Vec<CheckRow> {
        let probes = self.built.values().map(Destination::check);
        futures::future::join_all(probes).await
    }
}
