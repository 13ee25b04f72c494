//! Escalation chains at rest: N chains each waiting a random 1..=MAX s, all
//! pending at once, then one webhook each. How late do they fire, and does
//! the worker's memory stay flat while they wait? Side by side with Celery 5
//! holding the same waits as `countdown=` tasks
//! (`benches/celery_baseline/countdown.py`).
//!
//! ```text
//! cargo bench --bench chains                        # 10,000 chains, 1..=120 s
//! FANOUT_BENCH_CHAINS=200 FANOUT_BENCH_MAX_WAIT=10 cargo bench --bench chains
//! ```
//! Other knobs: `FANOUT_BENCH_SEED` (the waits), `FANOUT_BENCH_RUST_LOG`
//! (the worker's `RUST_LOG`, default `warn`).
//!
//! Each job is `{"escalation":[{"wait":"<w>s"},{"notify":["hook"]}]}` with
//! one webhook target, published with confirms to `{prefix}fanout` (key
//! `job`), stamped with `fanout-enqueued` (unix ms, as `fanout enqueue`
//! stamps it) just before its publish. Its due time is that stamp plus w;
//! lateness is the sink's arrival time (wall clock) minus that. Needs the machine's RabbitMQ on 127.0.0.1:5672; the Celery half
//! needs Python with Celery (`pip install -r tests/requirements.txt`) and
//! is skipped without it. Every run takes its own queue prefix and deletes
//! what it declared.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties, PublisherConfirm};

use fanout::broker::{Route, Topology};
use fanout::channels::ChannelKind;

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const CELERY_BROKER: &str = "amqp://guest:guest@127.0.0.1:5672//";
const RSS_EVERY: Duration = Duration::from_secs(5);
/// How long past the last due time a run may take before it gives up.
const GRACE_S: u64 = 60;
const CELERY_THREADS: u32 = 8;

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v:?}: expected a whole number")),
    )
}

/// The loopback sink: when each job id's POSTs arrived (unix ms).
/// `GET /count` answers how many distinct job ids arrived, `GET /arrivals`
/// all of them as `{"job_id": [ms, ...]}` (countdown.py reads both).
#[derive(Clone, Default)]
struct Sink {
    arrivals: Arc<Mutex<HashMap<String, Vec<i64>>>>,
}

impl Sink {
    fn distinct(&self) -> usize {
        self.arrivals.lock().unwrap().len()
    }
}

async fn receive(State(sink): State<Sink>, body: Bytes) -> &'static str {
    let at = unix_ms();
    let id = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["job_id"].as_str().map(str::to_string));
    if let Some(id) = id {
        sink.arrivals
            .lock()
            .unwrap()
            .entry(id)
            .or_default()
            .push(at);
    }
    "ok"
}

async fn count(State(sink): State<Sink>) -> String {
    sink.distinct().to_string()
}

async fn arrivals(State(sink): State<Sink>) -> String {
    serde_json::to_string(&*sink.arrivals.lock().unwrap()).unwrap()
}

/// A fresh sink on 127.0.0.1:0 and its POST URL.
fn start_sink(rt: &tokio::runtime::Handle) -> (Sink, String) {
    let sink = Sink::default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/hook", post(receive))
        .route("/count", get(count))
        .route("/arrivals", get(arrivals))
        .with_state(sink.clone());
    rt.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let _ = axum::serve(listener, app).await;
    });
    (sink, url)
}

fn job(i: usize, wait_s: u64) -> Vec<u8> {
    format!(
        r#"{{"version":1,"id":"c-{i}","alert":{{"group_id":"c-{i}","title":"bench"}},"targets":[{{"destination":"hook"}}],"escalation":[{{"wait":"{wait_s}s"}},{{"notify":["hook"]}}]}}"#
    )
    .into_bytes()
}

/// Resident memory (KiB) of a process.
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

struct Worker(Child);
impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Deletes the prefix's queues and exchanges when dropped (after the
/// worker: declare it first), panics included.
struct Declared(String);
impl Drop for Declared {
    fn drop(&mut self) {
        let prefix = self.0.clone();
        // A runtime of its own on its own thread: usable from any context.
        let done = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    let Ok(conn) = Connection::connect(URL, ConnectionProperties::default()).await
                    else {
                        eprintln!("cleanup: cannot reach RabbitMQ; {prefix}* left behind");
                        return;
                    };
                    let t = Topology::new(&prefix);
                    for q in t.queues() {
                        if let Ok(ch) = conn.create_channel().await {
                            let _ = ch
                                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                                .await;
                        }
                    }
                    for x in t.exchanges() {
                        if let Ok(ch) = conn.create_channel().await {
                            let _ = ch
                                .exchange_delete(
                                    x.as_str().into(),
                                    ExchangeDeleteOptions::default(),
                                )
                                .await;
                        }
                    }
                    let _ = conn.close(200, "done".into()).await;
                })
        })
        .join();
        if done.is_err() {
            eprintln!("cleanup of {}* failed", self.0);
        }
    }
}

/// Message count and consumer count of a queue, if it exists.
async fn queue_state(conn: &Connection, name: &str) -> Option<(u32, u32)> {
    let ch = conn.create_channel().await.ok()?;
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let q = ch
        .queue_declare(name.into(), passive, FieldTable::default())
        .await
        .ok()?;
    let _ = ch.close(200, "probe".into()).await;
    Some((q.message_count(), q.consumer_count()))
}

/// Keep the worker's temp dir and say where its log is, with its end.
fn keep_log(dir: tempfile::TempDir) -> String {
    let log = dir.keep().join("worker.log");
    format!(
        "worker log: {} (kept); last lines:\n{}",
        log.display(),
        tail(&log, 30)
    )
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Nearest rank: the smallest value with at least `p` of them at or below
/// it (countdown.py computes the same).
fn percentile(sorted: &[f64], per_mille: usize) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (per_mille * sorted.len()).div_ceil(1000).max(1);
    Some(sorted[rank.min(sorted.len()) - 1])
}

#[derive(Debug, Default)]
struct Run {
    expected: usize,
    received: usize,
    duplicates: usize,
    p50: Option<f64>,
    p90: Option<f64>,
    p99: Option<f64>,
    max: Option<f64>,
    min: Option<f64>,
    publish_s: f64,
    rss_baseline_kib: u64,
    /// (seconds since the first publish, KiB); the last at the end of the wait.
    rss_samples: Vec<(f64, u64)>,
}

impl Run {
    fn complete(&self) -> bool {
        self.received == self.expected
    }

    fn lateness(&mut self, due_ms: &[i64], arrivals: &HashMap<String, Vec<i64>>) {
        let mut late = Vec::with_capacity(due_ms.len());
        for (i, due) in due_ms.iter().enumerate() {
            if let Some(at) = arrivals.get(&format!("c-{i}")) {
                let first = at.iter().min().copied().unwrap_or_default();
                late.push((first - due) as f64 / 1000.0);
                self.duplicates += at.len() - 1;
            }
        }
        late.sort_by(f64::total_cmp);
        self.received = late.len();
        self.p50 = percentile(&late, 500);
        self.p90 = percentile(&late, 900);
        self.p99 = percentile(&late, 990);
        self.max = late.last().copied();
        self.min = late.first().copied();
    }

    fn rss(&self) -> (u64, u64, u64) {
        let kib = self.rss_samples.iter().map(|(_, k)| *k);
        (
            kib.clone().min().unwrap_or(0),
            kib.clone().max().unwrap_or(0),
            self.rss_samples.last().map_or(0, |s| s.1),
        )
    }

    fn print(&self, name: &str) {
        println!(
            "{name}: {}/{} received, {} duplicates, published in {:.2} s",
            self.received, self.expected, self.duplicates, self.publish_s
        );
        println!(
            "  lateness s: p50 {} p90 {} p99 {} max {} (min {})",
            secs(self.p50),
            secs(self.p90),
            secs(self.p99),
            secs(self.max),
            secs(self.min)
        );
        let (min, max, last) = self.rss();
        let mut series = String::new();
        for (_, kib) in &self.rss_samples {
            let _ = write!(series, " {}", mib(*kib));
        }
        println!(
            "  RSS MiB: before enqueue {}; while waiting min {} max {} last {}",
            mib(self.rss_baseline_kib),
            mib(min),
            mib(max),
            mib(last)
        );
        println!("  RSS MiB every {} s:{series}", RSS_EVERY.as_secs());
    }
}

fn secs(v: Option<f64>) -> String {
    v.map_or("-".into(), |s| format!("{s:.3}"))
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// The `fanout worker` binary (release build) running the chains.
async fn fanout_run(waits: &[u64], prefix: &str) -> Run {
    let (sink, sink_url) = start_sink(&tokio::runtime::Handle::current());
    let dir = tempfile::Builder::new()
        .prefix("fanout-bench-chains.")
        .tempdir()
        .unwrap();
    let cfg = dir.path().join("fanout.toml");
    std::fs::write(
        &cfg,
        format!(
            "[http]\nlisten = \"127.0.0.1:0\"\n\n[broker]\nurl = \"{URL}\"\nprefix = \"{prefix}\"\n\n\
             [store]\nurl = \"sqlite://{}\"\n\n\
             [destinations.hook]\nchannel = \"webhook\"\nurl = \"{sink_url}\"\ntimeout = \"10s\"\n",
            dir.path().join("state.db").display()
        ),
    )
    .unwrap();
    let log = dir.path().join("worker.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let rust_log = std::env::var("FANOUT_BENCH_RUST_LOG").unwrap_or_else(|_| "warn".into());
    let declared = Declared(prefix.to_string());
    let mut worker = Worker(
        Command::new(env!("CARGO_BIN_EXE_fanout"))
            .args(["worker", "--config"])
            .arg(&cfg)
            .current_dir(dir.path())
            .env("RUST_LOG", rust_log)
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("the fanout binary"),
    );
    let pid = worker.0.id();

    // Ready: consumers on the queues the chains go through.
    let conn = Connection::connect(URL, ConnectionProperties::default())
        .await
        .expect("RabbitMQ on 127.0.0.1:5672 (rabbitmq-server -detached)");
    let t = Topology::new(prefix);
    let watched = [
        t.jobs.clone(),
        t.queue(Route::Chains),
        t.queue(Route::Deliver(ChannelKind::Webhook)),
    ];
    let started = Instant::now();
    loop {
        let mut ready = true;
        for q in &watched {
            ready &= matches!(queue_state(&conn, q).await, Some((_, c)) if c > 0);
        }
        if ready {
            break;
        }
        if let Ok(Some(status)) = worker.0.try_wait() {
            drop(worker);
            panic!("the worker exited at start: {status}\n{}", keep_log(dir));
        }
        if started.elapsed() > Duration::from_secs(30) {
            drop(worker);
            panic!("the worker was not ready after 30 s\n{}", keep_log(dir));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut run = Run {
        expected: waits.len(),
        rss_baseline_kib: rss_kib(pid),
        ..Run::default()
    };

    // RSS every 5 s from the first publish on.
    let start = Instant::now();
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampler = {
        let samples = samples.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RSS_EVERY);
            loop {
                tick.tick().await;
                let kib = rss_kib(pid);
                samples
                    .lock()
                    .unwrap()
                    .push((start.elapsed().as_secs_f64(), kib));
            }
        })
    };

    fn enqueued_at(ms: i64) -> FieldTable {
        let mut headers = FieldTable::default();
        headers.insert(
            fanout::broker::ENQUEUED_HEADER.into(),
            AMQPValue::LongLongInt(ms),
        );
        headers
    }
    let mut stamps = Vec::with_capacity(waits.len());

    // Publish, each confirm awaited (in order) by a second task that notes
    // the time it came back.
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, PublisherConfirm)>();
    let n = waits.len();
    let confirmer = tokio::spawn(async move {
        let mut at = vec![0i64; n];
        while let Some((i, confirm)) = rx.recv().await {
            let confirmation = confirm.await.expect("a publisher confirm");
            at[i] = unix_ms();
            assert!(confirmation.is_ack(), "c-{i}: nacked by the broker");
            assert!(
                confirmation.take_message().is_none(),
                "c-{i}: returned unroutable by the broker"
            );
        }
        at
    });
    let exchange = t.exchange.clone();
    let mandatory = BasicPublishOptions {
        mandatory: true,
        ..Default::default()
    };
    for (i, w) in waits.iter().enumerate() {
        let stamp = unix_ms();
        stamps.push(stamp);
        let confirm = ch
            .basic_publish(
                exchange.as_str().into(),
                "job".into(),
                mandatory,
                &job(i, *w),
                // Stamped as `fanout enqueue` stamps it: the chain's first
                // wait counts from the publish, not from when a worker
                // reached the job in the backlog.
                BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_content_type("application/json".into())
                    .with_headers(enqueued_at(stamp)),
            )
            .await
            .unwrap();
        tx.send((i, confirm)).unwrap();
    }
    drop(tx);
    // Every job confirmed; the due times count from the stamps.
    let _confirmed = tokio::time::timeout(Duration::from_secs(120), confirmer)
        .await
        .expect("publisher confirms within 120 s")
        .unwrap();
    run.publish_s = start.elapsed().as_secs_f64();
    let due_ms: Vec<i64> = stamps
        .iter()
        .zip(waits)
        .map(|(at, w)| at + *w as i64 * 1000)
        .collect();
    let deadline_ms = due_ms.iter().max().copied().unwrap_or(0) + GRACE_S as i64 * 1000;

    let mut exited = None;
    while sink.distinct() < n && unix_ms() < deadline_ms {
        if let Ok(Some(status)) = worker.0.try_wait() {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sampler.abort();
    let mut rss_samples = std::mem::take(&mut *samples.lock().unwrap());
    rss_samples.push((start.elapsed().as_secs_f64(), rss_kib(pid)));
    run.rss_samples = rss_samples;
    run.lateness(&due_ms, &sink.arrivals.lock().unwrap());

    if run.complete() {
        drop(worker);
        drop(declared);
        return run;
    }
    // Where the missing chains are, before anything is deleted.
    let mut depths = String::new();
    for q in t.queues() {
        if let Some((messages, consumers)) = queue_state(&conn, &q).await {
            if messages > 0 {
                let _ = writeln!(depths, "  {q}: {messages} messages, {consumers} consumers");
            }
        }
    }
    drop(worker);
    drop(declared);
    println!(
        "FANOUT INCOMPLETE: {}/{n} chains delivered by the deadline (last due + {GRACE_S} s){}\nqueues holding messages at the deadline:\n{depths}{}",
        run.received,
        exited.map_or(String::new(), |s| format!("; the worker exited: {s}")),
        keep_log(dir)
    );
    run
}

/// Celery 5 holding the same waits as countdown tasks: countdown.py's
/// result, read into a [`Run`].
fn celery_run(
    rt: &tokio::runtime::Runtime,
    waits_file: &Path,
    n: usize,
    max_wait: u64,
    prefix: &str,
) -> Result<Run, String> {
    let (_sink, sink_url) = start_sink(rt.handle());
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/benches/celery_baseline/countdown.py"
        ))
        .args(["--broker", CELERY_BROKER])
        .args(["--queue", &format!("{prefix}celery.countdown")])
        .args(["--sink", &sink_url])
        .args(["--chains", &n.to_string()])
        .args(["--max-wait", &max_wait.to_string()])
        .arg("--waits")
        .arg(waits_file)
        .args(["--concurrency", &CELERY_THREADS.to_string()])
        .args(["--grace", &GRACE_S.to_string()])
        .args(["--rss-every", &RSS_EVERY.as_secs().to_string()])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if !out.status.success() {
        return Err(format!("countdown.py failed ({})", out.status));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("countdown.py printed no JSON line: {e}"))?;
    let late = |k: &str| v["lateness_s"][k].as_f64();
    let kib = |k: &str| v[k].as_u64().unwrap_or(0);
    let run = Run {
        expected: n,
        received: v["received"].as_u64().unwrap_or(0) as usize,
        duplicates: v["duplicates"].as_u64().unwrap_or(0) as usize,
        p50: late("p50"),
        p90: late("p90"),
        p99: late("p99"),
        max: late("max"),
        min: v["lateness_min_s"].as_f64(),
        publish_s: v["publish_seconds"].as_f64().unwrap_or(f64::NAN),
        rss_baseline_kib: kib("rss_baseline_kib"),
        rss_samples: v["rss_samples"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| Some((s[0].as_f64()?, s[1].as_u64()?)))
            .collect(),
    };
    if let Some(log) = v["worker_log"].as_str() {
        eprintln!("celery worker log (kept): {log}");
    }
    Ok(run)
}

fn main() {
    let n = env_u64("FANOUT_BENCH_CHAINS").unwrap_or(10_000) as usize;
    let max_wait = env_u64("FANOUT_BENCH_MAX_WAIT").unwrap_or(120).max(1);
    let seed = env_u64("FANOUT_BENCH_SEED").unwrap_or_else(|| unix_ms() as u64);
    assert!(n > 0, "FANOUT_BENCH_CHAINS must be at least 1");
    let mut rng = fastrand::Rng::with_seed(seed);
    let waits: Vec<u64> = (0..n).map(|_| rng.u64(1..=max_wait)).collect();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("bench-chains-{nanos}.");
    let celery = Command::new("python3")
        .args(["-c", "import celery"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());

    println!("chains: {n}, each `wait <w>s` then one webhook; w uniform in 1..={max_wait} s (whole seconds), seed {seed}");
    println!("all enqueued at once through RabbitMQ (127.0.0.1:5672, prefix {prefix})");
    println!("due = publish time + w; publish time = wall clock (ms) just before that job's publish, sent along as its fanout-enqueued header (as `fanout enqueue` stamps it)");
    println!("lateness = arrival at the loopback sink (wall clock) - due; percentiles nearest-rank over the jobs received");
    println!(
        "RSS = VmRSS of the worker (Celery: summed over its process tree): once before enqueue, then every {} s from the first publish and once at the end of the wait",
        RSS_EVERY.as_secs()
    );
    println!("deadline: last due + {GRACE_S} s");
    println!(
        "celery: {}",
        if celery {
            format!("5.x, --pool threads -c {CELERY_THREADS}, acks_late, prefetch multiplier 1, countdown=w, classic queue")
        } else {
            "not available (python3 -c 'import celery' failed): skipped".into()
        }
    );
    println!();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let f = rt.block_on(fanout_run(&waits, &prefix));
    let mut failed = !f.complete();
    f.print("fanout worker");
    println!();

    let c = celery.then(|| {
        let dir = tempfile::tempdir().unwrap();
        let file: PathBuf = dir.path().join("waits.txt");
        let text: String = waits.iter().map(|w| format!("{w}\n")).collect();
        std::fs::write(&file, text).unwrap();
        let c = celery_run(&rt, &file, n, max_wait, &prefix);
        match &c {
            Ok(run) => run.print(&format!("celery 5 (threads ×{CELERY_THREADS})")),
            Err(e) => println!("celery 5: {e}"),
        }
        println!();
        c
    });

    let c = c.and_then(Result::ok);
    failed |= celery && !c.as_ref().is_some_and(Run::complete);
    type Row = (&'static str, fn(&Run) -> String);
    let rows: [Row; 11] = [
        ("received / expected", |r| {
            format!("{}/{}", r.received, r.expected)
        }),
        ("duplicates", |r| r.duplicates.to_string()),
        ("lateness p50 (s)", |r| secs(r.p50)),
        ("lateness p90 (s)", |r| secs(r.p90)),
        ("lateness p99 (s)", |r| secs(r.p99)),
        ("lateness max (s)", |r| secs(r.max)),
        ("RSS before enqueue (MiB)", |r| mib(r.rss_baseline_kib)),
        ("RSS waiting min (MiB)", |r| mib(r.rss().0)),
        ("RSS waiting max (MiB)", |r| mib(r.rss().1)),
        ("RSS end of wait (MiB)", |r| mib(r.rss().2)),
        ("publish all (s)", |r| format!("{:.2}", r.publish_s)),
    ];
    println!(
        "{:<26} {:>14} {:>22}",
        "",
        "fanout",
        format!("celery threads ×{CELERY_THREADS}")
    );
    for (name, value) in rows {
        let celery_cell = c.as_ref().map_or("-".to_string(), value);
        println!("{name:<26} {:>14} {celery_cell:>22}", value(&f));
    }
    if failed {
        std::process::exit(1);
    }
}
