//! Celery protocol v2: a job enqueued the way a Python engine already does
//! it, `app.send_task("fanout.notify", kwargs={"job": {...}})`, decodes to
//! the same [`Job`] as a native message.
//!
//! The message's headers name the task and carry `eta` (from `countdown`
//! or `eta`) and `expires`; the body is `[args, kwargs, embed]` as JSON.
//! Only JSON is accepted: a pickled body is code, not data.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::decode::{typed, DecodeError, MAX_MESSAGE_BYTES};
use super::Job;

/// The task name fanout answers to.
pub const TASK: &str = "fanout.notify";

/// A decoded Celery message: the job and what Celery said about timing.
#[derive(Clone, Debug)]
pub struct CeleryJob {
    pub job: Job,
    pub task_id: String,
    /// Do not run before this (`countdown`/`eta`).
    pub eta: Option<DateTime<Utc>>,
    /// Drop, with a log line and a count, after this.
    pub expires: Option<DateTime<Utc>>,
    pub retries: u64,
}

fn field(path: &str, message: impl Into<String>) -> DecodeError {
    DecodeError::Field {
        path: path.to_string(),
        message: message.into(),
    }
}

/// Decode a Celery v2 message from its AMQP headers (as JSON), content
/// type and encoding, and body.
pub fn decode_celery(
    headers: &Map<String, Value>,
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    body: &[u8],
) -> Result<CeleryJob, DecodeError> {
    if body.len() > MAX_MESSAGE_BYTES {
        return Err(DecodeError::TooLarge { size: body.len() });
    }
    match headers.get("task").and_then(Value::as_str) {
        Some(TASK) => {}
        Some(other) => {
            return Err(field(
                "headers.task",
                format!("{other:?} is not a fanout task (expected {TASK:?})"),
            ))
        }
        None => {
            return Err(field(
                "headers.task",
                "missing: not a Celery protocol v2 message",
            ))
        }
    }
    let task_id = headers
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| field("headers.id", "missing"))?
        .to_string();
    if content_type != Some("application/json") {
        return Err(field(
            "content_type",
            format!(
                "{} is not accepted; send JSON (Celery: task_serializer = \"json\")",
                content_type.unwrap_or("(none)")
            ),
        ));
    }
    if !matches!(content_encoding, None | Some("utf-8") | Some("utf8")) {
        return Err(field(
            "content_encoding",
            format!("{:?} is not utf-8", content_encoding.unwrap_or_default()),
        ));
    }
    let eta = time_header(headers, "eta")?;
    let expires = time_header(headers, "expires")?;
    let retries = headers.get("retries").and_then(Value::as_u64).unwrap_or(0);

    let value: Value =
        serde_json::from_slice(body).map_err(|e| DecodeError::Syntax(e.to_string()))?;
    let Value::Array(mut parts) = value else {
        return Err(field("body", "expected [args, kwargs, embed]"));
    };
    if parts.len() != 3 {
        return Err(field("body", "expected [args, kwargs, embed]"));
    }
    let kwargs = parts.swap_remove(1);
    let args = parts.swap_remove(0);
    if args.as_array().is_some_and(|a| !a.is_empty()) {
        return Err(field(
            "args",
            "pass the job as the keyword argument `job`, not positionally",
        ));
    }
    let Value::Object(mut kwargs) = kwargs else {
        return Err(field("kwargs", "expected an object"));
    };
    let job = kwargs
        .remove("job")
        .ok_or_else(|| field("kwargs.job", "missing"))?;
    if let Some(extra) = kwargs.keys().next() {
        return Err(field(
            &format!("kwargs.{extra}"),
            "unknown keyword argument",
        ));
    }
    let job: Job = typed(job).map_err(|e| match e {
        DecodeError::Field { path, message } => field(&format!("kwargs.job.{path}"), message),
        other => other,
    })?;
    Ok(CeleryJob {
        job,
        task_id,
        eta,
        expires,
        retries,
    })
}

fn time_header(
    headers: &Map<String, Value>,
    name: &str,
) -> Result<Option<DateTime<Utc>>, DecodeError> {
    match headers.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|e| {
                field(
                    &format!("headers.{name}"),
                    format!("{s:?} is not an ISO 8601 time ({e})"),
                )
            }),
        Some(_) => Err(field(
            &format!("headers.{name}"),
            "expected an ISO 8601 string",
        )),
    }
}
