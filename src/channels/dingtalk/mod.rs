//! DingTalk (钉钉) custom robots: one markdown message, the chart in it
//! as a picture by its signed URL (markdown cannot carry the bytes, so a
//! DingTalk destination needs `[storage]`), `@` mentions in `at`.
//!
//! The robot answers HTTP 200 whatever happens; the `errcode` in the body
//! says what did ([`judge`]). With a signing secret, each post carries
//! `timestamp` (Unix milliseconds) and `sign`: base64 of HMAC-SHA256 over
//! `"{timestamp}\n{secret}"` keyed by the secret, URL-encoded in the query
//! (DingTalk's custom robot docs, 安全设置 · 加签). The robot refuses a
//! timestamp more than an hour from its clock.

pub mod config;
#[cfg(test)]
mod tests;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

pub use config::{DingtalkConfig, DingtalkTarget};

use super::http::{classify, transport_error, SenderParts};
use super::text::{fit_bytes, CUT};
use super::{BuildContext, OutboxFile, Sender};
use crate::check::CheckRow;
use crate::delivery::{Class, Delivery, Reason, SendError, Sent};
use crate::secret::REDACTED;
use crate::template::fit::Unit;

/// The most bytes of markdown text one message takes.
pub const MARKDOWN_MAX_BYTES: usize = 20_000;
/// The title: what the phone's notification shows.
pub const TITLE_MAX_CHARS: usize = 64;

pub struct DingtalkSender {
    config: DingtalkConfig,
    parts: SenderParts,
}

/// `sign` for a post at `timestamp_ms` (before URL-encoding).
pub fn sign(secret: &str, timestamp_ms: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(format!("{timestamp_ms}\n{secret}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

impl DingtalkSender {
    pub fn new(
        destination: &str,
        config: &DingtalkConfig,
        ctx: &BuildContext,
    ) -> Result<Self, String> {
        Ok(Self {
            config: config.clone(),
            parts: SenderParts::new(destination, config.timeout, ctx)?,
        })
    }

    fn what(&self) -> String {
        format!("dingtalk robot {}", self.config.webhook_url)
    }

    /// The URL of one post: signed now when the robot wants signatures.
    fn url(&self) -> url::Url {
        let mut url = self.config.webhook_url.expose().clone();
        if let Some(secret) = &self.config.secret {
            let now = chrono::Utc::now().timestamp_millis();
            url.query_pairs_mut()
                .append_pair("timestamp", &now.to_string())
                .append_pair("sign", &sign(secret.expose(), now));
        }
        url
    }

    /// The message: the markdown (its free text cut so that it and the
    /// `@` line fit), a title for the notification, and `at`.
    pub fn message(&self, delivery: &Delivery, target: &DingtalkTarget) -> Result<Value, SendError> {
        let (users, mobiles, everyone) = self.config.mentions(target);
        // A mention shows only when its `@` is in the text too.
        let tags: Vec<String> = mobiles
            .iter()
            .chain(users.iter())
            .map(|m| format!("@{m}"))
            .collect();
        let suffix = if tags.is_empty() {
            String::new()
        } else {
            format!("\n\n{}", tags.join(" "))
        };
        let room = MARKDOWN_MAX_BYTES.saturating_sub(suffix.len());
        let fitted = self
            .parts
            .templates
            .render_fitted(
                &self.parts.destination,
                "dingtalk/markdown.md.j2",
                delivery,
                Unit::Bytes,
                |t| t.trim().len().saturating_sub(room),
            )
            .map_err(|e| SendError::permanent(Reason::Template, e.to_string()))?;
        let text = fit_bytes(fitted.text.trim(), room, CUT);
        let alert = &delivery.job.alert;
        let state = match alert.status {
            crate::job::Status::Resolved => "RESOLVED".to_string(),
            _ => format!("{:?}", alert.severity).to_uppercase(),
        };
        let title: String = format!("[{state}] {}", alert.title)
            .chars()
            .take(TITLE_MAX_CHARS)
            .collect();
        Ok(json!({
            "msgtype": "markdown",
            "markdown": { "title": title, "text": format!("{text}{suffix}") },
            "at": { "atMobiles": mobiles, "atUserIds": users, "isAtAll": everyone },
        }))
    }
}

/// What the robot's answer says: errcode 0 is delivered; busy (-1) and
/// sending too fast (130101: over 20 a minute) are worth another try;
/// a security setting not met (310000: keyword, signature or IP), an
/// unknown token (300001) or anything else fails the same way again.
/// The codes are DingTalk's custom-robot error codes as its docs list
/// them; the official table was not reachable from here, so they were
/// checked against the issue and public client code.
pub fn judge(body: &[u8], what: &str, token: &str) -> Result<(), SendError> {
    let Some(refusal) = super::bot::answer(body, what, token)? else {
        return Ok(());
    };
    let message = refusal.message;
    let (class, reason, hint) = match refusal.errcode {
        130101 | 410100 => (
            Class::Retry { after: None },
            Reason::RateLimited,
            " (a robot takes 20 messages a minute; does something else post with it?)",
        ),
        -1 => (Class::Retry { after: None }, Reason::Server, ""),
        310000 => (
            Class::Permanent,
            Reason::Auth,
            " (the robot's security setting refused it: a keyword the text lacks, a wrong `secret`, or this host's IP not allowed)",
        ),
        300001 | 400101 => (
            Class::Permanent,
            Reason::Auth,
            " (the access token is wrong, or the robot was removed)",
        ),
        _ => (Class::Permanent, Reason::Client, ""),
    };
    Err(SendError::new(class, reason, format!("{message}{hint}")))
}

impl Sender for DingtalkSender {
    type Target = DingtalkTarget;
    type Request = Value;

    fn compose(&self, delivery: &Delivery, target: &DingtalkTarget) -> Result<Value, SendError> {
        self.message(delivery, target)
    }

    /// Method, the URL redacted, and the message. The chart is in it as
    /// its URL, so no PNG is written beside it.
    fn outbox_file(&self, _: &Delivery, message: &Value) -> OutboxFile {
        let doc = json!({
            "method": "POST",
            "url": self.config.webhook_url.to_string(),
            "access_token": REDACTED,
            "signed": self.config.secret.is_some(),
            "message": message,
        });
        OutboxFile {
            suffix: ".dingtalk.json",
            bytes: serde_json::to_vec_pretty(&doc).unwrap_or_default(),
            charts: false,
        }
    }

    async fn transmit(&self, _: &Delivery, message: Value) -> Result<Sent, SendError> {
        let response = self
            .parts
            .client
            .post(self.url())
            .json(&message)
            .send()
            .await
            .map_err(|e| transport_error(e, &self.what()))?;
        classify(response.status(), response.headers(), &self.what())?;
        let body = response
            .bytes()
            .await
            .map_err(|e| transport_error(e, &self.what()))?;
        judge(&body, &self.what(), &self.config.access_token())?;
        Ok(Sent::new("errcode 0 (markdown)".to_string()))
    }

    /// The URL's shape was checked at load; this checks the host answers.
    /// Nothing is posted: a probe must not page a group.
    async fn check(&self) -> CheckRow {
        super::http::probe_connect(
            format!("dingtalk {}", self.parts.destination),
            self.config.webhook_url.expose(),
            self.config.timeout,
            "webhook URL well-formed (access_token set); nothing posted; ",
            "can this host reach oapi.dingtalk.com (proxy, firewall)?",
        )
        .await
    }
}
