//! Telegram: the calls a delivery makes, the answers.

use std::sync::Arc;

use super::*;
use crate::channels::ChannelConfig;
use crate::delivery::ChartImage;

const TOKEN: &str = "123456789:AAE-secret_token_value_0123456789";

fn sender() -> TelegramSender {
    let text = format!(
        "[destinations.tg]\nchannel = \"telegram\"\nbot_token = \"{TOKEN}\"\nchat_id = \"-1001234567890\"\nmessage_thread_id = 7\n"
    );
    let config = crate::config::Config::parse(&text, "test", std::rc::Rc::new(|_| None))
        .unwrap_or_else(|e| panic!("{e}"));
    let ChannelConfig::Telegram(c) = &config.destinations["tg"].channel else {
        panic!("a telegram destination")
    };
    let ctx = BuildContext {
        templates: Arc::new(crate::channels::default_templates(chrono_tz::UTC)),
    };
    TelegramSender::new("tg", c, &ctx).unwrap()
}

fn delivery(title: &str, message: &str, charts: usize) -> Delivery {
    let mut job: crate::job::Job = serde_json::from_str(
        r#"{"version":1,"id":"j-1","alert":{"group_id":"g","title":"t","severity":"critical",
            "labels":{"host":"db1"}},"targets":[{"destination":"tg"}]}"#,
    )
    .unwrap();
    job.alert.title = title.to_string();
    job.alert.message = message.to_string();
    let charts = (0..charts)
        .map(|i| ChartImage {
            title: format!("panel {i}"),
            png: Some(Arc::new(vec![0x89, b'P', b'N', b'G', i as u8])),
            link: Some("https://grafana.example.com/d/x".into()),
            ..Default::default()
        })
        .collect();
    Delivery::to_first_target(job).with_charts(charts)
}

#[test]
fn a_short_alert_is_one_captioned_photo_and_its_text_is_escaped_html() {
    let r = sender().request(&delivery("CPU <high> & rising", "", 1), &TelegramTarget::default()).unwrap();
    assert_eq!(r.chat_id, "-1001234567890");
    assert_eq!(r.topic, Some(7));
    let [Call::Photo { caption, .. }] = r.calls.as_slice() else {
        panic!("one photo: {:?}", r.calls)
    };
    assert!(caption.starts_with("🔴 <b>[CRITICAL] CPU &lt;high&gt; &amp; rising</b>"), "{caption}");
    assert!(caption.contains("<b>host</b>: db1"), "{caption}");
}

#[test]
fn a_long_alert_captions_the_album_with_its_heading_and_follows_with_the_text() {
    let r = sender()
        .request(&delivery("Disk full", &"磁盘已满，请清理。".repeat(1_000), 3), &TelegramTarget::default())
        .unwrap();
    let [Call::Album { caption, pngs }, Call::Message { text }] = r.calls.as_slice() else {
        panic!("an album and a text: {:?}", r.calls)
    };
    assert_eq!(pngs.len(), 3);
    assert_eq!(caption, "🔴 <b>[CRITICAL] Disk full</b>");
    assert!(text.chars().count() <= TEXT_MAX_CHARS);
    assert!(text.contains("…(truncated)"));
    // minijinja's HTML escaping writes `/` as `&#x2f;`, a numeric entity
    // Telegram's HTML mode decodes.
    assert!(
        text.contains("<a href=\"https:&#x2f;&#x2f;grafana.example.com&#x2f;d&#x2f;x\">Panel: panel 2</a>"),
        "{text}"
    );
    // No chart: one message; a target's chat and topic.
    let target = TelegramTarget { chat_id: Some("@ops_alerts".into()), message_thread_id: Some(9) };
    let r = sender().request(&delivery("x", "", 0), &target).unwrap();
    assert!(matches!(r.calls.as_slice(), [Call::Message { .. }]));
    assert_eq!((r.chat_id.as_str(), r.topic), ("@ops_alerts", Some(9)));
}

#[test]
fn its_answers_are_retried_after_what_it_asks_or_permanent_with_a_hint() {
    let judge = |status: u16, body: &str| judge(status, body.as_bytes(), "telegram");
    assert_eq!(judge(200, r#"{"ok":true,"result":{"message_id":42}}"#).unwrap(), 42);
    assert_eq!(judge(200, r#"{"ok":true,"result":[{"message_id":43},{"message_id":44}]}"#).unwrap(), 43);
    let e = judge(429, r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 5","parameters":{"retry_after":5}}"#).unwrap_err();
    assert_eq!(e.class, Class::Retry { after: Some(Duration::from_secs(5)) });
    let e = judge(400, r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#).unwrap_err();
    assert_eq!((e.is_retryable(), e.reason), (false, Reason::Client));
    assert!(e.to_string().contains("added to the chat"), "{e}");
    let e = judge(403, r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was kicked from the supergroup chat"}"#).unwrap_err();
    assert_eq!((e.is_retryable(), e.reason), (false, Reason::Auth));
    let e = judge(400, r#"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1009876543210}}"#).unwrap_err();
    assert!(e.to_string().contains("chat_id = \"-1009876543210\""), "{e}");
    assert!(judge(502, "<html>").unwrap_err().is_retryable());
}

#[test]
fn a_bad_token_or_chat_is_named_and_the_token_never_shown() {
    let e = crate::config::Config::parse(
        "[destinations.tg]\nchannel = \"telegram\"\nbot_token = \"12345:short-secretish\"\nchat_id = \"general\"\n",
        "t",
        std::rc::Rc::new(|_| None),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("destinations.tg.bot_token: is not a bot token"), "{e}");
    assert!(e.contains("destinations.tg.chat_id: \"general\" is not a chat id"), "{e}");
    assert!(!e.contains("short-secretish"), "{e}");
    assert!(!format!("{:?}", sender().config).contains("secret_token"));
}
