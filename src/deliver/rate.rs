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

    fn period_ms(&self) -> i64 {
        self.period.as_millis() as i64
    }
}

/// The slot for the next send, given the recent slots (ascending, at most
/// `count` of them) and the time now (unix ms).
pub fn next_slot(recent: &[i64], limit: RateLimit, now_ms: i64) -> i64 {
    let mut at = now_ms;
    if let Some(last) = recent.last() {
        at = at.max(*last);
    }
    let count = limit.count as usize;
    if recent.len() >= count {
        at = at.max(recent[recent.len() - count] + limit.period_ms());
    }
    at
}

/// The Redis side of [`next_slot`], run atomically by the server so that
/// workers sharing Redis never hand out the same slot.
pub const REDIS_RESERVE: &str = r#"
local now = tonumber(ARGV[1])
local count = tonumber(ARGV[2])
local period = tonumber(ARGV[3])
local recent = redis.call('LRANGE', KEYS[1], 0, -1)
local n = #recent
local at = now
if n > 0 then at = math.max(at, tonumber(recent[n])) end
if n >= count then at = math.max(at, tonumber(recent[n - count + 1]) + period) end
redis.call('RPUSH', KEYS[1], at)
if n + 1 > count then redis.call('LTRIM', KEYS[1], n + 1 - count, -1) end
redis.call('PEXPIRE', KEYS[1], at - now + period + 1000)
return at
"#;

/// Keep the last `count` slots after pushing `slot`.
pub fn push_slot(recent: &mut Vec<i64>, slot: i64, limit: RateLimit) {
    recent.push(slot);
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
            let slot = next_slot(&self.0, limit, now_ms);
            push_slot(&mut self.0, slot, limit);
            slot
        }
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
        assert_eq!(all[20], 60_000);
    }

    #[test]
    fn pushing_keeps_only_the_last_count() {
        let limit = RateLimit::parse("2/s").unwrap();
        let mut recent = vec![1, 2];
        push_slot(&mut recent, 3, limit);
        assert_eq!(recent, [2, 3]);
    }
}
