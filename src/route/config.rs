//! `[[routes]]` and `[escalations.NAME]`, read key by key: every unknown
//! destination, policy, source or bad matcher named at once.

use std::collections::BTreeMap;

use super::{Condition, Matcher, Route, Routes, SeverityRule};
use crate::channels::ChannelConfig;
use crate::ingest::SourceKind;
use crate::job::{Chart, Step, Suppress, Target};
use crate::section::Section;

/// Read the routes and policies; `destinations` are the configured ones
/// (name → channel), which every target and policy step must name.
pub fn read_routes(
    root: &Section,
    destinations: &BTreeMap<String, ChannelConfig>,
) -> Option<Routes> {
    let mut ok = true;
    let mut escalations = BTreeMap::new();
    if let Some(section) = root.table("escalations") {
        for name in section.keys() {
            let Some(policy) = section.table(&name) else {
                ok = false;
                continue;
            };
            match read_steps(&policy) {
                Some(steps) => {
                    escalations.insert(name, steps);
                }
                None => ok = false,
            }
            policy.finish();
        }
    }
    let mut routes = Vec::new();
    for (index, s) in root.tables("routes").into_iter().enumerate() {
        match read_route(index, &s, destinations, &escalations) {
            Some(route) => routes.push(route),
            None => ok = false,
        }
        s.finish();
    }
    ok.then_some(Routes {
        routes,
        escalations,
    })
}

fn read_steps(policy: &Section) -> Option<Vec<Step>> {
    let Some(json) = policy.json("steps") else {
        policy.error(
            "steps",
            "is required",
            Some(r#"steps = [{ notify = ["ops-mail"] }, { wait = "10m" }, { notify = ["lead-mail"] }]"#),
        );
        return None;
    };
    serde_path_to_error::deserialize::<_, Vec<Step>>(json)
        .map_err(|e| {
            let at = match e.path().to_string() {
                dot if dot == "." => String::new(),
                path => path,
            };
            policy.error(
                &format!("steps{at}"),
                e.into_inner().to_string(),
                Some("the same steps a job's `escalation` takes: notify, wait, repeat, if_time, resolve"),
            )
        })
        .ok()
}

fn read_route(
    index: usize,
    s: &Section,
    destinations: &BTreeMap<String, ChannelConfig>,
    escalations: &BTreeMap<String, Vec<Step>>,
) -> Option<Route> {
    let mut ok = true;
    let source = s.string("source");
    if let Some(name) = &source {
        if SourceKind::named(name).is_none() {
            let known: Vec<&str> = SourceKind::ALL.iter().map(|k| k.name()).collect();
            s.error(
                "source",
                format!("{name:?} is not a source fanout reads"),
                Some(&format!("one of: {}", known.join(", "))),
            );
            ok = false;
        }
    }
    let mut matchers = Vec::new();
    for (i, text) in s
        .string_list("matchers")
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        match Matcher::parse(text) {
            Ok(m) => matchers.push(m),
            Err(e) => {
                s.error(&format!("matchers[{i}]"), e, None);
                ok = false;
            }
        }
    }
    let when = s.string("when").and_then(|text| {
        Condition::parse(&text)
            .map_err(|e| {
                s.error(
                    "when",
                    format!("is not a template expression: {e}"),
                    Some(r#"when = "annotations.summary is containing('disk') and alert.labels.env != 'dev'""#),
                );
                ok = false;
            })
            .ok()
    });
    let severity = s.json("severity").and_then(|json| {
        SeverityRule::read(json)
            .map_err(|(at, message)| {
                s.error(
                    &format!("severity{at}"),
                    message,
                    Some(r#"severity = "critical", or severity = { from = "priority", map = { P1 = "critical", P2 = "error" } }"#),
                );
                ok = false;
            })
            .ok()
    });
    let continue_matching = s.bool("continue").unwrap_or(false);
    let targets = read_targets(s, destinations);
    let escalation = s.string("escalation");
    if let Some(name) = &escalation {
        match (escalations.get(name), &targets) {
            (None, _) => {
                let known: Vec<&String> = escalations.keys().collect();
                s.error(
                    "escalation",
                    format!("no [escalations.{name}] policy"),
                    Some(&format!("defined: {known:?}")),
                );
                ok = false;
            }
            (Some(steps), Some(targets)) => {
                let missing: Vec<&str> = steps
                    .iter()
                    .filter_map(|step| match step {
                        Step::Notify { destinations, .. } => Some(destinations),
                        _ => None,
                    })
                    .flatten()
                    .filter(|d| !targets.iter().any(|t| &t.destination == *d))
                    .map(String::as_str)
                    .collect();
                if !missing.is_empty() {
                    s.error(
                        "escalation",
                        format!("policy {name:?} notifies {missing:?}, which are not among this route's targets"),
                        Some("add them to `targets`, or use another policy"),
                    );
                    ok = false;
                }
            }
            (Some(_), None) => {}
        }
    }
    let suppress = s.json("suppress").and_then(|json| {
        serde_path_to_error::deserialize::<_, Suppress>(json)
            .map_err(|e| {
                s.error(
                    "suppress",
                    e.into_inner().to_string(),
                    Some(r#"suppress = { key = "{{ alert.labels.instance }}", window = "10m" }"#),
                );
                ok = false;
            })
            .ok()
    });
    let group_by = s.string_list("group_by").unwrap_or_default();
    let charts = s
        .json("charts")
        .and_then(|json| {
            serde_path_to_error::deserialize::<_, Vec<Chart>>(json)
                .map_err(|e| {
                    let at = match e.path().to_string() {
                        dot if dot == "." => String::new(),
                        path => path,
                    };
                    s.error(
                        &format!("charts{at}"),
                        e.into_inner().to_string(),
                        Some(r#"charts = [{ grafana = { dashboard_uid = "abc", panel_id = 7, vars = { instance = "{{ alert.labels.instance }}" } } }]"#),
                    );
                    ok = false;
                })
                .ok()
        })
        .unwrap_or_default();
    Some(Route {
        index,
        source,
        matchers,
        when,
        continue_matching,
        targets: targets?,
        escalation,
        suppress,
        group_by,
        charts,
        severity,
    })
    .filter(|_| ok)
}

/// `targets = [{ destination = "ops-mail" }, { destination = "chat", channel_id = "C0…" }]`:
/// each destination configured, each override one its channel takes.
fn read_targets(
    s: &Section,
    destinations: &BTreeMap<String, ChannelConfig>,
) -> Option<Vec<Target>> {
    let Some(json) = s.json("targets") else {
        s.error(
            "targets",
            "is required: where this route's alerts go",
            Some(r#"targets = [{ destination = "ops-mail" }]"#),
        );
        return None;
    };
    let targets: Vec<Target> = serde_path_to_error::deserialize(json)
        .map_err(|e| {
            let at = e.path().to_string();
            s.error(
                &format!("targets{}", if at == "." { String::new() } else { at }),
                e.into_inner().to_string(),
                None,
            )
        })
        .ok()?;
    let mut ok = !targets.is_empty();
    if targets.is_empty() {
        s.error("targets", "is empty", None);
    }
    for (i, target) in targets.iter().enumerate() {
        let Some(channel) = destinations.get(&target.destination) else {
            let known: Vec<&String> = destinations.keys().collect();
            s.error(
                &format!("targets[{i}].destination"),
                format!("{:?} is not a configured destination", target.destination),
                Some(&format!("configured: {known:?}")),
            );
            ok = false;
            continue;
        };
        let fields = channel.kind().target_fields();
        for field in target.overrides.keys() {
            if !fields.contains(field) {
                s.error(
                    &format!("targets[{i}].{field}"),
                    format!(
                        "is not an override for {} destination {:?}",
                        channel.kind().name(),
                        target.destination
                    ),
                    None,
                );
                ok = false;
            }
        }
        for (field, message) in channel.check_target(target) {
            s.error(&format!("targets[{i}].{field}"), message, None);
            ok = false;
        }
    }
    ok.then_some(targets)
}
