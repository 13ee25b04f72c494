//! One render on one warm tab: the viewport, the navigation, the wait
//! for the page to settle ([`crate::render::ready`]), the screenshot.

use std::time::{Duration, Instant};

use base64::Engine as _;
use chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams;
use chromiumoxide::cdp::browser_protocol::page::{
    CaptureScreenshotFormat, CaptureScreenshotParams,
};
use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
use chromiumoxide::Page;
use tracing::debug;

use super::pool::PooledTab;
use super::{browser_error, origin_of, within, RenderError};
use crate::render::origin::OriginPolicy;
use crate::render::ready;
use crate::render::target::RenderTarget;

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
pub(super) async fn evaluate(page: &Page, script: String) -> Result<String, RenderError> {
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

pub(super) async fn render_on(
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
