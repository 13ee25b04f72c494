//! `fanout route-test SOURCE FILE`: what fanout reads from a monitor's
//! webhook body, alert by alert, sending nothing (like `amtool config
//! routes test`).

use super::*;

use fanout::ingest::{Parsed, SourceKind};
use fanout::template::context::local;

pub(super) async fn route_test(
    source: &str,
    file: &str,
    config_path: Option<&Path>,
    json: bool,
) -> u8 {
    let Some(kind) = SourceKind::named(source) else {
        let known: Vec<&str> = SourceKind::ALL.iter().map(|k| k.name()).collect();
        eprintln!(
            "fanout: {source:?} is not a source fanout reads (it reads: {})",
            known.join(", ")
        );
        return BAD_INPUT;
    };
    let Some((config, _)) = load_config(config_path).await else {
        return BAD_INPUT;
    };
    let body = match read_input(file, "body") {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("fanout: {e:#}");
            return BAD_INPUT;
        }
    };
    let mapping = config.ingest.get(source).and_then(|s| s.mapping.as_ref());
    let parsed = match kind.parse_configured(&body, chrono::Utc::now(), mapping) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("fanout: {e}");
            return BAD_INPUT;
        }
    };
    if json {
        return print_json(&parsed);
    }
    print!("{}", report(source, file, &parsed, &config));
    DELIVERED
}

/// The alerts of `parsed`, one block each, as a person reads them.
fn report(source: &str, file: &str, parsed: &Parsed, config: &Config) -> String {
    use std::fmt::Write as _;
    let tz = config.templates.timezone;
    let routes = &config.routes;
    let received = chrono::Utc::now();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{source}: {} alert(s) in {file}; nothing is sent",
        parsed.alerts.len()
    );
    for (i, incoming) in parsed.alerts.iter().enumerate() {
        let a = &incoming.alert;
        let _ = writeln!(
            out,
            "\n{:<3}{:<10}{:<10}{}",
            i + 1,
            a.status.name(),
            format!("{:?}", a.severity).to_lowercase(),
            a.title
        );
        let mut row = |name: &str, value: &str| {
            if !value.is_empty() {
                let _ = writeln!(out, "   {name:<8} {value}");
            }
        };
        row("group", &a.group_id);
        let labels: Vec<String> = a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        row("labels", &labels.join(" "));
        row("message", &a.message);
        row(
            "started",
            &a.started_at.map(|t| local(t, tz)).unwrap_or_default(),
        );
        row(
            "ended",
            &a.ended_at.map(|t| local(t, tz)).unwrap_or_default(),
        );
        row("source", a.source_url.as_deref().unwrap_or_default());
        row(
            "silence",
            incoming.silence_url.as_deref().unwrap_or_default(),
        );
        row(
            "runbook",
            incoming.runbook_url.as_deref().unwrap_or_default(),
        );
        if routes.routes.is_empty() {
            row("route", "none: the config has no [[routes]]");
        }
        let routed = routes.jobs(source, incoming, received);
        if routed.is_empty() && !routes.routes.is_empty() {
            row(
                "route",
                "NONE MATCHES: this alert would be refused (add a default [[routes]] last)",
            );
        }
        for r in &routed {
            let route = &routes.routes[r.route];
            let matchers: Vec<String> = route
                .source
                .iter()
                .map(|s| format!("source={s}"))
                .chain(route.matchers.iter().map(ToString::to_string))
                .chain(
                    route
                        .when
                        .iter()
                        .map(|w| format!("when {:?}", w.to_string())),
                )
                .collect();
            let when = match matchers.as_slice() {
                [] => "(default)".to_string(),
                m => m.join(" "),
            };
            row("route", &format!("routes[{}] {when}", r.route));
            let targets: Vec<&str> = r
                .job
                .targets
                .iter()
                .map(|t| t.destination.as_str())
                .collect();
            row("  to", &targets.join(", "));
            if r.job.alert.severity != a.severity {
                row(
                    "  severity",
                    &format!("{:?}", r.job.alert.severity).to_lowercase(),
                );
            }
            if let Some(name) = &route.escalation {
                let steps: Vec<String> = r
                    .job
                    .escalation
                    .iter()
                    .map(|s| serde_json::to_string(s).unwrap_or_default())
                    .collect();
                row("  steps", &format!("{name}: {}", steps.join(" → ")));
            }
            for chart in r.job.charts.iter().skip(incoming.charts.len()) {
                if let Some(g) = &chart.grafana {
                    let vars: Vec<String> =
                        g.vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    row(
                        "  chart",
                        &format!(
                            "grafana {} panel {} {}",
                            g.dashboard_uid,
                            g.panel_id,
                            vars.join(" ")
                        ),
                    );
                }
            }
            if r.job.alert.group_id != incoming.alert.group_id {
                row("  group", &r.job.alert.group_id);
            }
            row("  job", &r.job.id);
        }
        for chart in &incoming.charts {
            if let Some(g) = &chart.grafana {
                let org = g.org_id.map(|o| format!(" org {o}")).unwrap_or_default();
                row(
                    "chart",
                    &format!(
                        "grafana {} panel {}{org}, {} to {}",
                        g.dashboard_uid, g.panel_id, g.from, g.to
                    ),
                );
            }
        }
    }
    if parsed.truncated > 0 {
        let _ = writeln!(
            out,
            "\n{} alert(s) were left out of this body by the sender",
            parsed.truncated
        );
    }
    for note in &parsed.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}
