//! Template filters that users of Grafana OnCall's templates already know.
//!
//! On-call teams port their OnCall alert templates here, so names and
//! arguments follow OnCall (`to_pretty_json`, `regex_replace`,
//! `datetimeformat`, ...). Where OnCall silently returns `None`, these
//! filters raise a template error instead, so a broken template is noticed
//! rather than sending an empty notification. Nothing here panics or
//! allocates without bound on user input: templates and payloads are
//! untrusted.

use std::fmt::Write as _;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind};
use regex::{Regex, RegexBuilder};

use crate::clock::instant;

/// OnCall's default `datetimeformat` format, kept so ported templates match.
const DEFAULT_DATETIME_FORMAT: &str = "%H:%M / %d-%m-%Y";

/// Caps compiled-program and lazy-DFA memory so a hostile pattern cannot
/// exhaust the worker.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Longest user input echoed back in an error message.
const MAX_QUOTED_CHARS: usize = 120;

/// Adds the OnCall-compatible filters; `default_tz` is used by
/// `datetimeformat` when the template gives no `tz`.
pub fn register(env: &mut Environment<'_>, default_tz: Tz) {
    env.add_filter("to_pretty_json", to_pretty_json);
    env.add_filter("regex_replace", regex_replace);
    env.add_filter("regex_search", regex_search);
    env.add_filter("regex_match", regex_match);
    env.add_filter("b64decode", b64decode);
    env.add_filter(
        "datetimeformat",
        move |value: &Value, format: Option<String>, tz: Option<String>, kwargs: Kwargs| {
            let (format, tz) = datetime_args(format, tz, kwargs)?;
            let tz = match tz {
                Some(name) => parse_tz("datetimeformat", &name)?,
                None => default_tz,
            };
            format_instant("datetimeformat", value, &format, tz)
        },
    );
    env.add_filter(
        "datetimeformat_as_timezone",
        |value: &Value, format: Option<String>, tz: Option<String>, kwargs: Kwargs| {
            const NAME: &str = "datetimeformat_as_timezone";
            let (format, tz) = datetime_args(format, tz, kwargs)?;
            let name = tz.ok_or_else(|| invalid(format!("{NAME}: the tz argument is required")))?;
            let tz = parse_tz(NAME, &name)?;
            format_instant(NAME, value, &format, tz)
        },
    );
    env.add_filter("iso8601_to_time", iso8601_to_time);
    env.add_filter("truncate", truncate);
    env.add_filter("mrkdwn", mrkdwn);
}

/// Jinja's `truncate(length=255, killwords=false, end="…")`, counting
/// characters: chat vendors cap their fields in characters, and a cut
/// must say so. `leeway` is accepted and ignored (Jinja's default is 5).
fn truncate(
    value: &str,
    length: Option<usize>,
    killwords: Option<bool>,
    end: Option<String>,
) -> String {
    let length = length.unwrap_or(255);
    let end = end.unwrap_or_else(|| "…".to_string());
    if value.chars().count() <= length {
        return value.to_string();
    }
    let room = length.saturating_sub(end.chars().count());
    let mut kept: String = value.chars().take(room).collect();
    if !killwords.unwrap_or(false) {
        if let Some(space) = kept.rfind(' ').filter(|i| *i > 0) {
            kept.truncate(space);
        }
    }
    kept + &end
}

/// Slack mrkdwn treats `&`, `<` and `>` as markup: user text gets them
/// escaped, so a label like `a<b` is shown and cannot forge a link.
fn mrkdwn(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn invalid(msg: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg)
}

/// Quotes user input for an error message, truncated so a huge payload
/// cannot blow up logs.
fn quote(s: &str) -> String {
    match s.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((cut, _)) => format!("{:?}...", &s[..cut]),
        None => format!("{s:?}"),
    }
}

/// JSON as Python's `json.dumps(indent=4, sort_keys=True, ensure_ascii=False)`,
/// which is what OnCall's filter emits.
fn to_pretty_json(value: &Value) -> Result<String, Error> {
    let json = serde_json::to_value(value)
        .map_err(|e| invalid(format!("to_pretty_json: cannot serialize value: {e}")))?;
    let json = sort_keys(json);
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    serde::Serialize::serialize(&json, &mut ser)
        .map_err(|e| invalid(format!("to_pretty_json: cannot serialize value: {e}")))?;
    String::from_utf8(out).map_err(|e| invalid(format!("to_pretty_json: invalid UTF-8: {e}")))
}

/// Rebuilds maps in key order so output stays sorted even if serde_json's
/// `preserve_order` feature gets enabled by another dependency.
fn sort_keys(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sort_keys).collect())
        }
        other => other,
    }
}

fn build_regex(filter: &str, pattern: &str) -> Result<Regex, Error> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            invalid(format!(
                "{filter}: invalid regular expression {}: {e}",
                quote(pattern)
            ))
        })
}

/// Python's `re.sub`: replaces every match.
fn regex_replace(value: String, pattern: String, replacement: String) -> Result<String, Error> {
    let re = build_regex("regex_replace", &pattern)?;
    let replacement = python_to_rust_replacement(&replacement);
    Ok(re.replace_all(&value, replacement.as_str()).into_owned())
}

/// Translates Python's `\1`, `\g<name>` and `\\` into the `regex` crate's
/// `${1}`, `${name}` and a literal backslash, so OnCall templates work as
/// is; `$1` / `${name}` pass through untouched. Braces keep `\1a` from
/// being read as group `1a`.
fn python_to_rust_replacement(replacement: &str) -> String {
    let mut out = String::with_capacity(replacement.len() + 8);
    let mut rest = replacement;
    while let Some(pos) = rest.find('\\') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let digits = after.bytes().take(2).take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            let _ = write!(out, "${{{}}}", &after[..digits]);
            rest = &after[digits..];
        } else if let Some(name) = after
            .strip_prefix("g<")
            .and_then(|s| s.split_once('>'))
            .map(|(name, _)| name)
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        {
            let _ = write!(out, "${{{name}}}");
            rest = &after[name.len() + 3..];
        } else if let Some(tail) = after.strip_prefix('\\') {
            out.push('\\');
            rest = tail;
        } else {
            out.push('\\');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Python's `re.search`: a match anywhere.
fn regex_search(value: String, pattern: String) -> Result<bool, Error> {
    Ok(build_regex("regex_search", &pattern)?.is_match(&value))
}

/// Python's `re.match`: a match starting at the beginning. The leftmost
/// match starts at 0 whenever any match does, so no pattern rewriting.
fn regex_match(value: String, pattern: String) -> Result<bool, Error> {
    let re = build_regex("regex_match", &pattern)?;
    Ok(re.find(&value).is_some_and(|m| m.start() == 0))
}

/// Standard alphabet with optional padding and lenient trailing bits, as
/// Python accepts; ASCII whitespace (line-wrapped base64) is ignored.
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

fn b64decode(value: String) -> Result<String, Error> {
    let compact: String = value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = B64.decode(compact.as_bytes()).map_err(|e| {
        invalid(format!(
            "b64decode: invalid base64 input {}: {e}",
            quote(&value)
        ))
    })?;
    String::from_utf8(bytes).map_err(|_| {
        invalid(format!(
            "b64decode: decoded bytes of {} are not valid UTF-8",
            quote(&value)
        ))
    })
}

/// Merges positional and keyword `format`/`tz`; keywords win, as Jinja
/// users write either.
fn datetime_args(
    format: Option<String>,
    tz: Option<String>,
    kwargs: Kwargs,
) -> Result<(String, Option<String>), Error> {
    let format = kwargs.get::<Option<String>>("format")?.or(format);
    let tz = kwargs.get::<Option<String>>("tz")?.or(tz);
    kwargs.assert_all_used()?;
    Ok((
        format.unwrap_or_else(|| DEFAULT_DATETIME_FORMAT.to_owned()),
        tz,
    ))
}

fn parse_tz(filter: &str, name: &str) -> Result<Tz, Error> {
    crate::clock::zone::parse(name).map_err(|e| {
        let hint = e.suggestion.map_or_else(
            || "expected an IANA name such as \"Asia/Shanghai\"".to_string(),
            |s| format!("did you mean {s}?"),
        );
        invalid(format!(
            "{filter}: unknown time zone {} ({hint})",
            quote(name)
        ))
    })
}

fn format_instant(filter: &str, value: &Value, format: &str, tz: Tz) -> Result<String, Error> {
    let instant = to_instant(filter, value)?;
    // chrono reports bad specifiers as `Item::Error` and then fails (or
    // panics via `to_string`) when displayed, so reject them up front.
    let items: Vec<Item<'_>> = StrftimeItems::new(format).collect();
    let bad_format = || invalid(format!("{filter}: invalid format string {}", quote(format)));
    if items.iter().any(|item| matches!(item, Item::Error)) {
        return Err(bad_format());
    }
    let mut out = String::new();
    write!(
        out,
        "{}",
        instant.with_timezone(&tz).format_with_items(items.iter())
    )
    .map_err(|_| bad_format())?;
    Ok(out)
}

/// OnCall's `iso8601_to_time`: seconds since the epoch, an integer when
/// whole so it prints and compares like one. Numbers pass through (ms
/// epochs become seconds) so it is safe on already-converted fields.
fn iso8601_to_time(value: &Value) -> Result<Value, Error> {
    let instant = to_instant("iso8601_to_time", value)?;
    let secs = instant.timestamp();
    match instant.timestamp_subsec_nanos() {
        0 => Ok(Value::from(secs)),
        nanos => Ok(Value::from(secs as f64 + f64::from(nanos) / 1e9)),
    }
}

/// Reads a Unix epoch (seconds or ms, number or numeric string) or an
/// RFC 3339 / ISO 8601 date-time.
fn to_instant(filter: &str, value: &Value) -> Result<DateTime<Utc>, Error> {
    let parsed = match value.kind() {
        ValueKind::Number => match value.as_i64().filter(|_| value.is_integer()) {
            Some(n) => instant::from_epoch_int(n),
            None => f64::try_from(value.clone())
                .ok()
                .and_then(instant::from_epoch),
        },
        ValueKind::String => value.as_str().and_then(instant::parse_text),
        kind => {
            return Err(invalid(format!(
                "{filter}: expected a Unix timestamp or an ISO 8601 date-time string, got {kind}"
            )))
        }
    };
    parsed.ok_or_else(|| {
        invalid(format!(
            "{filter}: cannot read {} as a Unix timestamp or an ISO 8601 date-time",
            quote(&value.to_string())
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(default_tz: Tz) -> Environment<'static> {
        let mut env = Environment::new();
        register(&mut env, default_tz);
        env
    }

    fn render_tz(default_tz: Tz, tmpl: &str, ctx: Value) -> Result<String, Error> {
        env(default_tz).render_str(tmpl, ctx)
    }

    fn render(tmpl: &str, ctx: Value) -> String {
        match render_tz(chrono_tz::UTC, tmpl, ctx) {
            Ok(s) => s,
            Err(e) => panic!("render of {tmpl:?} failed: {e:#}"),
        }
    }

    fn render_err(tmpl: &str, ctx: Value) -> Error {
        match render_tz(chrono_tz::UTC, tmpl, ctx) {
            Ok(s) => panic!("render of {tmpl:?} should fail, got {s:?}"),
            Err(e) => e,
        }
    }

    fn none() -> Value {
        Value::from(())
    }

    fn ctx(json: serde_json::Value) -> Value {
        Value::from_serialize(json)
    }

    fn assert_invalid(err: &Error, needle: &str) {
        assert_eq!(err.kind(), ErrorKind::InvalidOperation, "{err:#}");
        let detail = err.detail().unwrap_or_default();
        assert!(detail.contains(needle), "{detail:?} lacks {needle:?}");
    }

    #[test]
    fn to_pretty_json_sorts_keys_and_indents_four() {
        let out = render(
            "{{ v | to_pretty_json }}",
            ctx(serde_json::json!({"v": {"b": [1, {"z": 1, "a": "héllo"}], "a": null, "c": {}}})),
        );
        let expected = "{\n    \"a\": null,\n    \"b\": [\n        1,\n        {\n            \"a\": \"héllo\",\n            \"z\": 1\n        }\n    ],\n    \"c\": {}\n}";
        assert_eq!(out, expected);
    }

    #[test]
    fn tojson_builtin_is_untouched() {
        let out = render("{{ {'b': 1} | tojson }}", none());
        assert_eq!(out, "{\"b\":1}");
    }

    #[test]
    fn regex_replace_all_matches_with_python_backrefs() {
        let out = render(
            r"{{ 'host-a01 host-b02' | regex_replace('host-(\w)(\d+)', '\\2-\\1') }}",
            none(),
        );
        assert_eq!(out, "01-a 02-b");
    }

    #[test]
    fn regex_replace_rust_syntax_and_named_groups() {
        let out = render(
            r"{{ 'k=v' | regex_replace('(?P<key>\w)=(\w)', '${key}:$2 \\g<key>') }}",
            none(),
        );
        assert_eq!(out, "k:v k");
    }

    #[test]
    fn regex_replace_backref_followed_by_digit_text() {
        // `\1` then literal "0": must not become group 10.
        assert_eq!(python_to_rust_replacement(r"\1x\\n"), r"${1}x\n");
        let out = render(r"{{ 'ab' | regex_replace('(a)', '\\1_') }}", none());
        assert_eq!(out, "a_b");
    }

    #[test]
    fn regex_replace_invalid_pattern_is_error_quoting_it() {
        let err = render_err("{{ 'x' | regex_replace('(unclosed', 'y') }}", none());
        assert_invalid(&err, "\"(unclosed\"");
    }

    #[test]
    fn regex_size_limit_rejects_huge_program() {
        // Unicode `\w{200}` compiles under regex's 10 MiB default, not under 1 MiB.
        assert!(Regex::new(r"\w{200}").is_ok());
        let err = render_err(r"{{ 'x' | regex_search('\\w{200}') }}", none());
        assert_invalid(&err, "exceeds size limit");
    }

    #[test]
    fn regex_match_is_anchored_but_search_is_not() {
        let out = render(
            "{{ 'error: disk full' | regex_search('disk') }} \
             {{ 'error: disk full' | regex_match('disk') }} \
             {{ 'error: disk full' | regex_match('err') }}",
            none(),
        );
        assert_eq!(out, "True False True");
    }

    #[test]
    fn b64decode_with_and_without_padding() {
        let out = render(
            "{{ 'aGVsbG8gd29ybGQ=' | b64decode }}|{{ 'aGVsbG8gd29ybGQ' | b64decode }}|{{ '5L2g5aW9' | b64decode }}",
            none(),
        );
        assert_eq!(out, "hello world|hello world|你好");
    }

    #[test]
    fn b64decode_invalid_is_error() {
        let err = render_err("{{ 'not base64!' | b64decode }}", none());
        assert_invalid(&err, "invalid base64");
        let err = render_err("{{ '//79' | b64decode }}", none());
        assert_invalid(&err, "not valid UTF-8");
    }

    #[test]
    fn datetimeformat_ms_epoch_in_shanghai() {
        let out = render(
            "{{ ts | datetimeformat('%Y-%m-%d %H:%M:%S', 'Asia/Shanghai') }}",
            ctx(serde_json::json!({"ts": 1_700_000_000_000_i64})),
        );
        assert_eq!(out, "2023-11-15 06:13:20");
    }

    #[test]
    fn datetimeformat_seconds_epoch_and_numeric_strings() {
        let out = render(
            "{{ 1700000000 | datetimeformat('%Y-%m-%d %H:%M:%S') }}|\
             {{ '1700000000000' | datetimeformat('%H:%M:%S') }}|\
             {{ 1700000000.5 | datetimeformat('%S%.3f') }}|\
             {{ '1700000000123.0' | datetimeformat('%S%.3f', tz='UTC') }}|\
             {{ 1700000000.123 | datetimeformat('%S%.6f') }}|\
             {{ -1 | datetimeformat('%Y-%m-%d %H:%M:%S') }}",
            none(),
        );
        assert_eq!(
            out,
            "2023-11-14 22:13:20|22:13:20|20.500|20.123|20.123000|1969-12-31 23:59:59"
        );
    }

    #[test]
    fn datetimeformat_default_format_and_default_tz() {
        let out = render_tz(
            chrono_tz::Asia::Shanghai,
            "{{ 1700000000 | datetimeformat }}",
            none(),
        );
        assert_eq!(out.ok().as_deref(), Some("06:13 / 15-11-2023"));
        let out = render_tz(
            chrono_tz::Asia::Shanghai,
            "{{ 1700000000 | datetimeformat(format='%H:%M %Z') }}",
            none(),
        );
        assert_eq!(out.ok().as_deref(), Some("06:13 CST"));
    }

    #[test]
    fn datetimeformat_rfc3339_forms() {
        let out = render(
            "{{ '2026-11-23T03:00:00+08:00' | datetimeformat('%Y-%m-%d %H:%M', 'UTC') }}|\
             {{ '2026-11-23T03:00:00Z' | datetimeformat('%H:%M', 'Asia/Shanghai') }}|\
             {{ '2026-11-23T03:00:00.123456Z' | datetimeformat('%H:%M:%S%.6f') }}|\
             {{ '2026-11-23 03:00:00' | datetimeformat('%H:%M', 'Asia/Shanghai') }}|\
             {{ '2026-11-23T03:00:00+0530' | datetimeformat('%H:%M') }}",
            none(),
        );
        assert_eq!(out, "2026-11-22 19:00|11:00|03:00:00.123456|11:00|21:30");
    }

    #[test]
    fn datetimeformat_unknown_tz_is_error() {
        let err = render_err("{{ 0 | datetimeformat('%H', 'Asia/Shangai') }}", none());
        assert_invalid(&err, "unknown time zone \"Asia/Shangai\"");
    }

    #[test]
    fn datetimeformat_bad_format_is_error_not_panic() {
        for fmt in ["%Q", "%", "%Y-%m-%", "%.9"] {
            let err = render_err(&format!("{{{{ 0 | datetimeformat({fmt:?}) }}}}"), none());
            assert_invalid(&err, "invalid format string");
        }
    }

    #[test]
    fn datetimeformat_bad_value_is_error() {
        for v in [
            "'yesterday'",
            "'NaN'",
            "'inf'",
            "true",
            "none",
            "[1]",
            "1e300",
        ] {
            let err = render_err(&format!("{{{{ {v} | datetimeformat }}}}"), none());
            assert_invalid(&err, "datetimeformat:");
        }
        let err = render_err("{{ 'yesterday' | datetimeformat }}", none());
        assert_invalid(&err, "\"yesterday\"");
    }

    #[test]
    fn datetimeformat_as_timezone_requires_tz() {
        let out = render(
            "{{ 1700000000000 | datetimeformat_as_timezone('%Y-%m-%d %H:%M:%S', 'Asia/Shanghai') }}",
            none(),
        );
        assert_eq!(out, "2023-11-15 06:13:20");
        let err = render_err("{{ 0 | datetimeformat_as_timezone('%H') }}", none());
        assert_invalid(&err, "tz argument is required");
    }

    #[test]
    fn iso8601_to_time_returns_epoch_seconds() {
        let out = render(
            "{{ '2023-11-15T06:13:20+08:00' | iso8601_to_time }}|\
             {{ '2023-11-14T22:13:20.25Z' | iso8601_to_time }}|\
             {{ ('2023-11-14 22:13:20' | iso8601_to_time) + 60 }}",
            none(),
        );
        assert_eq!(out, "1700000000|1700000000.25|1700000060");
    }

    #[test]
    fn iso8601_to_time_composes_with_datetimeformat() {
        let out = render(
            "{{ '2026-11-23T03:00:00Z' | iso8601_to_time | datetimeformat('%Y-%m-%d %H:%M', 'Asia/Shanghai') }}",
            none(),
        );
        assert_eq!(out, "2026-11-23 11:00");
        let err = render_err("{{ 'soon' | iso8601_to_time }}", none());
        assert_invalid(&err, "iso8601_to_time: cannot read \"soon\"");
    }
}
