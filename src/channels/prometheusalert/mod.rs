//! PrometheusAlert: POST the alert as JSON to its custom-template endpoint,
//! where one of its own templates (Go text/template) turns it into a
//! WeCom, DingTalk, Feishu, … message. The chart travels as its signed URL
//! (`chart_url`); `docs/prometheusalert.md` has a template that shows it.
//!
//! PrometheusAlert answers HTTP 200 whatever happens, with a JSON string:
//! the upstream's reply, or its own complaint. [`judge`] reads it.

pub mod config;

use serde_json::Value;

pub use config::{PrometheusAlertConfig, PrometheusAlertTarget};

use super::http::{classify, redact_url, transport_error, SenderParts};
use super::{BuildContext, OutboxFile, Sender};
use crate::check::CheckRow;
use crate::delivery::{Delivery, Reason, SendError, Sent};
use crate::template::fit::Unit;

/// Longest answer worth quoting in a reason.
const QUOTED: usize = 200;

pub struct PrometheusAlertSender {
    config: PrometheusAlertConfig,
    parts: SenderParts,
}

impl PrometheusAlertSender {
    pub fn new(
        destination: &str,
        config: &PrometheusAlertConfig,
        ctx: &BuildContext,
    ) -> Result<Self, String> {
        Ok(Self {
            config: config.clone(),
            parts: SenderParts::new(destination, config.timeout, ctx)?,
        })
    }

    fn what(&self) -> String {
        format!("PrometheusAlert {}", self.config.url)
    }

    /// The body, rendered and checked to be JSON, its free text within
    /// the destination's `text_limit`.
    pub fn body(&self, delivery: &Delivery) -> Result<Vec<u8>, SendError> {
        let name = "prometheusalert/body.json.j2";
        let limit = self.config.text_limit;
        let body = self
            .parts
            .templates
            .render_fitted(
                &self.parts.destination,
                name,
                delivery,
                Unit::Bytes,
                |body| free_text_bytes(body).saturating_sub(limit),
            )
            .map_err(|e| SendError::permanent(Reason::Template, e.to_string()))?
            .text;
        if let Err(e) = serde_json::from_str::<Value>(&body) {
            return Err(SendError::permanent(
                Reason::Template,
                format!("template {name} did not produce JSON: {e}"),
            ));
        }
        Ok(body.into_bytes())
    }
}

/// The bytes of free text a body carries where PrometheusAlert's
/// templates read it: `title`, `message`, and each label's name and value
/// (the copy under `alert` is for templates that want the whole alert,
/// and is not counted twice). A body that is not JSON counts nothing: the
/// caller says what is wrong with it.
pub fn free_text_bytes(body: &str) -> usize {
    let Ok(doc) = serde_json::from_str::<Value>(body) else {
        return 0;
    };
    let text = |key: &str| doc[key].as_str().map_or(0, str::len);
    let labels = doc["labels"].as_object().map_or(0, |labels| {
        labels
            .iter()
            .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
            .sum()
    });
    text("title") + text("message") + labels
}

/// What PrometheusAlert's answer says. It wraps the upstream's reply (or
/// its own complaint) in a JSON string:
/// - a bot's `{"errcode":0}` (WeCom, DingTalk) or Feishu's `code`/`StatusCode`
///   0 is delivered; busy and frequency limits are worth another try;
/// - "参数异常" (unknown `type`/`tpl`), "不是合法json", a Go template error or
///   a channel switched off in its config fail the same way again;
/// - a network error between PrometheusAlert and the upstream is retried;
/// - nothing at all means it sent nothing: permanent.
///
/// Anything else is a type whose reply fanout does not know: delivered, and
/// the reply is kept in the log.
pub fn judge(body: &[u8], what: &str) -> Result<String, SendError> {
    let text = String::from_utf8_lossy(body);
    let inner = match serde_json::from_str::<Value>(text.trim()) {
        Ok(Value::String(s)) => s,
        _ => text.trim().to_string(),
    };
    let quoted: String = inner.trim().chars().take(QUOTED).collect();
    let permanent = |reason, why: &str| {
        Err(SendError::permanent(
            reason,
            format!("{what}: {why}: {quoted}"),
        ))
    };
    let retry =
        |reason, why: &str| Err(SendError::retry(reason, format!("{what}: {why}: {quoted}")));
    if let Ok(Value::Object(reply)) = serde_json::from_str::<Value>(inner.trim()) {
        let code = ["errcode", "code", "StatusCode"]
            .iter()
            .find_map(|k| reply.get(*k).and_then(Value::as_i64));
        return match code {
            Some(0) => Ok(quoted),
            // WeCom busy / frequency limit, DingTalk's limit, Feishu's limit.
            Some(-1) => retry(Reason::Server, "the upstream is busy"),
            Some(45009 | 130101 | 9499 | 11232) => {
                retry(Reason::RateLimited, "the upstream's rate limit")
            }
            Some(93000 | 310000 | 19001) => {
                permanent(Reason::Auth, "the upstream refused the bot URL or key")
            }
            Some(_) => permanent(Reason::Client, "the upstream refused the message"),
            None => Ok(quoted),
        };
    }
    let lower = inner.to_lowercase();
    if inner.trim().is_empty() {
        permanent(Reason::Client, "it sent nothing (is `type` one it knows?)")
    } else if inner.contains("参数异常") {
        permanent(Reason::Client, "it does not know the URL's `type` or `tpl`")
    } else if inner.contains("不是合法json") {
        permanent(Reason::Template, "it could not read the body as JSON")
    } else if lower.starts_with("template:") {
        permanent(Reason::Template, "its template failed")
    } else if inner.contains("未配置") || inner.contains("未开启") {
        permanent(Reason::Client, "that channel is switched off in its config")
    } else if lower.contains("unsupported protocol scheme") {
        permanent(Reason::Client, "the upstream URL in the query is wrong")
    } else if [
        "timeout",
        "connection refused",
        "dial tcp",
        "eof",
        "no such host",
    ]
    .iter()
    .any(|m| lower.contains(m))
    {
        retry(Reason::Server, "it could not reach the upstream")
    } else {
        Ok(quoted)
    }
}

/// One POST to PrometheusAlert: its URL (the target's `at` in it) and body.
pub struct Request {
    pub url: crate::secret::SecretUrl,
    pub body: Vec<u8>,
}

impl Sender for PrometheusAlertSender {
    type Target = PrometheusAlertTarget;
    type Request = Request;

    fn compose(
        &self,
        delivery: &Delivery,
        target: &PrometheusAlertTarget,
    ) -> Result<Request, SendError> {
        Ok(Request {
            url: self.config.url_for(target),
            body: self.body(delivery)?,
        })
    }

    async fn transmit(&self, _: &Delivery, request: Request) -> Result<Sent, SendError> {
        let response = self
            .parts
            .client
            .post(request.url.expose().clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(request.body)
            .send()
            .await
            .map_err(|e| transport_error(e, &self.what()))?;
        classify(response.status(), response.headers(), &self.what())?;
        let answer = response
            .bytes()
            .await
            .map_err(|e| transport_error(e, &self.what()))?;
        let reply = judge(&answer, &self.what())?;
        Ok(Sent::new(format!("200 {reply}")))
    }

    /// Method, redacted URL, the `at` it carries, and the body as JSON. The chart goes as its
    /// URL, so no PNG is written beside it.
    fn outbox_file(&self, _: &Delivery, request: &Request) -> OutboxFile {
        // Who is mentioned is not secret, unlike the rest of the query.
        let at = request
            .url
            .expose()
            .query_pairs()
            .find(|(k, _)| k == "at")
            .map(|(_, v)| v.into_owned());
        let doc = serde_json::json!({
            "method": "POST",
            "url": request.url.to_string(),
            "at": at,
            "body": serde_json::from_slice::<Value>(&request.body).unwrap_or_default(),
        });
        OutboxFile {
            suffix: ".prometheusalert.json",
            bytes: serde_json::to_vec_pretty(&doc).unwrap_or_default(),
            charts: false,
        }
    }

    /// GET its front page: any HTTP answer means PrometheusAlert is up.
    /// Nothing is posted to the template endpoint.
    async fn check(&self) -> CheckRow {
        let component = format!("prometheusalert {}", self.parts.destination);
        let target = self.config.url.to_string();
        let base = self.config.base();
        match self.parts.client.get(base.clone()).send().await {
            Ok(r) => CheckRow::ok(
                component,
                target,
                format!(
                    "URL has type and tpl; {} answered {}; nothing posted",
                    redact_url(&base),
                    r.status()
                ),
            ),
            Err(e) => CheckRow::fail(
                component,
                target,
                e.without_url().to_string(),
                "is PrometheusAlert running, and the URL's host and port right?",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::Class;
    use std::sync::Arc;

    fn class(body: &str) -> Result<(), (bool, Reason)> {
        judge(body.as_bytes(), "pa")
            .map(drop)
            .map_err(|e| (e.is_retryable(), e.reason))
    }

    #[test]
    fn its_answers_are_judged_delivered_retryable_or_permanent() {
        let string = |inner: &str| serde_json::to_string(inner).unwrap();
        assert_eq!(class(&string(r#"{"errcode":0,"errmsg":"ok"}"#)), Ok(()));
        assert_eq!(
            class(&string(r#"{"StatusCode":0,"StatusMessage":"success"}"#)),
            Ok(())
        );
        assert_eq!(
            class(&string(
                r#"{"errcode":45009,"errmsg":"api freq out of limit"}"#
            )),
            Err((true, Reason::RateLimited))
        );
        assert_eq!(
            class(&string(r#"{"errcode":-1,"errmsg":"system busy"}"#)),
            Err((true, Reason::Server))
        );
        assert_eq!(
            class(&string(
                r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#
            )),
            Err((false, Reason::Auth))
        );
        assert_eq!(
            class(&string("自定义模板接口参数异常！")),
            Err((false, Reason::Client))
        );
        assert_eq!(
            class(&string("请求body不是合法json.")),
            Err((false, Reason::Template))
        );
        assert_eq!(
            class(&string(
                r#"template: :1:9: executing "" at <.x>: map has no entry for key "x""#
            )),
            Err((false, Reason::Template))
        );
        assert_eq!(
            class(&string(
                "企业微信接口未配置未开启状态,请先配置open-weixin为1"
            )),
            Err((false, Reason::Client))
        );
        assert_eq!(
            class(&string(
                r#"Post "https://qyapi": dial tcp 10.0.0.1:443: i/o timeout"#
            )),
            Err((true, Reason::Server))
        );
        assert_eq!(class(&string("")), Err((false, Reason::Client)));
        assert_eq!(class(&string("sms sent")), Ok(()));
        // Not wrapped in a string (an older or proxied PrometheusAlert).
        assert_eq!(class(r#"{"errcode":0,"errmsg":"ok"}"#), Ok(()));
    }

    #[test]
    fn the_body_carries_what_a_prometheusalert_template_reads() {
        use crate::channels::ChannelConfig;
        let text = "[destinations.pa]\nchannel = \"prometheusalert\"\nurl = \"http://pa:8080/prometheusalert?type=wx&tpl=fanout-wx&wxurl=k\"\n";
        let config =
            crate::config::Config::parse(text, "test", std::rc::Rc::new(|_| None)).unwrap();
        let ChannelConfig::PrometheusAlert(c) = &config.destinations["pa"].channel else {
            panic!("a prometheusalert destination")
        };
        let ctx = BuildContext {
            templates: Arc::new(crate::channels::default_templates(chrono_tz::Asia::Shanghai)),
        };
        let sender = PrometheusAlertSender::new("pa", c, &ctx).unwrap();
        let job: crate::job::Job = serde_json::from_str(
            r#"{"version":1,"id":"j-1","alert":{"group_id":"g","title":"Disk full","severity":"error",
                "started_at":"2026-11-23T01:02:03Z","labels":{"host":"db1"}},"targets":[{"destination":"pa"}]}"#,
        )
        .unwrap();
        let delivery =
            Delivery::to_first_target(job).with_charts(vec![crate::delivery::ChartImage {
                title: "disk".into(),
                url: Some("https://f.example.com/images/a.png?sig=1".into()),
                ..Default::default()
            }]);
        let body: Value = serde_json::from_slice(&sender.body(&delivery).unwrap()).unwrap();
        assert_eq!(body["title"], "Disk full");
        assert_eq!(body["labels"]["host"], "db1");
        assert_eq!(
            body["chart_url"],
            "https://f.example.com/images/a.png?sig=1"
        );
        assert_eq!(body["started_at_local"], "2026-11-23 09:02:03 CST");
        assert_eq!(body["actions"]["acknowledge"], "");
    }

    #[test]
    fn the_free_text_is_cut_to_the_text_limit_and_the_labels_and_links_stay() {
        use crate::channels::ChannelConfig;
        let text = "[destinations.pa]\nchannel = \"prometheusalert\"\nurl = \"http://pa:8080/prometheusalert?type=wx&tpl=fanout-wx&wxurl=k\"\n";
        let config =
            crate::config::Config::parse(text, "test", std::rc::Rc::new(|_| None)).unwrap();
        let ChannelConfig::PrometheusAlert(c) = &config.destinations["pa"].channel else {
            panic!("a prometheusalert destination")
        };
        assert_eq!(c.text_limit, 3_000, "a WeCom upstream's default");
        let ctx = BuildContext {
            templates: Arc::new(crate::channels::default_templates(chrono_tz::Asia::Shanghai)),
        };
        let sender = PrometheusAlertSender::new("pa", c, &ctx).unwrap();
        let mut job: crate::job::Job = serde_json::from_str(
            r#"{"version":1,"id":"j-1","alert":{"group_id":"g","title":"磁盘满","status":"resolved",
                "started_at":"2026-11-23T01:02:03Z","ended_at":"2026-11-23T01:32:03Z","labels":{"host":"db1"}},
                "targets":[{"destination":"pa"}]}"#,
        )
        .unwrap();
        job.alert.message = "归档日志占满数据盘，请清理。".repeat(300);
        let delivery = Delivery::to_first_target(job).with_actions(crate::delivery::ActionUrls {
            acknowledge: "https://f.example.com/a".into(),
            resolve: "https://f.example.com/r".into(),
            silence_1h: "https://f.example.com/s".into(),
        });
        let raw = sender.body(&delivery).unwrap();
        let body: Value = serde_json::from_slice(&raw).unwrap();
        let used = free_text_bytes(std::str::from_utf8(&raw).unwrap());
        assert!(used <= 3_000 && used > 2_950, "{used}");
        assert!(body["message"].as_str().unwrap().ends_with("…(truncated)"));
        assert_eq!(body["labels"]["host"], "db1");
        assert_eq!(body["actions"]["resolve"], "https://f.example.com/r");
        assert_eq!(body["ended_at_local"], "2026-11-23 09:32:03 CST");
    }

    #[test]
    fn a_classified_error_says_which_class() {
        let e = judge(b"\"\"", "pa").unwrap_err();
        assert_eq!(e.class, Class::Permanent);
    }
}
