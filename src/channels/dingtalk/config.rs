//! DingTalk (钉钉) custom robot settings: `webhook_url` (its
//! `access_token` is the robot's secret), `secret` (the robot's signing
//! secret, when its security setting is "加签"), default `@` mentions,
//! `timeout`.

use std::time::Duration;

use url::Url;

use crate::channels::{BuildContext, ChannelSpec};
use crate::delivery::short_hash;
use crate::secret::{Secret, SecretUrl};
use crate::section::Section;
use crate::template::DefaultTemplate;

/// The path every custom robot's webhook has.
pub const SEND_PATH: &str = "/robot/send";

#[derive(Clone, Debug)]
pub struct DingtalkConfig {
    /// The robot's webhook. Its `access_token` query parameter is the
    /// robot's secret: the URL is only ever shown redacted.
    pub webhook_url: SecretUrl,
    /// The signing secret (`SEC…`): each post then carries `timestamp`
    /// and `sign` in its query.
    pub secret: Option<Secret>,
    /// User ids to `@` when a target names none (`@all`: everyone).
    pub mentioned_list: Vec<String>,
    /// Mobile numbers to `@` when a target names none.
    pub mentioned_mobile_list: Vec<String>,
    pub timeout: Duration,
}

/// What a job's target may change for a DingTalk destination.
#[derive(Clone, Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DingtalkTarget {
    /// DingTalk: user ids to `@` (`atUserIds`; `@all` sets `isAtAll`).
    pub mentioned_list: Option<Vec<String>>,
    /// DingTalk: mobile numbers to `@` (`atMobiles`).
    pub mentioned_mobile_list: Option<Vec<String>>,
}

impl DingtalkConfig {
    /// The robot's `access_token`.
    pub fn access_token(&self) -> String {
        self.webhook_url
            .expose()
            .query_pairs()
            .find(|(k, _)| k == "access_token")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    }

    /// Who a delivery to `target` mentions: (user ids, mobiles, everyone).
    pub fn mentions(&self, target: &DingtalkTarget) -> (Vec<String>, Vec<String>, bool) {
        let users = target
            .mentioned_list
            .as_deref()
            .unwrap_or(&self.mentioned_list);
        let mobiles = target
            .mentioned_mobile_list
            .as_deref()
            .unwrap_or(&self.mentioned_mobile_list);
        let everyone = users.iter().any(|u| u == "@all");
        let users = users.iter().filter(|u| *u != "@all").cloned().collect();
        (users, mobiles.to_vec(), everyone)
    }
}

impl ChannelSpec for DingtalkConfig {
    const NAME: &'static str = "dingtalk";
    const TEMPLATES: &'static [DefaultTemplate] = &[DefaultTemplate {
        name: "dingtalk/markdown.md.j2",
        source: include_str!("../../../templates/dingtalk/markdown.md.j2"),
    }];
    /// A custom robot takes 20 messages a minute.
    const DEFAULT_RATE: Option<&'static str> = Some("20/min");
    const DIGEST_BY_DEFAULT: bool = true;

    type Target = DingtalkTarget;
    type Sender = super::DingtalkSender;

    /// Markdown shows a picture only by its URL: the chart must be served.
    fn needs_chart_urls(&self) -> Option<&'static str> {
        Some("channel")
    }

    fn read(s: &Section) -> Option<Self> {
        let hint = "the robot's webhook, https://oapi.dingtalk.com/robot/send?access_token=…";
        let webhook_url = s.required_string("webhook_url", hint).and_then(|text| {
            parse_webhook_url(&text)
                .map_err(|m| s.error("webhook_url", m, Some(hint)))
                .ok()
        });
        let secret = s.secret("secret");
        if let Some(secret) = &secret {
            if !secret.expose().starts_with("SEC") {
                s.error(
                    "secret",
                    "is not a DingTalk signing secret (those start with SEC)",
                    Some("copy it from the robot's security settings, 加签"),
                );
                return None;
            }
        }
        let mentioned_list = s.string_list("mentioned_list").unwrap_or_default();
        let mentioned_mobile_list = s.string_list("mentioned_mobile_list").unwrap_or_default();
        let timeout = s.span("timeout").map_or(Duration::from_secs(10), |t| t.0);
        Some(Self {
            webhook_url: SecretUrl::new(webhook_url?),
            secret,
            mentioned_list,
            mentioned_mobile_list,
            timeout,
        })
    }

    fn check_target(&self, _destination: &str, target: &DingtalkTarget) -> Vec<(String, String)> {
        crate::channels::bot::check_mentions(&[
            ("mentioned_list", &target.mentioned_list),
            ("mentioned_mobile_list", &target.mentioned_mobile_list),
        ])
    }

    /// The vendor limits each robot, whatever destinations share it.
    fn rate_scope(&self, _destination: &str, _target: &DingtalkTarget) -> String {
        format!("dingtalk:{}", short_hash(&self.access_token()))
    }

    fn build(&self, destination: &str, ctx: &BuildContext) -> Result<Self::Sender, String> {
        super::DingtalkSender::new(destination, self, ctx)
    }
}

/// A robot webhook: http(s), the send path, an `access_token`. Errors
/// never quote the URL: it holds the token.
pub fn parse_webhook_url(text: &str) -> Result<Url, String> {
    let url = crate::section::check_url(text, &["http", "https"]).map_err(|_| {
        "is not an http(s) URL with a host (not shown: it holds the access token)".to_string()
    })?;
    if !url.path().ends_with(SEND_PATH) {
        return Err(format!(
            "has the path {:?}; a custom robot's webhook ends in {SEND_PATH}",
            url.path()
        ));
    }
    let token = url
        .query_pairs()
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v.into_owned());
    if token.is_none_or(|t| t.trim().is_empty()) {
        return Err(
            "has no `access_token` parameter; copy the whole webhook address from the robot"
                .into(),
        );
    }
    Ok(url)
}
