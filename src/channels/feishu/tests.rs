//! Feishu: the signature, the card, the answers.

use std::sync::Arc;

use super::*;
use crate::channels::ChannelConfig;
use crate::delivery::ChartImage;

const HOOK: &str = "https://open.feishu.cn/open-apis/bot/v2/hook/0a1b2c3d-hook-secret";
const STORAGE: &str = "[storage]\nkind = \"internal\"\ndir = \"/tmp\"\nsigning_key = \"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\"\n\n[http]\npublic_url = \"https://fanout.example.com\"\n\n";

/// `printf '' | openssl dgst -sha256 -hmac "$TS\n$SECRET" -binary | base64`:
/// the string to sign is the key, the message empty.
#[test]
fn the_signature_is_keyed_by_timestamp_newline_secret_over_nothing() {
    assert_eq!(sign("SECfeishu0123", 1_764_489_600), "88jbCo2otCsbyGL0ZTIbSoEsqIZ8puyY4OU8Z7TzwXs=");
}

fn sender(extra: &str) -> FeishuSender {
    let text = format!("{STORAGE}[destinations.fs]\nchannel = \"feishu\"\nwebhook_url = \"{HOOK}\"\n{extra}");
    let config = crate::config::Config::parse(&text, "test", std::rc::Rc::new(|_| None)).unwrap_or_else(|e| panic!("{e}"));
    let ChannelConfig::Feishu(c) = &config.destinations["fs"].channel else {
        panic!("a feishu destination")
    };
    let ctx = BuildContext {
        templates: Arc::new(crate::channels::default_templates(chrono_tz::Asia::Shanghai)),
    };
    FeishuSender::new("fs", c, &ctx).unwrap()
}

fn delivery(message: &str) -> Delivery {
    let mut job: crate::job::Job = serde_json::from_str(
        r#"{"version":1,"id":"j-1","alert":{"group_id":"g","title":"磁盘满","severity":"critical",
            "started_at":"2026-11-23T01:02:03Z","labels":{"host":"db1"}},"targets":[{"destination":"fs"}]}"#,
    )
    .unwrap();
    job.alert.message = message.to_string();
    Delivery::to_first_target(job).with_charts(vec![ChartImage {
        title: "disk".into(),
        png: Some(Arc::new(vec![0x89, b'P', b'N', b'G'])),
        url: Some("https://fanout.example.com/images/a.png?sig=1".into()),
        link: Some("https://grafana.example.com/d/x".into()),
        ..Default::default()
    }])
}

#[test]
fn with_an_app_the_chart_is_an_image_in_the_card_and_without_one_a_button() {
    let with_app = sender("app_id = \"cli_a1\"\napp_secret = \"app-secret-value\"\n").request(&delivery("x")).unwrap();
    let elements = with_app.card["elements"].as_array().unwrap();
    assert_eq!(with_app.card["header"]["template"], "red");
    assert_eq!(with_app.card["header"]["title"]["content"], "[CRITICAL] 磁盘满");
    assert!(elements[0]["text"]["content"].as_str().unwrap().contains("2026-11-23 09:02:03 CST"));
    assert_eq!(elements[1]["fields"][0]["text"]["content"], "**host**\ndb1");
    assert_eq!(elements[2]["tag"], "img");
    assert_eq!(with_app.uploads.len(), 1);
    let keyed = with_keys(&with_app.card, &["img_v2_abc".into()]);
    assert_eq!(keyed["elements"][2]["img_key"], "img_v2_abc");

    let without = sender("").request(&delivery("x")).unwrap();
    assert!(without.uploads.is_empty());
    let buttons = without.card["elements"].as_array().unwrap().last().unwrap()["actions"].clone();
    assert_eq!(buttons[0]["text"]["content"], "Chart: disk");
    assert_eq!(buttons[0]["url"], "https://fanout.example.com/images/a.png?sig=1");
}

#[test]
fn a_long_message_is_cut_so_the_card_fits() {
    let r = sender("").request(&delivery(&"告警\"引号\"".repeat(10_000))).unwrap();
    assert!(r.card.to_string().len() <= CARD_MAX_BYTES, "{}", r.card.to_string().len());
    assert!(r.card["elements"][0]["text"]["content"].as_str().unwrap().contains("…(truncated)"));
}

#[test]
fn its_codes_are_delivered_retried_or_permanent_with_a_hint() {
    let judge = |v: Value| judge(&v, "feishu").map_err(|e| (e.is_retryable(), e.reason, e.to_string()));
    assert!(judge(json!({"code": 0, "msg": "success", "data": {}})).is_ok());
    assert!(judge(json!({"StatusCode": 0, "StatusMessage": "success"})).is_ok());
    assert_eq!(judge(json!({"code": 9499, "msg": "too many request"})).unwrap_err().1, Reason::RateLimited);
    assert!(judge(json!({"code": 11232, "msg": "frequency limited"})).unwrap_err().0);
    for code in [19021, 19022, 19024] {
        let (retry, reason, text) = judge(json!({"code": code, "msg": "x"})).unwrap_err();
        assert_eq!((retry, reason), (false, Reason::Auth));
        assert!(text.contains("("), "a hint: {text}");
    }
    assert!(judge(json!({"unexpected": true})).unwrap_err().0);
}

#[test]
fn without_an_app_a_feishu_destination_needs_storage() {
    let e = crate::config::Config::parse(
        &format!("[destinations.fs]\nchannel = \"feishu\"\nwebhook_url = \"{HOOK}\"\n"),
        "t",
        std::rc::Rc::new(|_| None),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("destinations.fs.app_id: this sends the chart as a link"), "{e}");
    let e = crate::config::Config::parse(
        &format!("[destinations.fs]\nchannel = \"feishu\"\nwebhook_url = \"{HOOK}\"\napp_secret = \"s\"\n"),
        "t",
        std::rc::Rc::new(|_| None),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("destinations.fs.app_id: is required with app_secret"), "{e}");
    assert!(!e.contains("hook-secret"), "{e}");
}
