//! `cargo bench --bench ingest`: Alertmanager-shaped bodies (1 and 20
//! alerts each) posted to `fanout serve`'s `/ingest/alertmanager` on
//! loopback with keep-alive, every job confirmed by the machine's RabbitMQ
//! before the answer; side by side in one run with the broker's own
//! confirmed-publish ceiling for the same job messages (made by the same
//! code from the same bodies, published by fanout's own broker client to
//! the prefix's jobs quorum queue, at the same concurrency).
//!
//! Prints alerts/s and answer latency (p50/p99) for each body size, the
//! ratio to the ceiling, and p99 at a steady half of the one-alert rate.
//! The one-alert run and the ceiling alternate three times; the medians
//! are shown. Knobs: FANOUT_BENCH_POSTS (default 10,000 one-alert posts a
//! round; a fifth as many 20-alert posts), FANOUT_BENCH_CONCURRENCY
//! (default 16).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::options::QueueDeleteOptions;
use lapin::{Connection, ConnectionProperties};

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const TOKEN: &str = "bench-ingest-token-0123456789";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An Alertmanager group of `n` alerts, each with its own fingerprint.
fn body(post: usize, n: usize) -> Vec<u8> {
    let alerts: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "status": "firing",
                "labels": {"alertname": "CheckoutLatencyHigh", "instance": format!("checkout-{i}"), "severity": "critical", "team": "payments"},
                "annotations": {"summary": "Checkout p99 above 2s", "description": "p99 is 2.4s"},
                "startsAt": "2026-11-30T08:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph?g0.expr=checkout_p99",
                "fingerprint": format!("{:08x}{:08x}", post, i),
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "version": "4", "groupKey": "{}:{alertname=\"CheckoutLatencyHigh\"}", "truncatedAlerts": 0,
        "status": "firing", "receiver": "fanout", "externalURL": "http://alertmanager:9093",
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "alerts": alerts,
    }))
    .unwrap()
}

/// `fanout_ingest_seconds`' sum and count for Alertmanager, from the
/// server's `/metrics`: the time spent inside the endpoint.
async fn handler_seconds(port: u16) -> (f64, f64) {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("/metrics")
        .text()
        .await
        .unwrap();
    let value = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name) && l.contains("source=\"alertmanager\""))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (
        value("fanout_ingest_seconds_sum"),
        value("fanout_ingest_seconds_count"),
    )
}

/// Empty the jobs queue (nothing consumes it here), so each run meets
/// the same queue rather than the previous runs' hundred thousand jobs.
async fn purge(prefix: &str) {
    let conn = Connection::connect(URL, ConnectionProperties::default())
        .await
        .expect("RabbitMQ");
    let channel = conn.create_channel().await.unwrap();
    let jobs = fanout::broker::Topology::new(prefix).jobs;
    channel
        .queue_purge(jobs.as_str().into(), Default::default())
        .await
        .expect("purge the jobs queue");
    let _ = conn.close(0, "purged".into()).await;
}

struct Run {
    alerts_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

/// `posts` bodies of `size` alerts, `concurrency` at a time, or (with
/// `rate`) one every 1/rate seconds.
async fn post_all(
    port: u16,
    first: usize,
    posts: usize,
    size: usize,
    concurrency: usize,
    rate: Option<f64>,
) -> Run {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/ingest/alertmanager");
    let bodies: Vec<Vec<u8>> = (0..posts).map(|i| body(first + i, size)).collect();
    let started = Instant::now();
    let latencies: Vec<f64> = futures::stream::iter(bodies.into_iter().enumerate())
        .map(|(i, b)| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                if let Some(rate) = rate {
                    let at = started + Duration::from_secs_f64(i as f64 / rate);
                    tokio::time::sleep_until(at.into()).await;
                }
                let sent = Instant::now();
                let r = client
                    .post(&url)
                    .bearer_auth(TOKEN)
                    .body(b)
                    .send()
                    .await
                    .expect("an answer");
                assert_eq!(r.status().as_u16(), 202, "{:?}", r.text().await);
                sent.elapsed().as_secs_f64() * 1000.0
            }
        })
        .buffer_unordered(if rate.is_some() { 256 } else { concurrency })
        .collect()
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut sorted = latencies;
    sorted.sort_by(|a, b| a.total_cmp(b));
    Run {
        alerts_per_s: (posts * size) as f64 / elapsed,
        p50_ms: percentile(&sorted, 0.5),
        p99_ms: percentile(&sorted, 0.99),
    }
}

/// The broker alone: the very job messages fanout publishes for the same
/// one-alert bodies (read and routed by the same code), published through
/// fanout's own broker client (persistent, mandatory, confirmed) to the
/// same exchange and key, `concurrency` in flight.
async fn ceiling(
    config: &fanout::config::Config,
    first: usize,
    messages: usize,
    concurrency: usize,
) -> f64 {
    let now = chrono::Utc::now();
    let jobs: Vec<(String, Vec<u8>)> = (0..messages)
        .map(|i| {
            let parsed = fanout::ingest::SourceKind::Alertmanager
                .parse(&body(first + i, 1), now)
                .expect("the bench's body reads");
            let routed = config.routes.jobs("alertmanager", &parsed.alerts[0], now);
            let job = &routed[0].job;
            (job.id.clone(), serde_json::to_vec(job).unwrap())
        })
        .collect();
    let broker = fanout::broker::Broker::connect(config.broker.as_ref().unwrap())
        .await
        .expect("RabbitMQ");
    let broker = &broker;
    let started = Instant::now();
    futures::stream::iter(jobs)
        .map(|(id, job)| async move {
            broker
                .publish(fanout::broker::JOB_KEY, &id, &job)
                .await
                .expect("confirmed");
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<()>>()
        .await;
    messages as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let posts: usize = std::env::var("FANOUT_BENCH_POSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let concurrency: usize = std::env::var("FANOUT_BENCH_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let prefix = format!("bench-ingest-{}-", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\n\n[broker]\nurl = \"{URL}\"\nprefix = \"{prefix}\"\n\n\
         [ingest.alertmanager]\ntoken = \"{TOKEN}\"\n\n[spool]\npath = \"spool.sqlite\"\n\n\
         [[routes]]\ntargets = [{{ destination = \"hook\" }}]\n\n\
         [destinations.hook]\nchannel = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\n"
    );
    std::fs::write(dir.path().join("fanout.toml"), &config).unwrap();
    let parsed = fanout::config::Config::parse(&config, "bench", std::rc::Rc::new(|_| None))
        .expect("the bench's config");
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_fanout"))
            .args(["serve", "--config", "fanout.toml"])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("fanout serve"),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let health = format!("http://127.0.0.1:{port}/healthz");
        let deadline = Instant::now() + Duration::from_secs(20);
        while reqwest::get(&health).await.is_err() {
            assert!(Instant::now() < deadline, "fanout serve did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Warm: the first post opens the broker connection and declares.
        post_all(port, 0, 20, 1, 4, None).await;
    });
    println!("ingest: {posts} one-alert and {} twenty-alert Alertmanager bodies, {concurrency} in flight, each job confirmed", posts / 5);
    // Short runs on a shared 2-core machine are noisy: the one-alert run
    // and the ceiling alternate, ROUNDS times, and the medians are shown.
    const ROUNDS: usize = 3;
    let (one, twenty, broker, inside_ms) = rt.block_on(async {
        let mut ones = Vec::new();
        let mut ceilings = Vec::new();
        let mut insides = Vec::new();
        for round in 0..ROUNDS {
            purge(&prefix).await;
            let (sum0, count0) = handler_seconds(port).await;
            let first = 1_000_000 + round * posts;
            ones.push(post_all(port, first, posts, 1, concurrency, None).await);
            let (sum1, count1) = handler_seconds(port).await;
            insides.push((sum1 - sum0) / (count1 - count0).max(1.0) * 1000.0);
            purge(&prefix).await;
            ceilings.push(ceiling(&parsed, 5_000_000 + round * posts, posts, concurrency).await);
        }
        purge(&prefix).await;
        let twenty = post_all(port, 2_000_000, posts / 5, 20, concurrency, None).await;
        purge(&prefix).await;
        ones.sort_by(|a, b| a.alerts_per_s.total_cmp(&b.alerts_per_s));
        ceilings.sort_by(f64::total_cmp);
        insides.sort_by(f64::total_cmp);
        println!(
            "rounds (1 alert per body ÷ ceiling, alerts/s): {}",
            ones.iter()
                .map(|r| format!("{:.0}", r.alerts_per_s))
                .collect::<Vec<_>>()
                .join(", ")
                + " ÷ "
                + &ceilings
                    .iter()
                    .map(|c| format!("{c:.0}"))
                    .collect::<Vec<_>>()
                    .join(", ")
        );
        let one = ones.swap_remove(ROUNDS / 2);
        (one, twenty, ceilings[ROUNDS / 2], insides[ROUNDS / 2])
    });
    println!("run                                alerts/s   p50 ms   p99 ms   × broker ceiling");
    println!("broker ceiling (confirmed publish)  {broker:>8.0}        -        -   1.00");
    for (name, r) in [
        ("fanout, 1 alert per body", &one),
        ("fanout, 20 alerts per body", &twenty),
    ] {
        println!(
            "{name:<34}  {:>8.0} {:>8.1} {:>8.1}   {:.2}",
            r.alerts_per_s,
            r.p50_ms,
            r.p99_ms,
            r.alerts_per_s / broker
        );
    }
    println!(
        "one-alert bodies: {inside_ms:.2} ms of the mean answer inside the endpoint (parse, route, publish, confirm)"
    );
    let half = one.alerts_per_s / 2.0;
    let steady = rt.block_on(post_all(
        port,
        3_000_000,
        (half * 20.0) as usize,
        1,
        concurrency,
        Some(half),
    ));
    println!(
        "fanout at a steady {half:.0} alerts/s for 20 s (half of peak, 1 alert per body): p50 {:.1} ms, p99 {:.1} ms",
        steady.p50_ms, steady.p99_ms
    );
    drop(server);
    rt.block_on(async {
        let conn = Connection::connect(URL, ConnectionProperties::default())
            .await
            .unwrap();
        let channel = conn.create_channel().await.unwrap();
        let topology = fanout::broker::Topology::new(&prefix);
        for q in topology.queues() {
            let _ = channel
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        for x in topology.exchanges() {
            let _ = channel
                .exchange_delete(x.as_str().into(), Default::default())
                .await;
        }
    });
}
