//! `[ingest.<source>]`: which monitors may post to `/ingest/<source>`,
//! the credential each must present, and the largest body it may send.

use std::collections::BTreeMap;

use super::auth::{Credentials, Signature, DEFAULT_MAX_AGE, DEFAULT_SIGNATURE_HEADER};
use super::SourceKind;
use crate::section::Section;

/// The shortest token or HMAC secret a source may use.
pub const MIN_TOKEN_BYTES: usize = 16;

/// Every key `[ingest.<source>]` takes (`generic` adds its mapping's).
const KEYS: &[&str] = &[
    "token",
    "hmac_secret",
    "hmac_header",
    "hmac_timestamp_header",
    "hmac_max_age",
    "max_body",
];

/// The largest body by default: a group of 1,500 Alertmanager alerts is
/// over 1 MB; this takes well over that.
pub const DEFAULT_MAX_BODY: usize = 16 << 20;

/// One monitor allowed to post.
#[derive(Clone, Debug)]
pub struct SourceSettings {
    pub kind: SourceKind,
    /// What each post must present: a token, a signature, or both.
    pub credentials: Credentials,
    /// Bytes; a larger body is answered 413.
    pub max_body: usize,
    /// `generic` only: how its JSON maps to alerts.
    pub mapping: Option<super::generic::Mapping>,
}

/// Every configured source, by name.
pub type IngestConfig = BTreeMap<String, SourceSettings>;

/// Read `[ingest]`; `broker`: whether `[broker]` is set (jobs taken from a
/// monitor are made durable there).
pub fn read_ingest(section: &Section, broker: bool) -> Option<IngestConfig> {
    let mut ok = true;
    let mut sources = BTreeMap::new();
    for name in section.keys() {
        let Some(s) = section.table(&name) else {
            ok = false;
            continue;
        };
        let Some(kind) = SourceKind::named(&name) else {
            let known: Vec<&str> = SourceKind::ALL.iter().map(|k| k.name()).collect();
            section.error(
                &name,
                format!("{name:?} is not a source fanout reads"),
                Some(&format!("one of: {}", known.join(", "))),
            );
            s.known(KEYS);
            s.finish();
            ok = false;
            continue;
        };
        let credentials = read_credentials(&s);
        if credentials.is_none() {
            ok = false;
        }
        let max_body = s
            .integer("max_body", 1024, 1 << 30)
            .map_or(DEFAULT_MAX_BODY, |n| n as usize);
        let mapping = (kind == SourceKind::Generic).then(|| read_mapping(&s));
        if mapping.as_ref().is_some_and(Option::is_none) {
            ok = false;
        }
        if !broker {
            s.error(
                "token",
                "taking alerts from a monitor needs [broker]: each job is made durable there before the answer",
                Some("add a [broker] section"),
            );
            ok = false;
        }
        s.finish();
        if let Some(credentials) = credentials {
            sources.insert(
                name,
                SourceSettings {
                    kind,
                    credentials,
                    max_body,
                    mapping: mapping.flatten(),
                },
            );
        }
    }
    ok.then_some(sources)
}

/// `token` and the `hmac_*` keys: at least one of `token` and
/// `hmac_secret`, each at least [`MIN_TOKEN_BYTES`] long.
fn read_credentials(s: &Section) -> Option<Credentials> {
    let mut ok = true;
    let mut long_enough = |key: &str| {
        let secret = s.secret(key)?;
        if secret.expose().len() < MIN_TOKEN_BYTES {
            s.key_length(key, &secret, MIN_TOKEN_BYTES);
            ok = false;
        }
        Some(secret)
    };
    let token = long_enough("token");
    let secret = long_enough("hmac_secret");
    let header_name = |key: &str| {
        let name = s.string(key)?;
        match axum::http::HeaderName::from_bytes(name.as_bytes()) {
            Ok(_) => Some(name),
            Err(_) => {
                s.error(key, format!("{name:?} is not an HTTP header name"), None);
                None
            }
        }
    };
    let header = header_name("hmac_header");
    let timestamp_header = header_name("hmac_timestamp_header");
    let max_age = s.span("hmac_max_age");
    if secret.is_none() {
        for key in ["hmac_header", "hmac_timestamp_header", "hmac_max_age"] {
            if s.has(key) {
                s.error(key, "has no effect without hmac_secret", None);
                ok = false;
            }
        }
    }
    // A key that was given but did not read has been reported already.
    ok &= header.is_some() || !s.has("hmac_header");
    ok &= timestamp_header.is_some() || !s.has("hmac_timestamp_header");
    ok &= max_age.is_some() || !s.has("hmac_max_age");
    if s.has("hmac_max_age") && !s.has("hmac_timestamp_header") && secret.is_some() {
        s.error(
            "hmac_max_age",
            "has no effect without hmac_timestamp_header: a signature of the body alone carries no time",
            None,
        );
        ok = false;
    }
    if token.is_none() && secret.is_none() {
        if !s.has("token") && !s.has("hmac_secret") {
            s.error(
                "token",
                "is required (or hmac_secret): every post must present a credential",
                Some(
                    "a random string, e.g. `openssl rand -hex 24`, as token = \"${INGEST_TOKEN}\"",
                ),
            );
        }
        ok = false;
    }
    let signature = secret.map(|secret| Signature {
        secret,
        header: header.unwrap_or_else(|| DEFAULT_SIGNATURE_HEADER.to_string()),
        timestamp_header,
        max_age: max_age.map_or(DEFAULT_MAX_AGE, |m| m.as_duration()),
    });
    ok.then_some(Credentials { token, signature })
}

/// `[ingest.generic]`'s templates, each compiled now so a typo stops the
/// start naming its key.
fn read_mapping(s: &Section) -> Option<super::generic::Mapping> {
    let mut ok = true;
    let mut template = |key: &str| {
        let source = s.string(key)?;
        if let Err(e) = minijinja::Environment::new().template_from_str(&source) {
            s.error(key, format!("is not a template: {e}"), None);
            ok = false;
        }
        Some(source)
    };
    let mapping = super::generic::Mapping {
        items: s.string("items"),
        title: template("title"),
        message: template("message"),
        severity: template("severity"),
        status: template("status"),
        group_key: template("group_key"),
        started_at: template("started_at"),
        source_url: template("source_url"),
        labels: s.string_map("labels").unwrap_or_default(),
    };
    if let Some(pointer) = &mapping.items {
        if !pointer.is_empty() && !pointer.starts_with('/') {
            s.error(
                "items",
                "is a JSON pointer: it starts with `/` (e.g. \"/data/alerts\")",
                None,
            );
            ok = false;
        }
    }
    for (name, source) in &mapping.labels {
        if let Err(e) = minijinja::Environment::new().template_from_str(source) {
            s.error(
                &format!("labels.{name}"),
                format!("is not a template: {e}"),
                None,
            );
            ok = false;
        }
    }
    ok.then_some(mapping)
}
