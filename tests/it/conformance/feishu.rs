//! The Feishu channel in the testkit, against the fake open platform
//! (signing on, an app uploading the chart).

use std::time::Duration;

use fanout::delivery::Reason;
use serde_json::{json, Value};

use super::{check, unreachable, Vendor, Want};
use crate::support::feishu::{FakeFeishu, APP_ID};

const SECRET: &str = "SECfeishu-conformance-0123";

#[derive(Debug)]
enum Answer {
    Code(i64, &'static str),
    Unreachable,
}

struct Feishu {
    bot: FakeFeishu,
    mark: usize,
}

impl Vendor for Feishu {
    type Answer = Answer;
    const CHANNEL: &'static str = "feishu";

    fn prepare(&mut self, answer: Option<&Answer>) -> String {
        self.mark = self.bot.cards().len();
        let url = match answer {
            Some(Answer::Unreachable) => unreachable(&self.bot.url()),
            Some(Answer::Code(code, msg)) => {
                self.bot.fail_next(&[(*code, msg)]);
                self.bot.url()
            }
            None => self.bot.url(),
        };
        format!(
            "webhook_url = \"{url}\"\nsecret = \"{SECRET}\"\napp_id = \"{APP_ID}\"\napp_secret = \"{}\"\ntimeout = \"5s\"\n",
            self.bot.app_secret()
        )
    }

    fn table(&self) -> Vec<(Answer, Want)> {
        vec![
            (Answer::Code(9499, "too many request"), Want::Retry),
            (Answer::Code(11232, "frequency limited"), Want::Retry),
            (
                Answer::Code(19021, "sign match fail"),
                Want::Permanent(Reason::Auth),
            ),
            (
                Answer::Code(19022, "ip not allowed"),
                Want::Permanent(Reason::Auth),
            ),
            (
                Answer::Code(19024, "Key Words Not Found"),
                Want::Permanent(Reason::Auth),
            ),
            (
                Answer::Code(19002, "params error"),
                Want::Permanent(Reason::Client),
            ),
            (Answer::Unreachable, Want::Retry),
        ]
    }

    fn secrets(&self) -> Vec<String> {
        vec![
            self.bot.hook_token(),
            self.bot.app_secret(),
            SECRET.to_string(),
        ]
    }

    /// The card as sent, its image keys back to their placeholders (the
    /// outbox cannot know the keys the upload would return).
    fn received(&self) -> Value {
        assert!(
            self.bot.violations().is_empty(),
            "{:?}",
            self.bot.violations()
        );
        let got: Vec<Value> = self.bot.cards()[self.mark..]
            .iter()
            .map(|m| {
                let mut card = m["card"].clone();
                let mut uploads = Vec::new();
                for e in card["elements"]
                    .as_array_mut()
                    .unwrap()
                    .iter_mut()
                    .filter(|e| e["tag"] == "img")
                {
                    let key = e["img_key"].as_str().unwrap().to_string();
                    uploads.push(self.bot.image(&key).expect("an issued key").len());
                    e["img_key"] = json!(format!("chart{}", uploads.len() - 1));
                }
                json!({"card": card, "uploads": uploads})
            })
            .collect();
        json!(got)
    }

    fn outboxed(&self, file: &[u8]) -> Value {
        let doc: Value = serde_json::from_slice(file).expect("outbox JSON");
        assert_eq!(doc["signed"], true);
        json!([{"card": doc["card"], "uploads": doc["uploads"]}])
    }
}

#[tokio::test]
async fn feishu_conforms() {
    check(Feishu {
        bot: FakeFeishu::start(Some(SECRET), 1_000, Duration::from_secs(60)),
        mark: 0,
    })
    .await;
}
