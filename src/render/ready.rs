//! When a page is ready to capture: a settled state, not one reading.
//!
//! Two scripts: [`TRACKER`], installed in every pool tab before any page
//! script runs, counts the requests in flight and sees Grafana's signals
//! as they are set; [`wait_script`], evaluated after the navigation has
//! committed, answers once the page's own signal, an idle network and a
//! short quiet period all hold (see `ready/wait.js` for the rules), or
//! once the render's time is up, saying what it was still waiting for.

use std::time::Duration;

/// Installed with `Page.addScriptToEvaluateOnNewDocument`.
pub const TRACKER: &str = include_str!("ready/tracker.js");

const WAIT: &str = include_str!("ready/wait.js");

/// The wait, for a Grafana page (`strict`: only its own signal counts) or
/// any page, answering within `budget`.
pub fn wait_script(strict: bool, budget: Duration) -> String {
    WAIT.replace("__STRICT__", if strict { "true" } else { "false" })
        .replace("__BUDGET__", &budget.as_millis().to_string())
}

/// What the wait answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Where the page ended up (after redirects).
    pub href: String,
    /// The document's HTTP status (0 when the browser does not say).
    pub status: u16,
    pub outcome: Outcome,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Settled: capture it.
    Ready,
    /// An error page: no ready signal will come.
    Http,
    /// Out of time, still waiting for this (e.g. "1 query running").
    NotReady(String),
}

impl Answer {
    /// Read the wait's JSON answer; anything else is a page that never
    /// answered, which is not ready.
    pub fn parse(text: Option<&str>) -> Self {
        let parsed: Option<(String, u16, String, String)> =
            text.and_then(|t| serde_json::from_str(t).ok());
        let Some((href, status, outcome, why)) = parsed else {
            return Self {
                href: String::new(),
                status: 0,
                outcome: Outcome::NotReady("the page to answer".into()),
            };
        };
        let outcome = match outcome.as_str() {
            "ready" => Outcome::Ready,
            "http" => Outcome::Http,
            _ => Outcome::NotReady(why),
        };
        Self {
            href,
            status,
            outcome,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_is_given_its_mode_and_budget() {
        let script = wait_script(true, Duration::from_millis(2500));
        assert!(script.contains("const STRICT = true;"));
        assert!(script.contains("Date.now() + 2500;"));
        assert!(
            !script.contains("__STRICT__") && !script.contains("__BUDGET__"),
            "a placeholder was left: {script}"
        );
    }

    #[test]
    fn answers_are_read_and_nonsense_is_not_ready() {
        let ready = Answer::parse(Some(r#"["https://g/d-solo/a",200,"ready",""]"#));
        assert_eq!(ready.outcome, Outcome::Ready);
        assert_eq!(ready.status, 200);
        let late = Answer::parse(Some(r#"["https://g/",200,"timeout","1 query running"]"#));
        assert_eq!(late.outcome, Outcome::NotReady("1 query running".into()));
        assert!(matches!(Answer::parse(None).outcome, Outcome::NotReady(_)));
        assert!(matches!(
            Answer::parse(Some("{}")).outcome,
            Outcome::NotReady(_)
        ));
    }
}
