//! Rate limits per destination, kept by fanout rather than learned from
//! the vendor's errors (a WeCom bot takes 20 messages a minute, Slack about
//! one a second per channel).
//!
//! A limit of `count` per `period` holds over every window of that length:
//! each send reserves a slot no earlier than the `count`-th send before it
//! plus `period`. Reservations are handed out in order, so a burst is spread
//! out instead of retried in a herd; a delivery whose slot lies ahead waits
//! in the broker's delay tiers until then. The recent slots live in the
//! store, so workers sharing Redis share the limit.

use std::time::Duration;

/// Added to every period: a send goes out between its slot and
/// [`LATE_MS`] after it, and the network and the vendor's clock add their
/// own jitter; a window half a second wider absorbs both.
pub const GUARD_MS: i64 = 500;

/// A delivery that reaches its send more than this after its slot (a busy
/// worker, a backlog in the work queue) has missed it: sending then could
/// crowd the next window's sends, so it takes a new slot instead.
pub const LATE_MS: i64 = 300;

/// Where the time now stands against a reserved slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotTime {
    /// Further ahead than the broker's `EARLY_MS`: wait in the delay tiers.
    Ahead,
    /// Due within `EARLY_MS`: wait this long in process, then send.
    Soon(Duration),
    /// Due now, within [`LATE_MS`] of the slot.
    Now,
    /// Past the slot by more than [`LATE_MS`]: take a new one.
    Missed,
}

impl SlotTime {
    pub fn of(slot_ms: i64, now_ms: i64) -> Self {
        if slot_ms > now_ms + crate::clock::EARLY_MS {
            Self::Ahead
        } else if slot_ms > now_ms {
            Self::Soon(Duration::from_millis((slot_ms - now_ms) as u64))
        } else if now_ms - slot_ms <= LATE_MS {
            Self::Now
        } else {
            Self::Missed
        }
    }
}

/// What a rate-limited destination does when its backlog grows longer
/// than a person should wait (`on_backlog`, `digest_after`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backlog {
    /// Every notification waits for its own slot, however late.
    Queue,
    /// A notification whose slot lies more than `after` ahead is folded
    /// into one summary per destination, sent in the next free slot.
    Digest { after: Duration },
}

/// How long a chat notification may wait for a slot before it is folded
/// into the digest, by default.
pub const DEFAULT_DIGEST_AFTER: Duration = Duration::from_secs(120);

/// `count` sends per `period`, e.g. `20/min`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub count: u32,
    pub period: Duration,
}

impl RateLimit {
    /// Parse `N/unit`: `20/min`, `1/s`, `300/hour`, or `5/10s` (any
    /// humantime duration after the slash).
    pub fn parse(text: &str) -> Result<Self, String> {
        let shape = "write it as COUNT/PERIOD, e.g. \"20/min\" or \"1/s\"";
        let (count, period) = text.split_once('/').ok_or_else(|| shape.to_string())?;
        let count: u32 = count
            .trim()
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("{count:?} is not a positive count; {shape}"))?;
        let period = match period.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            other => humantime::parse_duration(other)
                .map_err(|_| format!("{other:?} is not a period; {shape}"))?,
        };
        if period < Duration::from_millis(100) || period > Duration::from_secs(86_400) {
            return Err("the period must lie between 100ms and 24h".into());
        }
        Ok(Self { count, period })
    }

    /// The window slots are spaced by: the vendor's period plus
    /// [`GUARD_MS`], so that the vendor, counting arrivals, never sees more
    /// than `count` in its window.
    pub fn period_ms(&self) -> i64 {
        self.period.as_millis() as i64 + GUARD_MS
    }
}

/// How many of a limit's sends one delivery takes: a WeCom markdown with
/// its chart is two messages. Never more than the limit allows at once.
pub fn cost_within(messages: u32, limit: RateLimit) -> u32 {
    messages.clamp(1, limit.count)
}

/// The slot for the next delivery of `cost` sends, given the recent slots
/// (ascending, at most `count` of them) and the time now (unix ms): the
/// first time at which `cost` more sends keep every window within the limit.
pub fn next_slot(recent: &[i64], limit: RateLimit, cost: u32, now_ms: i64) -> i64 {
    let mut at = now_ms;
    if let Some(last) = recent.last() {
        at = at.max(*last);
    }
    // At most `count - cost` earlier sends may share the window with these.
    let room = (limit.count - cost_within(cost, limit)) as usize;
    if recent.len() > room {
        at = at.max(recent[recent.len() - room - 1] + limit.period_ms());
    }
    at
}

/// The Redis side of [`next_slot`], run atomically by the server so that
/// workers sharing Redis never hand out the same slot.
pub const REDIS_RESERVE: &str = r#"
local now = tonumber(ARGV[1])
local count = tonumber(ARGV[2])
local period = tonumber(ARGV[3])
local cost = math.max(1, math.min(tonumber(ARGV[4]), count))
local within = tonumber(ARGV[5])
local recent = redis.call('LRANGE', KEYS[1], 0, -1)
local n = #recent
local room = count - cost
local at = now
if n > 0 then at = math.max(at, tonumber(recent[n])) end
if n > room then at = math.max(at, tonumber(recent[n - room]) + period) end
if at - now > within then return -1 end
for _ = 1, cost do redis.call('RPUSH', KEYS[1], at) end
if n + cost > count then redis.call('LTRIM', KEYS[1], n + cost - count, -1) end
redis.call('PEXPIRE', KEYS[1], at - now + period + 1000)
return at
"#;

/// Keep the last `count` slots after taking `cost` of them at `slot`.
pub fn push_slot(recent: &mut Vec<i64>, slot: i64, limit: RateLimit, cost: u32) {
    recent.extend(std::iter::repeat_n(slot, cost_within(cost, limit) as usize));
    let excess = recent.len().saturating_sub(limit.count as usize);
    recent.drain(..excess);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_in_the_shapes_people_write() {
        let min = RateLimit::parse("20/min").unwrap();
        assert_eq!((min.count, min.period), (20, Duration::from_secs(60)));
        assert_eq!(
            RateLimit::parse("1/s").unwrap().period,
            Duration::from_secs(1)
        );
        assert_eq!(
            RateLimit::parse("5/10s").unwrap().period,
            Duration::from_secs(10)
        );
        for bad in ["20", "0/min", "x/min", "20/fortnight", "1/1ms", ""] {
            assert!(RateLimit::parse(bad).is_err(), "{bad}");
        }
    }

    /// Reserve like the stores do, on a local list.
    struct Slots(Vec<i64>);
    impl Slots {
        fn reserve(&mut self, limit: RateLimit, now_ms: i64) -> i64 {
            self.reserve_n(limit, 1, now_ms)
        }
        fn reserve_n(&mut self, limit: RateLimit, cost: u32, now_ms: i64) -> i64 {
            let slot = next_slot(&self.0, limit, cost, now_ms);
            push_slot(&mut self.0, slot, limit, cost);
            slot
        }
    }

    #[test]
    fn a_delivery_of_two_messages_takes_two_sends_of_the_window() {
        let limit = RateLimit::parse("20/min").unwrap();
        let mut slots = Slots(Vec::new());
        // 100 markdown+image pairs at once: 10 pairs a minute.
        let all: Vec<i64> = (0..100).map(|_| slots.reserve_n(limit, 2, 0)).collect();
        let mut sends: Vec<i64> = all.iter().flat_map(|t| [*t, *t]).collect();
        sends.sort();
        for (i, start) in sends.iter().enumerate() {
            let in_window = sends[i..]
                .iter()
                .take_while(|t| **t < start + 60_000)
                .count();
            assert!(
                in_window <= 20,
                "{in_window} sends in the minute from {start}"
            );
        }
        assert_eq!(all[9], 0);
        assert_eq!(all[10], 60_000 + GUARD_MS);
        assert_eq!(all[99], 9 * (60_000 + GUARD_MS));
        // One send more than the limit is never asked for.
        assert_eq!(cost_within(50, limit), 20);
        let mut big = Slots(Vec::new());
        assert_eq!(big.reserve_n(limit, 50, 0), 0);
        assert_eq!(big.reserve_n(limit, 1, 0), 60_000 + GUARD_MS);
    }

    #[test]
    fn no_window_ever_holds_more_than_the_limit() {
        let limit = RateLimit::parse("20/min").unwrap();
        let mut slots = Slots(Vec::new());
        // A burst of 100 at t=0, then stragglers.
        let mut all: Vec<i64> = (0..100).map(|_| slots.reserve(limit, 0)).collect();
        all.extend((0..10).map(|i| slots.reserve(limit, 100_000 + i)));
        assert!(all.windows(2).all(|w| w[0] <= w[1]), "slots in order");
        for (i, start) in all.iter().enumerate() {
            let in_window = all[i..].iter().take_while(|t| **t < start + 60_000).count();
            assert!(
                in_window <= 20,
                "{in_window} sends in the minute from {start}"
            );
        }
        // The first 20 go at once; the 21st waits a full minute.
        assert_eq!(all[19], 0);
        assert_eq!(all[20], 60_000 + GUARD_MS);
    }

    #[test]
    fn a_send_goes_out_between_its_slot_and_late_ms_after() {
        assert_eq!(SlotTime::of(1_000, 0), SlotTime::Ahead);
        assert_eq!(
            SlotTime::of(1_000, 1_000 - crate::clock::EARLY_MS),
            SlotTime::Soon(Duration::from_millis(crate::clock::EARLY_MS as u64))
        );
        assert_eq!(SlotTime::of(1_000, 1_000), SlotTime::Now);
        assert_eq!(SlotTime::of(1_000, 1_000 + LATE_MS), SlotTime::Now);
        assert_eq!(SlotTime::of(1_000, 1_001 + LATE_MS), SlotTime::Missed);
        // Lateness and the spread of sends must fit inside the guard.
        const { assert!(LATE_MS < GUARD_MS) };
    }

    #[test]
    fn pushing_keeps_only_the_last_count() {
        let limit = RateLimit::parse("2/s").unwrap();
        let mut recent = vec![1, 2];
        push_slot(&mut recent, 3, limit, 1);
        assert_eq!(recent, [2, 3]);
        push_slot(&mut recent, 4, limit, 2);
        assert_eq!(recent, [4, 4]);
    }
}
