//! A fake Teams Workflows webhook ("When a Teams webhook request is
//! received") on 127.0.0.1:0 (axum): `POST /workflows/{id}/triggers/manual/paths/invoke`
//! with the workflow's `sig` (else 401), JSON with `type: message` and
//! one attachment of `contentType: application/vnd.microsoft.card.adaptive`
//! whose content is an Adaptive Card of the version the fake pins (1.5):
//! element types it knows, `Image.url` and `Action.OpenUrl.url` absolute
//! http(s), the message at most 28 KB (else 413). A card it cannot read is
//! 400 with why. It answers 202, and 429 with `Retry-After` past its rate.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;

pub const PINNED_VERSION: &str = "1.5";
pub const MESSAGE_MAX: usize = 28_000;

struct Inner {
    sig: String,
    window: super::window::RateWindow,
    script: VecDeque<u16>,
    cards: Vec<Value>,
    refused: Vec<String>,
}

type Shared = Arc<Mutex<Inner>>;

fn lock(shared: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct FakeTeams {
    addr: std::net::SocketAddr,
    shared: Shared,
    _running: super::serve::Running,
}

impl FakeTeams {
    pub fn start(count: usize, per: Duration) -> Self {
        let shared = Arc::new(Mutex::new(Inner {
            sig: format!("sig{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
            window: super::window::RateWindow::new(count, per),
            script: VecDeque::new(),
            cards: Vec::new(),
            refused: Vec::new(),
        }));
        let listener = super::serve::bind();
        let addr = listener.local_addr().expect("local addr");
        let app = Router::new()
            .fallback(handle)
            .layer(axum::extract::DefaultBodyLimit::max(8 << 20))
            .with_state(shared.clone());
        let running = super::serve::serve(listener, app);
        Self {
            addr,
            shared,
            _running: running,
        }
    }

    pub fn sig(&self) -> String {
        lock(&self.shared).sig.clone()
    }

    pub fn url(&self) -> String {
        format!(
            "http://{}/workflows/7f3a/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={}",
            self.addr,
            self.sig()
        )
    }

    pub fn fail_next(&self, statuses: &[u16]) {
        lock(&self.shared).script.extend(statuses.iter().copied());
    }

    /// The messages it took.
    pub fn messages(&self) -> Vec<Value> {
        lock(&self.shared).cards.clone()
    }

    pub fn refused(&self) -> Vec<String> {
        lock(&self.shared).refused.clone()
    }
}

fn status(code: u16, body: String) -> Response {
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

fn http_url(v: &Value) -> bool {
    v.as_str()
        .and_then(|u| url::Url::parse(u).ok())
        .is_some_and(|u| matches!(u.scheme(), "http" | "https"))
}

/// Why the card cannot be shown, if it cannot.
fn unreadable(message: &Value) -> Option<String> {
    if message["type"] != "message" {
        return Some("type is not message".into());
    }
    let attachments = message["attachments"].as_array()?;
    let [attachment] = attachments.as_slice() else {
        return Some("not one attachment".into());
    };
    if attachment["contentType"] != "application/vnd.microsoft.card.adaptive" {
        return Some("not an Adaptive Card attachment".into());
    }
    let card = &attachment["content"];
    if card["type"] != "AdaptiveCard" || card["version"] != PINNED_VERSION {
        return Some(format!("not an AdaptiveCard {PINNED_VERSION}"));
    }
    for element in card["body"].as_array()? {
        match element["type"].as_str().unwrap_or_default() {
            "TextBlock" if element["text"].is_string() => {}
            "FactSet"
                if element["facts"].as_array().is_some_and(|f| {
                    f.iter()
                        .all(|f| f["title"].is_string() && f["value"].is_string())
                }) => {}
            "Image" if http_url(&element["url"]) => {}
            other => return Some(format!("a body element it cannot show: {other}")),
        }
    }
    for action in card["actions"].as_array().into_iter().flatten() {
        if action["type"] != "Action.OpenUrl"
            || !http_url(&action["url"])
            || !action["title"].is_string()
        {
            return Some(format!("an action it cannot show: {action}"));
        }
    }
    None
}

async fn handle(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = lock(&shared);
    let sig = url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "sig")
        .map(|(_, v)| v.into_owned());
    if !uri.path().starts_with("/workflows/") || sig.as_deref() != Some(inner.sig.as_str()) {
        return status(401, r#"{"error":{"code":"DirectApiAuthorizationRequired","message":"The request must be authenticated"}}"#.into());
    }
    if let Some(code) = inner.script.pop_front() {
        return status(
            code,
            format!(r#"{{"error":{{"code":"Scripted","message":"{code}"}}}}"#),
        );
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        inner.refused.push("not JSON".into());
        return status(415, r#"{"error":{"code":"UnsupportedMediaType"}}"#.into());
    }
    if body.len() > MESSAGE_MAX {
        inner.refused.push(format!("{} bytes", body.len()));
        return status(413, r#"{"error":{"code":"MessageTooLarge"}}"#.into());
    }
    let message: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Some(why) = unreadable(&message) {
        inner.refused.push(why.clone());
        return status(
            400,
            format!(
                r#"{{"error":{{"code":"InvalidTemplate","message":{}}}}}"#,
                Value::from(why)
            ),
        );
    }
    if inner.window.admit().is_err() {
        let mut r = status(
            429,
            r#"{"error":{"code":"WorkflowTriggeredTooManyTimes"}}"#.into(),
        );
        r.headers_mut().insert("retry-after", "2".parse().unwrap());
        return r;
    }
    inner.cards.push(message);
    StatusCode::ACCEPTED.into_response()
}

#[cfg(test)]
mod self_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_fake_workflow_keeps_its_rules() {
        let teams = FakeTeams::start(1, Duration::from_secs(60));
        let post = |url: &str, body: &Value| {
            reqwest::blocking::Client::new()
                .post(url)
                .json(body)
                .send()
                .unwrap()
                .status()
                .as_u16()
        };
        let card = |version: &str, image: &str| {
            json!({"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                "content": {"type": "AdaptiveCard", "version": version, "body": [{"type": "Image", "url": image}]}}]})
        };
        assert_eq!(
            post(
                &teams.url().replace("sig=", "sig=x"),
                &card("1.5", "https://x/a.png")
            ),
            401
        );
        assert_eq!(post(&teams.url(), &card("1.2", "https://x/a.png")), 400);
        assert_eq!(post(&teams.url(), &card("1.5", "attachment://a.png")), 400);
        assert_eq!(post(&teams.url(), &card("1.5", "https://x/a.png")), 202);
        assert_eq!(post(&teams.url(), &card("1.5", "https://x/a.png")), 429);
        assert_eq!(teams.refused().len(), 2);
    }
}
