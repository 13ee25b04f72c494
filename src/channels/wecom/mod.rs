//! WeCom (企业微信) group bots: a markdown message, then each chart as an
//! image message (base64 + MD5, at most 2 MB: re-encoded or scaled down
//! when larger), or one news card whose picture is the chart's signed URL.
//!
//! The bot answers HTTP 200 whatever happens; the `errcode` in the body
//! says what did. A delivery of several messages that fails half way
//! resumes after the last message the bot took, so a retry never posts the
//! markdown twice.

pub mod config;
#[cfg(test)]
mod tests;

use base64::Engine;
use md5::{Digest, Md5};
use serde_json::{json, Value};
use tracing::warn;

pub use config::{Mode, WecomConfig, WecomTarget};

use super::http::{classify, transport_error, SenderParts};
use super::image::fit_png;
use super::text::{fit_bytes, CUT};
use super::{BuildContext, OutboxFile, Sender};
use crate::check::CheckRow;
use crate::delivery::{Class, Delivery, Reason, SendError, Sent};
use crate::secret::REDACTED;
use crate::template::fit::Unit;

pub const MARKDOWN_MAX_BYTES: usize = 4096;
pub const TEXT_MAX_BYTES: usize = 2048;
/// An image message's picture, before base64.
pub const IMAGE_MAX_BYTES: usize = 2 * 1024 * 1024;
pub const NEWS_TITLE_MAX_BYTES: usize = 128;
pub const NEWS_DESCRIPTION_MAX_BYTES: usize = 512;

/// Bot errcodes worth another try: busy, and the frequency limit.
pub const RETRYABLE: &[i64] = &[-1, 45009];

pub struct WecomSender {
    config: WecomConfig,
    parts: SenderParts,
}

impl WecomSender {
    pub fn new(
        destination: &str,
        config: &WecomConfig,
        ctx: &BuildContext,
    ) -> Result<Self, String> {
        Ok(Self {
            config: config.clone(),
            parts: SenderParts::new(destination, config.timeout, ctx)?,
        })
    }

    fn what(&self) -> String {
        format!("wecom bot {}", self.config.webhook_url)
    }

    /// Template `name` rendered and trimmed, its free text cut so that
    /// it and `reserved` more bytes fit in `max` bytes; the last resort
    /// for a template whose fixed text alone is over is a cut at the end.
    fn render_within(
        &self,
        delivery: &Delivery,
        name: &str,
        max: usize,
        reserved: usize,
    ) -> Result<String, SendError> {
        let room = max.saturating_sub(reserved);
        let fitted = self
            .parts
            .templates
            .render_fitted(&self.parts.destination, name, delivery, Unit::Bytes, |t| {
                t.trim().len().saturating_sub(room)
            })
            .map_err(|e| SendError::permanent(Reason::Template, e.to_string()))?;
        Ok(fit_bytes(fitted.text.trim(), room, CUT).into_owned())
    }

    /// The messages of one delivery, in the order they are posted.
    pub fn messages(
        &self,
        delivery: &Delivery,
        target: &WecomTarget,
    ) -> Result<Vec<Value>, SendError> {
        let mut messages = match (self.config.mode, news_article(delivery)) {
            (Mode::News, Some((url, picurl))) => vec![self.news(delivery, url, picurl)?],
            _ => self.markdown_and_images(delivery, target)?,
        };
        if self.config.needs_mention_text(target) {
            messages.push(self.mention_text(delivery, target));
        }
        Ok(messages)
    }

    fn markdown_and_images(
        &self,
        delivery: &Delivery,
        target: &WecomTarget,
    ) -> Result<Vec<Value>, SendError> {
        let (users, _) = self.config.mentions(target);
        // Markdown mentions a user as <@id>; they must survive the cut.
        let tags: String = users
            .iter()
            .filter(|u| *u != "@all")
            .map(|u| format!("<@{u}>"))
            .collect();
        let suffix = if tags.is_empty() {
            String::new()
        } else {
            format!("\n{tags}")
        };
        let body = self.render_within(
            delivery,
            "wecom/markdown.md.j2",
            MARKDOWN_MAX_BYTES,
            suffix.len(),
        )?;
        let mut messages = vec![json!({
            "msgtype": "markdown",
            "markdown": { "content": format!("{body}{suffix}") },
        })];
        for chart in delivery.charts.iter() {
            let Some(png) = &chart.png else { continue };
            match fit_png(png, IMAGE_MAX_BYTES) {
                Ok(fitted) => messages.push(image_message(&fitted)),
                // The markdown keeps the panel link; the alert still goes.
                Err(e) => {
                    warn!(message = "Chart left out of the WeCom message.", chart = %chart.title, error = %e)
                }
            }
        }
        Ok(messages)
    }

    fn news(
        &self,
        delivery: &Delivery,
        url: &str,
        picurl: Option<&str>,
    ) -> Result<Value, SendError> {
        let alert = &delivery.job.alert;
        let title = format!("[{}] {}", alert.status.name().to_uppercase(), alert.title);
        let description =
            self.render_within(delivery, "wecom/news.txt.j2", NEWS_DESCRIPTION_MAX_BYTES, 0)?;
        let mut article = json!({
            "title": fit_bytes(&title, NEWS_TITLE_MAX_BYTES, "…"),
            "description": description,
            "url": url,
        });
        if let Some(picurl) = picurl {
            article["picurl"] = json!(picurl);
        }
        Ok(json!({ "msgtype": "news", "news": { "articles": [article] } }))
    }

    /// `@` mobile numbers and everyone: only a text message can.
    fn mention_text(&self, delivery: &Delivery, target: &WecomTarget) -> Value {
        let (users, mobiles) = self.config.mentions(target);
        let alert = &delivery.job.alert;
        let content = format!("[{}] {}", alert.status.name().to_uppercase(), alert.title);
        let everyone: Vec<&str> = users
            .iter()
            .map(String::as_str)
            .filter(|u| *u == "@all")
            .collect();
        json!({
            "msgtype": "text",
            "text": {
                "content": fit_bytes(&content, TEXT_MAX_BYTES, "…"),
                "mentioned_list": everyone,
                "mentioned_mobile_list": mobiles,
            }
        })
    }

    /// Post one message; the bot's errcode decides.
    async fn post(&self, message: &Value) -> Result<(), SendError> {
        let response = self
            .parts
            .client
            .post(self.config.webhook_url.expose().clone())
            .json(message)
            .send()
            .await
            .map_err(|e| transport_error(e, &self.what()))?;
        classify(response.status(), response.headers(), &self.what())?;
        let body = response
            .bytes()
            .await
            .map_err(|e| transport_error(e, &self.what()))?;
        judge(&body, &self.what(), &self.config.key())
    }

    /// The outbox form: the messages, images as their size and MD5 (the
    /// PNGs are written beside it), the URL redacted.
    fn outbox_json(&self, messages: &[Value]) -> Vec<u8> {
        let shown: Vec<Value> = messages
            .iter()
            .map(|m| {
                let mut m = m.clone();
                if let Some(b64) = m.pointer("/image/base64").and_then(Value::as_str) {
                    let bytes = b64.len() / 4 * 3;
                    m["image"]["base64"] =
                        json!(format!("({bytes} bytes of PNG, written beside this file)"));
                }
                m
            })
            .collect();
        let doc = json!({
            "method": "POST",
            "url": self.config.webhook_url.to_string(),
            "key": REDACTED,
            "messages": shown,
        });
        serde_json::to_vec_pretty(&doc).unwrap_or_default()
    }
}

/// Where a news card points and its picture: the panel (or the alert's
/// source) and the chart's signed URL. No place to point, no card.
fn news_article(delivery: &Delivery) -> Option<(&str, Option<&str>)> {
    let chart = delivery.charts.first();
    let picurl = chart.and_then(|c| c.url.as_deref());
    let url = chart
        .and_then(|c| c.link.as_deref())
        .or(delivery.job.alert.source_url.as_deref())
        .or(picurl)?;
    Some((url, picurl))
}

fn image_message(png: &[u8]) -> Value {
    json!({
        "msgtype": "image",
        "image": {
            "base64": base64::engine::general_purpose::STANDARD.encode(png),
            "md5": hex::encode(Md5::digest(png)),
        }
    })
}

/// What the bot's answer says: errcode 0 is delivered; busy and the
/// frequency limit are worth another try; anything else (a wrong key, a
/// refused message) fails the same way again.
pub fn judge(body: &[u8], what: &str, key: &str) -> Result<(), SendError> {
    let Some(refusal) = super::bot::answer(body, what, key)? else {
        return Ok(());
    };
    let (message, errcode) = (refusal.message, refusal.errcode);
    let (class, reason) = match errcode {
        45009 => (Class::Retry { after: None }, Reason::RateLimited),
        -1 => (Class::Retry { after: None }, Reason::Server),
        93000 => (Class::Permanent, Reason::Auth),
        _ => (Class::Permanent, Reason::Client),
    };
    let hint = match errcode {
        93000 => " (the key is wrong, or the bot was removed from the group)",
        45009 => " (the bot takes 20 messages a minute; does something else post with it?)",
        _ => "",
    };
    Err(SendError::new(class, reason, format!("{message}{hint}")))
}

impl Sender for WecomSender {
    type Target = WecomTarget;
    type Request = Vec<Value>;

    fn compose(&self, delivery: &Delivery, target: &WecomTarget) -> Result<Vec<Value>, SendError> {
        self.messages(delivery, target)
    }

    fn outbox_file(&self, _: &Delivery, messages: &Vec<Value>) -> OutboxFile {
        OutboxFile {
            suffix: ".wecom.json",
            bytes: self.outbox_json(messages),
            charts: true,
        }
    }

    async fn transmit(&self, delivery: &Delivery, messages: Vec<Value>) -> Result<Sent, SendError> {
        // Messages the bot took in an earlier attempt are not sent again.
        let done: usize = delivery
            .progress
            .as_deref()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        for (i, message) in messages.iter().enumerate().skip(done) {
            if let Err(e) = self.post(message).await {
                return Err(e.with_progress((i > 0).then(|| i.to_string())));
            }
        }
        let kinds: Vec<&str> = messages
            .iter()
            .filter_map(|m| m["msgtype"].as_str())
            .collect();
        Ok(Sent::new(format!(
            "errcode 0 ×{} ({})",
            messages.len(),
            kinds.join("+")
        )))
    }

    /// The URL's shape was checked at load; this checks the host answers.
    /// Nothing is posted: a probe must not page a group.
    async fn check(&self) -> CheckRow {
        super::http::probe_connect(
            format!("wecom {}", self.parts.destination),
            self.config.webhook_url.expose(),
            self.config.timeout,
            "webhook URL well-formed (key set); nothing posted; ",
            "can this host reach qyapi.weixin.qq.com (proxy, firewall)?",
        )
        .await
    }
}
