//! Discord webhooks: one message with an embed (title, severity colour,
//! the alert as its description, labels as fields, the source as its
//! link) and each chart uploaded as a file the embed shows
//! (`attachment://chart0.png`), in one `multipart/form-data` POST:
//! `payload_json` and `files[n]` (Discord's "Execute Webhook" and
//! "Uploading Files" docs). `?wait=true` makes Discord answer with the
//! message, whose id goes into the log.
//!
//! Limits (Discord's "Embed Limits"): title 256 characters, description
//! 4,096, at most 25 fields (name 256, value 1,024), 10 embeds, and 6,000
//! characters over all of a message's embeds. A 429's JSON `retry_after`
//! (seconds, fractional) is honoured.

pub mod config;
#[cfg(test)]
mod tests;

use std::time::Duration;

use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};
use tracing::warn;

pub use config::{DiscordConfig, DiscordTarget};

use super::http::{classify, redact_url, retry_after, transport_error, SenderParts};
use super::image::fit_png;
use super::text::{fit_chars, CUT};
use super::{BuildContext, OutboxFile, Sender};
use crate::check::CheckRow;
use crate::delivery::{Class, Delivery, Reason, SendError, Sent};
use crate::job::{Severity, Status};
use crate::template::fit::Unit;

pub const TITLE_MAX: usize = 256;
pub const DESCRIPTION_MAX: usize = 4096;
pub const FIELDS_MAX: usize = 25;
pub const FIELD_NAME_MAX: usize = 256;
pub const FIELD_VALUE_MAX: usize = 1024;
pub const EMBEDS_MAX: usize = 10;
pub const EMBED_TOTAL_MAX: usize = 6000;
/// A file a webhook may upload, kept well under Discord's per-message cap.
pub const FILE_MAX_BYTES: usize = 8 * 1024 * 1024;

pub struct DiscordSender {
    config: DiscordConfig,
    parts: SenderParts,
}

/// One POST: the message and its files.
pub struct Request {
    pub payload: Value,
    /// `(file name, PNG)`, in `files[n]` order.
    pub files: Vec<(String, Vec<u8>)>,
    pub thread_id: Option<String>,
}

fn colour(status: Status, severity: Severity) -> u32 {
    match (status, severity) {
        (Status::Resolved, _) => 0x2e7d32,
        (_, Severity::Critical) => 0xd32f2f,
        (_, Severity::Error) => 0xe65100,
        (_, Severity::Warning) => 0xf9a825,
        (_, Severity::Info) => 0x546e7a,
    }
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

impl DiscordSender {
    pub fn new(
        destination: &str,
        config: &DiscordConfig,
        ctx: &BuildContext,
    ) -> Result<Self, String> {
        Ok(Self {
            config: config.clone(),
            parts: SenderParts::new(destination, config.timeout, ctx)?,
        })
    }

    fn what(&self) -> String {
        format!("discord webhook {}", self.config.webhook_url)
    }

    /// The message and the files it shows, within Discord's embed limits:
    /// the labels first (as fields), then the description gets what is
    /// left of the 6,000 characters, cut on a character boundary.
    pub fn request(&self, delivery: &Delivery, target: &DiscordTarget) -> Result<Request, SendError> {
        let alert = &delivery.job.alert;
        let state = match alert.status {
            Status::Resolved => "RESOLVED".to_string(),
            _ => format!("{:?}", alert.severity).to_uppercase(),
        };
        let title = fit_chars(&format!("[{state}] {}", alert.title), TITLE_MAX, "…").into_owned();
        let fields: Vec<Value> = alert
            .labels
            .iter()
            .take(FIELDS_MAX)
            .map(|(name, value)| {
                let value = if value.trim().is_empty() { "—" } else { value };
                json!({
                    "name": fit_chars(name, FIELD_NAME_MAX, "…"),
                    "value": fit_chars(value, FIELD_VALUE_MAX, "…"),
                    "inline": true,
                })
            })
            .collect();
        let mut files = Vec::new();
        let mut extra = Vec::new();
        for chart in delivery.charts.iter() {
            let Some(png) = &chart.png else { continue };
            match fit_png(png, FILE_MAX_BYTES) {
                Ok(fitted) => {
                    let name = format!("chart{}.png", files.len());
                    files.push((name, fitted.into_owned()));
                    if files.len() > 1 && extra.len() + 1 < EMBEDS_MAX {
                        extra.push(chart.title.clone());
                    }
                }
                Err(e) => {
                    warn!(message = "Chart left out of the Discord message.", chart = %chart.title, error = %e)
                }
            }
        }
        let extra_titles: Vec<String> = extra
            .iter()
            .map(|t| fit_chars(t, TITLE_MAX, "…").into_owned())
            .collect();
        let used = chars(&title)
            + fields
                .iter()
                .map(|f| {
                    chars(f["name"].as_str().unwrap_or_default())
                        + chars(f["value"].as_str().unwrap_or_default())
                })
                .sum::<usize>()
            + extra_titles.iter().map(|t| chars(t)).sum::<usize>();
        let room = DESCRIPTION_MAX.min(EMBED_TOTAL_MAX.saturating_sub(used));
        let fitted = self
            .parts
            .templates
            .render_fitted(
                &self.parts.destination,
                "discord/description.md.j2",
                delivery,
                Unit::Chars,
                |t| chars(t.trim()).saturating_sub(room),
            )
            .map_err(|e| SendError::permanent(Reason::Template, e.to_string()))?;
        let description = fit_chars(fitted.text.trim(), room, CUT).into_owned();
        let colour = colour(alert.status, alert.severity);
        let mut first = json!({
            "title": title,
            "description": description,
            "color": colour,
            "fields": fields,
        });
        if let Some(url) = alert.source_url.as_deref().filter(|u| u.starts_with("http")) {
            first["url"] = json!(url);
        }
        if let Some(at) = alert.started_at {
            first["timestamp"] = json!(at.to_rfc3339());
        }
        if !files.is_empty() {
            first["image"] = json!({"url": "attachment://chart0.png"});
        }
        let mut embeds = vec![first];
        for (i, title) in extra_titles.into_iter().enumerate() {
            embeds.push(json!({
                "title": title,
                "color": colour,
                "image": {"url": format!("attachment://chart{}.png", i + 1)},
            }));
        }
        let attachments: Vec<Value> = files
            .iter()
            .enumerate()
            .map(|(i, (name, _))| json!({"id": i, "filename": name}))
            .collect();
        let mut payload = json!({
            "embeds": embeds,
            "attachments": attachments,
            // Alert text never pings @everyone or a role.
            "allowed_mentions": {"parse": []},
        });
        if let Some(name) = &self.config.username {
            payload["username"] = json!(name);
        }
        Ok(Request {
            payload,
            files,
            thread_id: self.config.thread(target).map(str::to_string),
        })
    }

    /// The URL of a post: `wait=true`, and the thread when there is one.
    fn post_url(&self, thread_id: Option<&str>) -> url::Url {
        let mut url = self.config.webhook_url.expose().clone();
        url.query_pairs_mut().append_pair("wait", "true");
        if let Some(thread) = thread_id {
            url.query_pairs_mut().append_pair("thread_id", thread);
        }
        url
    }
}

/// A refusal Discord explained: its JSON `message` and `code`, and for a
/// 429 its `retry_after`.
pub fn judge(status: reqwest::StatusCode, headers: &reqwest::header::HeaderMap, body: &[u8], what: &str) -> Result<(), SendError> {
    if status.is_success() {
        return Ok(());
    }
    let answer: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let said = match (answer["message"].as_str(), answer["code"].as_i64()) {
        (Some(m), Some(c)) => format!(": {m} (code {c})"),
        (Some(m), None) => format!(": {m}"),
        _ => String::new(),
    };
    let message = format!("{what} answered {status}{said}");
    match status.as_u16() {
        429 => {
            let after = answer["retry_after"]
                .as_f64()
                .filter(|s| s.is_finite() && *s >= 0.0 && *s < 86_400.0)
                .map(Duration::from_secs_f64)
                .or_else(|| retry_after(headers));
            Err(SendError::new(Class::Retry { after }, Reason::RateLimited, message))
        }
        401 | 403 | 404 => Err(SendError::permanent(
            Reason::Auth,
            format!("{message} (the webhook was deleted, or its URL is wrong)"),
        )),
        400 => {
            let errors: String = answer["errors"].to_string().chars().take(300).collect();
            Err(SendError::permanent(Reason::Client, format!("{message} {errors}")))
        }
        _ => classify(status, headers, what),
    }
}

impl Sender for DiscordSender {
    type Target = DiscordTarget;
    type Request = Request;

    fn compose(&self, delivery: &Delivery, target: &DiscordTarget) -> Result<Request, SendError> {
        self.request(delivery, target)
    }

    /// Method, the URL redacted, the thread, `payload_json`, and each
    /// file by name and size (the PNGs are written beside it).
    fn outbox_file(&self, _: &Delivery, request: &Request) -> OutboxFile {
        let files: Vec<Value> = request
            .files
            .iter()
            .enumerate()
            .map(|(i, (name, bytes))| json!({"field": format!("files[{i}]"), "filename": name, "bytes": bytes.len()}))
            .collect();
        let doc = json!({
            "method": "POST",
            "url": self.config.webhook_url.to_string(),
            "thread_id": request.thread_id,
            "payload_json": request.payload,
            "files": files,
        });
        OutboxFile {
            suffix: ".discord.json",
            bytes: serde_json::to_vec_pretty(&doc).unwrap_or_default(),
            charts: true,
        }
    }

    async fn transmit(&self, _: &Delivery, request: Request) -> Result<Sent, SendError> {
        let mut form = Form::new().text("payload_json", request.payload.to_string());
        for (i, (name, bytes)) in request.files.into_iter().enumerate() {
            let part = Part::bytes(bytes)
                .file_name(name)
                .mime_str("image/png")
                .map_err(|e| SendError::permanent(Reason::Other, e.to_string()))?;
            form = form.part(format!("files[{i}]"), part);
        }
        let response = self
            .parts
            .client
            .post(self.post_url(request.thread_id.as_deref()))
            .multipart(form)
            .send()
            .await
            .map_err(|e| transport_error(e, &self.what()))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| transport_error(e, &self.what()))?;
        judge(status, &headers, &body, &self.what())?;
        let id = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|m| m["id"].as_str().map(str::to_string))
            .unwrap_or_default();
        Ok(Sent::new(format!("{status} message {id}")))
    }

    /// GET the webhook (its name and channel): nothing is posted.
    async fn check(&self) -> CheckRow {
        let component = format!("discord {}", self.parts.destination);
        let target = redact_url(self.config.webhook_url.expose());
        let got = self
            .parts
            .client
            .get(self.config.webhook_url.expose().clone())
            .send()
            .await;
        match got {
            Ok(r) if r.status().is_success() => {
                let hook: Value = r.json().await.unwrap_or(Value::Null);
                CheckRow::ok(
                    component,
                    target,
                    format!(
                        "webhook {:?} in channel {}; nothing posted",
                        hook["name"].as_str().unwrap_or("?"),
                        hook["channel_id"].as_str().unwrap_or("?")
                    ),
                )
            }
            Ok(r) => CheckRow::fail(
                component,
                target,
                format!("Discord answered {}", r.status()),
                "the webhook was deleted, or its URL is wrong: copy it again from Integrations → Webhooks",
            ),
            Err(e) => CheckRow::fail(
                component,
                target,
                e.without_url().to_string(),
                "can this host reach discord.com (proxy, firewall)?",
            ),
        }
    }
}
