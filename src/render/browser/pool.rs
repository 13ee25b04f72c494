//! The warm Chromium: launched with fanout's flags on a profile of its
//! own, its tabs kept warm, replaced when it dies.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chromiumoxide::cdp::browser_protocol::fetch::{
    self, EventRequestPaused, RequestPattern, RequestStage,
};
use chromiumoxide::cdp::browser_protocol::page::AddScriptToEvaluateOnNewDocumentParams;
use chromiumoxide::cdp::browser_protocol::target::CreateTargetParams;
use chromiumoxide::{Browser, BrowserConfig, Page};
use futures::StreamExt;
use tokio::sync::Mutex;
use tracing::{debug, info, warn};

use super::intercept::gate;
use super::page::render_on;
use super::{browser_error, origin_of, within, LaunchSettings, RenderError};
use crate::render::origin::{OriginPolicy, Verdict};
use crate::render::ready;
use crate::render::target::RenderTarget;

/// Flags for a server that reaches nothing beyond loopback: no first-run
/// work, no calls home, no updates, no sync. Written without their
/// leading dashes, as chromiumoxide adds them.
const FLAGS: &[&str] = &[
    "no-first-run",
    "no-default-browser-check",
    "disable-background-networking",
    "disable-component-update",
    "disable-sync",
    "disable-default-apps",
    "disable-extensions",
    "disable-domain-reliability",
    "disable-client-side-phishing-detection",
    "disable-breakpad",
    "metrics-recording-only",
    "mute-audio",
    "hide-scrollbars",
    "disable-quic",
    "disable-dev-shm-usage",
    // Pool tabs are never "in front": without these, Chromium throttles
    // their timers to once a second and pauses animation frames.
    "disable-background-timer-throttling",
    "disable-backgrounding-occluded-windows",
    "disable-renderer-backgrounding",
    // Cross-site frames would otherwise run as separate targets that the
    // tab's request gate does not see: one process per tab keeps every
    // request of the page in front of the gate.
    "disable-site-isolation-trials",
];

pub(super) struct Shared {
    pub(super) launch: LaunchSettings,
    pub(super) policy: Arc<OriginPolicy>,
    pub(super) proxy: reqwest::Client,
    pub(super) timeout: Duration,
    pub(super) pool: Mutex<Pool>,
}

#[derive(Default)]
pub(super) struct Pool {
    pub(super) running: Option<Running>,
    pub(super) idle: Vec<PooledTab>,
    pub(super) launches: u64,
}

/// One launched Chromium. Declared in the order they must go: the
/// browser (killed), its event loop, then its profile directory.
pub(super) struct Running {
    pub(super) browser: Browser,
    pub(super) handler: tokio::task::JoinHandle<()>,
    /// Held for its Drop: removed after the browser has gone.
    _profile: Profile,
}

impl Running {
    /// The event loop ends when the browser's socket closes: it is gone.
    pub(super) fn alive(&self) -> bool {
        !self.handler.is_finished()
    }

    pub(super) async fn stop(mut self) {
        let _ = self.browser.kill().await;
        // The helpers let go of the profile within milliseconds; removing
        // it (in drop) may wait for them, away from the async threads.
        let _ = tokio::task::spawn_blocking(move || drop(self)).await;
    }
}

impl Drop for Running {
    /// However the browser is let go (a replacement, or the end of the
    /// process): killed, and waited for (up to two seconds) before its
    /// profile directory is removed, so nothing of it is left behind.
    fn drop(&mut self) {
        self.handler.abort();
        if let Some(child) = self.browser.get_mut_child() {
            let _ = child.inner.start_kill();
            for _ in 0..40 {
                if !matches!(child.inner.try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// A warm tab and the viewport it was last set to.
pub(super) struct PooledTab {
    pub(super) page: Page,
    pub(super) viewport: Option<(u32, u32, u64)>,
    /// Answers the tab's paused requests; ends with the tab.
    pub(super) gate: tokio::task::JoinHandle<()>,
}

impl PooledTab {
    pub(super) async fn close(self) {
        self.gate.abort();
        let _ = self.page.close().await;
    }
}

/// Chromium's profile directory, fanout's own: removed once the browser
/// has exited, and retried while Chromium's helper processes are still
/// writing to it (removing it at once fails with "Directory not empty"
/// and leaves it behind). Chromium's TMPDIR lives inside it.
struct Profile(PathBuf);

impl Profile {
    /// A directory no other browser of any renderer in this process uses
    /// (two Chromiums on one profile: the second hands over to the first
    /// and exits).
    fn create() -> Result<Self, RenderError> {
        static LAUNCHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = LAUNCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("fanout-chromium-{}-{n}", std::process::id()));
        std::fs::create_dir_all(dir.join("tmp")).map_err(|e| {
            RenderError::Launch(format!(
                "cannot create Chromium's profile directory {}: {e}",
                dir.display()
            ))
        })?;
        Ok(Self(dir))
    }

    /// Chromium's TMPDIR.
    fn tmp(&self) -> PathBuf {
        self.0.join("tmp")
    }
}

impl Drop for Profile {
    /// Runs where the browser was let go (a replacement, or the end of the
    /// process, which must not leave the directory behind): the helpers
    /// are gone within tens of milliseconds, so this waits for them, for
    /// at most two seconds.
    fn drop(&mut self) {
        for _ in 0..40 {
            match std::fs::remove_dir_all(&self.0) {
                Ok(()) => return,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        // Two seconds after the browser went: something else holds it.
        warn!(message = "Could not remove Chromium's profile directory; remove it by hand.", dir = %self.0.display());
    }
}

impl Shared {
    pub(super) async fn render(
        &self,
        target: &RenderTarget,
        deadline: Instant,
    ) -> Result<Vec<u8>, RenderError> {
        if let Verdict::Block = self.policy.judge(&target.url) {
            return Err(RenderError::Blocked(origin_of(&target.url)));
        }
        let mut tab = self.checkout().await?;
        match render_on(&mut tab, &self.policy, target, deadline, self.timeout).await {
            Ok(png) => {
                // The next navigation replaces this page; blanking it now
                // would cost a round trip on every render.
                self.pool.lock().await.idle.push(tab);
                Ok(png)
            }
            Err(e) => {
                self.discard(tab).await;
                Err(e)
            }
        }
    }

    /// An idle tab, or a new one; launches Chromium when none is alive.
    pub(super) async fn checkout(&self) -> Result<PooledTab, RenderError> {
        let mut pool = self.pool.lock().await;
        if !pool.running.as_ref().is_some_and(Running::alive) {
            if let Some(dead) = pool.running.take() {
                warn!(message = "Chromium is gone; launching a new one.");
                pool.idle.clear();
                dead.stop().await;
            }
            let started = Instant::now();
            pool.running = Some(launch(&self.launch, self.timeout).await?);
            pool.launches += 1;
            info!(
                message = "Chromium started.",
                ms = started.elapsed().as_millis() as u64
            );
        }
        if let Some(tab) = pool.idle.pop() {
            return Ok(tab);
        }
        let running = pool
            .running
            .as_ref()
            .ok_or_else(|| RenderError::Launch("no browser".into()))?;
        // Each tab in a window of its own: a tab behind another in one
        // window is hidden, gets no animation frames, and Grafana never
        // draws in it, so two renders at once would leave one hanging.
        let params = CreateTargetParams::builder()
            .url("about:blank")
            .new_window(true)
            .build()
            .map_err(RenderError::Browser)?;
        let page = within(self.timeout, running.browser.new_page(params)).await?;
        drop(pool);
        self.prepare(page).await
    }

    /// Every request of the tab goes through the origin policy, and the
    /// ready tracker runs before any page script.
    pub(super) async fn prepare(&self, page: Page) -> Result<PooledTab, RenderError> {
        let paused = page
            .event_listener::<EventRequestPaused>()
            .await
            .map_err(browser_error)?;
        let gate = tokio::spawn(gate(
            page.clone(),
            paused,
            self.policy.clone(),
            self.proxy.clone(),
        ));
        let setup = async {
            page.execute(
                fetch::EnableParams::builder()
                    .pattern(
                        RequestPattern::builder()
                            .url_pattern("*")
                            .request_stage(RequestStage::Request)
                            .build(),
                    )
                    .build(),
            )
            .await?;
            page.execute(AddScriptToEvaluateOnNewDocumentParams::new(ready::TRACKER))
                .await
        };
        match within(self.timeout, setup).await {
            Ok(_) => Ok(PooledTab {
                page,
                viewport: None,
                gate,
            }),
            Err(e) => {
                gate.abort();
                let _ = page.close().await;
                Err(e)
            }
        }
    }

    pub(super) async fn discard(&self, tab: PooledTab) {
        tab.close().await;
    }

    pub(super) async fn kill_browser(&self) {
        let mut pool = self.pool.lock().await;
        pool.idle.clear();
        if let Some(running) = pool.running.take() {
            running.stop().await;
        }
    }
}

async fn launch(settings: &LaunchSettings, timeout: Duration) -> Result<Running, RenderError> {
    if !settings.chrome.exists() {
        return Err(RenderError::Launch(format!(
            "{} not found (install Debian's chromium, or set [render] chrome)",
            settings.chrome.display()
        )));
    }
    let profile = Profile::create()?;
    let mut builder = BrowserConfig::builder()
        .chrome_executable(&settings.chrome)
        .new_headless_mode()
        .disable_default_args()
        // fanout never turns certificate checks off in the browser
        // (loopback exceptions are handled per request by the gate).
        .respect_https_errors()
        .viewport(None)
        .user_data_dir(&profile.0)
        // Chromium's own temporary files go inside the profile too, and
        // leave with it: a killed browser cleans up nothing itself.
        .env("TMPDIR", profile.tmp().display().to_string())
        .launch_timeout(Duration::from_secs(30))
        .request_timeout(timeout)
        .args(FLAGS.iter().copied())
        .arg((
            "disable-features",
            &["IsolateOrigins", "site-per-process"][..],
        ));
    if !settings.sandbox {
        builder = builder.no_sandbox();
    }
    for extra in &settings.extra_args {
        let flag = extra.trim_start_matches('-');
        builder = match flag.split_once('=') {
            Some((key, value)) => builder.arg((key, value)),
            None => builder.arg(flag),
        };
    }
    let config = builder.build().map_err(RenderError::Launch)?;
    let (browser, mut handler) = Browser::launch(config)
        .await
        .map_err(|e| RenderError::Launch(e.to_string()))?;
    let handler = tokio::spawn(async move {
        while let Some(event) = handler.next().await {
            if let Err(e) = event {
                debug!(message = "DevTools event not handled.", error = %e);
            }
        }
    });
    Ok(Running {
        browser,
        handler,
        _profile: profile,
    })
}
