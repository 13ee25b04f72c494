//! A fake PrometheusAlert on 127.0.0.1:0 (axum): its custom-template
//! endpoint `/prometheusalert?type=..&tpl=..`, and `/` for reachability
//! probes.
//!
//! It follows `controllers/prometheusalert.go` (feiyu563/PrometheusAlert):
//! every answer is HTTP 200 with beego's `ServeJSON` of one Go string, so
//! the body is a JSON string literal and success or failure is only in that
//! string: a vendor's answer (`{"errcode":0,"errmsg":"ok"}`, itself quoted)
//! or PrometheusAlert's own message. Templates are not rendered; each known
//! template lists the JSON paths it reads, and a path the body lacks fails
//! the way Go's text/template does with `missingkey=error`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, Method, Uri};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use serde_json::Value;

/// PrometheusAlert's answer when `type` is empty or `tpl` is unknown.
pub const BAD_PARAMS: &str = "自定义模板接口参数异常！";
/// PrometheusAlert's answer when the body does not parse as JSON.
pub const NOT_JSON: &str = "请求body不是合法json.";
/// `SendMessagePrometheusAlert`'s answer for a `type` it has no channel for.
pub const BAD_TYPE: &str = "参数错误";
/// What DingTalk and the WeCom bot answer when they take a message.
pub const VENDOR_OK: &str = r#"{"errcode":0,"errmsg":"ok"}"#;
/// What a Feishu bot answers when it takes a message.
pub const FEISHU_OK: &str =
    r#"{"StatusCode":0,"StatusMessage":"success","code":0,"data":{},"msg":"success"}"#;

/// One request the fake got, with the inner string it answered.
#[derive(Clone, Debug)]
pub struct PaRequest {
    pub at: Instant,
    pub method: String,
    pub query: BTreeMap<String, String>,
    pub content_type: Option<String>,
    /// The parsed body; `Null` if it was not JSON.
    pub body: Value,
    pub raw: Vec<u8>,
    /// The Go string PrometheusAlert answered (before JSON quoting).
    pub answered: String,
}

struct Inner {
    templates: Vec<(&'static str, &'static [&'static str])>,
    script: VecDeque<&'static str>,
    got: Vec<PaRequest>,
}

type Shared = Arc<Mutex<Inner>>;

/// Locks even if a test thread panicked while holding the lock.
fn lock(shared: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct FakePrometheusAlert {
    addr: std::net::SocketAddr,
    shared: Shared,
    /// Dropping it stops the server.
    _running: super::serve::Running,
}

impl FakePrometheusAlert {
    /// `templates`: the names PrometheusAlert knows (`tpl=`), each with the
    /// JSON paths its template reads, e.g.
    /// `("fanout-wx", &["alert.title", "alert.labels", "chart_url"])`.
    pub fn start(templates: &[(&'static str, &'static [&'static str])]) -> Self {
        let shared = Arc::new(Mutex::new(Inner {
            templates: templates.to_vec(),
            script: VecDeque::new(),
            got: Vec::new(),
        }));
        let listener = super::serve::bind();
        let addr = listener.local_addr().expect("local addr");
        let app = Router::new()
            .route("/", get(index))
            // beego routes it as "get,post:PrometheusAlert".
            .route("/prometheusalert", get(handle).post(handle))
            .layer(DefaultBodyLimit::max(16 * 1024 * 1024))
            .with_state(shared.clone());
        let running = super::serve::serve(listener, app);
        Self {
            addr,
            shared,
            _running: running,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/prometheusalert?` + `query`
    pub fn url(&self, query: &str) -> String {
        format!("{}/prometheusalert?{query}", self.base())
    }

    /// The next valid requests (ones that would have been forwarded) are
    /// answered with these inner strings instead of the vendor's "ok", to
    /// script what the vendor behind PrometheusAlert said.
    pub fn answer_next(&self, inner: &[&'static str]) {
        lock(&self.shared).script.extend(inner.iter().copied());
    }

    /// Every request to `/prometheusalert`, in the order they came.
    pub fn requests(&self) -> Vec<PaRequest> {
        lock(&self.shared).got.clone()
    }
}

async fn index() -> Html<&'static str> {
    Html(
        "<!DOCTYPE html><html><head><title>PrometheusAlert</title></head>\
         <body><h1>PrometheusAlert</h1><p>fake for fanout tests</p></body></html>",
    )
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    raw: Bytes,
) -> impl IntoResponse {
    // Like beego's c.Input().Get: the first value of each parameter.
    let mut query = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        query
            .entry(k.into_owned())
            .or_insert_with(|| v.into_owned());
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let parsed = serde_json::from_slice::<Value>(&raw).ok();
    let mut inner = lock(&shared);
    let answered = answer(&mut inner, &query, parsed.as_ref());
    inner.got.push(PaRequest {
        at: Instant::now(),
        method: method.to_string(),
        query,
        content_type,
        body: parsed.unwrap_or(Value::Null),
        raw: raw.to_vec(),
        answered: answered.clone(),
    });
    drop(inner);
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        go_json_string(&answered),
    )
}

/// The inner string PrometheusAlert would answer, in the order its
/// controller decides: parameters, body, template, channel.
fn answer(inner: &mut Inner, query: &BTreeMap<String, String>, body: Option<&Value>) -> String {
    let param = |name: &str| query.get(name).map(String::as_str).unwrap_or("");
    let kind = param("type");
    let Some(paths) = inner
        .templates
        .iter()
        .find(|(name, _)| *name == param("tpl"))
        .map(|(_, paths)| *paths)
    else {
        return BAD_PARAMS.to_string();
    };
    if kind.is_empty() {
        return BAD_PARAMS.to_string();
    }
    let Some(body) = body else {
        return NOT_JSON.to_string();
    };
    for (line, path) in paths.iter().enumerate() {
        if let Err(e) = resolve(body, path, line + 1) {
            return e;
        }
    }
    // The channel's target URL(s), comma-separated, and its "ok" answer.
    let (urls, ok) = match kind {
        "wx" => (param("wxurl"), VENDOR_OK),
        "dd" => (param("ddurl"), VENDOR_OK),
        "fs" => (param("fsurl"), FEISHU_OK),
        "webhook" => (param("webhookurl"), "ok"),
        _ => return BAD_TYPE.to_string(),
    };
    let mut answered = String::new();
    for url in urls.split(',') {
        if let Err(e) = go_post_error(url) {
            return e;
        }
        answered.push_str(ok);
    }
    match inner.script.pop_front() {
        Some(scripted) => scripted.to_string(),
        None => answered,
    }
}

/// What Go's http.Client.Post says about a URL it cannot send to; for any
/// http(s) URL the fake pretends the vendor answered.
fn go_post_error(url: &str) -> Result<(), String> {
    let scheme = url
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase())
        .unwrap_or_default();
    if scheme == "http" || scheme == "https" {
        Ok(())
    } else {
        Err(format!(
            "Post \"{url}\": unsupported protocol scheme \"{scheme}\""
        ))
    }
}

/// The Go type name text/template reports for a decoded JSON value.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "interface {}",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Walks `{{.a.b.c}}` over the body as text/template with
/// `missingkey=error` would, with the template being one action per line
/// (so `line` is the action's line and the field starts at column 2).
fn resolve(body: &Value, path: &str, line: usize) -> Result<(), String> {
    let action = format!(".{path}");
    let fail = |why: String| format!("template: :{line}:2: executing \"\" at <{action}>: {why}");
    let mut here = body;
    for (depth, field) in path.split('.').enumerate() {
        here = match here {
            Value::Object(map) => match map.get(field) {
                Some(next) => next,
                None => return Err(fail(format!("map has no entry for key \"{field}\""))),
            },
            Value::Null if depth == 0 => {
                return Err(fail(format!("nil data; no entry for key \"{field}\"")))
            }
            Value::Null => {
                return Err(fail(format!(
                    "nil pointer evaluating interface {{}}.{field}"
                )))
            }
            other => {
                return Err(fail(format!(
                    "can't evaluate field {field} in type {}",
                    go_type(other)
                )))
            }
        };
    }
    Ok(())
}

/// A Go string as encoding/json writes it: quoted, with `<`, `>`, `&`,
/// U+2028 and U+2029 escaped for HTML safety as Go does by default.
pub fn go_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---- tests of the fake itself ----

const TEMPLATES: &[(&str, &[&str])] = &[
    ("fanout-wx", &["alert.title", "alert.labels", "chart_url"]),
    ("fanout-dd", &["alert.title"]),
];

fn alert_body() -> Value {
    serde_json::json!({
        "alert": {"title": "Disk <90%> & rising", "labels": {"host": "db1"}},
        "chart_url": "https://s3.example/chart.png",
    })
}

/// Posts `body` and returns (the raw answer body, the inner string).
fn post(url: &str, body: &[u8]) -> (String, String) {
    let resp = reqwest::blocking::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .expect("post to the fake");
    assert_eq!(resp.status(), 200, "PrometheusAlert answers 200 always");
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert_eq!(ct, "application/json; charset=utf-8");
    let text = resp.text().expect("body");
    let inner: String = serde_json::from_str(&text).expect("a JSON string literal");
    (text, inner)
}

fn post_json(url: &str, body: &Value) -> String {
    post(url, body.to_string().as_bytes()).1
}

#[test]
fn pa_answers_its_parameter_error() {
    let pa = FakePrometheusAlert::start(TEMPLATES);
    let good = alert_body();
    let wx = "wxurl=http://127.0.0.1:9/send";
    assert_eq!(
        post_json(&pa.url(&format!("type=wx&tpl=nope&{wx}")), &good),
        BAD_PARAMS
    );
    assert_eq!(
        post_json(&pa.url(&format!("tpl=fanout-wx&{wx}")), &good),
        BAD_PARAMS
    );
    assert_eq!(
        post_json(&pa.url(&format!("type=&tpl=fanout-wx&{wx}")), &good),
        BAD_PARAMS
    );
    assert_eq!(
        post(&pa.url(&format!("type=wx&tpl=fanout-wx&{wx}")), b"not json").1,
        NOT_JSON
    );
    assert_eq!(
        post_json(&pa.url(&format!("type=sms&tpl=fanout-wx&{wx}")), &good),
        BAD_TYPE
    );
    let got = pa.requests();
    assert_eq!(got.len(), 5);
    assert_eq!(got[0].query.get("tpl").map(String::as_str), Some("nope"));
    assert_eq!(got[1].query.get("type"), None);
    assert_eq!(got[3].body, Value::Null);
    assert_eq!(got[3].raw, b"not json");
    assert!(got.iter().all(|r| r.method == "POST"));
}

#[test]
fn pa_fails_on_a_path_the_body_lacks() {
    let pa = FakePrometheusAlert::start(TEMPLATES);
    let url = pa.url("type=wx&tpl=fanout-wx&wxurl=http://127.0.0.1:9/send");
    let mut body = alert_body();
    body["alert"].as_object_mut().unwrap().remove("labels");
    assert_eq!(
        post_json(&url, &body),
        "template: :2:2: executing \"\" at <.alert.labels>: map has no entry for key \"labels\""
    );
    body["alert"] = Value::Null;
    assert_eq!(
        post_json(&url, &body),
        "template: :1:2: executing \"\" at <.alert.title>: nil pointer evaluating interface {}.title"
    );
    body["alert"] = serde_json::json!("a string");
    assert_eq!(
        post_json(&url, &body),
        "template: :1:2: executing \"\" at <.alert.title>: can't evaluate field title in type string"
    );
    let mut no_chart = alert_body();
    no_chart.as_object_mut().unwrap().remove("chart_url");
    assert!(post_json(&url, &no_chart).ends_with("map has no entry for key \"chart_url\""));
}

#[test]
fn pa_forwards_and_answers_a_quoted_vendor_answer() {
    let pa = FakePrometheusAlert::start(TEMPLATES);
    let url = pa.url("type=wx&tpl=fanout-wx&wxurl=http://127.0.0.1:9/send&at=ops");
    let (raw, inner) = post(&url, alert_body().to_string().as_bytes());
    assert_eq!(raw, r#""{\"errcode\":0,\"errmsg\":\"ok\"}""#);
    assert_eq!(inner, VENDOR_OK);

    let two = pa.url("type=dd&tpl=fanout-dd&ddurl=https://a.example/x,https://b.example/y");
    assert_eq!(
        post_json(&two, &alert_body()),
        format!("{VENDOR_OK}{VENDOR_OK}")
    );
    let missing = pa.url("type=wx&tpl=fanout-wx");
    assert_eq!(
        post_json(&missing, &alert_body()),
        r#"Post "": unsupported protocol scheme """#
    );

    let got = pa.requests();
    assert_eq!(got[0].query.get("at").map(String::as_str), Some("ops"));
    assert_eq!(got[0].content_type.as_deref(), Some("application/json"));
    assert_eq!(got[0].body["alert"]["labels"]["host"], "db1");
    assert_eq!(got[0].answered, VENDOR_OK);
    assert!(got[0].at <= got[2].at);

    let page = reqwest::blocking::get(pa.base()).expect("get /");
    assert_eq!(page.status(), 200);
    assert!(page.text().expect("html").contains("PrometheusAlert"));
}

#[test]
fn pa_answer_next_scripts_the_vendor() {
    let pa = FakePrometheusAlert::start(TEMPLATES);
    pa.answer_next(&[
        r#"{"errcode":45009,"errmsg":"api freq out of limit"}"#,
        r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#,
    ]);
    let url = pa.url("type=wx&tpl=fanout-wx&wxurl=http://127.0.0.1:9/send");
    // An invalid request does not use up the script.
    assert_eq!(post(&url, b"{").1, NOT_JSON);
    let (raw, inner) = post(&url, alert_body().to_string().as_bytes());
    assert_eq!(
        raw,
        r#""{\"errcode\":45009,\"errmsg\":\"api freq out of limit\"}""#
    );
    assert_eq!(
        inner,
        r#"{"errcode":45009,"errmsg":"api freq out of limit"}"#
    );
    assert_eq!(
        post_json(&url, &alert_body()),
        r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#
    );
    assert_eq!(post_json(&url, &alert_body()), VENDOR_OK);
    let answered: Vec<String> = pa.requests().into_iter().map(|r| r.answered).collect();
    assert_eq!(answered.len(), 4);
    assert_eq!(answered[0], NOT_JSON);
}

#[test]
fn pa_quotes_like_go() {
    assert_eq!(
        go_json_string("a<b>&\"c\"\n"),
        r#""a\u003cb\u003e\u0026\"c\"\n""#
    );
    assert_eq!(go_json_string("告警\u{2028}"), "\"告警\\u2028\"");
    assert_eq!(go_json_string("\u{1}"), r#""\u0001""#);
}
