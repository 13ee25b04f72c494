//! PrometheusAlert settings: `url` (its custom-template endpoint, whose
//! query names the channel type, the template and often a bot's URL with
//! its key: shown redacted), `timeout`.

use std::time::Duration;

use url::Url;

use crate::channels::{BuildContext, ChannelSpec};
use crate::secret::SecretUrl;
use crate::template::DefaultTemplate;
use crate::section::Section;

/// PrometheusAlert's custom-template endpoint.
pub const PATH: &str = "/prometheusalert";

#[derive(Clone, Debug)]
pub struct PrometheusAlertConfig {
    /// The endpoint; its query may hold a bot's key (`wxurl=…?key=…`), so
    /// it is shown redacted.
    pub url: SecretUrl,
    pub timeout: Duration,
    /// Bytes of free text (title, message, label names and values) one
    /// body may carry, so the message PrometheusAlert builds from it stays
    /// under its upstream's limit: the message, then long label values,
    /// are cut to fit ([`crate::template::fit`]). Key `text_limit`; by
    /// default from the URL's `type` ([`default_text_limit`]).
    pub text_limit: usize,
}

/// The free-text budget for an upstream `type`: WeCom markdown (`wx`)
/// holds 4,096 bytes, and a PrometheusAlert template adds its heading,
/// times and links around the text, so 3,000 bytes; DingTalk (`dd`) takes
/// 20,000 bytes of markdown and Feishu (`fs`) about 30 KB, so 15,000 for
/// those and anything else.
pub fn default_text_limit(url: &Url) -> usize {
    let kind = url
        .query_pairs()
        .find(|(k, _)| k == "type")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if kind.split(',').any(|k| k.trim() == "wx") {
        3_000
    } else {
        15_000
    }
}

/// What a job's target may change for a PrometheusAlert destination.
#[derive(Clone, Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrometheusAlertTarget {
    /// PrometheusAlert: user ids to `@`, sent as its `at` parameter.
    pub mentioned_list: Option<Vec<String>>,
}

impl PrometheusAlertConfig {
    /// The URL for a delivery: a target's `mentioned_list` becomes `at`.
    pub fn url_for(&self, target: &PrometheusAlertTarget) -> SecretUrl {
        let Some(at) = target.mentioned_list.as_ref().filter(|l| !l.is_empty()) else {
            return self.url.clone();
        };
        let mut url = self.url.expose().clone();
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "at")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.query_pairs_mut()
            .clear()
            .extend_pairs(kept)
            .append_pair("at", &at.join(","));
        SecretUrl::new(url)
    }

    /// Where PrometheusAlert's web UI answers, for the reachability probe.
    pub fn base(&self) -> Url {
        let url = self.url.expose();
        let mut base = url.clone();
        base.set_query(None);
        base.set_path(url.path().strip_suffix(PATH).unwrap_or("/"));
        if base.path().is_empty() {
            base.set_path("/");
        }
        base
    }
}

impl ChannelSpec for PrometheusAlertConfig {
    const NAME: &'static str = "prometheusalert";
    const TEMPLATES: &'static [DefaultTemplate] = &[
        DefaultTemplate {
            name: "prometheusalert/body.json.j2",
            source: include_str!("../../../templates/prometheusalert/body.json.j2"),
        },
    ];

    type Target = PrometheusAlertTarget;
    type Sender = super::PrometheusAlertSender;

    fn read(s: &Section) -> Option<Self> {
        let hint = "http://prometheusalert:8080/prometheusalert?type=wx&tpl=fanout-wx&wxurl=…";
        let url = s.required_string("url", hint).and_then(|text| {
            parse_url(&text)
                .map_err(|m| s.error("url", m, Some(hint)))
                .ok()
        });
        let timeout = s.span("timeout").map_or(Duration::from_secs(10), |t| t.0);
        let text_limit = s.integer("text_limit", 200, 1_000_000);
        let url = url?;
        let text_limit = text_limit.map_or_else(|| default_text_limit(&url), |n| n as usize);
        Some(Self {
            url: SecretUrl::new(url),
            timeout,
            text_limit,
        })
    }

    fn build(&self, destination: &str, ctx: &BuildContext) -> Result<Self::Sender, String> {
        super::PrometheusAlertSender::new(destination, self, ctx)
    }
}

/// The endpoint, with `type` and `tpl` set: without them PrometheusAlert
/// answers 200 and sends nothing. Errors never quote the URL: its query
/// often holds a bot's key.
pub fn parse_url(text: &str) -> Result<Url, String> {
    let url = crate::section::check_url(text, &["http", "https"]).map_err(|_| {
        "is not an http(s) URL with a host (not shown: it may hold a key)".to_string()
    })?;
    if !url.path().ends_with(PATH) {
        return Err(format!(
            "has the path {:?}; PrometheusAlert's custom-template endpoint is {PATH}",
            url.path()
        ));
    }
    for param in ["type", "tpl"] {
        let set = url
            .query_pairs()
            .any(|(k, v)| k == param && !v.trim().is_empty());
        if !set {
            return Err(format!(
                "has no `{param}` parameter; PrometheusAlert needs `type` (wx, dd, fs, …) and `tpl` (its template's name)"
            ));
        }
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_needs_type_and_tpl_and_is_never_quoted() {
        let good = "http://pa:8080/prometheusalert?type=wx&tpl=fanout-wx&wxurl=https://qyapi/send?key=k-secret";
        assert!(parse_url(good).is_ok());
        for bad in [
            "http://pa:8080/prometheusalert?tpl=fanout-wx&wxurl=k-secret",
            "http://pa:8080/prometheusalert?type=wx&wxurl=k-secret",
            "http://pa:8080/other?type=wx&tpl=x&wxurl=k-secret",
        ] {
            let e = parse_url(bad).unwrap_err();
            assert!(!e.contains("k-secret"), "{e}");
        }
    }

    #[test]
    fn a_target_mention_replaces_at_and_the_base_drops_the_query() {
        let config = PrometheusAlertConfig {
            url: SecretUrl::new(
                parse_url("http://pa:8080/prometheusalert?type=wx&tpl=t&at=old").unwrap(),
            ),
            timeout: Duration::from_secs(1),
            text_limit: 3_000,
        };
        let target = PrometheusAlertTarget {
            mentioned_list: Some(vec!["zhangsan".into(), "lisi".into()]),
        };
        let url = config.url_for(&target);
        let at: Vec<String> = url
            .expose()
            .query_pairs()
            .filter(|(k, _)| k == "at")
            .map(|(_, v)| v.into_owned())
            .collect();
        assert_eq!(at, ["zhangsan,lisi"]);
        assert_eq!(config.base().as_str(), "http://pa:8080/");
    }
}
