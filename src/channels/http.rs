//! What an HTTP answer means for every HTTP channel: delivered, worth
//! another try (and when), or permanent. Channels add their own body rules
//! (WeCom's errcode, Slack's `ok:false`) on top.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

use crate::delivery::{Class, Reason, SendError};

/// 2xx is delivered. 408, 429 and 5xx (but 501) are retried, honouring
/// `Retry-After`. Everything else is permanent: the same request will get
/// the same answer.
pub fn classify(status: StatusCode, headers: &HeaderMap, what: &str) -> Result<(), SendError> {
    let code = status.as_u16();
    if status.is_success() {
        return Ok(());
    }
    let message = format!("{what} answered {status}");
    let retryable = matches!(code, 408 | 429) || (status.is_server_error() && code != 501);
    let reason = match code {
        401 | 403 => Reason::Auth,
        429 => Reason::RateLimited,
        408 => Reason::Timeout,
        400..=499 => Reason::Client,
        500..=599 => Reason::Server,
        _ => Reason::Other,
    };
    if retryable {
        Err(SendError::new(
            Class::Retry {
                after: retry_after(headers),
            },
            reason,
            message,
        ))
    } else {
        Err(SendError::permanent(reason, message))
    }
}

/// `Retry-After` as seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The HTTP client every channel sends with: bounded by `timeout`, and
/// never following a redirect (that would resend the alert somewhere not
/// configured).
pub fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// What every HTTP channel's sender holds besides its own config.
pub struct SenderParts {
    /// The destination's name, for its template overrides.
    pub destination: String,
    pub templates: std::sync::Arc<crate::template::Templates>,
    /// A [`client`] with the channel's timeout.
    pub client: reqwest::Client,
}

impl SenderParts {
    pub fn new(
        destination: &str,
        timeout: Duration,
        ctx: &super::BuildContext,
    ) -> Result<Self, String> {
        Ok(Self {
            destination: destination.to_string(),
            templates: ctx.templates.clone(),
            client: client(timeout)?,
        })
    }
}

/// `fanout check` for an endpoint a probe must not post to: does its host
/// accept connections? `ok` says what else was checked; `hint` what to try.
pub async fn probe_connect(
    component: String,
    url: &url::Url,
    timeout: std::time::Duration,
    ok: &str,
    hint: &str,
) -> crate::check::CheckRow {
    use crate::check::CheckRow;
    let target = redact_url(url);
    let host = url.host_str().unwrap_or_default().to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let connect = tokio::net::TcpStream::connect((host.as_str(), port));
    match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(_)) => CheckRow::ok(
            component,
            target,
            format!("{ok}{host}:{port} accepts connections"),
        ),
        Ok(Err(e)) => CheckRow::fail(component, target, e.to_string(), hint),
        Err(_) => CheckRow::fail(
            component,
            target,
            "connect timed out",
            "a firewall dropping packets looks like this",
        ),
    }
}

/// A transport error (no answer at all) as a send error: always worth
/// another try. The URL is left out: it may carry a key.
pub fn transport_error(error: reqwest::Error, what: &str) -> SendError {
    let reason = if error.is_timeout() {
        Reason::Timeout
    } else {
        Reason::Server
    };
    SendError::retry(reason, format!("{what}: {}", error.without_url()))
}

pub use crate::secret::redact_url;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_from_100_to_599_is_classified_by_the_rules() {
        for code in 100..=599u16 {
            let Ok(status) = StatusCode::from_u16(code) else {
                continue;
            };
            let got = classify(status, &HeaderMap::new(), "x");
            let want_ok = (200..300).contains(&code);
            let want_retry =
                code == 408 || code == 429 || ((500..600).contains(&code) && code != 501);
            match got {
                Ok(()) => assert!(want_ok, "{code} delivered"),
                Err(e) => {
                    assert!(!want_ok, "{code}");
                    assert_eq!(e.is_retryable(), want_retry, "{code}");
                }
            }
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        h.insert(RETRY_AFTER, later.parse().unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
        let err = classify(
            StatusCode::TOO_MANY_REQUESTS,
            &{
                let mut h = HeaderMap::new();
                h.insert(RETRY_AFTER, "3".parse().unwrap());
                h
            },
            "x",
        )
        .unwrap_err();
        assert_eq!(
            err.class,
            Class::Retry {
                after: Some(Duration::from_secs(3))
            }
        );
        assert_eq!(err.reason, Reason::RateLimited);
    }

    #[test]
    fn urls_are_shown_without_path_or_query() {
        let u =
            url::Url::parse("https://hooks.example.com:8443/T123/secret-key?token=abc").unwrap();
        assert_eq!(redact_url(&u), "https://hooks.example.com:8443/…");
    }
}
