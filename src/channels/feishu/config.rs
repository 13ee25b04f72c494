//! Feishu (飞书) / Lark custom bot settings: `webhook_url` (its last path
//! segment is the bot's secret), `secret` (signature verification),
//! `app_id` and `app_secret` (an app whose image API uploads the chart),
//! `timeout`. A Lark bot's URL is on `open.larksuite.com`: the image API
//! is then Lark's too (the same origin as the webhook).

use std::time::Duration;

use url::Url;

use crate::channels::{BuildContext, ChannelSpec, NoOverrides};
use crate::delivery::short_hash;
use crate::secret::{Secret, SecretUrl};
use crate::section::Section;
use crate::template::DefaultTemplate;

pub const HOOK_PATH: &str = "/open-apis/bot/v2/hook/";

#[derive(Clone, Debug)]
pub struct FeishuConfig {
    pub webhook_url: SecretUrl,
    /// The bot's signing secret (签名校验): each body then carries
    /// `timestamp` and `sign`.
    pub secret: Option<Secret>,
    /// An app (its id and secret) allowed to upload images: the chart goes
    /// into the card. Without one the chart is a button to its signed URL.
    pub app: Option<(String, Secret)>,
    pub timeout: Duration,
}

impl FeishuConfig {
    /// Where the open platform answers: the webhook's origin.
    pub fn origin(&self) -> Url {
        let mut origin = self.webhook_url.expose().clone();
        origin.set_path("/");
        origin.set_query(None);
        origin
    }

    pub fn hook_token(&self) -> String {
        self.webhook_url
            .expose()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string()
    }
}

impl ChannelSpec for FeishuConfig {
    const NAME: &'static str = "feishu";
    const TEMPLATES: &'static [DefaultTemplate] = &[DefaultTemplate {
        name: "feishu/card.md.j2",
        source: include_str!("../../../templates/feishu/card.md.j2"),
    }];
    /// A custom bot takes 100 requests a minute (and 5 a second).
    const DEFAULT_RATE: Option<&'static str> = Some("100/min");
    const DIGEST_BY_DEFAULT: bool = true;

    type Target = NoOverrides;
    type Sender = super::FeishuSender;

    /// Without an app to upload images, the chart is a link to its URL.
    fn needs_chart_urls(&self) -> Option<&'static str> {
        self.app.is_none().then_some("app_id")
    }

    fn read(s: &Section) -> Option<Self> {
        let hint = "the bot's webhook, https://open.feishu.cn/open-apis/bot/v2/hook/… (Lark: open.larksuite.com)";
        let webhook_url = s.required_string("webhook_url", hint).and_then(|text| {
            parse_webhook_url(&text)
                .map_err(|m| s.error("webhook_url", m, Some(hint)))
                .ok()
        });
        let secret = s.secret("secret");
        let app_id = s.string("app_id");
        let app_secret = s.secret("app_secret");
        let app = match (app_id, app_secret) {
            (Some(id), Some(secret)) => Some((id, secret)),
            (None, None) => None,
            (Some(_), None) => {
                s.error("app_secret", "is required with app_id", Some("the app's App Secret, as app_secret = \"${FEISHU_APP_SECRET}\""));
                return None;
            }
            (None, Some(_)) => {
                s.error("app_id", "is required with app_secret", Some("the app's App ID (cli_…)"));
                return None;
            }
        };
        let timeout = s.span("timeout").map_or(Duration::from_secs(10), |t| t.0);
        Some(Self {
            webhook_url: SecretUrl::new(webhook_url?),
            secret,
            app,
            timeout,
        })
    }

    fn rate_scope(&self, _destination: &str, _target: &NoOverrides) -> String {
        format!("feishu:{}", short_hash(&self.hook_token()))
    }

    fn build(&self, destination: &str, ctx: &BuildContext) -> Result<Self::Sender, String> {
        super::FeishuSender::new(destination, self, ctx)
    }
}

/// A bot webhook: http(s), `/open-apis/bot/v2/hook/{token}`. Errors never
/// quote it.
pub fn parse_webhook_url(text: &str) -> Result<Url, String> {
    let url = crate::section::check_url(text, &["http", "https"]).map_err(|_| {
        "is not an http(s) URL with a host (not shown: it holds the bot's token)".to_string()
    })?;
    let token = url.path().strip_prefix(HOOK_PATH).unwrap_or_default();
    if token.is_empty() || token.contains('/') {
        return Err(format!(
            "is not a custom bot webhook ({HOOK_PATH}{{token}}); copy it from the bot's settings"
        ));
    }
    Ok(url)
}
