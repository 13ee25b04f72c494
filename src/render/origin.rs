//! Which origins a render may load, and how.
//!
//! Every request the browser makes — the page, its scripts, its XHRs, every
//! redirect hop — is paused and judged here: only the Grafana url and
//! `[render] allowed_origins` pass (no SSRF through a job). The Grafana
//! token is added on requests to Grafana's origin only. Certificate errors
//! are ignored only for loopback origins, and only when the config asks:
//! such requests are fetched by fanout itself with a client that accepts
//! the certificate, so the browser never turns certificate checks off.

use url::{Origin, Url};

use crate::net::is_loopback;
use crate::secret::Secret;

/// What to do with one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not an allowed origin: fail it.
    Block,
    /// Let the browser fetch it (with the certificate checks it always makes).
    Pass { bearer: bool },
    /// Fetch it ourselves, accepting the loopback server's certificate.
    Proxy { bearer: bool },
}

/// The rules for one renderer.
#[derive(Clone, Debug)]
pub struct OriginPolicy {
    allowed: Vec<Origin>,
    grafana: Option<Origin>,
    token: Option<Secret>,
    ignore_https_errors: bool,
}

impl OriginPolicy {
    pub fn new(
        allowed: &[Url],
        grafana: Option<&Url>,
        token: Option<Secret>,
        ignore_https_errors: bool,
    ) -> Self {
        let mut origins: Vec<Origin> = allowed.iter().map(Url::origin).collect();
        let grafana = grafana.map(Url::origin);
        origins.extend(grafana.clone());
        Self {
            allowed: origins,
            grafana,
            token,
            ignore_https_errors,
        }
    }

    /// The verdict for a request to `url`.
    pub fn judge(&self, url: &str) -> Verdict {
        let Ok(url) = Url::parse(url) else {
            return Verdict::Block;
        };
        // data: and blob: URLs carry their content; they reach no server.
        if matches!(url.scheme(), "data" | "blob") {
            return Verdict::Pass { bearer: false };
        }
        let origin = url.origin();
        if !self.allowed.contains(&origin) {
            return Verdict::Block;
        }
        let bearer = self.token.is_some() && self.grafana.as_ref() == Some(&origin);
        let loopback = url.host_str().is_some_and(is_loopback);
        if self.ignore_https_errors && loopback && url.scheme() == "https" {
            Verdict::Proxy { bearer }
        } else {
            Verdict::Pass { bearer }
        }
    }

    pub fn token(&self) -> Option<&Secret> {
        self.token.as_ref()
    }

    pub fn allows(&self, url: &str) -> bool {
        self.judge(url) != Verdict::Block
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(ignore: bool) -> OriginPolicy {
        let allowed = [Url::parse("https://status.example.com").unwrap()];
        let grafana = Url::parse("https://localhost:3000/grafana/").unwrap();
        OriginPolicy::new(&allowed, Some(&grafana), Some(Secret::new("t")), ignore)
    }

    #[test]
    fn only_allowed_origins_pass_and_only_grafana_gets_the_token() {
        let p = policy(false);
        assert_eq!(
            p.judge("https://localhost:3000/d-solo/x"),
            Verdict::Pass { bearer: true }
        );
        assert_eq!(
            p.judge("https://status.example.com/a.png"),
            Verdict::Pass { bearer: false }
        );
        for blocked in [
            "https://localhost:3001/",
            "http://localhost:3000/",
            "https://status.example.com.evil.org/",
            "http://169.254.169.254/latest/meta-data",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert_eq!(p.judge(blocked), Verdict::Block, "{blocked}");
        }
    }

    #[test]
    fn certificate_errors_are_ignored_for_loopback_https_only() {
        let p = policy(true);
        assert_eq!(
            p.judge("https://localhost:3000/x"),
            Verdict::Proxy { bearer: true }
        );
        // Not loopback: the browser checks the certificate, whatever the config says.
        assert_eq!(
            p.judge("https://status.example.com/x"),
            Verdict::Pass { bearer: false }
        );
        assert_eq!(
            policy(false).judge("https://localhost:3000/x"),
            Verdict::Pass { bearer: true }
        );
    }
}
