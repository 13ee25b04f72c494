//! Discord: the embed within its limits, the answers.

use std::sync::Arc;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;

use super::*;
use crate::channels::ChannelConfig;
use crate::delivery::ChartImage;

const URL: &str = "https://discord.com/api/webhooks/123456789012345678/tok-en_SECRET";

fn sender(extra: &str) -> DiscordSender {
    let text = format!("[destinations.dc]\nchannel = \"discord\"\nwebhook_url = \"{URL}\"\n{extra}");
    let config = crate::config::Config::parse(&text, "test", std::rc::Rc::new(|_| None))
        .unwrap_or_else(|e| panic!("{e}"));
    let ChannelConfig::Discord(c) = &config.destinations["dc"].channel else {
        panic!("a discord destination")
    };
    let ctx = BuildContext {
        templates: Arc::new(crate::channels::default_templates(chrono_tz::UTC)),
    };
    DiscordSender::new("dc", c, &ctx).unwrap()
}

fn delivery(message: &str, labels: usize, charts: usize) -> Delivery {
    let mut job: crate::job::Job = serde_json::from_str(
        r#"{"version":1,"id":"j-1","alert":{"group_id":"g","title":"Disk full on db1","severity":"error",
            "started_at":"2026-11-23T01:02:03Z","source_url":"https://grafana.example.com/d/x"},
            "targets":[{"destination":"dc"}]}"#,
    )
    .unwrap();
    job.alert.message = message.to_string();
    for i in 0..labels {
        job.alert.labels.insert(format!("label{i:02}"), "v".repeat(200));
    }
    let png = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/chart.png")).unwrap();
    let charts = (0..charts)
        .map(|i| ChartImage {
            title: format!("panel {i}"),
            png: Some(Arc::new(png.clone())),
            ..Default::default()
        })
        .collect();
    Delivery::to_first_target(job).with_charts(charts)
}

fn total(payload: &Value) -> usize {
    let count = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
    payload["embeds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            count(&e["title"])
                + count(&e["description"])
                + e["fields"].as_array().map_or(0, |f| {
                    f.iter().map(|f| count(&f["name"]) + count(&f["value"])).sum()
                })
        })
        .sum()
}

#[test]
fn the_embed_shows_the_chart_by_attachment_and_stays_within_every_limit() {
    let s = sender("username = \"fanout\"\n");
    let r = s
        .request(&delivery(&"磁盘已满，请清理。".repeat(1_000), 40, 2), &DiscordTarget::default())
        .unwrap();
    let p = &r.payload;
    assert_eq!(p["username"], "fanout");
    assert_eq!(p["allowed_mentions"]["parse"], serde_json::json!([]));
    assert_eq!(p["embeds"][0]["title"], "[ERROR] Disk full on db1");
    assert_eq!(p["embeds"][0]["color"], 0xe65100);
    assert_eq!(p["embeds"][0]["image"]["url"], "attachment://chart0.png");
    assert_eq!(p["embeds"][1]["image"]["url"], "attachment://chart1.png");
    assert_eq!(p["attachments"][1]["filename"], "chart1.png");
    assert_eq!(r.files.len(), 2);
    assert_eq!(r.files[0].0, "chart0.png");
    assert_eq!(p["embeds"][0]["fields"].as_array().unwrap().len(), FIELDS_MAX);
    let description = p["embeds"][0]["description"].as_str().unwrap();
    assert!(description.chars().count() <= DESCRIPTION_MAX);
    assert!(description.contains("…(truncated)"), "{description}");
    assert!(total(p) <= EMBED_TOTAL_MAX, "{}", total(p));
    assert_eq!(r.thread_id, None);
    let r = s
        .request(&delivery("", 0, 0), &DiscordTarget { thread_id: Some("42".into()) })
        .unwrap();
    assert_eq!(r.thread_id.as_deref(), Some("42"));
    assert!(r.payload["embeds"][0].get("image").is_none());
}

#[test]
fn its_answers_are_retried_after_what_discord_asks_or_permanent_with_a_hint() {
    let judge = |code: u16, body: &str| {
        judge(StatusCode::from_u16(code).unwrap(), &HeaderMap::new(), body.as_bytes(), "discord")
    };
    assert!(judge(200, "{}").is_ok());
    let e = judge(429, r#"{"message":"You are being rate limited.","retry_after":1.5,"global":false}"#)
        .unwrap_err();
    assert_eq!(e.class, Class::Retry { after: Some(Duration::from_millis(1_500)) });
    assert_eq!(e.reason, Reason::RateLimited);
    let e = judge(404, r#"{"message":"Unknown Webhook","code":10015}"#).unwrap_err();
    assert_eq!((e.is_retryable(), e.reason), (false, Reason::Auth));
    assert!(e.to_string().contains("Unknown Webhook (code 10015)"), "{e}");
    let e = judge(400, r#"{"message":"Invalid Form Body","code":50035,"errors":{"embeds":{}}}"#).unwrap_err();
    assert_eq!((e.is_retryable(), e.reason), (false, Reason::Client));
    assert!(judge(502, "").unwrap_err().is_retryable());
}

#[test]
fn a_bad_webhook_url_or_thread_is_named_without_the_token() {
    for bad in [
        "https://discord.com/api/webhooks/123/",
        "https://discord.com/api/hooks/123/tok-en_SECRET",
        "https://discord.com/api/webhooks/abc/tok-en_SECRET",
        "https://discord.com/api/webhooks/123/tok-en_SECRET?thread_id=1",
    ] {
        let e = config::parse_webhook_url(bad).unwrap_err();
        assert!(!e.contains("SECRET"), "{e}");
    }
    let e = crate::config::Config::parse(
        &format!("[destinations.dc]\nchannel = \"discord\"\nwebhook_url = \"{URL}\"\nthread_id = \"t-1\"\n"),
        "t",
        std::rc::Rc::new(|_| None),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("destinations.dc.thread_id: is not a Discord id"), "{e}");
}
