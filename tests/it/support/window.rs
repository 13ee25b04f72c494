//! A vendor's rate limit as the fakes keep it: at most `count` accepted
//! messages in any `per`-long window.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub struct RateWindow {
    count: usize,
    per: Duration,
    taken: VecDeque<Instant>,
}

impl RateWindow {
    pub fn new(count: usize, per: Duration) -> Self {
        Self {
            count,
            per,
            taken: VecDeque::new(),
        }
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// Take a message now, or say how long until the window has room.
    pub fn admit(&mut self) -> Result<(), Duration> {
        let now = Instant::now();
        while self
            .taken
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.per)
        {
            self.taken.pop_front();
        }
        if self.taken.len() >= self.count {
            let oldest = self.taken.front().copied().unwrap_or(now);
            return Err(self.per.saturating_sub(now.duration_since(oldest)));
        }
        self.taken.push_back(now);
        Ok(())
    }
}
