//! Time as people and monitors write it: zones ([`zone`]) and points in
//! time ([`instant`]). Every time input of a job, a signal or a config
//! goes through here, so a mistake is caught the same way everywhere.

pub mod instant;
pub mod zone;

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A message due within this many ms is taken as come. Shorter than the
/// shortest tier, so nothing runs earlier than that, and nothing takes a
/// hop it does not need.
pub const EARLY_MS: i64 = 50;
