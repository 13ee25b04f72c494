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

use fanout::channels::email::EmailSender;
use fanout::channels::{BuildContext, ChannelConfig};
use fanout::config::Config;
use fanout::deliver::{ChartImage, Delivery};
use fanout::job::{decode, validate, Inbound};
use fanout::outbox::Outbox;
use fanout::template::Templates;

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
    let outbox = tempfile_dir();
    let sender = EmailSender::new(
        "ops-mail",
        email,
        &BuildContext {
            templates: Arc::new(Templates::new(config.templates.timezone)),
            outbox: Some(Outbox::new(&outbox)),
        },
    )
    .expect("sender");
    let delivery = Delivery {
        target: job.targets[0].clone(),
        job: job.clone(),
        step: 0,
        seq: 1,
        charts: Arc::new(vec![ChartImage {
            title: "p99".into(),
            png: Some(png),
            ..ChartImage::default()
        }]),
        attempt: 1,
        round: 0,
        suppressed: None,
        actions: None,
        thread: None,
        progress: None,
    };

    // Time only work that succeeds.
    sender.compose(&delivery).expect("the email composes");
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
            black_box(sender.compose(black_box(&delivery)).ok());
        },
    );
    let _ = std::fs::remove_dir_all(outbox);
}

fn tempfile_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("fanout-bench-{}", std::process::id()))
}
