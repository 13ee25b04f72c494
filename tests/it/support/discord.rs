//! A fake Discord webhook on 127.0.0.1:0 (axum), after Discord's
//! "Execute Webhook", "Get Webhook with Token", "Uploading Files",
//! "Embed Limits" and "Rate Limits" docs:
//! - `GET /api/webhooks/{id}/{token}`: the webhook (200); a wrong token
//!   401 `{"message":"Invalid Webhook Token","code":50027}`; another id
//!   404 `{"message":"Unknown Webhook","code":10015}`;
//! - `POST` the same path, `multipart/form-data` with `payload_json` and
//!   `files[n]` (or plain JSON): every embed limit (title 256, description
//!   4,096, 25 fields of name 256 / value 1,024, 10 embeds, 6,000
//!   characters in all), every `attachment://` reference naming an
//!   uploaded file, `attachments[].id` matching `files[n]`; a breach is
//!   400 `{"message":"Invalid Form Body","code":50035,"errors":{…}}`;
//! - `?wait=true`: 200 with the message (its id); else 204;
//!   `?thread_id=`: kept with the message;
//! - past its rate (count per window): 429 with `retry_after` (seconds,
//!   fractional), `global`, and the `Retry-After` and `X-RateLimit-*`
//!   headers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

#[derive(Clone, Debug)]
pub struct DiscordMessage {
    pub payload: Value,
    /// `(form field, file name, bytes)`.
    pub files: Vec<(String, String, Vec<u8>)>,
    pub thread_id: Option<String>,
}

struct Inner {
    id: String,
    token: String,
    window: super::window::RateWindow,
    script: VecDeque<(u16, Value)>,
    posts: usize,
    messages: Vec<DiscordMessage>,
    refused: Vec<Value>,
    gets: usize,
}

type Shared = Arc<Mutex<Inner>>;

fn lock(shared: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct FakeDiscord {
    addr: std::net::SocketAddr,
    shared: Shared,
    _running: super::serve::Running,
}

impl FakeDiscord {
    /// A webhook taking `count` messages per `per`.
    pub fn start(count: usize, per: Duration) -> Self {
        let shared = Arc::new(Mutex::new(Inner {
            id: format!(
                "{}",
                1_000_000_000_000_000_000u64 + fastrand::u64(..1_000_000_000)
            ),
            token: format!("wh-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
            window: super::window::RateWindow::new(count, per),
            script: VecDeque::new(),
            posts: 0,
            messages: Vec::new(),
            refused: Vec::new(),
            gets: 0,
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

    pub fn url(&self) -> String {
        let inner = lock(&self.shared);
        format!(
            "http://{}/api/webhooks/{}/{}",
            self.addr, inner.id, inner.token
        )
    }

    /// Answer the next posts with these statuses and bodies instead.
    pub fn fail_next(&self, answers: &[(u16, Value)]) {
        lock(&self.shared).script.extend(answers.iter().cloned());
    }

    pub fn messages(&self) -> Vec<DiscordMessage> {
        lock(&self.shared).messages.clone()
    }

    /// The 400s' `errors`, for a test to read.
    pub fn refused(&self) -> Vec<Value> {
        lock(&self.shared).refused.clone()
    }

    pub fn posts(&self) -> usize {
        lock(&self.shared).posts
    }

    pub fn gets(&self) -> usize {
        lock(&self.shared).gets
    }
}

fn answer(status: u16, body: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn query(uri: &Uri, name: &str) -> Option<String> {
    url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (id, token) = {
        let inner = lock(&shared);
        (inner.id.clone(), inner.token.clone())
    };
    let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let ["api", "webhooks", got_id, got_token] = segments.as_slice() else {
        return answer(404, json!({"message": "404: Not Found", "code": 0}));
    };
    if *got_id != id {
        return answer(404, json!({"message": "Unknown Webhook", "code": 10015}));
    }
    if *got_token != token {
        return answer(
            401,
            json!({"message": "Invalid Webhook Token", "code": 50027}),
        );
    }
    if method == Method::GET {
        lock(&shared).gets += 1;
        return answer(
            200,
            json!({"id": id, "type": 1, "name": "alerts", "channel_id": "555000111222333444", "token": token}),
        );
    }
    if method != Method::POST {
        return answer(
            405,
            json!({"message": "405: Method Not Allowed", "code": 0}),
        );
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let (payload, files) = if content_type.starts_with("multipart/form-data") {
        match read_form(&content_type, body).await {
            Ok(read) => read,
            Err(e) => return answer(400, json!({"message": e, "code": 50035})),
        }
    } else if content_type.starts_with("application/json") {
        (
            serde_json::from_slice(&body).unwrap_or(Value::Null),
            Vec::new(),
        )
    } else {
        return answer(
            400,
            json!({"message": "Cannot send an empty message", "code": 50006}),
        );
    };
    let mut inner = lock(&shared);
    inner.posts += 1;
    if let Some((status, body)) = inner.script.pop_front() {
        return answer(status, body);
    }
    let errors = limits(&payload, &files);
    if !errors.is_empty() {
        inner.refused.push(json!(errors));
        return answer(
            400,
            json!({"message": "Invalid Form Body", "code": 50035, "errors": errors}),
        );
    }
    if let Err(wait) = inner.window.admit() {
        let mut response = answer(
            429,
            json!({"message": "You are being rate limited.", "retry_after": wait.as_secs_f64(), "global": false}),
        );
        let h = response.headers_mut();
        h.insert(
            "retry-after",
            wait.as_secs().max(1).to_string().parse().unwrap(),
        );
        h.insert(
            "x-ratelimit-limit",
            inner.window.count().to_string().parse().unwrap(),
        );
        h.insert("x-ratelimit-remaining", "0".parse().unwrap());
        h.insert(
            "x-ratelimit-reset-after",
            format!("{:.3}", wait.as_secs_f64()).parse().unwrap(),
        );
        return response;
    }
    let message_id = format!(
        "{}",
        1_100_000_000_000_000_000u64 + inner.messages.len() as u64
    );
    inner.messages.push(DiscordMessage {
        payload: payload.clone(),
        files: files.clone(),
        thread_id: query(&uri, "thread_id"),
    });
    if query(&uri, "wait").as_deref() == Some("true") {
        let attachments: Vec<Value> = files
            .iter()
            .map(|(_, name, bytes)| json!({"filename": name, "size": bytes.len()}))
            .collect();
        answer(
            200,
            json!({"id": message_id, "channel_id": "555000111222333444", "embeds": payload["embeds"], "attachments": attachments}),
        )
    } else {
        StatusCode::NO_CONTENT.into_response()
    }
}

async fn read_form(
    content_type: &str,
    body: Bytes,
) -> Result<(Value, Vec<(String, String, Vec<u8>)>), String> {
    let boundary = multer::parse_boundary(content_type).map_err(|e| e.to_string())?;
    let stream = futures::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut payload = Value::Null;
    let mut files = Vec::new();
    while let Some(field) = form.next_field().await.map_err(|e| e.to_string())? {
        let name = field.name().unwrap_or_default().to_string();
        let file_name = field.file_name().map(str::to_string);
        let bytes = field.bytes().await.map_err(|e| e.to_string())?;
        if name == "payload_json" {
            payload = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        } else if name.starts_with("files[") {
            files.push((name, file_name.unwrap_or_default(), bytes.to_vec()));
        }
    }
    Ok((payload, files))
}

/// Every documented limit the message breaks, as Discord's error paths.
fn limits(payload: &Value, files: &[(String, String, Vec<u8>)]) -> Vec<String> {
    let mut errors = Vec::new();
    let count = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
    let embeds = payload["embeds"].as_array().cloned().unwrap_or_default();
    if embeds.is_empty() && count(&payload["content"]) == 0 && files.is_empty() {
        errors.push("empty message".into());
    }
    if count(&payload["content"]) > 2000 {
        errors.push("content: over 2000".into());
    }
    if embeds.len() > 10 {
        errors.push("embeds: over 10".into());
    }
    let mut total = 0;
    for (i, e) in embeds.iter().enumerate() {
        for (key, max) in [("title", 256), ("description", 4096)] {
            let n = count(&e[key]);
            total += n;
            if n > max {
                errors.push(format!("embeds.{i}.{key}: {n} over {max}"));
            }
        }
        let fields = e["fields"].as_array().cloned().unwrap_or_default();
        if fields.len() > 25 {
            errors.push(format!("embeds.{i}.fields: over 25"));
        }
        for (j, f) in fields.iter().enumerate() {
            let (n, v) = (count(&f["name"]), count(&f["value"]));
            total += n + v;
            if n == 0 || n > 256 || v == 0 || v > 1024 {
                errors.push(format!("embeds.{i}.fields.{j}: name {n}, value {v}"));
            }
        }
        if let Some(url) = e["image"]["url"].as_str() {
            if let Some(name) = url.strip_prefix("attachment://") {
                if !files.iter().any(|(_, f, _)| f == name) {
                    errors.push(format!("embeds.{i}.image: no file named {name}"));
                }
            }
        }
    }
    if total > 6000 {
        errors.push(format!("embeds: {total} characters over 6000"));
    }
    for (j, a) in payload["attachments"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let field = format!("files[{}]", a["id"]);
        let name = a["filename"].as_str().unwrap_or_default();
        if !files.iter().any(|(f, n, _)| *f == field && n == name) {
            errors.push(format!("attachments.{j}: no {field} named {name}"));
        }
    }
    errors
}

#[cfg(test)]
mod self_tests {
    use super::*;

    fn post(url: &str, payload: Value, files: &[(&str, &str)]) -> (u16, Value) {
        let mut form =
            reqwest::blocking::multipart::Form::new().text("payload_json", payload.to_string());
        for (field, name) in files {
            form = form.part(
                field.to_string(),
                reqwest::blocking::multipart::Part::bytes(b"\x89PNG".to_vec())
                    .file_name(name.to_string()),
            );
        }
        let r = reqwest::blocking::Client::new()
            .post(format!("{url}?wait=true"))
            .multipart(form)
            .send()
            .expect("the fake answers");
        (r.status().as_u16(), r.json().unwrap_or(Value::Null))
    }

    #[test]
    fn the_fake_webhook_keeps_discords_rules() {
        let hook = FakeDiscord::start(2, Duration::from_secs(60));
        let good = json!({"embeds": [{"title": "t", "image": {"url": "attachment://chart0.png"}}],
                          "attachments": [{"id": 0, "filename": "chart0.png"}]});
        let (status, message) = post(&hook.url(), good.clone(), &[("files[0]", "chart0.png")]);
        assert_eq!(status, 200, "{message}");
        assert!(message["id"].is_string());
        // A picture whose file was not uploaded; a description too long.
        assert_eq!(post(&hook.url(), good.clone(), &[]).0, 400);
        let long = json!({"embeds": [{"title": "t", "description": "x".repeat(4097)}]});
        assert_eq!(post(&hook.url(), long, &[]).0, 400);
        let many = json!({"embeds": (0..3).map(|_| json!({"description": "y".repeat(2500)})).collect::<Vec<_>>()});
        assert_eq!(
            post(&hook.url(), many, &[]).0,
            400,
            "7,500 characters in all"
        );
        assert_eq!(hook.refused().len(), 3);
        // The second message fits; the third in the window is rate limited.
        let small = json!({"embeds": [{"title": "t"}]});
        assert_eq!(post(&hook.url(), small.clone(), &[]).0, 200);
        let (status, body) = post(&hook.url(), small, &[]);
        assert_eq!(status, 429);
        assert!(body["retry_after"].as_f64().unwrap() > 0.0);
        let wrong = hook.url().replace("/wh-", "/xx-");
        assert_eq!(post(&wrong, good, &[]).0, 401);
    }
}
