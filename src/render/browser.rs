//! The warm Chromium: launched once, a pool of tabs, replaced when it dies.
//!
//! Launching Chromium costs about a second; a warm tab renders in a
//! fraction of that. Each render takes a tab (bounded by `[render] tabs`),
//! sets the viewport through the DevTools device-metrics override (window
//! size flags give the wrong viewport in new headless mode), navigates,
//! waits for the page's own ready signal, screenshots, and hands the tab
//! back. A tab that failed is closed; a browser that stopped answering is
//! killed and relaunched on the next render.

use std::ffi::OsStr;
use std::io::Read as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine as _;
use headless_chrome::browser::tab::{RequestInterceptor, RequestPausedDecision};
use headless_chrome::browser::transport::{SessionId, Transport};
use headless_chrome::protocol::cdp::Emulation::SetDeviceMetricsOverride;
use headless_chrome::protocol::cdp::Fetch::events::RequestPausedEvent;
use headless_chrome::protocol::cdp::Fetch::{
    ContinueRequest, FailRequest, FulfillRequest, HeaderEntry,
};
use headless_chrome::protocol::cdp::Network::ErrorReason;
use headless_chrome::protocol::cdp::Page::{
    AddScriptToEvaluateOnNewDocument, CaptureScreenshot, CaptureScreenshotFormatOption,
};
use headless_chrome::protocol::cdp::Target::CreateTarget;
use headless_chrome::{Browser, LaunchOptions, Tab};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use super::origin::{OriginPolicy, Verdict};
use super::ready;
use super::target::RenderTarget;
use crate::config::RenderConfig;

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
    /// Extra flags (tests map host names with `--host-resolver-rules`).
    pub extra_args: Vec<String>,
}

/// Flags for a server that reaches nothing beyond loopback: no first-run
/// work, no calls home, no updates, no sync.
const FLAGS: &[&str] = &[
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--metrics-recording-only",
    "--mute-audio",
    "--hide-scrollbars",
    "--disable-quic",
    "--font-render-hinting=none",
    // Pool tabs are never "in front": without these, Chromium throttles
    // their timers to once a second and pauses animation frames.
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--disable-renderer-backgrounding",
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
    proxy: reqwest::blocking::Client,
    timeout: Duration,
    pool: Mutex<Pool>,
}

#[derive(Default)]
struct Pool {
    /// Declared before `profile`: the browser is gone before its profile
    /// directory is removed.
    browser: Option<Browser>,
    profile: Option<Profile>,
    idle: Vec<PooledTab>,
    launches: u64,
}

/// Chromium's profile directory, fanout's own rather than
/// headless_chrome's: removed once the browser has exited, and retried
/// while Chromium's helper processes are still writing to it (removing it
/// at once fails with "Directory not empty" and leaves it behind).
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

/// A warm tab and the viewport it was last set to.
struct PooledTab {
    tab: Arc<Tab>,
    viewport: Option<(u32, u32, u64)>,
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
        // The blocking client owns a runtime of its own; build it on a plain
        // thread so it never starts inside tokio's.
        let proxy = std::thread::spawn(move || {
            reqwest::blocking::Client::builder()
                // Only ever used for loopback origins (see OriginPolicy).
                .danger_accept_invalid_certs(true)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(timeout)
                .build()
        })
        .join()
        .map_err(|_| RenderError::Launch("cannot build the loopback client".into()))?
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

    /// Start Chromium now rather than at the first alert.
    pub async fn warm_up(&self) -> Result<(), RenderError> {
        let shared = self.shared.clone();
        run_blocking(move || shared.checkout().map(|tab| shared.lock().idle.push(tab))).await
    }

    /// One of the `[render] tabs`: held for as long as a tab is used.
    async fn tab_permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, RenderError> {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| RenderError::Browser("renderer closed".into()))
    }

    /// Render `target` to PNG within the configured timeout.
    pub async fn render(&self, target: &RenderTarget) -> Result<Vec<u8>, RenderError> {
        let _permit = self.tab_permit().await?;
        let shared = self.shared.clone();
        let target = target.clone();
        let deadline = Instant::now() + self.timeout;
        let job = run_blocking(move || shared.render(&target, deadline));
        // The page wait is bounded inside; this outer bound only fires when
        // Chromium itself stops answering, so the browser is replaced.
        match tokio::time::timeout(self.timeout + Duration::from_secs(5), job).await {
            Ok(result) => result,
            Err(_) => {
                warn!(message = "Chromium stopped answering; replacing it.");
                self.shared.kill_browser();
                Err(RenderError::Timeout(self.timeout))
            }
        }
    }

    /// Evaluate `script` in a blank page of a pool tab and answer what
    /// it returned as text. No page is loaded, so nothing reaches the
    /// network: for probes of the browser itself (the glyph check).
    pub async fn evaluate_blank(&self, script: String) -> Result<String, RenderError> {
        let _permit = self.tab_permit().await?;
        let shared = self.shared.clone();
        run_blocking(move || {
            let pooled = shared.checkout()?;
            let answer = pooled
                .tab
                .navigate_to("about:blank")
                .and_then(|tab| tab.evaluate(&script, false))
                .map_err(browser_error);
            match answer {
                Ok(answer) => {
                    shared.lock().idle.push(pooled);
                    Ok(answer
                        .value
                        .as_ref()
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_string())
                }
                Err(e) => {
                    shared.discard(&pooled.tab);
                    Err(e)
                }
            }
        })
        .await
    }

    /// Chromium's process id, while one runs (for benchmarks and tests).
    pub fn browser_pid(&self) -> Option<u32> {
        self.shared
            .lock()
            .browser
            .as_ref()
            .and_then(Browser::get_process_id)
    }

    /// How many times Chromium was launched.
    pub fn launches(&self) -> u64 {
        self.shared.lock().launches
    }
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RenderError> + Send + 'static,
) -> Result<T, RenderError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(RenderError::Browser(format!("render task failed: {e}"))))
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pool> {
        // A panic elsewhere must not wedge rendering: take the state as is.
        self.pool
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn render(&self, target: &RenderTarget, deadline: Instant) -> Result<Vec<u8>, RenderError> {
        if let Verdict::Block = self.policy.judge(&target.url) {
            return Err(RenderError::Blocked(origin_of(&target.url)));
        }
        let mut pooled = self.checkout()?;
        match render_on(&mut pooled, &self.policy, target, deadline, self.timeout) {
            Ok(png) => {
                // The next navigation replaces this page; blanking it now
                // would cost a round trip on every render.
                self.lock().idle.push(pooled);
                Ok(png)
            }
            Err(e) => {
                self.discard(&pooled.tab);
                Err(e)
            }
        }
    }

    /// An idle tab, or a new one; launches Chromium when none is alive.
    fn checkout(&self) -> Result<PooledTab, RenderError> {
        let mut pool = self.lock();
        let alive = pool.browser.as_ref().is_some_and(browser_alive);
        if !alive {
            if pool.browser.is_some() {
                warn!(message = "Chromium is gone; launching a new one.");
            }
            pool.idle.clear();
            pool.browser = None;
            pool.profile = None;
            let started = Instant::now();
            let profile = Profile::create()?;
            pool.browser = Some(launch(&self.launch, &profile)?);
            pool.profile = Some(profile);
            pool.launches += 1;
            info!(
                message = "Chromium started.",
                ms = started.elapsed().as_millis() as u64
            );
        }
        if let Some(tab) = pool.idle.pop() {
            return Ok(tab);
        }
        let browser = pool
            .browser
            .as_ref()
            .ok_or_else(|| RenderError::Launch("no browser".into()))?;
        // Each tab in a window of its own: a tab behind another in one
        // window is hidden, gets no animation frames, and Grafana never
        // draws in it, so two renders at once would leave one hanging.
        let tab = browser
            .new_tab_with_options(CreateTarget {
                url: "about:blank".to_string(),
                left: None,
                top: None,
                width: None,
                height: None,
                window_state: None,
                browser_context_id: None,
                enable_begin_frame_control: None,
                new_window: Some(true),
                background: None,
                for_tab: None,
                hidden: None,
            })
            .map_err(browser_error)?;
        drop(pool);
        self.prepare(&tab)?;
        Ok(PooledTab {
            tab,
            viewport: None,
        })
    }

    /// Every request of the tab goes through the origin policy.
    fn prepare(&self, tab: &Arc<Tab>) -> Result<(), RenderError> {
        tab.set_default_timeout(self.timeout);
        let interceptor: Arc<dyn RequestInterceptor + Send + Sync> = Arc::new(Gate {
            policy: self.policy.clone(),
            proxy: self.proxy.clone(),
        });
        tab.enable_request_interception(interceptor)
            .map_err(browser_error)?;
        tab.enable_fetch(None, None).map_err(browser_error)?;
        // Counts requests and sees Grafana's signals from the first line
        // of every page this tab loads (see `ready`).
        tab.call_method(AddScriptToEvaluateOnNewDocument {
            source: ready::TRACKER.to_string(),
            world_name: None,
            include_command_line_api: None,
            run_immediately: None,
        })
        .map_err(browser_error)?;
        Ok(())
    }

    fn discard(&self, tab: &Arc<Tab>) {
        let _ = tab.close(false);
        let mut pool = self.lock();
        if pool.browser.as_ref().is_some_and(|b| !browser_alive(b)) {
            pool.browser = None;
            pool.profile = None;
            pool.idle.clear();
        }
    }

    fn kill_browser(&self) {
        let mut pool = self.lock();
        pool.idle.clear();
        // Dropping the last handle kills the process.
        pool.browser = None;
        pool.profile = None;
    }
}

/// Is Chromium still running? On Linux the process table answers for
/// free; a round trip to the browser (up to 100 ms in headless_chrome) is
/// the fallback elsewhere. A browser that runs but hangs is caught by the
/// render deadline instead.
fn browser_alive(browser: &Browser) -> bool {
    match browser.get_process_id() {
        Some(pid) if cfg!(target_os = "linux") => {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Field 3 is the state; a zombie (Z) or dead (X) process is gone.
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next());
            !matches!(state, None | Some("Z") | Some("X"))
        }
        _ => browser.get_version().is_ok(),
    }
}

fn launch(settings: &LaunchSettings, profile: &Profile) -> Result<Browser, RenderError> {
    if !settings.chrome.exists() {
        return Err(RenderError::Launch(format!(
            "{} not found (install Debian's chromium, or set [render] chrome)",
            settings.chrome.display()
        )));
    }
    let mut args: Vec<&OsStr> = FLAGS.iter().map(OsStr::new).collect();
    args.extend(settings.extra_args.iter().map(OsStr::new));
    let options = LaunchOptions::default_builder()
        .path(Some(settings.chrome.clone()))
        .headless(true)
        .sandbox(settings.sandbox)
        // headless_chrome turns certificate checks off by default; fanout
        // never does (loopback exceptions are handled per request).
        .ignore_certificate_errors(false)
        .user_data_dir(Some(profile.0.clone()))
        // Chromium's own temporary files go inside the profile too, and
        // leave with it: a killed browser cleans up nothing itself.
        .process_envs(Some(std::collections::HashMap::from([(
            "TMPDIR".to_string(),
            profile.tmp().display().to_string(),
        )])))
        .args(args)
        .idle_browser_timeout(Duration::from_secs(365 * 86_400))
        .build()
        .map_err(|e| RenderError::Launch(e.to_string()))?;
    Browser::new(options).map_err(|e| RenderError::Launch(e.to_string()))
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
fn set_viewport(tab: &Tab, target: &RenderTarget) -> Result<(), RenderError> {
    tab.call_method(SetDeviceMetricsOverride {
        width: target.width,
        height: target.height,
        device_scale_factor: target.scale,
        mobile: false,
        scale: None,
        screen_width: None,
        screen_height: None,
        position_x: None,
        position_y: None,
        dont_set_visible_size: None,
        screen_orientation: None,
        viewport: None,
        display_feature: None,
        device_posture: None,
    })
    .map(|_| ())
    .map_err(browser_error)
}

fn render_on(
    pooled: &mut PooledTab,
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
    let tab = pooled.tab.clone();
    let viewport = (target.width, target.height, target.scale.to_bits());
    if pooled.viewport != Some(viewport) {
        set_viewport(&tab, target)?;
        pooled.viewport = Some(viewport);
    }
    step("viewport");
    tab.navigate_to(&target.url).map_err(|e| {
        let text = e.to_string();
        if text.contains("BLOCKED_BY_CLIENT") {
            RenderError::Blocked(origin_of(&target.url))
        } else {
            browser_error(text)
        }
    })?;
    // `Page.navigate` returns once the new document is committed. From
    // here the page's own ready signal decides; waiting for the load to
    // "finish" as well adds most of a second and proves nothing.
    step("committed");

    // One round trip for where we landed, with what status, and whether
    // the page settled: each CDP call costs up to 100 ms in headless_chrome.
    let budget = deadline.saturating_duration_since(Instant::now());
    let script = ready::wait_script(target.grafana, budget);
    let answer = tab.evaluate(&script, true).map_err(browser_error)?;
    step("ready");
    let ready::Answer {
        href,
        status,
        outcome,
    } = ready::Answer::parse(answer.value.as_ref().and_then(|v| v.as_str()));
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
    let png = tab
        .call_method(CaptureScreenshot {
            format: Some(CaptureScreenshotFormatOption::Png),
            quality: None,
            clip: None,
            from_surface: Some(true),
            capture_beyond_viewport: None,
            optimize_for_speed: Some(true),
        })
        .map_err(browser_error)
        .and_then(|shot| {
            base64::engine::general_purpose::STANDARD
                .decode(shot.data)
                .map_err(|e| RenderError::Browser(format!("screenshot: {e}")))
        });
    step("screenshot");
    png
}

/// The request gate installed in every tab (see [`OriginPolicy`]).
struct Gate {
    policy: Arc<OriginPolicy>,
    proxy: reqwest::blocking::Client,
}

impl RequestInterceptor for Gate {
    fn intercept(
        &self,
        _transport: Arc<Transport>,
        _session_id: SessionId,
        event: RequestPausedEvent,
    ) -> RequestPausedDecision {
        let params = event.params;
        let request_id = params.request_id;
        let request = params.request;
        let verdict = self.policy.judge(&request.url);
        let bearer = |wanted: bool| wanted.then(|| self.policy.token()).flatten();
        match verdict {
            Verdict::Block => {
                warn!(message = "Blocked a request to an origin that is not allowed.", origin = %origin_of(&request.url));
                RequestPausedDecision::Fail(FailRequest {
                    request_id,
                    error_reason: ErrorReason::BlockedByClient,
                })
            }
            Verdict::Pass { bearer: false } => RequestPausedDecision::Continue(None),
            Verdict::Pass { bearer: true } => {
                RequestPausedDecision::Continue(Some(ContinueRequest {
                    request_id,
                    url: None,
                    method: None,
                    post_data: None,
                    headers: Some(with_bearer(
                        &request.headers.0,
                        bearer(true).map(|t| t.expose()),
                    )),
                    intercept_response: None,
                }))
            }
            Verdict::Proxy { bearer: wanted } => {
                let token = bearer(wanted).map(|t| t.expose().to_string());
                let started = Instant::now();
                let fetched = fetch_loopback(&self.proxy, &request, token.as_deref());
                debug!(message = "Fetched a loopback request.", origin = %origin_of(&request.url), ms = started.elapsed().as_millis() as u64);
                match fetched {
                    Ok(decision) => decision(request_id),
                    Err(e) => {
                        debug!(message = "Loopback fetch failed.", origin = %origin_of(&request.url), error = %e);
                        RequestPausedDecision::Fail(FailRequest {
                            request_id,
                            error_reason: ErrorReason::ConnectionFailed,
                        })
                    }
                }
            }
        }
    }
}

/// The request's headers with `Authorization: Bearer` set (and any other
/// Authorization dropped).
fn with_bearer(headers: &Option<serde_json::Value>, token: Option<&str>) -> Vec<HeaderEntry> {
    let mut out: Vec<HeaderEntry> = headers
        .as_ref()
        .and_then(|h| h.as_object())
        .into_iter()
        .flatten()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("authorization"))
        .map(|(name, value)| HeaderEntry {
            name: name.clone(),
            value: value.as_str().unwrap_or_default().to_string(),
        })
        .collect();
    if let Some(token) = token {
        out.push(HeaderEntry {
            name: "Authorization".into(),
            value: format!("Bearer {token}"),
        });
    }
    out
}

type Fulfil =
    Box<dyn FnOnce(headless_chrome::protocol::cdp::Fetch::RequestId) -> RequestPausedDecision>;

/// The most fanout reads of one proxied (loopback) response.
const MAX_PROXIED_BYTES: u64 = 64 * 1024 * 1024;

/// Fetch a loopback URL ourselves (its certificate may name another host)
/// and hand the response to the page as if the browser had fetched it.
fn fetch_loopback(
    client: &reqwest::blocking::Client,
    request: &headless_chrome::protocol::cdp::Network::Request,
    token: Option<&str>,
) -> Result<Fulfil, RenderError> {
    let method =
        reqwest::Method::from_bytes(request.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut builder = client.request(method, &request.url);
    for entry in with_bearer(&request.headers.0, token) {
        builder = builder.header(entry.name, entry.value);
    }
    if let Some(body) = &request.post_data {
        builder = builder.body(body.clone());
    }
    let response = builder
        .send()
        .map_err(|e| RenderError::Browser(format!("loopback fetch: {}", e.without_url())))?;
    let status = response.status().as_u16();
    let headers: Vec<HeaderEntry> = response
        .headers()
        .iter()
        .map(|(name, value)| HeaderEntry {
            name: name.to_string(),
            value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
        })
        .collect();
    // A page resource larger than this is not a chart: cut it rather than
    // let one loopback server fill fanout's memory.
    let mut body = Vec::new();
    response
        .take(MAX_PROXIED_BYTES)
        .read_to_end(&mut body)
        .map_err(|e| RenderError::Browser(format!("loopback read: {e}")))?;
    let body = base64::engine::general_purpose::STANDARD.encode(&body);
    Ok(Box::new(move |request_id| {
        RequestPausedDecision::Fulfill(FulfillRequest {
            request_id,
            response_code: u32::from(status),
            response_headers: Some(headers),
            binary_response_headers: None,
            body: Some(body),
            response_phrase: None,
        })
    }))
}
