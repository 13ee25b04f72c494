//! Plan: which deliveries one step of a job asks for, one per target.
//!
//! A job is rendered once and fanned out: each planned delivery is sent,
//! retried and recorded on its own, so one failing channel never re-sends
//! another's message.

use crate::job::{Job, Step, Target};

/// One delivery to make, before charts are attached.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    /// 1-based, in plan order; names outbox files.
    pub seq: usize,
    pub step: usize,
    pub target: Target,
}

/// The step a fresh job starts with: its first `notify`, or step 0 when the
/// job has no escalation (then every target is notified once).
pub fn first_notify(job: &Job) -> Option<usize> {
    if job.escalation.is_empty() {
        return Some(0);
    }
    job.escalation
        .iter()
        .position(|s| matches!(s, Step::Notify { .. }))
}

/// The deliveries of step `step`: the targets its `notify` names, in that
/// order, or all targets when the job has no escalation.
pub fn plan(job: &Job, step: usize) -> Vec<Planned> {
    let targets: Vec<&Target> = match job.escalation.get(step) {
        None if job.escalation.is_empty() => job.targets.iter().collect(),
        Some(Step::Notify { destinations, .. }) => destinations
            .iter()
            .filter_map(|d| job.targets.iter().find(|t| &t.destination == d))
            .collect(),
        _ => Vec::new(),
    };
    targets
        .into_iter()
        .enumerate()
        .map(|(i, target)| Planned {
            seq: i + 1,
            step,
            target: target.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(escalation: &str) -> Job {
        let json = format!(
            r#"{{"version":1,"id":"j","alert":{{"group_id":"g","title":"t"}},
                "targets":[{{"destination":"a"}},{{"destination":"b"}},{{"destination":"c"}}]
                {escalation}}}"#
        );
        serde_json::from_str(&json).unwrap()
    }

    fn names(planned: &[Planned]) -> Vec<&str> {
        planned
            .iter()
            .map(|p| p.target.destination.as_str())
            .collect()
    }

    #[test]
    fn no_escalation_notifies_every_target_once() {
        let job = job("");
        assert_eq!(first_notify(&job), Some(0));
        assert_eq!(names(&plan(&job, 0)), ["a", "b", "c"]);
        assert_eq!(plan(&job, 0)[2].seq, 3);
    }

    #[test]
    fn a_notify_step_names_its_targets_in_its_order() {
        let job = job(r#","escalation":[{"wait":"1m"},{"notify":["c","a"]}]"#);
        assert_eq!(first_notify(&job), Some(1));
        assert_eq!(names(&plan(&job, 1)), ["c", "a"]);
        assert!(plan(&job, 0).is_empty());
    }
}
