//! `[render]` and `[render.grafana]`: the Chromium pool and the Grafana it
//! draws panels from, read key by key with every mistake named
//! ([`crate::section`]).

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::secret::Secret;
use crate::section::{self as reader, Section};

#[derive(Clone, Debug)]
pub struct RenderConfig {
    pub chrome: PathBuf,
    /// Chromium's sandbox; off by default because containers rarely allow
    /// the user namespaces it needs (fanout loads allowed origins only).
    pub sandbox: bool,
    pub tabs: u32,
    pub timeout: Duration,
    pub ignore_https_errors: bool,
    pub allowed_origins: Vec<Url>,
    pub grafana: Option<GrafanaConfig>,
    /// The writing systems the team's panels show (`latin`, `cjk`,
    /// `emoji`, …: [`crate::render::fonts::SCRIPTS`]); `fanout check`
    /// fails when Chromium cannot draw one of them.
    pub scripts: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct GrafanaConfig {
    pub url: Url,
    pub token: Option<Secret>,
    pub org_id: u64,
}

/// Read `[render]` (absent: the defaults).
pub fn read_render(section: Option<Section>) -> Option<RenderConfig> {
    let default = RenderConfig {
        chrome: PathBuf::from("/usr/bin/chromium"),
        sandbox: false,
        tabs: 2,
        timeout: Duration::from_secs(30),
        ignore_https_errors: false,
        allowed_origins: Vec::new(),
        grafana: None,
        scripts: super::fonts::DEFAULT_REQUIRED
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    let Some(s) = section else {
        return Some(default);
    };
    let scripts = match s.string_list("scripts") {
        None => default.scripts.clone(),
        Some(list) => {
            let known: Vec<&str> = super::fonts::SCRIPTS.iter().map(|s| s.name).collect();
            for (i, name) in list.iter().enumerate() {
                if super::fonts::script(name).is_none() {
                    s.error(
                        &format!("scripts[{i}]"),
                        format!("{name:?} is not a script fanout checks"),
                        Some(&format!("one of {}", known.join(", "))),
                    );
                }
            }
            list
        }
    };
    let chrome = s.string("chrome").map_or(default.chrome, PathBuf::from);
    let sandbox = s.bool("sandbox").unwrap_or(default.sandbox);
    let tabs = s.integer("tabs", 1, 32).map_or(default.tabs, |n| n as u32);
    let timeout = s.span("timeout").map_or(default.timeout, |t| t.0);
    let ignore_https_errors = s.bool("ignore_https_errors").unwrap_or(false);
    let mut allowed_origins = Vec::new();
    for (i, text) in s
        .string_list("allowed_origins")
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let key = format!("allowed_origins[{i}]");
        match reader::check_url(text, &["http", "https"]) {
            Ok(url) => allowed_origins.push(url),
            Err((message, hint)) => s.error(&key, message, hint),
        }
    }
    let grafana = s.table("grafana").and_then(|g| {
        let url = g.url("url", &["http", "https"]);
        let token = g.secret("token");
        let org_id = g.integer("org_id", 1, i64::MAX).map_or(1, |n| n as u64);
        g.finish();
        Some(GrafanaConfig {
            url: url?,
            token,
            org_id,
        })
    });
    if ignore_https_errors {
        let origins = allowed_origins
            .iter()
            .chain(grafana.as_ref().map(|g| &g.url));
        for url in origins {
            let host = url.host_str().unwrap_or_default();
            if !crate::net::is_loopback(host) {
                s.error(
                    "ignore_https_errors",
                    format!(
                        "applies to loopback origins only, but {} is not loopback",
                        url.origin().ascii_serialization()
                    ),
                    Some("fix that server's certificate, or render it through localhost"),
                );
            }
        }
    }
    s.finish();
    Some(RenderConfig {
        chrome,
        sandbox,
        tabs,
        timeout,
        ignore_https_errors,
        allowed_origins,
        grafana,
        scripts,
    })
}
