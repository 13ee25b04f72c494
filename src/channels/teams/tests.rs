//! Teams: the card, under the message size.

use std::sync::Arc;

use super::*;
use crate::channels::ChannelConfig;
use crate::delivery::ChartImage;

const URL: &str = "https://prod-01.westeurope.logic.azure.com:443/workflows/abc123/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=SIG-secret-value";

fn sender() -> TeamsSender {
    let text = format!(
        "[storage]\nkind = \"internal\"\ndir = \"/tmp\"\nsigning_key = \"{}\"\n\n[http]\npublic_url = \"https://fanout.example.com\"\n\n\
         [destinations.ms]\nchannel = \"teams\"\nwebhook_url = \"{URL}\"\n",
        "k".repeat(32)
    );
    let config = crate::config::Config::parse(&text, "test", std::rc::Rc::new(|_| None))
        .unwrap_or_else(|e| panic!("{e}"));
    let ChannelConfig::Teams(c) = &config.destinations["ms"].channel else {
        panic!("a teams destination")
    };
    let ctx = BuildContext {
        templates: Arc::new(crate::channels::default_templates(chrono_tz::UTC)),
    };
    TeamsSender::new("ms", c, &ctx).unwrap()
}

fn delivery(message: &str) -> Delivery {
    let mut job: crate::job::Job = serde_json::from_str(
        r#"{"version":1,"id":"j-1","alert":{"group_id":"g","title":"Disk full","severity":"critical",
            "started_at":"2026-11-23T01:02:03Z","labels":{"host":"db1"}},"targets":[{"destination":"ms"}]}"#,
    )
    .unwrap();
    job.alert.message = message.to_string();
    Delivery::to_first_target(job)
        .with_charts(vec![ChartImage {
            title: "disk".into(),
            url: Some("https://fanout.example.com/images/a.png?sig=1".into()),
            link: Some("https://grafana.example.com/d/x".into()),
            ..Default::default()
        }])
        .with_actions(crate::delivery::ActionUrls {
            acknowledge: "https://fanout.example.com/a".into(),
            resolve: "https://fanout.example.com/r".into(),
            silence_1h: "https://fanout.example.com/s".into(),
        })
}

#[test]
fn the_card_shows_the_chart_by_url_the_facts_and_the_buttons() {
    let m = sender().message(&delivery("disk at 95%")).unwrap();
    let card = &m["attachments"][0]["content"];
    assert_eq!(m["attachments"][0]["contentType"], "application/vnd.microsoft.card.adaptive");
    assert_eq!(card["version"], CARD_VERSION);
    assert_eq!(card["body"][0]["text"], "[CRITICAL] Disk full");
    assert_eq!(card["body"][0]["color"], "Attention");
    let facts = card["body"][1]["facts"].as_array().unwrap();
    assert!(facts.iter().any(|f| f["title"] == "Started" && f["value"] == "2026-11-23 01:02:03 UTC"));
    assert!(facts.iter().any(|f| f["title"] == "host" && f["value"] == "db1"));
    assert_eq!(card["body"][2]["text"], "disk at 95%");
    assert_eq!(card["body"][3]["type"], "Image");
    assert_eq!(card["body"][3]["url"], "https://fanout.example.com/images/a.png?sig=1");
    let titles: Vec<&str> = card["actions"].as_array().unwrap().iter().map(|a| a["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["Panel: disk", "Acknowledge", "Resolve", "Silence 1h"]);
}

#[test]
fn a_long_message_is_cut_so_the_card_fits_and_the_rest_stays() {
    let m = sender().message(&delivery(&"\"引号\"与反斜杠\\".repeat(5_000))).unwrap();
    assert!(m.to_string().len() <= MESSAGE_MAX_BYTES, "{}", m.to_string().len());
    let card = &m["attachments"][0]["content"];
    assert!(card["body"][2]["text"].as_str().unwrap().contains("…(truncated)"));
    assert_eq!(card["body"][3]["type"], "Image");
    assert_eq!(card["actions"].as_array().unwrap().len(), 4);
}

#[test]
fn a_teams_url_is_checked_without_quoting_its_signature() {
    for bad in [
        "https://prod-01.westeurope.logic.azure.com/workflows/abc/invoke?api-version=1",
        "https://outlook.office.com/webhook/abc?sig=SIG-secret-value",
    ] {
        let e = config::parse_webhook_url(bad).unwrap_err();
        assert!(!e.contains("SIG-secret"), "{e}");
    }
    assert!(!format!("{:?}", sender().config).contains("SIG-secret"));
}
