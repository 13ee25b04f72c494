//! Email channel unit tests: URL rules and the message, byte by byte.
//! Sending over real SMTP is tested in `tests/it/email.rs`.

use std::sync::Arc;

use lettre::message::Mailbox;
use mail_parser::MimeHeaders;

use super::config::{Security, SmtpEndpoint};
use super::message::{build, thread_root, Rendered};
use crate::delivery::{ChartImage, Delivery};
use crate::job::Job;

fn endpoint(url: &str) -> Result<SmtpEndpoint, String> {
    SmtpEndpoint::parse(url).map_err(|(message, _)| message)
}

#[test]
fn smtp_urls_choose_tls_as_written() {
    let e = endpoint("smtps://alice:s%40cret@mail.example.com").unwrap();
    assert_eq!(
        (e.security, e.port, e.user.as_deref()),
        (Security::Implicit, 465, Some("alice"))
    );
    assert_eq!(e.password.unwrap().expose(), "s@cret");

    let e = endpoint("smtp://mail.example.com:2587?tls=starttls").unwrap();
    assert_eq!((e.security, e.port), (Security::StartTls, 2587));

    let e = endpoint("smtp://127.0.0.1:2525").unwrap();
    assert_eq!((e.security, e.port), (Security::Plain, 2525));
    assert_eq!(endpoint("smtp://[::1]").unwrap().security, Security::Plain);
    assert_eq!(endpoint("smtp://localhost").unwrap().port, 25);
}

#[test]
fn plain_smtp_beyond_loopback_and_odd_urls_are_refused() {
    for (url, expect) in [
        ("smtp://mail.example.com", "only for loopback"),
        (
            "smtp://mail.example.com?tls=none",
            "tls=none is not supported",
        ),
        ("smtps://mail.example.com?tls=starttls", "already TLS"),
        ("smtp://127.0.0.1?pool=3", "unknown query parameter"),
        ("http://mail.example.com", "scheme `http`"),
        ("null", "not a URL"),
        ("smtp://:pw@127.0.0.1", "needs a user"),
    ] {
        let err = endpoint(url).unwrap_err();
        assert!(err.contains(expect), "{url}: {err}");
    }
}

#[test]
fn errors_and_display_never_show_the_password() {
    let e = endpoint("smtps://alice:hunter2@mail.example.com").unwrap();
    assert_eq!(e.to_string(), "smtps://alice:***@mail.example.com:465");
    let err = endpoint("smtps://alice:hunter2@mail example.com").unwrap_err();
    assert!(!err.contains("hunter2"), "{err}");
}

fn delivery(step: usize, charts: Vec<ChartImage>) -> Delivery {
    let job: Job = serde_json::from_str(
        r#"{"version":1,"id":"ag-7-1","alert":{"group_id":"ag-7","title":"Disk full"},
            "targets":[{"destination":"ops-mail"}]}"#,
    )
    .unwrap();
    Delivery::to_first_target(job)
        .at_step(step, 1, 0)
        .with_charts(charts)
}

fn rendered(html: &str) -> Rendered {
    Rendered {
        subject: "Disk\nfull".into(),
        text: "plain body".into(),
        html: html.into(),
    }
}

fn mailbox(s: &str) -> Mailbox {
    s.parse().unwrap()
}

#[test]
fn chart_is_inline_by_content_id_inside_multipart_related() {
    let png = vec![0x89, b'P', b'N', b'G', 1, 2, 3];
    let d = delivery(
        0,
        vec![ChartImage {
            title: "latency".into(),
            png: Some(Arc::new(png.clone())),
            ..ChartImage::default()
        }],
    );
    let cid = d.content_id(0);
    let html = format!("<img src=\"cid:{cid}\">");
    let message = build(
        &mailbox("fanout <alerts@example.com>"),
        &[mailbox("oncall@example.com")],
        &d,
        rendered(&html),
    )
    .unwrap();
    let bytes = message.formatted();
    let parsed = mail_parser::MessageParser::default()
        .parse(&bytes)
        .expect("parses as MIME");

    assert_eq!(parsed.subject(), Some("Disk full"));
    assert_eq!(parsed.body_text(0).as_deref(), Some("plain body"));
    assert!(parsed.body_html(0).unwrap().contains(&format!("cid:{cid}")));
    let image = parsed
        .parts
        .iter()
        .find(|p| p.content_type().is_some_and(|c| c.ctype() == "image"))
        .expect("an image part");
    assert_eq!(image.content_id(), Some(cid.as_str()));
    assert_eq!(image.contents(), png.as_slice());
    let raw = String::from_utf8_lossy(&bytes);
    assert!(raw.contains("Content-Type: multipart/related"), "{raw}");
    assert!(raw.contains("Content-Disposition: inline"), "{raw}");
    assert!(raw.contains("Auto-Submitted: auto-generated"), "{raw}");
}

#[test]
fn every_message_of_a_group_references_one_root_and_has_its_own_id() {
    let from = mailbox("alerts@example.com");
    let to = [mailbox("oncall@example.com")];
    let first = build(&from, &to, &delivery(0, vec![]), rendered("a")).unwrap();
    let second = build(&from, &to, &delivery(2, vec![]), rendered("b")).unwrap();
    let again = build(&from, &to, &delivery(0, vec![]), rendered("a")).unwrap();
    let parse = |m: &lettre::Message| {
        let bytes = m.formatted();
        let p = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        (
            p.message_id().map(str::to_string),
            p.in_reply_to().as_text().map(str::to_string),
            p.references().as_text().map(str::to_string),
        )
    };
    let root = thread_root("ag-7", "example.com");
    let root = root.trim_matches(|c| c == '<' || c == '>');
    let (id1, reply1, refs1) = parse(&first);
    let (id2, reply2, refs2) = parse(&second);
    assert_eq!(reply1.as_deref(), Some(root));
    assert_eq!(refs1.as_deref(), Some(root));
    assert_eq!(reply2.as_deref(), Some(root));
    assert_eq!(refs2.as_deref(), Some(root));
    assert_ne!(id1, id2);
    // A retry of the same delivery carries the same id, so a copy is dropped.
    assert_eq!(parse(&again).0, id1);
}
