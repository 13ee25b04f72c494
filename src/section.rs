//! Reading a TOML table key by key while collecting every mistake.
//!
//! serde stops at the first bad field; an operator fixing a config wants
//! them all at once. A [`Section`] hands out typed values, records what is
//! wrong under the key's full path (`destinations.ops-mail.smtp_url`), and
//! at [`Section::finish`] names every key it was never asked for.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt;
use std::rc::Rc;

use toml::Value;
use url::Url;

use crate::net::redact_userinfo;
use crate::secret::Secret;
use crate::span::Span;

/// One bad key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// Every bad key of one config file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(
            f,
            "config has {n} problem{}:",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

pub(crate) type Errors = Rc<RefCell<Vec<ConfigError>>>;

/// Looks up `${NAME}`; a seam so tests need not touch the process env.
pub type EnvLookup = Rc<dyn Fn(&str) -> Option<String>>;

/// A view of one TOML table under a dotted path.
pub struct Section {
    path: String,
    table: toml::Table,
    used: RefCell<BTreeSet<String>>,
    errors: Errors,
    env: EnvLookup,
}

/// Values that stand for "nothing" when a tool writes an unset variable.
const PLACEHOLDERS: &[&str] = &["", "null", "none", "nil", "undefined", "<nil>", "<none>"];

impl Section {
    pub fn root(table: toml::Table, errors: Errors, env: EnvLookup) -> Self {
        Self {
            path: String::new(),
            table,
            used: RefCell::default(),
            errors,
            env,
        }
    }

    /// The full path of a key in this section.
    pub fn key(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub fn error(&self, key: &str, message: impl Into<String>, hint: Option<&str>) {
        self.errors.borrow_mut().push(ConfigError {
            key: self.key(key),
            message: message.into(),
            hint: hint.map(str::to_string),
        });
    }

    pub fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    /// The keys present, for sections whose keys are names (`destinations`).
    pub fn keys(&self) -> Vec<String> {
        self.table.keys().cloned().collect()
    }

    fn raw(&self, key: &str) -> Option<&Value> {
        self.used.borrow_mut().insert(key.to_string());
        self.table.get(key)
    }

    fn type_error(&self, key: &str, want: &str, got: &Value) {
        self.error(
            key,
            format!("expected {want}, found {}", got.type_str()),
            None,
        );
    }

    pub fn table(&self, key: &str) -> Option<Section> {
        match self.raw(key)? {
            Value::Table(t) => Some(Section {
                path: self.key(key),
                table: t.clone(),
                used: RefCell::default(),
                errors: self.errors.clone(),
                env: self.env.clone(),
            }),
            other => {
                self.type_error(key, "a table", other);
                None
            }
        }
    }

    /// An array of tables (`[[routes]]`), each a section under
    /// `key[i]`, in order.
    pub fn tables(&self, key: &str) -> Vec<Section> {
        match self.raw(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::Table(t) => out.push(Section {
                            path: format!("{}[{i}]", self.key(key)),
                            table: t.clone(),
                            used: RefCell::default(),
                            errors: self.errors.clone(),
                            env: self.env.clone(),
                        }),
                        other => self.type_error(&format!("{key}[{i}]"), "a table", other),
                    }
                }
                out
            }
            Some(other) => {
                self.type_error(key, "an array of tables ([[key]])", other);
                Vec::new()
            }
        }
    }

    /// The value of `key` as JSON, for parts of a config that share the
    /// job contract's shapes (a route's targets, a policy's steps).
    pub fn json(&self, key: &str) -> Option<serde_json::Value> {
        let value = self.raw(key)?;
        serde_json::to_value(value)
            .map_err(|e| self.error(key, format!("cannot be read: {e}"), None))
            .ok()
    }

    /// A string with `${NAME}` expanded from the environment.
    pub fn string(&self, key: &str) -> Option<String> {
        match self.raw(key)? {
            Value::String(s) => self.expand(key, s),
            other => {
                self.type_error(key, "a string", other);
                None
            }
        }
    }

    pub fn required_string(&self, key: &str, hint: &str) -> Option<String> {
        if !self.has(key) {
            self.error(key, "is required", Some(hint));
            self.raw(key);
            return None;
        }
        self.string(key)
    }

    pub fn secret(&self, key: &str) -> Option<Secret> {
        self.string(key).map(Secret::new)
    }

    /// Report `key` when its secret is shorter than `min` bytes (a signing
    /// key: HMAC-SHA256 wants 32). The length is named, never the value.
    pub fn key_length(&self, key: &str, secret: &Secret, min: usize) {
        let len = secret.expose().len();
        if len < min {
            self.error(
                key,
                format!("is {len} bytes; at least {min} are required"),
                Some("generate one with `openssl rand -hex 32`"),
            );
        }
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        match self.raw(key)? {
            Value::Boolean(b) => Some(*b),
            other => {
                self.type_error(key, "true or false", other);
                None
            }
        }
    }

    pub fn integer(&self, key: &str, min: i64, max: i64) -> Option<i64> {
        match self.raw(key)? {
            Value::Integer(n) if (min..=max).contains(n) => Some(*n),
            Value::Integer(n) => {
                self.error(key, format!("{n} is out of range {min}..={max}"), None);
                None
            }
            other => {
                self.type_error(key, "an integer", other);
                None
            }
        }
    }

    pub fn span(&self, key: &str) -> Option<Span> {
        let text = self.string(key)?;
        match Span::parse(&text) {
            Ok(span) => Some(span),
            Err(message) => {
                self.error(key, message, None);
                None
            }
        }
    }

    pub fn string_list(&self, key: &str) -> Option<Vec<String>> {
        match self.raw(key)? {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let item_key = format!("{key}[{i}]");
                    match item {
                        Value::String(s) => out.extend(self.expand(&item_key, s)),
                        other => self.type_error(&item_key, "a string", other),
                    }
                }
                Some(out)
            }
            other => {
                self.type_error(key, "a list of strings", other);
                None
            }
        }
    }

    /// A table of string values (`headers = { X-Team = "ops" }`), in order.
    pub fn string_map(&self, key: &str) -> Option<Vec<(String, String)>> {
        match self.raw(key)? {
            Value::Table(t) => {
                let mut out = Vec::with_capacity(t.len());
                for (name, value) in t {
                    let item_key = format!("{key}.{name}");
                    match value {
                        Value::String(s) => {
                            out.extend(self.expand(&item_key, s).map(|v| (name.clone(), v)))
                        }
                        other => self.type_error(&item_key, "a string", other),
                    }
                }
                Some(out)
            }
            other => {
                self.type_error(key, "a table of strings", other);
                None
            }
        }
    }

    /// A URL that must be real: not empty, not `"null"`/`"None"`, with a
    /// scheme from `schemes` and a host. These are the values that, in the
    /// field, became a 500 or an agent restarting hundreds of times.
    pub fn url(&self, key: &str, schemes: &[&str]) -> Option<Url> {
        let text = self.string(key)?;
        check_url(&text, schemes)
            .map_err(|(m, h)| self.error(key, m, h))
            .ok()
    }

    /// Report every key nobody asked for, with a suggestion when one is close.
    pub fn finish(&self) {
        let used = self.used.borrow();
        for key in self.table.keys() {
            if used.contains(key) {
                continue;
            }
            let suggestion = used
                .iter()
                .filter(|known| strsim::damerau_levenshtein(known, key) <= 2)
                .min_by_key(|known| strsim::damerau_levenshtein(known, key))
                .map(|known| format!("did you mean `{known}`?"));
            self.error(key, "unknown key", suggestion.as_deref());
        }
    }

    /// Mark keys as known without reading them (e.g. read by another part).
    pub fn known(&self, keys: &[&str]) {
        let mut used = self.used.borrow_mut();
        for k in keys {
            used.insert((*k).to_string());
        }
    }

    fn expand(&self, key: &str, text: &str) -> Option<String> {
        match expand_env(text, &*self.env) {
            Ok(s) => Some(s),
            Err(message) => {
                self.error(
                    key,
                    message,
                    Some("export it before starting fanout, or write the value in the file"),
                );
                None
            }
        }
    }
}

/// Expand `${NAME}`; `$${` writes a literal `${`. An unset or empty variable
/// is an error: it must never quietly become an empty string.
pub(crate) fn expand_env(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let Some(end) = after.find('}') else {
                return Err("`${` without a closing `}`".into());
            };
            let name = &after[..end];
            let valid = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                return Err(format!("`${{{name}}}` is not a valid variable name"));
            }
            match env(name) {
                Some(v) if !v.is_empty() => out.push_str(&v),
                Some(_) => return Err(format!("environment variable {name} is set but empty")),
                None => return Err(format!("environment variable {name} is not set")),
            }
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The URL rules, apart from any section, so the job and CLI can reuse them.
pub fn check_url(text: &str, schemes: &[&str]) -> Result<Url, (String, Option<&'static str>)> {
    let trimmed = text.trim();
    // Messages quote the URL without its userinfo: it may hold a password.
    let shown = redact_userinfo(trimmed);
    if PLACEHOLDERS.contains(&trimmed.to_ascii_lowercase().as_str()) {
        return Err((
            format!("is {shown:?}, not a URL"),
            Some("an unset variable in whatever wrote this file? set a real URL"),
        ));
    }
    if !trimmed.contains("://") {
        return Err((
            format!("{shown:?} has no scheme"),
            Some("write it with a scheme and host, e.g. https://host:port"),
        ));
    }
    let url = Url::parse(trimmed).map_err(|e| {
        (
            format!("{shown:?} is not a URL ({e})"),
            Some("write it with a scheme and host, e.g. https://host:port"),
        )
    })?;
    if !schemes.contains(&url.scheme()) {
        return Err((
            format!(
                "scheme `{}` is not one of {}",
                url.scheme(),
                schemes.join(", ")
            ),
            None,
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err((format!("{shown:?} has no host"), None));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_redacted_before_quoting() {
        let (message, _) = check_url("amqp://u:topsecret@bad host", &["amqp"]).unwrap_err();
        assert!(!message.contains("topsecret"), "{message}");
    }

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("mail.example.com".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_variables_and_escapes() {
        assert_eq!(
            expand_env("smtp://${HOST}:25", &env).unwrap(),
            "smtp://mail.example.com:25"
        );
        assert_eq!(expand_env("a $${HOST} $5", &env).unwrap(), "a ${HOST} $5");
    }

    #[test]
    fn unset_or_empty_variables_are_errors() {
        assert!(expand_env("${MISSING}", &env)
            .unwrap_err()
            .contains("MISSING is not set"));
        assert!(expand_env("${EMPTY}", &env)
            .unwrap_err()
            .contains("set but empty"));
        assert!(expand_env("${1X}", &env).is_err());
        assert!(expand_env("${HOST", &env).is_err());
    }

    #[test]
    fn placeholder_urls_are_refused() {
        for bad in ["", "null", "None", " NULL ", "undefined"] {
            assert!(check_url(bad, &["https"]).is_err(), "{bad:?} accepted");
        }
        assert!(check_url("localhost:3000", &["http", "https"]).is_err());
        assert!(check_url("ftp://x", &["http", "https"]).is_err());
        assert!(check_url("https://grafana.example:3000/sub", &["http", "https"]).is_ok());
    }
}
