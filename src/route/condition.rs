//! A route's `when`: a template expression over the alert, for what
//! matchers cannot say (`annotations.summary is containing("disk")`,
//! `alert.labels.env in ["prod", "staging"]`, a numeric label compared
//! as a number).
//!
//! The expression sees `alert` (as a job carries it: `title`, `message`,
//! `severity`, `status`, `labels`, `started_at`, …), `labels` (the same
//! labels), `annotations`, `source` and `fingerprint`; a name the alert
//! lacks is undefined, which is false. It is compiled at start (a syntax
//! error names the route's key), run with the templates' fuel and filters,
//! and an expression that fails on an alert does not match it (the alert
//! goes on to the later routes and, at worst, the default one) and is
//! logged.

use std::fmt;
use std::sync::Arc;

use minijinja::{Environment, UndefinedBehavior};
use serde::{Serialize, Serializer};

use crate::ingest::Incoming;

/// One compiled `when` expression.
#[derive(Clone)]
pub struct Condition {
    expression: String,
    env: Arc<Environment<'static>>,
}

const NAME: &str = "when";

impl Condition {
    /// Compile `expression`; Err: the template engine's words.
    pub fn parse(expression: &str) -> Result<Self, String> {
        let mut env = Environment::new();
        env.set_fuel(Some(crate::template::FUEL));
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        crate::template::filters::register(&mut env, chrono_tz::UTC);
        // Checked alone first, so an error points into the expression,
        // not into the wrapper below.
        env.compile_expression(expression)
            .map_err(|e| e.detail().unwrap_or("not an expression").to_string())?;
        env.add_template_owned(NAME, format!("{{% if ({expression}) %}}1{{% endif %}}"))
            .map_err(|e| e.to_string())?;
        let condition = Self {
            expression: expression.to_string(),
            env: Arc::new(env),
        };
        // A filter, test or function the engine lacks is only found when
        // it runs: run it once on an empty alert, so a typo stops the start.
        let empty = Incoming::new(
            crate::ingest::alert(String::new(), String::new(), crate::job::Status::Firing),
            String::new(),
        );
        if let Err(e) = condition.evaluate("", &empty) {
            use minijinja::ErrorKind::{
                UnknownFilter, UnknownFunction, UnknownMethod, UnknownTest,
            };
            if matches!(
                e.kind(),
                UnknownFilter | UnknownFunction | UnknownMethod | UnknownTest
            ) {
                return Err(words(&e));
            }
        }
        Ok(condition)
    }

    fn evaluate(&self, source: &str, incoming: &Incoming) -> Result<bool, minijinja::Error> {
        let context = minijinja::context! {
            alert => &incoming.alert,
            labels => &incoming.alert.labels,
            annotations => &incoming.annotations,
            source => source,
            fingerprint => &incoming.fingerprint,
        };
        self.env
            .get_template(NAME)?
            .render(context)
            .map(|out| out == "1")
    }

    /// Whether the expression is true for `incoming` from `source`. Err:
    /// why it could not be evaluated (then the route does not match).
    pub fn holds(&self, source: &str, incoming: &Incoming) -> Result<bool, String> {
        self.evaluate(source, incoming).map_err(|e| words(&e))
    }
}

/// An engine error in a sentence, without the wrapper template's name.
fn words(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Condition({:?})", self.expression)
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expression)
    }
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
