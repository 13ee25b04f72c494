//! A value that must never reach a log line, an error message or the outbox.
//!
//! Passwords, tokens, webhook keys and signing keys are held as [`Secret`]:
//! `Debug` and `Display` print `***`, and the only way to the inner value is
//! [`Secret::expose`], called where the value goes onto the wire.

use std::fmt;

/// Redacted wrapper for a secret string.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

/// What a secret looks like wherever it is shown.
pub const REDACTED: &str = "***";

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The real value, for the one place that puts it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
    }
}
