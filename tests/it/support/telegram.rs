//! A fake Telegram Bot API on 127.0.0.1:0 (axum), after the Bot API docs:
//! - `POST /bot{token}/{method}`; a wrong token: 401 `Unauthorized`
//!   (and 404 for an unknown method);
//! - `getMe`, `getChat` (400 `Bad Request: chat not found` for a chat the
//!   bot is not in);
//! - `sendMessage` (JSON or form): `text` 1–4,096 characters after
//!   entity parsing; `sendPhoto` (multipart, `photo` a file): `caption` up
//!   to 1,024; `sendMediaGroup` (multipart, `media` a JSON array of 2–10
//!   `InputMediaPhoto` whose `attach://name` each name an uploaded part);
//! - `parse_mode` HTML: only the tags Telegram knows (b, strong, i, em, u,
//!   ins, s, strike, del, a href, code, pre, blockquote, tg-spoiler),
//!   balanced, entities `&lt;` `&gt;` `&amp;` `&quot;` and numeric; else
//!   400 `Bad Request: can't parse entities`;
//! - `reply_parameters.message_id` must be a message in that chat unless
//!   `allow_sending_without_reply`;
//! - past `count` messages per window in a chat: 429 `Too Many Requests:
//!   retry after N` with `parameters.retry_after`.
//!
//! Every answer is `{"ok":…}` with the HTTP status equal to `error_code`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

/// A message the fake took.
#[derive(Clone, Debug)]
pub struct TgMessage {
    pub method: String,
    pub chat_id: String,
    pub message_id: i64,
    pub topic: Option<i64>,
    pub reply_to: Option<i64>,
    /// Text or caption, as sent (HTML).
    pub text: String,
    pub photos: Vec<Vec<u8>>,
}

struct Inner {
    token: String,
    chat: String,
    window: super::window::RateWindow,
    script: VecDeque<(u16, Value)>,
    next_id: i64,
    messages: Vec<TgMessage>,
    refused: Vec<String>,
    reads: usize,
}

type Shared = Arc<Mutex<Inner>>;

fn lock(shared: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct FakeTelegram {
    addr: std::net::SocketAddr,
    shared: Shared,
    _running: super::serve::Running,
}

impl FakeTelegram {
    /// A bot in one chat, which takes `count` messages per `per`.
    pub fn start(chat: &str, count: usize, per: Duration) -> Self {
        let token = format!(
            "{}:AA{:016x}{:016x}",
            fastrand::u32(100_000..999_999),
            fastrand::u64(..),
            fastrand::u64(..)
        );
        let shared = Arc::new(Mutex::new(Inner {
            token,
            chat: chat.to_string(),
            window: super::window::RateWindow::new(count, per),
            script: VecDeque::new(),
            next_id: 100,
            messages: Vec::new(),
            refused: Vec::new(),
            reads: 0,
        }));
        let listener = super::serve::bind();
        let addr = listener.local_addr().expect("local addr");
        let app = Router::new()
            .fallback(handle)
            .layer(axum::extract::DefaultBodyLimit::max(64 << 20))
            .with_state(shared.clone());
        let running = super::serve::serve(listener, app);
        Self {
            addr,
            shared,
            _running: running,
        }
    }

    pub fn token(&self) -> String {
        lock(&self.shared).token.clone()
    }

    pub fn api_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn fail_next(&self, answers: &[(u16, Value)]) {
        lock(&self.shared).script.extend(answers.iter().cloned());
    }

    pub fn messages(&self) -> Vec<TgMessage> {
        lock(&self.shared).messages.clone()
    }

    /// Why it answered 400 to the sends it refused.
    pub fn refused(&self) -> Vec<String> {
        lock(&self.shared).refused.clone()
    }

    /// `getMe` and `getChat` calls.
    pub fn reads(&self) -> usize {
        lock(&self.shared).reads
    }
}

fn ok(result: Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"ok": true, "result": result}).to_string(),
    )
        .into_response()
}

fn fail(code: u16, description: &str, parameters: Option<Value>) -> Response {
    let mut body = json!({"ok": false, "error_code": code, "description": description});
    if let Some(p) = parameters {
        body["parameters"] = p;
    }
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A request's parameters (JSON body, or form fields) and its files.
async fn params(
    headers: &HeaderMap,
    body: Bytes,
) -> Result<(Value, Vec<(String, Vec<u8>)>), String> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if content_type.starts_with("application/json") {
        return Ok((
            serde_json::from_slice(&body).map_err(|e| e.to_string())?,
            Vec::new(),
        ));
    }
    if content_type.starts_with("multipart/form-data") {
        let boundary = multer::parse_boundary(&content_type).map_err(|e| e.to_string())?;
        let stream = futures::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
        let mut form = multer::Multipart::new(stream, boundary);
        let mut fields = serde_json::Map::new();
        let mut files = Vec::new();
        while let Some(field) = form.next_field().await.map_err(|e| e.to_string())? {
            let name = field.name().unwrap_or_default().to_string();
            let is_file = field.file_name().is_some();
            let bytes = field.bytes().await.map_err(|e| e.to_string())?;
            if is_file {
                files.push((name, bytes.to_vec()));
            } else {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let value = match name.as_str() {
                    "media" | "reply_parameters" => {
                        serde_json::from_str(&text).unwrap_or(Value::String(text))
                    }
                    _ => Value::String(text),
                };
                fields.insert(name, value);
            }
        }
        return Ok((Value::Object(fields), files));
    }
    Ok((Value::Object(Default::default()), Vec::new()))
}

/// The visible text of Telegram HTML, or why it does not parse.
pub fn visible(html: &str) -> Result<String, String> {
    const TAGS: &[&str] = &[
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-spoiler",
        "span",
    ];
    let mut out = String::new();
    let mut open: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find(['<', '&']) {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if rest.starts_with('&') {
            let end = rest.find(';').ok_or("an unterminated entity")?;
            let entity = &rest[1..end];
            let c = match entity {
                "lt" => '<',
                "gt" => '>',
                "amp" => '&',
                "quot" => '"',
                e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or("a bad numeric entity")?,
                e if e.starts_with('#') => e[1..]
                    .parse()
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or("a bad numeric entity")?,
                _ => return Err(format!("unsupported entity &{entity};")),
            };
            out.push(c);
            rest = &rest[end + 1..];
            continue;
        }
        let end = rest.find('>').ok_or("an unclosed tag")?;
        let tag = &rest[1..end];
        rest = &rest[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            if open.pop().as_deref() != Some(name.trim()) {
                return Err(format!("unexpected end tag {name}"));
            }
            continue;
        }
        let name = tag.split_whitespace().next().unwrap_or_default();
        if !TAGS.contains(&name) {
            return Err(format!("unsupported start tag \"{name}\""));
        }
        if name == "a" && !tag.contains("href=\"") {
            return Err("a link without href".into());
        }
        open.push(name.to_string());
    }
    out.push_str(rest);
    if let Some(tag) = open.pop() {
        return Err(format!(
            "can't find end tag corresponding to start tag \"{tag}\""
        ));
    }
    Ok(out)
}

async fn handle(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = lock(&shared).token.clone();
    let path = uri.path().trim_start_matches('/');
    let Some((bot, method)) = path.split_once('/') else {
        return fail(404, "Not Found", None);
    };
    if bot != format!("bot{token}") {
        return fail(401, "Unauthorized", None);
    }
    let (p, files) = match params(&headers, body).await {
        Ok(read) => read,
        Err(e) => return fail(400, &format!("Bad Request: {e}"), None),
    };
    let mut inner = lock(&shared);
    let chat = p["chat_id"]
        .as_str()
        .map(str::to_string)
        .or_else(|| p["chat_id"].as_i64().map(|i| i.to_string()));
    match method {
        "getMe" => {
            inner.reads += 1;
            return ok(
                json!({"id": 1, "is_bot": true, "first_name": "fanout", "username": "fanout_test_bot"}),
            );
        }
        "getChat" => {
            inner.reads += 1;
            return if chat.as_deref() == Some(inner.chat.as_str()) {
                ok(
                    json!({"id": inner.chat, "type": "supergroup", "title": "On-call", "is_forum": true}),
                )
            } else {
                fail(400, "Bad Request: chat not found", None)
            };
        }
        "sendMessage" | "sendPhoto" | "sendMediaGroup" => {}
        _ => return fail(404, "Not Found: method not found", None),
    }
    if let Some((code, body)) = inner.script.pop_front() {
        let description = body["description"]
            .as_str()
            .unwrap_or("scripted")
            .to_string();
        return fail(code, &description, body.get("parameters").cloned());
    }
    let Some(chat) = chat.filter(|c| *c == inner.chat) else {
        return fail(400, "Bad Request: chat not found", None);
    };
    let refuse = |why: String, inner: &mut Inner| {
        inner.refused.push(why.clone());
        fail(400, &format!("Bad Request: {why}"), None)
    };
    let (text, limit, photos) = match method {
        "sendMessage" => (
            p["text"].as_str().unwrap_or_default().to_string(),
            4096,
            Vec::new(),
        ),
        "sendPhoto" => {
            let photo: Vec<Vec<u8>> = files
                .iter()
                .filter(|(n, _)| n == "photo")
                .map(|(_, b)| b.clone())
                .collect();
            if photo.len() != 1 {
                return refuse("there is no photo in the request".into(), &mut inner);
            }
            (
                p["caption"].as_str().unwrap_or_default().to_string(),
                1024,
                photo,
            )
        }
        _ => {
            let media = p["media"].as_array().cloned().unwrap_or_default();
            if !(2..=10).contains(&media.len()) {
                return refuse("media must include 2-10 items".into(), &mut inner);
            }
            let mut photos = Vec::new();
            for item in &media {
                let name = item["media"]
                    .as_str()
                    .and_then(|m| m.strip_prefix("attach://"))
                    .unwrap_or_default();
                match files.iter().find(|(n, _)| n == name) {
                    Some((_, bytes)) if item["type"] == "photo" => photos.push(bytes.clone()),
                    _ => {
                        return refuse(
                            format!("wrong file identifier/HTTP URL specified: {name}"),
                            &mut inner,
                        )
                    }
                }
            }
            (
                media[0]["caption"].as_str().unwrap_or_default().to_string(),
                1024,
                photos,
            )
        }
    };
    let shown = match p["parse_mode"].as_str() {
        Some("HTML") => match visible(&text) {
            Ok(shown) => shown,
            Err(e) => return refuse(format!("can't parse entities: {e}"), &mut inner),
        },
        _ => text.clone(),
    };
    let length = shown.trim().chars().count();
    if method == "sendMessage" && length == 0 {
        return refuse("message text is empty".into(), &mut inner);
    }
    if length > limit {
        let what = if method == "sendMessage" {
            "message is too long"
        } else {
            "message caption is too long"
        };
        return refuse(what.into(), &mut inner);
    }
    let reply = &p["reply_parameters"];
    let reply_to = reply["message_id"].as_i64();
    if let Some(id) = reply_to {
        let known = inner.messages.iter().any(|m| m.message_id == id);
        if !known && reply["allow_sending_without_reply"] != true {
            return refuse("message to be replied not found".into(), &mut inner);
        }
    }
    if let Err(wait) = inner.window.admit() {
        let wait = wait.as_secs().max(1);
        return fail(
            429,
            &format!("Too Many Requests: retry after {wait}"),
            Some(json!({"retry_after": wait})),
        );
    }
    let topic = p["message_thread_id"]
        .as_i64()
        .or_else(|| p["message_thread_id"].as_str().and_then(|t| t.parse().ok()));
    let first = inner.next_id;
    let made = if method == "sendMediaGroup" {
        photos.len()
    } else {
        1
    };
    inner.next_id += made as i64;
    inner.messages.push(TgMessage {
        method: method.to_string(),
        chat_id: chat.clone(),
        message_id: first,
        topic,
        reply_to,
        text,
        photos,
    });
    let message =
        |id: i64| json!({"message_id": id, "chat": {"id": chat, "type": "supergroup"}, "date": 0});
    if method == "sendMediaGroup" {
        ok(json!((0..made as i64)
            .map(|i| message(first + i))
            .collect::<Vec<_>>()))
    } else {
        ok(message(first))
    }
}

#[cfg(test)]
mod self_tests {
    use super::*;

    #[test]
    fn html_is_read_as_telegram_reads_it() {
        assert_eq!(
            visible("<b>a &lt;b&gt;</b> <a href=\"https:&#x2f;&#x2f;x\">l</a>").unwrap(),
            "a <b> l"
        );
        assert!(visible("<div>x</div>").is_err());
        assert!(visible("<b>x").is_err());
        assert!(visible("a & b").is_err());
    }

    #[test]
    fn the_fake_bot_keeps_the_bot_apis_rules() {
        let bot = FakeTelegram::start("-100123", 2, Duration::from_secs(60));
        let send = |body: Value| {
            let r = reqwest::blocking::Client::new()
                .post(format!("{}/bot{}/sendMessage", bot.api_url(), bot.token()))
                .json(&body)
                .send()
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().unwrap())
        };
        let (status, first) =
            send(json!({"chat_id": "-100123", "text": "<b>hi</b>", "parse_mode": "HTML"}));
        assert_eq!(status, 200, "{first}");
        let id = first["result"]["message_id"].as_i64().unwrap();
        assert_eq!(
            send(json!({"chat_id": "-999", "text": "x"})).1["description"],
            "Bad Request: chat not found"
        );
        assert_eq!(
            send(json!({"chat_id": "-100123", "text": "<p>x</p>", "parse_mode": "HTML"})).0,
            400
        );
        assert_eq!(
            send(json!({"chat_id": "-100123", "text": "x".repeat(4097)})).0,
            400
        );
        assert_eq!(
            send(
                json!({"chat_id": "-100123", "text": "x", "reply_parameters": {"message_id": 9999}})
            )
            .0,
            400
        );
        assert_eq!(
            send(
                json!({"chat_id": "-100123", "text": "x", "reply_parameters": {"message_id": id}})
            )
            .0,
            200
        );
        let (status, limited) = send(json!({"chat_id": "-100123", "text": "x"}));
        assert_eq!(status, 429);
        assert!(limited["parameters"]["retry_after"].as_u64().unwrap() >= 1);
        assert_eq!(bot.messages()[1].reply_to, Some(id));
    }
}
