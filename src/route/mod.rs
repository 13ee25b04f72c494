//! Routes: which targets, escalation policy and suppression an incoming
//! alert gets, chosen by its source and labels; and the job it becomes.
//!
//! `[[routes]]` are tried in order; the first that matches wins, unless it
//! says `continue = true` (Alertmanager's meaning: later routes are tried
//! too). A route with no `source` and no `matchers` matches everything: put
//! one last as the default. An alert no route matches is reported, never
//! silently dropped.
//!
//! Matchers are Alertmanager's: `name=value`, `name!=value`, `name=~regex`,
//! `name!~regex` (regexes anchored at both ends, values optionally
//! quoted). Names are labels, or `severity`, `status` and `title`. A
//! route's `when` ([`Condition`]) is a template expression for the rest;
//! its `severity` ([`SeverityRule`]) renames what the monitor called the
//! alert's severity.

pub mod condition;
pub mod config;
pub mod matcher;
pub mod severity;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::ingest::Incoming;
use crate::job::{Chart, Job, Step, Suppress, Target, V1};

pub use condition::Condition;
pub use matcher::Matcher;
pub use severity::SeverityRule;

/// One `[[routes]]` entry.
#[derive(Clone, Debug, Serialize)]
pub struct Route {
    /// Its place in the list (0-based), for reports.
    pub index: usize,
    /// Only alerts from this source (`alertmanager`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub matchers: Vec<Matcher>,
    /// A template expression that must hold too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<Condition>,
    /// Try later routes too.
    #[serde(rename = "continue")]
    pub continue_matching: bool,
    pub targets: Vec<Target>,
    /// The name of its `[escalations.NAME]` policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppress: Option<Suppress>,
    /// Labels whose values make the group key instead of the source's own
    /// (Alertmanager's `group_by`); empty: the source's.
    pub group_by: Vec<String>,
    /// Charts this route adds after the alert's own: a job's `charts`,
    /// each Grafana variable a template over `alert` (`{{ alert.labels.instance }}`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub charts: Vec<Chart>,
    /// The severity its alerts get, when the monitor's words differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<SeverityRule>,
}

impl Route {
    /// No source, no matchers, no `when`: the default route.
    pub fn matches_everything(&self) -> bool {
        self.source.is_none() && self.matchers.is_empty() && self.when.is_none()
    }

    /// Whether an alert from `source` matches: its source, every matcher,
    /// and `when`. A `when` that fails on this alert does not match it
    /// (and is logged), so the alert goes on to the later routes.
    pub fn matches(&self, source: &str, incoming: &Incoming) -> bool {
        if !(self.source.as_deref().is_none_or(|s| s == source)
            && self.matchers.iter().all(|m| m.matches(incoming)))
        {
            return false;
        }
        let Some(when) = &self.when else {
            return true;
        };
        when.holds(source, incoming).unwrap_or_else(|error| {
            tracing::warn!(
                message = "A route's `when` failed on an alert; the route does not match it.",
                route = self.index,
                fingerprint = %incoming.fingerprint,
                error = %error
            );
            false
        })
    }
}

/// The configured routes and escalation policies.
#[derive(Clone, Debug, Default)]
pub struct Routes {
    pub routes: Vec<Route>,
    /// `[escalations.NAME]`: the steps a job carries, by name.
    pub escalations: BTreeMap<String, Vec<Step>>,
}

/// A route's chart for `alert`: each Grafana variable and the title
/// rendered over `alert`; a variable that does not render is left out
/// (the panel's default applies), never the page.
fn for_alert(chart: &Chart, alert: &crate::job::Alert) -> Chart {
    let templates = crate::template::Templates::new(chrono_tz::UTC);
    let context = serde_json::json!({ "alert": alert });
    let render = |name: &str, source: &str| {
        templates
            .render_inline(name, source, &context)
            .map(|s| s.trim().to_string())
            .ok()
    };
    let mut chart = chart.clone();
    if let Some(grafana) = chart.grafana.as_mut() {
        grafana.vars = grafana
            .vars
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), render("route.charts.vars", v)?)))
            .collect();
    }
    if let Some(title) = chart.title.as_deref() {
        chart.title = render("route.charts.title", title);
    }
    chart
}

/// An alert on one route: the job it becomes.
#[derive(Clone, Debug, Serialize)]
pub struct Routed {
    pub route: usize,
    pub job: Job,
}

impl Routes {
    /// The routes `incoming` (from `source`) takes, in order.
    pub fn matching(&self, source: &str, incoming: &Incoming) -> Vec<&Route> {
        let mut out = Vec::new();
        for route in &self.routes {
            if route.matches(source, incoming) {
                out.push(route);
                if !route.continue_matching {
                    break;
                }
            }
        }
        out
    }

    /// The jobs `incoming` becomes, one per route it takes (none: no
    /// route matched). `received` stamps alerts whose source gave no
    /// start time, so a job id is the same for a repeat of one body.
    pub fn jobs(&self, source: &str, incoming: &Incoming, received: DateTime<Utc>) -> Vec<Routed> {
        self.matching(source, incoming)
            .into_iter()
            .map(|route| Routed {
                route: route.index,
                job: self.job(source, route, incoming, received),
            })
            .collect()
    }

    fn job(
        &self,
        source: &str,
        route: &Route,
        incoming: &Incoming,
        received: DateTime<Utc>,
    ) -> Job {
        let mut alert = incoming.alert.clone();
        if let Some(rule) = &route.severity {
            alert.severity = rule.apply(&alert);
        }
        if !route.group_by.is_empty() {
            let values: Vec<String> = route
                .group_by
                .iter()
                .map(|l| format!("{l}={}", alert.labels.get(l).map_or("", String::as_str)))
                .collect();
            alert.group_id = format!(
                "{source}:r{}:{}",
                route.index,
                crate::delivery::short_hash(&values.join("\u{0}"))
            );
        }
        // A source's key with characters ids may not hold is hashed.
        if !crate::job::valid_id(&alert.group_id, 200) {
            alert.group_id = format!("{source}:{}", crate::delivery::short_hash(&alert.group_id));
        }
        // The same alert in the same state on the same route: the same id,
        // so a body posted twice is delivered once (the notification log).
        let at = alert.started_at.unwrap_or(received).timestamp_millis();
        let id = format!(
            "{source}-{}",
            crate::delivery::short_hash(&format!(
                "{}\u{0}{}\u{0}{}\u{0}{at}\u{0}{}",
                route.index,
                alert.group_id,
                alert.status.name(),
                incoming.fingerprint
            ))
        );
        let escalation = route
            .escalation
            .as_ref()
            .and_then(|name| self.escalations.get(name))
            .cloned()
            .unwrap_or_default();
        let mut charts = incoming.charts.clone();
        charts.extend(route.charts.iter().map(|chart| for_alert(chart, &alert)));
        Job {
            version: V1,
            id,
            alert,
            charts,
            targets: route.targets.clone(),
            escalation,
            suppress: route.suppress.clone(),
        }
    }
}
