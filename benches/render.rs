//! Chart rendering on a page shaped like a real Grafana 11/12 d-solo page
//! (the tests' fake Grafana in `realistic` mode: 38 requests — scripts,
//! stylesheets, fonts, images, API reads — then the data, 600 ms late,
//! drawn 300 ms after it), side by side in one run with the renderer
//! people use today, re-created with puppeteer-core in
//! `../shared/baselines/renderer` (a warm puppeteer tab, the best a
//! browser can do on the page, and grafana-image-renderer's reusable flow).
//!
//! ```text
//! cargo bench --bench render                       # 30 renders each
//! FANOUT_BENCH_RENDERS=100 cargo bench --bench render
//! ```
//! Needs python3 (the fake Grafana) and Debian's chromium. The baseline
//! needs Node and `npm ci` in `../shared/baselines/renderer` (its README);
//! without Node the bench says so and skips that half.
//!
//! Measured: sequential renders through fanout's warm pool (p50, p95),
//! renders/s with 4 at once (4 tabs), Chromium's PSS at 4 tabs, and a
//! fresh Chromium per render (what a renderer without a pool does).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
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
    let in_tree = |mut p: u32| loop {
        if p == pid {
            return true;
        }
        match parent.get(&p) {
            Some(&pp) if pp != 0 && pp != p => p = pp,
            _ => return false,
        }
    };
    parent
        .keys()
        .filter(|p| in_tree(**p))
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

#[path = "support/fake_grafana.rs"]
mod fake_grafana;
use fake_grafana::FakeGrafana;

const WIDTH: u32 = 800;
const HEIGHT: u32 = 400;

/// The puppeteer baseline's `RESULT` line for `mode`, or why there is none.
fn baseline(
    mode: &str,
    wait: &str,
    n: usize,
    par: usize,
    url: &str,
    token: &str,
) -> Result<String, String> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/baselines/renderer"
    ));
    if Command::new("node").arg("--version").output().is_err() {
        return Err("node is not installed: the puppeteer baseline is skipped".into());
    }
    if !dir.join("node_modules/puppeteer-core").is_dir() {
        let installed = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .env("PUPPETEER_SKIP_DOWNLOAD", "1")
            .current_dir(&dir)
            .output()
            .map_err(|e| format!("npm: {e}"))?;
        if !installed.status.success() {
            return Err(format!(
                "npm ci in {} failed: {}",
                dir.display(),
                String::from_utf8_lossy(&installed.stderr)
            ));
        }
    }
    let out = Command::new("node")
        .arg("bench.js")
        .args(["--mode", mode, "--wait", wait])
        .args(["--n", &n.to_string(), "--par", &par.to_string()])
        .args(["--token", token, "--url", url])
        .args([
            "--out",
            &std::env::temp_dir()
                .join("fanout-render-baseline")
                .display()
                .to_string(),
        ])
        .current_dir(&dir)
        .output()
        .map_err(|e| format!("node: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("RESULT"))
        .map(str::to_string)
        .ok_or_else(|| {
            format!(
                "the baseline printed no RESULT: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

/// `key=value` from a RESULT line, as a number.
fn field(line: &str, key: &str) -> f64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

#[tokio::main]
async fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        fanout::logging::init(fanout::logging::LogFormat::Text);
    }
    let n: usize = std::env::var("FANOUT_BENCH_RENDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let grafana = FakeGrafana::start();
    let text = format!(
        "[render]\nignore_https_errors = true\ntimeout = \"30s\"\ntabs = 4\n\n[render.grafana]\nurl = \"{}\"\ntoken = \"{}\"\n",
        grafana.url, grafana.token
    );
    let config = Config::parse(&text, "bench", std::rc::Rc::new(|_| None)).expect("bench config");
    let chart: fanout::job::Chart = serde_json::from_value(serde_json::json!({
        "grafana": {"dashboard_uid": "abc", "panel_id": 7}, "width": WIDTH, "height": HEIGHT
    }))
    .unwrap();
    let target = render_target(&chart, config.render.grafana.as_ref()).unwrap();
    println!(
        "realistic d-solo page ({WIDTH}x{HEIGHT}): 38 requests, data after 600 ms, drawn 300 ms later; {n} renders each"
    );

    // fanout: the warm pool, one render after another.
    let warm = ChartRenderer::new(&config.render).expect("renderer");
    let first = Instant::now();
    warm.render(&target).await.expect("first render");
    let first_ms = first.elapsed().as_secs_f64() * 1e3;
    let mut seq = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        warm.render(&target).await.expect("warm render");
        seq.push(t.elapsed().as_secs_f64() * 1e3);
    }
    seq.sort_by(f64::total_cmp);
    let (f50, f95) = (percentile(&seq, 0.5), percentile(&seq, 0.95));

    // Four at once, on four tabs.
    let started = Instant::now();
    let pid = warm.browser_pid().await.expect("chromium runs");
    let mut peak_pss: f64 = 0.0;
    let renders = futures::future::join_all((0..4).map(|_| async {
        for _ in 0..n / 2 {
            warm.render(&target).await.expect("parallel render");
        }
    }));
    tokio::pin!(renders);
    loop {
        tokio::select! {
            _ = &mut renders => break,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {
                peak_pss = peak_pss.max(tree_pss_mib(pid));
            }
        }
    }
    let par_rate = (4 * (n / 2)) as f64 / started.elapsed().as_secs_f64();

    // A fresh Chromium per render: what a renderer without a pool does.
    let mut cold = Vec::new();
    for _ in 0..(n / 5).max(3) {
        let t = Instant::now();
        let fresh = ChartRenderer::new(&config.render).expect("renderer");
        fresh.render(&target).await.expect("cold render");
        drop(fresh);
        cold.push(t.elapsed().as_secs_f64() * 1e3);
    }
    cold.sort_by(f64::total_cmp);
    let c50 = percentile(&cold, 0.5);

    let page_url = format!(
        "{}/d-solo/abc/?orgId=1&panelId=7&from=now-1h&to=now&width={WIDTH}&height={HEIGHT}",
        grafana.url
    );
    let warm_tab = baseline("warm", "flag", n, 1, &page_url, &grafana.token);
    let reusable = baseline("reusable", "gir", n, 1, &page_url, &grafana.token);
    let warm_tab4 = baseline("warm", "flag", 2 * n, 4, &page_url, &grafana.token);

    println!("first render (launch + render): {first_ms:.0} ms");
    println!("fanout warm pool:           p50 {f50:6.0} ms   p95 {f95:6.0} ms");
    println!(
        "fanout, 4 at once:          {par_rate:.2} renders/s   Chromium PSS peak {peak_pss:.0} MiB"
    );
    println!("fanout, fresh chromium:     p50 {c50:6.0} ms");
    match (&warm_tab, &reusable) {
        (Ok(w), Ok(r)) => {
            let (w50, r50) = (field(w, "p50_ms"), field(r, "p50_ms"));
            println!(
                "puppeteer warm tab:         p50 {w50:6.0} ms   (page's own time p50 {:.0} ms)",
                field(w, "page_own_p50_ms")
            );
            println!("renderer reusable flow:     p50 {r50:6.0} ms");
            if let Ok(w4) = &warm_tab4 {
                println!(
                    "puppeteer warm tabs, 4 at once: {:.2} renders/s   PSS peak {:.0} MiB",
                    field(w4, "renders_per_s"),
                    field(w4, "peak_tree_pss_mb")
                );
            }
            println!(
                "fanout / warm tab p50: {:.2}x   renderer reusable / fanout p50: {:.2}x",
                f50 / w50,
                r50 / f50
            );
        }
        (Err(e), _) | (_, Err(e)) => println!("baseline: {e}"),
    }
    println!(
        "chromium launches by the warm pool: {}",
        warm.launches().await
    );
}
