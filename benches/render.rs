//! Chart rendering: the warm pool against a fresh Chromium per render
//! (what a renderer without a pool does), side by side in one run, on the
//! built-in demo panel (HTTPS on localhost with a certificate for another
//! name, a bearer token, data that arrives late, Grafana's ready signal).
//!
//! ```text
//! cargo bench --bench render                       # 500 warm renders for the memory check
//! FANOUT_BENCH_RENDERS=100 cargo bench --bench render
//! ```
//! Rounds interleave 4 warm renders with 1 cold one, so both see the same
//! machine. Memory: PSS of this process and of Chromium's whole process
//! tree, sampled as the warm renders go on.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use fanout::config::Config;
use fanout::render::{render_target, ChartRenderer};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Proportional memory (PSS, so shared pages are not counted twice) in
/// MiB of `pid` and of every process below it.
fn tree_pss_mib(pid: u32) -> f64 {
    let mut parent = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    for e in entries.flatten() {
        let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(format!("/proc/{p}/status")) else {
            continue;
        };
        if let Some(pp) = status.lines().find_map(|l| l.strip_prefix("PPid:")) {
            parent.insert(p, pp.trim().parse::<u32>().unwrap_or(0));
        }
    }
    let below = |mut p: u32| {
        while p > 1 {
            if p == pid {
                return true;
            }
            p = *parent.get(&p).unwrap_or(&0);
        }
        false
    };
    parent
        .keys()
        .filter(|p| below(**p))
        .map(|p| pss_kib(*p))
        .sum::<f64>()
        / 1024.0
}

fn pss_kib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0.0)
}

/// This process alone (its Chromium children are counted apart).
fn self_pss_mib() -> f64 {
    pss_kib(std::process::id()) / 1024.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        fanout::logging::init(fanout::logging::LogFormat::Text);
    }
    let total: usize = std::env::var("FANOUT_BENCH_RENDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let demo = fanout::demo::start_with(Duration::from_millis(50))
        .await
        .expect("demo panel server");
    let config = Config::embedded(&demo.url, &demo.token).expect("embedded default");
    let chart: fanout::job::Chart = serde_json::from_value(serde_json::json!({
        "grafana": {"dashboard_uid": "abc", "panel_id": 7}, "width": 1000, "height": 500
    }))
    .unwrap();
    let target = render_target(&chart, config.render.grafana.as_ref()).unwrap();

    let warm = ChartRenderer::new(&config.render).expect("renderer");
    let first = Instant::now();
    warm.render(&target).await.expect("first render");
    let first_ms = first.elapsed().as_secs_f64() * 1e3;
    let pid = warm.browser_pid().expect("chromium runs");

    let mut warm_ms = Vec::new();
    let mut cold_ms = Vec::new();
    let mut samples = vec![(0usize, self_pss_mib(), tree_pss_mib(pid))];
    let cold_rounds = 12;
    let started = Instant::now();
    for i in 1..=total {
        let t = Instant::now();
        warm.render(&target).await.expect("warm render");
        warm_ms.push(t.elapsed().as_secs_f64() * 1e3);
        if i % 4 == 0 && cold_ms.len() < cold_rounds {
            // What a renderer without a pool does: launch, render, quit.
            let t = Instant::now();
            let cold = ChartRenderer::new(&config.render).expect("renderer");
            cold.render(&target).await.expect("cold render");
            drop(cold);
            cold_ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        if i % 100 == 0 || i == total {
            samples.push((
                i,
                self_pss_mib(),
                tree_pss_mib(warm.browser_pid().unwrap_or(pid)),
            ));
        }
    }
    let wall = started.elapsed().as_secs_f64();
    warm_ms.sort_by(f64::total_cmp);
    cold_ms.sort_by(f64::total_cmp);
    let (w50, w95) = (percentile(&warm_ms, 0.5), percentile(&warm_ms, 0.95));
    let (c50, c95) = (percentile(&cold_ms, 0.5), percentile(&cold_ms, 0.95));
    let warm_total: f64 = warm_ms.iter().sum::<f64>() / 1e3;
    println!(
        "demo panel 1000x500, data delay 50 ms; {} warm renders, {} cold, {wall:.0} s",
        warm_ms.len(),
        cold_ms.len()
    );
    println!("first render (launch + render): {first_ms:.0} ms");
    println!(
        "warm pool:        p50 {w50:7.0} ms   p95 {w95:7.0} ms   {:.2} renders/s",
        warm_ms.len() as f64 / warm_total
    );
    println!(
        "fresh chromium:   p50 {c50:7.0} ms   p95 {c95:7.0} ms   {:.2} renders/s",
        1e3 / (cold_ms.iter().sum::<f64>() / cold_ms.len() as f64)
    );
    println!(
        "cold/warm p50 ratio: {:.2}x   p95 ratio: {:.2}x",
        c50 / w50,
        c95 / w95
    );
    println!("chromium launches by the warm pool: {}", warm.launches());
    println!("memory (PSS MiB): renders  fanout  chromium-tree");
    for (n, me, chrome) in samples {
        println!("                  {n:>7}  {me:>6.0}  {chrome:>6.0}");
    }
}
