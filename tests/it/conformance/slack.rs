//! The Slack channel in the testkit, against the fake Web API.

use fanout::delivery::Reason;
use fanout::job::Target;
use serde_json::{json, Value};

use super::{check, closed_port, Vendor, Want};
use crate::support::slack::{FakeChannel, FakeSlack, SlackAnswer};

const TOKEN: &str = "xoxb-conformance-1111-2222-abcdef";
const HOME: &str = "C0HOME01";
const OTHER: &str = "C0OTHER2";

/// What Slack (or the network) can answer `chat.postMessage`.
#[derive(Debug)]
enum Answer {
    /// HTTP status, `Retry-After`, `{"ok":false,"error":…}`.
    Refused(u16, Option<u64>, &'static str),
    Unreachable,
}

struct Slack {
    fake: FakeSlack,
}

impl Vendor for Slack {
    type Answer = Answer;
    const CHANNEL: &'static str = "slack";

    fn prepare(&mut self, answer: Option<&Answer>) -> String {
        let api = match answer {
            Some(Answer::Unreachable) => format!("http://127.0.0.1:{}/api/", closed_port()),
            Some(Answer::Refused(status, retry_after, error)) => {
                self.fake.fail_next(
                    "chat.postMessage",
                    &[SlackAnswer {
                        status: *status,
                        retry_after: *retry_after,
                        error,
                    }],
                );
                self.fake.api_url()
            }
            None => self.fake.api_url(),
        };
        format!(
            "token = \"{TOKEN}\"\nchannel_id = \"{HOME}\"\napi_url = \"{api}\"\ntimeout = \"5s\"\n"
        )
    }

    fn table(&self) -> Vec<(Answer, Want)> {
        vec![
            (
                Answer::Refused(429, Some(7), "ratelimited"),
                Want::RetryAfter(7),
            ),
            (Answer::Refused(200, None, "ratelimited"), Want::Retry),
            (Answer::Refused(200, None, "fatal_error"), Want::Retry),
            (Answer::Refused(200, None, "internal_error"), Want::Retry),
            (
                Answer::Refused(503, None, "service_unavailable"),
                Want::Retry,
            ),
            (
                Answer::Refused(200, None, "invalid_auth"),
                Want::Permanent(Reason::Auth),
            ),
            (
                Answer::Refused(200, None, "token_revoked"),
                Want::Permanent(Reason::Auth),
            ),
            (
                Answer::Refused(200, None, "missing_scope"),
                Want::Permanent(Reason::Auth),
            ),
            (
                Answer::Refused(200, None, "channel_not_found"),
                Want::Permanent(Reason::Client),
            ),
            (
                Answer::Refused(200, None, "not_in_channel"),
                Want::Permanent(Reason::Client),
            ),
            (
                Answer::Refused(200, None, "is_archived"),
                Want::Permanent(Reason::Client),
            ),
            (Answer::Unreachable, Want::Retry),
        ]
    }

    fn secrets(&self) -> Vec<String> {
        vec![TOKEN.into()]
    }

    /// A target in another channel than the destination's.
    fn target(&self) -> Target {
        Target::to("d").with("channel_id", json!(OTHER))
    }

    fn received(&self) -> Value {
        let posted = self.fake.calls_of("chat.postMessage");
        let last = posted
            .iter()
            .rev()
            .find(|c| c.ok)
            .expect("Slack took the message");
        let files: Vec<Value> = self
            .fake
            .files(OTHER)
            .iter()
            .map(|f| json!({ "filename": f.filename, "length": f.bytes.len(), "alt_txt": f.alt_txt, "title": f.title }))
            .collect();
        json!({ "chat.postMessage": last.params, "files": files })
    }

    fn outboxed(&self, file: &[u8]) -> Value {
        let doc: Value = serde_json::from_slice(file).expect("outbox JSON");
        json!({ "chat.postMessage": doc["chat.postMessage"], "files": doc["files"] })
    }
}

#[tokio::test]
async fn slack_conforms() {
    let channel = |id, name| FakeChannel {
        id,
        name,
        member: true,
    };
    check(Slack {
        fake: FakeSlack::start(
            TOKEN,
            &[channel(HOME, "alerts"), channel(OTHER, "payments")],
        ),
    })
    .await;
}
