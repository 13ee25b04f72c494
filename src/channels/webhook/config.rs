//! Webhook destination settings: `url`, `headers`, `secret`, `timeout`.

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};

use crate::channels::{BuildContext, ChannelSpec};
use crate::secret::{Secret, SecretUrl};
use crate::template::DefaultTemplate;
use crate::section::Section;

/// Signing keys shorter than this are refused.
pub const MIN_SECRET_BYTES: usize = 16;

#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// Where to POST; its path or query may hold a key, so it is shown
    /// redacted.
    pub url: SecretUrl,
    /// Extra headers; values are treated as secrets (they are often tokens).
    pub headers: Vec<(HeaderName, Secret)>,
    /// When set, each request carries `X-Fanout-Signature`.
    pub secret: Option<Secret>,
    pub timeout: Duration,
}

impl ChannelSpec for WebhookConfig {
    const NAME: &'static str = "webhook";
    const TEMPLATES: &'static [DefaultTemplate] = &[
        DefaultTemplate {
            name: "webhook/body.json.j2",
            source: include_str!("../../../templates/webhook/body.json.j2"),
        },
    ];

    type Target = crate::channels::NoOverrides;
    type Sender = super::WebhookSender;

    fn build(&self, destination: &str, ctx: &BuildContext) -> Result<Self::Sender, String> {
        super::WebhookSender::new(destination, self, ctx)
    }

    fn read(s: &Section) -> Option<Self> {
        let url = s.url("url", &["http", "https"]);
        if !s.has("url") {
            s.error("url", "is required", Some("the endpoint to POST alerts to"));
        }
        let mut headers = Vec::new();
        let mut headers_ok = true;
        for (name, value) in s.string_map("headers").unwrap_or_default() {
            let key = format!("headers.{name}");
            match (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                (Ok(n), Ok(_)) => headers.push((n, Secret::new(value))),
                (Err(_), _) => {
                    s.error(&key, "is not a valid header name", None);
                    headers_ok = false;
                }
                (_, Err(_)) => {
                    s.error(
                        &key,
                        "is not a valid header value (control characters?)",
                        None,
                    );
                    headers_ok = false;
                }
            }
        }
        let secret = s.secret("secret");
        if let Some(secret) = &secret {
            if secret.expose().len() < MIN_SECRET_BYTES {
                s.error(
                    "secret",
                    format!(
                        "is {} bytes; at least {MIN_SECRET_BYTES} are required",
                        secret.expose().len()
                    ),
                    Some("generate one with `openssl rand -hex 32`"),
                );
                return None;
            }
        }
        let timeout = s.span("timeout").map_or(Duration::from_secs(30), |t| t.0);
        if !headers_ok {
            return None;
        }
        Some(Self {
            url: SecretUrl::new(url?),
            headers,
            secret,
            timeout,
        })
    }
}
