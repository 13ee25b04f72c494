//! Slack settings: a bot `token` (secret), `channel_id`, `api_url` (for
//! tests and proxies), `timeout`.

use std::time::Duration;

use url::Url;

use crate::channels::{BuildContext, ChannelSpec};
use crate::secret::Secret;
use crate::template::DefaultTemplate;
use crate::section::Section;

pub const DEFAULT_API_URL: &str = "https://slack.com/api/";

#[derive(Clone, Debug)]
pub struct SlackConfig {
    /// A bot token (`xoxb-…`) with `chat:write` and `files:write`.
    pub token: Secret,
    pub channel_id: String,
    /// Where the Web API methods live, ending in `/`.
    pub api_url: Url,
    pub timeout: Duration,
}

/// What a job's target may change for a Slack destination.
#[derive(Clone, Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlackTarget {
    /// Slack: channel instead of the destination's `channel_id`.
    pub channel_id: Option<String>,
}

impl SlackConfig {
    /// The channel of a delivery: the target's, else ours.
    pub fn channel_for<'a>(&'a self, target: &'a SlackTarget) -> &'a str {
        target.channel_id.as_deref().unwrap_or(&self.channel_id)
    }
}

/// Slack channel ids: C… (public), G… (private, older), D… (direct).
pub fn is_channel_id(id: &str) -> bool {
    id.len() >= 2
        && id.len() <= 32
        && id.starts_with(['C', 'G', 'D'])
        && id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

impl ChannelSpec for SlackConfig {
    const NAME: &'static str = "slack";
    const TEMPLATES: &'static [DefaultTemplate] = &[
        DefaultTemplate {
            name: "slack/message.json.j2",
            source: include_str!("../../../templates/slack/message.json.j2"),
        },
    ];
    /// Slack takes about one message a second per channel.
    const DEFAULT_RATE: Option<&'static str> = Some("1/s");
    const DIGEST_BY_DEFAULT: bool = true;

    type Target = SlackTarget;
    type Sender = super::SlackSender;

    fn read(s: &Section) -> Option<Self> {
        let token = s.secret("token");
        if !s.has("token") {
            s.error(
                "token",
                "is required",
                Some(
                    "the app's Bot User OAuth Token (xoxb-…), e.g. token = \"${SLACK_BOT_TOKEN}\"",
                ),
            );
        }
        if let Some(t) = &token {
            if !t.expose().starts_with("xox") {
                s.error(
                    "token",
                    "is not a Slack token (they start with xoxb- or xoxp-)",
                    Some("copy the Bot User OAuth Token from the app's OAuth & Permissions page"),
                );
            }
        }
        let channel_id = s
            .required_string(
                "channel_id",
                "the channel's id, e.g. C0123ABCD (channel details → About)",
            )
            .filter(|id| {
                let ok = is_channel_id(id);
                if !ok {
                    s.error(
                        "channel_id",
                        format!("{id:?} is not a channel id"),
                        Some("an id like C0123ABCD, not the #name (channel details → About)"),
                    );
                }
                ok
            });
        let api_url = match s.has("api_url") {
            true => s.url("api_url", &["http", "https"]),
            false => Url::parse(DEFAULT_API_URL).ok(),
        }
        .map(|mut u| {
            if !u.path().ends_with('/') {
                let path = format!("{}/", u.path());
                u.set_path(&path);
            }
            u
        });
        let timeout = s.span("timeout").map_or(Duration::from_secs(10), |t| t.0);
        Some(Self {
            token: token.filter(|t| t.expose().starts_with("xox"))?,
            channel_id: channel_id?,
            api_url: api_url?,
            timeout,
        })
    }

    fn check_target(&self, _destination: &str, target: &SlackTarget) -> Vec<(String, String)> {
        match &target.channel_id {
            Some(id) if !is_channel_id(id) => vec![(
                "channel_id".into(),
                format!("{id:?} is not a channel id (like C0123ABCD)"),
            )],
            _ => Vec::new(),
        }
    }

    /// Slack limits each channel.
    fn rate_scope(&self, _destination: &str, target: &SlackTarget) -> String {
        format!("slack:{}", self.channel_for(target))
    }

    /// A target in a channel of its own has a thread of its own there.
    fn thread_key(&self, destination: &str, target: &SlackTarget) -> String {
        match &target.channel_id {
            Some(channel) => format!("{destination}#{channel}"),
            None => destination.to_string(),
        }
    }

    /// The message, and one more for the charts' upload when there are any.
    fn messages(&self, images: usize, _target: &SlackTarget) -> u32 {
        1 + u32::from(images > 0)
    }

    fn build(&self, destination: &str, ctx: &BuildContext) -> Result<Self::Sender, String> {
        super::SlackSender::new(destination, self, ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_ids_look_like_slack_s() {
        for good in ["C0123ABCD", "G12345", "D0AB"] {
            assert!(is_channel_id(good), "{good}");
        }
        for bad in ["#ops", "c0123", "C01-23", "", "X123"] {
            assert!(!is_channel_id(bad), "{bad}");
        }
    }
}
