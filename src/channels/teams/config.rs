//! Microsoft Teams settings: `webhook_url` (a Workflows "When a Teams
//! webhook request is received" URL; its `sig` is the secret), `timeout`.
//! The Office 365 connectors' incoming webhooks are retired; a Workflows
//! URL takes the same Adaptive Card message.

use std::time::Duration;

use url::Url;

use crate::channels::{BuildContext, ChannelSpec, NoOverrides};
use crate::delivery::short_hash;
use crate::secret::SecretUrl;
use crate::section::Section;
use crate::template::DefaultTemplate;

#[derive(Clone, Debug)]
pub struct TeamsConfig {
    /// The workflow's URL; its `sig` parameter is the secret, so it is
    /// shown redacted.
    pub webhook_url: SecretUrl,
    pub timeout: Duration,
}

impl ChannelSpec for TeamsConfig {
    const NAME: &'static str = "teams";
    const TEMPLATES: &'static [DefaultTemplate] = &[DefaultTemplate {
        name: "teams/message.md.j2",
        source: include_str!("../../../templates/teams/message.md.j2"),
    }];
    /// fanout's conservative default: a workflow runs per message, and
    /// Teams throttles a channel's bot posts.
    const DEFAULT_RATE: Option<&'static str> = Some("30/min");
    const DIGEST_BY_DEFAULT: bool = true;

    type Target = NoOverrides;
    type Sender = super::TeamsSender;

    /// A card shows a picture only by its URL: the chart must be served.
    fn needs_chart_urls(&self) -> Option<&'static str> {
        Some("channel")
    }

    fn read(s: &Section) -> Option<Self> {
        let hint = "the workflow's HTTP POST URL (Teams: Workflows → \"Post to a channel when a webhook request is received\")";
        let webhook_url = s.required_string("webhook_url", hint).and_then(|text| {
            parse_webhook_url(&text)
                .map_err(|m| s.error("webhook_url", m, Some(hint)))
                .ok()
        });
        let timeout = s.span("timeout").map_or(Duration::from_secs(15), |t| t.0);
        Some(Self {
            webhook_url: SecretUrl::new(webhook_url?),
            timeout,
        })
    }

    fn rate_scope(&self, destination: &str, _target: &NoOverrides) -> String {
        let url = self.webhook_url.expose();
        format!("teams:{}", short_hash(&format!("{destination}{}", url.path())))
    }

    fn build(&self, destination: &str, ctx: &BuildContext) -> Result<Self::Sender, String> {
        super::TeamsSender::new(destination, self, ctx)
    }
}

/// A workflow URL: http(s), with its `sig`. Errors never quote it.
pub fn parse_webhook_url(text: &str) -> Result<Url, String> {
    let url = crate::section::check_url(text, &["http", "https"]).map_err(|_| {
        "is not an http(s) URL with a host (not shown: it holds the workflow's signature)".to_string()
    })?;
    let signed = url.query_pairs().any(|(k, v)| k == "sig" && !v.is_empty());
    if !signed || !url.path().contains("/workflows/") {
        return Err(
            "is not a Workflows webhook URL (…/workflows/…/invoke?…&sig=…); copy the whole HTTP POST URL from the workflow"
                .into(),
        );
    }
    Ok(url)
}
