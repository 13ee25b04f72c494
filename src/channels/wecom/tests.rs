//! WeCom unit tests: the messages as built, and the bot's answers as
//! judged. Posting to a fake bot that checks them as WeCom documents is
//! tested in `tests/it/chat.rs`.

use std::rc::Rc;
use std::sync::Arc;

use base64::Engine;
use md5::{Digest, Md5};
use serde_json::Value;

use super::{judge, WecomSender, IMAGE_MAX_BYTES, MARKDOWN_MAX_BYTES};
use crate::channels::{BuildContext, ChannelConfig, ChannelSpec};
use crate::config::Config;
use crate::delivery::{ChartImage, Delivery, Reason};

const KEY: &str = "5a1c0e8e-key-of-the-bot";

/// News mode, with the storage its chart links need.
const NEWS: &str = "mode = \"news\"\n[http]\npublic_url = \"https://fanout.example.com\"\n\
    [storage]\nkind = \"internal\"\nsigning_key = \"0123456789abcdef0123456789abcdef\"\n";

fn config(extra: &str) -> super::WecomConfig {
    let text = format!(
        "[destinations.wx]\nchannel = \"wecom\"\nwebhook_url = \"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}\"\n{extra}"
    );
    let config = Config::parse(&text, "test", Rc::new(|_| None)).expect("config");
    let ChannelConfig::Wecom(c) = &config.destinations["wx"].channel else {
        panic!("a wecom destination")
    };
    c.clone()
}

fn sender(extra: &str) -> WecomSender {
    let ctx = BuildContext {
        templates: Arc::new(crate::channels::default_templates(chrono_tz::Asia::Shanghai)),
    };
    WecomSender::new("wx", &config(extra), &ctx).expect("sender")
}

fn delivery(message: &str, charts: Vec<ChartImage>, target_extra: &str) -> Delivery {
    let job: crate::job::Job = serde_json::from_str(&format!(
        r#"{{"version":1,"id":"j-1","alert":{{"group_id":"g","title":"CPU 使用率过高","severity":"critical",
            "started_at":"2026-11-23T01:02:03Z","message":{message},"labels":{{"host":"db1"}}}},
            "targets":[{{"destination":"wx"{target_extra}}}]}}"#,
        message = serde_json::to_string(message).unwrap()
    ))
    .unwrap();
    Delivery::to_first_target(job).with_charts(charts)
}

fn chart(png: Vec<u8>) -> ChartImage {
    ChartImage {
        title: "CPU".into(),
        png: Some(Arc::new(png)),
        url: Some("https://fanout.example.com/images/k.png?exp=1&sig=2".into()),
        link: Some("https://grafana.example.com/d/abc?viewPanel=2".into()),
        ..ChartImage::default()
    }
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(3);
    let picture = image::RgbImage::from_fn(width, height, |_, _| {
        image::Rgb([rng.u8(..), rng.u8(..), rng.u8(..)])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(picture)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

fn content(message: &Value) -> &str {
    message["markdown"]["content"].as_str().unwrap()
}

#[test]
fn markdown_then_the_chart_as_an_image_whose_md5_matches() {
    let picture = png(40, 20);
    let d = delivery("load 9.5", vec![chart(picture.clone())], "");
    let messages = sender("").messages(&d, &overrides(&d)).unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["msgtype"], "markdown");
    let text = content(&messages[0]);
    assert!(
        text.contains("CPU 使用率过高") && text.contains("CRITICAL"),
        "{text}"
    );
    assert!(
        text.contains("2026-11-23 09:02:03 CST"),
        "started in the configured zone: {text}"
    );
    assert!(
        text.contains("host: <font color=\"comment\">db1</font>"),
        "{text}"
    );
    assert!(
        text.contains("[Panel: CPU](https://grafana.example.com/d/abc?viewPanel=2)"),
        "{text}"
    );
    assert_eq!(messages[1]["msgtype"], "image");
    let b64 = messages[1]["image"]["base64"].as_str().unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    assert_eq!(bytes, picture);
    assert_eq!(
        messages[1]["image"]["md5"],
        hex::encode(Md5::digest(&bytes))
    );
    assert_eq!(config("").messages(1, &overrides(&d)), 2);
}

#[test]
fn long_multibyte_markdown_is_cut_on_a_character_with_the_mentions_kept() {
    // 3-byte characters, so 4096 bytes falls inside one at most offsets.
    for extra in 0..3 {
        let message = format!("{}{}", "x".repeat(extra), "告".repeat(3000));
        let d = delivery(
            &message,
            vec![],
            r#","mentioned_list":["zhangsan","@all"],"mentioned_mobile_list":["13800001111"]"#,
        );
        let messages = sender("").messages(&d, &overrides(&d)).unwrap();
        let text = content(&messages[0]);
        assert!(text.len() <= MARKDOWN_MAX_BYTES, "{} bytes", text.len());
        assert!(
            text.len() > MARKDOWN_MAX_BYTES - 3,
            "filled: {} bytes",
            text.len()
        );
        assert!(text.contains("…(truncated)"));
        assert!(
            text.ends_with("<@zhangsan>"),
            "the mention survives the cut"
        );
        // @all and mobiles need a text message; they are not in the markdown.
        assert!(!text.contains("<@@all>"));
        let last = messages.last().unwrap();
        assert_eq!(last["msgtype"], "text");
        assert_eq!(last["text"]["mentioned_list"], serde_json::json!(["@all"]));
        assert_eq!(
            last["text"]["mentioned_mobile_list"],
            serde_json::json!(["13800001111"])
        );
        assert_eq!(config("").messages(0, &overrides(&d)), 2);
    }
}

#[test]
fn a_chart_over_2_mb_is_made_to_fit() {
    let big = png(1100, 1000);
    assert!(big.len() > IMAGE_MAX_BYTES, "fixture {} bytes", big.len());
    let d = delivery("", vec![chart(big)], "");
    let messages = sender("").messages(&d, &overrides(&d)).unwrap();
    let b64 = messages[1]["image"]["base64"].as_str().unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    assert!(bytes.len() <= IMAGE_MAX_BYTES, "{} bytes", bytes.len());
    assert_eq!(
        messages[1]["image"]["md5"],
        hex::encode(Md5::digest(&bytes))
    );
    assert!(image::load_from_memory(&bytes).is_ok(), "still a PNG");
}

#[test]
fn news_mode_is_one_card_with_the_chart_url_as_its_picture() {
    let d = delivery(&"详".repeat(400), vec![chart(png(10, 10))], "");
    let messages = sender(NEWS).messages(&d, &overrides(&d)).unwrap();
    assert_eq!(messages.len(), 1);
    let article = &messages[0]["news"]["articles"][0];
    assert_eq!(
        article["picurl"],
        "https://fanout.example.com/images/k.png?exp=1&sig=2"
    );
    assert_eq!(
        article["url"],
        "https://grafana.example.com/d/abc?viewPanel=2"
    );
    assert!(article["title"]
        .as_str()
        .unwrap()
        .starts_with("[FIRING] CPU"));
    assert!(article["description"].as_str().unwrap().len() <= 512);
    assert_eq!(config(NEWS).messages(1, &overrides(&d)), 1);
    // With no link, picture or source there is nothing to open: markdown.
    let bare = delivery("", vec![], "");
    assert_eq!(
        sender(NEWS).messages(&bare, &overrides(&bare)).unwrap()[0]["msgtype"],
        "markdown"
    );
}

#[test]
fn errcodes_are_judged_and_never_show_the_key() {
    let what = "wecom bot https://qyapi.weixin.qq.com/…";
    let answer = |code: i64, msg: &str| {
        judge(
            format!(r#"{{"errcode":{code},"errmsg":"{msg}"}}"#).as_bytes(),
            what,
            KEY,
        )
    };
    assert!(answer(0, "ok").is_ok());
    for (code, retryable, reason) in [
        (45009, true, Reason::RateLimited),
        (-1, true, Reason::Server),
        (93000, false, Reason::Auth),
        (40008, false, Reason::Client),
        (40058, false, Reason::Client),
    ] {
        let e = answer(code, &format!("bad, hint: [{KEY}]")).unwrap_err();
        assert_eq!((e.is_retryable(), e.reason), (retryable, reason), "{code}");
        assert!(
            e.message.contains(&format!("errcode {code}")),
            "{}",
            e.message
        );
        assert!(!e.message.contains(KEY), "{}", e.message);
    }
    assert!(judge(b"<html>gateway</html>", what, KEY)
        .unwrap_err()
        .is_retryable());
}

#[test]
fn debug_output_never_shows_the_key() {
    let shown = format!("{:?}", config(""));
    assert!(shown.contains("qyapi.weixin.qq.com"), "{shown}");
    assert!(!shown.contains(KEY), "{shown}");
}

/// The delivery's target overrides, as WeCom reads them.
fn overrides(d: &Delivery) -> super::WecomTarget {
    crate::channels::overrides(&d.target).expect("WeCom overrides")
}
