//! Feishu (飞书) / Lark custom bots: one interactive card, its header in
//! the severity's colour, the alert's words, the labels as fields, the
//! chart, and buttons for the panel, the source and the action links.
//!
//! The chart: a card shows an image only by an `image_key` from the open
//! platform's image API, which needs an app. With `app_id`/`app_secret`,
//! fanout gets a tenant access token (`auth/v3/tenant_access_token/internal`,
//! kept until shortly before it expires), uploads the PNG
//! (`im/v1/images`, `image_type=message`) and puts the key in an `img`
//! element. Without an app, the chart is a button to its signed URL (so
//! the destination needs `[storage]`).
//!
//! Signature (签名校验): `timestamp` (Unix seconds) and `sign` in the
//! body: base64 of HMAC-SHA256 keyed by `"{timestamp}\n{secret}"` over an
//! empty message (Feishu's custom bot guide; unlike DingTalk's).
//!
//! Answers: `code` (or the older `StatusCode`) 0 is delivered; 9499 and
//! 11232 (too many requests) are retried; 19021 (signature or time),
//! 19022 (IP not allowed) and 19024 (keyword) are permanent with a hint.

pub mod config;
#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::Mutex;
use tracing::warn;

pub use config::FeishuConfig;

use super::http::{classify, transport_error, SenderParts};
use super::image::fit_png;
use super::text::{fit_json, json_len};
use super::{BuildContext, NoOverrides, OutboxFile, Sender};
use crate::check::CheckRow;
use crate::delivery::{Class, Delivery, Reason, SendError, Sent};
use crate::job::{Severity, Status};
use crate::template::fit::Unit;

/// A card's body, kept under the bot's 30 KB request limit.
pub const CARD_MAX_BYTES: usize = 28_000;
/// An image the image API takes.
pub const IMAGE_MAX_BYTES: usize = 10 * 1024 * 1024;

pub struct FeishuSender {
    config: FeishuConfig,
    parts: SenderParts,
    /// The tenant access token and when to stop using it.
    token: Mutex<Option<(String, Instant)>>,
}

/// A card, and the charts to upload into it first.
pub struct Request {
    pub card: Value,
    /// PNGs whose `image_key` goes into the card's `img` elements, in
    /// order (their placeholders are `chart0`, `chart1`, …).
    pub uploads: Vec<Vec<u8>>,
}

/// `sign` for a body at `timestamp` (seconds).
pub fn sign(secret: &str, timestamp: i64) -> String {
    let key = format!("{timestamp}\n{secret}");
    let mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes a key of any length");
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

impl FeishuSender {
    pub fn new(destination: &str, config: &FeishuConfig, ctx: &BuildContext) -> Result<Self, String> {
        Ok(Self {
            config: config.clone(),
            parts: SenderParts::new(destination, config.timeout, ctx)?,
            token: Mutex::new(None),
        })
    }

    fn what(&self) -> String {
        format!("feishu bot {}", self.config.webhook_url)
    }

    /// The card for `delivery`, its words cut to fit.
    pub fn request(&self, delivery: &Delivery) -> Result<Request, SendError> {
        let alert = &delivery.job.alert;
        let (state, template) = match (alert.status, alert.severity) {
            (Status::Resolved, _) => ("RESOLVED".to_string(), "green"),
            (_, Severity::Critical) => ("CRITICAL".to_string(), "red"),
            (_, Severity::Error) => ("ERROR".to_string(), "orange"),
            (_, Severity::Warning) => ("WARNING".to_string(), "yellow"),
            (_, Severity::Info) => ("INFO".to_string(), "blue"),
        };
        let mut uploads = Vec::new();
        let mut images = Vec::new();
        let mut buttons = Vec::new();
        for chart in delivery.charts.iter() {
            let png = chart.png.as_ref().filter(|_| self.config.app.is_some());
            match png.map(|p| fit_png(p, IMAGE_MAX_BYTES)) {
                Some(Ok(fitted)) => {
                    images.push(json!({"tag": "img", "img_key": format!("chart{}", uploads.len()), "alt": {"tag": "plain_text", "content": chart.title}}));
                    uploads.push(fitted.into_owned());
                }
                Some(Err(e)) => warn!(message = "Chart left out of the Feishu card.", chart = %chart.title, error = %e),
                None => {
                    if let Some(url) = chart.url.as_deref() {
                        buttons.push(button(&format!("Chart: {}", chart.title), url, "primary"));
                    }
                }
            }
            if let Some(link) = chart.link.as_deref() {
                buttons.push(button(&format!("Panel: {}", chart.title), link, "default"));
            }
        }
        if let Some(source) = alert.source_url.as_deref() {
            buttons.push(button("Source", source, "default"));
        }
        if let Some(a) = &delivery.actions {
            buttons.push(button("Acknowledge", &a.acknowledge, "primary"));
            buttons.push(button("Resolve", &a.resolve, "default"));
            buttons.push(button("Silence 1h", &a.silence_1h, "danger"));
        }
        let fields: Vec<Value> = alert
            .labels
            .iter()
            .map(|(k, v)| json!({"is_short": true, "text": {"tag": "lark_md", "content": format!("**{k}**\n{v}")}}))
            .collect();
        let build = |words: &str| {
            let mut elements = vec![json!({"tag": "div", "text": {"tag": "lark_md", "content": words}})];
            if !fields.is_empty() {
                elements.push(json!({"tag": "div", "fields": fields}));
            }
            elements.extend(images.iter().cloned());
            if !buttons.is_empty() {
                elements.push(json!({"tag": "action", "actions": buttons}));
            }
            json!({
                "config": {"wide_screen_mode": true},
                "header": {"template": template, "title": {"tag": "plain_text", "content": format!("[{state}] {}", alert.title)}},
                "elements": elements,
            })
        };
        let room = CARD_MAX_BYTES.saturating_sub(build("").to_string().len());
        let fitted = self
            .parts
            .templates
            .render_fitted(&self.parts.destination, "feishu/card.md.j2", delivery, Unit::Bytes, |t| {
                json_len(t.trim()).saturating_sub(room)
            })
            .map_err(|e| SendError::permanent(Reason::Template, e.to_string()))?;
        Ok(Request {
            card: build(&fit_json(fitted.text.trim(), room)),
            uploads,
        })
    }

    /// A tenant access token, fetched again shortly before it expires.
    async fn tenant_token(&self) -> Result<String, SendError> {
        let mut held = self.token.lock().await;
        if let Some((token, _)) = held.as_ref().filter(|(_, until)| Instant::now() < *until) {
            return Ok(token.clone());
        }
        let Some((id, secret)) = &self.config.app else {
            return Err(SendError::permanent(Reason::Auth, "no app to upload images with"));
        };
        let url = self.config.origin().join("open-apis/auth/v3/tenant_access_token/internal").map_err(|e| SendError::permanent(Reason::Other, e.to_string()))?;
        let what = "feishu tenant_access_token";
        let response = self
            .parts
            .client
            .post(url)
            .json(&json!({"app_id": id, "app_secret": secret.expose()}))
            .send()
            .await
            .map_err(|e| transport_error(e, what))?;
        classify(response.status(), response.headers(), what)?;
        let answer: Value = response.json().await.map_err(|e| transport_error(e, what))?;
        judge(&answer, what)?;
        let token = answer["tenant_access_token"].as_str().unwrap_or_default().to_string();
        let expire = answer["expire"].as_u64().unwrap_or(7200);
        // Used until five minutes before it expires.
        let until = Instant::now() + Duration::from_secs(expire.saturating_sub(300).max(60));
        *held = Some((token.clone(), until));
        Ok(token)
    }

    /// Upload `png`; its `image_key`.
    async fn upload(&self, png: Vec<u8>) -> Result<String, SendError> {
        let token = self.tenant_token().await?;
        let url = self.config.origin().join("open-apis/im/v1/images").map_err(|e| SendError::permanent(Reason::Other, e.to_string()))?;
        let what = "feishu image upload";
        let part = Part::bytes(png).file_name("chart.png").mime_str("image/png").map_err(|e| SendError::permanent(Reason::Other, e.to_string()))?;
        let form = Form::new().text("image_type", "message").part("image", part);
        let response = self
            .parts
            .client
            .post(url)
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .map_err(|e| transport_error(e, what))?;
        if response.status().as_u16() == 401 {
            // A token revoked early: fetch a new one next time.
            *self.token.lock().await = None;
        }
        classify(response.status(), response.headers(), what)?;
        let answer: Value = response.json().await.map_err(|e| transport_error(e, what))?;
        judge(&answer, what)?;
        answer["data"]["image_key"].as_str().map(str::to_string).ok_or_else(|| SendError::retry(Reason::Server, format!("{what}: no image_key in the answer")))
    }
}

fn button(text: &str, url: &str, kind: &str) -> Value {
    json!({"tag": "button", "text": {"tag": "plain_text", "content": text}, "url": url, "type": kind})
}

/// What an open-platform answer's `code` (or `StatusCode`) says.
pub fn judge(answer: &Value, what: &str) -> Result<(), SendError> {
    let code = answer["code"].as_i64().or_else(|| answer["StatusCode"].as_i64());
    let Some(code) = code else {
        return Err(SendError::retry(Reason::Server, format!("{what} answered something that is not its JSON")));
    };
    if code == 0 {
        return Ok(());
    }
    let msg: String = answer["msg"].as_str().or(answer["StatusMessage"].as_str()).unwrap_or_default().chars().take(200).collect();
    let message = format!("{what} answered code {code}: {msg}");
    let (class, reason, hint) = match code {
        9499 | 11232 => (Class::Retry { after: None }, Reason::RateLimited, " (a bot takes 100 requests a minute, 5 a second)"),
        19021 => (Class::Permanent, Reason::Auth, " (the signature: is `secret` the bot's, and this host's clock right?)"),
        19022 => (Class::Permanent, Reason::Auth, " (this host's IP is not in the bot's allow-list)"),
        19024 => (Class::Permanent, Reason::Auth, " (the text lacks the bot's keyword: put it in the template or the titles)"),
        99991663 | 99991664 | 10003 | 10014 => (Class::Permanent, Reason::Auth, " (the app's id or secret is wrong, or it may not upload images)"),
        _ => (Class::Permanent, Reason::Client, ""),
    };
    Err(SendError::new(class, reason, format!("{message}{hint}")))
}

/// The card with each `chartN` placeholder replaced by its image key.
fn with_keys(card: &Value, keys: &[String]) -> Value {
    let mut card = card.clone();
    if let Some(elements) = card["elements"].as_array_mut() {
        for element in elements.iter_mut().filter(|e| e["tag"] == "img") {
            let placeholder = element["img_key"].as_str().unwrap_or_default();
            if let Some(key) = placeholder.strip_prefix("chart").and_then(|i| i.parse::<usize>().ok()).and_then(|i| keys.get(i)) {
                element["img_key"] = json!(key);
            }
        }
    }
    card
}

impl Sender for FeishuSender {
    type Target = NoOverrides;
    type Request = Request;

    fn compose(&self, delivery: &Delivery, _: &NoOverrides) -> Result<Request, SendError> {
        self.request(delivery)
    }

    /// The card (images as their placeholders, the PNGs written beside it),
    /// the URL redacted.
    fn outbox_file(&self, _: &Delivery, request: &Request) -> OutboxFile {
        let doc = json!({
            "method": "POST",
            "url": self.config.webhook_url.to_string(),
            "signed": self.config.secret.is_some(),
            "msg_type": "interactive",
            "card": request.card,
            "uploads": request.uploads.iter().map(Vec::len).collect::<Vec<_>>(),
        });
        OutboxFile {
            suffix: ".feishu.json",
            bytes: serde_json::to_vec_pretty(&doc).unwrap_or_default(),
            charts: true,
        }
    }

    async fn transmit(&self, _: &Delivery, request: Request) -> Result<Sent, SendError> {
        let mut keys = Vec::new();
        for png in request.uploads {
            keys.push(self.upload(png).await?);
        }
        let mut body = json!({"msg_type": "interactive", "card": with_keys(&request.card, &keys)});
        if let Some(secret) = &self.config.secret {
            let now = chrono::Utc::now().timestamp();
            body["timestamp"] = json!(now.to_string());
            body["sign"] = json!(sign(secret.expose(), now));
        }
        let response = self
            .parts
            .client
            .post(self.config.webhook_url.expose().clone())
            .json(&body)
            .send()
            .await
            .map_err(|e| transport_error(e, &self.what()))?;
        classify(response.status(), response.headers(), &self.what())?;
        let answer: Value = response.json().await.map_err(|e| transport_error(e, &self.what()))?;
        judge(&answer, &self.what())?;
        Ok(Sent::new(format!("code 0 (card, {} image(s))", keys.len())))
    }

    /// The host answers and, with an app, its token is granted. Nothing is
    /// posted to the group.
    async fn check(&self) -> CheckRow {
        let component = format!("feishu {}", self.parts.destination);
        if self.config.app.is_some() {
            return match self.tenant_token().await {
                Ok(_) => CheckRow::ok(component, self.config.webhook_url.to_string(), "app token granted (charts are uploaded); nothing posted"),
                Err(e) => CheckRow::fail(component, self.config.webhook_url.to_string(), e.to_string(), "check app_id and app_secret, and that the app may upload images"),
            };
        }
        super::http::probe_connect(
            component,
            self.config.webhook_url.expose(),
            self.config.timeout,
            "webhook URL well-formed; nothing posted; ",
            "can this host reach open.feishu.cn (proxy, firewall)?",
        )
        .await
    }
}
