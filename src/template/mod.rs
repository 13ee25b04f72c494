//! Templates: the words of every notification, in Jinja syntax (minijinja).
//!
//! Each channel ships defaults under `templates/<channel>/` (embedded in the
//! binary, so `fanout send` works from anywhere); a destination may override
//! any of them with `template = "DIR"`. Rendering is bounded twice: fuel
//! caps the instructions a template may run (no endless loops), and a
//! capped writer caps what it may write (no megabyte subjects). A template
//! error is permanent and names the template and line.

pub mod context;
pub mod filters;
pub mod fit;

pub use context::Context;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::Path;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

/// Instructions one render may run; real templates use a few thousand.
pub const FUEL: u64 = 2_000_000;
/// Bytes one render may write: room for a template that writes the
/// whole alert with its payload (the webhook's and PrometheusAlert's
/// defaults do), escaped, for any job within the size limit, so an alert
/// storm is never lost to the cap; a runaway loop still stops here.
pub const MAX_OUTPUT: usize = 4 * crate::job::MAX_MESSAGE_BYTES;

/// A channel's default template: its name (`email/subject.j2`, the path
/// under `templates/`) and its source, embedded at build time. Each
/// channel registers its own ([`crate::channels::ChannelSpec::TEMPLATES`]).
#[derive(Clone, Copy, Debug)]
pub struct DefaultTemplate {
    pub name: &'static str,
    pub source: &'static str,
}

/// A template failed: permanent, and says where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct TemplateError {
    pub template: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "template {}", self.template)?;
        if let Some(line) = self.line {
            write!(f, " line {line}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl TemplateError {
    fn from_minijinja(template: &str, err: &minijinja::Error, wrote_too_much: bool) -> Self {
        let message = if wrote_too_much {
            format!("output is larger than {MAX_OUTPUT} bytes")
        } else if err.kind() == minijinja::ErrorKind::OutOfFuel {
            "ran too long (endless loop?) and was stopped".to_string()
        } else {
            // The detail without minijinja's own "(in name:line)" suffix.
            let detail = err.detail().map(str::to_string);
            match detail {
                Some(d) => format!("{}: {d}", err.kind()),
                None => err.kind().to_string(),
            }
        };
        Self {
            template: err.name().unwrap_or(template).to_string(),
            line: err.line(),
            message,
        }
    }
}

/// All templates of all destinations, compiled once at start.
pub struct Templates {
    env: Environment<'static>,
    /// The zone of every `*_local` time and of `datetimeformat`'s default.
    timezone: chrono_tz::Tz,
    /// (destination, default name) → the name of its override.
    overrides: HashMap<(String, String), String>,
}

impl Templates {
    /// No templates yet (add the channels' defaults with
    /// [`Templates::add_defaults`]). `tz` is the time zone `datetimeformat`
    /// uses when a template names none.
    pub fn new(tz: chrono_tz::Tz) -> Self {
        let mut env = Environment::new();
        env.set_fuel(Some(FUEL));
        env.set_recursion_limit(64);
        // Lenient: a missing field prints nothing. A page with a blank is
        // better than a page lost to a permanent template error.
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        env.set_auto_escape_callback(|name| {
            if name.ends_with("html.j2") || name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        filters::register(&mut env, tz);
        Self {
            env,
            timezone: tz,
            overrides: HashMap::new(),
        }
    }

    /// The zone times are shown in (`[templates] timezone`).
    pub fn timezone(&self) -> chrono_tz::Tz {
        self.timezone
    }

    /// What `delivery`'s templates see, times in the configured zone.
    pub fn context<'a>(&self, delivery: &'a crate::delivery::Delivery) -> Context<'a> {
        Context::new(delivery, self.timezone)
    }

    /// Add a channel's default templates.
    pub fn add_defaults(&mut self, defaults: &[DefaultTemplate]) {
        for default in defaults {
            if let Err(e) = self.env.add_template(default.name, default.source) {
                // The defaults are part of the build and tested; still, no panic.
                tracing::error!(message = "Default template does not compile.", template = default.name, error = %e);
            }
        }
    }

    /// Add a destination's overrides from `dir`, checking each compiles.
    /// `channel` names the destination's channel and `known` its default
    /// templates (`email/subject.j2`, …), which the files must match.
    pub fn add_overrides(
        &mut self,
        destination: &str,
        channel: &str,
        known: &[DefaultTemplate],
        dir: &Path,
    ) -> Result<(), String> {
        for (default_name, source, file) in read_override_dir(channel, known, dir)? {
            let name = file.display().to_string();
            self.env
                .add_template_owned(name.clone(), source)
                .map_err(|e| TemplateError::from_minijinja(&name, &e, false).to_string())?;
            self.overrides
                .insert((destination.to_string(), default_name), name);
        }
        Ok(())
    }

    /// Render template `name` (a default's name, e.g. `email/subject.j2`)
    /// for `destination`, using its override when it has one.
    pub fn render<C: Serialize>(
        &self,
        destination: &str,
        name: &str,
        context: &C,
    ) -> Result<String, TemplateError> {
        let key = (destination.to_string(), name.to_string());
        let name = self.overrides.get(&key).map_or(name, String::as_str);
        let template = self.env.get_template(name).map_err(|e| TemplateError {
            template: name.to_string(),
            line: None,
            message: e.to_string(),
        })?;
        let mut out = CappedWriter::default();
        match template.render_captured_to(context, &mut out) {
            Ok(_) => String::from_utf8(out.buf).map_err(|_| TemplateError {
                template: name.to_string(),
                line: None,
                message: "output is not UTF-8".into(),
            }),
            Err(e) => Err(TemplateError::from_minijinja(name, &e, out.overflowed)),
        }
    }
}

impl Templates {
    /// Render template `name` for `delivery` within a vendor's limit:
    /// while `excess` (counting in `unit`) says the text is over, the
    /// alert's free text is cut and the template rendered again
    /// ([`fit`]). What was cut is logged; what is still over is in
    /// [`fit::Fitted::over`], for the channel's last resort.
    pub fn render_fitted(
        &self,
        destination: &str,
        name: &str,
        delivery: &crate::delivery::Delivery,
        unit: fit::Unit,
        excess: impl Fn(&str) -> usize,
    ) -> Result<fit::Fitted, TemplateError> {
        let fitted = fit::fit(
            &delivery.job.alert,
            unit,
            |alert| {
                let context = Context::with_alert(delivery, alert, self.timezone);
                self.render(destination, name, &context)
            },
            excess,
        )?;
        if !fitted.cut.is_empty() || fitted.over > 0 {
            tracing::info!(
                message = "Cut the alert's free text to fit the vendor's limit.",
                job = %delivery.job.id,
                destination,
                template = name,
                cut = %fitted.cut.join(", "),
                still_over = fitted.over
            );
        }
        Ok(fitted)
    }

    /// Render a one-line template given in a job (a suppression key),
    /// bounded like every other template.
    pub fn render_inline<C: Serialize>(
        &self,
        name: &str,
        source: &str,
        context: &C,
    ) -> Result<String, TemplateError> {
        let template = self
            .env
            .template_from_named_str(name, source)
            .map_err(|e| TemplateError::from_minijinja(name, &e, false))?;
        let mut out = CappedWriter::default();
        match template.render_captured_to(context, &mut out) {
            Ok(_) => Ok(String::from_utf8_lossy(&out.buf).into_owned()),
            Err(e) => Err(TemplateError::from_minijinja(name, &e, out.overflowed)),
        }
    }
}

/// Read the override files in `dir`: each must be one of `channel`'s
/// template names (`known`: `email/subject.j2`, …, matched by file name);
/// anything else is a typo to report.
pub fn read_override_dir(
    channel: &str,
    known: &[DefaultTemplate],
    dir: &Path,
) -> Result<Vec<(String, String, std::path::PathBuf)>, String> {
    let known: Vec<&str> = known.iter().map(|t| t.name).collect();
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(default_name) = known
            .iter()
            .find(|n| n.rsplit('/').next() == Some(file_name.as_str()))
        else {
            return Err(format!(
                "{file_name} is not a template of channel {channel} (expected any of: {})",
                known
                    .iter()
                    .filter_map(|n| n.rsplit('/').next())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        let path = entry.path();
        let source = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        found.push((default_name.to_string(), source, path));
    }
    Ok(found)
}

/// Collects output and refuses to grow past [`MAX_OUTPUT`].
#[derive(Default)]
struct CappedWriter {
    buf: Vec<u8>,
    overflowed: bool,
}

impl io::Write for CappedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > MAX_OUTPUT {
            self.overflowed = true;
            return Err(io::Error::other("template output too large"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render_source(source: &str) -> Result<String, TemplateError> {
        let mut t = Templates::new(chrono_tz::UTC);
        t.env
            .add_template_owned("test.j2".to_string(), source.to_string())
            .unwrap();
        t.render("d", "test.j2", &json!({"alert": {"title": "x"}}))
    }

    #[test]
    fn endless_loops_run_out_of_fuel() {
        let err = render_source(
            "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}",
        )
        .unwrap_err();
        assert!(err.message.contains("ran too long"), "{err}");
    }

    #[test]
    fn huge_output_is_cut_off() {
        let err =
            render_source("{% for a in range(9000) %}{{ 'x' * 1000 }}{% endfor %}").unwrap_err();
        assert!(err.message.contains("larger than"), "{err}");
    }

    #[test]
    fn errors_name_template_and_line() {
        let err = render_source("line one\n{{ alert.title | nosuchfilter }}").unwrap_err();
        assert_eq!(err.template, "test.j2");
        assert_eq!(err.line, Some(2));
        assert!(
            err.to_string().starts_with("template test.j2 line 2:"),
            "{err}"
        );
    }

    #[test]
    fn html_templates_escape_and_text_ones_do_not() {
        let mut t = Templates::new(chrono_tz::UTC);
        t.env
            .add_template("a.html.j2", "{{ v }}")
            .and_then(|_| t.env.add_template("a.txt.j2", "{{ v }}"))
            .unwrap();
        let ctx = json!({"v": "<b>&"});
        assert_eq!(t.render("d", "a.html.j2", &ctx).unwrap(), "&lt;b&gt;&amp;");
        assert_eq!(t.render("d", "a.txt.j2", &ctx).unwrap(), "<b>&");
    }
}
