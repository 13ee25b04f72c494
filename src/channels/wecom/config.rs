//! WeCom group bot settings: `webhook_url` (its `key` is the secret),
//! `mode`, default `@` mentions, `timeout`.

use std::time::Duration;

use url::Url;

use crate::channels::{BuildContext, ChannelSpec};
use crate::delivery::short_hash;
use crate::secret::SecretUrl;
use crate::template::DefaultTemplate;
use crate::section::Section;

/// The path every group bot's webhook has.
pub const SEND_PATH: &str = "/cgi-bin/webhook/send";

/// How the chart travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A markdown message, then the chart as an image message: readable
    /// with no access to any URL.
    Markdown,
    /// One card whose picture is the chart's signed URL and whose link is
    /// the panel: one message, but the phone must reach the URL.
    News,
}

#[derive(Clone, Debug)]
pub struct WecomConfig {
    /// The bot's webhook. Its `key` query parameter is the bot's secret:
    /// the URL is only ever shown redacted.
    pub webhook_url: SecretUrl,
    pub mode: Mode,
    /// User ids to `@` when a target names none (`@all` for everyone).
    pub mentioned_list: Vec<String>,
    /// Mobile numbers to `@` when a target names none.
    pub mentioned_mobile_list: Vec<String>,
    pub timeout: Duration,
}

/// What a job's target may change for a WeCom destination.
#[derive(Clone, Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WecomTarget {
    /// WeCom: user ids to `@`.
    pub mentioned_list: Option<Vec<String>>,
    /// WeCom: mobile numbers to `@`.
    pub mentioned_mobile_list: Option<Vec<String>>,
}

impl WecomConfig {
    /// The bot's key (the webhook's `key` parameter).
    pub fn key(&self) -> String {
        self.webhook_url
            .expose()
            .query_pairs()
            .find(|(k, _)| k == "key")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    }

    /// Who a delivery to `target` mentions: the target's lists, else ours.
    pub fn mentions<'a>(&'a self, target: &'a WecomTarget) -> (&'a [String], &'a [String]) {
        (
            target
                .mentioned_list
                .as_deref()
                .unwrap_or(&self.mentioned_list),
            target
                .mentioned_mobile_list
                .as_deref()
                .unwrap_or(&self.mentioned_mobile_list),
        )
    }

    /// Markdown cannot `@` a mobile number or everyone: those take a text
    /// message of their own.
    pub fn needs_mention_text(&self, target: &WecomTarget) -> bool {
        let (users, mobiles) = self.mentions(target);
        !mobiles.is_empty() || users.iter().any(|u| u == "@all")
    }
}

impl ChannelSpec for WecomConfig {
    const NAME: &'static str = "wecom";
    const TEMPLATES: &'static [DefaultTemplate] = &[
        DefaultTemplate {
            name: "wecom/markdown.md.j2",
            source: include_str!("../../../templates/wecom/markdown.md.j2"),
        },
        DefaultTemplate {
            name: "wecom/news.txt.j2",
            source: include_str!("../../../templates/wecom/news.txt.j2"),
        },
    ];
    /// A group bot takes 20 messages a minute.
    const DEFAULT_RATE: Option<&'static str> = Some("20/min");
    const DIGEST_BY_DEFAULT: bool = true;

    type Target = WecomTarget;
    type Sender = super::WecomSender;

    fn needs_chart_urls(&self) -> Option<&'static str> {
        (self.mode == Mode::News).then_some("mode")
    }

    fn read(s: &Section) -> Option<Self> {
        let hint = "the bot's webhook, https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…";
        let webhook_url = s.required_string("webhook_url", hint).and_then(|text| {
            parse_webhook_url(&text)
                .map_err(|m| s.error("webhook_url", m, Some(hint)))
                .ok()
        });
        let mode = match s.string("mode").as_deref() {
            None | Some("markdown") => Some(Mode::Markdown),
            Some("news") => Some(Mode::News),
            Some(other) => {
                s.error(
                    "mode",
                    format!("{other:?} is not a mode"),
                    Some("\"markdown\" (text, then the chart as an image) or \"news\" (a card with the chart's URL)"),
                );
                None
            }
        };
        let mentioned_list = s.string_list("mentioned_list").unwrap_or_default();
        let mentioned_mobile_list = s.string_list("mentioned_mobile_list").unwrap_or_default();
        let timeout = s.span("timeout").map_or(Duration::from_secs(10), |t| t.0);
        Some(Self {
            webhook_url: SecretUrl::new(webhook_url?),
            mode: mode?,
            mentioned_list,
            mentioned_mobile_list,
            timeout,
        })
    }

    fn check_target(&self, _destination: &str, target: &WecomTarget) -> Vec<(String, String)> {
        crate::channels::bot::check_mentions(&[
            ("mentioned_list", &target.mentioned_list),
            ("mentioned_mobile_list", &target.mentioned_mobile_list),
        ])
    }

    /// The vendor limits each bot, whatever destinations share it.
    fn rate_scope(&self, _destination: &str, _target: &WecomTarget) -> String {
        format!("wecom:{}", short_hash(&self.key()))
    }

    fn messages(&self, images: usize, target: &WecomTarget) -> u32 {
        let body = match self.mode {
            Mode::Markdown => 1 + images as u32,
            Mode::News => 1,
        };
        body + u32::from(self.needs_mention_text(target))
    }

    fn build(&self, destination: &str, ctx: &BuildContext) -> Result<Self::Sender, String> {
        super::WecomSender::new(destination, self, ctx)
    }
}

/// A bot webhook: http(s), the send path, a `key`. Errors never quote the
/// URL: it holds the key.
pub fn parse_webhook_url(text: &str) -> Result<Url, String> {
    let url = crate::section::check_url(text, &["http", "https"]).map_err(|_| {
        "is not an http(s) URL with a host (not shown: it holds the key)".to_string()
    })?;
    if !url.path().ends_with(SEND_PATH) {
        return Err(format!(
            "has the path {:?}; a group bot's webhook ends in {SEND_PATH}",
            url.path()
        ));
    }
    let key = url
        .query_pairs()
        .find(|(k, _)| k == "key")
        .map(|(_, v)| v.into_owned());
    if key.is_none_or(|k| k.trim().is_empty()) {
        return Err("has no `key` parameter; copy the whole webhook address from the bot".into());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_are_checked_without_quoting_the_key() {
        let good = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx";
        assert!(parse_webhook_url(good).is_ok());
        for bad in [
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send",
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=",
            "https://qyapi.weixin.qq.com/other?key=693a91f6-7xxx",
            "qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx",
        ] {
            let e = parse_webhook_url(bad).unwrap_err();
            assert!(!e.contains("693a91f6"), "{e}");
        }
    }
}
