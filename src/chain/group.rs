//! An alert group's state: one record in the store per group, changed
//! atomically by every worker (embedded or Redis).
//!
//! It holds what the chain must read before each step (firing,
//! acknowledged, resolved, silenced until), which chain is the group's
//! (one at a time; a new one only after a resolve), who was notified (they
//! get the "resolved" notice), and a short history for `fanout status`.
//! The changes are pure functions here; [`crate::worker`] applies them
//! through [`crate::store::Store::update`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Notice, Then};
use crate::job::{Job, SignalKind, Status, Target};

/// The store's kind for group records.
pub const KIND: &str = "group";

/// History entries kept per group (the oldest go first).
pub const HISTORY: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupStatus {
    Firing,
    Acknowledged,
    Resolved,
}

impl GroupStatus {
    pub fn name(self) -> &'static str {
        match self {
            GroupStatus::Firing => "firing",
            GroupStatus::Acknowledged => "acknowledged",
            GroupStatus::Resolved => "resolved",
        }
    }
}

/// A step scheduled in the broker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scheduled {
    pub step: usize,
    pub round: u32,
    pub due: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub what: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GroupState {
    pub group_id: String,
    pub status: GroupStatus,
    /// The id of the job whose chain is the group's.
    pub chain: String,
    /// That job, for the "resolved" notice and for `fanout status`.
    pub job: Job,
    pub started_at: DateTime<Utc>,
    /// Chains this group has run, this one included.
    pub chains: u32,
    /// The next step, while the chain waits in the broker.
    pub next: Option<Scheduled>,
    /// The chain ran its last step.
    pub finished: bool,
    pub silenced_until: Option<DateTime<Utc>>,
    /// Who acknowledged, resolved or silenced it last.
    pub by: Option<String>,
    /// Firing jobs that arrived while this chain ran, and were not sent.
    pub attached: u64,
    /// Everyone notified in this chain (the resolved notice goes to them).
    pub notified: Vec<Target>,
    /// Per destination, the conversation this chain's notices continue
    /// (a Slack thread's ts).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub threads: BTreeMap<String, String>,
    pub history: Vec<Event>,
}

impl GroupState {
    fn log(&mut self, at: DateTime<Utc>, what: String) {
        self.history.push(Event { at, what });
        let excess = self.history.len().saturating_sub(HISTORY);
        self.history.drain(..excess);
    }
}

/// What became of a firing job for the group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Its chain is the group's: run it.
    Started,
    /// Another chain is the group's; the job was counted.
    Joined { chain: String },
}

/// A firing job arrives for its group.
pub fn claim(
    current: Option<GroupState>,
    job: &Job,
    now: DateTime<Utc>,
) -> (Option<GroupState>, Claim) {
    match current {
        // Its own message, seen again (a redelivery): carry on.
        Some(s) if s.chain == job.id && s.status != GroupStatus::Resolved => (None, Claim::Started),
        Some(mut s) if s.status != GroupStatus::Resolved || s.chain == job.id => {
            s.attached += 1;
            s.log(
                now,
                format!("job {} attached to the running chain {}", job.id, s.chain),
            );
            let chain = s.chain.clone();
            (Some(s), Claim::Joined { chain })
        }
        previous => {
            let chains = previous.as_ref().map_or(0, |p| p.chains) + 1;
            let mut s = GroupState {
                group_id: job.alert.group_id.clone(),
                status: GroupStatus::Firing,
                chain: job.id.clone(),
                job: job.clone(),
                started_at: now,
                chains,
                next: None,
                finished: false,
                silenced_until: None,
                by: None,
                attached: 0,
                notified: Vec::new(),
                threads: BTreeMap::new(),
                history: previous.map(|p| p.history).unwrap_or_default(),
            };
            s.log(now, format!("chain {} started", job.id));
            (Some(s), Claim::Started)
        }
    }
}

/// What the chain may do before its next step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gate {
    Go,
    /// Acknowledged, resolved, or another chain is the group's now.
    Stop(String),
    /// Silenced: look again then.
    Postpone(DateTime<Utc>),
}

/// Read before every step of chain `chain`.
pub fn gate(state: Option<&GroupState>, chain: &str, now: DateTime<Utc>) -> Gate {
    // No record (a store that was wiped): paging beats silence.
    let Some(s) = state else { return Gate::Go };
    if s.chain != chain {
        return Gate::Stop(format!("chain {} is the group's now", s.chain));
    }
    match s.status {
        GroupStatus::Acknowledged | GroupStatus::Resolved => {
            Gate::Stop(format!("the group is {}", s.status.name()))
        }
        GroupStatus::Firing => match s.silenced_until {
            Some(until) if until > now => Gate::Postpone(until),
            _ => Gate::Go,
        },
    }
}

/// Note the steps one message ran and what comes next.
pub fn note_steps(
    current: Option<GroupState>,
    job: &Job,
    notices: &[Notice],
    then: &Then,
    now: DateTime<Utc>,
) -> Option<GroupState> {
    let mut s = current.filter(|s| s.chain == job.id)?;
    for notice in notices {
        let names = crate::plan::plan(job, notice.step)
            .into_iter()
            .map(|p| p.target.destination)
            .collect::<Vec<_>>()
            .join(", ");
        s.log(
            now,
            format!(
                "step {} (round {}): notify {names}",
                notice.step, notice.round
            ),
        );
    }
    match then {
        Then::Wait { step, round, due } => {
            s.next = Some(Scheduled {
                step: *step,
                round: *round,
                due: *due,
            });
        }
        Then::Finish => {
            s.next = None;
            s.finished = true;
            s.log(now, "chain finished".into());
        }
        Then::Resolve => s.next = None,
    }
    Some(s)
}

/// Note a postponed step (silence) as scheduled.
pub fn note_postponed(
    current: Option<GroupState>,
    chain: &str,
    next: Scheduled,
) -> Option<GroupState> {
    let mut s = current.filter(|s| s.chain == chain)?;
    s.next = Some(next);
    Some(s)
}

/// Note a delivery of chain `chain` accepted by the vendor; `thread`:
/// the conversation it opened, as (where it is kept, the vendor's handle).
/// `what` says how it went out (`sent to`, or `folded into the digest
/// of` a destination whose backlog was too long), for `fanout status`.
pub fn note_sent(
    current: Option<GroupState>,
    chain: &str,
    target: &Target,
    step: usize,
    what: &str,
    thread: Option<(&str, &str)>,
    now: DateTime<Utc>,
) -> Option<GroupState> {
    let mut s = current.filter(|s| s.chain == chain)?;
    if let Some((key, thread)) = thread {
        s.threads
            .entry(key.to_string())
            .or_insert_with(|| thread.to_string());
    }
    if !s
        .notified
        .iter()
        .any(|t| t.destination == target.destination)
    {
        s.notified.push(target.clone());
    }
    s.log(
        now,
        format!("{what} {} (log step {step})", target.destination),
    );
    Some(s)
}

/// What a signal did.
#[derive(Clone, Debug)]
pub enum Applied {
    /// No such group (never fired, or forgotten).
    UnknownGroup,
    /// The group was already in that state.
    Unchanged,
    Changed,
    /// Newly resolved: send the notice to these, about this job.
    Resolved {
        job: Box<Job>,
        notify: Vec<Target>,
    },
}

/// Apply a signal (or a `resolve` step, or a resolved job).
pub fn apply(
    current: Option<GroupState>,
    kind: SignalKind,
    until: Option<DateTime<Utc>>,
    by: Option<&str>,
    now: DateTime<Utc>,
) -> (Option<GroupState>, Applied) {
    let Some(mut s) = current else {
        return (None, Applied::UnknownGroup);
    };
    let who = by.map(|b| format!(" by {b}")).unwrap_or_default();
    let applied = match kind {
        SignalKind::Acknowledge if s.status == GroupStatus::Firing => {
            s.status = GroupStatus::Acknowledged;
            s.log(now, format!("acknowledged{who}"));
            Applied::Changed
        }
        SignalKind::Resolve if s.status != GroupStatus::Resolved => {
            s.status = GroupStatus::Resolved;
            s.next = None;
            s.log(now, format!("resolved{who}"));
            let mut job = s.job.clone();
            job.alert.status = Status::Resolved;
            job.alert.ended_at.get_or_insert(now);
            Applied::Resolved {
                job: Box::new(job),
                notify: s.notified.clone(),
            }
        }
        SignalKind::Silence if s.status != GroupStatus::Resolved => {
            s.silenced_until = until;
            let until = until.map(|u| u.to_rfc3339()).unwrap_or_default();
            s.log(now, format!("silenced until {until}{who}"));
            Applied::Changed
        }
        SignalKind::Unsilence if s.silenced_until.is_some() => {
            s.silenced_until = None;
            s.log(now, format!("unsilenced{who}"));
            Applied::Changed
        }
        _ => return (None, Applied::Unchanged),
    };
    if by.is_some() {
        s.by = by.map(str::to_string);
    }
    (Some(s), applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn job(id: &str) -> Job {
        serde_json::from_str(&format!(
            r#"{{"version":1,"id":"{id}","alert":{{"group_id":"g","title":"t"}},
                "targets":[{{"destination":"a"}}],
                "escalation":[{{"notify":["a"]}},{{"wait":"5m"}},{{"notify":["a"]}}]}}"#
        ))
        .unwrap()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 3, 0, 0).unwrap()
    }

    fn step<T>(
        state: &mut Option<GroupState>,
        change: impl FnOnce(Option<GroupState>) -> (Option<GroupState>, T),
    ) -> T {
        let (new, result) = change(state.clone());
        if let Some(new) = new {
            *state = Some(new);
        }
        result
    }

    #[test]
    fn one_chain_per_group_until_it_is_resolved() {
        let mut s = None;
        assert_eq!(
            step(&mut s, |c| claim(c, &job("j1"), now())),
            Claim::Started
        );
        // Its own redelivery carries on; another firing job joins.
        assert_eq!(
            step(&mut s, |c| claim(c, &job("j1"), now())),
            Claim::Started
        );
        assert_eq!(
            step(&mut s, |c| claim(c, &job("j2"), now())),
            Claim::Joined { chain: "j1".into() }
        );
        assert_eq!(s.as_ref().unwrap().attached, 1);
        step(&mut s, |c| apply(c, SignalKind::Resolve, None, None, now()));
        assert_eq!(
            step(&mut s, |c| claim(c, &job("j3"), now())),
            Claim::Started
        );
        let state = s.unwrap();
        assert_eq!((state.chain.as_str(), state.chains), ("j3", 2));
    }

    #[test]
    fn the_gate_stops_on_acknowledge_and_waits_out_a_silence() {
        let mut s = None;
        step(&mut s, |c| claim(c, &job("j1"), now()));
        assert_eq!(gate(s.as_ref(), "j1", now()), Gate::Go);
        assert!(matches!(gate(s.as_ref(), "j0", now()), Gate::Stop(_)));
        let until = now() + chrono::Duration::seconds(3);
        step(&mut s, |c| {
            apply(c, SignalKind::Silence, Some(until), Some("ann"), now())
        });
        assert_eq!(gate(s.as_ref(), "j1", now()), Gate::Postpone(until));
        assert_eq!(gate(s.as_ref(), "j1", until), Gate::Go);
        step(&mut s, |c| {
            apply(c, SignalKind::Acknowledge, None, Some("bob"), now())
        });
        assert!(
            matches!(gate(s.as_ref(), "j1", until), Gate::Stop(why) if why.contains("acknowledged"))
        );
        assert_eq!(s.unwrap().by.as_deref(), Some("bob"));
    }

    #[test]
    fn resolving_names_everyone_notified_once() {
        let mut s = None;
        step(&mut s, |c| claim(c, &job("j1"), now()));
        let a = Target::to("a");
        for what in ["sent to", "folded into the digest of"] {
            let new = note_sent(s.clone(), "j1", &a, 0, what, None, now());
            s = new.or(s);
        }
        let history = &s.as_ref().unwrap().history;
        assert!(
            history
                .iter()
                .any(|e| e.what == "folded into the digest of a (log step 0)"),
            "the group's history (fanout status) shows a fold: {history:?}"
        );
        match step(&mut s, |c| apply(c, SignalKind::Resolve, None, None, now())) {
            Applied::Resolved { job, notify } => {
                assert_eq!(notify, vec![a]);
                assert_eq!(job.alert.status, Status::Resolved);
                assert_eq!(job.alert.ended_at, Some(now()));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            step(&mut s, |c| apply(c, SignalKind::Resolve, None, None, now())),
            Applied::Unchanged
        ));
    }

    #[test]
    fn signals_for_unknown_groups_change_nothing() {
        assert!(matches!(
            apply(None, SignalKind::Acknowledge, None, None, now()).1,
            Applied::UnknownGroup
        ));
    }
}
