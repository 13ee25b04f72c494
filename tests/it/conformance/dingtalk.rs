//! The DingTalk channel in the testkit, against the fake custom robot
//! (signing on).

use std::time::Duration;

use fanout::delivery::Reason;
use fanout::job::Target;
use serde_json::{json, Value};

use super::{check, closed_port, Vendor, Want};
use crate::support::dingtalk::FakeDingtalk;

const SECRET: &str = "SECconformance0123456789abcdef";

#[derive(Debug)]
enum Answer {
    Errcode(i64, &'static str),
    Unreachable,
}

struct Dingtalk {
    robot: FakeDingtalk,
    storage: tempfile::TempDir,
    mark: usize,
}

impl Vendor for Dingtalk {
    type Answer = Answer;
    const CHANNEL: &'static str = "dingtalk";

    fn prepare(&mut self, answer: Option<&Answer>) -> String {
        self.mark = self.robot.requests().len();
        let url = match answer {
            Some(Answer::Unreachable) => format!(
                "http://127.0.0.1:{}/robot/send?access_token={}",
                closed_port(),
                self.robot.token()
            ),
            Some(Answer::Errcode(code, message)) => {
                self.robot.fail_next(&[(*code, message)]);
                self.robot.url()
            }
            None => self.robot.url(),
        };
        // The chart travels by its signed URL: the destination needs
        // [storage] (the tables after the destination's keys).
        format!(
            "webhook_url = \"{url}\"\nsecret = \"{SECRET}\"\ntimeout = \"5s\"\n\n\
             [storage]\nkind = \"internal\"\ndir = \"{}\"\nsigning_key = \"{}\"\n\n\
             [http]\npublic_url = \"https://fanout.example.com\"\n",
            self.storage.path().display(),
            "s".repeat(32)
        )
    }

    fn table(&self) -> Vec<(Answer, Want)> {
        vec![
            (Answer::Errcode(-1, "系统繁忙"), Want::Retry),
            (
                Answer::Errcode(130101, "send too fast, exceed 20 times per minute"),
                Want::Retry,
            ),
            (
                Answer::Errcode(310000, "keywords not in content"),
                Want::Permanent(Reason::Auth),
            ),
            (
                Answer::Errcode(300001, "token is not exist"),
                Want::Permanent(Reason::Auth),
            ),
            (
                Answer::Errcode(40035, "缺少参数 json"),
                Want::Permanent(Reason::Client),
            ),
            (Answer::Unreachable, Want::Retry),
        ]
    }

    fn secrets(&self) -> Vec<String> {
        vec![self.robot.token(), SECRET.to_string()]
    }

    fn target(&self) -> Target {
        Target::to("d")
            .with("mentioned_list", json!(["manager01"]))
            .with("mentioned_mobile_list", json!(["13800001111"]))
    }

    fn received(&self) -> Value {
        let got: Vec<Value> = self.robot.requests()[self.mark..]
            .iter()
            .filter(|r| r.errcode == 0)
            .map(|r| r.body.clone())
            .collect();
        assert!(
            self.robot.violations().is_empty(),
            "{:?}",
            self.robot.violations()
        );
        json!(got)
    }

    fn outboxed(&self, file: &[u8]) -> Value {
        let doc: Value = serde_json::from_slice(file).expect("outbox JSON");
        assert_eq!(doc["signed"], true);
        json!([doc["message"]])
    }
}

#[tokio::test]
async fn dingtalk_conforms() {
    check(Dingtalk {
        robot: FakeDingtalk::start(Some(SECRET), 1_000, Duration::from_secs(60)),
        storage: tempfile::tempdir().unwrap(),
        mark: 0,
    })
    .await;
}
