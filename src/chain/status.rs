//! `fanout status GROUP`: a group's state as a person reads it.

use std::fmt::Write;

use chrono::{DateTime, Utc};

use super::group::{GroupState, GroupStatus};
use crate::job::Step;

/// The report: state, chain position, what was sent when, what is next;
/// every time in `tz` (`[templates] timezone`), as the notifications show it.
pub fn report(s: &GroupState, now: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    let mut out = String::new();
    let when = |t: DateTime<Utc>| crate::template::context::local(t, tz);
    let _ = writeln!(out, "group     {}", s.group_id);
    let mut status = s.status.name().to_string();
    if let Some(by) = &s.by {
        let _ = write!(status, " (by {by})");
    }
    if let Some(until) = s.silenced_until.filter(|u| *u > now) {
        let _ = write!(status, ", silenced until {}", when(until));
    }
    let _ = writeln!(out, "status    {status}");
    let _ = writeln!(out, "title     {}", s.job.alert.title);
    let _ = writeln!(
        out,
        "chain     {} (started {}, chain {} of this group)",
        s.chain,
        when(s.started_at),
        s.chains
    );
    let steps = &s.job.escalation;
    let position = match (&s.next, s.finished, s.status) {
        (_, _, GroupStatus::Resolved) => "over: the group is resolved".to_string(),
        (_, _, GroupStatus::Acknowledged) => "stopped: the group is acknowledged".to_string(),
        (Some(next), _, _) => format!(
            "waiting; next is step {} of {} (round {}){}",
            next.step,
            steps.len(),
            next.round,
            describe(steps.get(next.step))
        ),
        (None, true, _) => "finished: every step ran".to_string(),
        (None, false, _) => "running".to_string(),
    };
    let _ = writeln!(out, "position  {position}");
    match &s.next {
        Some(next) if s.status == GroupStatus::Firing => {
            let secs = (next.due - now).num_seconds().max(0);
            let _ = writeln!(out, "next      {} (in {secs}s)", when(next.due));
        }
        _ => {
            let _ = writeln!(out, "next      nothing scheduled");
        }
    }
    if s.attached > 0 {
        let _ = writeln!(out, "attached  {} more firing job(s), not sent", s.attached);
    }
    let notified: Vec<&str> = s.notified.iter().map(|t| t.destination.as_str()).collect();
    let _ = writeln!(
        out,
        "notified  {}",
        if notified.is_empty() {
            "nobody yet".to_string()
        } else {
            notified.join(", ")
        }
    );
    let _ = writeln!(out, "history");
    for event in &s.history {
        let _ = writeln!(out, "  {}  {}", when(event.at), event.what);
    }
    out
}

fn describe(step: Option<&Step>) -> String {
    match step {
        Some(Step::Notify { destinations, .. }) => format!(": notify {}", destinations.join(", ")),
        Some(Step::Wait(span)) => format!(": wait {span}"),
        Some(Step::Repeat(n)) => format!(": repeat (up to {n})"),
        Some(Step::IfTime(w)) => format!(": if time {}–{} {}", w.from, w.to, w.tz),
        Some(Step::Resolve) => ": resolve".to_string(),
        None => ": the end".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::group::{claim, note_steps, Scheduled};
    use crate::chain::{Notice, Then};
    use chrono::TimeZone;

    #[test]
    fn the_report_says_where_the_chain_is_and_what_comes_next() {
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 3, 0, 0).unwrap();
        let job: crate::job::Job = serde_json::from_str(
            r#"{"version":1,"id":"j1","alert":{"group_id":"ag-42","title":"p99 high"},
                "targets":[{"destination":"ops"}],
                "escalation":[{"notify":["ops"]},{"wait":"5m"},{"notify":["ops"],"important":true}]}"#,
        )
        .unwrap();
        let state = claim(None, &job, now).0;
        let due = now + chrono::Duration::minutes(5);
        let then = Then::Wait {
            step: 2,
            round: 0,
            due,
        };
        let state = note_steps(state, &job, &[Notice { step: 0, round: 0 }], &then, now).unwrap();
        assert_eq!(
            state.next,
            Some(Scheduled {
                step: 2,
                round: 0,
                due
            })
        );
        let text = report(&state, now, chrono_tz::UTC);
        for line in [
            "status    firing",
            "position  waiting; next is step 2 of 3 (round 0): notify ops",
            "next      2026-11-23 03:05:00 UTC (in 300s)",
            "03:00:00 UTC  step 0 (round 0): notify ops",
        ] {
            assert!(text.contains(line), "{line:?} not in:\n{text}");
        }
        let local = report(&state, now, chrono_tz::Asia::Shanghai);
        assert!(
            local.contains("next      2026-11-23 11:05:00 CST (in 300s)"),
            "{local}"
        );
    }
}
