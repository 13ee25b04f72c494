//! A fake Feishu (飞书) open platform on 127.0.0.1:0 (axum): the custom
//! bot webhook and, for the chart, the tenant token and image APIs, after
//! the custom bot guide and the open platform's API docs:
//! - `POST /open-apis/bot/v2/hook/{token}` (JSON): a wrong token `19001`;
//!   with a signing secret, `timestamp` (seconds, within an hour) and
//!   `sign` = base64(HMAC-SHA256 keyed by "{timestamp}\n{secret}" over
//!   nothing), else `19021`; with keywords, a card holding none: `19024`;
//!   `msg_type: interactive` with a `card` (header title, elements of
//!   tags it knows), else `19002`; past its rate `11232`;
//!   every answer HTTP 200 with `{"code":…,"msg":…,"data":{}}`;
//! - `POST /open-apis/auth/v3/tenant_access_token/internal`: the app's id
//!   and secret → `tenant_access_token` (`t-…`) and `expire` (7,200 s);
//!   a wrong secret `10014`;
//! - `POST /open-apis/im/v1/images` (multipart `image_type=message`,
//!   `image`), bearer the token, else HTTP 401 `99991663` →
//!   `data.image_key`.
//!
//! A card's `img_key` that it never issued is recorded in
//! [`FakeFeishu::violations`] (the group would show a broken image).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

pub const APP_ID: &str = "cli_fanouttest";

struct Inner {
    hook: String,
    secret: Option<String>,
    app_secret: String,
    tokens: Vec<String>,
    images: HashMap<String, Vec<u8>>,
    window: super::window::RateWindow,
    script: VecDeque<(i64, &'static str)>,
    cards: Vec<Value>,
    violations: Vec<String>,
}

type Shared = Arc<Mutex<Inner>>;

fn lock(shared: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct FakeFeishu {
    addr: std::net::SocketAddr,
    shared: Shared,
    _running: super::serve::Running,
}

impl FakeFeishu {
    pub fn start(secret: Option<&str>, count: usize, per: Duration) -> Self {
        let shared = Arc::new(Mutex::new(Inner {
            hook: format!("{:08x}-{:04x}-hook", fastrand::u32(..), fastrand::u16(..)),
            secret: secret.map(str::to_string),
            app_secret: format!("appsecret{:016x}", fastrand::u64(..)),
            tokens: Vec::new(),
            images: HashMap::new(),
            window: super::window::RateWindow::new(count, per),
            script: VecDeque::new(),
            cards: Vec::new(),
            violations: Vec::new(),
        }));
        let listener = super::serve::bind();
        let addr = listener.local_addr().expect("local addr");
        let app = Router::new()
            .fallback(handle)
            .layer(axum::extract::DefaultBodyLimit::max(32 << 20))
            .with_state(shared.clone());
        let running = super::serve::serve(listener, app);
        Self {
            addr,
            shared,
            _running: running,
        }
    }

    pub fn url(&self) -> String {
        format!(
            "http://{}/open-apis/bot/v2/hook/{}",
            self.addr,
            lock(&self.shared).hook
        )
    }

    pub fn hook_token(&self) -> String {
        lock(&self.shared).hook.clone()
    }

    pub fn app_secret(&self) -> String {
        lock(&self.shared).app_secret.clone()
    }

    pub fn fail_next(&self, answers: &[(i64, &'static str)]) {
        lock(&self.shared).script.extend(answers.iter().copied());
    }

    /// The bodies the bot took.
    pub fn cards(&self) -> Vec<Value> {
        lock(&self.shared).cards.clone()
    }

    pub fn image(&self, key: &str) -> Option<Vec<u8>> {
        lock(&self.shared).images.get(key).cloned()
    }

    /// Tenant tokens granted.
    pub fn tokens(&self) -> usize {
        lock(&self.shared).tokens.len()
    }

    pub fn violations(&self) -> Vec<String> {
        lock(&self.shared).violations.clone()
    }
}

fn code(code: i64, msg: &str) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"code": code, "msg": msg, "data": {}}).to_string(),
    )
        .into_response()
}

fn signed(secret: &str, timestamp: &str) -> String {
    let mac = Hmac::<Sha256>::new_from_slice(format!("{timestamp}\n{secret}").as_bytes())
        .expect("any key");
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

async fn handle(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    if path == "/open-apis/auth/v3/tenant_access_token/internal" {
        let asked: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let mut inner = lock(&shared);
        if asked["app_id"] != APP_ID || asked["app_secret"] != inner.app_secret.as_str() {
            return code(10014, "app secret invalid");
        }
        let token = format!("t-{:016x}", fastrand::u64(..));
        inner.tokens.push(token.clone());
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            json!({"code": 0, "msg": "ok", "tenant_access_token": token, "expire": 7200})
                .to_string(),
        )
            .into_response();
    }
    if path == "/open-apis/im/v1/images" {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string);
        let known = bearer.is_some_and(|t| lock(&shared).tokens.contains(&t));
        if !known {
            return (
                StatusCode::UNAUTHORIZED,
                json!({"code": 99991663, "msg": "Invalid access token for authorization."})
                    .to_string(),
            )
                .into_response();
        }
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let Ok(boundary) = multer::parse_boundary(&content_type) else {
            return code(234001, "Invalid request param.");
        };
        let stream = futures::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
        let mut form = multer::Multipart::new(stream, boundary);
        let (mut kind, mut image) = (None, None);
        while let Ok(Some(field)) = form.next_field().await {
            let name = field.name().unwrap_or_default().to_string();
            let bytes = field.bytes().await.unwrap_or_default();
            match name.as_str() {
                "image_type" => kind = Some(String::from_utf8_lossy(&bytes).into_owned()),
                "image" => image = Some(bytes.to_vec()),
                _ => {}
            }
        }
        let (Some("message"), Some(image)) = (kind.as_deref(), image) else {
            return code(234001, "Invalid request param.");
        };
        if !image.starts_with(b"\x89PNG") {
            return code(234011, "Can't recognise image format.");
        }
        let mut inner = lock(&shared);
        let key = format!("img_v2_{:04}", inner.images.len());
        inner.images.insert(key.clone(), image);
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            json!({"code": 0, "msg": "success", "data": {"image_key": key}}).to_string(),
        )
            .into_response();
    }
    let mut inner = lock(&shared);
    let Some(token) = path.strip_prefix("/open-apis/bot/v2/hook/") else {
        return (StatusCode::NOT_FOUND, "404 page not found").into_response();
    };
    if token != inner.hook {
        return code(
            19001,
            "param invalid: incoming webhook access token invalid",
        );
    }
    let message: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Some(secret) = inner.secret.clone() {
        let timestamp = message["timestamp"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let fresh = timestamp
            .parse::<i64>()
            .is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() <= 3600);
        if !fresh || message["sign"].as_str() != Some(signed(&secret, &timestamp).as_str()) {
            return code(
                19021,
                "sign match fail or timestamp is not within one hour from current time",
            );
        }
    }
    if let Some((c, m)) = inner.script.pop_front() {
        return code(c, m);
    }
    let card = &message["card"];
    let known_tags = ["div", "img", "action", "hr", "note", "markdown"];
    let readable = message["msg_type"] == "interactive"
        && card["header"]["title"]["content"].is_string()
        && card["elements"].as_array().is_some_and(|e| {
            e.iter()
                .all(|e| known_tags.contains(&e["tag"].as_str().unwrap_or_default()))
        });
    if !readable {
        return code(19002, "params error, msg_type need interactive card");
    }
    for element in card["elements"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["tag"] == "img")
    {
        let key = element["img_key"].as_str().unwrap_or_default();
        if !inner.images.contains_key(key) {
            inner
                .violations
                .push(format!("img_key {key} was never issued"));
        }
    }
    if inner.window.admit().is_err() {
        return code(
            11232,
            "frequency limited psm[lark.oapi.app_platform_runtime]appID[1]",
        );
    }
    inner.cards.push(message);
    code(0, "success")
}

#[cfg(test)]
mod self_tests {
    use super::*;

    #[test]
    fn the_fake_bot_checks_its_signature_token_and_card() {
        let secret = "SECfake";
        let bot = FakeFeishu::start(Some(secret), 1, Duration::from_secs(60));
        let post = |url: &str, body: Value| -> i64 {
            reqwest::blocking::Client::new()
                .post(url)
                .json(&body)
                .send()
                .unwrap()
                .json::<Value>()
                .unwrap()["code"]
                .as_i64()
                .unwrap()
        };
        let now = chrono::Utc::now().timestamp().to_string();
        let card = |ts: &str, sign: &str| {
            json!({"timestamp": ts, "sign": sign, "msg_type": "interactive",
            "card": {"header": {"title": {"tag": "plain_text", "content": "t"}}, "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": "x"}}]}})
        };
        assert_eq!(
            post(
                &bot.url().replace("-hook", "-nope"),
                card(&now, &signed(secret, &now))
            ),
            19001
        );
        assert_eq!(post(&bot.url(), card(&now, "wrong")), 19021);
        let old = (chrono::Utc::now().timestamp() - 4000).to_string();
        assert_eq!(post(&bot.url(), card(&old, &signed(secret, &old))), 19021);
        assert_eq!(post(&bot.url(), card(&now, &signed(secret, &now))), 0);
        assert_eq!(
            post(&bot.url(), card(&now, &signed(secret, &now))),
            11232,
            "past its rate"
        );
        let origin = bot.url().split("/open-apis").next().unwrap().to_string();
        let token = |secret: &str| -> Value {
            reqwest::blocking::Client::new()
                .post(format!(
                    "{origin}/open-apis/auth/v3/tenant_access_token/internal"
                ))
                .json(&json!({"app_id": APP_ID, "app_secret": secret}))
                .send()
                .unwrap()
                .json()
                .unwrap()
        };
        assert_eq!(token("wrong")["code"], 10014);
        assert!(token(&bot.app_secret())["tenant_access_token"]
            .as_str()
            .unwrap()
            .starts_with("t-"));
    }
}
