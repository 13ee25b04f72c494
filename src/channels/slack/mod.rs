//! Slack through the Web API with a bot token: the first notification of an
//! alert group is a `chat.postMessage` (blocks in an attachment coloured by
//! severity); its charts are uploaded as files into that message's thread
//! (`files.getUploadURLExternal` → POST the bytes → `files.completeUploadExternal`);
//! the group's later notifications (repeats, resolved) reply in the same
//! thread. Files, not image URLs: Slack cannot fetch a chart from an
//! internal URL, and incoming webhooks cannot carry files.
//!
//! Slack answers `ok: false` with an error name; [`judge`] sorts those into
//! retryable and permanent (with a hint). A delivery whose message went out
//! but whose upload failed retries the upload only.

pub mod config;

use serde_json::{json, Value};
use tracing::warn;

pub use config::{SlackConfig, SlackTarget};

use super::http::{classify, transport_error, SenderParts};
use super::{BuildContext, OutboxFile, Sender};
use crate::check::CheckRow;
use crate::delivery::{ChartImage, Class, Delivery, Reason, SendError, Sent};
use crate::job::Status;
use crate::template::fit::Unit;

/// Slack's limit on an image's alt text, in characters.
const ALT_TEXT_MAX: usize = 1000;

/// Block Kit's text limits, in characters (api.slack.com/reference/block-kit):
/// a header's text 150, a section's text 3,000 and each of its fields
/// 2,000, a context element's text 3,000; a message's `text` 40,000.
const HEADER_MAX: usize = 150;
const SECTION_MAX: usize = 3_000;
const FIELD_MAX: usize = 2_000;
const CONTEXT_MAX: usize = 3_000;
const TEXT_MAX: usize = 40_000;

/// How many characters a `chat.postMessage` body is over Block Kit's
/// limits, summed over every block (in `blocks` and in each attachment's),
/// so that cutting any one field that is over shows as progress. A body
/// that is not JSON counts nothing: the caller says what is wrong.
pub fn over_block_limits(body: &str) -> usize {
    let Ok(doc) = serde_json::from_str::<Value>(body) else {
        return 0;
    };
    let over = |text: &Value, max: usize| {
        text.as_str()
            .map_or(0, |t| t.chars().count().saturating_sub(max))
    };
    let mut total = over(&doc["text"], TEXT_MAX);
    let attachments = doc["attachments"].as_array().into_iter().flatten();
    let blocks = doc["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(attachments.flat_map(|a| a["blocks"].as_array().into_iter().flatten()));
    for block in blocks {
        total += match block["type"].as_str() {
            Some("header") => over(&block["text"]["text"], HEADER_MAX),
            Some("section") => {
                let fields = block["fields"].as_array().into_iter().flatten();
                over(&block["text"]["text"], SECTION_MAX)
                    + fields.map(|f| over(&f["text"], FIELD_MAX)).sum::<usize>()
            }
            Some("context") => block["elements"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| over(&e["text"], CONTEXT_MAX))
                .sum(),
            _ => 0,
        };
    }
    total
}

pub struct SlackSender {
    config: SlackConfig,
    parts: SenderParts,
}

/// How a method's arguments travel.
enum Args {
    Json(Value),
    Form(Vec<(&'static str, String)>),
}

impl SlackSender {
    pub fn new(
        destination: &str,
        config: &SlackConfig,
        ctx: &BuildContext,
    ) -> Result<Self, String> {
        Ok(Self {
            config: config.clone(),
            parts: SenderParts::new(destination, config.timeout, ctx)?,
        })
    }

    /// The `chat.postMessage` body: the template's text and attachments,
    /// with where it goes.
    pub fn message(&self, delivery: &Delivery, target: &SlackTarget) -> Result<Value, SendError> {
        let name = "slack/message.json.j2";
        let rendered = self
            .parts
            .templates
            .render_fitted(
                &self.parts.destination,
                name,
                delivery,
                Unit::Chars,
                over_block_limits,
            )
            .map_err(|e| SendError::permanent(Reason::Template, e.to_string()))?
            .text;
        let mut body: Value = serde_json::from_str(&rendered).map_err(|e| {
            SendError::permanent(
                Reason::Template,
                format!("template {name} did not produce JSON: {e}"),
            )
        })?;
        if !body.is_object() {
            return Err(SendError::permanent(
                Reason::Template,
                format!("template {name} must produce a JSON object"),
            ));
        }
        body["channel"] = json!(self.config.channel_for(target));
        body["unfurl_links"] = json!(false);
        if let Some(thread) = &delivery.thread {
            body["thread_ts"] = json!(thread);
            // The channel sees the group resolve, not only the thread.
            if delivery.job.alert.status == Status::Resolved {
                body["reply_broadcast"] = json!(true);
            }
        }
        Ok(body)
    }

    /// Call a Web API method; `ok: false` becomes a classified error.
    async fn call(&self, method: &str, args: Args) -> Result<Value, SendError> {
        let what = format!("slack {method}");
        let url = self
            .config
            .api_url
            .join(method)
            .map_err(|e| SendError::permanent(Reason::Other, format!("{what}: {e}")))?;
        let request = self
            .parts
            .client
            .post(url)
            .bearer_auth(self.config.token.expose());
        let request = match args {
            Args::Json(body) => request.json(&body),
            Args::Form(fields) => request.form(&fields),
        };
        let response = request
            .send()
            .await
            .map_err(|e| transport_error(e, &what))?;
        classify(response.status(), response.headers(), &what)?;
        let answer: Value = response.json().await.map_err(|e| {
            SendError::retry(
                Reason::Server,
                format!("{what}: the answer is not JSON: {}", e.without_url()),
            )
        })?;
        match answer["ok"].as_bool() {
            Some(true) => Ok(answer),
            _ => Err(judge(
                &what,
                answer["error"].as_str().unwrap_or("unknown_error"),
            )),
        }
    }

    /// Upload the charts that have a PNG into `thread` as one share.
    async fn upload(
        &self,
        delivery: &Delivery,
        channel: &str,
        thread: &str,
    ) -> Result<usize, SendError> {
        let charts: Vec<&ChartImage> = delivery.charts.iter().filter(|c| c.png.is_some()).collect();
        if charts.is_empty() {
            return Ok(0);
        }
        let mut files = Vec::new();
        for chart in &charts {
            let Some(png) = &chart.png else { continue };
            let (filename, alt) = file_names(delivery, chart);
            let got = self
                .call(
                    "files.getUploadURLExternal",
                    Args::Form(vec![
                        ("filename", filename),
                        ("length", png.len().to_string()),
                        ("alt_txt", alt),
                    ]),
                )
                .await?;
            let (Some(upload_url), Some(file_id)) =
                (got["upload_url"].as_str(), got["file_id"].as_str())
            else {
                return Err(SendError::retry(
                    Reason::Server,
                    "slack files.getUploadURLExternal: no upload_url or file_id",
                ));
            };
            // The upload URL is signed by Slack: the token does not go there.
            let response = self
                .parts
                .client
                .post(upload_url)
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(png.as_ref().clone())
                .send()
                .await
                .map_err(|e| transport_error(e, "slack file upload"))?;
            classify(response.status(), response.headers(), "slack file upload")?;
            files.push(json!({ "id": file_id, "title": chart.title }));
        }
        self.call(
            "files.completeUploadExternal",
            Args::Json(json!({ "files": files, "channel_id": channel, "thread_ts": thread })),
        )
        .await?;
        Ok(files.len())
    }

    fn outbox_json(&self, delivery: &Delivery, message: &Value) -> Vec<u8> {
        let uploads: Vec<Value> = delivery
            .charts
            .iter()
            .filter_map(|c| {
                let png = c.png.as_ref()?;
                let (filename, alt) = file_names(delivery, c);
                Some(json!({ "filename": filename, "length": png.len(), "alt_txt": alt, "title": c.title }))
            })
            .collect();
        let doc = json!({
            "api_url": self.config.api_url.as_str(),
            "chat.postMessage": message,
            "files": uploads,
        });
        serde_json::to_vec_pretty(&doc).unwrap_or_default()
    }
}

fn file_names(delivery: &Delivery, chart: &ChartImage) -> (String, String) {
    let slug: String = chart
        .title
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .chars()
        .take(60)
        .collect();
    let filename = format!("{}.png", if slug.is_empty() { "chart" } else { &slug });
    let alt = format!(
        "Chart {} for the alert {}",
        chart.title, delivery.job.alert.title
    );
    (filename, alt.chars().take(ALT_TEXT_MAX).collect())
}

/// An `ok: false` error name, sorted: retryable, or permanent with a hint.
pub fn judge(what: &str, error: &str) -> SendError {
    let (class, reason, hint) = match error {
        "ratelimited" | "rate_limited" => (Class::Retry { after: None }, Reason::RateLimited, ""),
        "service_unavailable" | "fatal_error" | "internal_error" | "request_timeout" => {
            (Class::Retry { after: None }, Reason::Server, "")
        }
        "invalid_auth" | "not_authed" | "account_inactive" | "token_revoked" | "token_expired" => (
            Class::Permanent,
            Reason::Auth,
            " (the token is wrong or revoked: copy the Bot User OAuth Token again)",
        ),
        "missing_scope" | "no_permission" => (
            Class::Permanent,
            Reason::Auth,
            " (the app needs the chat:write and files:write scopes; reinstall it after adding them)",
        ),
        "channel_not_found" => (
            Class::Permanent,
            Reason::Client,
            " (check channel_id; a private channel is found only once the bot is in it)",
        ),
        "not_in_channel" => (
            Class::Permanent,
            Reason::Client,
            " (invite the bot: /invite @your-app in the channel)",
        ),
        "is_archived" => (Class::Permanent, Reason::Client, " (the channel is archived)"),
        _ => (Class::Permanent, Reason::Client, ""),
    };
    SendError::new(class, reason, format!("{what}: {error}{hint}"))
}

/// One delivery to Slack: the `chat.postMessage` body, and the channel
/// its charts are uploaded to.
pub struct Request {
    pub message: Value,
    pub channel: String,
}

impl Sender for SlackSender {
    type Target = SlackTarget;
    type Request = Request;

    fn compose(&self, delivery: &Delivery, target: &SlackTarget) -> Result<Request, SendError> {
        Ok(Request {
            message: self.message(delivery, target)?,
            channel: self.config.channel_for(target).to_string(),
        })
    }

    fn outbox_file(&self, delivery: &Delivery, request: &Request) -> OutboxFile {
        OutboxFile {
            suffix: ".slack.json",
            bytes: self.outbox_json(delivery, &request.message),
            charts: true,
        }
    }

    async fn transmit(&self, delivery: &Delivery, request: Request) -> Result<Sent, SendError> {
        let Request { message, channel } = request;
        // An earlier attempt that posted the message left its ts.
        let ts = match &delivery.progress {
            Some(ts) => ts.clone(),
            None => {
                let posted = self.call("chat.postMessage", Args::Json(message)).await?;
                posted["ts"].as_str().map(str::to_string).ok_or_else(|| {
                    SendError::retry(
                        Reason::Server,
                        "slack chat.postMessage: no ts in the answer",
                    )
                })?
            }
        };
        let thread = delivery.thread.clone().unwrap_or_else(|| ts.clone());
        let files = match self.upload(delivery, &channel, &thread).await {
            Ok(n) => n,
            Err(e) if e.is_retryable() => return Err(e.with_progress(Some(ts))),
            // The alert is out; a chart Slack will never take does not undo it.
            Err(e) => {
                warn!(message = "Posted to Slack, but its chart was refused.", destination = %self.parts.destination, error = %e);
                0
            }
        };
        let mut sent = Sent::new(format!("ts {ts} in thread {thread}, {files} chart file(s)"));
        if delivery.thread.is_none() {
            sent.thread = Some(thread);
        }
        Ok(sent)
    }

    /// `auth.test` (is the token good?), then `conversations.info` (does
    /// the channel exist, and is the bot in it?). Nothing is posted.
    async fn check(&self) -> CheckRow {
        let component = format!("slack {}", self.parts.destination);
        let target = format!("{} {}", self.config.api_url, self.config.channel_id);
        let who = match self.call("auth.test", Args::Form(Vec::new())).await {
            Ok(a) => format!(
                "{} in {}",
                a["user"].as_str().unwrap_or("?"),
                a["team"].as_str().unwrap_or("?")
            ),
            Err(e) => {
                return CheckRow::fail(
                    component,
                    target,
                    e.message,
                    "is the token the app's Bot User OAuth Token?",
                )
            }
        };
        let info = self
            .call(
                "conversations.info",
                Args::Form(vec![("channel", self.config.channel_id.clone())]),
            )
            .await;
        match info {
            Ok(a) if a["channel"]["is_member"].as_bool() == Some(false) => CheckRow::fail(
                component,
                target,
                format!("token ok ({who}), but the bot is not in the channel"),
                "invite it: /invite @your-app in the channel",
            ),
            Ok(a) => CheckRow::ok(
                component,
                target,
                format!("token ok ({who}); channel #{} found", a["channel"]["name"].as_str().unwrap_or("?")),
            ),
            Err(e) => CheckRow::fail(component, target, format!("token ok ({who}); {}", e.message), "check channel_id, and that the app has channels:read (groups:read for private channels)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::ChannelConfig;
    use crate::config::Config;
    use std::rc::Rc;
    use std::sync::Arc;

    fn sender() -> SlackSender {
        let text = "[destinations.chat]\nchannel = \"slack\"\ntoken = \"xoxb-1-2-3\"\nchannel_id = \"C0123ABCD\"\n";
        let config = Config::parse(text, "test", Rc::new(|_| None)).expect("config");
        let ChannelConfig::Slack(c) = &config.destinations["chat"].channel else {
            panic!("a slack destination")
        };
        let ctx = BuildContext {
            templates: Arc::new(crate::channels::default_templates(chrono_tz::Europe::Berlin)),
        };
        SlackSender::new("chat", c, &ctx).expect("sender")
    }

    fn delivery(status: &str, thread: Option<&str>) -> Delivery {
        let job: crate::job::Job = serde_json::from_str(&format!(
            r#"{{"version":1,"id":"j-1","alert":{{"group_id":"g<1>","title":"{title}","severity":"critical","status":"{status}",
                "started_at":"2026-11-23T01:02:03Z","message":"p99 > 2s & rising","labels":{{"svc":"a<b>","env":"prod"}},
                "source_url":"https://grafana.example.com/alerting/1"}},
                "targets":[{{"destination":"chat"}}]}}"#,
            title = "Latency ".repeat(30)
        ))
        .unwrap();
        Delivery::to_first_target(job)
            .at_step(0, 1, 1)
            .with_charts(vec![ChartImage {
                title: "p99".into(),
                link: Some("https://grafana.example.com/d/x?viewPanel=3".into()),
                ..ChartImage::default()
            }])
            .with_actions(crate::delivery::ActionUrls {
                acknowledge: "https://f.example.com/actions/acknowledge/g?sig=1".into(),
                resolve: "https://f.example.com/actions/resolve/g?sig=1".into(),
                silence_1h: "https://f.example.com/actions/silence/g?sig=1".into(),
            })
            .with_thread(thread)
    }

    #[test]
    fn a_long_message_and_long_labels_are_cut_and_the_blocks_fit_with_every_label_and_button() {
        let mut d = delivery("firing", None);
        let mut job = (*d.job).clone();
        job.alert.message = "连接池耗尽 <b> & 重试堆积。".repeat(400);
        job.alert.labels.insert("trace".into(), "x".repeat(3_500));
        job.alert.labels.insert("zone".into(), "eu-1".into());
        d.job = Arc::new(job);
        let body = sender().message(&d, &SlackTarget::default()).unwrap();
        let text = body.to_string();
        assert_eq!(over_block_limits(&text), 0, "{text}");
        let blocks = body["attachments"][0]["blocks"].as_array().unwrap();
        let section = |needle: &str| {
            blocks
                .iter()
                .find_map(|b| b["text"]["text"].as_str().filter(|t| t.contains(needle)))
                .unwrap_or_else(|| panic!("no block with {needle}"))
                .to_string()
        };
        // The message was cut, and says so where.
        assert!(
            section("连接池").ends_with("…(truncated)"),
            "{}",
            section("连接池")
        );
        // Every label is there, the long one cut with its own mark.
        let labels = section("*Labels*");
        for label in ["env: prod", "svc: a&lt;b&gt;", "zone: eu-1", "trace: xxx"] {
            assert!(labels.contains(label), "{label}: {labels}");
        }
        assert!(labels.contains("…"), "{labels}");
        // The buttons people act on are all there.
        let actions = blocks
            .iter()
            .find(|b| b["type"] == "actions")
            .expect("buttons");
        assert_eq!(actions["elements"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn the_message_has_colour_blocks_links_and_buttons_within_slack_s_limits() {
        let body = sender()
            .message(&delivery("firing", None), &SlackTarget::default())
            .unwrap();
        assert_eq!(body["channel"], "C0123ABCD");
        assert!(body.get("thread_ts").is_none());
        assert!(body["text"].as_str().unwrap().contains("[FIRING]"));
        let attachment = &body["attachments"][0];
        assert_eq!(attachment["color"], "#E01E5A");
        let blocks = attachment["blocks"].as_array().unwrap();
        let header = blocks[0]["text"]["text"].as_str().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        assert!(
            header.chars().count() <= 150 && header.ends_with('…'),
            "{header}"
        );
        let all = body.to_string();
        assert!(
            all.contains("2026-11-23 02:02:03 CET"),
            "local start time: {all}"
        );
        assert!(
            all.contains("a&lt;b&gt;") && all.contains("&amp; rising"),
            "escaped: {all}"
        );
        assert!(
            all.contains("<https://grafana.example.com/d/x?viewPanel=3|p99>"),
            "{all}"
        );
        assert!(all.contains("repeat 1"), "{all}");
        let buttons = &blocks.last().unwrap()["elements"];
        assert_eq!(
            buttons[0]["url"],
            "https://f.example.com/actions/acknowledge/g?sig=1"
        );
        assert_eq!(buttons.as_array().unwrap().len(), 3);
    }

    #[test]
    fn later_notices_reply_in_the_thread_and_a_resolve_is_broadcast() {
        let repeat = sender()
            .message(
                &delivery("firing", Some("1700000000.000100")),
                &SlackTarget::default(),
            )
            .unwrap();
        assert_eq!(repeat["thread_ts"], "1700000000.000100");
        assert!(repeat.get("reply_broadcast").is_none());
        let resolved = sender()
            .message(
                &delivery("resolved", Some("1700000000.000100")),
                &SlackTarget::default(),
            )
            .unwrap();
        assert_eq!(resolved["reply_broadcast"], true);
        assert_eq!(resolved["attachments"][0]["color"], "#2EB67D");
    }

    #[test]
    fn error_names_are_sorted_with_hints() {
        assert!(judge("m", "ratelimited").is_retryable());
        assert!(judge("m", "internal_error").is_retryable());
        for (name, reason, hint) in [
            ("invalid_auth", Reason::Auth, "token"),
            ("channel_not_found", Reason::Client, "channel_id"),
            ("not_in_channel", Reason::Client, "/invite"),
            ("missing_scope", Reason::Auth, "files:write"),
            ("msg_too_long", Reason::Client, ""),
        ] {
            let e = judge("slack chat.postMessage", name);
            assert!(!e.is_retryable(), "{name}");
            assert_eq!(e.reason, reason, "{name}");
            assert!(
                e.message.contains(name) && e.message.contains(hint),
                "{}",
                e.message
            );
        }
    }
}
