//! The worker's throughput, side by side in one run with (a) the broker's
//! own ceiling for the same queue path and (b) a Celery 5 worker doing the
//! same HTTP deliveries (`benches/celery_baseline/`).
//!
//! ```text
//! cargo bench --bench worker                       # 2,000 jobs × 5 targets
//! FANOUT_BENCH_TARGETS=1 cargo bench --bench worker  # 10,000 jobs × 1 target
//! FANOUT_BENCH_JOBS=500 cargo bench --bench worker
//! FANOUT_BENCH_BASELINE=/tmp/old/fanout cargo bench --bench worker
//! ```
//! With `FANOUT_BENCH_BASELINE` (another build's binary, e.g. the last
//! release), that build and this one run in turn, twice each, on the same
//! broker and sink, and the ratio between them is printed too.
//! Then latency at a steady rate (half of the peak just measured) for
//! `FANOUT_BENCH_STEADY_SECS` (60), and the same with one chart per job on
//! the tests' fake Grafana (realistic page, 4 tabs) for
//! `FANOUT_BENCH_CHART_SECS` (60); 0 skips either. `FANOUT_BENCH_CELERY=0`
//! leaves the Celery baselines out; `FANOUT_BENCH_TRACE=FILE` writes, per
//! job of the last run, its publish time (s from the run's start) and its
//! enqueue→delivery latency (ms), to see when the slow ones happen.
//! Needs the machine's RabbitMQ on 127.0.0.1:5672 and Python with Celery
//! (`pip install -r tests/requirements.txt`). Every run takes its own queue
//! prefix and deletes what it declared.

use std::collections::HashMap;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};

#[path = "support/fake_grafana.rs"]
mod fake_grafana;
use fake_grafana::FakeGrafana;

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// Targets per job: `FANOUT_BENCH_TARGETS` (default 5; 1 is the common
/// case of one alert to one team channel).
fn targets() -> usize {
    static TARGETS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *TARGETS.get_or_init(|| {
        std::env::var("FANOUT_BENCH_TARGETS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|n| (1..=20).contains(n))
            .unwrap_or(5)
    })
}

/// The loopback sink: counts POSTs and when each job's delivery arrived.
#[derive(Clone, Default)]
struct Sink {
    count: Arc<AtomicU64>,
    arrivals: Arc<Mutex<Vec<(String, Instant)>>>,
}

async fn receive(State(sink): State<Sink>, body: Bytes) -> &'static str {
    sink.count.fetch_add(1, Ordering::Relaxed);
    let id = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["job_id"].as_str().map(str::to_string));
    if let Some(id) = id {
        sink.arrivals.lock().unwrap().push((id, Instant::now()));
    }
    "ok"
}

async fn count(State(sink): State<Sink>) -> String {
    sink.count.load(Ordering::Relaxed).to_string()
}

/// A job of `targets()` webhook targets; with `chart`, it also carries one
/// Grafana panel (the fake Grafana's realistic page) to draw first.
fn job(id: &str, chart: bool) -> Vec<u8> {
    let targets: Vec<String> = (0..targets())
        .map(|k| format!(r#"{{"destination":"hook{k}"}}"#))
        .collect();
    let charts = if chart {
        r#","charts":[{"grafana":{"dashboard_uid":"abc","panel_id":7},"width":800,"height":400}]"#
    } else {
        ""
    };
    format!(
        r#"{{"version":1,"id":"{id}","alert":{{"group_id":"{id}","title":"bench"}},"targets":[{}]{charts}}}"#,
        targets.join(",")
    )
    .into_bytes()
}

fn quorum() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args
}

/// (a) The broker alone on fanout's path: jobs published (confirmed)
/// into a quorum queue and consumed with manual acks, one hop per job, as
/// fanout takes each target's first attempt in the stage that consumes
/// the job. Counted in deliveries (jobs × targets). No other work. With a
/// `rate` (jobs/s), each job is published on its schedule and the
/// publish→consume latency is measured: the broker's own share of
/// fanout's enqueue→delivery latency at that rate.
async fn broker_ceiling(jobs: usize, prefix: &str, rate: Option<f64>) -> Ceiling {
    let conn = Connection::connect(URL, ConnectionProperties::default())
        .await
        .expect("RabbitMQ on 127.0.0.1:5672 (rabbitmq-server -detached)");
    let qa = format!("{prefix}ceiling.jobs");
    let setup = conn.create_channel().await.unwrap();
    setup
        .queue_declare(qa.as_str().into(), QueueDeclareOptions::durable(), quorum())
        .await
        .unwrap();
    let done = Arc::new(tokio::sync::Notify::new());
    let acked = Arc::new(AtomicU64::new(0));
    let total = jobs as u64;
    let a = conn.create_channel().await.unwrap();
    a.basic_qos(32, BasicQosOptions::default()).await.unwrap();
    let mut consumer_a = a
        .basic_consume(
            qa.as_str().into(),
            "a".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let (acked_a, done_a) = (acked.clone(), done.clone());
    let consumed = Arc::new(Mutex::new(vec![None; jobs]));
    let consumed_a = consumed.clone();
    // Only a timed run reads each message's id: the throughput run's
    // consumer does nothing but ack, as the ceiling it stands for.
    let timed = rate.is_some();
    tokio::spawn(async move {
        while let Some(Ok(m)) = consumer_a.next().await {
            let i = timed
                .then(|| serde_json::from_slice::<serde_json::Value>(&m.data).ok())
                .flatten()
                .and_then(|v| v["id"].as_str()?.strip_prefix("c-")?.parse::<usize>().ok());
            if let Some(i) = i {
                if let Some(slot) = consumed_a.lock().unwrap().get_mut(i) {
                    *slot = Some(Instant::now());
                }
            }
            m.ack(BasicAckOptions::default()).await.unwrap();
            if acked_a.fetch_add(1, Ordering::Relaxed) + 1 == total {
                done_a.notify_one();
            }
        }
    });
    let producer = conn.create_channel().await.unwrap();
    producer
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let (broker_before, _) = others_cpu();
    let started = Instant::now();
    let mut published = Vec::with_capacity(jobs);
    for i in 0..jobs {
        if let Some(rate) = rate {
            let at = started + Duration::from_secs_f64(i as f64 / rate);
            tokio::time::sleep_until(at.into()).await;
        }
        published.push(Instant::now());
        producer
            .basic_publish(
                "".into(),
                qa.as_str().into(),
                BasicPublishOptions::default(),
                &job(&format!("c-{i}"), false),
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .unwrap();
    }
    producer.wait_for_confirms().await.unwrap();
    tokio::time::timeout(Duration::from_secs(600), done.notified())
        .await
        .expect("the ceiling run finished");
    let elapsed = started.elapsed().as_secs_f64();
    let broker_us = (others_cpu().0 - broker_before) * 1e6 / jobs as f64;
    let _ = setup
        .queue_delete(qa.as_str().into(), QueueDeleteOptions::default())
        .await;
    let _ = conn.close(200, "done".into()).await;
    let latencies: Vec<f64> = consumed
        .lock()
        .unwrap()
        .iter()
        .zip(&published)
        .filter_map(|(c, p)| Some(c.as_ref()?.duration_since(*p).as_secs_f64() * 1000.0))
        .collect();
    let pct = percentiles(latencies);
    Ceiling {
        per_s: (jobs * targets()) as f64 / elapsed,
        broker_us,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        max_ms: pct(1.0),
    }
}

/// Latencies (ms) sorted; then `p` (0–1) → that percentile (0 when empty).
fn percentiles(mut latencies: Vec<f64>) -> impl Fn(f64) -> f64 {
    latencies.sort_by(f64::total_cmp);
    move |p| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0.0)
    }
}

/// The broker alone: deliveries/s, its CPU per message, and the
/// publish→consume latency.
struct Ceiling {
    per_s: f64,
    broker_us: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

/// Resident memory (KiB) and CPU seconds of a process.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ")".
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i)?.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

/// CPU seconds of RabbitMQ's Erlang VM (every `beam.smp` on the machine)
/// and of this bench process (publisher and sink), to split the machine's
/// two cores between the broker, the bench and the worker.
fn others_cpu() -> (f64, f64) {
    let broker = std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|pid| {
                    std::fs::read_to_string(format!("/proc/{pid}/comm"))
                        .is_ok_and(|c| c.trim() == "beam.smp")
                })
                .map(cpu_seconds)
                .sum()
        })
        .unwrap_or(0.0);
    (broker, cpu_seconds(std::process::id()))
}

struct Worker(Child);
impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct FanoutRun {
    per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    rss_idle_kib: u64,
    rss_peak_kib: u64,
    cpu_us_per_delivery: f64,
    /// RabbitMQ's and this bench's (publisher + sink) CPU per delivery.
    broker_us_per_delivery: f64,
    bench_us_per_delivery: f64,
}

/// (the subject) `fanout worker` (release build) delivering to the sink.
/// One run of `fanout worker`: how many jobs, published all at once or at
/// a steady rate (jobs/s), and, for jobs with a chart, the config that
/// points the renderer at Grafana (`{dir}` stands for the run's folder).
struct Spec<'a> {
    jobs: usize,
    rate: Option<f64>,
    chart: Option<&'a str>,
}

impl Spec<'_> {
    fn all_at_once(jobs: usize) -> Self {
        Spec {
            jobs,
            rate: None,
            chart: None,
        }
    }
}

async fn fanout_run(
    binary: &std::path::Path,
    spec: &Spec<'_>,
    prefix: &str,
    sink_url: &str,
    sink: &Sink,
) -> FanoutRun {
    let Spec { jobs, rate, chart } = *spec;
    let dir = tempfile::tempdir().unwrap();
    let chart_config = chart
        .map(|c| c.replace("{dir}", &dir.path().display().to_string()))
        .unwrap_or_default();
    // Stored charts are linked from http.public_url (nothing fetches them here).
    let public_url = if chart.is_some() {
        "public_url = \"http://127.0.0.1:9/\"\n"
    } else {
        ""
    };
    let hooks: String = (0..targets())
        .map(|k| format!("[destinations.hook{k}]\nchannel = \"webhook\"\nurl = \"{sink_url}\"\ntimeout = \"10s\"\n\n"))
        .collect();
    let cfg = dir.path().join("fanout.toml");
    std::fs::write(
        &cfg,
        format!(
            "[http]\nlisten = \"127.0.0.1:0\"\n{public_url}\n[broker]\nurl = \"{URL}\"\nprefix = \"{prefix}\"\n\n\
             [store]\nurl = \"sqlite://{}\"\n\n{chart_config}\n{hooks}",
            dir.path().join("state.sqlite").display()
        ),
    )
    .unwrap();
    let log = dir.path().join("worker.log");
    let worker = Worker(
        Command::new(binary)
            .args(["worker", "--config"])
            .arg(&cfg)
            .current_dir(dir.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("the fanout binary"),
    );
    let pid = worker.0.id();
    // Ready when /readyz would say so: wait for the queues to exist.
    let conn = Connection::connect(URL, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let started = Instant::now();
    loop {
        let probe = conn.create_channel().await.unwrap();
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        if let Ok(q) = probe
            .queue_declare(
                format!("{prefix}fanout.deliver.webhook").as_str().into(),
                passive,
                FieldTable::default(),
            )
            .await
        {
            if q.consumer_count() > 0 {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the worker did not start: {}",
            {
                let mut s = String::new();
                let _ = std::fs::File::open(&log).and_then(|mut f| f.read_to_string(&mut s));
                s
            }
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle_kib = rss_kib(pid);
    let cpu_before = cpu_seconds(pid);
    let (broker_before, bench_before) = others_cpu();

    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let before = sink.count.load(Ordering::Relaxed);
    sink.arrivals.lock().unwrap().clear();
    let mut published = HashMap::new();
    let start = Instant::now();
    for i in 0..jobs {
        // At a steady rate: job i goes out at i / rate seconds.
        if let Some(rate) = rate {
            let at = start + Duration::from_secs_f64(i as f64 / rate);
            tokio::time::sleep_until(at.into()).await;
        }
        let id = format!("b-{i}");
        ch.basic_publish(
            format!("{prefix}fanout").as_str().into(),
            "job".into(),
            BasicPublishOptions::default(),
            &job(&id, chart.is_some()),
            BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type("application/json".into()),
        )
        .await
        .unwrap();
        published.insert(id, Instant::now());
    }
    ch.wait_for_confirms().await.unwrap();
    let total = (jobs * targets()) as u64;
    let mut rss_peak_kib = rss_idle_kib;
    while sink.count.load(Ordering::Relaxed) - before < total {
        rss_peak_kib = rss_peak_kib.max(rss_kib(pid));
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "fanout did not finish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu_before;
    let (broker_after, bench_after) = others_cpu();
    let latencies: Vec<f64> = sink
        .arrivals
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(id, at)| Some(at.duration_since(*published.get(id)?).as_secs_f64() * 1000.0))
        .collect();
    if let Ok(path) = std::env::var("FANOUT_BENCH_TRACE") {
        let lines: Vec<String> = sink
            .arrivals
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(id, at)| {
                let p = published.get(id)?;
                Some(format!(
                    "{:.3} {:.2}",
                    p.duration_since(start).as_secs_f64(),
                    at.duration_since(*p).as_secs_f64() * 1000.0
                ))
            })
            .collect();
        std::fs::write(path, lines.join("\n")).unwrap();
    }
    let pct = percentiles(latencies);
    drop(worker);
    let cleanup = conn.create_channel().await.unwrap();
    for q in fanout::broker::Topology::new(prefix).queues() {
        let _ = cleanup
            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    for x in fanout::broker::Topology::new(prefix).exchanges() {
        let _ = cleanup
            .exchange_delete(x.as_str().into(), Default::default())
            .await;
    }
    FanoutRun {
        per_s: total as f64 / elapsed,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        max_ms: pct(1.0),
        rss_idle_kib,
        rss_peak_kib,
        cpu_us_per_delivery: cpu * 1e6 / total as f64,
        broker_us_per_delivery: (broker_after - broker_before) * 1e6 / total as f64,
        bench_us_per_delivery: (bench_after - bench_before) * 1e6 / total as f64,
    }
}

/// (b) Celery 5 doing the same deliveries; its JSON report.
fn celery_run(
    jobs: usize,
    prefix: &str,
    sink_url: &str,
    pool: &str,
    concurrency: u32,
) -> serde_json::Value {
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/benches/celery_baseline/run.py"
        ))
        .args(["--broker", "amqp://guest:guest@127.0.0.1:5672//"])
        .args(["--queue", &format!("{prefix}celery-{pool}")])
        .args(["--sink", sink_url])
        .args([
            "--jobs",
            &jobs.to_string(),
            "--targets",
            &targets().to_string(),
        ])
        .args(["--pool", pool, "--concurrency", &concurrency.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .expect("python3 (pip install -r tests/requirements.txt)");
    assert!(out.status.success(), "the Celery baseline failed");
    serde_json::from_slice(&out.stdout).expect("one JSON line from run.py")
}

fn main() {
    let jobs: usize = std::env::var("FANOUT_BENCH_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000 / targets());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("bench-{nanos}.");
    let sink = Sink::default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let sink_url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/hook", post(receive))
        .route("/count", get(count))
        .with_state(sink.clone());
    rt.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let _ = axum::serve(listener, app).await;
    });

    let total = jobs * targets();
    println!(
        "{jobs} jobs × {} webhook targets = {total} deliveries through RabbitMQ to a loopback sink\n",
        targets()
    );
    // The ceiling over at least 20,000 messages: shorter runs swing ±50%.
    let Ceiling {
        per_s: ceiling,
        broker_us: ceiling_broker_us,
        ..
    } = rt.block_on(broker_ceiling(jobs.max(20_000), &prefix, None));
    let this = std::path::Path::new(env!("CARGO_BIN_EXE_fanout"));
    let f = rt.block_on(fanout_run(
        this,
        &Spec::all_at_once(jobs),
        &prefix,
        &sink_url,
        &sink,
    ));
    if let Ok(baseline) = std::env::var("FANOUT_BENCH_BASELINE") {
        let baseline = std::path::Path::new(&baseline);
        let mut runs = (Vec::new(), vec![f.per_s]);
        for round in 0..2 {
            runs.0.push(
                rt.block_on(fanout_run(
                    baseline,
                    &Spec::all_at_once(jobs),
                    &prefix,
                    &sink_url,
                    &sink,
                ))
                .per_s,
            );
            if round == 0 {
                runs.1.push(
                    rt.block_on(fanout_run(
                        this,
                        &Spec::all_at_once(jobs),
                        &prefix,
                        &sink_url,
                        &sink,
                    ))
                    .per_s,
                );
            }
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        println!(
            "this build {:?} vs baseline {:?} deliveries/s: {:.2}× ({})",
            runs.1.iter().map(|r| r.round()).collect::<Vec<_>>(),
            runs.0.iter().map(|r| r.round()).collect::<Vec<_>>(),
            mean(&runs.1) / mean(&runs.0),
            baseline.display()
        );
        println!();
    }
    // FANOUT_BENCH_CELERY=0 leaves the Celery baselines out (a quicker run
    // while working on fanout's own numbers).
    let celery = std::env::var("FANOUT_BENCH_CELERY").map_or(true, |v| v != "0");
    let baselines: Vec<(&str, serde_json::Value)> = if celery {
        vec![
            (
                "prefork ×8",
                celery_run(jobs, &prefix, &sink_url, "prefork", 8),
            ),
            (
                "threads ×32",
                celery_run(jobs, &prefix, &sink_url, "threads", 32),
            ),
        ]
    } else {
        Vec::new()
    };
    let per_s = |v: &serde_json::Value| v["deliveries_per_s"].as_f64().unwrap_or(f64::NAN);

    println!("{:<34} {:>12} {:>10}", "run", "deliveries/s", "ratio");
    println!(
        "{:<34} {:>12.0} {:>10}",
        "broker ceiling (same queue path)", ceiling, "1.00"
    );
    println!(
        "{:<34} {:>12.0} {:>9.2}×",
        "fanout worker",
        f.per_s,
        f.per_s / ceiling
    );
    for (name, v) in &baselines {
        println!(
            "{:<34} {:>12.0} {:>9.2}×",
            format!("celery 5 {name}, acks_late"),
            per_s(v),
            per_s(v) / ceiling
        );
    }
    println!();
    println!("fanout / broker ceiling: {:.0}%", 100.0 * f.per_s / ceiling);
    for (name, v) in &baselines {
        println!("fanout / celery {name}: {:.1}×", f.per_s / per_s(v));
    }
    println!("fanout enqueue→delivery latency: p50 {:.0} ms, p99 {:.0} ms (all {total} enqueued at once)", f.p50_ms, f.p99_ms);
    println!(
        "fanout RSS: idle {} KiB, peak {} KiB; CPU {:.0} µs per delivery",
        f.rss_idle_kib, f.rss_peak_kib, f.cpu_us_per_delivery
    );
    // Two cores are 2,000,000 µs of CPU a second: what each party spends
    // per delivery bounds the rate they can reach together.
    let spent = f.cpu_us_per_delivery + f.broker_us_per_delivery + f.bench_us_per_delivery;
    println!(
        "CPU per delivery: fanout {:.0} µs + RabbitMQ {:.0} µs (ceiling run: {:.0} µs per message) + bench publisher and sink {:.0} µs = {:.0} µs, i.e. at most {:.0} deliveries/s on 2 cores",
        f.cpu_us_per_delivery,
        f.broker_us_per_delivery,
        ceiling_broker_us,
        f.bench_us_per_delivery,
        spent,
        2e6 / spent
    );
    // Latency at a steady rate: half of the peak just measured, for
    // FANOUT_BENCH_STEADY_SECS (60), publishing each job on its schedule.
    let secs: f64 = std::env::var("FANOUT_BENCH_STEADY_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60.0);
    if secs > 0.0 {
        let rate = f.per_s / 2.0 / targets() as f64;
        let steady_jobs = (rate * secs) as usize;
        let s = rt.block_on(fanout_run(
            this,
            &Spec {
                jobs: steady_jobs,
                rate: Some(rate),
                chart: None,
            },
            &prefix,
            &sink_url,
            &sink,
        ));
        println!(
            "fanout at a steady {:.0} deliveries/s for {secs:.0} s (half of peak, no chart): enqueue→delivery p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            rate * targets() as f64,
            s.p50_ms,
            s.p99_ms,
            s.max_ms
        );
        // The broker alone at the same rate, publish → consume: what the
        // queue itself adds to the latency above.
        let b = rt.block_on(broker_ceiling(steady_jobs, &prefix, Some(rate)));
        println!(
            "the broker alone at the same rate (publish → consume, one quorum queue): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            b.p50_ms, b.p99_ms, b.max_ms
        );
    }
    // The same with a chart: each job draws one panel of the fake Grafana's
    // realistic page (~1.4 s of the page's own) on a pool of 4 tabs, first
    // as many as the pool takes at once (the peak), then half of that peak
    // for FANOUT_BENCH_CHART_SECS (60).
    let chart_secs: f64 = std::env::var("FANOUT_BENCH_CHART_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60.0);
    if chart_secs > 0.0 {
        let grafana = FakeGrafana::start();
        let chart = format!(
            "[render]\nignore_https_errors = true\ntimeout = \"30s\"\ntabs = 4\n\n\
             [render.grafana]\nurl = \"{}\"\ntoken = \"{}\"\n\n\
             [storage]\nkind = \"internal\"\ndir = \"{{dir}}/images\"\n\
             signing_key = \"a-bench-signing-key-of-32-bytes!!\"\n",
            grafana.url, grafana.token
        );
        let peak = rt.block_on(fanout_run(
            this,
            &Spec {
                jobs: 40,
                rate: None,
                chart: Some(&chart),
            },
            &prefix,
            &sink_url,
            &sink,
        ));
        let rate = peak.per_s / 2.0 / targets() as f64;
        let s = rt.block_on(fanout_run(
            this,
            &Spec {
                jobs: ((rate * chart_secs) as usize).max(10),
                rate: Some(rate),
                chart: Some(&chart),
            },
            &prefix,
            &sink_url,
            &sink,
        ));
        println!(
            "fanout with a chart (realistic page, 4 tabs): peak {:.2} jobs/s; at a steady {:.2} jobs/s for {chart_secs:.0} s: enqueue→delivery p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            peak.per_s / targets() as f64,
            rate,
            s.p50_ms,
            s.p99_ms,
            s.max_ms
        );
    }
    for (name, v) in &baselines {
        println!(
            "celery {name}: RSS idle {} KiB, peak {} KiB (process tree); CPU {:.0} µs per delivery",
            v["rss_idle_kib"],
            v["rss_peak_kib"],
            v["cpu_seconds"].as_f64().unwrap_or(f64::NAN) * 1e6 / total as f64
        );
    }
}
