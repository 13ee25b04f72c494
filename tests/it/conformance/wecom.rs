//! The WeCom channel in the testkit, against the fake group bot.

use std::time::Duration;

use fanout::delivery::Reason;
use fanout::job::Target;
use serde_json::{json, Value};

use super::{check, closed_port, Vendor, Want};
use crate::support::wecom::FakeWecom;

/// What the bot (always HTTP 200) or the network can answer.
#[derive(Debug)]
enum Answer {
    Errcode(i64, &'static str),
    Unreachable,
}

struct Wecom {
    bot: FakeWecom,
    /// How many requests the bot had when the last delivery began.
    mark: usize,
}

impl Vendor for Wecom {
    type Answer = Answer;
    const CHANNEL: &'static str = "wecom";

    fn prepare(&mut self, answer: Option<&Answer>) -> String {
        self.mark = self.bot.requests().len();
        let url = match answer {
            Some(Answer::Unreachable) => format!(
                "http://127.0.0.1:{}/cgi-bin/webhook/send?key={}",
                closed_port(),
                self.bot.key()
            ),
            Some(Answer::Errcode(code, message)) => {
                self.bot.fail_next(&[(*code, message)]);
                self.bot.url()
            }
            None => self.bot.url(),
        };
        format!("webhook_url = \"{url}\"\ntimeout = \"5s\"\n")
    }

    fn table(&self) -> Vec<(Answer, Want)> {
        vec![
            (Answer::Errcode(-1, "system busy"), Want::Retry),
            (Answer::Errcode(45009, "api freq out of limit"), Want::Retry),
            (
                Answer::Errcode(93000, "invalid webhook url"),
                Want::Permanent(Reason::Auth),
            ),
            (
                Answer::Errcode(40058, "markdown.content exceed max length 4096"),
                Want::Permanent(Reason::Client),
            ),
            (
                Answer::Errcode(40008, "invalid message type"),
                Want::Permanent(Reason::Client),
            ),
            (Answer::Unreachable, Want::Retry),
        ]
    }

    fn secrets(&self) -> Vec<String> {
        vec![self.bot.key()]
    }

    /// Mentions by user id and by mobile: markdown, image, then a text.
    fn target(&self) -> Target {
        Target::to("d")
            .with("mentioned_list", json!(["zhangsan"]))
            .with("mentioned_mobile_list", json!(["13800001111"]))
    }

    fn received(&self) -> Value {
        let got: Vec<Value> = self.bot.requests()[self.mark..]
            .iter()
            .filter(|r| r.errcode == 0)
            .map(|r| shown(&r.body))
            .collect();
        json!(got)
    }

    fn outboxed(&self, file: &[u8]) -> Value {
        let doc: Value = serde_json::from_slice(file).expect("outbox JSON");
        let messages = doc["messages"].as_array().cloned().unwrap_or_default();
        json!(messages.iter().map(shown).collect::<Vec<_>>())
    }
}

/// A message as both sides can show it: an image by its MD5 (the outbox
/// keeps the PNG beside the file, not in it).
fn shown(message: &Value) -> Value {
    let mut m = message.clone();
    if let Some(image) = m.get_mut("image").and_then(Value::as_object_mut) {
        image.remove("base64");
    }
    m
}

#[tokio::test]
async fn wecom_conforms() {
    check(Wecom {
        bot: FakeWecom::with_limit(1_000, Duration::from_secs(60)),
        mark: 0,
    })
    .await;
}
