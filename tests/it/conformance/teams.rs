//! The Teams channel in the testkit, against the fake Workflows webhook.

use std::time::Duration;

use fanout::delivery::Reason;
use serde_json::{json, Value};

use super::{check, unreachable, Vendor, Want};
use crate::support::teams::FakeTeams;

#[derive(Debug)]
enum Answer {
    Status(u16),
    Unreachable,
}

struct Teams {
    workflow: FakeTeams,
    storage: tempfile::TempDir,
    mark: usize,
}

impl Vendor for Teams {
    type Answer = Answer;
    const CHANNEL: &'static str = "teams";

    fn prepare(&mut self, answer: Option<&Answer>) -> String {
        self.mark = self.workflow.messages().len();
        let url = match answer {
            Some(Answer::Unreachable) => unreachable(&self.workflow.url()),
            Some(Answer::Status(code)) => {
                self.workflow.fail_next(&[*code]);
                self.workflow.url()
            }
            None => self.workflow.url(),
        };
        format!(
            "webhook_url = \"{url}\"\ntimeout = \"5s\"\n\n\
             [storage]\nkind = \"internal\"\ndir = \"{}\"\nsigning_key = \"{}\"\n\n\
             [http]\npublic_url = \"https://fanout.example.com\"\n",
            self.storage.path().display(),
            "s".repeat(32)
        )
    }

    fn table(&self) -> Vec<(Answer, Want)> {
        vec![
            (Answer::Status(429), Want::Retry),
            (Answer::Status(500), Want::Retry),
            (Answer::Status(503), Want::Retry),
            (Answer::Status(400), Want::Permanent(Reason::Client)),
            (Answer::Status(401), Want::Permanent(Reason::Auth)),
            (Answer::Status(404), Want::Permanent(Reason::Client)),
            (Answer::Status(413), Want::Permanent(Reason::Client)),
            (Answer::Unreachable, Want::Retry),
        ]
    }

    fn secrets(&self) -> Vec<String> {
        vec![self.workflow.sig()]
    }

    fn received(&self) -> Value {
        assert!(
            self.workflow.refused().is_empty(),
            "{:?}",
            self.workflow.refused()
        );
        json!(self.workflow.messages()[self.mark..].to_vec())
    }

    fn outboxed(&self, file: &[u8]) -> Value {
        let doc: Value = serde_json::from_slice(file).expect("outbox JSON");
        json!([doc["message"]])
    }
}

#[tokio::test]
async fn teams_conforms() {
    check(Teams {
        workflow: FakeTeams::start(1_000, Duration::from_secs(60)),
        storage: tempfile::tempdir().unwrap(),
        mark: 0,
    })
    .await;
}
