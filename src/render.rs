//! Render: charts for a job, rendered once and shared by all its deliveries.
//!
//! This build has no browser renderer yet (it arrives with the Chrome pool);
//! every chart goes out as its link, with the reason it has no image. That
//! is also what happens when a render fails: a chart never holds an alert
//! back.

use crate::config::Config;
use crate::deliver::ChartImage;
use crate::job::{Chart, Job};

/// Why a chart has no image in this build.
pub const NO_RENDERER: &str = "not rendered: this build has no chart renderer yet";

/// The charts of `job`, each with its link and no image.
pub fn without_images(job: &Job, config: &Config) -> Vec<ChartImage> {
    job.charts
        .iter()
        .enumerate()
        .map(|(i, chart)| ChartImage {
            title: chart_title(chart, i),
            png: None,
            url: None,
            link: panel_link(chart, config),
            error: Some(NO_RENDERER.into()),
        })
        .collect()
}

fn chart_title(chart: &Chart, index: usize) -> String {
    match (&chart.title, &chart.grafana) {
        (Some(t), _) => t.clone(),
        (None, Some(p)) => format!("Panel {} of {}", p.panel_id, p.dashboard_uid),
        (None, None) => format!("Chart {}", index + 1),
    }
}

/// Where a person clicks to see the chart live: the Grafana panel (when
/// `[render.grafana] url` is set) or the chart's own URL.
pub fn panel_link(chart: &Chart, config: &Config) -> Option<String> {
    if let Some(url) = &chart.url {
        return Some(url.clone());
    }
    let panel = chart.grafana.as_ref()?;
    let grafana = config.render.grafana.as_ref()?;
    let mut link = grafana.url.clone();
    link.set_path(&format!(
        "{}/d/{}/",
        grafana.url.path().trim_end_matches('/'),
        panel.dashboard_uid
    ));
    {
        let mut q = link.query_pairs_mut();
        q.clear()
            .append_pair("orgId", &panel.org_id.unwrap_or(grafana.org_id).to_string())
            .append_pair("viewPanel", &panel.panel_id.to_string())
            .append_pair("from", &panel.from)
            .append_pair("to", &panel.to);
        for (k, v) in &panel.vars {
            q.append_pair(&format!("var-{k}"), v);
        }
    }
    Some(link.to_string())
}
