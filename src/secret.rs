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

/// A URL that carries a credential: a WeCom bot's `key`, a token in a
/// webhook's path or query. `Debug` and `Display` show
/// [`redact_url`]'s `scheme://host:port/…`; [`SecretUrl::expose`] gives
/// the URL to the one place that sends to it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(url::Url);

impl SecretUrl {
    pub fn new(url: url::Url) -> Self {
        Self(url)
    }

    /// The real URL, for the request that goes to it.
    pub fn expose(&self) -> &url::Url {
        &self.0
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

/// `scheme://host:port/…`: a URL as it may be shown (paths and queries of
/// webhook URLs often hold the key).
pub fn redact_url(url: &url::Url) -> String {
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let path = if url.path() == "/" && url.query().is_none() {
        "/"
    } else {
        "/…"
    };
    format!(
        "{}://{}{port}{path}",
        url.scheme(),
        url.host_str().unwrap_or("?")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_url_shows_only_where_it_goes() {
        let url = url::Url::parse("https://qyapi.example.com:8443/send?key=k-123").unwrap();
        let s = SecretUrl::new(url.clone());
        assert_eq!(
            format!("{s} {s:?}"),
            "https://qyapi.example.com:8443/… https://qyapi.example.com:8443/…"
        );
        assert_eq!(s.expose(), &url);
    }

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
    }
}
