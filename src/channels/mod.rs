//! Channels: where notifications go. One folder per channel, registered here.
//!
//! Every channel has the same shape: a config read from its
//! `[destinations.NAME]` table that implements [`ChannelSpec`], a sender
//! that implements [`Sender`], and its own classification of errors into
//! retryable or permanent. The [`registry!`] line at the bottom is the one
//! list of channels: config parsing, `fanout check`, the delivery queues and
//! metrics all read it. Adding a channel is its folder plus one line there.

pub mod email;
pub mod http;
pub mod image;
pub mod prometheusalert;
pub mod slack;
pub mod text;
pub mod webhook;
pub mod wecom;

use std::future::Future;
use std::sync::Arc;

use crate::check::CheckRow;
use crate::delivery::{Delivery, SendError, Sent};
use crate::job::Target;
use crate::outbox::Outbox;
use crate::section::Section;
use crate::template::Templates;

/// What every channel's config says about its channel.
pub trait ChannelSpec: Sized + Clone + std::fmt::Debug {
    /// Its `channel = "…"` name, and the name of its delivery queue.
    const NAME: &'static str;
    /// Per-target overrides (job `targets[]` fields) it accepts.
    const TARGET_FIELDS: &'static [&'static str];
    /// Its templates; a destination's `template` dir may override any.
    const TEMPLATES: &'static [&'static str];
    /// The vendor's own limit, kept unless the destination sets `rate`.
    const DEFAULT_RATE: Option<&'static str> = None;

    type Sender: Sender;

    /// Read the channel's own keys; errors are recorded in `section`.
    fn read(section: &Section) -> Option<Self>;

    /// Problems with a job target's overrides, as (field, message) pairs.
    fn check_target(&self, _target: &Target) -> Vec<(String, String)> {
        Vec::new()
    }

    /// What a rate limit counts against: the vendor's unit (one WeCom bot,
    /// one Slack channel), so destinations sharing it share the limit.
    fn rate_scope(&self, destination: &str, _target: &Target) -> String {
        destination.to_string()
    }

    /// How many vendor messages one delivery with `images` charts makes.
    fn messages(&self, _images: usize, _target: &Target) -> u32 {
        1
    }

    /// The key whose setting sends charts as links rather than attached
    /// (WeCom's `mode = "news"`): such a destination needs `[storage]`.
    fn needs_chart_urls(&self) -> Option<&'static str> {
        None
    }

    fn build(&self, destination: &str, ctx: &BuildContext) -> Result<Self::Sender, String>;
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

/// Generates the closed set of channels and the dispatch over it from one
/// list of `Variant => module::Config` lines.
macro_rules! registry {
    ($($variant:ident => $module:ident :: $config:ident),+ $(,)?) => {
        /// The closed set of channels this build can deliver to.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ChannelKind {
            $($variant),+
        }

        impl ChannelKind {
            pub const ALL: &'static [ChannelKind] = &[$(ChannelKind::$variant),+];

            pub fn name(self) -> &'static str {
                match self {
                    $(ChannelKind::$variant => <$module::$config as ChannelSpec>::NAME),+
                }
            }

            pub fn target_fields(self) -> &'static [&'static str] {
                match self {
                    $(ChannelKind::$variant => <$module::$config as ChannelSpec>::TARGET_FIELDS),+
                }
            }

            pub fn templates(self) -> &'static [&'static str] {
                match self {
                    $(ChannelKind::$variant => <$module::$config as ChannelSpec>::TEMPLATES),+
                }
            }

            pub fn default_rate(self) -> Option<&'static str> {
                match self {
                    $(ChannelKind::$variant => <$module::$config as ChannelSpec>::DEFAULT_RATE),+
                }
            }

            /// Read the channel's own keys; errors are recorded in `section`.
            pub(crate) fn read(self, section: &Section) -> Option<ChannelConfig> {
                match self {
                    $(ChannelKind::$variant => {
                        <$module::$config as ChannelSpec>::read(section).map(ChannelConfig::$variant)
                    }),+
                }
            }
        }

        /// A destination's channel settings, as validated from its config table.
        #[derive(Clone, Debug)]
        pub enum ChannelConfig {
            $($variant($module::$config)),+
        }

        impl ChannelConfig {
            pub fn kind(&self) -> ChannelKind {
                match self {
                    $(ChannelConfig::$variant(_) => ChannelKind::$variant),+
                }
            }

            pub fn check_target(&self, target: &Target) -> Vec<(String, String)> {
                match self {
                    $(ChannelConfig::$variant(c) => c.check_target(target)),+
                }
            }

            pub fn rate_scope(&self, destination: &str, target: &Target) -> String {
                match self {
                    $(ChannelConfig::$variant(c) => c.rate_scope(destination, target)),+
                }
            }

            pub fn messages(&self, images: usize, target: &Target) -> u32 {
                match self {
                    $(ChannelConfig::$variant(c) => c.messages(images, target)),+
                }
            }

            pub fn needs_chart_urls(&self) -> Option<&'static str> {
                match self {
                    $(ChannelConfig::$variant(c) => c.needs_chart_urls()),+
                }
            }
        }

        /// A built sender for one destination.
        pub enum Channel {
            $($variant(<$module::$config as ChannelSpec>::Sender)),+
        }

        impl Channel {
            pub fn build(
                destination: &str,
                config: &ChannelConfig,
                ctx: &BuildContext,
            ) -> Result<Self, String> {
                match config {
                    $(ChannelConfig::$variant(c) => c.build(destination, ctx).map(Channel::$variant)),+
                }
            }

            pub fn kind(&self) -> ChannelKind {
                match self {
                    $(Channel::$variant(_) => ChannelKind::$variant),+
                }
            }

            pub async fn send(&self, delivery: &Delivery) -> Result<Sent, SendError> {
                match self {
                    $(Channel::$variant(s) => s.send(delivery).await),+
                }
            }

            pub async fn check(&self) -> CheckRow {
                match self {
                    $(Channel::$variant(s) => s.check().await),+
                }
            }
        }
    };
}

registry! {
    Email => email::EmailConfig,
    Webhook => webhook::WebhookConfig,
    Wecom => wecom::WecomConfig,
    PrometheusAlert => prometheusalert::PrometheusAlertConfig,
    Slack => slack::SlackConfig,
}

impl ChannelKind {
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.name() == name)
    }
}
