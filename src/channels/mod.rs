//! Channels: where notifications go. One folder per channel, registered here.
//!
//! Every channel has the same shape: a config read from its
//! `[destinations.NAME]` table, a sender that implements [`Sender`], and its
//! own classification of errors into retryable or permanent. This file is
//! the one registry: [`ChannelKind::ALL`] is the list of names that config
//! parsing, `fanout check` and metrics all read, and adding a channel means
//! its folder plus one line in each `match` below.

pub mod email;
pub mod http;
pub mod webhook;

use std::future::Future;
use std::sync::Arc;

use crate::check::CheckRow;
use crate::config::reader::Section;
use crate::deliver::{Delivery, SendError, Sent};
use crate::job::Target;
use crate::outbox::Outbox;
use crate::template::Templates;

/// The closed set of channels this build can deliver to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    Email,
    Webhook,
}

impl ChannelKind {
    pub const ALL: &'static [ChannelKind] = &[ChannelKind::Email, ChannelKind::Webhook];

    pub fn name(self) -> &'static str {
        match self {
            ChannelKind::Email => "email",
            ChannelKind::Webhook => "webhook",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// Per-target overrides (job `targets[]` fields) this channel accepts.
    pub fn target_fields(self) -> &'static [&'static str] {
        match self {
            ChannelKind::Email => &["to"],
            ChannelKind::Webhook => &[],
        }
    }

    /// Its templates; a destination's `template` dir may override any.
    pub fn templates(self) -> &'static [&'static str] {
        match self {
            ChannelKind::Email => &["email/subject.j2", "email/text.j2", "email/html.j2"],
            ChannelKind::Webhook => &["webhook/body.json.j2"],
        }
    }
}

/// A destination's channel settings, as validated from its config table.
#[derive(Clone, Debug)]
pub enum ChannelConfig {
    Email(email::EmailConfig),
    Webhook(webhook::WebhookConfig),
}

impl ChannelConfig {
    pub fn kind(&self) -> ChannelKind {
        match self {
            ChannelConfig::Email(_) => ChannelKind::Email,
            ChannelConfig::Webhook(_) => ChannelKind::Webhook,
        }
    }

    /// Problems with a job target's overrides for this destination, as
    /// (field, message) pairs.
    pub fn check_target(&self, target: &Target) -> Vec<(String, String)> {
        match self {
            ChannelConfig::Email(c) => c.check_target(target),
            ChannelConfig::Webhook(c) => c.check_target(target),
        }
    }

    /// Read the channel's own keys; errors are recorded in `section`.
    pub(crate) fn read(kind: ChannelKind, section: &Section) -> Option<Self> {
        match kind {
            ChannelKind::Email => email::EmailConfig::read(section).map(ChannelConfig::Email),
            ChannelKind::Webhook => {
                webhook::WebhookConfig::read(section).map(ChannelConfig::Webhook)
            }
        }
    }
}

/// What every channel does: send one delivery, and probe its dependency.
pub trait Sender {
    /// Send `delivery` once. Retrying is not the channel's business: it
    /// only says, through [`SendError`], whether a retry could help.
    fn send(&self, delivery: &Delivery) -> impl Future<Output = Result<Sent, SendError>> + Send;

    /// A cheap, real probe for `fanout check` that sends no notification.
    fn check(&self) -> impl Future<Output = CheckRow> + Send;
}

/// What building a sender needs besides its own config.
#[derive(Clone)]
pub struct BuildContext {
    pub templates: Arc<Templates>,
    /// When set, channels write what they would send here instead.
    pub outbox: Option<Outbox>,
}

/// A built sender for one destination.
pub enum Channel {
    Email(email::EmailSender),
    Webhook(webhook::WebhookSender),
}

impl Channel {
    pub fn build(
        destination: &str,
        config: &ChannelConfig,
        ctx: &BuildContext,
    ) -> Result<Self, String> {
        match config {
            ChannelConfig::Email(c) => {
                email::EmailSender::new(destination, c, ctx).map(Channel::Email)
            }
            ChannelConfig::Webhook(c) => {
                webhook::WebhookSender::new(destination, c, ctx).map(Channel::Webhook)
            }
        }
    }

    pub fn kind(&self) -> ChannelKind {
        match self {
            Channel::Email(_) => ChannelKind::Email,
            Channel::Webhook(_) => ChannelKind::Webhook,
        }
    }

    pub async fn send(&self, delivery: &Delivery) -> Result<Sent, SendError> {
        match self {
            Channel::Email(s) => s.send(delivery).await,
            Channel::Webhook(s) => s.send(delivery).await,
        }
    }

    pub async fn check(&self) -> CheckRow {
        match self {
            Channel::Email(s) => s.check().await,
            Channel::Webhook(s) => s.check().await,
        }
    }
}
