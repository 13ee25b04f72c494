//! `fanout render`: one chart through the same pool, to check a setup by hand.

use super::*;

/// One chart from the command line.
#[derive(Args)]
pub(super) struct ChartArgs {
    /// A Grafana panel, as DASHBOARD_UID:PANEL_ID.
    #[arg(long, conflicts_with = "url", required_unless_present = "url")]
    grafana: Option<String>,
    /// Any page on an allowed origin.
    #[arg(long)]
    url: Option<String>,
    #[arg(long)]
    org: Option<u64>,
    #[arg(long, default_value = "now-1h")]
    from: String,
    #[arg(long, default_value = "now")]
    to: String,
    /// Dashboard variable, as NAME=VALUE (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,
    #[arg(long, default_value_t = 1000)]
    width: u32,
    #[arg(long, default_value_t = 500)]
    height: u32,
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
}

impl ChartArgs {
    /// The same JSON a job would carry, so the same validation applies.
    fn to_chart_json(&self) -> anyhow::Result<serde_json::Value> {
        let mut chart =
            serde_json::json!({"width": self.width, "height": self.height, "scale": self.scale});
        if let Some(url) = &self.url {
            chart["url"] = url.clone().into();
        } else if let Some(panel) = &self.grafana {
            let (uid, id) = panel
                .split_once(':')
                .ok_or_else(|| anyhow::anyhow!("--grafana takes DASHBOARD_UID:PANEL_ID"))?;
            let id: u64 = id.parse().context("--grafana: the panel id is a number")?;
            let mut vars = serde_json::Map::new();
            for v in &self.vars {
                let (k, val) = v
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--var takes NAME=VALUE"))?;
                vars.insert(k.to_string(), val.into());
            }
            let mut g = serde_json::json!({"dashboard_uid": uid, "panel_id": id, "from": self.from, "to": self.to, "vars": vars});
            if let Some(org) = self.org {
                g["org_id"] = org.into();
            }
            chart["grafana"] = g;
        }
        Ok(chart)
    }
}

pub(super) async fn render(config_path: Option<&Path>, args: ChartArgs, output: &Path) -> u8 {
    let Some((config, _demo)) = load_config(config_path).await else {
        return BAD_INPUT;
    };
    let chart: fanout::job::Chart = match args
        .to_chart_json()
        .and_then(|v| Ok(serde_json::from_value(v)?))
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fanout: {e:#}");
            return BAD_INPUT;
        }
    };
    let target = match fanout::render::render_target(&chart, config.render.grafana.as_ref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("fanout: {e}");
            return BAD_INPUT;
        }
    };
    let renderer = match ChartRenderer::new(&config.render) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fanout: {e}");
            return SOME_FAILED;
        }
    };
    let started = std::time::Instant::now();
    match renderer.render(&target).await {
        Ok(png) => match fanout::outbox::write_whole(output, &png) {
            Ok(()) => {
                println!(
                    "{} ({} bytes, {} ms)",
                    output.display(),
                    png.len(),
                    started.elapsed().as_millis()
                );
                DELIVERED
            }
            Err(e) => {
                eprintln!("fanout: cannot write {}: {e}", output.display());
                SOME_FAILED
            }
        },
        Err(e) => {
            eprintln!("fanout: render failed: {e}");
            SOME_FAILED
        }
    }
}
