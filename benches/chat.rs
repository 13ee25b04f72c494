//! The chat channels against the loopback fakes the tests use, side by side
//! with the webhook (one POST per delivery) as the baseline: deliveries per
//! second through `Destinations::deliver`, each with a real chart PNG, and
//! what fitting an oversized chart under WeCom's 2 MB costs.
//!
//! ```text
//! cargo bench --bench chat
//! ```
//! Channels run in rounds interleaved with the baseline, so machine noise
//! hits both alike; the report gives medians. Rate limits are not applied
//! here (the worker keeps them): this is the cost of the requests alone.

#[allow(dead_code, unused_imports)]
#[path = "../tests/it/support/dingtalk.rs"]
mod dingtalk;
#[allow(dead_code, unused_imports)]
#[path = "../tests/it/support/discord.rs"]
mod discord;
#[allow(dead_code, unused_imports)]
#[path = "../tests/it/support/feishu.rs"]
mod feishu;
#[allow(dead_code)]
#[path = "../tests/it/support/prometheusalert.rs"]
mod prometheusalert;
#[allow(dead_code)]
#[path = "../tests/it/support/receiver.rs"]
mod receiver;
#[allow(dead_code)]
#[path = "../tests/it/support/serve.rs"]
mod serve;
#[allow(dead_code)]
#[path = "../tests/it/support/slack/mod.rs"]
mod slack;
#[allow(dead_code, unused_imports)]
#[path = "../tests/it/support/teams.rs"]
mod teams;
#[allow(dead_code, unused_imports)]
#[path = "../tests/it/support/telegram.rs"]
mod telegram;
#[allow(dead_code)]
#[path = "../tests/it/support/wecom.rs"]
mod wecom;
#[allow(dead_code)]
#[path = "../tests/it/support/window.rs"]
mod window;

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fanout::config::Config;
use fanout::delivery::{ChartImage, Delivery};
use fanout::destinations::Destinations;
use fanout::job::Job;
use fanout::pipeline::Pipeline;

const ROUNDS: usize = 5;
const PER_ROUND: usize = 200;
const CONCURRENCY: usize = 8;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn delivery(destination: &str, png: &Arc<Vec<u8>>, n: usize) -> Delivery {
    let job: Job = serde_json::from_str(&format!(
        r#"{{"version":1,"id":"bench-{n}","alert":{{"group_id":"g-{n}","title":"p99 latency > 1s","severity":"critical",
            "labels":{{"service":"gateway"}},"started_at":"2026-11-23T03:00:00Z"}},
            "targets":[{{"destination":"{destination}"}}]}}"#
    ))
    .expect("job");
    Delivery::to_first_target(job).with_charts(vec![ChartImage {
        title: "p99".into(),
        width: 600,
        height: 300,
        png: Some(png.clone()),
        url: Some("http://127.0.0.1:9/images/k.png?exp=1&sig=2".into()),
        link: Some("https://grafana.example/d/abc?viewPanel=7".into()),
        ..ChartImage::default()
    }])
}

/// Deliveries per second to `destination`, `PER_ROUND` of them,
/// `CONCURRENCY` at a time.
async fn rate(destinations: &Destinations, destination: &str, png: &Arc<Vec<u8>>) -> f64 {
    use futures::StreamExt;
    let pipeline = Pipeline::bare(destinations);
    let started = Instant::now();
    let failed = futures::stream::iter(0..PER_ROUND)
        .map(|n| pipeline.deliver(delivery(destination, png, n)))
        .buffer_unordered(CONCURRENCY)
        .filter(|o| futures::future::ready(!o.delivered()))
        .count()
        .await;
    assert_eq!(failed, 0, "{destination}: every delivery must succeed");
    PER_ROUND as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let png = Arc::new(std::fs::read("tests/data/chart.png").expect("tests/data/chart.png"));
    let hook = receiver::Receiver::start(&[]);
    let bot = wecom::FakeWecom::with_limit(u32::MAX, Duration::from_secs(1));
    let pa = prometheusalert::FakePrometheusAlert::start(&[("fanout-wx", &["title"])]);
    let chat = slack::FakeSlack::start(
        "xoxb-bench",
        &[slack::FakeChannel {
            id: "C0BENCH",
            name: "bench",
            member: true,
        }],
    );
    let unlimited = Duration::from_secs(1);
    let robot = dingtalk::FakeDingtalk::start(Some("SECbench0123456789"), usize::MAX, unlimited);
    let lark = feishu::FakeFeishu::start(Some("SECbench-feishu"), usize::MAX, unlimited);
    let discord_hook = discord::FakeDiscord::start(usize::MAX, unlimited);
    let tg = telegram::FakeTelegram::start("-100200300", usize::MAX, unlimited);
    let workflow = teams::FakeTeams::start(usize::MAX, unlimited);
    let storage = tempfile::tempdir().expect("storage dir");
    let text = format!(
        "[storage]\nkind = \"internal\"\ndir = \"{}\"\nsigning_key = \"{}\"\n\n\
         [http]\npublic_url = \"http://127.0.0.1:9\"\n\n\
         [destinations.hook]\nchannel = \"webhook\"\nurl = \"{}\"\n\n\
         [destinations.wx]\nchannel = \"wecom\"\nwebhook_url = \"{}\"\n\n\
         [destinations.pa]\nchannel = \"prometheusalert\"\nurl = \"{}\"\n\n\
         [destinations.chat]\nchannel = \"slack\"\ntoken = \"xoxb-bench\"\nchannel_id = \"C0BENCH\"\napi_url = \"{}\"\n\n\
         [destinations.dd]\nchannel = \"dingtalk\"\nwebhook_url = \"{}\"\nsecret = \"SECbench0123456789\"\n\n\
         [destinations.fs]\nchannel = \"feishu\"\nwebhook_url = \"{}\"\nsecret = \"SECbench-feishu\"\napp_id = \"{}\"\napp_secret = \"{}\"\n\n\
         [destinations.dc]\nchannel = \"discord\"\nwebhook_url = \"{}\"\n\n\
         [destinations.tg]\nchannel = \"telegram\"\nbot_token = \"{}\"\nchat_id = \"-100200300\"\napi_url = \"{}\"\n\n\
         [destinations.ms]\nchannel = \"teams\"\nwebhook_url = \"{}\"\n",
        storage.path().display(),
        "b".repeat(32),
        hook.url,
        bot.url(),
        pa.url("type=wx&tpl=fanout-wx&wxurl=https://qyapi/x"),
        chat.api_url(),
        robot.url(),
        lark.url(),
        feishu::APP_ID,
        lark.app_secret(),
        discord_hook.url(),
        tg.token(),
        tg.api_url(),
        workflow.url(),
    );
    let config = Config::parse(&text, "bench", Rc::new(|_| None)).expect("config");
    let destinations = Destinations::build(&config, None).expect("destinations");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    let channels = [
        ("wx", "WeCom: markdown + image (base64, MD5)", 2),
        ("pa", "PrometheusAlert: one JSON POST", 1),
        ("chat", "Slack: postMessage + 3-step upload", 4),
        ("dd", "DingTalk: signed markdown, chart by URL", 1),
        ("fs", "Feishu: image upload + signed card", 2),
        ("dc", "Discord: multipart embed + file", 1),
        ("tg", "Telegram: sendPhoto (multipart)", 1),
        ("ms", "Teams: Adaptive Card, chart by URL", 1),
    ];
    let mut baseline = Vec::new();
    let mut per: Vec<Vec<f64>> = vec![Vec::new(); channels.len()];
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); channels.len()];
    runtime.block_on(async {
        for _ in 0..ROUNDS {
            let base = rate(&destinations, "hook", &png).await;
            baseline.push(base);
            for (i, (name, _, _)) in channels.iter().enumerate() {
                let r = rate(&destinations, name, &png).await;
                per[i].push(r);
                ratios[i].push(r / base);
            }
        }
    });
    println!(
        "{ROUNDS} rounds × {PER_ROUND} deliveries, {CONCURRENCY} at a time, chart {} bytes",
        png.len()
    );
    println!(
        "{:<42} {:>8} {:>12} {:>10}",
        "channel", "requests", "deliveries/s", "× webhook"
    );
    println!(
        "{:<42} {:>8} {:>12.0} {:>10.2}",
        "webhook: one JSON POST (baseline)",
        1,
        median(baseline),
        1.0
    );
    for (i, (_, label, requests)) in channels.iter().enumerate() {
        println!(
            "{:<42} {:>8} {:>12.0} {:>10.2}",
            label,
            requests,
            median(per[i].clone()),
            median(ratios[i].clone())
        );
    }

    // Fitting: an ordinary chart passes untouched; a 2.6 MB one is redone.
    let mut rng = fastrand::Rng::with_seed(5);
    let noisy = image::RgbImage::from_fn(1100, 1000, |_, _| {
        image::Rgb([rng.u8(..), rng.u8(..), rng.u8(..)])
    });
    let mut big = Vec::new();
    image::DynamicImage::ImageRgb8(noisy)
        .write_to(&mut std::io::Cursor::new(&mut big), image::ImageFormat::Png)
        .expect("png");
    let limit = fanout::channels::wecom::IMAGE_MAX_BYTES;
    let times: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let fitted = fanout::channels::image::fit_png(&big, limit).expect("fits");
            assert!(fitted.len() <= limit);
            t.elapsed().as_secs_f64()
        })
        .collect();
    let pass: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let same = fanout::channels::image::fit_png(&png, limit).expect("fits");
            std::hint::black_box(same);
            t.elapsed().as_secs_f64()
        })
        .collect();
    println!(
        "fit under 2 MB: a {} byte chart {:.0} ms; an ordinary {} byte chart {:.4} ms (untouched)",
        big.len(),
        median(times) * 1e3,
        png.len(),
        median(pass) * 1e3
    );

    // A storm on a quota: 1,000 alerts to a DingTalk robot, queued or
    // folded into a digest. The clock is compressed 60-fold (a limit of 100
    // a second, `digest_after = 1s`, for 100 a minute and 1m): the messages
    // sent and the time until the last alert is visible to a person (sent
    // alone, or listed in the digest), which scales back by 60.
    let queue = runtime.block_on(storm("queue"));
    let digest = runtime.block_on(storm("digest"));
    println!("storm of {STORM} alerts on a 100/1s robot (compressed clock):");
    println!(
        "{:<10} {:>9} {:>26}",
        "backlog", "messages", "last alert visible after"
    );
    for (name, (messages, last)) in [("queue", queue), ("digest", digest)] {
        println!("{name:<10} {messages:>9} {:>24.1} s", last.as_secs_f64());
    }
    println!(
        "digest ÷ queue: {:.2}× the messages, {:.2}× the time to the last alert",
        digest.0 as f64 / queue.0 as f64,
        digest.1.as_secs_f64() / queue.1.as_secs_f64()
    );
}

const STORM: usize = 1_000;

/// `STORM` alerts through the pipeline with a store, to a robot taking
/// 100 a second; `on_backlog` queue or digest. The messages the robot
/// took, and how long until the last alert was visible.
async fn storm(on_backlog: &str) -> (usize, Duration) {
    let robot = dingtalk::FakeDingtalk::start(None, 100, Duration::from_secs(1));
    let dir = tempfile::tempdir().expect("dir");
    let digest_after = if on_backlog == "digest" {
        "digest_after = \"1s\"\n"
    } else {
        ""
    };
    let text = format!(
        "[store]\nurl = \"sqlite://{}\"\n\n\
         [storage]\nkind = \"internal\"\ndir = \"{}\"\nsigning_key = \"{}\"\n\n\
         [http]\npublic_url = \"http://127.0.0.1:9\"\n\n\
         [destinations.dd]\nchannel = \"dingtalk\"\nwebhook_url = \"{}\"\nrate = \"100/1s\"\non_backlog = \"{on_backlog}\"\n{digest_after}",
        dir.path().join("state.db").display(),
        dir.path().join("images").display(),
        "b".repeat(32),
        robot.url()
    );
    let config = Config::parse(&text, "storm", Rc::new(|_| None)).expect("config");
    let destinations = Destinations::build(&config, None).expect("destinations");
    let store = fanout::store::Store::open(&config.store.as_ref().expect("store").url)
        .await
        .expect("store");
    let pipeline = Pipeline {
        destinations: &destinations,
        store: Some(&store),
        actions: None,
        metrics: None,
    };
    let started = Instant::now();
    let all = (0..STORM).map(|i| {
        let job: Job = serde_json::from_str(&format!(
            r#"{{"version":1,"id":"storm-{on_backlog}-{i}","alert":{{"group_id":"g-{}","title":"Disk full on host-{}","severity":"critical"}},
                "targets":[{{"destination":"dd"}}]}}"#,
            i % 20,
            i % 20
        ))
        .expect("job");
        pipeline.deliver(Delivery::to_first_target(job))
    });
    let outcomes = futures::future::join_all(all).await;
    let last = started.elapsed();
    assert!(
        outcomes.iter().all(|o| o.result.is_ok()),
        "every alert delivered"
    );
    (robot.messages().len(), last)
}
