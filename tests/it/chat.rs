//! The chat channels (WeCom group bots, PrometheusAlert, Slack) against
//! fake vendor servers that check every request as the vendor documents it
//! (`support/wecom.rs`, `support/prometheusalert.rs`, `support/slack/`):
//! the messages and uploads as sent, every error class, retries that
//! resume instead of posting twice, `fanout check`, secrets, rate limits
//! under a burst, and a job from RabbitMQ with a real chart to all four.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use fanout::config::Config;
use fanout::delivery::{ChartImage, Delivery};
use fanout::destinations::Destinations;
use fanout::job::Job;
use fanout::pipeline::Pipeline;
use mail_parser::MimeHeaders;

use crate::support::prometheusalert::FakePrometheusAlert;
use crate::support::slack::{FakeChannel, FakeSlack, SlackAnswer};
use crate::support::wecom::FakeWecom;
use crate::support::{fanout_in, fixture_png, wait_for, write_file};

const TOKEN: &str = "xoxb-test-1234-secret";
const CHANNEL: &str = "C0ALERTS";

/// The fields the sample templates in docs/prometheusalert.md read
/// (`.title`, `.actions.acknowledge`, …), so the docs and what fanout
/// sends cannot drift apart.
pub(crate) fn pa_paths() -> &'static [&'static str] {
    static PATHS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    PATHS.get_or_init(|| {
        let doc = std::fs::read_to_string(crate::support::repo().join("docs/prometheusalert.md"))
            .expect("docs/prometheusalert.md");
        let field = regex::Regex::new(r"[\s(]\.([a-z_]+(?:\.[a-z_0-9]+)*)").unwrap();
        let mut paths: Vec<&'static str> = doc
            .split("```gotemplate")
            .skip(1)
            .filter_map(|block| block.split("```").next())
            .flat_map(|block| {
                field
                    .captures_iter(block)
                    .map(|c| c[1].to_string())
                    .collect::<Vec<_>>()
            })
            .map(|p| &*Box::leak(p.into_boxed_str()))
            .collect();
        paths.sort_unstable();
        paths.dedup();
        assert!(paths.len() >= 8, "the sample templates read {paths:?}");
        paths
    })
}

fn slack() -> FakeSlack {
    FakeSlack::start(
        TOKEN,
        &[
            FakeChannel {
                id: CHANNEL,
                name: "alerts",
                member: true,
            },
            FakeChannel {
                id: "C0NOTIN",
                name: "elsewhere",
                member: false,
            },
        ],
    )
}

fn wecom_table(name: &str, url: &str, extra: &str) -> String {
    format!("[destinations.{name}]\nchannel = \"wecom\"\nwebhook_url = \"{url}\"\ntimeout = \"5s\"\n{extra}\n")
}

fn slack_table(name: &str, api: &str, channel: &str, extra: &str) -> String {
    format!(
        "[destinations.{name}]\nchannel = \"slack\"\ntoken = \"{TOKEN}\"\nchannel_id = \"{channel}\"\napi_url = \"{api}\"\ntimeout = \"5s\"\n{extra}\n"
    )
}

fn pa_table(name: &str, url: &str, extra: &str) -> String {
    format!("[destinations.{name}]\nchannel = \"prometheusalert\"\nurl = \"{url}\"\ntimeout = \"5s\"\n{extra}\n")
}

fn load(text: &str) -> Config {
    Config::parse(
        &format!("[templates]\ntimezone = \"Asia/Shanghai\"\n\n{text}"),
        "test",
        Rc::new(|_| None),
    )
    .expect("valid test config")
}

fn job_to(destination: &str, message: &str, target_extra: &str) -> Job {
    serde_json::from_str(&format!(
        r#"{{"version":1,"id":"chat-1","alert":{{"group_id":"g-chat","title":"订单服务 p99 > 1s",
            "message":{message},"severity":"critical","labels":{{"service":"orders"}},
            "started_at":"2026-11-23T03:00:00Z"}},
            "targets":[{{"destination":"{destination}"{target_extra}}}]}}"#,
        message = serde_json::to_string(message).unwrap()
    ))
    .unwrap()
}

fn delivery(job: Job, charts: Vec<ChartImage>) -> Delivery {
    Delivery::to_first_target(job).with_charts(charts)
}

fn chart(png: Vec<u8>) -> ChartImage {
    ChartImage {
        title: "p99 latency".into(),
        png: Some(Arc::new(png)),
        link: Some("https://grafana.example/d/abc?viewPanel=7".into()),
        ..ChartImage::default()
    }
}

/// Noise compresses badly: a PNG of it this size is over 2 MB.
fn noisy_png(width: u32, height: u32) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(11);
    let picture = image::RgbImage::from_fn(width, height, |_, _| {
        image::Rgb([rng.u8(..), rng.u8(..), rng.u8(..)])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(picture)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

fn b64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
}

// ---------------------------------------------------------------- WeCom

#[tokio::test]
async fn a_wecom_bot_gets_markdown_with_mentions_then_a_chart_fitted_under_2_mb() {
    let bot = FakeWecom::start();
    let config = load(&wecom_table("wx", &bot.url(), ""));
    let destinations = Destinations::build(&config, None).expect("build");
    let big = noisy_png(1100, 1000);
    assert!(
        big.len() > 2 * 1024 * 1024,
        "fixture is {} bytes",
        big.len()
    );
    let job = job_to(
        "wx",
        "gateway p99 is 1.4 s",
        r#","mentioned_list":["zhangsan","@all"],"mentioned_mobile_list":["13800001111"]"#,
    );
    let outcome = Pipeline::bare(&destinations)
        .deliver(delivery(job, vec![chart(big)]))
        .await;
    assert!(outcome.delivered(), "{outcome}");

    let got = bot.requests();
    assert!(
        got.iter().all(|r| r.errcode == 0),
        "every message accepted: {got:?}"
    );
    let kinds: Vec<&str> = got
        .iter()
        .map(|r| r.body["msgtype"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["markdown", "image", "text"]);
    let markdown = got[0].body["markdown"]["content"].as_str().unwrap();
    assert!(markdown.contains("订单服务 p99 > 1s"), "{markdown}");
    assert!(markdown.contains("2026-11-23 11:00:00 CST"), "{markdown}");
    assert!(markdown.ends_with("<@zhangsan>"), "{markdown}");
    let png = b64(got[1].body["image"]["base64"].as_str().unwrap());
    assert!(png.len() <= 2 * 1024 * 1024, "{} bytes", png.len());
    let picture = image::load_from_memory(&png).expect("a PNG");
    assert!(
        picture.width() < 1100 && picture.width() > 500,
        "{}",
        picture.width()
    );
    assert_eq!(
        got[2].body["text"]["mentioned_list"],
        serde_json::json!(["@all"])
    );
    assert_eq!(
        got[2].body["text"]["mentioned_mobile_list"],
        serde_json::json!(["13800001111"])
    );
}

/// Signed action links as the worker puts them in a delivery.
fn actions() -> fanout::delivery::ActionUrls {
    fanout::delivery::ActionUrls {
        acknowledge: "https://fanout.example/actions/ack?g=g-chat&sig=a1".into(),
        resolve: "https://fanout.example/actions/resolve?g=g-chat&sig=r2".into(),
        silence_1h: "https://fanout.example/actions/silence?g=g-chat&sig=s3".into(),
    }
}

#[tokio::test]
async fn wecom_markdown_over_4096_bytes_cuts_the_message_and_keeps_what_people_act_on() {
    let bot = FakeWecom::start();
    let config = load(&wecom_table("wx", &bot.url(), ""));
    let destinations = Destinations::build(&config, None).expect("build");
    // 60 lines of Chinese, two ASCII bytes shifting the 3-byte characters
    // off any lucky boundary: the message alone is over the limit.
    let line = "ab订单服务主库连接池耗尽，支付回调在重试队列中堆积，请值班同学立即处理。\n";
    let message = line.repeat(60);
    assert!(message.len() > 4096);
    let mut job = job_to("wx", &message, r#","mentioned_list":["zhangsan"]"#);
    job.alert.source_url = Some("https://grafana.example/d/abc".into());
    let mut delivery = delivery(job, vec![]);
    delivery.actions = Some(actions());
    let outcome = Pipeline::bare(&destinations).deliver(delivery).await;
    assert!(outcome.delivered(), "{outcome}");
    let got = bot.accepted();
    let content = got[0].body["markdown"]["content"].as_str().unwrap();
    assert!(
        content.len() <= 4096 && content.len() >= 4080,
        "{}",
        content.len()
    );
    // The cut is in the message, and says so there.
    let cut = content.find("…(truncated)").expect("the cut says so");
    for kept in [
        "[CRITICAL]</font> 订单服务 p99 > 1s",
        "> Started:",
        "> service: <font color=\"comment\">orders</font>",
        "[Source](https://grafana.example/d/abc)",
        "[Acknowledge](https://fanout.example/actions/ack?g=g-chat&sig=a1)",
        "[Resolve](https://fanout.example/actions/resolve?g=g-chat&sig=r2)",
        "[Silence 1h](https://fanout.example/actions/silence?g=g-chat&sig=s3)",
        "<@zhangsan>",
    ] {
        let at = content
            .find(kept)
            .unwrap_or_else(|| panic!("{kept} lost:\n{content}"));
        if !kept.starts_with("[CRITICAL]") && !kept.starts_with("> Started") {
            assert!(at > cut, "{kept} comes after the message");
        }
    }
}

#[tokio::test]
async fn wecom_busy_and_frequency_limit_are_retried_without_posting_twice() {
    let bot = FakeWecom::start();
    let config = load(&wecom_table("wx", &bot.url(), "max_attempts = 5"));
    let destinations = Destinations::build(&config, None).expect("build");
    // The markdown goes through; the image then meets -1 and 45009.
    bot.fail_next(&[
        (0, "ok"),
        (-1, "system busy"),
        (45009, "api freq out of limit"),
    ]);
    let outcome = Pipeline::bare(&destinations)
        .deliver(delivery(job_to("wx", "x", ""), vec![chart(fixture_png())]))
        .await;
    assert!(outcome.delivered(), "{outcome}");
    assert_eq!(outcome.attempts, 3, "{outcome}");
    let kinds: Vec<(String, i64)> = bot
        .requests()
        .iter()
        .map(|r| {
            (
                r.body["msgtype"].as_str().unwrap_or("?").to_string(),
                r.errcode,
            )
        })
        .collect();
    let markdowns = kinds.iter().filter(|(k, _)| k == "markdown").count();
    assert_eq!(markdowns, 1, "the markdown was not posted again: {kinds:?}");
    assert_eq!(
        kinds
            .iter()
            .filter(|(k, c)| k == "image" && *c == 0)
            .count(),
        1,
        "{kinds:?}"
    );
}

#[test]
fn wecom_permanent_errcodes_fail_at_once_naming_the_errcode_but_not_the_key() {
    let bot = FakeWecom::start();
    let dir = tempfile::tempdir().unwrap();
    // A key the bot does not know: WeCom answers 93000.
    let wrong = bot.url().replace(&bot.key(), "not-the-bot-key-0000");
    let cfg = write_file(
        dir.path(),
        "fanout.toml",
        &(wecom_table("wx", &wrong, "max_attempts = 5")
            + &wecom_table("wx2", &bot.url(), "max_attempts = 5")),
    );
    let job = write_file(
        dir.path(),
        "job.json",
        &serde_json::to_string(&job_to("wx", "x", "")).unwrap(),
    );
    let run = fanout_in(dir.path(), &["send", &job, "--config", &cfg], None, &[]);
    assert_ne!(run.code, Some(0), "{run}");
    assert!(
        run.stdout.contains("permanent") && run.stdout.contains("errcode 93000"),
        "{run}"
    );
    assert!(!run.all_output().contains("not-the-bot-key-0000"), "{run}");
    assert_eq!(bot.requests().len(), 1, "not retried");

    // A message the bot refuses (scripted): permanent, with errcode and errmsg.
    bot.fail_next(&[(40058, "invalid parameter")]);
    let job2 = write_file(
        dir.path(),
        "job2.json",
        &serde_json::to_string(&job_to("wx2", "x", "")).unwrap(),
    );
    let run = fanout_in(dir.path(), &["send", &job2, "--config", &cfg], None, &[]);
    assert!(
        run.stdout.contains("errcode 40058: invalid parameter"),
        "{run}"
    );
    assert!(!run.all_output().contains(&bot.key()), "{run}");
}

// ---------------------------------------------------------- PrometheusAlert

#[test]
fn prometheusalert_gets_json_its_template_reads_and_its_answers_are_judged() {
    let pa = FakePrometheusAlert::start(&[("fanout-wx", pa_paths())]);
    let wx = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=pa-bot-key-123";
    let url = pa.url(&format!("type=wx&tpl=fanout-wx&wxurl={wx}"));
    let unknown = pa.url(&format!("type=wx&tpl=no-such-tpl&wxurl={wx}"));
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_file(
        dir.path(),
        "fanout.toml",
        &("[templates]\ntimezone = \"Asia/Shanghai\"\n\n".to_string()
            + &pa_table("pa", &url, "max_attempts = 3")
            + &pa_table("pa-bad", &unknown, "")),
    );
    let send = |destination: &str, target_extra: &str| {
        let job = write_file(
            dir.path(),
            "job.json",
            &serde_json::to_string(&job_to(destination, "gateway p99 is 1.4 s", target_extra))
                .unwrap(),
        );
        fanout_in(dir.path(), &["send", &job, "--config", &cfg], None, &[])
    };

    let run = send("pa", r#","mentioned_list":["zhangsan","lisi"]"#);
    run.assert_code(0);
    let got = pa.requests();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.query["tpl"], "fanout-wx");
    assert_eq!(r.query["at"], "zhangsan,lisi", "the target's mentions");
    assert!(r
        .content_type
        .as_deref()
        .unwrap_or("")
        .starts_with("application/json"));
    assert_eq!(r.body["title"], "订单服务 p99 > 1s");
    assert_eq!(r.body["started_at_local"], "2026-11-23 11:00:00 CST");
    assert_eq!(r.body["labels"]["service"], "orders");

    // 45009 from the bot behind it: retried, then delivered.
    pa.answer_next(&[r#"{"errcode":45009,"errmsg":"api freq out of limit"}"#]);
    let run = send("pa", "");
    run.assert_code(0);
    assert!(run.stdout.contains("after 2 attempts"), "{run}");

    // Its own complaints are permanent and say what is wrong.
    pa.answer_next(&[r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#]);
    let run = send("pa", "");
    assert!(run.stdout.contains("refused the bot URL or key"), "{run}");
    let run = send("pa-bad", "");
    assert!(
        run.stdout
            .contains("does not know the URL's `type` or `tpl`"),
        "{run}"
    );
    assert!(!run.all_output().contains("pa-bot-key-123"), "{run}");
    let before = pa.requests().len();
    assert_eq!(before, 5, "permanent answers are not retried");
}

// ----------------------------------------------------------------- Slack

#[tokio::test]
async fn slack_posts_then_uploads_the_chart_into_the_thread_with_the_current_flow() {
    let fake = slack();
    let config = load(&slack_table("chat", &fake.api_url(), CHANNEL, ""));
    let destinations = Destinations::build(&config, None).expect("build");
    let png = fixture_png();
    let outcome = Pipeline::bare(&destinations)
        .deliver(delivery(
            job_to("chat", "gateway p99 is 1.4 s", ""),
            vec![chart(png.clone())],
        ))
        .await;
    assert!(outcome.delivered(), "{outcome}");
    let methods: Vec<String> = fake.calls().iter().map(|c| c.method.clone()).collect();
    assert_eq!(
        methods,
        [
            "chat.postMessage",
            "files.getUploadURLExternal",
            "upload",
            "files.completeUploadExternal"
        ]
    );
    assert!(fake.calls().iter().all(|c| c.ok), "{:?}", fake.calls());
    let root = &fake.messages(CHANNEL)[0];
    assert_eq!(root.thread_ts, None);
    assert!(root.text.as_deref().unwrap_or("").contains("订单服务"));
    let files = fake.files(CHANNEL);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].bytes, png, "the chart's bytes, as uploaded");
    assert_eq!(files[0].thread_ts.as_deref(), Some(root.ts.as_str()));
    assert_eq!(files[0].title.as_deref(), Some("p99 latency"));
    assert!(files[0]
        .alt_txt
        .as_deref()
        .unwrap_or("")
        .contains("p99 latency"));
    let get = &fake.calls_of("files.getUploadURLExternal")[0];
    assert_eq!(get.params["length"], png.len().to_string());
    assert!(
        fake.calls_of("files.upload").is_empty(),
        "the deprecated method is never used"
    );
    assert!(
        fake.calls_of("upload")[0]
            .headers
            .get("authorization")
            .is_none(),
        "the token does not travel to the upload URL"
    );
}

#[tokio::test]
async fn slack_rate_limits_and_failed_uploads_retry_without_reposting() {
    let fake = slack();
    let config = load(&slack_table(
        "chat",
        &fake.api_url(),
        CHANNEL,
        "max_attempts = 5",
    ));
    let destinations = Destinations::build(&config, None).expect("build");
    fake.fail_next(
        "chat.postMessage",
        &[SlackAnswer {
            status: 429,
            retry_after: Some(1),
            error: "ratelimited",
        }],
    );
    fake.fail_next(
        "files.completeUploadExternal",
        &[SlackAnswer {
            status: 200,
            retry_after: None,
            error: "internal_error",
        }],
    );
    let started = std::time::Instant::now();
    let outcome = Pipeline::bare(&destinations)
        .deliver(delivery(
            job_to("chat", "x", ""),
            vec![chart(fixture_png())],
        ))
        .await;
    assert!(outcome.delivered(), "{outcome}");
    assert_eq!(outcome.attempts, 3, "{outcome}");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After: 1 honoured"
    );
    assert_eq!(fake.messages(CHANNEL).len(), 1, "posted once");
    assert_eq!(fake.files(CHANNEL).len(), 1, "shared once");
    assert_eq!(
        fake.files(CHANNEL)[0].thread_ts.as_deref(),
        Some(fake.messages(CHANNEL)[0].ts.as_str())
    );
}

#[test]
fn slack_errors_are_permanent_with_a_hint_and_never_show_the_token() {
    let fake = slack();
    let dir = tempfile::tempdir().unwrap();
    let wrong_token =
        slack_table("wrong", &fake.api_url(), CHANNEL, "").replace(TOKEN, "xoxb-not-the-token-777");
    let cfg = write_file(
        dir.path(),
        "fanout.toml",
        &(slack_table("notin", &fake.api_url(), "C0NOTIN", "")
            + &slack_table("gone", &fake.api_url(), "C0GONE", "")
            + &wrong_token),
    );
    for (destination, error, hint) in [
        ("notin", "not_in_channel", "/invite"),
        ("gone", "channel_not_found", "channel_id"),
        ("wrong", "invalid_auth", "Bot User OAuth Token"),
    ] {
        let job = write_file(
            dir.path(),
            "job.json",
            &serde_json::to_string(&job_to(destination, "x", "")).unwrap(),
        );
        let run = fanout_in(dir.path(), &["send", &job, "--config", &cfg], None, &[]);
        assert_ne!(run.code, Some(0), "{run}");
        assert!(
            run.stdout.contains("permanent") && run.stdout.contains(error),
            "{run}"
        );
        assert!(run.stdout.contains(hint), "{run}");
        assert!(
            !run.all_output().contains(TOKEN)
                && !run.all_output().contains("xoxb-not-the-token-777"),
            "{run}"
        );
    }
    assert_eq!(fake.calls_of("chat.postMessage").len(), 3, "none retried");
}

// ----------------------------------------------------- check and secrets

#[test]
fn check_probes_each_chat_channel_without_sending() {
    let fake = slack();
    let bot = FakeWecom::start();
    let pa = FakePrometheusAlert::start(&[("fanout-wx", pa_paths())]);
    let robot = crate::support::dingtalk::FakeDingtalk::start(None, 20, Duration::from_secs(60));
    let hook = crate::support::discord::FakeDiscord::start(30, Duration::from_secs(60));
    let tg = crate::support::telegram::FakeTelegram::start("-100777", 20, Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let good = slack_table("chat", &fake.api_url(), CHANNEL, "")
        + &wecom_table("wx", &bot.url(), "")
        + &pa_table("pa", &pa.url("type=wx&tpl=fanout-wx&wxurl=x"), "")
        + &format!(
            "[destinations.dc]\nchannel = \"discord\"\nwebhook_url = \"{}\"\n",
            hook.url()
        )
        + &format!(
            "[destinations.tg]\nchannel = \"telegram\"\nbot_token = \"{}\"\nchat_id = \"-100777\"\napi_url = \"{}\"\n",
            tg.token(),
            tg.api_url()
        );
    let cfg = write_file(dir.path(), "good.toml", &good);
    let run = fanout_in(dir.path(), &["check", "--config", &cfg], None, &[]);
    run.assert_code(0);
    assert!(run.stdout.contains("channel #alerts found"), "{run}");
    assert!(run.stdout.contains("nothing posted"), "{run}");
    assert!(fake.calls_of("chat.postMessage").is_empty());
    assert!(
        !fake.calls_of("auth.test").is_empty() && !fake.calls_of("conversations.info").is_empty()
    );
    assert!(bot.requests().is_empty(), "the bot got nothing");
    assert!(
        run.stdout
            .contains("webhook \"alerts\" in channel 555000111222333444; nothing posted"),
        "{run}"
    );
    assert_eq!(
        (hook.gets(), hook.posts()),
        (1, 0),
        "Discord was read, not posted to"
    );
    assert!(!run.stdout.contains(&hook.token()), "{run}");
    assert!(
        run.stdout
            .contains("bot @fanout_test_bot; chat \"On-call\" found; nothing posted"),
        "{run}"
    );
    assert_eq!(
        (tg.reads(), tg.messages().len()),
        (2, 0),
        "Telegram was read, not posted to"
    );
    assert!(!run.stdout.contains(&tg.token()), "{run}");
    assert!(
        pa.requests().iter().all(|r| r.method == "GET"),
        "PrometheusAlert got no alert"
    );

    // DingTalk needs [storage]; here its public URL answers nothing, so
    // only the robot's row is read.
    // So do Teams, and Feishu without an app; with one, its token is asked for.
    let lark = crate::support::feishu::FakeFeishu::start(None, 10, Duration::from_secs(60));
    let teams = crate::support::teams::FakeTeams::start(10, Duration::from_secs(60));
    let dd = format!(
        "[destinations.dd]\nchannel = \"dingtalk\"\nwebhook_url = \"{}\"\n\n\
         [destinations.fs]\nchannel = \"feishu\"\nwebhook_url = \"{}\"\napp_id = \"{}\"\napp_secret = \"{}\"\n\n\
         [destinations.ms]\nchannel = \"teams\"\nwebhook_url = \"{}\"\n\n\
         [storage]\nkind = \"internal\"\ndir = \"{}\"\nsigning_key = \"{}\"\n\n\
         [http]\npublic_url = \"https://fanout.example.com\"\n",
        robot.url(),
        lark.url(),
        crate::support::feishu::APP_ID,
        lark.app_secret(),
        teams.url(),
        dir.path().join("images").display(),
        "k".repeat(32)
    );
    let cfg = write_file(dir.path(), "dd.toml", &dd);
    let run = fanout_in(dir.path(), &["check", "--config", &cfg], None, &[]);
    for (component, says) in [
        ("dingtalk dd", "nothing posted"),
        (
            "feishu fs",
            "app token granted (charts are uploaded); nothing posted",
        ),
        ("teams ms", "nothing posted"),
    ] {
        let row = run
            .stdout
            .lines()
            .find(|l| l.starts_with(component))
            .unwrap_or_else(|| panic!("a {component} row: {run}"));
        assert!(row.contains(" ok ") && row.contains(says), "{row}");
    }
    assert!(robot.requests().is_empty(), "the robot got nothing");
    assert!(
        lark.cards().is_empty() && teams.messages().is_empty(),
        "nothing posted"
    );
    assert_eq!(lark.tokens(), 1);
    for secret in [
        robot.token(),
        lark.app_secret(),
        lark.hook_token(),
        teams.sig(),
    ] {
        assert!(!run.all_output().contains(&secret), "{run}");
    }

    let bad = slack_table("chat", &fake.api_url(), "C0NOTIN", "")
        + &slack_table("chat2", &fake.api_url(), CHANNEL, "").replace(TOKEN, "xoxb-wrong");
    let cfg = write_file(dir.path(), "bad.toml", &bad);
    let run = fanout_in(dir.path(), &["check", "--config", &cfg], None, &[]);
    assert_ne!(run.code, Some(0), "{run}");
    assert!(run.all_output().contains("not in the channel"), "{run}");
    assert!(run.all_output().contains("invalid_auth"), "{run}");
    assert!(!run.all_output().contains("xoxb-wrong") && !run.all_output().contains(TOKEN));
}

#[test]
fn bad_chat_settings_refuse_to_start_naming_every_key_without_the_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[destinations.wx]\nchannel = \"wecom\"\nwebhook_url = \"https://qyapi.weixin.qq.com/wrong/path?key=leaky-key-1\"\nmode = \"card\"\n\
                [destinations.chat]\nchannel = \"slack\"\ntoken = \"not-a-token-leak\"\nchannel_id = \"#alerts\"\n\
                [destinations.pa]\nchannel = \"prometheusalert\"\nurl = \"http://pa:8080/prometheusalert?wxurl=leaky-key-2\"\n";
    let cfg = write_file(dir.path(), "fanout.toml", text);
    let run = fanout_in(
        dir.path(),
        &["check", "--offline", "--config", &cfg],
        None,
        &[],
    );
    assert_eq!(run.code, Some(2), "{run}");
    let out = run.all_output();
    for key in [
        "destinations.wx.webhook_url",
        "destinations.wx.mode",
        "destinations.chat.token",
        "destinations.chat.channel_id",
        "destinations.pa.url",
    ] {
        assert!(out.contains(key), "{key} named\n{run}");
    }
    for secret in ["leaky-key-1", "not-a-token-leak", "leaky-key-2"] {
        assert!(!out.contains(secret), "{secret} shown\n{run}");
    }
}

#[test]
fn the_outbox_holds_each_chat_message_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let text = slack_table("chat", "http://127.0.0.1:9/api/", CHANNEL, "")
        + &wecom_table(
            "wx",
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=outbox-wx-key",
            "",
        )
        + &pa_table(
            "pa",
            "http://127.0.0.1:9/prometheusalert?type=wx&tpl=t&wxurl=outbox-pa-key",
            "",
        );
    let cfg = write_file(dir.path(), "fanout.toml", &text);
    let job = serde_json::json!({
        "version": 1, "id": "box-1",
        "alert": {"group_id": "g", "title": "Disk full", "labels": {"host": "db1"}},
        "targets": [{"destination": "chat"}, {"destination": "wx"}, {"destination": "pa"}]
    });
    let job = write_file(dir.path(), "job.json", &job.to_string());
    let run = fanout_in(
        dir.path(),
        &["send", &job, "--config", &cfg, "--outbox", "outbox"],
        None,
        &[],
    );
    run.assert_code(0);
    let files = crate::support::files_with_ext(&dir.path().join("outbox/box-1"), "json");
    assert_eq!(files.len(), 3, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).expect("JSON");
        for secret in [TOKEN, "outbox-wx-key", "outbox-pa-key"] {
            assert!(!text.contains(secret), "{secret} in {}", file.display());
        }
    }
    for secret in [TOKEN, "outbox-wx-key", "outbox-pa-key"] {
        assert!(!run.all_output().contains(secret), "{run}");
    }
}

// ------------------------------------------------- through the worker

/// A worker config with the four chat-and-mail destinations and `extra`.
fn worker_text(
    declared: &crate::support::rabbit::Declared,
    port: u16,
    destinations: &str,
    extra: &str,
) -> String {
    format!(
        "[templates]\ntimezone = \"Asia/Shanghai\"\n\n\
         [http]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n\n\
         [broker]\nurl = \"{url}\"\nprefix = \"{prefix}\"\n\n\
         [store]\nurl = \"sqlite://state.db\"\n\n{extra}\n{destinations}",
        url = crate::support::rabbit::URL,
        prefix = declared.prefix,
    )
}

#[test]
fn a_job_on_rabbitmq_with_a_grafana_chart_reaches_every_chat_channel_and_email() {
    use crate::support::grafana::{FakeGrafana, Options as GrafanaOptions};
    use crate::support::rabbit::Declared;
    use crate::support::smtp::{Options as SmtpOptions, SmtpServer};
    use crate::support::worker::WorkerProcess;
    const CHART: [u8; 3] = [0xff, 0x57, 0x22];
    let declared = Declared::new();
    let grafana = FakeGrafana::start(GrafanaOptions::default());
    let smtp = SmtpServer::start(SmtpOptions::default());
    let bot = FakeWecom::start();
    let news_bot = FakeWecom::start();
    let pa = FakePrometheusAlert::start(&[("fanout-wx", pa_paths())]);
    let fake = slack();
    const DD_SECRET: &str = "SECe2e0123456789abcdef";
    let robot =
        crate::support::dingtalk::FakeDingtalk::start(Some(DD_SECRET), 20, Duration::from_secs(60));
    let hook = crate::support::discord::FakeDiscord::start(30, Duration::from_secs(60));
    let tg = crate::support::telegram::FakeTelegram::start(
        "-1001234567890",
        20,
        Duration::from_secs(60),
    );
    let lark = crate::support::feishu::FakeFeishu::start(
        Some("SECe2e-feishu"),
        100,
        Duration::from_secs(60),
    );
    let teams = crate::support::teams::FakeTeams::start(30, Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let port = crate::support::free_port();
    let extra = format!(
        "[render]\nignore_https_errors = true\n\n[render.grafana]\nurl = \"{}\"\ntoken = \"{}\"\n\n\
         [storage]\nkind = \"internal\"\ndir = \"{}\"\nsigning_key = \"a-test-signing-key-of-32-bytes!!!\"\n",
        grafana.url,
        grafana.token,
        dir.path().join("images").display()
    );
    let destinations = format!(
        "[destinations.ops-mail]\nchannel = \"email\"\nsmtp_url = \"smtp://127.0.0.1:{}\"\n\
         from = \"fanout <alerts@example.com>\"\nto = [\"oncall@example.com\"]\n\n\
         [destinations.dd]\nchannel = \"dingtalk\"\nwebhook_url = \"{}\"\nsecret = \"{DD_SECRET}\"\n\
         mentioned_mobile_list = [\"13800001111\"]\n\n\
         [destinations.dc]\nchannel = \"discord\"\nwebhook_url = \"{}\"\n\n\
         [destinations.tg]\nchannel = \"telegram\"\nbot_token = \"{}\"\nchat_id = \"-1001234567890\"\napi_url = \"{}\"\n\n\
         [destinations.ms]\nchannel = \"teams\"\nwebhook_url = \"{}\"\n\n\
         [destinations.fs]\nchannel = \"feishu\"\nwebhook_url = \"{}\"\nsecret = \"SECe2e-feishu\"\n\
         app_id = \"{}\"\napp_secret = \"{}\"\n\n{}{}{}{}",
        smtp.port,
        robot.url(),
        hook.url(),
        tg.token(),
        tg.api_url(),
        teams.url(),
        lark.url(),
        crate::support::feishu::APP_ID,
        lark.app_secret(),
        wecom_table("wx", &bot.url(), ""),
        wecom_table("wx-news", &news_bot.url(), "mode = \"news\""),
        pa_table(
            "pa",
            &pa.url("type=wx&tpl=fanout-wx&wxurl=https://qyapi/x"),
            ""
        ),
        slack_table("chat", &fake.api_url(), CHANNEL, ""),
    );
    let cfg = write_file(
        dir.path(),
        "fanout.toml",
        &worker_text(&declared, port, &destinations, &extra),
    );
    let job = serde_json::json!({
        "version": 1, "id": "e2e-1",
        "alert": {"group_id": "g-e2e", "title": "p99 latency > 1s", "severity": "critical",
                  "labels": {"service": "gateway"}, "started_at": "2026-11-23T03:00:00Z"},
        "charts": [{"grafana": {"dashboard_uid": "abc", "panel_id": 7}, "width": 600, "height": 300, "title": "p99"}],
        "escalation": [{"notify": ["ops-mail", "wx", "wx-news", "dd", "dc", "tg", "ms", "fs", "pa", "chat"]}, {"wait": "1s"}, {"notify": ["chat"]}, {"wait": "12s"}, {"resolve": true}],
        "targets": [{"destination": "ops-mail"}, {"destination": "wx"}, {"destination": "wx-news"}, {"destination": "dd"}, {"destination": "dc"}, {"destination": "tg"}, {"destination": "ms"}, {"destination": "fs"}, {"destination": "pa"}, {"destination": "chat"}]
    });
    let job = write_file(dir.path(), "job.json", &job.to_string());
    // Waits count from the enqueue stamp: the worker runs first. Slack's
    // 1/s spaces the repeat 1.5 s after the first, which on a loaded
    // machine may itself come seconds late (Chromium renders the chart):
    // the resolve waits long enough not to stop the repeat.
    let worker = WorkerProcess::start(dir.path(), &cfg);
    fanout_in(dir.path(), &["enqueue", &job, "--config", &cfg], None, &[]).assert_code(0);

    // Slack: the alert, its repeat and the resolve, all in one thread.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let messages = loop {
        let m = fake.messages(CHANNEL);
        if m.len() >= 3 {
            break m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "three Slack messages: got {m:?}\ncalls: {:?}\n{}",
            fake.calls()
                .iter()
                .map(|c| (&c.method, &c.error))
                .collect::<Vec<_>>(),
            worker.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let root = &messages[0];
    assert_eq!(root.thread_ts, None, "{}", worker.log_text());
    assert_eq!(
        messages[1].thread_ts.as_deref(),
        Some(root.ts.as_str()),
        "the repeat replies"
    );
    assert_eq!(
        messages[2].thread_ts.as_deref(),
        Some(root.ts.as_str()),
        "the resolve replies"
    );
    assert!(messages[2].reply_broadcast, "and shows in the channel");
    assert!(messages[2]
        .text
        .as_deref()
        .unwrap_or("")
        .contains("RESOLVED"));
    let files = fake.files(CHANNEL);
    assert_eq!(
        files.len(),
        2,
        "a chart per notify step\n{}",
        worker.log_text()
    );
    for file in &files {
        assert_eq!(file.thread_ts.as_deref(), Some(root.ts.as_str()));
        let (w, h, n) = crate::render::count_colour(&file.bytes, CHART);
        assert_eq!((w, h), (600, 300));
        assert!(n > 2_000, "the panel's data is drawn ({n} pixels)");
    }

    // WeCom: markdown, then the chart as an image; then the resolve.
    let got = wait_for("WeCom's messages", Duration::from_secs(30), || {
        let got = bot.accepted();
        (got.len() >= 3).then_some(got)
    });
    let kinds: Vec<&str> = got
        .iter()
        .map(|r| r.body["msgtype"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["markdown", "image", "markdown"]);
    let png = b64(got[1].body["image"]["base64"].as_str().unwrap());
    assert!(crate::render::count_colour(&png, CHART).2 > 2_000);
    assert!(got[2].body["markdown"]["content"]
        .as_str()
        .unwrap()
        .contains("RESOLVED"));

    // WeCom news: one card whose picture, the chart's signed URL, serves
    // the chart and whose link is the panel.
    let cards = wait_for("WeCom's news card", Duration::from_secs(30), || {
        let got = news_bot.accepted();
        (!got.is_empty()).then_some(got)
    });
    let article = &cards[0].body["news"]["articles"][0];
    assert_eq!(cards[0].body["msgtype"], "news", "{:?}", cards[0].body);
    assert!(
        article["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/d/abc", grafana.url)),
        "{article}"
    );
    let picurl = article["picurl"].as_str().unwrap();
    assert!(
        picurl.starts_with(&format!("http://127.0.0.1:{port}/images/")),
        "{picurl}"
    );
    let png = reqwest::blocking::get(picurl).unwrap().bytes().unwrap();
    assert!(crate::render::count_colour(&png, CHART).2 > 2_000);

    // DingTalk: signed markdown whose picture, the chart's signed URL,
    // serves the chart; then the resolve.
    let messages = wait_for("DingTalk's messages", Duration::from_secs(30), || {
        let got = robot.messages();
        (got.len() >= 2).then_some(got)
    });
    let text = messages[0]["markdown"]["text"].as_str().unwrap();
    let picture = regex::Regex::new(r"!\[p99\]\((http://127\.0\.0\.1:\d+/images/[^)]+)\)")
        .unwrap()
        .captures(text)
        .unwrap_or_else(|| panic!("the chart as a picture: {text}"))[1]
        .to_string();
    let png = reqwest::blocking::get(&picture).unwrap().bytes().unwrap();
    assert!(crate::render::count_colour(&png, CHART).2 > 2_000);
    assert_eq!(messages[0]["at"]["atMobiles"][0], "13800001111");
    assert!(text.ends_with("@13800001111"), "{text}");
    assert!(messages[1]["markdown"]["title"]
        .as_str()
        .unwrap()
        .starts_with("[RESOLVED]"));
    assert!(robot.violations().is_empty(), "{:?}", robot.violations());

    // Discord: an embed showing the chart uploaded with it; then the resolve.
    let posted = wait_for("Discord's messages", Duration::from_secs(30), || {
        let got = hook.messages();
        (got.len() >= 2).then_some(got)
    });
    let embed = &posted[0].payload["embeds"][0];
    assert_eq!(embed["title"], "[CRITICAL] p99 latency > 1s");
    assert_eq!(embed["image"]["url"], "attachment://chart0.png");
    let (field, name, png) = &posted[0].files[0];
    assert_eq!((field.as_str(), name.as_str()), ("files[0]", "chart0.png"));
    assert!(crate::render::count_colour(png, CHART).2 > 2_000);
    assert!(posted[1].payload["embeds"][0]["title"]
        .as_str()
        .unwrap()
        .starts_with("[RESOLVED]"));
    assert!(hook.refused().is_empty(), "{:?}", hook.refused());

    // Telegram: the chart as a captioned photo; the resolve replies to it.
    let sent = wait_for("Telegram's messages", Duration::from_secs(30), || {
        let got = tg.messages();
        (got.len() >= 2).then_some(got)
    });
    assert_eq!(sent[0].method, "sendPhoto");
    assert!(
        sent[0].text.contains("[CRITICAL] p99 latency &gt; 1s"),
        "{}",
        sent[0].text
    );
    assert!(crate::render::count_colour(&sent[0].photos[0], CHART).2 > 2_000);
    assert_eq!(
        sent[1].reply_to,
        Some(sent[0].message_id),
        "the resolve replies"
    );
    assert!(sent[1].text.contains("RESOLVED"));
    assert!(tg.refused().is_empty(), "{:?}", tg.refused());

    // Teams: an Adaptive Card whose image, the chart's signed URL, serves
    // the chart; then the resolve.
    let cards = wait_for("Teams' cards", Duration::from_secs(30), || {
        let got = teams.messages();
        (got.len() >= 2).then_some(got)
    });
    let body = cards[0]["attachments"][0]["content"]["body"]
        .as_array()
        .unwrap()
        .clone();
    let image = body
        .iter()
        .find(|e| e["type"] == "Image")
        .expect("the chart in the card");
    let png = reqwest::blocking::get(image["url"].as_str().unwrap())
        .unwrap()
        .bytes()
        .unwrap();
    assert!(crate::render::count_colour(&png, CHART).2 > 2_000);
    assert!(cards[1]["attachments"][0]["content"]["body"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("[RESOLVED]"));
    assert!(teams.refused().is_empty(), "{:?}", teams.refused());

    // Feishu: a signed card whose image, uploaded through the app, is the
    // chart; then the resolve.
    let posted = wait_for("Feishu's cards", Duration::from_secs(30), || {
        let got = lark.cards();
        (got.len() >= 2).then_some(got)
    });
    let image = posted[0]["card"]["elements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["tag"] == "img")
        .expect("the chart in the card");
    let png = lark
        .image(image["img_key"].as_str().unwrap())
        .expect("an uploaded image");
    assert!(crate::render::count_colour(&png, CHART).2 > 2_000);
    assert_eq!(posted[1]["card"]["header"]["template"], "green");
    assert_eq!(
        lark.tokens(),
        1,
        "the tenant token is kept, not fetched per message"
    );
    assert!(lark.violations().is_empty(), "{:?}", lark.violations());

    // PrometheusAlert: the chart's signed URL serves the chart.
    let requests = wait_for(
        "PrometheusAlert's requests",
        Duration::from_secs(30),
        || {
            let r = pa.requests();
            (r.len() >= 2).then_some(r)
        },
    );
    let chart_url = requests[0].body["chart_url"].as_str().unwrap();
    assert!(
        chart_url.starts_with(&format!("http://127.0.0.1:{port}/images/")),
        "{chart_url}"
    );
    let png = reqwest::blocking::get(chart_url).unwrap().bytes().unwrap();
    assert!(crate::render::count_colour(&png, CHART).2 > 2_000);
    assert_eq!(requests[1].body["status"], "resolved");

    // Email: the chart inline, then the resolve in the same thread.
    let mails = smtp.wait_for_messages(2);
    let first = mail_parser::MessageParser::default()
        .parse(&mails[0].raw)
        .unwrap();
    let inline = first
        .parts
        .iter()
        .find(|p| p.content_id().is_some())
        .expect("the chart inline");
    assert!(crate::render::count_colour(inline.contents(), CHART).2 > 2_000);
    let log = worker.log_text();
    assert!(
        !log.contains(TOKEN)
            && !log.contains(&bot.key())
            && !log.contains(&robot.token())
            && !log.contains(&hook.token())
            && !log.contains(&tg.token())
            && !log.contains(&teams.sig())
            && !log.contains(&lark.app_secret())
            && !log.contains(&lark.hook_token())
            && !log.contains(DD_SECRET),
        "no secret in the log"
    );
}

#[test]
fn a_burst_of_100_alerts_keeps_within_each_vendor_s_limit() {
    use crate::support::rabbit::Declared;
    use crate::support::worker::WorkerProcess;
    let declared = Declared::new();
    // Real bots take 20 a minute and Slack about 1 a second; the fakes
    // enforce the same kind of window, shorter, so the test takes seconds.
    let bot = FakeWecom::with_limit(20, Duration::from_secs(1));
    let fake = slack().with_channel_limit(5, Duration::from_secs(1));
    let dir = tempfile::tempdir().unwrap();
    let port = crate::support::free_port();
    // Each WeCom delivery is two messages: markdown, and a text that @s a mobile.
    let destinations = wecom_table(
        "wx",
        &bot.url(),
        "rate = \"20/s\"\nmentioned_mobile_list = [\"13800001111\"]",
    ) + &slack_table("chat", &fake.api_url(), CHANNEL, "rate = \"5/s\"");
    let cfg = write_file(
        dir.path(),
        "fanout.toml",
        &worker_text(&declared, port, &destinations, ""),
    );
    let _worker = WorkerProcess::start(dir.path(), &cfg);
    let jobs = (0..100)
        .map(|i| {
            serde_json::json!({
                "version": 1, "id": format!("burst-{i}"),
                "alert": {"group_id": format!("burst-{i}"), "title": format!("disk {i} full")},
                "targets": [{"destination": "wx"}, {"destination": "chat"}]
            })
            .to_string()
            .into_bytes()
        })
        .collect();
    declared.publish_jobs(jobs);
    wait_for(
        "every burst message accepted",
        Duration::from_secs(120),
        || (bot.accepted().len() >= 200 && fake.messages(CHANNEL).len() >= 100).then_some(()),
    );
    let refused: Vec<i64> = bot
        .requests()
        .iter()
        .map(|r| r.errcode)
        .filter(|c| *c != 0)
        .collect();
    assert!(refused.is_empty(), "no 45009 provoked: {refused:?}");
    assert!(
        fake.calls_of("chat.postMessage")
            .iter()
            .all(|c| c.status == 200 && c.ok),
        "no 429 provoked"
    );
    assert!(fake.max_in_window(CHANNEL, Duration::from_secs(1)) <= 5);
    assert_eq!(bot.accepted().len(), 200, "nothing sent twice");
    assert_eq!(fake.messages(CHANNEL).len(), 100, "nothing sent twice");
}

/// `fanout send` with a store, the way a cron job or relay script runs it:
/// the firing job, then its resolved job, through the real binary.
#[test]
fn send_with_a_store_threads_the_resolved_notice_like_the_worker() {
    let slack = slack();
    let dir = tempfile::tempdir().unwrap();
    let cfg = crate::support::write_file(
        dir.path(),
        "fanout.toml",
        &format!(
            "[http]\npublic_url = \"https://fanout.example.com\"\n\n[actions]\nsigning_key = \"{}\"\n\n\
             [store]\nurl = \"sqlite://state.db\"\n\n{}",
            "k".repeat(32),
            slack_table("sl", &slack.api_url(), CHANNEL, "")
        ),
    );
    let job = |id: &str, status: &str| {
        crate::support::write_file(
            dir.path(),
            &format!("{id}.json"),
            &format!(
                r#"{{"version":1,"id":"{id}","alert":{{"group_id":"ag-7","title":"Disk full","status":"{status}"}},
                    "targets":[{{"destination":"sl"}}]}}"#
            ),
        )
    };
    let send = |path: &str| {
        crate::support::fanout_in(dir.path(), &["send", path, "--config", &cfg], None, &[])
    };
    send(&job("ag-7-firing", "firing")).assert_code(0);
    // A repeat while the group fires joins it, as in the worker: not sent.
    let repeat = send(&job("ag-7-firing-again", "firing"));
    repeat.assert_code(0);
    assert!(
        repeat.stderr.contains("Joined the group's running chain"),
        "{repeat}"
    );
    send(&job("ag-7-resolved", "resolved")).assert_code(0);

    let posted = slack.messages(CHANNEL);
    assert_eq!(
        posted.len(),
        2,
        "the firing message and the resolved notice: {posted:#?}"
    );
    let first = &posted[0];
    assert_eq!(first.thread_ts, None);
    assert_eq!(
        posted[1].thread_ts.as_deref(),
        Some(first.ts.as_str()),
        "the resolved notice replies in the alert's thread"
    );
    assert!(posted[1].reply_broadcast, "and tells the channel");
    // The firing message carries the same action links the worker's does.
    let blocks = first.attachments.to_string();
    assert!(
        blocks.contains("https://fanout.example.com/actions/") && blocks.contains("Acknowledge"),
        "{blocks}"
    );
}

#[test]
fn fanout_send_with_a_store_keeps_the_destinations_rate_across_runs() {
    // A bot that takes one message per two seconds, and two `fanout send`
    // runs, one right after the other, sharing the store's rate-limit
    // slots. With one attempt allowed, a second message the bot refuses
    // (45009) would fail the run: the second run must wait for its slot.
    let bot = FakeWecom::with_limit(1, Duration::from_secs(2));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.sqlite");
    let cfg = write_file(
        dir.path(),
        "fanout.toml",
        &format!(
            "[store]\nurl = \"sqlite://{}\"\n\n{}",
            state.display(),
            wecom_table("wx", &bot.url(), "rate = \"1/2s\"\nmax_attempts = 1")
        ),
    );
    for n in 1..=2 {
        let job = write_file(
            dir.path(),
            &format!("job{n}.json"),
            &format!(
                r#"{{"version":1,"id":"paced-{n}","alert":{{"group_id":"paced-g{n}","title":"Disk {n} full"}},
                   "targets":[{{"destination":"wx"}}]}}"#
            ),
        );
        let run = fanout_in(dir.path(), &["send", &job, "--config", &cfg], None, &[]);
        run.assert_code(0);
    }
    let got = bot.requests();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.iter().all(|r| r.errcode == 0), "{got:?}");
}
