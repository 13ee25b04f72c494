//! One Alertmanager-style matcher: `name=value`, `name!=value`,
//! `name=~regex`, `name!~regex`.

use std::fmt;

use regex::Regex;
use serde::{Serialize, Serializer};

use crate::ingest::Incoming;

#[derive(Clone, Debug)]
pub struct Matcher {
    pub name: String,
    op: Op,
    value: String,
    /// The value anchored, for `=~` and `!~`.
    regex: Option<Regex>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl Op {
    fn text(self) -> &'static str {
        match self {
            Op::Equal => "=",
            Op::NotEqual => "!=",
            Op::Regex => "=~",
            Op::NotRegex => "!~",
        }
    }
}

impl Matcher {
    /// Read `text` (`team=payments`, `severity=~"critical|error"`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let at = text
            .find(['=', '!'])
            .ok_or_else(|| format!("{text:?} is not a matcher: write name=value, name!=value, name=~regex or name!~regex"))?;
        let name = text[..at].trim();
        let rest = &text[at..];
        let (op, value) = if let Some(v) = rest.strip_prefix("=~") {
            (Op::Regex, v)
        } else if let Some(v) = rest.strip_prefix("!~") {
            (Op::NotRegex, v)
        } else if let Some(v) = rest.strip_prefix("!=") {
            (Op::NotEqual, v)
        } else if let Some(v) = rest.strip_prefix('=') {
            (Op::Equal, v)
        } else {
            return Err(format!("{text:?}: `!` must be followed by `=` or `~`"));
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "{text:?}: {name:?} is not a label name (letters, digits and `_`)"
            ));
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value)
            .to_string();
        let regex = match op {
            Op::Regex | Op::NotRegex => Some(
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| format!("{text:?}: not a regex: {e}"))?,
            ),
            _ => None,
        };
        Ok(Self {
            name: name.to_string(),
            op,
            value,
            regex,
        })
    }

    /// What the alert has under this matcher's name: a label, or its
    /// severity, status or title; "" when nothing (Alertmanager's rule).
    fn subject(&self, incoming: &Incoming) -> String {
        let a = &incoming.alert;
        if let Some(v) = a.labels.get(&self.name) {
            return v.clone();
        }
        match self.name.as_str() {
            "severity" => format!("{:?}", a.severity).to_lowercase(),
            "status" => a.status.name().to_string(),
            "title" => a.title.clone(),
            _ => String::new(),
        }
    }

    pub fn matches(&self, incoming: &Incoming) -> bool {
        let subject = self.subject(incoming);
        match (self.op, &self.regex) {
            (Op::Equal, _) => subject == self.value,
            (Op::NotEqual, _) => subject != self.value,
            (Op::Regex, Some(re)) => re.is_match(&subject),
            (Op::NotRegex, Some(re)) => !re.is_match(&subject),
            _ => false,
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.text(), self.value)
    }
}

impl Serialize for Matcher {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
