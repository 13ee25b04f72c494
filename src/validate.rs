//! Validate: a decoded job checked against the contract's limits and the
//! config (destinations exist, overrides fit their channel). Every problem
//! is reported, each under its JSON path.

use std::fmt;
use std::time::Duration;

use crate::config::Config;
use crate::job::{valid_id, Chart, Job, Step};
use crate::section::check_url;

/// One problem, under its JSON path (`targets[1].destination`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// All problems of one job.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct JobErrors(pub Vec<JobError>);

impl fmt::Display for JobErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("; "))
    }
}

/// Longest `repeat` OnCall allows, and the range of a `wait`.
pub const MAX_REPEAT: u32 = 5;
/// Steps in one escalation (a chain's log steps are numbered per round).
pub const MAX_STEPS: usize = 100;
pub const MIN_WAIT_SECS: u64 = 1;
pub const MAX_WAIT_SECS: u64 = 24 * 3600;

pub fn validate(job: &Job, config: &Config) -> Result<(), JobErrors> {
    let mut errors = Vec::new();
    let mut err = |path: String, message: String| errors.push(JobError { path, message });

    if !valid_id(&job.id, 128) {
        err(
            "id".into(),
            "use 1 to 128 of letters, digits and `._:@-`, not starting with `.`".into(),
        );
    }
    if !valid_id(&job.alert.group_id, 200) {
        err(
            "alert.group_id".into(),
            "use 1 to 200 of letters, digits and `._:@-`, not starting with `.`".into(),
        );
    }
    if job.alert.title.trim().is_empty() {
        err("alert.title".into(), "is empty".into());
    }
    if let Some(url) = &job.alert.source_url {
        if let Err((message, _)) = check_url(url, &["http", "https"]) {
            err("alert.source_url".into(), message);
        }
    }
    for (i, chart) in job.charts.iter().enumerate() {
        check_chart(chart, &format!("charts[{i}]"), &mut err);
    }

    if job.targets.is_empty() {
        err(
            "targets".into(),
            "is empty: a job needs at least one target".into(),
        );
    }
    // Only an error needs the list (jobs from /ingest are validated one by one).
    let known = || {
        config
            .destinations
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (i, target) in job.targets.iter().enumerate() {
        let path = format!("targets[{i}]");
        if job.targets[..i]
            .iter()
            .any(|t| t.destination == target.destination)
        {
            err(
                format!("{path}.destination"),
                format!("{:?} is listed twice", target.destination),
            );
        }
        let Some(destination) = config.destinations.get(&target.destination) else {
            err(
                format!("{path}.destination"),
                format!(
                    "unknown destination {:?} (configured: {})",
                    target.destination,
                    known()
                ),
            );
            continue;
        };
        let kind = destination.kind();
        let mut unknown = false;
        for field in target.overrides.keys() {
            if !kind.target_fields().contains(field) {
                unknown = true;
                err(
                    format!("{path}.{field}"),
                    match kind.target_fields() {
                        [] => format!(
                            "is not an override for {} destination {:?} (it takes none)",
                            kind.name(),
                            target.destination,
                        ),
                        fields => format!(
                            "is not an override for {} destination {:?} (it takes: {})",
                            kind.name(),
                            target.destination,
                            fields.join(", ")
                        ),
                    },
                );
            }
        }
        if unknown {
            continue;
        }
        for (field, message) in destination.channel.check_target(target) {
            err(format!("{path}.{field}"), message);
        }
    }

    if job.escalation.len() > MAX_STEPS {
        err(
            "escalation".into(),
            format!("has {} steps; at most {MAX_STEPS}", job.escalation.len()),
        );
    }
    let targets: Vec<&str> = job.targets.iter().map(|t| t.destination.as_str()).collect();
    let last = job.escalation.len().saturating_sub(1);
    for (i, step) in job.escalation.iter().enumerate() {
        let path = format!("escalation[{i}]");
        match step {
            Step::Notify { destinations, .. } => {
                if destinations.is_empty() {
                    err(format!("{path}.notify"), "is empty".into());
                }
                for (j, d) in destinations.iter().enumerate() {
                    if !targets.contains(&d.as_str()) {
                        err(
                            format!("{path}.notify[{j}]"),
                            format!("{d:?} is not one of this job's targets"),
                        );
                    }
                }
            }
            Step::Wait(span) => {
                let range = Duration::from_secs(MIN_WAIT_SECS)..=Duration::from_secs(MAX_WAIT_SECS);
                if !range.contains(&span.0) {
                    err(
                        format!("{path}.wait"),
                        format!("{span} is outside 1s..=24h"),
                    );
                }
            }
            Step::Repeat(n) => {
                if !(1..=MAX_REPEAT).contains(n) {
                    err(
                        format!("{path}.repeat"),
                        format!("{n} is outside 1..={MAX_REPEAT}"),
                    );
                }
            }
            Step::IfTime(window) => {
                for (field, value) in [("from", &window.from), ("to", &window.to)] {
                    if chrono::NaiveTime::parse_from_str(value, "%H:%M").is_err() {
                        err(
                            format!("{path}.if_time.{field}"),
                            format!("{value:?} is not HH:MM"),
                        );
                    }
                }
                if let Err(e) = crate::clock::zone::parse(&window.tz) {
                    err(format!("{path}.if_time.tz"), e.to_string());
                }
                for (j, day) in window.days.iter().enumerate() {
                    if !["mon", "tue", "wed", "thu", "fri", "sat", "sun"].contains(&day.as_str()) {
                        err(
                            format!("{path}.if_time.days[{j}]"),
                            format!("{day:?} is not one of mon … sun"),
                        );
                    }
                }
            }
            Step::Resolve => {
                if i != last {
                    err(
                        format!("{path}.resolve"),
                        "resolve must be the last step".into(),
                    );
                }
                // The notices of that step would still be rendering: the
                // resolve would stop them, and find nobody notified.
                if i > 0 && matches!(job.escalation[i - 1], Step::Notify { .. }) {
                    err(
                        format!("{path}.resolve"),
                        "comes right after a notify; put a wait between, so the notifications go out before the group resolves".into(),
                    );
                }
            }
        }
    }
    if let Some(suppress) = &job.suppress {
        if suppress.key.trim().is_empty() {
            err("suppress.key".into(), "is empty".into());
        }
        if suppress.window.0.as_secs() == 0 {
            err("suppress.window".into(), "must be at least 1s".into());
        }
    }

    if errors.is_empty() {
        Ok(())
    } else {
        Err(JobErrors(errors))
    }
}

fn check_chart(chart: &Chart, path: &str, err: &mut impl FnMut(String, String)) {
    match (&chart.grafana, &chart.url) {
        (Some(_), Some(_)) | (None, None) => {
            err(
                path.to_string(),
                "a chart has exactly one of grafana or url".into(),
            );
        }
        (None, Some(url)) => {
            if let Err((message, _)) = check_url(url, &["http", "https"]) {
                err(format!("{path}.url"), message);
            }
        }
        (Some(panel), None) => {
            if !valid_id(&panel.dashboard_uid, 64) {
                err(
                    format!("{path}.grafana.dashboard_uid"),
                    "is not a Grafana dashboard uid".into(),
                );
            }
            if let Some(Err(e)) = panel.tz.as_deref().map(crate::clock::zone::parse_grafana) {
                err(format!("{path}.grafana.tz"), e.to_string());
            }
        }
    }
    if !(chart.scale >= 1.0 && chart.scale <= Chart::MAX_SCALE) {
        err(
            format!("{path}.scale"),
            format!("{} is outside 1..={}", chart.scale, Chart::MAX_SCALE),
        );
    }
    for (field, value) in [("width", chart.width), ("height", chart.height)] {
        if !(Chart::MIN_SIDE..=Chart::MAX_SIDE).contains(&value) {
            err(
                format!("{path}.{field}"),
                format!(
                    "{value} is outside {}..={}",
                    Chart::MIN_SIDE,
                    Chart::MAX_SIDE
                ),
            );
        }
    }
}
