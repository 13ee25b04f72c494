//! The email channel in the testkit, against the real SMTP server
//! (aiosmtpd): one server per scripted reply.

use fanout::delivery::Reason;
use mail_parser::{MessageParser, MimeHeaders};
use serde_json::{json, Value};

use super::{check, closed_port, Vendor, Want};
use crate::support::smtp::{Options, SmtpServer};

const USER: &str = "alerts";
const PASSWORD: &str = "smtp-conformance-Pw-4c3b";
const WRONG: &str = "smtp-conformance-Wrong-8d7e";

/// What an SMTP server (or the network) can answer.
#[derive(Debug)]
enum Answer {
    /// Its reply to DATA.
    Data(&'static str),
    /// Its reply to AUTH with a wrong password.
    WrongPassword,
    Unreachable,
}

struct Email {
    /// Takes every message.
    server: SmtpServer,
    /// The servers scripted for the table, kept running until the end.
    scripted: Vec<SmtpServer>,
}

impl Vendor for Email {
    type Answer = Answer;
    const CHANNEL: &'static str = "email";

    fn prepare(&mut self, answer: Option<&Answer>) -> String {
        let (password, port) = match answer {
            None => (PASSWORD, self.server.port),
            Some(Answer::Unreachable) => (PASSWORD, closed_port()),
            Some(Answer::WrongPassword) => (WRONG, self.server.port),
            Some(Answer::Data(reply)) => {
                let server = SmtpServer::start(Options {
                    auth: Some((USER, PASSWORD)),
                    fail: Some(reply),
                    ..Options::default()
                });
                let port = server.port;
                self.scripted.push(server);
                (PASSWORD, port)
            }
        };
        format!(
            "smtp_url = \"smtp://{USER}:{password}@127.0.0.1:{port}\"\n\
             from = \"fanout@example.com\"\nto = [\"oncall@example.com\"]\ntimeout = \"5s\"\n"
        )
    }

    fn table(&self) -> Vec<(Answer, Want)> {
        vec![
            (Answer::Data("451 4.3.0 Try again later"), Want::Retry),
            (
                Answer::Data("452 4.3.1 Insufficient system storage"),
                Want::Retry,
            ),
            (Answer::Data("421 4.7.0 Closing connection"), Want::Retry),
            (
                Answer::Data("550 5.1.1 No such user"),
                Want::Permanent(Reason::Client),
            ),
            (
                Answer::Data("552 5.3.4 Message too big"),
                Want::Permanent(Reason::Client),
            ),
            (
                Answer::Data("554 5.7.1 Rejected as spam"),
                Want::Permanent(Reason::Client),
            ),
            (Answer::WrongPassword, Want::Permanent(Reason::Auth)),
            (Answer::Unreachable, Want::Retry),
        ]
    }

    fn secrets(&self) -> Vec<String> {
        vec![PASSWORD.into(), WRONG.into()]
    }

    fn received(&self) -> Value {
        let n = self.server.accepted();
        let got = self.server.wait_for_messages(n);
        shown(&got.last().expect("the server took the message").raw)
    }

    fn outboxed(&self, file: &[u8]) -> Value {
        shown(file)
    }
}

/// An email as both sides can show it: what a reader sees and what
/// threads it (MIME boundaries and the Date differ from one build to the
/// next).
fn shown(raw: &[u8]) -> Value {
    let message = MessageParser::default().parse(raw).expect("an email");
    let addresses = |list: Option<&mail_parser::Address>| -> Vec<String> {
        list.into_iter()
            .flat_map(|a| a.iter())
            .filter_map(|a| a.address().map(str::to_string))
            .collect()
    };
    let attachments: Vec<Value> = message
        .attachments()
        .map(|a| json!({ "content_id": a.content_id(), "bytes": a.contents().len() }))
        .collect();
    json!({
        "subject": message.subject(),
        "from": addresses(message.from()),
        "to": addresses(message.to()),
        "message_id": message.message_id(),
        "in_reply_to": message.in_reply_to().as_text(),
        "text": message.body_text(0),
        "html": message.body_html(0),
        "attachments": attachments,
    })
}

#[tokio::test]
async fn email_conforms() {
    check(Email {
        server: SmtpServer::start(Options {
            auth: Some((USER, PASSWORD)),
            ..Options::default()
        }),
        scripted: Vec::new(),
    })
    .await;
}
