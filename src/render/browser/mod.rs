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
//!
//! Three files: [`pool`] (the browser, its profile and its warm tabs),
//! [`page`] (one render on one tab: viewport, navigation, the ready wait,
//! the screenshot) and [`intercept`] (every request a page makes, judged
//! by the origin policy, loopback fetched by fanout itself).

mod intercept;
mod page;
mod pool;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, Semaphore};
use tracing::warn;

use super::config::RenderConfig;
use super::origin::OriginPolicy;
use super::target::RenderTarget;
use page::evaluate;
use pool::{Pool, Shared};

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

/// A pool of warm tabs in one Chromium, for every render of the process.
pub struct ChartRenderer {
    shared: Arc<Shared>,
    permits: Arc<Semaphore>,
    timeout: Duration,
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

fn browser_error(e: impl std::fmt::Display) -> RenderError {
    RenderError::Browser(e.to_string())
}

fn origin_of(url: &str) -> String {
    url::Url::parse(url).map_or_else(
        |_| "(unparsable URL)".into(),
        |u| u.origin().ascii_serialization(),
    )
}
