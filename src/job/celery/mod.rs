//! Celery messages: a job enqueued the way a Python engine already does
//! it (`app.send_task("fanout.notify", kwargs={"job": {...}})`, or
//! `notify.delay(job)`) decodes to the same [`Job`] as a native message.
//!
//! Everything a stock Celery 5 producer can put on the wire that Celery's
//! own worker accepts is read here:
//! - protocol 2 (the task in the `task` header, the body
//!   `[args, kwargs, embed]`), protocol 1 (`task_protocol = 1`: one JSON
//!   object holding task, id, args, kwargs, eta, expires) and the hybrid
//!   of the two;
//! - the job as the keyword `job` or as the one positional argument;
//! - `eta` (from `eta=` or `countdown=`) and `expires` with an offset or
//!   without one (a naive time is UTC, as Celery's worker reads it);
//! - JSON or msgpack, compressed or not ([`wire`]);
//! - every other header and property (priority, `shadow`, `timelimit`,
//!   `ignore_result`, stamps, custom headers): read by nobody, refused by
//!   nobody.
//!
//! Refused on purpose, each with the producer setting that fixes it:
//! pickle and YAML bodies, an unknown task name, more than the job as
//! arguments. Callbacks, errbacks and chains in the body are Python work
//! fanout cannot run: the job is still delivered, and the log says that
//! the links were not run.

pub mod wire;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::decode::{fit_job, typed_job, DecodeError, MAX_MESSAGE_BYTES, MAX_READ_BYTES};
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
    /// Which Celery links the message asked for (`callbacks`, `errbacks`,
    /// `chain`, `chord`): fanout delivers the job but runs none of them.
    pub links_not_run: Vec<&'static str>,
}

fn field(path: &str, message: impl Into<String>) -> DecodeError {
    DecodeError::Field {
        path: path.to_string(),
        message: message.into(),
    }
}

/// Whether a message is Celery's rather than a native job: it names a
/// task or a compression in its headers, or is serialized in a way only
/// Celery uses.
pub fn is_celery(headers: &Map<String, Value>, content_type: Option<&str>) -> bool {
    headers.contains_key("task")
        || headers.contains_key("compression")
        || content_type.is_some_and(|c| {
            matches!(
                c,
                "application/x-msgpack" | "application/x-python-serialize" | "application/x-yaml"
            )
        })
}

/// Whether `body` is a protocol 1 message (no `task` header): one JSON
/// object with Celery's `task` and `id`, and no job `version`. Only asked
/// of a message that failed to decode as a native job.
pub fn is_protocol_1(body: &[u8]) -> bool {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    map.contains_key("task") && map.contains_key("id") && !map.contains_key("version")
}

/// Decode a Celery message from its AMQP headers (as JSON), content
/// type and encoding, and body.
pub fn decode_celery(
    headers: &Map<String, Value>,
    content_type: Option<&str>,
    // Celery's worker picks the decoder by content type alone; so does this.
    _content_encoding: Option<&str>,
    body: &[u8],
) -> Result<CeleryJob, DecodeError> {
    let compression = headers.get("compression").and_then(Value::as_str);
    let inflated = wire::decompress(compression, body)?;
    let size = inflated.len();
    if size > MAX_READ_BYTES {
        return Err(DecodeError::TooLarge { size });
    }
    let value = wire::deserialize(content_type, &inflated)?;
    let message = match headers.get("task") {
        Some(_) => protocol_2(headers, value)?,
        None => protocol_1(value)?,
    };
    let task = message.task.as_deref();
    match task {
        Some(TASK) => {}
        Some(other) => {
            return Err(field(
                message.task_path,
                format!(
                    "{other:?} is not a fanout task (expected {TASK:?}; send_task(\"{TASK}\", …))"
                ),
            ))
        }
        None => return Err(field(message.task_path, "missing: not a Celery message")),
    }
    let task_id = message
        .id
        .ok_or_else(|| field(message.id_path, "missing"))?;
    let eta = celery_time(&message.eta, message.time_path, "eta")?;
    let expires = celery_time(&message.expires, message.time_path, "expires")?;
    let (mut job, job_path) = job_argument(message.args, message.kwargs)?;
    if size > MAX_MESSAGE_BYTES {
        fit_job(&mut job, size)?;
    }
    let job: Job = typed_job(job).map_err(|e| match e {
        DecodeError::Field { path, message } => field(&format!("{job_path}.{path}"), message),
        other => other,
    })?;
    let links_not_run = ["callbacks", "errbacks", "chain", "chord"]
        .into_iter()
        .filter(|k| {
            message.embed.get(*k).is_some_and(|v| match v {
                Value::Null => false,
                Value::Array(a) => !a.is_empty(),
                Value::Object(o) => !o.is_empty(),
                _ => true,
            })
        })
        .collect();
    Ok(CeleryJob {
        job,
        task_id,
        eta,
        expires,
        retries: message.retries,
        links_not_run,
    })
}

/// What both protocols carry, wherever each keeps it.
struct Message {
    task: Option<String>,
    id: Option<String>,
    eta: Option<Value>,
    expires: Option<Value>,
    retries: u64,
    args: Value,
    kwargs: Value,
    embed: Map<String, Value>,
    task_path: &'static str,
    id_path: &'static str,
    time_path: &'static str,
}

/// Protocol 2: headers name the task and its timing; the body is
/// `[args, kwargs, embed]`, or (the hybrid) an object with `args` and
/// `kwargs`.
fn protocol_2(headers: &Map<String, Value>, body: Value) -> Result<Message, DecodeError> {
    let text = |k: &str| headers.get(k).and_then(Value::as_str).map(str::to_string);
    let (args, kwargs, embed) = match body {
        Value::Array(mut parts) if (2..=3).contains(&parts.len()) => {
            let embed = match parts.len() {
                3 => parts.pop().unwrap_or(Value::Null),
                _ => Value::Null,
            };
            let kwargs = parts.pop().unwrap_or(Value::Null);
            let args = parts.pop().unwrap_or(Value::Null);
            (args, kwargs, embed)
        }
        Value::Object(mut map) if map.contains_key("args") || map.contains_key("kwargs") => {
            let args = map.remove("args").unwrap_or(Value::Null);
            let kwargs = map.remove("kwargs").unwrap_or(Value::Null);
            (args, kwargs, Value::Object(map))
        }
        _ => return Err(field("body", "expected [args, kwargs, embed]")),
    };
    Ok(Message {
        task: text("task"),
        id: text("id"),
        eta: headers.get("eta").cloned(),
        expires: headers.get("expires").cloned(),
        retries: headers.get("retries").and_then(Value::as_u64).unwrap_or(0),
        args,
        kwargs,
        embed: match embed {
            Value::Object(map) => map,
            _ => Map::new(),
        },
        task_path: "headers.task",
        id_path: "headers.id",
        time_path: "headers",
    })
}

/// Protocol 1 (`task_protocol = 1`): everything in one body object.
fn protocol_1(body: Value) -> Result<Message, DecodeError> {
    let Value::Object(mut map) = body else {
        return Err(field(
                "headers.task",
                "missing: not a Celery message (protocol 2 names the task in its headers, protocol 1 in its body)",
            ));
    };
    let text = |v: Option<Value>| v.and_then(|v| v.as_str().map(str::to_string));
    let Some(task) = text(map.remove("task")) else {
        return Err(field(
            "headers.task",
            "missing: not a Celery message (protocol 2 names the task in its headers, protocol 1 in its body)",
        ));
    };
    let id = text(map.remove("id"));
    Ok(Message {
        task: Some(task),
        id,
        eta: map.remove("eta"),
        expires: map.remove("expires"),
        retries: map.get("retries").and_then(Value::as_u64).unwrap_or(0),
        args: map.remove("args").unwrap_or(Value::Null),
        kwargs: map.remove("kwargs").unwrap_or(Value::Null),
        embed: map,
        task_path: "body.task",
        id_path: "body.id",
        time_path: "body",
    })
}

/// The job from the task's arguments: `kwargs={"job": …}` or `args=[job]`,
/// the two ways a Python caller passes the one parameter of
/// `def notify(job)`. Anything more is what Python would refuse too.
fn job_argument(args: Value, kwargs: Value) -> Result<(Value, &'static str), DecodeError> {
    let mut args = match args {
        Value::Null => Vec::new(),
        Value::Array(a) => a,
        _ => return Err(field("args", "expected a list")),
    };
    let mut kwargs = match kwargs {
        Value::Null => Map::new(),
        Value::Object(k) => k,
        _ => return Err(field("kwargs", "expected an object")),
    };
    let keyword = kwargs.remove("job");
    if let Some(extra) = kwargs.keys().next() {
        return Err(field(
            &format!("kwargs.{extra}"),
            "unknown keyword argument (fanout.notify takes one: job)",
        ));
    }
    match (args.len(), keyword) {
        (0, Some(job)) => Ok((job, "kwargs.job")),
        (1, None) => Ok((args.remove(0), "args[0]")),
        (0, None) => Err(field(
            "kwargs.job",
            "missing: send_task(\"fanout.notify\", kwargs={\"job\": job}) or args=[job]",
        )),
        (_, Some(_)) => Err(field(
            "args",
            "the job is given both as args[0] and as kwargs.job; give it once",
        )),
        (n, None) => Err(field(
            "args",
            format!("{n} positional arguments; fanout.notify takes one, the job"),
        )),
    }
}

/// `eta` or `expires` as Celery writes it: an ISO 8601 time with an
/// offset, or without one (a naive `datetime.utcnow()`: UTC, as Celery's
/// worker reads it).
fn celery_time(
    value: &Option<Value>,
    place: &str,
    name: &str,
) -> Result<Option<DateTime<Utc>>, DecodeError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => crate::clock::instant::parse_iso(s.trim())
            .map(Some)
            .ok_or_else(|| {
                field(
                    &format!("{place}.{name}"),
                    format!("{s:?} is not an ISO 8601 time (what Celery writes for eta=, countdown= and expires=)"),
                )
            }),
        Some(_) => Err(field(
            &format!("{place}.{name}"),
            "expected an ISO 8601 string",
        )),
    }
}
