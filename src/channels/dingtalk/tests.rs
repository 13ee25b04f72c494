//! DingTalk: the signature, the answers, the message.

use std::sync::Arc;

use serde_json::Value;

use super::*;
use crate::channels::ChannelConfig;
use crate::delivery::{ChartImage, Class};

/// Computed independently:
/// `printf '%s' "$TS\n$SECRET" | openssl dgst -sha256 -hmac "$SECRET" -binary | base64`.
const SIGNED: &str = "hY/Pxa3s1epIC2OpEH9n6o3AWwURYtqTeNnksVcGNhY=";

#[test]
fn the_signature_is_base64_hmac_sha256_of_timestamp_newline_secret() {
    assert_eq!(sign("SECtest0123456789abcdef", 1_764_489_600_000), SIGNED);
}

fn class(errcode: i64) -> Result<(), (bool, Reason)> {
    let body = format!(r#"{{"errcode":{errcode},"errmsg":"x token-abc x"}}"#);
    judge(body.as_bytes(), "dingtalk", "token-abc")
        .map_err(|e| (e.is_retryable(), e.reason))
}

#[test]
fn its_errcodes_are_delivered_retried_or_permanent_and_never_quote_the_token() {
    assert_eq!(class(0), Ok(()));
    assert_eq!(class(-1), Err((true, Reason::Server)));
    assert_eq!(class(130101), Err((true, Reason::RateLimited)));
    assert_eq!(class(310000), Err((false, Reason::Auth)));
    assert_eq!(class(300001), Err((false, Reason::Auth)));
    assert_eq!(class(40035), Err((false, Reason::Client)));
    let e = judge(br#"{"errcode":310000,"errmsg":"sign not match, token-abc"}"#, "d", "token-abc")
        .unwrap_err();
    assert!(!e.to_string().contains("token-abc"), "{e}");
    assert!(e.to_string().contains("keyword"), "a hint: {e}");
    let e = judge(b"<html>", "d", "t").unwrap_err();
    assert!(matches!(e.class, Class::Retry { .. }));
}

fn sender(extra: &str) -> DingtalkSender {
    let text = format!(
        "[storage]\nkind = \"internal\"\ndir = \"/tmp\"\nsigning_key = \"{}\"\n\n\
         [http]\npublic_url = \"https://fanout.example.com\"\n\n\
         [destinations.dd]\nchannel = \"dingtalk\"\n\
         webhook_url = \"https://oapi.dingtalk.com/robot/send?access_token=token-abc\"\n{extra}",
        "k".repeat(32)
    );
    let config = crate::config::Config::parse(&text, "test", std::rc::Rc::new(|_| None))
        .unwrap_or_else(|e| panic!("{e}"));
    let ChannelConfig::Dingtalk(c) = &config.destinations["dd"].channel else {
        panic!("a dingtalk destination")
    };
    let ctx = BuildContext {
        templates: Arc::new(crate::channels::default_templates(chrono_tz::Asia::Shanghai)),
    };
    DingtalkSender::new("dd", c, &ctx).unwrap()
}

fn delivery(message: &str) -> Delivery {
    let mut job: crate::job::Job = serde_json::from_str(
        r#"{"version":1,"id":"j-1","alert":{"group_id":"g","title":"磁盘满 db1","severity":"critical",
            "started_at":"2026-11-23T01:02:03Z","labels":{"host":"db1"}},"targets":[{"destination":"dd"}]}"#,
    )
    .unwrap();
    job.alert.message = message.to_string();
    Delivery::to_first_target(job).with_charts(vec![ChartImage {
        title: "disk".into(),
        url: Some("https://fanout.example.com/images/a.png?sig=1".into()),
        link: Some("https://grafana.example.com/d/x?viewPanel=2".into()),
        ..Default::default()
    }])
}

#[test]
fn the_markdown_shows_the_chart_by_its_url_and_mentions_in_text_and_at() {
    let s = sender("mentioned_list = [\"@all\", \"u-1\"]\nmentioned_mobile_list = [\"13800001111\"]\n");
    let m = s.message(&delivery("归档日志占满数据盘"), &DingtalkTarget::default()).unwrap();
    assert_eq!(m["msgtype"], "markdown");
    assert_eq!(m["markdown"]["title"], "[CRITICAL] 磁盘满 db1");
    let text = m["markdown"]["text"].as_str().unwrap();
    assert!(text.contains("![disk](https://fanout.example.com/images/a.png?sig=1)"), "{text}");
    assert!(text.contains("2026-11-23 09:02:03 CST"), "{text}");
    assert!(text.ends_with("@13800001111 @u-1"), "{text}");
    assert_eq!(m["at"]["atMobiles"][0], "13800001111");
    assert_eq!(m["at"]["atUserIds"][0], "u-1");
    assert_eq!(m["at"]["isAtAll"], true);
    // A target's own list replaces the destination's.
    let target = DingtalkTarget {
        mentioned_list: Some(vec!["u-2".into()]),
        mentioned_mobile_list: Some(vec![]),
    };
    let m = s.message(&delivery(""), &target).unwrap();
    assert_eq!(m["at"]["atUserIds"], serde_json::json!(["u-2"]));
    assert_eq!(m["at"]["isAtAll"], false);
}

#[test]
fn a_long_multibyte_message_is_cut_on_a_character_and_the_links_stay() {
    let s = sender("mentioned_mobile_list = [\"13800001111\"]\n");
    let m = s.message(&delivery(&"数据盘已满，请清理。".repeat(2_000)), &DingtalkTarget::default()).unwrap();
    let text = m["markdown"]["text"].as_str().unwrap();
    assert!(text.len() <= MARKDOWN_MAX_BYTES, "{}", text.len());
    assert!(text.contains("…(truncated)"));
    assert!(text.contains("![disk](https://fanout.example.com/images/a.png?sig=1)"));
    assert!(text.ends_with("@13800001111"));
    let _: Value = m;
}

#[test]
fn a_dingtalk_destination_needs_storage_and_a_real_secret() {
    let base = "[destinations.dd]\nchannel = \"dingtalk\"\nwebhook_url = \"https://oapi.dingtalk.com/robot/send?access_token=token-abc\"\n";
    let e = crate::config::Config::parse(base, "t", std::rc::Rc::new(|_| None))
        .unwrap_err()
        .to_string();
    assert!(e.contains("destinations.dd.channel: this sends the chart as a link"), "{e}");
    let e = crate::config::Config::parse(
        &format!("{base}secret = \"not-a-sec\"\n"),
        "t",
        std::rc::Rc::new(|_| None),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("destinations.dd.secret: is not a DingTalk signing secret"), "{e}");
    let e = crate::config::Config::parse(
        "[destinations.dd]\nchannel = \"dingtalk\"\nwebhook_url = \"https://oapi.dingtalk.com/robot/send?x=token-abc\"\n",
        "t",
        std::rc::Rc::new(|_| None),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("no `access_token`") && !e.contains("token-abc"), "{e}");
}
