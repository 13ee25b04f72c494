//! A fake Slack Web API on 127.0.0.1 (axum) that checks every request the
//! way Slack documents it, so that a test of our Slack channel fails when we
//! send something Slack would refuse. It serves `chat.postMessage`, the
//! external upload flow (`files.getUploadURLExternal`, a POST of the bytes to
//! the upload URL, `files.completeUploadExternal`), `auth.test` and
//! `conversations.info`, and refuses the retired `files.upload`.
//!
//! Sources: the method pages under docs.slack.dev/reference/methods
//! (arguments, content types, error names), the Block Kit block reference
//! (header and section limits, 50 blocks a message) and
//! docs.slack.dev/apis/web-api/rate-limits (HTTP 429 with `Retry-After`).
//! Where the fake is stricter than Slack, a comment says so.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

mod blocks;
mod self_tests;
mod upload;

use blocks::*;
use upload::*;

/// A conversation the fake knows. `member: false` is one the bot was never
/// invited to: Slack answers `not_in_channel` there.
pub struct FakeChannel {
    pub id: &'static str,
    pub name: &'static str,
    pub member: bool,
}

/// A scripted failure for [`FakeSlack::fail_next`].
#[derive(Clone, Debug)]
pub struct SlackAnswer {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub error: &'static str,
}

/// One request the fake got, refused or not.
#[derive(Clone, Debug)]
pub struct SlackCall {
    /// The API method, "upload" for a POST to an upload URL, or the unknown
    /// name that was asked for.
    pub method: String,
    pub at: Instant,
    pub headers: HeaderMap,
    /// The JSON body, or the form (and, for `auth.test` and
    /// `conversations.info`, query) fields as strings; a body that does not
    /// parse is kept as one string. For "upload": `{"length": <bytes>}`.
    pub params: Value,
    pub ok: bool,
    /// Slack's error string, or the fake's own reason for an upload refusal.
    pub error: Option<String>,
    pub status: u16,
}

/// A message `chat.postMessage` accepted.
#[derive(Clone, Debug)]
pub struct PostedMessage {
    pub ts: String,
    pub thread_ts: Option<String>,
    pub text: Option<String>,
    /// `Null` when the call had none.
    pub blocks: Value,
    /// `Null` when the call had none.
    pub attachments: Value,
    pub reply_broadcast: bool,
    pub at: Instant,
}

/// A file `files.completeUploadExternal` shared.
#[derive(Clone, Debug)]
pub struct SharedFile {
    pub id: String,
    /// The title the completing call gave, if any.
    pub title: Option<String>,
    pub filename: String,
    pub alt_txt: Option<String>,
    pub bytes: Vec<u8>,
    /// The channel id; "" for a file completed without `channel_id`
    /// (Slack keeps it private).
    pub channel: String,
    pub thread_ts: Option<String>,
    pub initial_comment: Option<String>,
    pub at: Instant,
}

pub struct FakeSlack {
    /// `http://127.0.0.1:PORT`.
    base: String,
    shared: Shared,
    /// Dropping it stops the server.
    _running: super::serve::Running,
}

type Shared = Arc<Mutex<Inner>>;

impl FakeSlack {
    /// A fake that accepts `token` (as `Authorization: Bearer`) and knows
    /// `channels`.
    pub fn start(token: &str, channels: &[FakeChannel]) -> Self {
        let listener = super::serve::bind();
        let base = format!("http://{}", listener.local_addr().expect("local address"));
        let shared: Shared = Arc::new(Mutex::new(Inner::new(token, &base, channels)));
        let app = Router::new()
            .route("/api/{method}", any(api))
            .route("/upload/v1/{key}", any(upload))
            // Charts can be larger than axum's 2 MB default.
            .layer(DefaultBodyLimit::max(64 << 20))
            .with_state(shared.clone());
        let running = super::serve::serve(listener, app);
        Self {
            base,
            shared,
            _running: running,
        }
    }

    /// Enforce at most `count` messages per channel in any `per` window
    /// (postMessage and each completeUploadExternal share count as
    /// messages); beyond it answer HTTP 429, `Retry-After: 1`,
    /// {"ok":false,"error":"ratelimited"}. Default: not enforced.
    ///
    /// Slack allows about one message a second per channel with short
    /// bursts; a hard limit lets tests see that we pace ourselves and honour
    /// `Retry-After`.
    pub fn with_channel_limit(self, count: u32, per: Duration) -> Self {
        lock(&self.shared).limit = Some((count, per));
        self
    }

    /// `http://127.0.0.1:PORT/api/`, the base our client appends method
    /// names to.
    pub fn api_url(&self) -> String {
        format!("{}/api/", self.base)
    }

    /// The next calls of `method` (an API method or "upload") get these
    /// answers (HTTP status, `Retry-After`, {"ok":false,"error":..}), one
    /// each, before any other check but auth.
    pub fn fail_next(&self, method: &str, answers: &[SlackAnswer]) {
        lock(&self.shared)
            .scripts
            .entry(method.to_string())
            .or_default()
            .extend(answers.iter().cloned());
    }

    /// Every request, in arrival order.
    pub fn calls(&self) -> Vec<SlackCall> {
        lock(&self.shared).calls.clone()
    }

    pub fn calls_of(&self, method: &str) -> Vec<SlackCall> {
        lock(&self.shared)
            .calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// The messages `chat.postMessage` accepted in `channel` (id or name),
    /// in order.
    pub fn messages(&self, channel: &str) -> Vec<PostedMessage> {
        let inner = lock(&self.shared);
        let id = inner.resolve(channel);
        inner.messages.get(&id).cloned().unwrap_or_default()
    }

    /// The files `files.completeUploadExternal` shared in `channel` (id or
    /// name; "" for private files), in order.
    pub fn files(&self, channel: &str) -> Vec<SharedFile> {
        let inner = lock(&self.shared);
        let id = inner.resolve(channel);
        inner.files.get(&id).cloned().unwrap_or_default()
    }

    /// The largest number of messages+shares any window of `per` held in
    /// `channel` (for rate assertions). A completeUploadExternal call counts
    /// once, however many files it shares (Slack posts one message).
    pub fn max_in_window(&self, channel: &str, per: Duration) -> usize {
        let inner = lock(&self.shared);
        let mut times = inner
            .landed
            .get(&inner.resolve(channel))
            .cloned()
            .unwrap_or_default();
        times.sort();
        let (mut best, mut first) = (0, 0);
        for (last, at) in times.iter().enumerate() {
            while first <= last && at.duration_since(times[first]) >= per {
                first += 1;
            }
            best = best.max(last + 1 - first);
        }
        best
    }
}

/// A handler that panicked must not make every later call panic too.
fn lock(shared: &Shared) -> MutexGuard<'_, Inner> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The Web API methods the fake knows; anything else is `unknown_method`.
const METHODS: &[&str] = &[
    "chat.postMessage",
    "files.getUploadURLExternal",
    "files.completeUploadExternal",
    "auth.test",
    "conversations.info",
    "files.upload",
];

struct Channel {
    id: String,
    name: String,
    member: bool,
}

/// One `files.getUploadURLExternal` ticket.
struct Ticket {
    filename: String,
    alt_txt: Option<String>,
    length: u64,
    /// The bytes, once a POST to the upload URL brought the declared length.
    bytes: Option<Vec<u8>>,
    completed: bool,
}

struct Inner {
    token: String,
    base: String,
    channels: Vec<Channel>,
    limit: Option<(u32, Duration)>,
    scripts: HashMap<String, VecDeque<SlackAnswer>>,
    calls: Vec<SlackCall>,
    /// By channel id.
    messages: HashMap<String, Vec<PostedMessage>>,
    /// By channel id, "" for private files.
    files: HashMap<String, Vec<SharedFile>>,
    /// When each message or share landed, by channel id: the rate limit and
    /// `max_in_window` count these.
    landed: HashMap<String, Vec<Instant>>,
    /// By file id.
    tickets: HashMap<String, Ticket>,
    /// Upload URL key → file id.
    urls: HashMap<String, String>,
    /// The last ts handed out, in microseconds.
    last_ts: u128,
}

/// Why a request failed: the HTTP status, a `Retry-After` to send, the error
/// string, and a line saying what was wrong (Slack sends such lines in
/// `response_metadata.messages`; they help whoever reads a failed test).
struct Refusal {
    status: u16,
    retry_after: Option<u64>,
    error: String,
    detail: Option<String>,
}

impl Refusal {
    fn because(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
}

/// Slack's usual refusal: HTTP 200 with {"ok":false,"error":..}.
fn refuse(error: &str) -> Refusal {
    Refusal {
        status: 200,
        retry_after: None,
        error: error.to_string(),
        detail: None,
    }
}

fn invalid_arguments(detail: impl Into<String>) -> Refusal {
    refuse("invalid_arguments").because(detail)
}

type Outcome = Result<Value, Refusal>;
type Fields = Map<String, Value>;

async fn api(
    State(shared): State<Shared>,
    method: Method,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = lock(&shared);
    // Taken under the lock, so that call order, ts order and the rate
    // limit's clock agree.
    let now = Instant::now();
    let reads_query = matches!(name.as_str(), "auth.test" | "conversations.info");
    let (params, fields) = parse_params(&headers, uri.query(), reads_query, &body);
    let outcome = inner.answer(now, &method, &name, reads_query, &headers, fields);
    inner.record(&name, now, headers, params, outcome.as_ref().err());
    json_response(outcome)
}

async fn upload(
    State(shared): State<Shared>,
    method: Method,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = lock(&shared);
    let now = Instant::now();
    let file = file_bytes(&headers, &body);
    let received = file.as_ref().map_or(body.len(), Vec::len);
    let params = json!({ "length": received });
    if let Some(scripted) = inner.scripted("upload") {
        inner.record("upload", now, headers, params, Some(&scripted));
        return json_response(Err(scripted));
    }
    let result = inner.take_upload(&method, &key, file);
    inner.record("upload", now, headers, params, result.as_ref().err());
    match result {
        Ok(length) => (StatusCode::OK, format!("OK - {length}")).into_response(),
        Err(refusal) => (status_code(refusal.status), refusal.error).into_response(),
    }
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn json_response(outcome: Outcome) -> Response {
    let refusal = match outcome {
        Ok(body) => return Json(body).into_response(),
        Err(refusal) => refusal,
    };
    let mut body = json!({ "ok": false, "error": refusal.error });
    if let Some(detail) = &refusal.detail {
        body["response_metadata"] = json!({ "messages": [format!("[ERROR] {detail}")] });
    }
    let mut response = (status_code(refusal.status), Json(body)).into_response();
    if let Some(seconds) = refusal.retry_after {
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from(seconds));
    }
    response
}

/// The arguments of an API call, and what to record of them (kept even when
/// the body does not parse). Slack takes JSON or a form for every method
/// here; `auth.test` and `conversations.info` may also come as a GET or an
/// empty POST with a query string.
fn parse_params(
    headers: &HeaderMap,
    query: Option<&str>,
    reads_query: bool,
    body: &[u8],
) -> (Value, Result<Fields, Refusal>) {
    let mut fields = Fields::new();
    if reads_query {
        fields.extend(form_fields(query.unwrap_or("").as_bytes()));
        if body.is_empty() {
            return (Value::Object(fields.clone()), Ok(fields));
        }
    }
    let raw = || Value::String(String::from_utf8_lossy(body).into_owned());
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (media, charset) = media_type(content_type);
    // Slack also takes iso-8859-1; we only ever send UTF-8, so anything
    // else is a bug of ours.
    if charset.is_some_and(|c| c != "utf-8" && c != "utf8") {
        let why = format!("charset of {content_type:?} is not utf-8");
        return (raw(), Err(refuse("invalid_charset").because(why)));
    }
    match media.as_str() {
        "application/json" => match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => {
                fields.extend(map);
                (Value::Object(fields.clone()), Ok(fields))
            }
            Ok(_) => (
                raw(),
                Err(refuse("invalid_json").because("the body is not a JSON object")),
            ),
            Err(e) => (raw(), Err(refuse("invalid_json").because(e.to_string()))),
        },
        "application/x-www-form-urlencoded" => {
            fields.extend(form_fields(body));
            (Value::Object(fields.clone()), Ok(fields))
        }
        _ => {
            let why = format!(
                "content type {content_type:?} is neither application/json \
                 nor application/x-www-form-urlencoded"
            );
            (raw(), Err(refuse("invalid_form_data").because(why)))
        }
    }
}

/// The media type of a Content-Type, lower case, and its charset if given.
fn media_type(content_type: &str) -> (String, Option<String>) {
    let mut parts = content_type.split(';');
    let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let charset = parts
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("charset"))
        .map(|(_, v)| v.trim().trim_matches('"').to_ascii_lowercase());
    (media, charset)
}

fn form_fields(bytes: &[u8]) -> impl Iterator<Item = (String, Value)> + '_ {
    url::form_urlencoded::parse(bytes).map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
}

/// A string argument. Absent, null and "" all count as missing, as with
/// Slack's form fields.
fn text_arg(p: &Fields, key: &str) -> Result<Option<String>, Refusal> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(invalid_arguments(format!(
            "`{key}` must be a string, got {other}"
        ))),
    }
}

/// A JSON argument: inline in a JSON body, or JSON-encoded in a string (as a
/// form must send it; Slack takes that in a JSON body too).
fn json_arg(p: &Fields, key: &str, error: &str) -> Result<Option<Value>, Refusal> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => serde_json::from_str(s)
            .map(Some)
            .map_err(|e| refuse(error).because(format!("`{key}` is not valid JSON: {e}"))),
        Some(v) => Ok(Some(v.clone())),
    }
}

fn bool_arg(p: &Fields, key: &str) -> Result<Option<bool>, Refusal> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if matches!(s.as_str(), "true" | "1") => Ok(Some(true)),
        Some(Value::String(s)) if matches!(s.as_str(), "false" | "0" | "") => Ok(Some(false)),
        Some(other) => Err(invalid_arguments(format!(
            "`{key}` must be a boolean, got {other}"
        ))),
    }
}

/// A whole number, as a JSON number or a decimal string (a form field).
fn count_arg(p: &Fields, key: &str) -> Result<Option<u64>, Refusal> {
    let value = match p.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(value) => value,
    };
    let count = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    count
        .map(Some)
        .ok_or_else(|| invalid_arguments(format!("`{key}` must be a whole number, got {value}")))
}

impl Inner {
    fn new(token: &str, base: &str, channels: &[FakeChannel]) -> Self {
        Self {
            token: token.to_string(),
            base: base.to_string(),
            channels: channels
                .iter()
                .map(|c| Channel {
                    id: c.id.to_string(),
                    name: c.name.to_string(),
                    member: c.member,
                })
                .collect(),
            limit: None,
            scripts: HashMap::new(),
            calls: Vec::new(),
            messages: HashMap::new(),
            files: HashMap::new(),
            landed: HashMap::new(),
            tickets: HashMap::new(),
            urls: HashMap::new(),
            last_ts: 0,
        }
    }

    fn record(
        &mut self,
        method: &str,
        at: Instant,
        headers: HeaderMap,
        params: Value,
        refusal: Option<&Refusal>,
    ) {
        self.calls.push(SlackCall {
            method: method.to_string(),
            at,
            headers,
            params,
            ok: refusal.is_none(),
            error: refusal.map(|r| r.error.clone()),
            status: refusal.map_or(200, |r| r.status),
        });
    }

    fn scripted(&mut self, method: &str) -> Option<Refusal> {
        let answer = self.scripts.get_mut(method)?.pop_front()?;
        Some(Refusal {
            status: answer.status,
            retry_after: answer.retry_after,
            error: answer.error.to_string(),
            detail: None,
        })
    }

    /// The checks every API call goes through, in order, then the method.
    fn answer(
        &mut self,
        now: Instant,
        http: &Method,
        name: &str,
        reads_query: bool,
        headers: &HeaderMap,
        fields: Result<Fields, Refusal>,
    ) -> Outcome {
        if !METHODS.contains(&name) {
            return Err(refuse("unknown_method").status(404));
        }
        self.check_auth(headers)?;
        if let Some(scripted) = self.scripted(name) {
            return Err(scripted);
        }
        if name == "files.upload" {
            return Err(refuse("method_deprecated").because(
                "files.upload was retired; use files.getUploadURLExternal \
                 and files.completeUploadExternal",
            ));
        }
        let get_allowed = reads_query && http == Method::GET;
        if http != Method::POST && !get_allowed {
            // The fake's own reason: our client only ever POSTs these.
            return Err(refuse(&format!("{http} not allowed, use POST")).status(405));
        }
        let p = fields?;
        match name {
            "chat.postMessage" => self.post_message(now, &p),
            "files.getUploadURLExternal" => self.upload_url(&p),
            "files.completeUploadExternal" => self.complete_upload(now, &p),
            "conversations.info" => self.conversation_info(&p),
            "auth.test" => Ok(json!({
                "ok": true,
                "url": "https://fake.slack.com/",
                "team": "Fake",
                "user": "fanout",
                "team_id": "T0FAKE",
                "user_id": "U0FAKE",
                "bot_id": "B0FAKE",
            })),
            _ => Err(refuse("unknown_method").status(404)),
        }
    }

    /// Only the header counts: Slack also takes a `token` argument, but our
    /// client always sends the header, and a token in a body or URL ends up
    /// in logs.
    fn check_auth(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let Some(value) = headers.get(AUTHORIZATION) else {
            return Err(refuse("not_authed"));
        };
        let token = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer "));
        if token == Some(self.token.as_str()) {
            Ok(())
        } else {
            Err(refuse("invalid_auth"))
        }
    }

    fn find(&self, key: &str, by_name: bool) -> Option<&Channel> {
        let name = key.trim_start_matches('#');
        self.channels
            .iter()
            .find(|c| c.id == key || (by_name && c.name == name))
    }

    /// A channel id for the accessors, which take names too.
    fn resolve(&self, channel: &str) -> String {
        self.find(channel, true)
            .map_or_else(|| channel.to_string(), |c| c.id.clone())
    }

    /// The id of a channel the bot may post in. Only `chat.postMessage` takes
    /// a name (Slack documents that); the upload methods want an id.
    fn member_channel(&self, key: Option<&str>, by_name: bool) -> Result<String, Refusal> {
        let key = key.ok_or_else(|| refuse("channel_not_found").because("no channel given"))?;
        let channel = self
            .find(key, by_name)
            .ok_or_else(|| refuse("channel_not_found").because(format!("no channel {key:?}")))?;
        if !channel.member {
            return Err(refuse("not_in_channel"));
        }
        Ok(channel.id.clone())
    }

    /// `thread_ts` must be the ts of an earlier top-level message in the
    /// channel. Stricter than Slack, which answers `thread_not_found` only
    /// for some other values (it may accept a reply's ts, or start an orphan
    /// thread); but replying to anything else is a bug of ours.
    fn check_thread(&self, channel: &str, ts: &str) -> Result<(), Refusal> {
        let parent = self
            .messages
            .get(channel)
            .is_some_and(|messages| messages.iter().any(|m| m.ts == ts && m.thread_ts.is_none()));
        if parent {
            Ok(())
        } else {
            Err(refuse("thread_not_found")
                .because(format!("no top-level message {ts} in {channel}")))
        }
    }

    fn admit(&self, channel: &str, now: Instant) -> Result<(), Refusal> {
        let Some((count, per)) = self.limit else {
            return Ok(());
        };
        let recent = self.landed.get(channel).map_or(0, |times| {
            times
                .iter()
                .filter(|&&t| now.duration_since(t) < per)
                .count()
        });
        if recent < count as usize {
            return Ok(());
        }
        Err(Refusal {
            status: 429,
            retry_after: Some(1),
            error: "ratelimited".to_string(),
            detail: None,
        })
    }

    /// Slack's ts: "<unix seconds>.<6 digits>", unique and increasing.
    fn next_ts(&mut self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros();
        self.last_ts = now.max(self.last_ts + 1);
        format!(
            "{}.{:06}",
            self.last_ts / 1_000_000,
            self.last_ts % 1_000_000
        )
    }

    fn post_message(&mut self, now: Instant, p: &Fields) -> Outcome {
        let channel = self.member_channel(text_arg(p, "channel")?.as_deref(), true)?;
        let text = text_arg(p, "text")?;
        let blocks = json_arg(p, "blocks", "invalid_blocks")?;
        let attachments = json_arg(p, "attachments", "invalid_attachments")?;
        if let Some(blocks) = &blocks {
            check_blocks(blocks, "/blocks").map_err(|why| refuse("invalid_blocks").because(why))?;
        }
        if let Some(attachments) = &attachments {
            check_attachments(attachments)?;
        }
        let some = |v: &Option<Value>| {
            v.as_ref()
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
        };
        if text.is_none() && !some(&blocks) && !some(&attachments) {
            return Err(refuse("no_text"));
        }
        let length = text.as_deref().map_or(0, |t| t.chars().count());
        if length > MAX_TEXT {
            let why = format!("text has {length} characters, at most {MAX_TEXT}");
            return Err(refuse("msg_too_long").because(why));
        }
        let thread_ts = text_arg(p, "thread_ts")?;
        if let Some(ts) = &thread_ts {
            self.check_thread(&channel, ts)?;
        }
        let reply_broadcast = bool_arg(p, "reply_broadcast")?.unwrap_or(false);
        self.admit(&channel, now)?;

        let ts = self.next_ts();
        let mut message = json!({
            "type": "message",
            "text": text.clone().unwrap_or_default(),
            "ts": ts,
        });
        if let Some(parent) = &thread_ts {
            message["thread_ts"] = json!(parent);
        }
        self.landed.entry(channel.clone()).or_default().push(now);
        self.messages
            .entry(channel.clone())
            .or_default()
            .push(PostedMessage {
                ts: ts.clone(),
                thread_ts,
                text,
                blocks: blocks.unwrap_or(Value::Null),
                attachments: attachments.unwrap_or(Value::Null),
                reply_broadcast,
                at: now,
            });
        Ok(json!({ "ok": true, "channel": channel, "ts": ts, "message": message }))
    }

    /// `files.getUploadURLExternal`. Slack lists `missing_argument` for a
    /// zero `length` and answers `invalid_arguments` for arguments that are
    /// missing or of the wrong type.
    fn upload_url(&mut self, p: &Fields) -> Outcome {
        let filename = text_arg(p, "filename")?
            .ok_or_else(|| invalid_arguments("missing required field: filename"))?;
        let length = count_arg(p, "length")?
            .ok_or_else(|| invalid_arguments("missing required field: length"))?;
        if length == 0 {
            return Err(refuse("missing_argument").because("`length` must be positive"));
        }
        let alt_txt = text_arg(p, "alt_txt")?;
        if alt_txt
            .as_deref()
            .is_some_and(|a| a.chars().count() > MAX_ALT_TXT)
        {
            return Err(refuse("alt_txt_too_large"));
        }
        let key = loop {
            let key = random(ALNUM, 32);
            if !self.urls.contains_key(&key) {
                break key;
            }
        };
        let file_id = loop {
            let id = format!("F{}", random(UPPER_ALNUM, 10));
            if !self.tickets.contains_key(&id) {
                break id;
            }
        };
        self.urls.insert(key.clone(), file_id.clone());
        self.tickets.insert(
            file_id.clone(),
            Ticket {
                filename,
                alt_txt,
                length,
                bytes: None,
                completed: false,
            },
        );
        Ok(json!({
            "ok": true,
            "upload_url": format!("{}/upload/v1/{key}", self.base),
            "file_id": file_id,
        }))
    }

    /// A POST to an upload URL: no Slack auth (the URL is the secret), the
    /// raw bytes or a multipart file part, exactly the declared length,
    /// once.
    fn take_upload(
        &mut self,
        http: &Method,
        key: &str,
        file: Result<Vec<u8>, String>,
    ) -> Result<usize, Refusal> {
        if http != Method::POST {
            return Err(refuse(&format!("{http} not allowed, use POST")).status(405));
        }
        let Some(ticket) = self.urls.get(key).and_then(|id| self.tickets.get_mut(id)) else {
            return Err(refuse("unknown upload url").status(404));
        };
        if ticket.bytes.is_some() {
            return Err(refuse("upload url already used").status(410));
        }
        let bytes = file.map_err(|why| refuse(&why).status(400))?;
        if bytes.len() as u64 != ticket.length {
            let why = format!(
                "length mismatch: declared {}, got {}",
                ticket.length,
                bytes.len()
            );
            return Err(refuse(&why).status(400));
        }
        let length = bytes.len();
        ticket.bytes = Some(bytes);
        Ok(length)
    }

    /// `files.completeUploadExternal`. Slack's docs name `file_not_found`
    /// ("Could not find the file from the upload ticket") for an id it did
    /// not issue or that got no bytes; they name nothing for an id completed
    /// twice ("This method can only be called once"), so that is
    /// `invalid_arguments`.
    fn complete_upload(&mut self, now: Instant, p: &Fields) -> Outcome {
        let files = json_arg(p, "files", "invalid_arguments")?
            .ok_or_else(|| invalid_arguments("missing required field: files"))?;
        let list = files
            .as_array()
            .filter(|l| (1..=MAX_FILES).contains(&l.len()))
            .ok_or_else(|| invalid_arguments("`files` must be an array of 1 to 10 objects"))?;
        let mut wanted: Vec<(String, Option<String>)> = Vec::new();
        for (i, file) in list.iter().enumerate() {
            let id = file
                .get("id")
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty())
                .ok_or_else(|| invalid_arguments(format!("`files[{i}]` has no string `id`")))?;
            let title = match file.get("title") {
                None | Some(Value::Null) => None,
                Some(Value::String(t)) => Some(t.clone()),
                Some(_) => {
                    return Err(invalid_arguments(format!(
                        "`files[{i}].title` must be a string"
                    )))
                }
            };
            if wanted.iter().any(|(w, _)| w == id) {
                return Err(invalid_arguments(format!("{id} is listed twice")));
            }
            wanted.push((id.to_string(), title));
        }
        // Slack also takes a comma-separated `channels`; our client shares
        // into one channel with `channel_id`, and the fake keeps it that way
        // rather than ignore an argument.
        if p.contains_key("channels") {
            return Err(invalid_arguments(
                "the fake takes `channel_id`, not `channels`",
            ));
        }
        let channel = match text_arg(p, "channel_id")? {
            Some(id) => Some(self.member_channel(Some(&id), false)?),
            None => None,
        };
        let thread_ts = text_arg(p, "thread_ts")?;
        if let Some(ts) = &thread_ts {
            let channel = channel
                .as_deref()
                .ok_or_else(|| invalid_arguments("`thread_ts` needs `channel_id`"))?;
            self.check_thread(channel, ts)?;
        }
        let initial_comment = text_arg(p, "initial_comment")?;
        for (id, _) in &wanted {
            match self.tickets.get(id) {
                None => {
                    let why = format!("{id} did not come from files.getUploadURLExternal");
                    return Err(refuse("file_not_found").because(why));
                }
                Some(t) if t.bytes.is_none() => {
                    let why = format!("no bytes were uploaded for {id}");
                    return Err(refuse("file_not_found").because(why));
                }
                Some(t) if t.completed => {
                    return Err(invalid_arguments(format!("{id} was completed already")));
                }
                Some(_) => {}
            }
        }
        if let Some(channel) = &channel {
            self.admit(channel, now)?;
            self.landed.entry(channel.clone()).or_default().push(now);
        }

        let mut answer = Vec::new();
        let mut shared = Vec::new();
        for (id, title) in wanted {
            let Some(ticket) = self.tickets.get_mut(&id) else {
                continue;
            };
            ticket.completed = true;
            answer.push(json!({
                "id": id,
                "title": title.clone().unwrap_or_else(|| ticket.filename.clone()),
            }));
            shared.push(SharedFile {
                id,
                title,
                filename: ticket.filename.clone(),
                alt_txt: ticket.alt_txt.clone(),
                bytes: ticket.bytes.clone().unwrap_or_default(),
                channel: channel.clone().unwrap_or_default(),
                thread_ts: thread_ts.clone(),
                initial_comment: initial_comment.clone(),
                at: now,
            });
        }
        self.files
            .entry(channel.unwrap_or_default())
            .or_default()
            .extend(shared);
        Ok(json!({ "ok": true, "files": answer }))
    }

    fn conversation_info(&self, p: &Fields) -> Outcome {
        let key = text_arg(p, "channel")?;
        let channel = key
            .as_deref()
            .and_then(|k| self.find(k, false))
            .ok_or_else(|| refuse("channel_not_found"))?;
        Ok(json!({
            "ok": true,
            "channel": { "id": channel.id, "name": channel.name, "is_member": channel.member },
        }))
    }
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

fn random(alphabet: &[u8], n: usize) -> String {
    (0..n)
        .map(|_| char::from(alphabet[fastrand::usize(..alphabet.len())]))
        .collect()
}
