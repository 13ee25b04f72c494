//! Telegram bots (the Bot API): the alert as HTML text, the chart as the
//! photo it captions (`sendPhoto`, multipart), several charts as an album
//! (`sendMediaGroup`). A caption holds 1,024 characters, a message 4,096:
//! when the text is longer than a caption, the photo is captioned with
//! the heading and the whole text follows as a reply to it. Later notices
//! of a group (repeats, the resolve) reply to its first message
//! (`reply_parameters`), kept in the group's state like Slack's thread.
//!
//! Answers (`{"ok":false,"error_code":…,"description":…,"parameters":…}`):
//! 429 waits `parameters.retry_after` seconds; "chat not found", a bot
//! blocked or kicked, and a wrong token are permanent with a hint; a group
//! that became a supergroup names its new `chat_id`.

pub mod config;
#[cfg(test)]
mod tests;

use std::time::Duration;

use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};
use tracing::warn;

pub use config::{TelegramConfig, TelegramTarget};

use super::http::{transport_error, SenderParts};
use super::image::fit_png;
use super::text::{fit_chars, CUT};
use super::{BuildContext, OutboxFile, Sender};
use crate::check::CheckRow;
use crate::delivery::{Class, Delivery, Reason, SendError, Sent};
use crate::template::fit::Unit;

pub const TEXT_MAX_CHARS: usize = 4096;
pub const CAPTION_MAX_CHARS: usize = 1024;
/// A photo the Bot API takes by upload.
pub const PHOTO_MAX_BYTES: usize = 10 * 1024 * 1024;
/// Photos in one album.
pub const ALBUM_MAX: usize = 10;

pub struct TelegramSender {
    config: TelegramConfig,
    parts: SenderParts,
}

/// One Bot API call of a delivery.
#[derive(Clone, Debug)]
pub enum Call {
    Message { text: String },
    Photo { caption: String, png: Vec<u8> },
    Album { caption: String, pngs: Vec<Vec<u8>> },
}

impl Call {
    fn method(&self) -> &'static str {
        match self {
            Call::Message { .. } => "sendMessage",
            Call::Photo { .. } => "sendPhoto",
            Call::Album { .. } => "sendMediaGroup",
        }
    }
}

/// A delivery's calls, in order, to one chat.
pub struct Request {
    pub chat_id: String,
    pub topic: Option<i64>,
    pub calls: Vec<Call>,
}

impl TelegramSender {
    pub fn new(
        destination: &str,
        config: &TelegramConfig,
        ctx: &BuildContext,
    ) -> Result<Self, String> {
        Ok(Self {
            config: config.clone(),
            parts: SenderParts::new(destination, config.timeout, ctx)?,
        })
    }

    fn what(&self, method: &str) -> String {
        format!("telegram {method} ({})", self.parts.destination)
    }

    /// The calls for `delivery`: its text within 4,096 characters (the
    /// alert's free text cut first), and its charts.
    pub fn request(&self, delivery: &Delivery, target: &TelegramTarget) -> Result<Request, SendError> {
        let fitted = self
            .parts
            .templates
            .render_fitted(
                &self.parts.destination,
                "telegram/message.html.j2",
                delivery,
                Unit::Chars,
                |t| t.trim().chars().count().saturating_sub(TEXT_MAX_CHARS),
            )
            .map_err(|e| SendError::permanent(Reason::Template, e.to_string()))?;
        let text = fit_chars(fitted.text.trim(), TEXT_MAX_CHARS, CUT).into_owned();
        let mut pngs = Vec::new();
        for chart in delivery.charts.iter() {
            let Some(png) = &chart.png else { continue };
            if pngs.len() == ALBUM_MAX {
                warn!(message = "Chart left out of the Telegram album (10 at most).", chart = %chart.title);
                continue;
            }
            match fit_png(png, PHOTO_MAX_BYTES) {
                Ok(fitted) => pngs.push(fitted.into_owned()),
                Err(e) => warn!(message = "Chart left out of the Telegram message.", chart = %chart.title, error = %e),
            }
        }
        let fits = text.chars().count() <= CAPTION_MAX_CHARS;
        // The heading (a whole line of HTML) captions a photo whose text
        // follows; the whole text otherwise.
        let caption = if fits {
            text.clone()
        } else {
            let heading = text.lines().next().unwrap_or_default();
            fit_chars(heading, CAPTION_MAX_CHARS, "…").into_owned()
        };
        let mut calls = match pngs.len() {
            0 => Vec::new(),
            1 => vec![Call::Photo { caption, png: pngs.remove(0) }],
            _ => vec![Call::Album { caption, pngs }],
        };
        if calls.is_empty() || !fits {
            calls.push(Call::Message { text });
        }
        Ok(Request {
            chat_id: self.config.chat(target).to_string(),
            topic: self.config.topic(target),
            calls,
        })
    }

    /// Make one call, replying to `reply_to`; the id of the (first)
    /// message it made.
    async fn call(&self, request: &Request, call: &Call, reply_to: Option<i64>) -> Result<i64, SendError> {
        let method = call.method();
        let url = self.config.method_url(method);
        let reply = reply_to.map(|id| json!({"message_id": id, "allow_sending_without_reply": true}));
        let http = &self.parts.client;
        let sent = match call {
            Call::Message { text } => {
                let mut body = json!({
                    "chat_id": request.chat_id,
                    "text": text,
                    "parse_mode": "HTML",
                    "link_preview_options": {"is_disabled": true},
                });
                if let Some(topic) = request.topic {
                    body["message_thread_id"] = json!(topic);
                }
                if let Some(reply) = reply {
                    body["reply_parameters"] = reply;
                }
                http.post(url).json(&body).send().await
            }
            Call::Photo { caption, png } => {
                let mut form = self.form(request, reply)
                    .text("caption", caption.clone())
                    .text("parse_mode", "HTML");
                form = form.part("photo", photo(png.clone(), "chart0.png")?);
                http.post(url).multipart(form).send().await
            }
            Call::Album { caption, pngs } => {
                let media: Vec<Value> = (0..pngs.len())
                    .map(|i| {
                        let mut item = json!({"type": "photo", "media": format!("attach://chart{i}")});
                        if i == 0 {
                            item["caption"] = json!(caption);
                            item["parse_mode"] = json!("HTML");
                        }
                        item
                    })
                    .collect();
                let mut form = self.form(request, reply).text("media", Value::from(media).to_string());
                for (i, png) in pngs.iter().enumerate() {
                    form = form.part(format!("chart{i}"), photo(png.clone(), &format!("chart{i}.png"))?);
                }
                http.post(url).multipart(form).send().await
            }
        };
        // The URL holds the token: errors are said without it.
        let response = sent.map_err(|e| transport_error(e.without_url(), &self.what(method)))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| transport_error(e.without_url(), &self.what(method)))?;
        judge(status.as_u16(), &body, &self.what(method))
    }

    fn form(&self, request: &Request, reply: Option<Value>) -> Form {
        let mut form = Form::new().text("chat_id", request.chat_id.clone());
        if let Some(topic) = request.topic {
            form = form.text("message_thread_id", topic.to_string());
        }
        if let Some(reply) = reply {
            form = form.text("reply_parameters", reply.to_string());
        }
        form
    }
}

fn photo(png: Vec<u8>, name: &str) -> Result<Part, SendError> {
    Part::bytes(png)
        .file_name(name.to_string())
        .mime_str("image/png")
        .map_err(|e| SendError::permanent(Reason::Other, e.to_string()))
}

/// What the Bot API answered: the first message's id, or why not.
pub fn judge(status: u16, body: &[u8], what: &str) -> Result<i64, SendError> {
    let answer: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if answer["ok"] == true {
        let result = &answer["result"];
        let first = if result.is_array() { &result[0] } else { result };
        return Ok(first["message_id"].as_i64().unwrap_or_default());
    }
    let code = answer["error_code"].as_u64().map_or(status, |c| c as u16);
    let description: String = answer["description"]
        .as_str()
        .unwrap_or("no description")
        .chars()
        .take(200)
        .collect();
    let message = format!("{what} answered {code}: {description}");
    let lower = description.to_lowercase();
    if let Some(chat) = answer["parameters"]["migrate_to_chat_id"].as_i64() {
        return Err(SendError::permanent(
            Reason::Client,
            format!("{message} (the group became a supergroup: set chat_id = \"{chat}\")"),
        ));
    }
    let (class, reason, hint) = match code {
        429 => {
            let after = answer["parameters"]["retry_after"].as_u64().map(Duration::from_secs);
            (Class::Retry { after }, Reason::RateLimited, "")
        }
        401 | 404 => (Class::Permanent, Reason::Auth, " (the bot token is wrong or was revoked: ask @BotFather)"),
        403 => (
            Class::Permanent,
            Reason::Auth,
            " (the bot is not in the chat, was blocked, or may not post there: add it again)",
        ),
        400 if lower.contains("chat not found") => (
            Class::Permanent,
            Reason::Client,
            " (is chat_id right, and has the bot been added to the chat?)",
        ),
        400..=499 => (Class::Permanent, Reason::Client, ""),
        _ if code >= 500 => (Class::Retry { after: None }, Reason::Server, ""),
        _ => (Class::Retry { after: None }, Reason::Other, ""),
    };
    Err(SendError::new(class, reason, format!("{message}{hint}")))
}

impl Sender for TelegramSender {
    type Target = TelegramTarget;
    type Request = Request;

    fn compose(&self, delivery: &Delivery, target: &TelegramTarget) -> Result<Request, SendError> {
        self.request(delivery, target)
    }

    /// The chat, the topic, what it replies to, and each call: its text,
    /// and its photos by name and size (the PNGs are written beside it).
    fn outbox_file(&self, delivery: &Delivery, request: &Request) -> OutboxFile {
        let calls: Vec<Value> = request.calls.iter().map(shown).collect();
        let doc = json!({
            "chat_id": request.chat_id,
            "message_thread_id": request.topic,
            "reply_to": delivery.thread,
            "calls": calls,
        });
        OutboxFile {
            suffix: ".telegram.json",
            bytes: serde_json::to_vec_pretty(&doc).unwrap_or_default(),
            charts: true,
        }
    }

    async fn transmit(&self, delivery: &Delivery, request: Request) -> Result<Sent, SendError> {
        // "{calls done}:{first message id}" of an earlier attempt.
        let (done, mut first) = delivery
            .progress
            .as_deref()
            .and_then(|p| p.split_once(':'))
            .and_then(|(n, id)| Some((n.parse::<usize>().ok()?, id.parse::<i64>().ok())))
            .unwrap_or((0, None));
        let thread: Option<i64> = delivery.thread.as_deref().and_then(|t| t.parse().ok());
        for (i, call) in request.calls.iter().enumerate().skip(done) {
            let reply_to = thread.or(first);
            match self.call(&request, call, reply_to).await {
                Ok(id) => {
                    first = first.or(Some(id));
                }
                Err(e) => {
                    let progress = first.map(|id| format!("{i}:{id}"));
                    return Err(e.with_progress(progress));
                }
            }
        }
        let methods: Vec<&str> = request.calls.iter().map(Call::method).collect();
        let first = first.unwrap_or_default();
        let mut sent = Sent::new(format!("{} → message {first}", methods.join("+")));
        if delivery.thread.is_none() && first != 0 {
            sent.thread = Some(first.to_string());
        }
        Ok(sent)
    }

    /// `getMe` and `getChat`: the token works and the bot sees the chat.
    /// Nothing is posted.
    async fn check(&self) -> CheckRow {
        let component = format!("telegram {}", self.parts.destination);
        let target = format!("{} chat {}", self.config.api_url, self.config.chat_id);
        let get = |method: &'static str, body: Value| async move {
            let response = self
                .parts
                .client
                .post(self.config.method_url(method))
                .json(&body)
                .send()
                .await
                .map_err(|e| e.without_url().to_string())?;
            let status = response.status().as_u16();
            let bytes = response.bytes().await.map_err(|e| e.without_url().to_string())?;
            let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            match judge(status, &bytes, method) {
                Ok(_) => Ok(answer["result"].clone()),
                Err(e) => Err(e.to_string()),
            }
        };
        let me = match get("getMe", json!({})).await {
            Ok(me) => me,
            Err(e) => return CheckRow::fail(component, target, e, "is bot_token right (from @BotFather)?"),
        };
        match get("getChat", json!({"chat_id": self.config.chat_id})).await {
            Ok(chat) => CheckRow::ok(
                component,
                target,
                format!(
                    "bot @{}; chat {:?} found; nothing posted",
                    me["username"].as_str().unwrap_or("?"),
                    chat["title"].as_str().or(chat["username"].as_str()).unwrap_or("?")
                ),
            ),
            Err(e) => CheckRow::fail(component, target, e, "add the bot to the chat, and check chat_id"),
        }
    }
}

/// A call as the outbox and the testkit show it.
pub fn shown(call: &Call) -> Value {
    match call {
        Call::Message { text } => json!({"method": "sendMessage", "text": text}),
        Call::Photo { caption, png } => json!({"method": "sendPhoto", "caption": caption, "photos": [png.len()]}),
        Call::Album { caption, pngs } => json!({
            "method": "sendMediaGroup",
            "caption": caption,
            "photos": pngs.iter().map(Vec::len).collect::<Vec<_>>(),
        }),
    }
}
