//! Who may post to `/ingest/<source>`: a token, an HMAC signature of the
//! body, or both (then both must hold). Every comparison is constant-time;
//! a refusal says which check failed, never what was presented.
//!
//! - **Token**: `Authorization: Bearer <token>`, the password of basic
//!   auth (what Alertmanager's `http_config` and Grafana's contact point
//!   send), or `?token=<token>` for monitors that can send nothing else
//!   (SkyWalking, Graylog).
//! - **Signature**: Grafana's webhook contact point "HMAC Signature"
//!   (Grafana 12): lowercase hex of HMAC-SHA256 over the body, or over
//!   `<timestamp>:<body>` when a timestamp header is configured (Unix
//!   seconds), in `X-Grafana-Alerting-Signature` unless configured
//!   otherwise. Source: Grafana's "Configure webhook notifications", HMAC
//!   signature. A `sha256=` prefix is accepted too, for scripts posting to
//!   `generic` that sign the GitHub way.

use std::time::Duration;

use axum::http::{header, HeaderMap};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::secret::Secret;

/// The header Grafana puts its signature in unless told otherwise.
pub const DEFAULT_SIGNATURE_HEADER: &str = "X-Grafana-Alerting-Signature";

/// How far a signed timestamp may be from now, by default.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);

/// What a source must present.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub token: Option<Secret>,
    pub signature: Option<Signature>,
}

/// An HMAC-SHA256 signature of each body.
#[derive(Clone, Debug)]
pub struct Signature {
    pub secret: Secret,
    /// The header holding the hex signature.
    pub header: String,
    /// The header holding the Unix time (seconds) the sender signed with
    /// the body; `None`: the body alone is signed and there is no replay
    /// window.
    pub timestamp_header: Option<String>,
    /// How far that time may be from now, either way.
    pub max_age: Duration,
}

/// Why a post was refused: the metrics label and the answer's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No token, or not this source's.
    Token,
    /// No signature, not hex, or not the body's.
    Signature,
    /// The signed timestamp is missing, unreadable or outside `max_age`.
    Timestamp,
}

impl Refusal {
    /// The `outcome` label of `fanout_ingest_bodies_total`.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Token => "unauthorized",
            Refusal::Signature => "bad_signature",
            Refusal::Timestamp => "stale_signature",
        }
    }

    /// What the sender is told.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Token => "missing or wrong credential",
            Refusal::Signature => "missing or wrong signature",
            Refusal::Timestamp => "missing, unreadable or stale signature timestamp",
        }
    }
}

impl Credentials {
    /// Check a post: its headers, the URL's `token` parameter, its body,
    /// and now (Unix seconds).
    pub fn check(
        &self,
        headers: &HeaderMap,
        url_token: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<(), Refusal> {
        self.check_token(headers, url_token)?;
        self.check_signature(headers, body, now)
    }

    /// The token alone, when one is configured: checked before the body
    /// is read.
    pub fn check_token(&self, headers: &HeaderMap, url_token: Option<&str>) -> Result<(), Refusal> {
        match &self.token {
            Some(token) if !token_presented(headers, url_token, token.expose()) => {
                Err(Refusal::Token)
            }
            _ => Ok(()),
        }
    }

    /// The signature of `body`, when one is configured.
    pub fn check_signature(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<(), Refusal> {
        match &self.signature {
            Some(signature) => signature.check(headers, body, now),
            None => Ok(()),
        }
    }
}

/// The token as a bearer, as basic auth's password, or in the URL.
fn token_presented(headers: &HeaderMap, url_token: Option<&str>, token: &str) -> bool {
    let same = |given: &str| bool::from(given.as_bytes().ct_eq(token.as_bytes()));
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            if let Some(bearer) = v.strip_prefix("Bearer ") {
                return Some(bearer.trim().to_string());
            }
            let basic = v.strip_prefix("Basic ")?;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(basic.trim())
                .ok()?;
            let text = String::from_utf8(decoded).ok()?;
            text.split_once(':')
                .map(|(_, password)| password.to_string())
        });
    from_header.as_deref().is_some_and(same) || url_token.is_some_and(same)
}

impl Signature {
    fn check(&self, headers: &HeaderMap, body: &[u8], now: i64) -> Result<(), Refusal> {
        let given = headers
            .get(self.header.as_str())
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim())
            .map(|v| v.strip_prefix("sha256=").unwrap_or(v))
            .and_then(|v| hex::decode(v).ok())
            .ok_or(Refusal::Signature)?;
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.expose().as_bytes())
            .map_err(|_| Refusal::Signature)?;
        if let Some(name) = &self.timestamp_header {
            let stamp = headers
                .get(name.as_str())
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .ok_or(Refusal::Timestamp)?;
            let at: i64 = stamp.parse().map_err(|_| Refusal::Timestamp)?;
            if now.abs_diff(at) > self.max_age.as_secs() {
                return Err(Refusal::Timestamp);
            }
            mac.update(stamp.as_bytes());
            mac.update(b":");
        }
        mac.update(body);
        mac.verify_slice(&given).map_err(|_| Refusal::Signature)
    }
}

/// The hex HMAC-SHA256 a sender would put in the signature header: of
/// `<timestamp>:<body>`, or of the body alone. For tests and for scripts'
/// authors reading this.
pub fn sign(secret: &str, timestamp: Option<&str>, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    if let Some(t) = timestamp {
        mac.update(t.as_bytes());
        mac.update(b":");
    }
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "grafana-hmac-secret-0123";
    const BODY: &[u8] = br#"{"receiver":"fanout","status":"firing","alerts":[]}"#;

    fn signed(timestamp_header: Option<&str>) -> Credentials {
        Credentials {
            token: None,
            signature: Some(Signature {
                secret: Secret::new(SECRET),
                header: DEFAULT_SIGNATURE_HEADER.to_string(),
                timestamp_header: timestamp_header.map(str::to_string),
                max_age: DEFAULT_MAX_AGE,
            }),
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    /// Known answers computed independently with
    /// `printf '%s' "$SIGNED" | openssl dgst -sha256 -hmac "$SECRET"`.
    const BODY_ONLY: &str = "8ee725e1e9f6d5f7674da3e1fc5c15588a663128ffb4b3ee606dac8abfb5965e";
    const WITH_TIME: &str = "78baed6934610572cb56b076258c2979c087064a692cb95d0a35fae1b973a6bd";
    const AT: i64 = 1_764_500_000;

    #[test]
    fn a_signature_of_the_body_alone_is_checked_against_openssls_answer() {
        assert_eq!(sign(SECRET, None, BODY), BODY_ONLY);
        let creds = signed(None);
        let check = |value: &str, body: &[u8]| {
            creds.check(
                &headers(&[(DEFAULT_SIGNATURE_HEADER, value)]),
                None,
                body,
                AT,
            )
        };
        assert_eq!(check(BODY_ONLY, BODY), Ok(()));
        assert_eq!(check(&format!("sha256={BODY_ONLY}"), BODY), Ok(()));
        assert_eq!(
            check(&BODY_ONLY.to_uppercase(), BODY),
            Ok(()),
            "hex of either case"
        );
        assert_eq!(
            check(BODY_ONLY, b"{}"),
            Err(Refusal::Signature),
            "another body"
        );
        assert_eq!(
            check(&BODY_ONLY[..62], BODY),
            Err(Refusal::Signature),
            "cut short"
        );
        assert_eq!(check("not hex", BODY), Err(Refusal::Signature));
        assert_eq!(
            creds.check(&HeaderMap::new(), None, BODY, AT),
            Err(Refusal::Signature),
            "no header"
        );
        let other = Credentials {
            signature: creds.signature.clone().map(|s| Signature {
                secret: Secret::new("another-secret-entirely"),
                ..s
            }),
            ..creds.clone()
        };
        assert_eq!(
            other.check(
                &headers(&[(DEFAULT_SIGNATURE_HEADER, BODY_ONLY)]),
                None,
                BODY,
                AT
            ),
            Err(Refusal::Signature),
            "another source's secret"
        );
    }

    #[test]
    fn a_timestamped_signature_covers_the_time_and_holds_only_within_max_age() {
        const STAMP: &str = "X-Grafana-Alerting-Timestamp";
        assert_eq!(sign(SECRET, Some(&AT.to_string()), BODY), WITH_TIME);
        let creds = signed(Some(STAMP));
        let check = |signature: &str, stamp: &str, now: i64| {
            creds.check(
                &headers(&[(DEFAULT_SIGNATURE_HEADER, signature), (STAMP, stamp)]),
                None,
                BODY,
                now,
            )
        };
        let at = AT.to_string();
        assert_eq!(check(WITH_TIME, &at, AT), Ok(()));
        assert_eq!(
            check(WITH_TIME, &at, AT + 300),
            Ok(()),
            "at the window's edge"
        );
        assert_eq!(
            check(WITH_TIME, &at, AT - 300),
            Ok(()),
            "a sender's clock ahead"
        );
        assert_eq!(
            check(WITH_TIME, &at, AT + 301),
            Err(Refusal::Timestamp),
            "replayed late"
        );
        assert_eq!(
            check(WITH_TIME, &(AT + 1).to_string(), AT),
            Err(Refusal::Signature),
            "the time is part of what is signed"
        );
        assert_eq!(
            check(BODY_ONLY, &at, AT),
            Err(Refusal::Signature),
            "the body alone"
        );
        assert_eq!(check(WITH_TIME, "yesterday", AT), Err(Refusal::Timestamp));
        assert_eq!(
            creds.check(
                &headers(&[(DEFAULT_SIGNATURE_HEADER, WITH_TIME)]),
                None,
                BODY,
                AT
            ),
            Err(Refusal::Timestamp),
            "no timestamp header"
        );
    }

    #[test]
    fn a_token_is_taken_as_bearer_basic_password_or_url_parameter_and_both_must_hold() {
        const TOKEN: &str = "ingest-token-0123456789";
        let creds = Credentials {
            token: Some(Secret::new(TOKEN)),
            signature: None,
        };
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("am:{TOKEN}"));
        for (headers, url) in [
            (
                headers(&[("authorization", &format!("Bearer {TOKEN}"))]),
                None,
            ),
            (
                headers(&[("authorization", &format!("Basic {basic}"))]),
                None,
            ),
            (HeaderMap::new(), Some(TOKEN)),
        ] {
            assert_eq!(creds.check(&headers, url, BODY, AT), Ok(()));
        }
        for (headers, url) in [
            (HeaderMap::new(), None),
            (
                headers(&[("authorization", "Bearer ingest-token-012345678")]),
                None,
            ),
            (headers(&[("authorization", TOKEN)]), None),
            (HeaderMap::new(), Some("ingest-token-01234567890")),
        ] {
            assert_eq!(creds.check(&headers, url, BODY, AT), Err(Refusal::Token));
        }
        let both = Credentials {
            signature: signed(None).signature,
            ..creds
        };
        assert_eq!(
            both.check(&HeaderMap::new(), Some(TOKEN), BODY, AT),
            Err(Refusal::Signature),
            "the token alone is not enough when a signature is configured"
        );
        assert_eq!(
            both.check(
                &headers(&[(DEFAULT_SIGNATURE_HEADER, BODY_ONLY)]),
                None,
                BODY,
                AT
            ),
            Err(Refusal::Token),
            "nor the signature alone"
        );
        assert_eq!(
            both.check(
                &headers(&[(DEFAULT_SIGNATURE_HEADER, BODY_ONLY)]),
                Some(TOKEN),
                BODY,
                AT
            ),
            Ok(())
        );
    }
}
