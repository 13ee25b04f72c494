//! The Discord channel in the testkit, against the fake webhook.

use std::time::Duration;

use fanout::delivery::Reason;
use fanout::job::Target;
use serde_json::{json, Value};

use super::{check, unreachable, Vendor, Want};
use crate::support::discord::FakeDiscord;

#[derive(Debug)]
enum Answer {
    Status(u16, Value),
    Unreachable,
}

struct Discord {
    hook: FakeDiscord,
    mark: usize,
}

impl Vendor for Discord {
    type Answer = Answer;
    const CHANNEL: &'static str = "discord";

    fn prepare(&mut self, answer: Option<&Answer>) -> String {
        self.mark = self.hook.messages().len();
        let url = match answer {
            Some(Answer::Unreachable) => unreachable(&self.hook.url()),
            Some(Answer::Status(code, body)) => {
                self.hook.fail_next(&[(*code, body.clone())]);
                self.hook.url()
            }
            None => self.hook.url(),
        };
        format!("webhook_url = \"{url}\"\ntimeout = \"5s\"\n")
    }

    fn table(&self) -> Vec<(Answer, Want)> {
        vec![
            (
                Answer::Status(
                    429,
                    json!({"message": "You are being rate limited.", "retry_after": 3.25, "global": false}),
                ),
                Want::RetryAfter(3),
            ),
            (
                Answer::Status(
                    500,
                    json!({"message": "500: Internal Server Error", "code": 0}),
                ),
                Want::Retry,
            ),
            (Answer::Status(502, Value::Null), Want::Retry),
            (
                Answer::Status(404, json!({"message": "Unknown Webhook", "code": 10015})),
                Want::Permanent(Reason::Auth),
            ),
            (
                Answer::Status(
                    401,
                    json!({"message": "Invalid Webhook Token", "code": 50027}),
                ),
                Want::Permanent(Reason::Auth),
            ),
            (
                Answer::Status(
                    400,
                    json!({"message": "Invalid Form Body", "code": 50035, "errors": {}}),
                ),
                Want::Permanent(Reason::Client),
            ),
            (Answer::Unreachable, Want::Retry),
        ]
    }

    fn secrets(&self) -> Vec<String> {
        vec![self.hook.token()]
    }

    fn target(&self) -> Target {
        Target::to("d").with("thread_id", json!("1234567890"))
    }

    fn received(&self) -> Value {
        let got: Vec<Value> = self.hook.messages()[self.mark..]
            .iter()
            .map(|m| {
                let files: Vec<Value> = m
                    .files
                    .iter()
                    .map(|(field, name, bytes)| json!({"field": field, "filename": name, "bytes": bytes.len()}))
                    .collect();
                json!({"thread_id": m.thread_id, "payload_json": m.payload, "files": files})
            })
            .collect();
        json!(got)
    }

    fn outboxed(&self, file: &[u8]) -> Value {
        let doc: Value = serde_json::from_slice(file).expect("outbox JSON");
        json!([{"thread_id": doc["thread_id"], "payload_json": doc["payload_json"], "files": doc["files"]}])
    }
}

#[tokio::test]
async fn discord_conforms() {
    check(Discord {
        hook: FakeDiscord::start(1_000, Duration::from_secs(60)),
        mark: 0,
    })
    .await;
}
