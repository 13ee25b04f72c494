//! A storm on a rate-limited chat bot becomes a digest, not a silent
//! drop: 300 alerts to a DingTalk robot limited (as DingTalk limits it) to
//! its rate, with the clock compressed so the test is short: 20 messages
//! per 10 s instead of per minute, `digest_after = "2s"`. The robot (the
//! fake, which enforces the window) gets the first 20 at once and, in the
//! next window, one digest of the other 280; every alert is accounted for
//! once, in a message or in the digest.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use fanout::config::Config;
use fanout::delivery::Delivery;
use fanout::destinations::Destinations;
use fanout::job::{Job, Target};
use fanout::pipeline::Pipeline;

use crate::support::dingtalk::FakeDingtalk;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_past_the_bots_quota_arrives_as_its_first_messages_and_one_digest() {
    const ALERTS: usize = 300;
    let robot = FakeDingtalk::start(None, 20, Duration::from_secs(10));
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[store]\nurl = \"sqlite://{}\"\n\n\
         [storage]\nkind = \"internal\"\ndir = \"{}\"\nsigning_key = \"{}\"\n\n\
         [http]\npublic_url = \"https://fanout.example.com\"\n\n\
         [destinations.dd]\nchannel = \"dingtalk\"\nwebhook_url = \"{}\"\nrate = \"20/10s\"\ndigest_after = \"2s\"\n",
        dir.path().join("state.db").display(),
        dir.path().join("images").display(),
        "k".repeat(32),
        robot.url()
    );
    let config =
        Config::parse(&text, "digest", Rc::new(|_| None)).unwrap_or_else(|e| panic!("{e}"));
    let destinations = Destinations::build(&config, None).expect("destinations");
    let store = fanout::store::Store::open(&config.store.as_ref().expect("[store]").url)
        .await
        .expect("the store");
    let pipeline = Pipeline {
        destinations: &destinations,
        store: Some(&store),
        actions: None,
        metrics: None,
    };
    let severities = ["critical", "error", "warning", "info"];
    let deliveries: Vec<Delivery> = (0..ALERTS)
        .map(|i| {
            let job: Job = serde_json::from_value(serde_json::json!({
                "version": 1, "id": format!("storm-{i}"),
                "alert": {"group_id": format!("g-{}", i % 7), "title": format!("Disk full on host-{}", i % 7),
                          "severity": severities[i % 7 % 4]},
                "targets": [{"destination": "dd"}]
            }))
            .unwrap();
            Delivery::new(Arc::new(job), Target::to("dd"))
        })
        .collect();
    let outcomes = tokio::time::timeout(
        Duration::from_secs(60),
        futures::future::join_all(deliveries.into_iter().map(|d| pipeline.deliver(d))),
    )
    .await
    .expect("every delivery settles within a minute");

    // Every alert accounted for once: sent, or folded into the digest.
    let details: Vec<String> = outcomes
        .iter()
        .map(|o| {
            o.result
                .as_ref()
                .map(|s| s.detail.clone())
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    let folded = details
        .iter()
        .filter(|d| *d == "folded into the digest")
        .count();
    assert_eq!(folded, ALERTS - 21, "{details:?}");
    // The robot: 20 in the first window, then the digest; never refused.
    let requests = robot.requests();
    assert!(
        requests.iter().all(|r| r.errcode == 0),
        "the quota was never hit"
    );
    let messages = robot.messages();
    assert_eq!(messages.len(), 21);
    let digest = messages
        .iter()
        .find(|m| {
            m["markdown"]["title"]
                .as_str()
                .unwrap()
                .contains("alerts in")
        })
        .expect("the digest");
    let title = digest["markdown"]["title"].as_str().unwrap();
    assert!(title.contains("280 alerts in 7 groups"), "{title}");
    let text = digest["markdown"]["text"].as_str().unwrap();
    for host in 0..7 {
        assert!(
            text.contains(&format!("Disk full on host-{host} ×")),
            "{text}"
        );
    }
    // The most severe first.
    assert!(
        text.find("[CRITICAL]").unwrap() < text.find("[INFO]").unwrap(),
        "{text}"
    );
    // A repeat of the storm is not sent again: the log has each alert.
    let again = pipeline
        .deliver(Delivery::new(
            Arc::new(
                serde_json::from_value(serde_json::json!({
                    "version": 1, "id": "storm-299", "alert": {"group_id": "g-5", "title": "x"},
                    "targets": [{"destination": "dd"}]
                }))
                .unwrap(),
            ),
            Target::to("dd"),
        ))
        .await;
    assert!(again.result.unwrap().detail.contains("notification log"));
}
