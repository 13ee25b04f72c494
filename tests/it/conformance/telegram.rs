//! The Telegram channel in the testkit, against the fake Bot API.

use std::time::Duration;

use fanout::delivery::Reason;
use fanout::job::Target;
use serde_json::{json, Value};

use super::{check, closed_port, Vendor, Want};
use crate::support::telegram::FakeTelegram;

const CHAT: &str = "-1001234567890";

#[derive(Debug)]
enum Answer {
    Status(u16, Value),
    Unreachable,
}

struct Telegram {
    bot: FakeTelegram,
    mark: usize,
}

impl Vendor for Telegram {
    type Answer = Answer;
    const CHANNEL: &'static str = "telegram";

    fn prepare(&mut self, answer: Option<&Answer>) -> String {
        self.mark = self.bot.messages().len();
        let api = match answer {
            Some(Answer::Unreachable) => format!("http://127.0.0.1:{}", closed_port()),
            Some(Answer::Status(code, body)) => {
                self.bot.fail_next(&[(*code, body.clone())]);
                self.bot.api_url()
            }
            None => self.bot.api_url(),
        };
        format!(
            "bot_token = \"{}\"\nchat_id = \"{CHAT}\"\napi_url = \"{api}\"\ntimeout = \"5s\"\n",
            self.bot.token()
        )
    }

    fn table(&self) -> Vec<(Answer, Want)> {
        vec![
            (
                Answer::Status(
                    429,
                    json!({"description": "Too Many Requests: retry after 4", "parameters": {"retry_after": 4}}),
                ),
                Want::RetryAfter(4),
            ),
            (
                Answer::Status(500, json!({"description": "Internal Server Error"})),
                Want::Retry,
            ),
            (
                Answer::Status(502, json!({"description": "Bad Gateway"})),
                Want::Retry,
            ),
            (
                Answer::Status(400, json!({"description": "Bad Request: chat not found"})),
                Want::Permanent(Reason::Client),
            ),
            (
                Answer::Status(
                    403,
                    json!({"description": "Forbidden: bot was kicked from the supergroup chat"}),
                ),
                Want::Permanent(Reason::Auth),
            ),
            (
                Answer::Status(401, json!({"description": "Unauthorized"})),
                Want::Permanent(Reason::Auth),
            ),
            (
                Answer::Status(
                    400,
                    json!({"description": "Bad Request: group chat was upgraded to a supergroup chat", "parameters": {"migrate_to_chat_id": -100999}}),
                ),
                Want::Permanent(Reason::Client),
            ),
            (Answer::Unreachable, Want::Retry),
        ]
    }

    fn secrets(&self) -> Vec<String> {
        vec![self.bot.token()]
    }

    fn target(&self) -> Target {
        Target::to("d").with("message_thread_id", json!(7))
    }

    fn received(&self) -> Value {
        let got = self.bot.messages()[self.mark..].to_vec();
        let calls: Vec<Value> = got
            .iter()
            .map(|m| match m.method.as_str() {
                "sendMessage" => json!({"method": m.method, "text": m.text}),
                _ => json!({"method": m.method, "caption": m.text, "photos": m.photos.iter().map(Vec::len).collect::<Vec<_>>()}),
            })
            .collect();
        assert!(self.bot.refused().is_empty(), "{:?}", self.bot.refused());
        json!({"chat_id": got[0].chat_id, "message_thread_id": got[0].topic, "calls": calls})
    }

    fn outboxed(&self, file: &[u8]) -> Value {
        let doc: Value = serde_json::from_slice(file).expect("outbox JSON");
        json!({"chat_id": doc["chat_id"], "message_thread_id": doc["message_thread_id"], "calls": doc["calls"]})
    }
}

#[tokio::test]
async fn telegram_conforms() {
    check(Telegram {
        bot: FakeTelegram::start(CHAT, 1_000, Duration::from_secs(60)),
        mark: 0,
    })
    .await;
}
