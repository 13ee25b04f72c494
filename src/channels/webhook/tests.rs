//! Webhook unit tests: the request as built. Sending to a real HTTP
//! receiver is tested in `tests/it/webhook.rs`.

use std::rc::Rc;
use std::sync::Arc;

use super::{sign, WebhookSender, DELIVERY_HEADER, SIGNATURE_HEADER};
use crate::channels::{BuildContext, ChannelConfig};
use crate::config::Config;
use crate::delivery::{ChartImage, Delivery};

fn sender(extra: &str) -> WebhookSender {
    let text = format!(
        "[destinations.hook]\nchannel = \"webhook\"\nurl = \"https://hooks.example.com/T1/key-123?token=abc\"\n{extra}"
    );
    let config = Config::parse(&text, "test", Rc::new(|_| None)).expect("config");
    let ChannelConfig::Webhook(c) = &config.destinations["hook"].channel else {
        panic!("a webhook destination")
    };
    let ctx = BuildContext {
        templates: Arc::new(crate::channels::default_templates(chrono_tz::UTC)),
    };
    WebhookSender::new("hook", c, &ctx).expect("sender")
}

fn delivery() -> Delivery {
    let job: crate::job::Job = serde_json::from_str(
        r#"{"version":1,"id":"j-9","alert":{"group_id":"g","title":"Disk \"/\" full","labels":{"host":"db1"}},
            "targets":[{"destination":"hook"}]}"#,
    )
    .unwrap();
    Delivery::to_first_target(job).with_charts(vec![ChartImage {
        title: "disk".into(),
        url: Some("https://fanout.example.com/images/x.png?sig=1".into()),
        ..ChartImage::default()
    }])
}

#[test]
fn the_body_is_json_with_the_alert_and_chart_urls() {
    let request = sender("").compose_at(&delivery(), 1_700_000_000).unwrap();
    let body: serde_json::Value = serde_json::from_slice(&request.body).expect("JSON body");
    assert_eq!(body["job_id"], "j-9");
    assert_eq!(body["alert"]["title"], "Disk \"/\" full");
    assert_eq!(body["alert"]["labels"]["host"], "db1");
    assert_eq!(
        body["charts"][0]["url"],
        "https://fanout.example.com/images/x.png?sig=1"
    );
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(request.headers[DELIVERY_HEADER], "j-9/0/hook");
    assert!(
        request.headers.get(SIGNATURE_HEADER).is_none(),
        "unsigned without a secret"
    );
}

#[test]
fn a_secret_signs_timestamp_and_body() {
    let request = sender("secret = \"0123456789abcdef-key\"\nheaders = { X-Team = \"ops\" }\n")
        .compose_at(&delivery(), 1_700_000_000)
        .unwrap();
    let expected = format!(
        "t=1700000000,v1={}",
        sign("0123456789abcdef-key", 1_700_000_000, &request.body)
    );
    assert_eq!(request.headers[SIGNATURE_HEADER], expected.as_str());
    assert_eq!(request.headers["x-team"], "ops");
    // Any change to the body breaks the signature.
    let mut tampered = request.body.clone();
    tampered[10] ^= 1;
    assert_ne!(
        sign("0123456789abcdef-key", 1_700_000_000, &tampered),
        expected[13..]
    );
}

#[test]
fn the_outbox_form_hides_keys_and_header_values() {
    let s = sender(
        "secret = \"0123456789abcdef-key\"\nheaders = { Authorization = \"Bearer tok-555\" }\n",
    );
    let request = s.compose_at(&delivery(), 1).unwrap();
    let text = String::from_utf8(s.outbox_json(&request)).unwrap();
    for secret in ["key-123", "token=abc", "tok-555", "0123456789abcdef-key"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["url"], "https://hooks.example.com/…");
    assert_eq!(doc["headers"]["authorization"], "***");
    assert_eq!(doc["body"]["job_id"], "j-9");
}

#[test]
fn bad_settings_are_refused_at_load() {
    let text = "[destinations.hook]\nchannel = \"webhook\"\nurl = \"null\"\nsecret = \"short\"\n\
                headers = { \"Bad Name\" = \"x\" }\n";
    let err = Config::parse(text, "test", Rc::new(|_| None))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("destinations.hook.url: is \"null\", not a URL"),
        "{err}"
    );
    assert!(
        err.contains("destinations.hook.headers.Bad Name: is not a valid header name"),
        "{err}"
    );
    assert!(
        err.contains("destinations.hook.secret: is 5 bytes"),
        "{err}"
    );
}
