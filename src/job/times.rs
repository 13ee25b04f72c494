//! An alert's times, settled at intake: what cannot be a fact is unset,
//! so no notification prints "Ended: 0001-01-01 08:05:43 LMT".
//!
//! Alertmanager sends Go's zero time as a firing alert's end, or a time
//! in the future (when it will consider the alert resolved); monitors
//! send epochs in the wrong unit. Each such time is dropped here, once,
//! with one warning per job naming what was dropped and why.

use chrono::{DateTime, Utc};

use super::{Alert, Status};
use crate::clock::instant::implausible;

/// Unset the times of `alert` that cannot be facts at `now`; the reasons,
/// one per time dropped (empty when all were kept).
pub fn settle(alert: &mut Alert, now: DateTime<Utc>) -> Vec<String> {
    let mut dropped = Vec::new();
    for (name, field) in [
        ("started_at", &mut alert.started_at),
        ("ended_at", &mut alert.ended_at),
    ] {
        if let Some(why) = field.and_then(|t| implausible(t, now)) {
            dropped.push(format!("{name}: {why}"));
            *field = None;
        }
    }
    if let Some(end) = alert.ended_at {
        if alert.status == Status::Firing {
            dropped.push(format!(
                "ended_at: {} on a firing alert (it has not ended)",
                end.to_rfc3339()
            ));
            alert.ended_at = None;
        } else if alert.started_at.is_some_and(|start| end < start) {
            dropped.push(format!(
                "ended_at: {} is before started_at",
                end.to_rfc3339()
            ));
            alert.ended_at = None;
        }
    }
    dropped
}

/// [`settle`], with the one warning the log gets when anything was dropped.
pub fn settle_logged(job_id: &str, alert: &mut Alert, now: DateTime<Utc>) {
    let dropped = settle(alert, now);
    if !dropped.is_empty() {
        tracing::warn!(
            message = "Alert times that cannot be facts were treated as unset.",
            job = %job_id,
            dropped = %dropped.join("; ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(status: &str, started: Option<&str>, ended: Option<&str>) -> Alert {
        let mut value = serde_json::json!({"group_id": "g", "title": "t", "status": status});
        if let Some(s) = started {
            value["started_at"] = s.into();
        }
        if let Some(e) = ended {
            value["ended_at"] = e.into();
        }
        serde_json::from_value(value).unwrap()
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-30T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn go_zero_end_on_a_firing_alert_is_unset() {
        let mut a = alert(
            "firing",
            Some("2026-11-30T07:00:00Z"),
            Some("0001-01-01T00:00:00Z"),
        );
        let dropped = settle(&mut a, now());
        assert_eq!(a.ended_at, None);
        assert!(a.started_at.is_some());
        assert_eq!(dropped.len(), 1, "{dropped:?}");
        assert!(dropped[0].contains("zero value"), "{dropped:?}");
    }

    #[test]
    fn alertmanagers_future_end_on_a_firing_alert_is_unset() {
        let mut a = alert(
            "firing",
            Some("2026-11-30T07:00:00Z"),
            Some("2026-11-30T08:05:00Z"),
        );
        let dropped = settle(&mut a, now());
        assert_eq!(a.ended_at, None);
        assert!(dropped[0].contains("firing"), "{dropped:?}");
    }

    #[test]
    fn an_end_before_the_start_is_unset_and_a_good_one_kept() {
        let mut a = alert(
            "resolved",
            Some("2026-11-30T07:00:00Z"),
            Some("2026-11-30T06:00:00Z"),
        );
        assert!(settle(&mut a, now())[0].contains("before started_at"));
        assert_eq!(a.ended_at, None);
        let mut b = alert(
            "resolved",
            Some("2026-11-30T07:00:00Z"),
            Some("2026-11-30T07:30:00Z"),
        );
        assert!(settle(&mut b, now()).is_empty());
        assert!(b.ended_at.is_some());
    }

    #[test]
    fn epochs_in_any_unit_are_read_and_zero_starts_dropped() {
        let a = alert("firing", None, None);
        assert_eq!(a.started_at, None);
        let mut value =
            serde_json::json!({"group_id": "g", "title": "t", "started_at": 1_764_489_600_000_i64});
        let ms: Alert = serde_json::from_value(value.clone()).unwrap();
        value["started_at"] = 1_764_489_600.into();
        let s: Alert = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(ms.started_at, s.started_at);
        assert!(s.started_at.is_some());
        value["started_at"] = 0.into();
        let mut zero: Alert = serde_json::from_value(value).unwrap();
        assert!(settle(&mut zero, now())[0].contains("zero value"));
        assert_eq!(zero.started_at, None);
    }
}
