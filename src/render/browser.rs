//! The warm Chromium: launched once, a pool of tabs, replaced when it dies.
//!
//! Launching Chromium costs about a second; a warm tab renders in a
//! fraction of that. Each render takes a tab (bounded by `[render] tabs`),
//! sets the viewport through the DevTools device-metrics override (window
//! size flags give the wrong viewport in new headless mode), navigates,
//! waits for the page to settle ([`super::ready`]), screenshots, and hands
//! the tab back. A tab that failed is closed; a browser that died or
//! stopped answering is killed and relaunched on the next render.
//!
//! The DevTools client is chromiumoxide, async on tokio: a round trip is
//! a websocket message and its answer (about a millisecond on loopback),
//! with no poll interval. That matters because the origin gate pauses
//! every request a page makes, and a Grafana page makes dozens: with a
//! client that polls its socket (headless_chrome reads with a 100 ms
//! timeout), each paused request waited up to 200 ms before it could go on.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams;
use chromiumoxide::cdp::browser_protocol::fetch::{
    self, ContinueRequestParams, EventRequestPaused, FailRequestParams, FulfillRequestParams,
    HeaderEntry, RequestPattern, RequestStage,
};
use chromiumoxide::cdp::browser_protocol::network::ErrorReason;
use chromiumoxide::cdp::browser_protocol::page::{
    AddScriptToEvaluateOnNewDocumentParams, CaptureScreenshotFormat, CaptureScreenshotParams,
};
use chromiumoxide::cdp::browser_protocol::target::CreateTargetParams;
use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
use chromiumoxide::{Browser, BrowserConfig, Page};
use futures::StreamExt;
use tokio::sync::{Mutex, Semaphore};
use tracing::{debug, info, warn};

use super::config::RenderConfig;
use super::origin::{OriginPolicy, Verdict};
use super::ready;
use super::target::RenderTarget;

/// Why a render failed. Messages name origins, never tokens or queries.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("chromium did not start: {0}")]
    Launch(String),
    #[error("{0} is not an allowed origin (add it to [render] allowed_origins)")]
    Blocked(String),
    #[error("the page answered HTTP {status}{hint}")]
    Http { status: u16, hint: &'static str },
    /// The page did not settle in time ([`super::ready`]).
    #[error("not ready within {after:?}: still waiting for {waiting_for}")]
    NotReady {
        after: Duration,
        waiting_for: String,
    },
    /// Chromium itself stopped answering (and was replaced).
    #[error("chromium did not answer within {0:?}")]
    Timeout(Duration),
    #[error("browser: {0}")]
    Browser(String),
}

/// How Chromium is started.
#[derive(Clone, Debug)]
pub struct LaunchSettings {
    pub chrome: PathBuf,
    pub sandbox: bool,
    /// Extra flags (tests map host names with `--host-resolver-rules=…`).
    pub extra_args: Vec<String>,
}

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

/// A pool of warm tabs in one Chromium, for every render of the process.
pub struct ChartRenderer {
    shared: Arc<Shared>,
    permits: Arc<Semaphore>,
    timeout: Duration,
}

struct Shared {
    launch: LaunchSettings,
    policy: Arc<OriginPolicy>,
    proxy: reqwest::Client,
    timeout: Duration,
    pool: Mutex<Pool>,
}

#[derive(Default)]
struct Pool {
    running: Option<Running>,
    idle: Vec<PooledTab>,
    launches: u64,
}

/// One launched Chromium. Declared in the order they must go: the
/// browser (killed), its event loop, then its profile directory.
struct Running {
    browser: Browser,
    handler: tokio::task::JoinHandle<()>,
    /// Held for its Drop: removed after the browser has gone.
    _profile: Profile,
}

impl Running {
    /// The event loop ends when the browser's socket closes: it is gone.
    fn alive(&self) -> bool {
        !self.handler.is_finished()
    }

    async fn stop(mut self) {
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
struct PooledTab {
    page: Page,
    viewport: Option<(u32, u32, u64)>,
    /// Answers the tab's paused requests; ends with the tab.
    gate: tokio::task::JoinHandle<()>,
}

impl PooledTab {
    async fn close(self) {
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

impl ChartRenderer {
    pub fn new(config: &RenderConfig) -> Result<Self, RenderError> {
        let policy = OriginPolicy::new(
            &config.allowed_origins,
            config.grafana.as_ref().map(|g| &g.url),
            config.grafana.as_ref().and_then(|g| g.token.clone()),
            config.ignore_https_errors,
        );
        let launch = LaunchSettings {
            chrome: config.chrome.clone(),
            sandbox: config.sandbox,
            extra_args: Vec::new(),
        };
        Self::with_settings(launch, policy, config.timeout, config.tabs as usize)
    }

    pub fn with_settings(
        launch: LaunchSettings,
        policy: OriginPolicy,
        timeout: Duration,
        tabs: usize,
    ) -> Result<Self, RenderError> {
        let proxy = reqwest::Client::builder()
            // Only ever used for loopback origins (see OriginPolicy).
            .danger_accept_invalid_certs(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .build()
            .map_err(|e| RenderError::Launch(format!("cannot build the loopback client: {e}")))?;
        Ok(Self {
            shared: Arc::new(Shared {
                launch,
                policy: Arc::new(policy),
                proxy,
                timeout,
                pool: Mutex::new(Pool::default()),
            }),
            permits: Arc::new(Semaphore::new(tabs.max(1))),
            timeout,
        })
    }

    /// One of the `[render] tabs`: held for as long as a tab is used.
    async fn tab_permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, RenderError> {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| RenderError::Browser("renderer closed".into()))
    }

    /// Start Chromium now rather than at the first alert.
    pub async fn warm_up(&self) -> Result<(), RenderError> {
        let tab = self.shared.checkout().await?;
        self.shared.pool.lock().await.idle.push(tab);
        Ok(())
    }

    /// Render `target` to PNG within the configured timeout.
    pub async fn render(&self, target: &RenderTarget) -> Result<Vec<u8>, RenderError> {
        let _permit = self.tab_permit().await?;
        let deadline = Instant::now() + self.timeout;
        // Each step is bounded by the deadline; this outer bound only
        // fires when Chromium itself stops answering, so it is replaced.
        match tokio::time::timeout(
            self.timeout + Duration::from_secs(5),
            self.shared.render(target, deadline),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => {
                warn!(message = "Chromium stopped answering; replacing it.");
                self.shared.kill_browser().await;
                Err(RenderError::Timeout(self.timeout))
            }
        }
    }

    /// Evaluate `script` in a blank page of a pool tab and answer what
    /// it returned as text. No page is loaded, so nothing reaches the
    /// network: for probes of the browser itself (the glyph check).
    pub async fn evaluate_blank(&self, script: String) -> Result<String, RenderError> {
        let _permit = self.tab_permit().await?;
        let tab = self.shared.checkout().await?;
        let answer = async {
            tab.page.goto("about:blank").await.map_err(browser_error)?;
            evaluate(&tab.page, script).await
        }
        .await;
        match answer {
            Ok(text) => {
                self.shared.pool.lock().await.idle.push(tab);
                Ok(text)
            }
            Err(e) => {
                self.shared.discard(tab).await;
                Err(e)
            }
        }
    }

    /// Chromium's process id, while one runs (for benchmarks and tests).
    pub async fn browser_pid(&self) -> Option<u32> {
        let mut pool = self.shared.pool.lock().await;
        let running = pool.running.as_mut()?;
        running
            .browser
            .get_mut_child()
            .and_then(|child| child.inner.id())
    }

    /// How many times Chromium was launched.
    pub async fn launches(&self) -> u64 {
        self.shared.pool.lock().await.launches
    }
}

impl Shared {
    async fn render(
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
    async fn checkout(&self) -> Result<PooledTab, RenderError> {
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
    async fn prepare(&self, page: Page) -> Result<PooledTab, RenderError> {
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

    async fn discard(&self, tab: PooledTab) {
        tab.close().await;
    }

    async fn kill_browser(&self) {
        let mut pool = self.pool.lock().await;
        pool.idle.clear();
        if let Some(running) = pool.running.take() {
            running.stop().await;
        }
    }
}

/// `future`, bounded by `limit`, its DevTools error as a [`RenderError`].
async fn within<T>(
    limit: Duration,
    future: impl std::future::Future<Output = chromiumoxide::error::Result<T>>,
) -> Result<T, RenderError> {
    match tokio::time::timeout(limit, future).await {
        Ok(result) => result.map_err(browser_error),
        Err(_) => Err(RenderError::Timeout(limit)),
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

fn browser_error(e: impl std::fmt::Display) -> RenderError {
    RenderError::Browser(e.to_string())
}

fn origin_of(url: &str) -> String {
    url::Url::parse(url).map_or_else(
        |_| "(unparsable URL)".into(),
        |u| u.origin().ascii_serialization(),
    )
}

/// The DevTools device-metrics override: the viewport the page lays out
/// in and the screenshot's size (window-size flags are wrong in new
/// headless mode).
async fn set_viewport(page: &Page, target: &RenderTarget) -> Result<(), RenderError> {
    page.execute(SetDeviceMetricsOverrideParams::new(
        i64::from(target.width),
        i64::from(target.height),
        target.scale,
        false,
    ))
    .await
    .map(drop)
    .map_err(browser_error)
}

/// Evaluate `script` (a promise of a string) and answer the string.
async fn evaluate(page: &Page, script: String) -> Result<String, RenderError> {
    let params = EvaluateParams::builder()
        .expression(script)
        .await_promise(true)
        .return_by_value(true)
        .build()
        .map_err(RenderError::Browser)?;
    let answer = page.execute(params).await.map_err(browser_error)?;
    if let Some(exception) = &answer.result.exception_details {
        return Err(RenderError::Browser(format!(
            "the page's script failed: {}",
            exception.text
        )));
    }
    Ok(answer
        .result
        .result
        .value
        .as_ref()
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string())
}

async fn render_on(
    tab: &mut PooledTab,
    policy: &OriginPolicy,
    target: &RenderTarget,
    deadline: Instant,
    timeout: Duration,
) -> Result<Vec<u8>, RenderError> {
    let started = Instant::now();
    let step = |name: &str| {
        debug!(
            message = "Render step done.",
            step = name,
            ms = started.elapsed().as_millis() as u64
        )
    };
    let left = || deadline.saturating_duration_since(Instant::now());
    let page = tab.page.clone();
    let viewport = (target.width, target.height, target.scale.to_bits());
    if tab.viewport != Some(viewport) {
        set_viewport(&page, target).await?;
        tab.viewport = Some(viewport);
    }
    step("viewport");
    // Returns once the document and what it loads at once are in (the
    // ready check waits for that too); a document the gate refused ends
    // on Chrome's error page, which the check below names.
    match tokio::time::timeout(left(), page.goto(target.url.as_str())).await {
        Err(_) => {
            return Err(RenderError::NotReady {
                after: timeout,
                waiting_for: "the page to load".into(),
            })
        }
        Ok(Err(e)) if e.to_string().contains("BLOCKED_BY_CLIENT") => {
            return Err(RenderError::Blocked(origin_of(&target.url)));
        }
        // Other navigation errors show on the error page: read below.
        Ok(_) => {}
    }
    step("loaded");

    let script = ready::wait_script(target.grafana, left());
    let answer = evaluate(&page, script).await?;
    step("ready");
    let ready::Answer {
        href,
        status,
        outcome,
    } = ready::Answer::parse(Some(&answer));
    // A redirect to a blocked origin ends on Chrome's error page.
    if !policy.allows(&href) {
        return Err(RenderError::Blocked(if href.starts_with("chrome-error:") {
            "a redirect or request".into()
        } else {
            origin_of(&href)
        }));
    }
    if status >= 400 {
        return Err(RenderError::Http {
            status,
            hint: match status {
                401 => " (check [render.grafana] token)",
                403 => " (check the org id and the token's permissions)",
                404 => " (check the dashboard uid and panel id)",
                _ => "",
            },
        });
    }
    if let ready::Outcome::NotReady(waiting_for) = outcome {
        return Err(RenderError::NotReady {
            after: timeout,
            waiting_for,
        });
    }
    // Fast PNG compression: a chart is a few hundred KiB either way, and
    // the default level costs more time than the whole page load.
    let shot = within(
        left().max(Duration::from_secs(1)),
        page.execute(
            CaptureScreenshotParams::builder()
                .format(CaptureScreenshotFormat::Png)
                .from_surface(true)
                .optimize_for_speed(true)
                .build(),
        ),
    )
    .await?;
    let png = base64::engine::general_purpose::STANDARD
        .decode(&shot.result.data)
        .map_err(|e| RenderError::Browser(format!("screenshot: {e}")));
    step("screenshot");
    png
}

/// The request gate of one tab (see [`OriginPolicy`]): every request the
/// page makes is paused until judged here. Each is answered on a task of
/// its own, so a slow proxied fetch never holds up the others.
async fn gate(
    page: Page,
    mut paused: chromiumoxide::listeners::EventStream<EventRequestPaused>,
    policy: Arc<OriginPolicy>,
    proxy: reqwest::Client,
) {
    while let Some(event) = paused.next().await {
        let (page, policy, proxy) = (page.clone(), policy.clone(), proxy.clone());
        tokio::spawn(async move {
            let id = event.request_id.clone();
            let request = &event.request;
            let answered = match policy.judge(&request.url) {
                Verdict::Block => {
                    warn!(message = "Blocked a request to an origin that is not allowed.", origin = %origin_of(&request.url));
                    page.execute(FailRequestParams::new(id, ErrorReason::BlockedByClient))
                        .await
                        .map(drop)
                }
                Verdict::Pass { bearer: false } => {
                    page.execute(ContinueRequestParams::new(id)).await.map(drop)
                }
                Verdict::Pass { bearer: true } => {
                    let mut params = ContinueRequestParams::new(id);
                    params.headers = Some(with_bearer(
                        request.headers.inner(),
                        policy.token().map(|t| t.expose()),
                    ));
                    page.execute(params).await.map(drop)
                }
                Verdict::Proxy { bearer } => {
                    let token = policy.token().filter(|_| bearer).map(|t| t.expose());
                    let started = Instant::now();
                    match fetch_loopback(&proxy, request, token).await {
                        Ok(response) => {
                            debug!(message = "Fetched a loopback request.", origin = %origin_of(&request.url), ms = started.elapsed().as_millis() as u64);
                            let mut params = FulfillRequestParams::new(id, response.status);
                            params.response_headers = Some(response.headers);
                            params.body = Some(response.body.into());
                            page.execute(params).await.map(drop)
                        }
                        Err(e) => {
                            debug!(message = "Loopback fetch failed.", origin = %origin_of(&request.url), error = %e);
                            page.execute(FailRequestParams::new(id, ErrorReason::ConnectionFailed))
                                .await
                                .map(drop)
                        }
                    }
                }
            };
            // A request the page gave up on (a navigation away) cannot be
            // answered any more; nothing to do about it.
            if let Err(e) = answered {
                debug!(message = "A paused request was not answered.", error = %e);
            }
        });
    }
}

/// The request's headers with `Authorization: Bearer` set (and any other
/// Authorization dropped).
fn with_bearer(headers: &serde_json::Value, token: Option<&str>) -> Vec<HeaderEntry> {
    let mut out: Vec<HeaderEntry> = headers
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("authorization"))
        .map(|(name, value)| HeaderEntry::new(name.clone(), value.as_str().unwrap_or_default()))
        .collect();
    if let Some(token) = token {
        out.push(HeaderEntry::new("Authorization", format!("Bearer {token}")));
    }
    out
}

/// A loopback response, ready to hand to the page.
struct Proxied {
    status: i64,
    headers: Vec<HeaderEntry>,
    /// Base64, as Fetch.fulfillRequest takes it.
    body: String,
}

/// The most fanout reads of one proxied (loopback) response.
const MAX_PROXIED_BYTES: usize = 64 * 1024 * 1024;

/// Fetch a loopback URL ourselves (its certificate may name another host)
/// and hand the response to the page as if the browser had fetched it.
async fn fetch_loopback(
    client: &reqwest::Client,
    request: &chromiumoxide::cdp::browser_protocol::network::Request,
    token: Option<&str>,
) -> Result<Proxied, RenderError> {
    let method =
        reqwest::Method::from_bytes(request.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut builder = client.request(method, &request.url);
    for entry in with_bearer(request.headers.inner(), token) {
        builder = builder.header(entry.name, entry.value);
    }
    // A POST's body (Grafana's queries) comes in base64 parts.
    if let Some(entries) = &request.post_data_entries {
        let mut body = Vec::new();
        for entry in entries {
            if let Some(bytes) = &entry.bytes {
                let part = base64::engine::general_purpose::STANDARD
                    .decode(AsRef::<str>::as_ref(bytes))
                    .map_err(|e| RenderError::Browser(format!("loopback request body: {e}")))?;
                body.extend_from_slice(&part);
            }
        }
        builder = builder.body(body);
    }
    let mut response = builder
        .send()
        .await
        .map_err(|e| RenderError::Browser(format!("loopback fetch: {}", e.without_url())))?;
    let status = i64::from(response.status().as_u16());
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| {
            HeaderEntry::new(name.as_str(), String::from_utf8_lossy(value.as_bytes()))
        })
        .collect();
    // A page resource larger than this is not a chart: cut it rather than
    // let one loopback server fill fanout's memory.
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| RenderError::Browser(format!("loopback read: {}", e.without_url())))?
    {
        let room = MAX_PROXIED_BYTES.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    Ok(Proxied {
        status,
        headers,
        body: base64::engine::general_purpose::STANDARD.encode(&body),
    })
}
