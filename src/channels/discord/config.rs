//! Discord webhook settings: `webhook_url` (its last path segment is the
//! webhook's token), `thread_id`, `username`, `timeout`.

use std::time::Duration;

use url::Url;

use crate::channels::{BuildContext, ChannelSpec};
use crate::delivery::short_hash;
use crate::secret::SecretUrl;
use crate::section::Section;
use crate::template::DefaultTemplate;

#[derive(Clone, Debug)]
pub struct DiscordConfig {
    /// `https://discord.com/api/webhooks/{id}/{token}`: shown redacted.
    pub webhook_url: SecretUrl,
    /// Post into this thread of the webhook's channel (a forum post or a
    /// thread) when a target names none.
    pub thread_id: Option<String>,
    /// The name the messages show instead of the webhook's own.
    pub username: Option<String>,
    pub timeout: Duration,
}

/// What a job's target may change for a Discord destination.
#[derive(Clone, Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscordTarget {
    /// Discord: the thread (or forum post) id to post into.
    pub thread_id: Option<String>,
}

impl DiscordConfig {
    /// The webhook's id (the path segment before the token).
    pub fn webhook_id(&self) -> String {
        self.webhook_url
            .expose()
            .path_segments()
            .and_then(|s| s.rev().nth(1))
            .unwrap_or_default()
            .to_string()
    }

    /// The webhook's token.
    pub fn token(&self) -> String {
        self.webhook_url
            .expose()
            .path_segments()
            .and_then(|mut s| s.next_back())
            .unwrap_or_default()
            .to_string()
    }

    pub fn thread<'a>(&'a self, target: &'a DiscordTarget) -> Option<&'a str> {
        target.thread_id.as_deref().or(self.thread_id.as_deref())
    }
}

impl ChannelSpec for DiscordConfig {
    const NAME: &'static str = "discord";
    const TEMPLATES: &'static [DefaultTemplate] = &[DefaultTemplate {
        name: "discord/description.md.j2",
        source: include_str!("../../../templates/discord/description.md.j2"),
    }];
    /// Discord limits a webhook to about 30 messages a minute per channel.
    const DEFAULT_RATE: Option<&'static str> = Some("30/min");
    const DIGEST_BY_DEFAULT: bool = true;

    type Target = DiscordTarget;
    type Sender = super::DiscordSender;

    fn read(s: &Section) -> Option<Self> {
        let hint = "the webhook's URL, https://discord.com/api/webhooks/{id}/{token}";
        let webhook_url = s.required_string("webhook_url", hint).and_then(|text| {
            parse_webhook_url(&text)
                .map_err(|m| s.error("webhook_url", m, Some(hint)))
                .ok()
        });
        let thread_id = s.string("thread_id");
        if let Some(id) = &thread_id {
            if !is_snowflake(id) {
                s.error("thread_id", "is not a Discord id (digits)", None);
                return None;
            }
        }
        let username = s.string("username");
        let timeout = s.span("timeout").map_or(Duration::from_secs(10), |t| t.0);
        Some(Self {
            webhook_url: SecretUrl::new(webhook_url?),
            thread_id,
            username,
            timeout,
        })
    }

    fn check_target(&self, _destination: &str, target: &DiscordTarget) -> Vec<(String, String)> {
        match &target.thread_id {
            Some(id) if !is_snowflake(id) => {
                vec![("thread_id".into(), "is not a Discord id (digits)".into())]
            }
            _ => Vec::new(),
        }
    }

    /// Discord limits each webhook, whatever destinations share it.
    fn rate_scope(&self, _destination: &str, _target: &DiscordTarget) -> String {
        format!("discord:{}", short_hash(&self.webhook_id()))
    }

    fn build(&self, destination: &str, ctx: &BuildContext) -> Result<Self::Sender, String> {
        super::DiscordSender::new(destination, self, ctx)
    }
}

/// Discord's ids are decimal snowflakes.
fn is_snowflake(id: &str) -> bool {
    !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit())
}

/// A webhook URL: http(s), `/api/webhooks/{id}/{token}`. Errors never
/// quote it: it holds the token.
pub fn parse_webhook_url(text: &str) -> Result<Url, String> {
    let url = crate::section::check_url(text, &["http", "https"]).map_err(|_| {
        "is not an http(s) URL with a host (not shown: it holds the webhook's token)".to_string()
    })?;
    let segments: Vec<&str> = url.path_segments().map(|s| s.collect()).unwrap_or_default();
    let well_formed = matches!(
        segments.as_slice(),
        [.., "webhooks", id, token] if is_snowflake(id) && !token.is_empty()
    );
    if !well_formed {
        return Err(
            "is not a webhook URL (…/api/webhooks/{id}/{token}); copy it from the channel's Integrations → Webhooks"
                .into(),
        );
    }
    if url.query().is_some() {
        return Err("has a query; give the webhook URL alone (threads: `thread_id`)".into());
    }
    Ok(url)
}
