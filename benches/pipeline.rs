//! Cost of the in-process stages of one job, as ratios against a baseline
//! run side by side: parsing the same bytes into an untyped
//! `serde_json::Value`, the least any JSON consumer must do.
//!
//! ```text
//! cargo bench --bench pipeline
//! ```
//! Each stage runs in rounds interleaved with the baseline, so machine noise
//! hits both alike; the report gives the median of the per-round ratios.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fanout::channels::email::{EmailSender, EmailTarget};
use fanout::channels::wecom::WecomTarget;
use fanout::channels::{BuildContext, ChannelConfig};
use fanout::config::Config;
use fanout::delivery::{ChartImage, Delivery};
use fanout::job::{decode, Inbound};
use fanout::validate::validate;

const ROUNDS: usize = 15;
const ROUND_TIME: Duration = Duration::from_millis(150);

/// Mean time of one call of `f`, over at least `ROUND_TIME`.
fn time_per_call(mut f: impl FnMut()) -> f64 {
    let mut n = 0u64;
    let start = Instant::now();
    while start.elapsed() < ROUND_TIME {
        for _ in 0..16 {
            f();
        }
        n += 16;
    }
    start.elapsed().as_secs_f64() / n as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn report(name: &str, baseline: &mut dyn FnMut(), stage: &mut dyn FnMut()) {
    let mut ratios = Vec::with_capacity(ROUNDS);
    let mut stage_times = Vec::with_capacity(ROUNDS);
    let mut base_times = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let b = time_per_call(&mut *baseline);
        let s = time_per_call(&mut *stage);
        ratios.push(s / b);
        stage_times.push(s);
        base_times.push(b);
    }
    println!(
        "{name:<44} {:>9.1} µs/job   baseline {:>7.1} µs   ratio {:>6.2}×",
        median(stage_times) * 1e6,
        median(base_times) * 1e6,
        median(ratios)
    );
}

fn main() {
    // The email sender's pooled SMTP transport is built on a runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let _runtime = runtime.enter();
    let root = env!("CARGO_MANIFEST_DIR");
    let bytes = std::fs::read(format!("{root}/examples/jobs/firing.json")).expect("example job");
    let png = Arc::new(std::fs::read(format!("{root}/tests/data/chart.png")).expect("fixture png"));
    let config = Config::embedded("https://localhost:1", "demo-token").expect("embedded default");
    let Ok(Inbound::Job(job)) = decode(&bytes) else {
        panic!("example job decodes")
    };
    let job = Arc::new(*job);
    let ChannelConfig::Email(email) = &config.destinations["ops-mail"].channel else {
        panic!("ops-mail is an email destination")
    };
    let sender = EmailSender::new(
        "ops-mail",
        email,
        &BuildContext {
            templates: Arc::new(fanout::channels::default_templates(
                config.templates.timezone,
            )),
        },
    )
    .expect("sender");
    let delivery =
        Delivery::new(job.clone(), job.targets[0].clone()).with_charts(vec![ChartImage {
            title: "p99".into(),
            png: Some(png),
            ..ChartImage::default()
        }]);

    // Time only work that succeeds.
    sender
        .message(&delivery, &EmailTarget::default())
        .expect("the email composes");
    validate(&job, &config).expect("the example job is valid");
    println!(
        "job: examples/jobs/firing.json ({} bytes); {ROUNDS} interleaved rounds",
        bytes.len()
    );
    let mut baseline = || {
        black_box(serde_json::from_slice::<serde_json::Value>(black_box(&bytes)).ok());
    };
    report(
        "decode (typed, JSON paths in errors)",
        &mut baseline,
        &mut || {
            black_box(decode(black_box(&bytes)).ok());
        },
    );
    report("decode + validate", &mut baseline, &mut || {
        if let Ok(Inbound::Job(job)) = decode(black_box(&bytes)) {
            black_box(validate(&job, &config).ok());
        }
    });
    report(
        "email compose (3 templates + MIME + PNG)",
        &mut baseline,
        &mut || {
            black_box(
                sender
                    .message(black_box(&delivery), &EmailTarget::default())
                    .ok(),
            );
        },
    );

    // What the deliver stage does per delivery before the send: read the
    // delivery message (the job travels in it) and build the request.
    let hook_config = Config::parse(
        "[destinations.hook]\nchannel = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\n",
        "bench",
        std::rc::Rc::new(|_| None),
    )
    .expect("webhook config");
    let ChannelConfig::Webhook(hook) = &hook_config.destinations["hook"].channel else {
        panic!("a webhook destination")
    };
    let webhook = fanout::channels::webhook::WebhookSender::new(
        "hook",
        hook,
        &BuildContext {
            templates: Arc::new(fanout::channels::default_templates(
                config.templates.timezone,
            )),
        },
    )
    .expect("webhook sender");
    let planned = fanout::plan::plan(&job, 0).remove(0);
    let order = fanout::worker::message::DeliveryOrder::new(&job, planned, &[]).encode();
    report("delivery message decode", &mut baseline, &mut || {
        black_box(fanout::worker::message::DeliveryOrder::decode(black_box(&order)).ok());
    });
    report(
        "webhook compose (template + signature)",
        &mut baseline,
        &mut || {
            black_box(
                webhook
                    .compose_at(black_box(&short_delivery(&delivery)), 1_800_000_000)
                    .ok(),
            );
        },
    );

    // WeCom markdown (4,096 bytes): a message that fits is rendered once;
    // 60 lines of Chinese are cut to fit (several renders, bisected).
    let wecom_config = Config::parse(
        "[destinations.wx]\nchannel = \"wecom\"\nwebhook_url = \"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k\"\n",
        "bench",
        std::rc::Rc::new(|_| None),
    )
    .expect("wecom config");
    let ChannelConfig::Wecom(wx) = &wecom_config.destinations["wx"].channel else {
        panic!("a wecom destination")
    };
    let wecom = fanout::channels::wecom::WecomSender::new(
        "wx",
        wx,
        &BuildContext {
            templates: Arc::new(fanout::channels::default_templates(
                config.templates.timezone,
            )),
        },
    )
    .expect("wecom sender");
    let mut long_job = (*job).clone();
    long_job.alert.message =
        "订单服务主库连接池耗尽，支付回调在重试队列中堆积，请值班同学立即处理。\n".repeat(60);
    let long = Delivery::new(Arc::new(long_job), delivery.target.clone());
    let short = short_delivery(&delivery);
    wecom
        .messages(&long, &WecomTarget::default())
        .expect("the long markdown composes");
    report("wecom markdown, message fits", &mut baseline, &mut || {
        black_box(
            wecom
                .messages(black_box(&short), &WecomTarget::default())
                .ok(),
        );
    });
    report(
        "wecom markdown, 60 lines cut to 4096 bytes",
        &mut baseline,
        &mut || {
            black_box(
                wecom
                    .messages(black_box(&long), &WecomTarget::default())
                    .ok(),
            );
        },
    );
}

/// The delivery without its chart (a webhook carries charts as URLs).
fn short_delivery(d: &Delivery) -> Delivery {
    d.clone().with_charts(Vec::new())
}
