//! A fake WeCom (企业微信) group-bot webhook on 127.0.0.1:0 (axum).
//!
//! It answers the way `qyapi.weixin.qq.com/cgi-bin/webhook/send` does: HTTP
//! 200 whatever happened, with `{"errcode":N,"errmsg":"..."}` in the body, so
//! a sender that only looks at the HTTP status is caught. It checks what the
//! bot documentation (群机器人配置说明) asks of each message type, keeps the
//! per-key rate limit (20 messages a minute unless told otherwise) and
//! records every request with what it answered.
//!
//! Error codes, from WeCom's global error code table (全局错误码) unless said:
//! - 93000 invalid webhook url: wrong path, or a missing or wrong `key`.
//! - 40063 (参数为空: "use POST", "send a JSON body, not form data"):
//!   another method than POST, or a Content-Type that is not JSON.
//! - 40058 (不合法的参数): the body is not JSON ("Warning: wrong json
//!   format.", as the table's preamble words it) or not UTF-8; a field of the
//!   wrong type; `text`/`markdown` content over 2048/4096 bytes (the errmsg is
//!   the one WeCom sends, "markdown.content exceed max length 4096"); an
//!   article title/description over 128/512 bytes; base64 that does not
//!   decode.
//! - 40008 invalid message type: `msgtype` missing or not one of text,
//!   markdown, image, news.
//! - 44004 (文本消息content参数为空): text/markdown content missing or empty.
//! - 40009 invalid image size: the decoded image is empty or over 2 MiB.
//! - 40004 invalid media type: the decoded image is neither PNG nor JPEG.
//! - 301019 media md5 not match: `md5` is not the lowercase hex MD5 of the
//!   decoded bytes (not in the table; the errcode and errmsg WeCom answers).
//! - 45008 (图文消息的文章数量不能超过8条): not 1..=8 articles.
//! - 41016 / 41010 (缺少title参数 / 缺少url参数): an article without title
//!   or url.
//! - 45034 (url必须有协议头): an article url or picurl that is not http(s).
//! - 45009 api freq out of limit: over the rate limit.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, Method, Uri};
use axum::response::IntoResponse;
use axum::Router;
use base64::Engine as _;
use md5::{Digest, Md5};
use serde_json::{json, Value};

/// The only path the bot answers on.
pub const SEND_PATH: &str = "/cgi-bin/webhook/send";
/// Bot documentation: text content at most 2048 bytes of UTF-8.
pub const TEXT_MAX: usize = 2048;
/// Bot documentation: markdown content at most 4096 bytes of UTF-8.
pub const MARKDOWN_MAX: usize = 4096;
/// Bot documentation: an image at most 2M before base64.
pub const IMAGE_MAX: usize = 2 * 1024 * 1024;
/// Bot documentation: a news message has 1 to 8 articles.
pub const ARTICLES_MAX: usize = 8;
pub const TITLE_MAX: usize = 128;
pub const DESCRIPTION_MAX: usize = 512;

/// One request the fake got, valid or not, with what it answered.
#[derive(Clone, Debug)]
pub struct WecomRequest {
    pub at: Instant,
    pub method: String,
    pub path: String,
    /// The `key` query parameter.
    pub key: Option<String>,
    pub content_type: Option<String>,
    /// The parsed body; `Null` if it was not JSON.
    pub body: Value,
    pub raw: Vec<u8>,
    pub errcode: i64,
    pub errmsg: String,
}

struct Inner {
    key: String,
    count: u32,
    per: Duration,
    /// Answers to give instead of accepting (see [`FakeWecom::fail_next`]).
    script: VecDeque<(i64, &'static str)>,
    /// When each accepted message of the current window came in.
    window: VecDeque<Instant>,
    got: Vec<WecomRequest>,
    hint: u64,
}

type Shared = Arc<Mutex<Inner>>;

/// Locks even if a test thread panicked while holding the lock: the fake
/// must keep answering so the test reports its own failure.
fn lock(shared: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct FakeWecom {
    addr: std::net::SocketAddr,
    shared: Shared,
    /// Dropping it stops the server.
    _running: super::serve::Running,
}

impl FakeWecom {
    /// A bot with a random key and WeCom's limit: 20 messages a minute.
    pub fn start() -> Self {
        Self::with_limit(20, Duration::from_secs(60))
    }

    /// The same with another limit, so tests can reach it quickly.
    pub fn with_limit(count: u32, per: Duration) -> Self {
        let key = format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            fastrand::u32(..),
            fastrand::u16(..),
            fastrand::u16(..),
            fastrand::u16(..),
            fastrand::u64(..) & 0xffff_ffff_ffff
        );
        let shared = Arc::new(Mutex::new(Inner {
            key,
            count,
            per,
            script: VecDeque::new(),
            window: VecDeque::new(),
            got: Vec::new(),
            hint: 0,
        }));
        let listener = super::serve::bind();
        let addr = listener.local_addr().expect("local addr");
        let app = Router::new()
            .fallback(handle)
            // An image just over 2 MiB is ~2.8 MB of base64: let it reach
            // the size check instead of axum's 2 MB default limit.
            .layer(DefaultBodyLimit::max(16 * 1024 * 1024))
            .with_state(shared.clone());
        let running = super::serve::serve(listener, app);
        Self {
            addr,
            shared,
            _running: running,
        }
    }

    /// The webhook URL a WeCom admin would copy, pointing here.
    pub fn url(&self) -> String {
        format!("http://{}{SEND_PATH}?key={}", self.addr, self.key())
    }

    pub fn key(&self) -> String {
        lock(&self.shared).key.clone()
    }

    /// The next requests that get past the key check are answered with
    /// these (errcode, errmsg) instead of being checked and accepted (HTTP
    /// 200 as always), to script outages and rate-limit answers.
    pub fn fail_next(&self, answers: &[(i64, &'static str)]) {
        lock(&self.shared).script.extend(answers.iter().copied());
    }

    /// Every request, in the order they came.
    pub fn requests(&self) -> Vec<WecomRequest> {
        lock(&self.shared).got.clone()
    }

    /// The requests answered with errcode 0: what the group would show.
    pub fn accepted(&self) -> Vec<WecomRequest> {
        let inner = lock(&self.shared);
        inner
            .got
            .iter()
            .filter(|r| r.errcode == 0)
            .cloned()
            .collect()
    }
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    raw: Bytes,
) -> impl IntoResponse {
    let key = uri.query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "key")
            .map(|(_, v)| v.into_owned())
    });
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let body = serde_json::from_slice::<Value>(&raw).unwrap_or(Value::Null);
    let mut inner = lock(&shared);
    let (errcode, errmsg) = match judge(
        &mut inner,
        &method,
        uri.path(),
        key.as_deref(),
        content_type.as_deref(),
        &raw,
    ) {
        Verdict::Ok => (0, "ok".to_string()),
        Verdict::Scripted(code, msg) => (code, msg.to_string()),
        Verdict::Refused(code, msg) => {
            inner.hint += 1;
            // WeCom appends a hint and a pointer to its error code page;
            // senders must go by errcode, not by matching errmsg.
            let msg = format!(
                "{msg}, hint: [{}], from ip: 127.0.0.1, more info at \
                 https://open.work.weixin.qq.com/devtool/query?e={code}",
                inner.hint
            );
            (code, msg)
        }
    };
    inner.got.push(WecomRequest {
        at: Instant::now(),
        method: method.to_string(),
        path: uri.path().to_string(),
        key,
        content_type,
        body,
        raw: raw.to_vec(),
        errcode,
        errmsg: errmsg.clone(),
    });
    drop(inner);
    (
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        json!({ "errcode": errcode, "errmsg": errmsg }).to_string(),
    )
}

enum Verdict {
    Ok,
    Scripted(i64, &'static str),
    Refused(i64, String),
}

type Check = Result<(), (i64, String)>;

fn refuse<T>(code: i64, msg: impl Into<String>) -> Result<T, (i64, String)> {
    Err((code, msg.into()))
}

/// Decides the answer to one request, in the order WeCom would: address,
/// key, (script), method and type, body, message, rate.
fn judge(
    inner: &mut Inner,
    method: &Method,
    path: &str,
    key: Option<&str>,
    content_type: Option<&str>,
    raw: &[u8],
) -> Verdict {
    if path != SEND_PATH || key != Some(inner.key.as_str()) {
        return Verdict::Refused(93000, "invalid webhook url".into());
    }
    if let Some((code, msg)) = inner.script.pop_front() {
        return Verdict::Scripted(code, msg);
    }
    if let Err((code, msg)) = check_message(method, content_type, raw) {
        return Verdict::Refused(code, msg);
    }
    let now = Instant::now();
    while inner
        .window
        .front()
        .is_some_and(|t| now.duration_since(*t) >= inner.per)
    {
        inner.window.pop_front();
    }
    if inner.window.len() >= inner.count as usize {
        return Verdict::Refused(45009, "api freq out of limit".into());
    }
    inner.window.push_back(now);
    Verdict::Ok
}

fn check_message(method: &Method, content_type: Option<&str>, raw: &[u8]) -> Check {
    if method != Method::POST {
        return refuse(40063, "http method must be POST");
    }
    let is_json = content_type.is_some_and(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
    });
    if !is_json {
        return refuse(
            40063,
            "Content-Type must be application/json, the body a JSON object",
        );
    }
    let Ok(text) = std::str::from_utf8(raw) else {
        // Say which content holds the broken character, as far as a
        // lossy read of the body can tell.
        let lossy = String::from_utf8_lossy(raw);
        let field = serde_json::from_str::<Value>(&lossy)
            .ok()
            .and_then(|v| v.get("msgtype").and_then(Value::as_str).map(String::from))
            .map_or("request body".to_string(), |t| format!("{t}.content"));
        return refuse(40058, format!("{field} must be utf8 encoded"));
    };
    let body: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        // A lone surrogate escape (\ud83d) is half a character, not UTF-8.
        Err(e) if e.to_string().contains("surrogate") => {
            return refuse(40058, "content must be utf8 encoded");
        }
        Err(_) => {
            return refuse(
                40058,
                "Warning: wrong json format. invalid Request Parameter",
            )
        }
    };
    match body.get("msgtype").and_then(Value::as_str) {
        Some("text") => check_text(&body),
        Some("markdown") => check_content(&body, "markdown", MARKDOWN_MAX).map(|_| ()),
        Some("image") => check_image(&body),
        Some("news") => check_news(&body),
        _ => refuse(40008, "invalid message type"),
    }
}

/// `body[kind].content`: present, a non-empty string, at most `max` bytes.
fn check_content<'a>(body: &'a Value, kind: &str, max: usize) -> Result<&'a str, (i64, String)> {
    let content = body.get(kind).and_then(|m| m.get("content"));
    let content = match content {
        None | Some(Value::Null) => return refuse(44004, format!("{kind}.content missing")),
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return refuse(40058, format!("{kind}.content must be a string")),
    };
    if content.is_empty() {
        return refuse(44004, "empty content");
    }
    if content.len() > max {
        return refuse(
            40058,
            format!("{kind}.content exceed max length {max}. invalid Request Parameter"),
        );
    }
    Ok(content)
}

fn check_text(body: &Value) -> Check {
    check_content(body, "text", TEXT_MAX)?;
    for list in ["mentioned_list", "mentioned_mobile_list"] {
        match body.get("text").and_then(|t| t.get(list)) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => {}
            Some(_) => return refuse(40058, format!("text.{list} must be an array of strings")),
        }
    }
    Ok(())
}

fn check_image(body: &Value) -> Check {
    let field = |name: &str| {
        body.get("image")
            .and_then(|i| i.get(name))
            .and_then(Value::as_str)
    };
    let (Some(data), Some(md5)) = (field("base64"), field("md5")) else {
        return refuse(40058, "image.base64 and image.md5 are required strings");
    };
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(data) else {
        return refuse(40058, "image.base64 is not valid base64");
    };
    if bytes.is_empty() || bytes.len() > IMAGE_MAX {
        return refuse(40009, "invalid image size");
    }
    let png = bytes.starts_with(b"\x89PNG\r\n\x1a\n");
    let jpeg = bytes.starts_with(&[0xff, 0xd8, 0xff]);
    if !png && !jpeg {
        return refuse(40004, "invalid media type");
    }
    let digest: String = Md5::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if md5 != digest {
        return refuse(301019, "media md5 not match");
    }
    Ok(())
}

fn is_http_url(s: &str) -> bool {
    url::Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

fn check_news(body: &Value) -> Check {
    let articles = body
        .get("news")
        .and_then(|n| n.get("articles"))
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    if articles.is_empty() || articles.len() > ARTICLES_MAX {
        return refuse(
            45008,
            format!("news.articles must hold 1 to {ARTICLES_MAX} articles"),
        );
    }
    for (i, article) in articles.iter().enumerate() {
        let text = |name: &str| -> Result<Option<&str>, (i64, String)> {
            match article.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.as_str())),
                Some(_) => refuse(40058, format!("articles[{i}].{name} must be a string")),
            }
        };
        if !article.is_object() {
            return refuse(40058, format!("articles[{i}] must be an object"));
        }
        match text("title")? {
            None | Some("") => return refuse(41016, format!("articles[{i}].title missing")),
            Some(t) if t.len() > TITLE_MAX => {
                return refuse(
                    40058,
                    format!("articles[{i}].title exceed max length {TITLE_MAX}"),
                )
            }
            Some(_) => {}
        }
        if text("description")?.is_some_and(|d| d.len() > DESCRIPTION_MAX) {
            return refuse(
                40058,
                format!("articles[{i}].description exceed max length {DESCRIPTION_MAX}"),
            );
        }
        match text("url")? {
            None | Some("") => return refuse(41010, format!("articles[{i}].url missing")),
            Some(u) if !is_http_url(u) => {
                return refuse(45034, format!("articles[{i}].url must be http(s)"))
            }
            Some(_) => {}
        }
        if text("picurl")?.is_some_and(|p| !is_http_url(p)) {
            return refuse(45034, format!("articles[{i}].picurl must be http(s)"));
        }
    }
    Ok(())
}

// ---- tests of the fake itself ----

fn post_raw(url: &str, content_type: &str, body: Vec<u8>) -> Value {
    let resp = reqwest::blocking::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .expect("post to the fake");
    assert_eq!(
        resp.status(),
        200,
        "WeCom answers HTTP 200 whatever happened"
    );
    resp.json().expect("a JSON answer")
}

fn post(url: &str, body: &Value) -> Value {
    post_raw(url, "application/json", body.to_string().into_bytes())
}

fn errcode(answer: &Value) -> i64 {
    answer["errcode"].as_i64().expect("errcode")
}

fn markdown(content: &str) -> Value {
    json!({"msgtype": "markdown", "markdown": {"content": content}})
}

fn png_bytes() -> Vec<u8> {
    let img = image::RgbImage::from_pixel(3, 2, image::Rgb([200, 30, 30]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("png");
    out.into_inner()
}

fn image_msg(bytes: &[u8], md5: &str) -> Value {
    json!({"msgtype": "image", "image": {
        "base64": base64::engine::general_purpose::STANDARD.encode(bytes),
        "md5": md5,
    }})
}

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn news(n: usize) -> Value {
    let articles: Vec<Value> = (0..n)
        .map(|i| {
            json!({"title": format!("alert {i}"), "description": "disk full",
                   "url": "https://grafana.example/d/1", "picurl": "https://grafana.example/p.png"})
        })
        .collect();
    json!({"msgtype": "news", "news": {"articles": articles}})
}

#[test]
fn wecom_refuses_a_wrong_key_and_a_wrong_path() {
    let bot = FakeWecom::start();
    let wrong = bot.url().replace(&bot.key(), "not-the-key");
    assert_eq!(errcode(&post(&wrong, &markdown("hi"))), 93000);
    let no_key = bot.url().split('?').next().unwrap().to_string();
    assert_eq!(errcode(&post(&no_key, &markdown("hi"))), 93000);
    let other_path = bot
        .url()
        .replace(SEND_PATH, "/cgi-bin/webhook/upload_media");
    assert_eq!(errcode(&post(&other_path, &markdown("hi"))), 93000);
    let answer = post(&bot.url(), &markdown("hi"));
    assert_eq!(errcode(&answer), 0);
    assert_eq!(answer["errmsg"], "ok");

    let got = bot.requests();
    assert_eq!(got.len(), 4);
    assert_eq!(got[0].key.as_deref(), Some("not-the-key"));
    assert!(got[0].errmsg.starts_with("invalid webhook url"));
    assert_eq!(got[1].key, None);
    assert_eq!(got[2].path, "/cgi-bin/webhook/upload_media");
    assert_eq!(got[3].key.as_deref(), Some(bot.key().as_str()));
    assert_eq!(got[3].method, "POST");
    assert_eq!(got[3].body["markdown"]["content"], "hi");
    assert!(got[0].at <= got[3].at);
    let accepted = bot.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].path, SEND_PATH);
}

#[test]
fn wecom_wants_post_with_a_json_content_type() {
    let bot = FakeWecom::start();
    let body = markdown("hi").to_string().into_bytes();
    let answer = post_raw(&bot.url(), "text/plain", body.clone());
    assert_eq!(errcode(&answer), 40063);
    let form = post_raw(
        &bot.url(),
        "application/x-www-form-urlencoded",
        body.clone(),
    );
    assert_eq!(errcode(&form), 40063);
    let get = reqwest::blocking::get(bot.url()).expect("get");
    assert_eq!(get.status(), 200);
    assert_eq!(errcode(&get.json().expect("json")), 40063);
    let charset = post_raw(&bot.url(), "application/json; charset=utf-8", body);
    assert_eq!(errcode(&charset), 0);
    let not_json = post_raw(&bot.url(), "application/json", b"{\"msgtype\":".to_vec());
    assert_eq!(errcode(&not_json), 40058);
    assert!(not_json["errmsg"]
        .as_str()
        .unwrap()
        .contains("wrong json format"));

    let got = bot.requests();
    assert_eq!(got[0].content_type.as_deref(), Some("text/plain"));
    assert_eq!(got[2].method, "GET");
    assert_eq!(
        got[3].content_type.as_deref(),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(got[4].body, Value::Null);
    assert_eq!(got[4].raw, b"{\"msgtype\":");
    assert_eq!(bot.accepted().len(), 1);
}

#[test]
fn wecom_knows_four_message_types() {
    let bot = FakeWecom::start();
    let file = json!({"msgtype": "file", "file": {"media_id": "x"}});
    assert_eq!(errcode(&post(&bot.url(), &file)), 40008);
    assert_eq!(
        errcode(&post(&bot.url(), &json!({"text": {"content": "x"}}))),
        40008
    );
    let text = json!({"msgtype": "text", "text": {"content": "disk full",
        "mentioned_list": ["wangqing", "@all"], "mentioned_mobile_list": ["13800001111"]}});
    assert_eq!(errcode(&post(&bot.url(), &text)), 0);
    let bad_list = json!({"msgtype": "text", "text": {"content": "x", "mentioned_list": "a,b"}});
    assert_eq!(errcode(&post(&bot.url(), &bad_list)), 40058);
    let long_text = json!({"msgtype": "text", "text": {"content": "a".repeat(TEXT_MAX + 1)}});
    assert_eq!(errcode(&post(&bot.url(), &long_text)), 40058);
    let full_text = json!({"msgtype": "text", "text": {"content": "a".repeat(TEXT_MAX)}});
    assert_eq!(errcode(&post(&bot.url(), &full_text)), 0);
    assert_eq!(errcode(&post(&bot.url(), &markdown(""))), 44004);
    assert_eq!(
        errcode(&post(
            &bot.url(),
            &json!({"msgtype": "markdown", "markdown": {}})
        )),
        44004
    );
    assert_eq!(bot.accepted().len(), 2);
}

#[test]
fn wecom_counts_markdown_in_bytes() {
    let bot = FakeWecom::start();
    // 1365 three-byte characters and one ASCII one: exactly 4096 bytes.
    let exact = format!("{}a", "告".repeat(1365));
    assert_eq!(exact.len(), MARKDOWN_MAX);
    assert_eq!(errcode(&post(&bot.url(), &markdown(&exact))), 0);
    let over = format!("{exact}a");
    let answer = post(&bot.url(), &markdown(&over));
    assert_eq!(errcode(&answer), 40058);
    assert!(answer["errmsg"]
        .as_str()
        .unwrap()
        .contains("exceed max length 4096"));
    // 1366 characters: fewer than 4096 characters, but 4098 bytes.
    assert_eq!(
        errcode(&post(&bot.url(), &markdown(&"告".repeat(1366)))),
        40058
    );
}

#[test]
fn wecom_refuses_markdown_cut_inside_a_character() {
    let bot = FakeWecom::start();
    let whole = "磁盘告警".as_bytes();
    let mut raw = br#"{"msgtype":"markdown","markdown":{"content":""#.to_vec();
    raw.extend_from_slice(&whole[..whole.len() - 1]);
    raw.extend_from_slice(br#""}}"#);
    let answer = post_raw(&bot.url(), "application/json", raw);
    assert_eq!(errcode(&answer), 40058);
    assert!(answer["errmsg"]
        .as_str()
        .unwrap()
        .starts_with("markdown.content must be utf8"));
    let surrogate = br#"{"msgtype":"markdown","markdown":{"content":"x\ud83d"}}"#.to_vec();
    assert_eq!(
        errcode(&post_raw(&bot.url(), "application/json", surrogate)),
        40058
    );
    assert!(bot.accepted().is_empty());
}

#[test]
fn wecom_checks_images() {
    let bot = FakeWecom::start();
    let png = png_bytes();
    let answer = post(&bot.url(), &image_msg(&png, &"0".repeat(32)));
    assert_eq!(errcode(&answer), 301019);
    assert!(answer["errmsg"].as_str().unwrap().contains("md5 not match"));
    let upper = md5_hex(&png).to_uppercase();
    assert_eq!(errcode(&post(&bot.url(), &image_msg(&png, &upper))), 301019);

    let mut big = png.clone();
    big.resize(IMAGE_MAX + 1, 0);
    assert_eq!(
        errcode(&post(&bot.url(), &image_msg(&big, &md5_hex(&big)))),
        40009
    );
    let mut just_fits = png.clone();
    just_fits.resize(IMAGE_MAX, 0);
    assert_eq!(
        errcode(&post(
            &bot.url(),
            &image_msg(&just_fits, &md5_hex(&just_fits))
        )),
        0
    );

    let gif = b"GIF89a\x01\x00\x01\x00".to_vec();
    assert_eq!(
        errcode(&post(&bot.url(), &image_msg(&gif, &md5_hex(&gif)))),
        40004
    );
    let jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF".to_vec();
    assert_eq!(
        errcode(&post(&bot.url(), &image_msg(&jpeg, &md5_hex(&jpeg)))),
        0
    );
    let bad_b64 = json!({"msgtype": "image", "image": {"base64": "!!!", "md5": md5_hex(b"")}});
    assert_eq!(errcode(&post(&bot.url(), &bad_b64)), 40058);

    assert_eq!(
        errcode(&post(&bot.url(), &image_msg(&png, &md5_hex(&png)))),
        0
    );
    let accepted = bot.accepted();
    assert_eq!(accepted.len(), 3);
    assert_eq!(accepted[2].body["image"]["md5"], md5_hex(&png));
}

#[test]
fn wecom_checks_news() {
    let bot = FakeWecom::start();
    assert_eq!(errcode(&post(&bot.url(), &news(9))), 45008);
    assert_eq!(errcode(&post(&bot.url(), &news(0))), 45008);
    assert_eq!(errcode(&post(&bot.url(), &news(8))), 0);
    assert_eq!(errcode(&post(&bot.url(), &news(1))), 0);

    let mut long_title = news(1);
    long_title["news"]["articles"][0]["title"] = json!("t".repeat(TITLE_MAX + 1));
    assert_eq!(errcode(&post(&bot.url(), &long_title)), 40058);
    let mut long_description = news(1);
    long_description["news"]["articles"][0]["description"] = json!("d".repeat(DESCRIPTION_MAX + 1));
    assert_eq!(errcode(&post(&bot.url(), &long_description)), 40058);
    let mut no_title = news(2);
    no_title["news"]["articles"][1]
        .as_object_mut()
        .unwrap()
        .remove("title");
    assert_eq!(errcode(&post(&bot.url(), &no_title)), 41016);
    let mut no_url = news(1);
    no_url["news"]["articles"][0]
        .as_object_mut()
        .unwrap()
        .remove("url");
    assert_eq!(errcode(&post(&bot.url(), &no_url)), 41010);
    let mut ftp = news(1);
    ftp["news"]["articles"][0]["url"] = json!("ftp://grafana.example/d/1");
    assert_eq!(errcode(&post(&bot.url(), &ftp)), 45034);
    let mut bad_pic = news(1);
    bad_pic["news"]["articles"][0]["picurl"] = json!("/render/d/1.png");
    assert_eq!(errcode(&post(&bot.url(), &bad_pic)), 45034);
    let mut no_pic = news(1);
    no_pic["news"]["articles"][0]
        .as_object_mut()
        .unwrap()
        .remove("picurl");
    assert_eq!(errcode(&post(&bot.url(), &no_pic)), 0);
    assert_eq!(bot.accepted().len(), 3);
}

#[test]
fn wecom_rate_limits_per_key() {
    let per = Duration::from_millis(1500);
    let bot = FakeWecom::with_limit(3, per);
    // Refused messages do not use up the allowance.
    assert_eq!(errcode(&post(&bot.url(), &markdown(""))), 44004);
    for i in 0..3 {
        let answer = post(&bot.url(), &markdown(&format!("m{i}")));
        assert_eq!(errcode(&answer), 0, "message {i}: {answer}");
    }
    let answer = post(&bot.url(), &markdown("one too many"));
    assert_eq!(errcode(&answer), 45009);
    assert!(answer["errmsg"]
        .as_str()
        .unwrap()
        .starts_with("api freq out of limit"));
    let first = bot.accepted()[0].at;
    std::thread::sleep((first + per).saturating_duration_since(Instant::now()));
    assert_eq!(errcode(&post(&bot.url(), &markdown("later"))), 0);
    assert_eq!(bot.accepted().len(), 4);
    assert_eq!(bot.requests().len(), 6);
}

#[test]
fn wecom_fail_next_scripts_answers_after_the_key_check() {
    let bot = FakeWecom::start();
    bot.fail_next(&[(45009, "api freq out of limit"), (-1, "system busy")]);
    let wrong = bot.url().replace(&bot.key(), "nope");
    assert_eq!(errcode(&post(&wrong, &markdown("a"))), 93000);
    let answer = post(&bot.url(), &markdown("b"));
    assert_eq!(
        answer,
        json!({"errcode": 45009, "errmsg": "api freq out of limit"})
    );
    assert_eq!(errcode(&post(&bot.url(), &markdown("c"))), -1);
    assert_eq!(errcode(&post(&bot.url(), &markdown("d"))), 0);
    let got = bot.requests();
    let codes: Vec<i64> = got.iter().map(|r| r.errcode).collect();
    assert_eq!(codes, [93000, 45009, -1, 0]);
    assert_eq!(got[2].errmsg, "system busy");
    assert_eq!(bot.accepted()[0].body["markdown"]["content"], "d");
}
