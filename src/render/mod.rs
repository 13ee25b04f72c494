//! Render: a job's charts, rendered once and shared by all its deliveries.
//!
//! Each chart becomes a page to load ([`target`]), judged by the origin
//! policy ([`origin`]), rendered by the warm Chromium pool ([`browser`])
//! and stored ([`crate::images`]) for a signed URL. A chart that cannot be
//! rendered never holds the alert back: its delivery goes out with the
//! panel link and the reason, and the failure is logged and counted.

pub mod browser;
pub mod config;
pub mod fonts;
pub mod grafana;
pub mod origin;
pub mod ready;
pub mod target;

use std::sync::Arc;

use tracing::warn;

pub use browser::{ChartRenderer, RenderError};
pub use target::{panel_link, render_target, RenderTarget};

use crate::delivery::ChartImage;
use crate::images::config::StorageConfig;
use crate::images::Storage;
use crate::job::{Chart, Job};
use config::{GrafanaConfig, RenderConfig};

/// Why a chart has no image when no renderer could be started.
pub fn no_renderer(reason: &str) -> String {
    format!("not rendered: {reason}")
}

/// Everything charts need: the renderer, the store, Grafana's settings.
pub struct Charts {
    renderer: Result<ChartRenderer, String>,
    storage: Option<Storage>,
    grafana: Option<GrafanaConfig>,
}

impl Charts {
    /// Nothing starts here: Chromium launches at the first render. A store
    /// that cannot be built is an error; a renderer that cannot be built
    /// only means charts go out as links.
    /// `public_url` is `[http] public_url`, which internal storage
    /// builds its image URLs from.
    pub async fn new(
        render: &RenderConfig,
        storage: Option<&StorageConfig>,
        public_url: Option<&url::Url>,
    ) -> Result<Self, crate::images::StorageError> {
        Ok(Self {
            renderer: ChartRenderer::new(render).map_err(|e| e.to_string()),
            storage: Storage::new(storage, public_url).await?,
            grafana: render.grafana.clone(),
        })
    }

    pub fn renderer(&self) -> Result<&ChartRenderer, &str> {
        self.renderer.as_ref().map_err(String::as_str)
    }

    pub fn storage(&self) -> Option<&Storage> {
        self.storage.as_ref()
    }

    /// The job's charts, rendered once for all its deliveries.
    pub async fn for_job(&self, job: &Job) -> Vec<ChartImage> {
        render_charts(job, self.renderer(), self.storage(), self.grafana.as_ref()).await
    }
}

/// Render every chart of `job` once (concurrently, bounded by the pool),
/// store each PNG when a store is configured, and describe the outcome.
pub async fn render_charts(
    job: &Job,
    renderer: Result<&ChartRenderer, &str>,
    storage: Option<&Storage>,
    grafana: Option<&GrafanaConfig>,
) -> Vec<ChartImage> {
    let charts = job
        .charts
        .iter()
        .enumerate()
        .map(|(i, chart)| one_chart(job, i, chart, renderer, storage, grafana));
    futures::future::join_all(charts).await
}

async fn one_chart(
    job: &Job,
    index: usize,
    chart: &Chart,
    renderer: Result<&ChartRenderer, &str>,
    storage: Option<&Storage>,
    grafana: Option<&GrafanaConfig>,
) -> ChartImage {
    let mut image = ChartImage {
        title: chart_title(chart, index),
        link: panel_link(chart, grafana),
        width: chart.width,
        height: chart.height,
        ..ChartImage::default()
    };
    let rendered = match (renderer, render_target(chart, grafana)) {
        (Err(reason), _) => Err(no_renderer(reason)),
        (_, Err(reason)) => Err(reason),
        (Ok(renderer), Ok(target)) => renderer.render(&target).await.map_err(|e| e.to_string()),
    };
    match rendered {
        Ok(png) => {
            if let Some(storage) = storage {
                match storage.put(&png).await {
                    Ok(stored) => {
                        image.url = Some(stored.url);
                        image.key = Some(stored.key);
                    }
                    // The PNG still goes inline; only the link is missing.
                    Err(e) => {
                        warn!(message = "Chart not stored.", job = %job.id, chart = index, error = %e)
                    }
                }
            }
            image.png = Some(Arc::new(png));
        }
        Err(reason) => {
            warn!(message = "Chart not rendered; sending without it.", job = %job.id, chart = index, error = %reason);
            image.error = Some(reason);
        }
    }
    image
}

fn chart_title(chart: &Chart, index: usize) -> String {
    match (&chart.title, &chart.grafana) {
        (Some(t), _) => t.clone(),
        (None, Some(p)) => format!("Panel {} of {}", p.panel_id, p.dashboard_uid),
        (None, None) => format!("Chart {}", index + 1),
    }
}
