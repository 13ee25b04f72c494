//! `[ingest.<source>]`: which monitors may post to `/ingest/<source>`,
//! the credential each must present, and the largest body it may send.

use std::collections::BTreeMap;

use super::SourceKind;
use crate::secret::Secret;
use crate::section::Section;

/// The shortest token a source may use.
pub const MIN_TOKEN_BYTES: usize = 16;

/// The largest body by default: a group of 1,500 Alertmanager alerts is
/// over 1 MB; this takes well over that.
pub const DEFAULT_MAX_BODY: usize = 16 << 20;

/// One monitor allowed to post.
#[derive(Clone, Debug)]
pub struct SourceSettings {
    pub kind: SourceKind,
    /// Presented as `Authorization: Bearer <token>`, as the password of
    /// basic auth, or (for monitors that can send nothing else) as the
    /// URL's `token` parameter.
    pub token: Secret,
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
            s.known(&["token", "max_body"]);
            s.finish();
            ok = false;
            continue;
        };
        let token = s.secret("token");
        match &token {
            Some(t) => s.key_length("token", t, MIN_TOKEN_BYTES),
            None => {
                s.error(
                    "token",
                    "is required: every post must present it",
                    Some("a random string, e.g. `openssl rand -hex 24`, as token = \"${INGEST_TOKEN}\""),
                );
                ok = false;
            }
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
        if let Some(token) = token.filter(|t| t.expose().len() >= MIN_TOKEN_BYTES) {
            sources.insert(
                name,
                SourceSettings {
                    kind,
                    token,
                    max_body,
                    mapping: mapping.flatten(),
                },
            );
        }
    }
    ok.then_some(sources)
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
