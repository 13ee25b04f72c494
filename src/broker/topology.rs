//! The names of everything fanout declares on RabbitMQ: exchanges,
//! queues per stage, the delay tiers, and the routing keys producers use.

use std::time::Duration;

use lapin::types::{AMQPValue, FieldTable};

use crate::channels::ChannelKind;

/// The names of everything fanout declares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    pub exchange: String,
    /// Where delay tiers send due messages back, by their `fanout-route`.
    pub returns: String,
    pub jobs: String,
    pub render: String,
    pub dead: String,
    prefix: String,
}

/// Which queue a message lives in, named as the `fanout-route` header
/// says it: a due message goes back to where it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Jobs,
    /// Running escalation chains: a [`crate::chain::Cursor`] per message.
    Chains,
    Render,
    Deliver(ChannelKind),
}

impl Route {
    /// Every route the topology binds.
    pub fn all() -> Vec<Route> {
        let mut all = vec![Route::Jobs, Route::Chains, Route::Render];
        all.extend(ChannelKind::ALL.iter().map(|k| Route::Deliver(*k)));
        all
    }

    pub fn name(self) -> String {
        match self {
            Route::Jobs => JOB_KEY.to_string(),
            Route::Chains => "chain".to_string(),
            Route::Render => "render".to_string(),
            Route::Deliver(kind) => format!("deliver.{}", kind.name()),
        }
    }

    pub fn parse(name: &str) -> Option<Route> {
        Route::all().into_iter().find(|r| r.name() == name)
    }
}

/// Delay tiers: a message waits in the largest tier not past its due time,
/// then dead-letters back to `fanout.jobs` and is looked at again, hop by
/// hop. No timer lives in a worker; no broker plugin is needed.
/// The shortest tier keeps the last hop's overshoot under a quarter second.
pub const DELAY_TIERS: [Duration; 7] = [
    Duration::from_millis(250),
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(600),
    Duration::from_secs(3600),
];

impl Topology {
    pub fn new(prefix: &str) -> Self {
        Self {
            exchange: format!("{prefix}fanout"),
            returns: format!("{prefix}fanout.return"),
            jobs: format!("{prefix}fanout.jobs"),
            render: format!("{prefix}fanout.render"),
            dead: format!("{prefix}fanout.dead"),
            prefix: prefix.to_string(),
        }
    }

    /// The queue a route names.
    pub fn queue(&self, route: Route) -> String {
        match route {
            Route::Jobs => self.jobs.clone(),
            Route::Chains => format!("{}fanout.chains", self.prefix),
            Route::Render => self.render.clone(),
            Route::Deliver(kind) => format!("{}fanout.deliver.{}", self.prefix, kind.name()),
        }
    }

    /// The queue of a delay tier, e.g. `fanout.delay.30s`.
    pub fn delay(&self, tier: Duration) -> String {
        format!(
            "{}fanout.delay.{}",
            self.prefix,
            humantime::format_duration(tier)
        )
    }

    /// Both exchanges fanout declares (for cleanup).
    pub fn exchanges(&self) -> [String; 2] {
        [self.exchange.clone(), self.returns.clone()]
    }

    /// Every queue fanout declares (for cleanup and checks).
    pub fn queues(&self) -> Vec<String> {
        let mut all: Vec<String> = Route::all().into_iter().map(|r| self.queue(r)).collect();
        all.push(self.dead.clone());
        all.extend(DELAY_TIERS.iter().map(|t| self.delay(*t)));
        all
    }
}

/// The tier to wait in for `remaining`: the largest not longer than it
/// (the shortest when less than a second remains).
pub fn tier_for(remaining: Duration) -> Duration {
    DELAY_TIERS
        .iter()
        .rev()
        .find(|t| **t <= remaining)
        .copied()
        .unwrap_or(DELAY_TIERS[0])
}

/// Routing keys producers publish with.
pub const JOB_KEY: &str = "job";
pub const SIGNAL_KEY: &str = "signal";

/// Arguments that make a queue a quorum queue (replicated, durable).
pub(super) fn quorum() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args
}
