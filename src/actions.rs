//! Signed action links: acknowledge, resolve or silence a group from the
//! notification itself.
//!
//! Each notification's template context has `actions.acknowledge`,
//! `actions.resolve` and `actions.silence_1h`: URLs on fanout's HTTP server,
//! `{public_url}/actions/<action>/<group>?exp=…&sig=…`, HMAC-signed with an
//! expiry like image URLs (with a purpose of their own, so an image
//! signature is never an action's). A GET only shows a confirmation page;
//! the POST from that page acts, so mail scanners and chat link previews,
//! which follow links with GET, never acknowledge an alert. The POST sends
//! the same signal `fanout signal` sends, through the broker.

use std::time::Duration;

use chrono::{DateTime, Utc};

use url::Url;

pub use crate::delivery::ActionUrls;

use crate::broker::publisher::Publisher;
use crate::broker::{BrokerError, SIGNAL_KEY};
use crate::config::{BrokerConfig, Config};
use crate::images::signing::{Rejected, Signer};
use crate::job::{Signal, SignalKind, V1};

/// Group ids keep letters, digits and `-._~` as they are in a link's path.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The signing purpose of action links.
const PURPOSE: &str = "action";

/// What a link does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Acknowledge,
    Resolve,
    Silence1h,
}

impl Action {
    pub const ALL: [Action; 3] = [Action::Acknowledge, Action::Resolve, Action::Silence1h];

    pub fn name(self) -> &'static str {
        match self {
            Action::Acknowledge => "acknowledge",
            Action::Resolve => "resolve",
            Action::Silence1h => "silence_1h",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Words for the confirmation page's button.
    pub fn verb(self) -> &'static str {
        match self {
            Action::Acknowledge => "Acknowledge",
            Action::Resolve => "Resolve",
            Action::Silence1h => "Silence for 1 hour",
        }
    }

    /// The signal this action sends for `group_id`.
    pub fn signal(self, group_id: &str, by: &str) -> Signal {
        let (signal, until) = match self {
            Action::Acknowledge => (SignalKind::Acknowledge, None),
            Action::Resolve => (SignalKind::Resolve, None),
            Action::Silence1h => (SignalKind::Silence, Some("1h".to_string())),
        };
        Signal {
            version: V1,
            signal,
            group_id: group_id.to_string(),
            until,
            by: Some(by.to_string()),
        }
    }
}

/// Makes and checks action links.
#[derive(Clone)]
pub struct ActionLinks {
    signer: Signer,
    base: String,
    ttl: Duration,
}

impl ActionLinks {
    /// From `[actions]`; `None` when the config has none (no links, and
    /// the HTTP server answers 404 under `/actions`).
    pub fn from_config(config: &Config) -> Option<Self> {
        let actions = config.actions.as_ref()?;
        let base = config.http.public_url.as_ref()?;
        Some(Self::new(
            Signer::new(actions.signing_key.clone()),
            base,
            actions.ttl,
        ))
    }

    pub fn new(signer: Signer, public_url: &Url, ttl: Duration) -> Self {
        Self {
            signer,
            base: public_url.as_str().trim_end_matches('/').to_string(),
            ttl,
        }
    }

    fn subject(action: Action, group_id: &str) -> String {
        format!("{}/{group_id}", action.name())
    }

    /// A link for `action` on `group_id`, valid until `expires` (unix s).
    pub fn url(&self, action: Action, group_id: &str, expires: u64) -> String {
        let sig = self
            .signer
            .sign(PURPOSE, &Self::subject(action, group_id), expires);
        format!(
            "{}/actions/{}/{}?exp={expires}&sig={sig}",
            self.base,
            action.name(),
            percent_encoding::utf8_percent_encode(group_id, PATH_SEGMENT)
        )
    }

    /// All three links for a group, valid for the configured time from `now`.
    pub fn urls(&self, group_id: &str, now: DateTime<Utc>) -> ActionUrls {
        let expires = now.timestamp().max(0) as u64 + self.ttl.as_secs();
        ActionUrls {
            acknowledge: self.url(Action::Acknowledge, group_id, expires),
            resolve: self.url(Action::Resolve, group_id, expires),
            silence_1h: self.url(Action::Silence1h, group_id, expires),
        }
    }

    /// Check a link's signature and expiry.
    pub fn verify(
        &self,
        action: Action,
        group_id: &str,
        expires: u64,
        sig: &str,
        now: u64,
    ) -> Result<(), Rejected> {
        self.signer
            .verify(PURPOSE, &Self::subject(action, group_id), expires, sig, now)
    }
}

/// Publishes signals for the HTTP server ([`Publisher`]'s connection).
pub struct SignalSender {
    publisher: Publisher,
}

impl SignalSender {
    pub fn new(config: BrokerConfig) -> Self {
        Self {
            publisher: Publisher::new(config),
        }
    }

    /// Publish `signal` and wait for the broker's confirm.
    pub async fn send(&self, signal: &Signal) -> Result<(), BrokerError> {
        let body = serde_json::to_vec(signal).unwrap_or_default();
        let id = format!(
            "signal-{}-{}",
            signal.group_id,
            Utc::now().timestamp_millis()
        );
        self.publisher.publish(SIGNAL_KEY, &id, &body).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn links() -> ActionLinks {
        ActionLinks::new(
            Signer::new(Secret::new("s".repeat(32))),
            &Url::parse("https://fanout.example/base/").unwrap(),
            Duration::from_secs(3600),
        )
    }

    fn parts(url: &str) -> (String, u64, String) {
        let url = Url::parse(url).unwrap();
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        (
            url.path().to_string(),
            q["exp"].parse().unwrap(),
            q["sig"].clone(),
        )
    }

    #[test]
    fn links_verify_for_their_action_and_group_only() {
        let urls = links().urls("ag-42", DateTime::from_timestamp(1000, 0).unwrap());
        let (path, exp, sig) = parts(&urls.acknowledge);
        assert_eq!(path, "/base/actions/acknowledge/ag-42");
        assert_eq!(exp, 4600);
        let l = links();
        assert_eq!(
            l.verify(Action::Acknowledge, "ag-42", exp, &sig, 1001),
            Ok(())
        );
        let bad = Err(Rejected::BadSignature);
        assert_eq!(l.verify(Action::Resolve, "ag-42", exp, &sig, 1001), bad);
        assert_eq!(l.verify(Action::Acknowledge, "ag-43", exp, &sig, 1001), bad);
        assert_eq!(
            l.verify(Action::Acknowledge, "ag-42", exp + 1, &sig, 1001),
            bad
        );
        assert_eq!(
            l.verify(Action::Acknowledge, "ag-42", exp, &sig, 4600),
            Err(Rejected::Expired)
        );
    }

    #[test]
    fn silence_links_ask_for_an_hour() {
        let s = Action::Silence1h.signal("g", "link");
        assert_eq!(s.signal, SignalKind::Silence);
        assert_eq!(s.until.as_deref(), Some("1h"));
        assert_eq!(Action::parse("silence_1h"), Some(Action::Silence1h));
        assert_eq!(Action::parse("delete"), None);
    }
}
