//! What to load for a chart: the Grafana `d-solo` URL of a panel, or the
//! chart's own URL; and the link a person clicks to see it live.

use url::Url;

use super::config::GrafanaConfig;
use crate::job::Chart;

/// A page to render at a size.
#[derive(Clone, Debug, PartialEq)]
pub struct RenderTarget {
    pub url: String,
    pub width: u32,
    pub height: u32,
    pub scale: f64,
    /// Grafana pages give a ready signal; other pages are ready when loaded.
    pub grafana: bool,
}

/// Why a chart has nothing to render.
pub const NO_GRAFANA: &str = "a grafana chart needs [render.grafana] url in the config";

/// The page to render for `chart`, or why there is none.
pub fn render_target(
    chart: &Chart,
    grafana: Option<&GrafanaConfig>,
) -> Result<RenderTarget, String> {
    let (url, is_grafana) = match (&chart.url, &chart.grafana) {
        (Some(url), _) => (url.clone(), false),
        (None, Some(panel)) => {
            let grafana = grafana.ok_or_else(|| NO_GRAFANA.to_string())?;
            let mut url = base(&grafana.url, &format!("d-solo/{}/", panel.dashboard_uid));
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("orgId", &panel.org_id.unwrap_or(grafana.org_id).to_string())
                    .append_pair("panelId", &panel.panel_id.to_string())
                    .append_pair("from", &grafana_time(&panel.from))
                    .append_pair("to", &grafana_time(&panel.to))
                    .append_pair("width", &chart.width.to_string())
                    .append_pair("height", &chart.height.to_string());
                if let Some(tz) = &panel.tz {
                    q.append_pair("tz", tz);
                }
                for (k, v) in &panel.vars {
                    q.append_pair(&format!("var-{k}"), v);
                }
            }
            (url.to_string(), true)
        }
        (None, None) => return Err("the chart has neither grafana nor url".into()),
    };
    Ok(RenderTarget {
        url,
        width: chart.width,
        height: chart.height,
        scale: chart.scale,
        grafana: is_grafana,
    })
}

/// Where a person clicks to see the chart live: the Grafana panel in its
/// dashboard, or the chart's own URL.
pub fn panel_link(chart: &Chart, grafana: Option<&GrafanaConfig>) -> Option<String> {
    if let Some(url) = &chart.url {
        return Some(url.clone());
    }
    let panel = chart.grafana.as_ref()?;
    let grafana = grafana?;
    let mut link = base(&grafana.url, &format!("d/{}/", panel.dashboard_uid));
    {
        let mut q = link.query_pairs_mut();
        q.append_pair("orgId", &panel.org_id.unwrap_or(grafana.org_id).to_string())
            .append_pair("viewPanel", &panel.panel_id.to_string())
            .append_pair("from", &grafana_time(&panel.from))
            .append_pair("to", &grafana_time(&panel.to));
        for (k, v) in &panel.vars {
            q.append_pair(&format!("var-{k}"), v);
        }
    }
    Some(link.to_string())
}

/// A time range end as Grafana reads it: relative times (`now-1h`,
/// `now/d`) as given; an absolute time as epoch milliseconds, which is
/// the only absolute form every Grafana version takes. An epoch in
/// seconds (or µs, ns) would be read as milliseconds and draw 1970, so
/// its unit is told by its size ([`crate::clock::instant`]).
fn grafana_time(text: &str) -> std::borrow::Cow<'_, str> {
    let trimmed = text.trim();
    if trimmed.starts_with("now") {
        return text.into();
    }
    match crate::clock::instant::parse_text(trimmed) {
        Some(t) => t.timestamp_millis().to_string().into(),
        None => text.into(),
    }
}

/// `path` under Grafana's url, which may itself have a sub-path.
fn base(grafana: &Url, path: &str) -> Url {
    let mut url = grafana.clone();
    url.set_query(None);
    url.set_fragment(None);
    let prefix = url.path().trim_end_matches('/').to_string();
    url.set_path(&format!("{prefix}/{path}"));
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(json: &str) -> Chart {
        serde_json::from_str(json).unwrap()
    }

    fn grafana(url: &str) -> GrafanaConfig {
        GrafanaConfig {
            url: Url::parse(url).unwrap(),
            token: None,
            org_id: 3,
        }
    }

    #[test]
    fn a_panel_becomes_a_d_solo_url_with_every_parameter() {
        let c = chart(
            r#"{"grafana":{"dashboard_uid":"abc","panel_id":7,"from":"now-6h","tz":"Asia/Shanghai",
                "vars":{"instance":"a b"}},"width":800,"height":400}"#,
        );
        let t = render_target(&c, Some(&grafana("https://g.example/sub/"))).unwrap();
        assert_eq!(
            t.url,
            "https://g.example/sub/d-solo/abc/?orgId=3&panelId=7&from=now-6h&to=now&width=800&height=400\
             &tz=Asia%2FShanghai&var-instance=a+b"
        );
        assert!(t.grafana);
        assert_eq!(
            panel_link(&c, Some(&grafana("https://g.example/sub"))).unwrap(),
            "https://g.example/sub/d/abc/?orgId=3&viewPanel=7&from=now-6h&to=now&var-instance=a+b"
        );
    }

    #[test]
    fn absolute_times_reach_grafana_as_milliseconds_whatever_unit_they_came_in() {
        for given in [
            "1764489600",
            "1764489600000",
            "2025-11-30T08:00:00Z",
            "2025-11-30T16:00:00+08:00",
        ] {
            let c = chart(&format!(
                r#"{{"grafana":{{"dashboard_uid":"abc","panel_id":7,"from":"{given}","to":"now"}}}}"#
            ));
            let url = render_target(&c, Some(&grafana("https://g.example")))
                .unwrap()
                .url;
            assert!(
                url.contains("&from=1764489600000&to=now&"),
                "{given}: {url}"
            );
        }
        assert_eq!(grafana_time("now-7d/d"), "now-7d/d");
    }

    #[test]
    fn the_chart_org_wins_and_grafana_must_be_configured() {
        let c = chart(r#"{"grafana":{"dashboard_uid":"abc","panel_id":7,"org_id":9}}"#);
        assert!(render_target(&c, Some(&grafana("https://g.example")))
            .unwrap()
            .url
            .contains("orgId=9&"));
        assert_eq!(render_target(&c, None).unwrap_err(), NO_GRAFANA);
        assert_eq!(panel_link(&c, None), None);
    }
}
