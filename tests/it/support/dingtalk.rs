//! A fake DingTalk (钉钉) custom robot on 127.0.0.1:0 (axum).
//!
//! It answers the way `oapi.dingtalk.com/robot/send` does: HTTP 200
//! whatever happened, `{"errcode":N,"errmsg":"..."}` in the body. It checks
//! what the custom robot documentation (自定义机器人) asks:
//! - `POST /robot/send?access_token=…`; an unknown token: 300001
//!   ("token is not exist");
//! - with a signing secret: `timestamp` (ms, within an hour of its clock)
//!   and `sign` = base64(HMAC-SHA256(secret, "{timestamp}\n{secret}")),
//!   else 310000 ("sign not match"); with keywords, a text holding none:
//!   310000 ("keywords not in content");
//! - JSON (`Content-Type: application/json`, else 43004); `msgtype`
//!   markdown with a non-empty `title` and `text`, `at` with
//!   `atMobiles`/`atUserIds` (string arrays) and `isAtAll` (bool), else
//!   40035 ("缺少参数 json");
//! - 20 messages a minute per robot, past that 130101 ("send too fast,
//!   exceed 20 times per minute").
//!
//! The codes are the ones DingTalk's docs and its users' reports show; the
//! official table was not reachable from this machine. What the docs say
//! without a code (the markdown text's 20,000-byte limit, a mentioned
//! mobile appearing in the text as `@mobile`) is recorded in
//! [`FakeDingtalk::violations`], which a test asserts empty.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, Uri};
use axum::response::IntoResponse;
use axum::Router;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

pub const SEND_PATH: &str = "/robot/send";
pub const MARKDOWN_MAX: usize = 20_000;

#[derive(Clone, Debug)]
pub struct DingtalkRequest {
    pub body: Value,
    pub errcode: i64,
}

struct Inner {
    token: String,
    secret: Option<String>,
    keywords: Vec<String>,
    script: VecDeque<(i64, &'static str)>,
    window: super::window::RateWindow,
    got: Vec<DingtalkRequest>,
    violations: Vec<String>,
}

type Shared = Arc<Mutex<Inner>>;

fn lock(shared: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct FakeDingtalk {
    addr: std::net::SocketAddr,
    shared: Shared,
    _running: super::serve::Running,
}

impl FakeDingtalk {
    /// A robot with a random token, signing with `secret` when given,
    /// taking `count` messages per `per`.
    pub fn start(secret: Option<&str>, count: usize, per: Duration) -> Self {
        let token = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let shared = Arc::new(Mutex::new(Inner {
            token,
            secret: secret.map(str::to_string),
            keywords: Vec::new(),
            script: VecDeque::new(),
            window: super::window::RateWindow::new(count, per),
            got: Vec::new(),
            violations: Vec::new(),
        }));
        let listener = super::serve::bind();
        let addr = listener.local_addr().expect("local addr");
        let app = Router::new().fallback(handle).with_state(shared.clone());
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
        format!(
            "http://{}{SEND_PATH}?access_token={}",
            self.addr,
            self.token()
        )
    }

    /// The security setting "自定义关键词": a text must hold one of them.
    pub fn require_keywords(&self, keywords: &[&str]) {
        lock(&self.shared).keywords = keywords.iter().map(|k| k.to_string()).collect();
    }

    /// Answer the next requests with these errcodes instead.
    pub fn fail_next(&self, answers: &[(i64, &'static str)]) {
        lock(&self.shared).script.extend(answers.iter().copied());
    }

    pub fn requests(&self) -> Vec<DingtalkRequest> {
        lock(&self.shared).got.clone()
    }

    /// Accepted messages.
    pub fn messages(&self) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r.errcode == 0)
            .map(|r| r.body)
            .collect()
    }

    pub fn violations(&self) -> Vec<String> {
        lock(&self.shared).violations.clone()
    }
}

fn query(uri: &Uri, name: &str) -> Option<String> {
    url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn signed(secret: &str, timestamp: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key");
    mac.update(format!("{timestamp}\n{secret}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let mut inner = lock(&shared);
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (errcode, errmsg) = judge(&mut inner, &method, &uri, &headers, &parsed);
    inner.got.push(DingtalkRequest {
        body: parsed,
        errcode,
    });
    (
        [(header::CONTENT_TYPE, "application/json;charset=utf-8")],
        json!({"errcode": errcode, "errmsg": errmsg}).to_string(),
    )
}

fn judge(
    inner: &mut Inner,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Value,
) -> (i64, String) {
    if method != Method::POST || uri.path() != SEND_PATH {
        return (404, "请求的URI地址不存在".into());
    }
    if query(uri, "access_token").as_deref() != Some(inner.token.as_str()) {
        return (300001, "token is not exist".into());
    }
    if let Some(secret) = inner.secret.clone() {
        let (Some(timestamp), Some(sign)) = (query(uri, "timestamp"), query(uri, "sign")) else {
            return (
                310000,
                "sign not match, more: [missing timestamp or sign]".into(),
            );
        };
        let now = chrono::Utc::now().timestamp_millis();
        let fresh = timestamp
            .parse::<i64>()
            .is_ok_and(|t| (now - t).abs() <= 3_600_000);
        if !fresh {
            return (310000, "invalid timestamp".into());
        }
        if sign != signed(&secret, &timestamp) {
            return (310000, "sign not match".into());
        }
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return (43004, "无效的HTTP HEADER Content-Type".into());
    }
    if let Some((code, message)) = inner.script.pop_front() {
        return (code, message.to_string());
    }
    let title = body.pointer("/markdown/title").and_then(Value::as_str);
    let text = body.pointer("/markdown/text").and_then(Value::as_str);
    let at = &body["at"];
    let strings =
        |v: &Value| v.is_null() || v.as_array().is_some_and(|a| a.iter().all(Value::is_string));
    let well_formed = body["msgtype"] == "markdown"
        && title.is_some_and(|t| !t.trim().is_empty())
        && text.is_some_and(|t| !t.trim().is_empty())
        && strings(&at["atMobiles"])
        && strings(&at["atUserIds"])
        && (at["isAtAll"].is_null() || at["isAtAll"].is_boolean());
    if !well_formed {
        return (40035, "缺少参数 json".into());
    }
    let text = text.unwrap_or_default();
    if text.len() > MARKDOWN_MAX {
        inner
            .violations
            .push(format!("markdown text of {} bytes", text.len()));
    }
    for mobile in at["atMobiles"].as_array().into_iter().flatten() {
        let mobile = mobile.as_str().unwrap_or_default();
        if !text.contains(&format!("@{mobile}")) {
            inner
                .violations
                .push(format!("@{mobile} is mentioned but not in the text"));
        }
    }
    if !inner.keywords.is_empty() && !inner.keywords.iter().any(|k| text.contains(k.as_str())) {
        return (310000, "keywords not in content".into());
    }
    if inner.window.admit().is_err() {
        return (130101, "send too fast, exceed 20 times per minute".into());
    }
    (0, "ok".into())
}

#[cfg(test)]
mod self_tests {
    use super::*;

    fn post(robot: &FakeDingtalk, url: &str, body: Value) -> (i64, String) {
        let answer: Value = reqwest::blocking::Client::new()
            .post(url)
            .json(&body)
            .send()
            .expect("the fake answers")
            .json()
            .expect("JSON");
        let _ = robot;
        (
            answer["errcode"].as_i64().unwrap(),
            answer["errmsg"].as_str().unwrap().to_string(),
        )
    }

    fn markdown(text: &str) -> Value {
        json!({"msgtype": "markdown", "markdown": {"title": "t", "text": text}, "at": {"atMobiles": ["138"], "isAtAll": false}})
    }

    #[test]
    fn the_fake_robot_keeps_dingtalks_rules() {
        let robot = FakeDingtalk::start(None, 2, Duration::from_secs(60));
        assert_eq!(post(&robot, &robot.url(), markdown("disk @138")).0, 0);
        let wrong = robot.url().replace("access_token=", "access_token=x");
        assert_eq!(post(&robot, &wrong, markdown("x @138")).0, 300001);
        assert_eq!(
            post(&robot, &robot.url(), json!({"msgtype": "markdown"})).0,
            40035
        );
        robot.require_keywords(&["告警"]);
        assert_eq!(post(&robot, &robot.url(), markdown("disk @138")).0, 310000);
        assert_eq!(post(&robot, &robot.url(), markdown("告警 @138")).0, 0);
        assert_eq!(
            post(&robot, &robot.url(), markdown("告警 @138")).0,
            130101,
            "the third in a minute"
        );
        assert!(robot.violations().is_empty());
        let robot = FakeDingtalk::start(None, 5, Duration::from_secs(60));
        post(&robot, &robot.url(), markdown("no mention in text"));
        assert_eq!(robot.violations().len(), 1);
    }

    #[test]
    fn the_fake_robot_checks_the_signature_and_its_age() {
        let secret = "SECfake0123456789";
        let robot = FakeDingtalk::start(Some(secret), 10, Duration::from_secs(60));
        let now = chrono::Utc::now().timestamp_millis().to_string();
        let with = |ts: &str, sign: &str| {
            let mut url = url::Url::parse(&robot.url()).unwrap();
            url.query_pairs_mut()
                .append_pair("timestamp", ts)
                .append_pair("sign", sign);
            url.to_string()
        };
        assert_eq!(
            post(
                &robot,
                &with(&now, &signed(secret, &now)),
                markdown("a @138")
            )
            .0,
            0
        );
        assert_eq!(post(&robot, &robot.url(), markdown("a @138")).0, 310000);
        assert_eq!(
            post(
                &robot,
                &with(&now, &signed("SECother", &now)),
                markdown("a @138")
            )
            .0,
            310000
        );
        let old = (chrono::Utc::now().timestamp_millis() - 3_700_000).to_string();
        assert_eq!(
            post(
                &robot,
                &with(&old, &signed(secret, &old)),
                markdown("a @138")
            )
            .0,
            310000
        );
    }
}
