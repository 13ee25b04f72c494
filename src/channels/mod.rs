//! Channels: where notifications go. One folder per channel, registered here.
//!
//! Every channel has the same shape, all of it in its folder:
//! - a config read from its `[destinations.NAME]` table, implementing
//!   [`ChannelSpec`]: its keys, its per-target overrides (a typed struct
//!   whose schema the job contract publishes), its default templates, its
//!   vendor's rate limit, how it counts messages and where its threads live;
//! - a sender implementing [`Sender`]: compose a delivery into the vendor's
//!   request, transmit it once, say what the outbox keeps of it, probe the
//!   vendor for `fanout check`;
//! - its classification of the vendor's answers into retryable (with the
//!   vendor's `Retry-After`) or permanent, with a reason;
//! - its tests, and a file in `tests/it/conformance/` with its fake.
//!
//! What every channel shares is here, not in the channels: the outbox
//! (the same request, written instead of sent), the outbox check row, the
//! target overrides' parsing. The [`registry!`] line at the bottom declares
//! the channel's module and is the one list of channels: config parsing,
//! validation, the job schema, the templates, `fanout check`, the delivery
//! queues and metrics all read it. Adding a channel is its folder plus one
//! line there.

pub mod bot;
pub mod http;
pub mod image;
pub mod text;

use std::future::Future;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::check::CheckRow;
use crate::delivery::{Delivery, Reason, SendError, Sent};
use crate::job::Target;
use crate::outbox::Outbox;
use crate::section::Section;
use crate::template::{DefaultTemplate, Templates};

/// A channel's per-target overrides: the fields a job's `targets[]` entry
/// may set for a destination of that channel (Slack's `channel_id`), as a
/// struct with `#[serde(deny_unknown_fields)]` whose doc comments become
/// the job schema's descriptions.
pub trait TargetFields: DeserializeOwned + JsonSchema + Default + Send + Sync + 'static {}

impl<T: DeserializeOwned + JsonSchema + Default + Send + Sync + 'static> TargetFields for T {}

/// The overrides of a channel that takes none.
#[derive(Clone, Debug, Default, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoOverrides {}

/// What every channel's config says about its channel.
pub trait ChannelSpec: Sized + Clone + std::fmt::Debug {
    /// Its `channel = "…"` name, and the name of its delivery queue.
    const NAME: &'static str;
    /// Its default templates; a destination's `template` dir may
    /// override any.
    const TEMPLATES: &'static [DefaultTemplate];
    /// The vendor's own limit, kept unless the destination sets `rate`.
    const DEFAULT_RATE: Option<&'static str> = None;
    /// Whether a backlog past `digest_after` is folded into a digest by
    /// default (`on_backlog = "digest"`): the chat bots, whose quotas are
    /// where alerts die; mail and webhooks queue.
    const DIGEST_BY_DEFAULT: bool = false;

    /// Its per-target overrides.
    type Target: TargetFields;
    type Sender: Sender<Target = Self::Target>;

    /// Read the channel's own keys; errors are recorded in `section`.
    fn read(section: &Section) -> Option<Self>;

    /// Problems with a job target's overrides, as (field, message) pairs.
    fn check_target(&self, _destination: &str, _target: &Self::Target) -> Vec<(String, String)> {
        Vec::new()
    }

    /// What a rate limit counts against: the vendor's unit (one WeCom bot,
    /// one Slack channel), so destinations sharing it share the limit.
    fn rate_scope(&self, destination: &str, _target: &Self::Target) -> String {
        destination.to_string()
    }

    /// Where a group's conversation lives for a target (the key of the
    /// thread a send opened): the destination, unless the target picks
    /// another conversation (a Slack target's own `channel_id`).
    fn thread_key(&self, destination: &str, _target: &Self::Target) -> String {
        destination.to_string()
    }

    /// How many vendor messages one delivery with `images` charts makes.
    fn messages(&self, _images: usize, _target: &Self::Target) -> u32 {
        1
    }

    /// The key whose setting sends charts as links rather than attached
    /// (WeCom's `mode = "news"`): such a destination needs `[storage]`.
    fn needs_chart_urls(&self) -> Option<&'static str> {
        None
    }

    fn build(&self, destination: &str, ctx: &BuildContext) -> Result<Self::Sender, String>;
}

/// What every channel does: turn a delivery into its request, send that
/// request once, say what the outbox keeps of it, and probe its vendor.
///
/// The outbox (`fanout send --outbox`, the embedded default) is not the
/// channel's business: [`Channel::send`] writes [`Sender::outbox_file`]
/// of the very request [`Sender::transmit`] would have sent.
pub trait Sender {
    /// The channel's per-target overrides ([`ChannelSpec::Target`]).
    type Target;
    /// One delivery's request(s), rendered and ready to send.
    type Request: Send;

    /// Render the templates for `delivery` and build the request.
    fn compose(
        &self,
        delivery: &Delivery,
        target: &Self::Target,
    ) -> Result<Self::Request, SendError>;

    /// Send `request` once. Retrying is not the channel's business: it
    /// only says, through [`SendError`], whether a retry could help.
    fn transmit(
        &self,
        delivery: &Delivery,
        request: Self::Request,
    ) -> impl Future<Output = Result<Sent, SendError>> + Send;

    /// What the outbox keeps of `request`, with every secret redacted.
    fn outbox_file(&self, delivery: &Delivery, request: &Self::Request) -> OutboxFile;

    /// A cheap, real probe for `fanout check` that sends no notification.
    fn check(&self) -> impl Future<Output = CheckRow> + Send;
}

/// One delivery's file in the outbox.
pub struct OutboxFile {
    /// Its file name's ending (`.eml`, `.slack.json`).
    pub suffix: &'static str,
    pub bytes: Vec<u8>,
    /// Whether the chart PNGs the request carries are written beside it
    /// (not for a channel that sends only their URLs).
    pub charts: bool,
}

/// What building a sender needs besides its own config.
#[derive(Clone)]
pub struct BuildContext {
    pub templates: Arc<Templates>,
}

/// A job target's overrides as the channel's own type. Their names were
/// checked at validation; a value of the wrong shape is named by its field.
pub fn overrides<T: TargetFields>(target: &Target) -> Result<T, (String, String)> {
    let value = Value::Object(target.overrides.clone());
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        let message = e.into_inner().to_string();
        (field, message)
    })
}

/// The JSON Schema properties of a channel's overrides, by field name.
fn target_schema<T: TargetFields>() -> serde_json::Map<String, Value> {
    let schema = schemars::schema_for!(T).to_value();
    schema
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// One delivery through `sender`: composed, then sent or (with `outbox`)
/// written there, the charts beside it.
async fn send_with<S: Sender>(
    sender: &S,
    delivery: &Delivery,
    target: &S::Target,
    outbox: Option<&Outbox>,
) -> Result<Sent, SendError> {
    let request = sender.compose(delivery, target)?;
    let Some(outbox) = outbox else {
        return sender.transmit(delivery, request).await;
    };
    let file = sender.outbox_file(delivery, &request);
    if file.charts {
        outbox
            .write_charts(delivery)
            .map_err(|e| SendError::outbox(&e))?;
    }
    let path = outbox
        .write(delivery, file.suffix, &file.bytes)
        .map_err(|e| SendError::outbox(&e))?;
    Ok(Sent::new(format!("outbox {}", path.display())))
}

/// A target whose overrides do not read as its channel's: permanent.
fn bad_target((field, message): (String, String)) -> SendError {
    SendError::permanent(Reason::Client, format!("the target's `{field}`: {message}"))
}

/// Generates the closed set of channels and the dispatch over it from one
/// list of `Variant => module::Config` lines.
macro_rules! registry {
    ($($variant:ident => $module:ident :: $config:ident),+ $(,)?) => {
        $(pub mod $module;)+

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

            /// The JSON Schema of each per-target override it accepts.
            pub fn target_schema(self) -> serde_json::Map<String, Value> {
                match self {
                    $(ChannelKind::$variant => target_schema::<<$module::$config as ChannelSpec>::Target>()),+
                }
            }

            /// The per-target overrides it accepts, by name.
            pub fn target_fields(self) -> &'static [String] {
                match self {
                    $(ChannelKind::$variant => {
                        static FIELDS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
                        FIELDS.get_or_init(|| self.target_schema().keys().cloned().collect())
                    }),+
                }
            }

            pub fn templates(self) -> &'static [DefaultTemplate] {
                match self {
                    $(ChannelKind::$variant => <$module::$config as ChannelSpec>::TEMPLATES),+
                }
            }

            pub fn default_rate(self) -> Option<&'static str> {
                match self {
                    $(ChannelKind::$variant => <$module::$config as ChannelSpec>::DEFAULT_RATE),+
                }
            }

            pub fn digest_by_default(self) -> bool {
                match self {
                    $(ChannelKind::$variant => <$module::$config as ChannelSpec>::DIGEST_BY_DEFAULT),+
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

            /// Problems with a job target's overrides, as (field, message)
            /// pairs: a value of the wrong shape, or the channel's own rules.
            pub fn check_target(&self, target: &Target) -> Vec<(String, String)> {
                match self {
                    $(ChannelConfig::$variant(c) => match overrides(target) {
                        Ok(t) => c.check_target(&target.destination, &t),
                        Err(problem) => vec![problem],
                    }),+
                }
            }

            pub fn rate_scope(&self, destination: &str, target: &Target) -> String {
                match self {
                    $(ChannelConfig::$variant(c) => {
                        c.rate_scope(destination, &overrides(target).unwrap_or_default())
                    }),+
                }
            }

            pub fn thread_key(&self, destination: &str, target: &Target) -> String {
                match self {
                    $(ChannelConfig::$variant(c) => {
                        c.thread_key(destination, &overrides(target).unwrap_or_default())
                    }),+
                }
            }

            pub fn messages(&self, images: usize, target: &Target) -> u32 {
                match self {
                    $(ChannelConfig::$variant(c) => {
                        c.messages(images, &overrides(target).unwrap_or_default())
                    }),+
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

            /// Send `delivery` once, or with `outbox` write what would be sent.
            pub async fn send(
                &self,
                delivery: &Delivery,
                outbox: Option<&Outbox>,
            ) -> Result<Sent, SendError> {
                match self {
                    $(Channel::$variant(s) => {
                        let target = overrides(&delivery.target).map_err(bad_target)?;
                        send_with(s, delivery, &target, outbox).await
                    }),+
                }
            }

            /// The vendor's probe, or with `outbox` whether it can be written.
            pub async fn check(&self, destination: &str, outbox: Option<&Outbox>) -> CheckRow {
                if let Some(outbox) = outbox {
                    let component = format!("{} {destination}", self.kind().name());
                    let dir = outbox.dir().display().to_string();
                    return match outbox.probe() {
                        Ok(()) => CheckRow::ok(component, dir, "outbox writable"),
                        Err(e) => CheckRow::fail(
                            component,
                            dir,
                            e.to_string(),
                            "create the outbox directory or choose another with --outbox",
                        ),
                    };
                }
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
    Dingtalk => dingtalk::DingtalkConfig,
    Discord => discord::DiscordConfig,
    Telegram => telegram::TelegramConfig,
    Teams => teams::TeamsConfig,
    Feishu => feishu::FeishuConfig,
}

impl ChannelKind {
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.name() == name)
    }
}

/// Every channel's default templates, compiled, with `tz` for the local
/// times they print.
pub fn default_templates(tz: chrono_tz::Tz) -> Templates {
    let mut templates = Templates::new(tz);
    for kind in ChannelKind::ALL {
        templates.add_defaults(kind.templates());
    }
    templates
}

/// What `fanout schema` prints: the job contract, its targets taking every
/// channel's overrides. A field two channels share (`mentioned_list`) has
/// one shape; its description says what each channel does with it.
pub fn job_schema() -> Value {
    let mut fields = serde_json::Map::new();
    for kind in ChannelKind::ALL {
        for (name, schema) in kind.target_schema() {
            match fields.get_mut(&name) {
                None => {
                    fields.insert(name, schema);
                }
                Some(Value::Object(known)) => {
                    let more = schema["description"].as_str().unwrap_or_default();
                    if let Some(Value::String(said)) = known.get_mut("description") {
                        said.push(' ');
                        said.push_str(more);
                    }
                }
                Some(_) => {}
            }
        }
    }
    crate::job::schema_with_targets(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_channels_default_templates_compile() {
        let templates = default_templates(chrono_tz::UTC);
        let job: crate::job::Job = serde_json::from_str(
            r#"{"version":1,"id":"j1","alert":{"group_id":"g","title":"t"},"targets":[{"destination":"d"}]}"#,
        )
        .expect("a job");
        let delivery = Delivery::to_first_target(job);
        let context = templates.context(&delivery);
        for kind in ChannelKind::ALL {
            assert!(!kind.templates().is_empty(), "{}", kind.name());
            for t in kind.templates() {
                assert!(
                    t.name.starts_with(&format!("{}/", kind.name())),
                    "{} is named after its channel",
                    t.name
                );
                let rendered = templates.render("d", t.name, &context);
                assert!(rendered.is_ok(), "{}: {rendered:?}", t.name);
            }
        }
    }

    #[test]
    fn a_target_field_two_channels_share_has_one_shape() {
        let mut seen: std::collections::BTreeMap<String, (ChannelKind, Value)> =
            std::collections::BTreeMap::new();
        for kind in ChannelKind::ALL {
            for (name, mut schema) in kind.target_schema() {
                if let Some(o) = schema.as_object_mut() {
                    o.remove("description");
                }
                match seen.get(&name) {
                    Some((first, shape)) => assert_eq!(
                        shape,
                        &schema,
                        "`{name}` of {} and of {}",
                        first.name(),
                        kind.name()
                    ),
                    None => {
                        seen.insert(name, (*kind, schema));
                    }
                }
            }
        }
        assert!(seen.contains_key("mentioned_list") && seen.contains_key("channel_id"));
        // The published schema lists each one, with every channel's words.
        let schema = job_schema();
        let fields = &schema["$defs"]["Target"]["properties"];
        for name in seen.keys() {
            assert!(fields[name].is_object(), "{name} is in the job schema");
        }
        let said = fields["mentioned_list"]["description"].as_str().unwrap();
        assert!(
            said.contains("WeCom") && said.contains("PrometheusAlert"),
            "{said}"
        );
    }
}
