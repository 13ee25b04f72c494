//! The PrometheusAlert channel in the testkit, against its fake, which
//! answers HTTP 200 with one Go string whatever happened.

use fanout::delivery::Reason;
use fanout::job::Target;
use serde_json::{json, Value};

use super::{check, closed_port, Vendor, Want};
use crate::support::prometheusalert::{
    FakePrometheusAlert, BAD_PARAMS, FEISHU_OK, NOT_JSON, VENDOR_OK,
};

/// The bot key PrometheusAlert forwards to, in its URL's query.
const BOT_KEY: &str = "pa-conformance-bot-key-9f8e";

/// What PrometheusAlert (or the network) can answer.
#[derive(Debug)]
enum Answer {
    /// The string PrometheusAlert answers: its upstream's reply or its own.
    Says(&'static str),
    Unreachable,
}

struct PrometheusAlert {
    fake: FakePrometheusAlert,
}

impl Vendor for PrometheusAlert {
    type Answer = Answer;
    const CHANNEL: &'static str = "prometheusalert";

    fn prepare(&mut self, answer: Option<&Answer>) -> String {
        let query = format!(
            "type=wx&tpl=fanout-wx&wxurl=https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={BOT_KEY}"
        );
        let url = match answer {
            Some(Answer::Unreachable) => {
                format!("http://127.0.0.1:{}/prometheusalert?{query}", closed_port())
            }
            Some(Answer::Says(text)) => {
                self.fake.answer_next(&[text]);
                self.fake.url(&query)
            }
            None => self.fake.url(&query),
        };
        format!("url = \"{url}\"\ntimeout = \"5s\"\n")
    }

    fn table(&self) -> Vec<(Answer, Want)> {
        vec![
            (Answer::Says(VENDOR_OK), Want::Sent),
            (Answer::Says(FEISHU_OK), Want::Sent),
            (
                Answer::Says(r#"{"errcode":-1,"errmsg":"system busy"}"#),
                Want::Retry,
            ),
            (
                Answer::Says(r#"{"errcode":45009,"errmsg":"api freq out of limit"}"#),
                Want::Retry,
            ),
            (
                Answer::Says(r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#),
                Want::Permanent(Reason::Auth),
            ),
            (
                Answer::Says(r#"{"errcode":40058,"errmsg":"invalid parameter"}"#),
                Want::Permanent(Reason::Client),
            ),
            (
                Answer::Says("Post \"https://qyapi.weixin.qq.com/\": dial tcp: connection refused"),
                Want::Retry,
            ),
            (Answer::Says(BAD_PARAMS), Want::Permanent(Reason::Client)),
            (Answer::Says(NOT_JSON), Want::Permanent(Reason::Template)),
            (Answer::Says(""), Want::Permanent(Reason::Client)),
            (Answer::Unreachable, Want::Retry),
        ]
    }

    fn secrets(&self) -> Vec<String> {
        vec![BOT_KEY.into()]
    }

    fn target(&self) -> Target {
        Target::to("d").with("mentioned_list", json!(["zhangsan", "lisi"]))
    }

    fn received(&self) -> Value {
        let got = self.fake.requests();
        let last = got.last().expect("PrometheusAlert got the delivery");
        json!({ "at": last.query.get("at"), "body": last.body })
    }

    fn outboxed(&self, file: &[u8]) -> Value {
        let doc: Value = serde_json::from_slice(file).expect("outbox JSON");
        json!({ "at": doc["at"], "body": doc["body"] })
    }
}

#[tokio::test]
async fn prometheusalert_conforms() {
    check(PrometheusAlert {
        fake: FakePrometheusAlert::start(&[("fanout-wx", crate::chat::pa_paths())]),
    })
    .await;
}
