//! Points in time as producers write them, and the ones that cannot be
//! facts about an alert.
//!
//! Monitors send times in many shapes: RFC 3339, ISO 8601 without an
//! offset (Python's `datetime.utcnow().isoformat()`), Unix epochs in
//! seconds, milliseconds (SkyWalking, Grafana), microseconds or
//! nanoseconds. They also send times that only look like times: Go's zero
//! time `0001-01-01T00:00:00Z` for "not set" (Alertmanager does, for a
//! firing alert's end), the Unix epoch for the same, or a millisecond
//! value read as seconds (the year 55000). One reader here serves every
//! time input, and [`implausible`] says which ones to treat as unset.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// Epochs are told apart by magnitude: below 1e11 they are seconds (up
/// to the year 5138), below 1e14 milliseconds, below 1e17 microseconds,
/// else nanoseconds. Any real "now" in one unit is far from the others.
const SECONDS_BELOW: f64 = 1e11;
const MILLIS_BELOW: f64 = 1e14;
const MICROS_BELOW: f64 = 1e17;

/// The earliest time an alert can really have: anything before is a zero
/// value standing for "unset" (Go's year 1, Unix's 1970).
pub fn earliest() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// How far ahead of this clock a start or end may lie (clock skew
/// between the monitor and fanout).
pub const AHEAD: Duration = Duration::days(1);

/// The instant an epoch number stands for, its unit told by magnitude.
pub fn from_epoch(value: f64) -> Option<DateTime<Utc>> {
    if !value.is_finite() {
        return None;
    }
    let magnitude = value.abs();
    let micros = if magnitude < SECONDS_BELOW {
        value * 1e6
    } else if magnitude < MILLIS_BELOW {
        value * 1e3
    } else if magnitude < MICROS_BELOW {
        value
    } else {
        value / 1e3
    };
    // Rounded to microseconds like Python's `fromtimestamp`, so
    // 1700000000.123 keeps its .123 despite float error.
    let micros = micros.round();
    if micros.abs() > 9.0e18 {
        return None;
    }
    DateTime::from_timestamp_micros(micros as i64)
}

/// The instant an integer epoch stands for (exact for every unit).
pub fn from_epoch_int(value: i64) -> Option<DateTime<Utc>> {
    let magnitude = value.unsigned_abs() as f64;
    if magnitude < SECONDS_BELOW {
        DateTime::from_timestamp(value, 0)
    } else if magnitude < MILLIS_BELOW {
        DateTime::from_timestamp_millis(value)
    } else if magnitude < MICROS_BELOW {
        DateTime::from_timestamp_micros(value)
    } else {
        Some(DateTime::from_timestamp_nanos(value))
    }
}

/// ISO forms with an offset, tried after RFC 3339.
const OFFSET_FORMATS: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f%#z",
    "%Y-%m-%d %H:%M:%S%.f%#z",
    "%Y-%m-%dT%H:%M%#z",
    "%Y-%m-%d %H:%M%#z",
];
/// ISO forms without an offset: read as UTC, as Celery and most
/// producers that write them mean.
const NAIVE_FORMATS: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
];

/// A time written as text: RFC 3339, ISO 8601 with or without an offset
/// (without: UTC), a date alone (midnight UTC), or an epoch number.
pub fn parse_text(text: &str) -> Option<DateTime<Utc>> {
    let s = text.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(n) = s.parse::<i64>() {
        return from_epoch_int(n);
    }
    // Only plain decimals: `f64::from_str` would also take "inf" and "NaN".
    if s.bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
    {
        if let Ok(f) = s.parse::<f64>() {
            return from_epoch(f);
        }
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    parse_iso(s)
}

/// ISO 8601 with or without an offset (without: UTC), or a date alone.
pub fn parse_iso(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    for fmt in OFFSET_FORMATS {
        if let Ok(dt) = DateTime::parse_from_str(s, fmt) {
            return Some(dt.with_timezone(&Utc));
        }
    }
    for fmt in NAIVE_FORMATS {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(dt.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc())
}

/// Why `t` cannot be a fact about an alert seen `now`, if it cannot: a
/// zero value (before 2000), or further ahead than clock skew explains.
pub fn implausible(t: DateTime<Utc>, now: DateTime<Utc>) -> Option<String> {
    if t < earliest() {
        Some(format!(
            "{} is a zero value, not a time",
            t.format("%Y-%m-%dT%H:%M:%SZ")
        ))
    } else if t > now + AHEAD {
        Some(format!(
            "{} is more than a day ahead of this clock (a time in the wrong unit?)",
            t.to_rfc3339()
        ))
    } else {
        None
    }
}

/// When a silence ends: an RFC 3339 time, or a duration from `now`. A
/// silence that would already be over, or that lasts more than a year,
/// is refused: both are a mistake in the input, not a wish.
pub fn silence_until(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let until = match DateTime::parse_from_rfc3339(text.trim()) {
        Ok(at) => at.with_timezone(&Utc),
        Err(_) => {
            let span = crate::span::Span::parse(text).map_err(|_| {
                format!("{text:?} is neither an RFC 3339 time nor a duration like \"1h\"")
            })?;
            now + Duration::from_std(span.0).unwrap_or(Duration::MAX)
        }
    };
    if until <= now {
        return Err(format!(
            "{text:?} is not in the future: the silence would already be over"
        ));
    }
    if until > now + Duration::days(366) {
        return Err(format!(
            "{text:?} is more than a year away; silence for at most a year, and resolve what will not come back"
        ));
    }
    Ok(until)
}

/// A serde field of a job that takes any of the time forms above.
pub mod serde_opt {
    use super::*;
    use serde::{de, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Text(String),
            Int(i64),
            Float(f64),
        }
        let read = match Option::<Wire>::deserialize(d)? {
            None => return Ok(None),
            // "" is how many producers write "unset" (Go templates, shells).
            Some(Wire::Text(text)) if text.trim().is_empty() => return Ok(None),
            Some(Wire::Text(text)) => parse_text(&text).ok_or(text),
            Some(Wire::Int(n)) => from_epoch_int(n).ok_or_else(|| n.to_string()),
            Some(Wire::Float(f)) => from_epoch(f).ok_or_else(|| f.to_string()),
        };
        read.map(Some).map_err(|given| {
            de::Error::custom(format!(
                "{given:?} is not a time (RFC 3339, ISO 8601, or a Unix epoch in s, ms, µs or ns)"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn epochs_are_read_in_the_unit_their_size_says() {
        let t = at("2023-11-14T22:13:20Z");
        assert_eq!(from_epoch_int(1_700_000_000), Some(t));
        assert_eq!(from_epoch_int(1_700_000_000_000), Some(t));
        assert_eq!(from_epoch_int(1_700_000_000_000_000), Some(t));
        assert_eq!(from_epoch_int(1_700_000_000_000_000_000), Some(t));
        assert_eq!(from_epoch(1_700_000_000.0), Some(t));
        assert_eq!(from_epoch(1.7e12), Some(t));
        assert_eq!(from_epoch(1.7e15), Some(t));
        assert_eq!(from_epoch(1.7e18), Some(t));
        assert_eq!(
            from_epoch(1_700_000_000.123).map(|t| t.timestamp_subsec_micros()),
            Some(123_000)
        );
        assert_eq!(from_epoch(f64::NAN), None);
        assert_eq!(from_epoch(1e300), None);
    }

    #[test]
    fn text_forms_all_land_on_the_same_instant() {
        let t = at("2026-11-23T03:00:00Z");
        for text in [
            "2026-11-23T03:00:00Z",
            "2026-11-23T11:00:00+08:00",
            "2026-11-23T03:00:00",
            "2026-11-23 03:00:00.000000",
            "2026-11-23T11:00+0800",
            "1795402800",
            "1795402800000",
        ] {
            assert_eq!(parse_text(text), Some(t), "{text}");
        }
        assert_eq!(parse_text("soon"), None);
        assert_eq!(parse_text("inf"), None);
    }

    #[test]
    fn zero_values_and_far_futures_are_not_facts() {
        let now = at("2026-11-30T00:00:00Z");
        assert!(implausible(at("0001-01-01T00:00:00Z"), now)
            .unwrap()
            .contains("zero value"));
        assert!(implausible(at("1970-01-01T00:00:00Z"), now).is_some());
        // A millisecond epoch read as seconds lands tens of thousands of years on.
        let wrong_unit = DateTime::from_timestamp(1_700_000_000_000, 0).unwrap();
        assert!(implausible(wrong_unit, now).unwrap().contains("wrong unit"));
        assert_eq!(implausible(at("2026-11-30T12:00:00Z"), now), None);
        assert_eq!(implausible(at("2026-11-29T12:00:00Z"), now), None);
    }

    #[test]
    fn a_silence_ends_in_the_future_and_within_a_year() {
        let now = at("2026-11-23T03:00:00Z");
        assert_eq!(
            silence_until("1h", now).unwrap(),
            at("2026-11-23T04:00:00Z")
        );
        assert_eq!(
            silence_until("2026-11-23T05:00:00+01:00", now).unwrap(),
            at("2026-11-23T04:00:00Z")
        );
        assert!(silence_until("0001-01-01T00:00:00Z", now)
            .unwrap_err()
            .contains("not in the future"));
        assert!(silence_until("900d", now).unwrap_err().contains("a year"));
        assert!(silence_until("soon", now).unwrap_err().contains("RFC 3339"));
    }
}
