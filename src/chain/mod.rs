//! Escalation chains: a job's `escalation` steps, run in order per alert
//! group, with every wait in the broker.
//!
//! A chain's position travels in a [`Cursor`] message (the job, the step
//! index, the repeat round), so any worker can run the next step and no
//! worker holds a timer. Before each step the cursor is checked against
//! the group's state in the store ([`group`]): acknowledged or resolved
//! stops the chain, silenced postpones it. [`advance`] is the pure part:
//! from a cursor and the time now, which notify steps run at once and what
//! comes after them.

pub mod group;
pub mod status;

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};

use crate::delivery::Summary;
use crate::job::{Job, Step, TimeWindow};

pub use crate::delivery::{log_step, ROUND_STRIDE};
pub use group::{GroupState, GroupStatus};

/// Version of the cursor message body.
pub const CURSOR_VERSION: u32 = 1;

/// The notification-log step of a group's "resolved" notice.
pub const RESOLVED_STEP: usize = 999_999;

/// How many steps one message may run before it must stop: a chain of
/// notify and repeat steps with no wait ends well before this.
const MAX_STEPS_AT_ONCE: usize = 1000;

/// A step that runs at most this late counts its next wait from when it
/// was due, so the time it took to get to it (a burst of jobs, the last hop
/// through the tiers) does not add up along the chain. Later than this (an
/// outage), the wait counts from now: whoever was paged first still gets
/// the whole wait before the next page.
pub const ANCHOR_SLACK: chrono::Duration = chrono::Duration::seconds(10);

/// Where a step's wait counts from: when it was due (`scheduled`), if that
/// is within [`ANCHOR_SLACK`] of `now`, else `now`.
pub fn wait_from(scheduled: Option<DateTime<Utc>>, now: DateTime<Utc>) -> DateTime<Utc> {
    match scheduled {
        Some(at) if (now - at).abs() <= ANCHOR_SLACK => at,
        _ => now,
    }
}

/// Where a chain is, as the message that carries it says.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    pub version: u32,
    pub job: Job,
    /// Index into `job.escalation` of the next step to run.
    pub step: usize,
    /// How many times a `repeat` has sent the chain back to the start.
    #[serde(default)]
    pub round: u32,
    /// Jobs suppressed before this one; shown in its first notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<Summary>,
}

impl Cursor {
    pub fn start(job: Job, suppressed: Option<Summary>) -> Self {
        Self {
            version: CURSOR_VERSION,
            job,
            step: 0,
            round: 0,
            suppressed,
        }
    }

    pub fn at(&self, step: usize, round: u32) -> Self {
        Self {
            step,
            round,
            // The summary goes out once, with the chain's first notice.
            suppressed: None,
            ..self.clone()
        }
    }

    pub fn decode(body: &[u8]) -> Result<Self, String> {
        let cursor: Cursor =
            serde_json::from_slice(body).map_err(|e| format!("not a chain message: {e}"))?;
        if cursor.version != CURSOR_VERSION {
            return Err(format!(
                "chain message version {} (this worker reads {CURSOR_VERSION})",
                cursor.version
            ));
        }
        Ok(cursor)
    }

    pub fn encode(&self) -> Vec<u8> {
        // Plain data: serializing cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// A notify step to run now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub step: usize,
    pub round: u32,
}

/// What happens after the notify steps of one [`advance`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Then {
    /// Wait in the broker, then go on at `step` of `round`.
    Wait {
        step: usize,
        round: u32,
        due: DateTime<Utc>,
    },
    /// The last step ran: the chain is over, the group stays as it is.
    Finish,
    /// A `resolve` step: mark the group resolved.
    Resolve,
}

/// From the cursor's step on, at time `now` (for `if_time`), with waits
/// counted from `from` (see [`wait_from`]): the notify steps to run at
/// once, and what comes after them.
pub fn advance(cursor: &Cursor, now: DateTime<Utc>, from: DateTime<Utc>) -> (Vec<Notice>, Then) {
    let steps = &cursor.job.escalation;
    if steps.is_empty() {
        // No escalation: every target, once.
        let notices = if cursor.step == 0 && cursor.round == 0 {
            vec![Notice { step: 0, round: 0 }]
        } else {
            Vec::new()
        };
        return (notices, Then::Finish);
    }
    let (mut step, mut round, mut from) = (cursor.step, cursor.round, from);
    let mut notices = Vec::new();
    for _ in 0..MAX_STEPS_AT_ONCE {
        match steps.get(step) {
            None => return (notices, Then::Finish),
            Some(Step::Notify { .. }) => {
                notices.push(Notice { step, round });
                step += 1;
            }
            Some(Step::Wait(span)) => {
                let due = from + chrono::Duration::from_std(span.0).unwrap_or_default();
                // Already over (the step was reached late): no detour
                // through the broker, the next step runs now.
                if due <= now {
                    step += 1;
                    from = due;
                    continue;
                }
                return (
                    notices,
                    Then::Wait {
                        step: step + 1,
                        round,
                        due,
                    },
                );
            }
            Some(Step::Repeat(times)) => {
                if round < *times {
                    round += 1;
                    step = 0;
                } else {
                    step += 1;
                }
            }
            // Outside the window the step after it is skipped.
            Some(Step::IfTime(window)) => step += if in_window(window, now) { 1 } else { 2 },
            Some(Step::Resolve) => return (notices, Then::Resolve),
        }
    }
    (notices, Then::Finish)
}

/// Whether `now` falls inside `window`: local time in its zone between
/// `from` (inclusive) and `to` (exclusive), on one of its `days` (the day
/// the window opened, for a window across midnight). A window that cannot
/// be read (validation refuses those) is taken as open.
pub fn in_window(window: &TimeWindow, now: DateTime<Utc>) -> bool {
    let parse = |t: &str| chrono::NaiveTime::parse_from_str(t, "%H:%M").ok();
    let (Some(from), Some(to), Ok(tz)) = (
        parse(&window.from),
        parse(&window.to),
        crate::clock::zone::parse(&window.tz),
    ) else {
        return true;
    };
    let local = now.with_timezone(&tz);
    let time = local.time();
    let (inside, opened_on) = if from <= to {
        (from <= time && time < to, local.date_naive())
    } else if time >= from {
        (true, local.date_naive())
    } else {
        (time < to, local.date_naive().pred_opt().unwrap_or_default())
    };
    let day = opened_on.weekday().to_string().to_lowercase();
    inside && (window.days.is_empty() || window.days.contains(&day))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn cursor(escalation: &str) -> Cursor {
        let json = format!(
            r#"{{"version":1,"id":"j","alert":{{"group_id":"g","title":"t"}},
                "targets":[{{"destination":"a"}},{{"destination":"b"}}],
                "escalation":{escalation}}}"#
        );
        Cursor::start(serde_json::from_str(&json).unwrap(), None)
    }

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn n(step: usize, round: u32) -> Notice {
        Notice { step, round }
    }

    #[test]
    fn a_chain_runs_notify_steps_until_a_wait() {
        let c = cursor(r#"[{"notify":["a"]},{"notify":["b"]},{"wait":"2s"},{"notify":["a"]}]"#);
        let now = at(2026, 11, 23, 3, 0);
        let (notices, then) = advance(&c, now, now);
        assert_eq!(notices, [n(0, 0), n(1, 0)]);
        assert_eq!(
            then,
            Then::Wait {
                step: 3,
                round: 0,
                due: now + chrono::Duration::seconds(2)
            }
        );
        let (notices, then) = advance(&c.at(3, 0), now, now);
        assert_eq!((notices, then), (vec![n(3, 0)], Then::Finish));
    }

    #[test]
    fn repeat_goes_back_to_the_start_as_many_times_as_it_says() {
        let c = cursor(r#"[{"notify":["a"]},{"wait":"1m"},{"notify":["b"]},{"repeat":2}]"#);
        let now = at(2026, 11, 23, 3, 0);
        // After the wait of round 0: notify b, repeat → round 1 notifies a.
        let (notices, then) = advance(&c.at(2, 0), now, now);
        assert_eq!(notices, [n(2, 0), n(0, 1)]);
        assert!(matches!(
            then,
            Then::Wait {
                step: 2,
                round: 1,
                ..
            }
        ));
        let (notices, then) = advance(&c.at(2, 2), now, now);
        assert_eq!((notices, then), (vec![n(2, 2)], Then::Finish));
    }

    #[test]
    fn a_repeat_without_a_wait_still_ends() {
        let c = cursor(r#"[{"notify":["a"]},{"repeat":5}]"#);
        let (notices, then) = advance(&c, at(2026, 11, 23, 3, 0), at(2026, 11, 23, 3, 0));
        assert_eq!(notices.len(), 6);
        assert_eq!(then, Then::Finish);
    }

    #[test]
    fn a_wait_counts_from_when_its_step_was_due_unless_that_is_long_past() {
        let c = cursor(r#"[{"wait":"5m"},{"notify":["a"]}]"#);
        let now = at(2026, 11, 23, 3, 0);
        let due = now - chrono::Duration::seconds(3);
        let from = wait_from(Some(due), now);
        assert_eq!(from, due);
        assert!(
            matches!(advance(&c, now, from).1, Then::Wait { due: d, .. } if d == due + chrono::Duration::minutes(5))
        );
        // An outage: the step ran an hour late; the wait starts now.
        let hour_late = now - chrono::Duration::hours(1);
        assert_eq!(wait_from(Some(hour_late), now), now);
        assert_eq!(wait_from(None, now), now);
    }

    #[test]
    fn a_wait_that_is_already_over_does_not_wait() {
        let c = cursor(r#"[{"wait":"1s"},{"notify":["a"]},{"wait":"2s"},{"notify":["b"]}]"#);
        let now = at(2026, 11, 23, 3, 0);
        let stamped = now - chrono::Duration::milliseconds(1500);
        let (notices, then) = advance(&c, now, stamped);
        assert_eq!(notices, [n(1, 0)]);
        // The next wait counts from when the first one ended.
        assert_eq!(
            then,
            Then::Wait {
                step: 3,
                round: 0,
                due: stamped + chrono::Duration::seconds(3)
            }
        );
    }

    #[test]
    fn no_escalation_notifies_once() {
        let c = cursor("[]");
        assert_eq!(
            advance(&c, at(2026, 1, 1, 0, 0), at(2026, 1, 1, 0, 0)),
            (vec![n(0, 0)], Then::Finish)
        );
    }

    #[test]
    fn a_resolve_step_ends_the_chain_by_resolving() {
        let c = cursor(r#"[{"notify":["a"]},{"resolve":true}]"#);
        assert_eq!(
            advance(&c, at(2026, 1, 1, 0, 0), at(2026, 1, 1, 0, 0)),
            (vec![n(0, 0)], Then::Resolve)
        );
    }

    #[test]
    fn if_time_runs_the_next_step_only_inside_its_window() {
        let c = cursor(
            r#"[{"if_time":{"from":"09:00","to":"18:00","tz":"Asia/Shanghai","days":["mon","tue","wed","thu","fri"]}},
                {"notify":["a"]},{"notify":["b"]}]"#,
        );
        // Monday 2026-11-23 10:00 in Shanghai is 02:00 UTC.
        let (inside, _) = advance(&c, at(2026, 11, 23, 2, 0), at(2026, 11, 23, 2, 0));
        assert_eq!(inside, [n(1, 0), n(2, 0)]);
        // 20:00 in Shanghai: outside, a is skipped, b still runs.
        let (evening, _) = advance(&c, at(2026, 11, 23, 12, 0), at(2026, 11, 23, 12, 0));
        assert_eq!(evening, [n(2, 0)]);
        // Saturday 10:00 in Shanghai: not one of the days.
        let (saturday, _) = advance(&c, at(2026, 11, 28, 2, 0), at(2026, 11, 28, 2, 0));
        assert_eq!(saturday, [n(2, 0)]);
    }

    #[test]
    fn a_window_across_midnight_belongs_to_the_day_it_opened() {
        let night = TimeWindow {
            from: "22:00".into(),
            to: "06:00".into(),
            tz: "Europe/Berlin".into(),
            days: vec!["fri".into()],
        };
        // Friday 2026-11-27 23:30 Berlin (22:30 UTC): inside.
        assert!(in_window(&night, at(2026, 11, 27, 22, 30)));
        // Saturday 03:00 Berlin (02:00 UTC): still Friday's night.
        assert!(in_window(&night, at(2026, 11, 28, 2, 0)));
        // Saturday 23:00 Berlin: Saturday's night, not listed.
        assert!(!in_window(&night, at(2026, 11, 28, 22, 0)));
        // Friday 12:00: daytime.
        assert!(!in_window(&night, at(2026, 11, 27, 11, 0)));
    }

    #[test]
    fn windows_end_before_their_to_time() {
        let w = TimeWindow {
            from: "09:00".into(),
            to: "18:00".into(),
            tz: "UTC".into(),
            days: vec![],
        };
        assert!(in_window(&w, at(2026, 11, 23, 9, 0)));
        assert!(in_window(&w, at(2026, 11, 23, 17, 59)));
        assert!(!in_window(&w, at(2026, 11, 23, 18, 0)));
        assert!(!in_window(&w, at(2026, 11, 23, 8, 59)));
    }
}
