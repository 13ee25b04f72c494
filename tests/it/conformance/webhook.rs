//! The webhook channel in the testkit, against the scripted receiver.

use fanout::delivery::Reason;
use serde_json::{json, Value};

use super::{check, closed_port, Vendor, Want};
use crate::support::receiver::Receiver;

const SIGNING_KEY: &str = "whsec-conformance-5e2d1c0b";
const TOKEN: &str = "tok-conformance-77a1";

/// What a receiver can answer.
#[derive(Debug)]
enum Answer {
    Status(u16),
    StatusRetryAfter(u16, &'static str),
    Unreachable,
}

struct Webhook {
    receiver: Receiver,
}

impl Vendor for Webhook {
    type Answer = Answer;
    const CHANNEL: &'static str = "webhook";

    fn prepare(&mut self, answer: Option<&Answer>) -> String {
        let mut url = self.receiver.url.clone();
        match answer {
            Some(Answer::Status(status)) => self.receiver.answer_next(&[(*status, None)]),
            Some(Answer::StatusRetryAfter(status, after)) => {
                self.receiver.answer_next(&[(*status, Some(after))])
            }
            Some(Answer::Unreachable) => {
                url = format!("http://127.0.0.1:{}/hook/secret-path-key", closed_port())
            }
            None => {}
        }
        format!(
            "url = \"{url}\"\nsecret = \"{SIGNING_KEY}\"\n\
             headers = {{ Authorization = \"Bearer {TOKEN}\" }}\ntimeout = \"5s\"\n"
        )
    }

    fn table(&self) -> Vec<(Answer, Want)> {
        vec![
            (Answer::Status(200), Want::Sent),
            (Answer::Status(204), Want::Sent),
            (Answer::Status(500), Want::Retry),
            (Answer::Status(502), Want::Retry),
            (Answer::Status(503), Want::Retry),
            (Answer::Status(408), Want::Retry),
            (Answer::StatusRetryAfter(429, "7"), Want::RetryAfter(7)),
            (Answer::StatusRetryAfter(503, "3"), Want::RetryAfter(3)),
            (Answer::Status(400), Want::Permanent(Reason::Client)),
            (Answer::Status(404), Want::Permanent(Reason::Client)),
            (Answer::Status(413), Want::Permanent(Reason::Client)),
            (Answer::Status(401), Want::Permanent(Reason::Auth)),
            (Answer::Status(403), Want::Permanent(Reason::Auth)),
            (Answer::Unreachable, Want::Retry),
        ]
    }

    fn secrets(&self) -> Vec<String> {
        vec![
            SIGNING_KEY.into(),
            TOKEN.into(),
            // The receiver's URL path is its key.
            "secret-path-key".into(),
        ]
    }

    fn received(&self) -> Value {
        let got = self.receiver.received();
        let last = got.last().expect("the receiver got the delivery");
        json!({
            "path": "/…",
            "content-type": last.headers["content-type"].to_str().unwrap_or_default(),
            "delivery": last.headers["x-fanout-delivery"].to_str().unwrap_or_default(),
            "signed": last.headers.contains_key("x-fanout-signature"),
            "authorized": last.headers.contains_key("authorization"),
            "body": serde_json::from_slice::<Value>(&last.body).unwrap_or_default(),
        })
    }

    fn outboxed(&self, file: &[u8]) -> Value {
        let doc: Value = serde_json::from_slice(file).expect("outbox JSON");
        let url = doc["url"].as_str().unwrap_or_default();
        json!({
            "path": url.rsplit_once('/').map(|(_, p)| format!("/{p}")),
            "content-type": doc["headers"]["content-type"],
            "delivery": doc["headers"]["x-fanout-delivery"],
            "signed": doc["headers"]["x-fanout-signature"] == "***",
            "authorized": doc["headers"]["authorization"] == "***",
            "body": doc["body"],
        })
    }
}

#[tokio::test]
async fn webhook_conforms() {
    check(Webhook {
        receiver: Receiver::start(&[]),
    })
    .await;
}
