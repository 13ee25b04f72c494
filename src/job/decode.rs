//! Decode: raw message bytes → a typed job or signal, or an error that says
//! where the input is wrong (`targets[1].destination: …`).

use serde::de::DeserializeOwned;
use thiserror::Error;

use super::{Job, Signal};

/// The most a job may be once decoded: a job is a few KiB, and its alert
/// (title, message, labels) must fit well within this. A larger job whose
/// bulk is its raw upstream body (`alert.payload`, an alert storm) has that
/// payload trimmed to fit ([`trim_payload`]) and is delivered; one whose
/// alert itself is larger is refused.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// The most fanout reads of one message at all; larger ones are refused
/// unparsed, with their real size.
pub const MAX_READ_BYTES: usize = 64 * 1024 * 1024;

/// Room left in a trimmed job for what re-encoding may add (escapes).
const TRIM_MARGIN: usize = 4 * 1024;

/// A decoded message.
#[derive(Clone, Debug)]
pub enum Inbound {
    Job(Box<Job>),
    Signal(Signal),
}

/// Why a message could not be decoded. Never retryable: the same bytes fail
/// the same way, so the message goes to the dead-letter queue.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("message is {size} bytes, over the {MAX_READ_BYTES}-byte limit of what fanout reads")]
    TooLarge { size: usize },
    #[error(
        "job is {size} bytes, over the {MAX_MESSAGE_BYTES}-byte limit, and {without_payload} bytes without its raw payload: \
         its alert itself is too big (shorten alert.message or the labels)"
    )]
    AlertTooLarge { size: usize, without_payload: usize },
    #[error("signal is {size} bytes, over the {MAX_MESSAGE_BYTES}-byte limit")]
    SignalTooLarge { size: usize },
    #[error("not JSON: {0}")]
    Syntax(String),
    #[error("expected a JSON object with \"version\": 1 (a job, or a signal with \"signal\")")]
    NotAnObject,
    #[error("{path}: {message}")]
    Field { path: String, message: String },
}

/// Decode a job or a signal from bytes: a JSON object with a `signal` key is
/// a signal, anything else must be a job.
pub fn decode(bytes: &[u8]) -> Result<Inbound, DecodeError> {
    let mut value = parse(bytes)?;
    let serde_json::Value::Object(map) = &value else {
        return Err(DecodeError::NotAnObject);
    };
    if map.contains_key("signal") {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(DecodeError::SignalTooLarge { size: bytes.len() });
        }
        typed(value).map(Inbound::Signal)
    } else {
        if bytes.len() > MAX_MESSAGE_BYTES {
            fit_job(&mut value, bytes.len())?;
        }
        typed_job(value).map(|job| Inbound::Job(Box::new(job)))
    }
}

/// `bytes` as JSON, if they are within what fanout reads at all.
pub(crate) fn parse(bytes: &[u8]) -> Result<serde_json::Value, DecodeError> {
    if bytes.len() > MAX_READ_BYTES {
        return Err(DecodeError::TooLarge { size: bytes.len() });
    }
    serde_json::from_slice(bytes).map_err(|e| DecodeError::Syntax(e.to_string()))
}

/// A job (as JSON) of `size` bytes, over [`MAX_MESSAGE_BYTES`]: trim its
/// raw payload so that it fits, or refuse it when its alert alone does
/// not. A trimmed alert says so in `payload_trimmed` (the payload's size
/// before), and the log says so once.
pub(crate) fn fit_job(job: &mut serde_json::Value, size: usize) -> Result<(), DecodeError> {
    let Some(payload) = job
        .get_mut("alert")
        .and_then(|a| a.get_mut("payload"))
        .map(serde_json::Value::take)
    else {
        return Err(DecodeError::AlertTooLarge {
            size,
            without_payload: size,
        });
    };
    let without_payload = encoded_len(job);
    let budget = MAX_MESSAGE_BYTES.saturating_sub(without_payload + TRIM_MARGIN);
    if without_payload + TRIM_MARGIN >= MAX_MESSAGE_BYTES {
        return Err(DecodeError::AlertTooLarge {
            size,
            without_payload,
        });
    }
    let original = encoded_len(&payload);
    let trimmed = trim_payload(&payload, budget);
    let kept = encoded_len(&trimmed);
    tracing::warn!(
        message = "Job over the size limit: its raw payload was trimmed to fit, and the alert goes out.",
        job = %job.get("id").and_then(serde_json::Value::as_str).unwrap_or("?"),
        job_bytes = size,
        payload_bytes = original,
        kept_bytes = kept,
        limit = MAX_MESSAGE_BYTES
    );
    if let Some(alert) = job.get_mut("alert").and_then(|a| a.as_object_mut()) {
        alert.insert("payload".into(), trimmed);
        alert.insert("payload_trimmed".into(), original.into());
    }
    Ok(())
}

fn encoded_len(value: &serde_json::Value) -> usize {
    serde_json::to_vec(value).map_or(usize::MAX, |v| v.len())
}

/// `value` cut to about `budget` bytes of JSON, keeping its shape from the
/// top: every key of an object as long as there is room, the first
/// elements of an array, the start of a long string (ending with `…`).
/// What is kept reads the same to a template (`payload.alerts[0].labels`);
/// what is cut is simply absent.
pub fn trim_payload(value: &serde_json::Value, budget: usize) -> serde_json::Value {
    use serde_json::Value;
    /// Below this, a part is dropped rather than cut to a stub.
    const STUB: usize = 64;
    match value {
        Value::String(text) if text.len() + 2 > budget => {
            let mut end = budget.saturating_sub(8).min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            Value::String(format!("{}…", &text[..end]))
        }
        Value::Array(items) => {
            let mut kept = Vec::new();
            let mut used = 2;
            for item in items {
                let size = encoded_len(item) + 1;
                if used + size <= budget {
                    kept.push(item.clone());
                    used += size;
                } else {
                    if budget.saturating_sub(used) > STUB {
                        kept.push(trim_payload(item, budget - used - 1));
                    }
                    break;
                }
            }
            Value::Array(kept)
        }
        Value::Object(map) => {
            // Smallest first: the scalars and small parts a template reads
            // (`status`, `version`, labels) are kept whole, and the room
            // left goes to the bulk (`alerts`), cut to fit.
            let mut entries: Vec<(&String, &Value, usize)> = map
                .iter()
                .map(|(key, item)| (key, item, encoded_len(item) + key.len() + 4))
                .collect();
            entries.sort_by_key(|(_, _, size)| *size);
            let mut kept = serde_json::Map::new();
            let mut used = 2;
            for (key, item, size) in entries {
                if used + size <= budget {
                    kept.insert(key.clone(), item.clone());
                    used += size;
                } else if budget.saturating_sub(used + key.len() + 4) > STUB {
                    let part = trim_payload(item, budget - used - key.len() - 4);
                    used += encoded_len(&part) + key.len() + 4;
                    kept.insert(key.clone(), part);
                }
            }
            Value::Object(kept)
        }
        other => other.clone(),
    }
}

/// A JSON value as a job, its alert's times settled
/// ([`super::times::settle`]).
pub(crate) fn typed_job(value: serde_json::Value) -> Result<Job, DecodeError> {
    let mut job: Job = typed(value)?;
    super::times::settle_logged(&job.id, &mut job.alert, chrono::Utc::now());
    Ok(job)
}

/// Decode a job only (for `fanout send`).
pub fn decode_job(bytes: &[u8]) -> Result<Job, DecodeError> {
    match decode(bytes)? {
        Inbound::Job(job) => Ok(*job),
        Inbound::Signal(_) => Err(DecodeError::Field {
            path: "signal".into(),
            message: "this is a signal, not a job (use `fanout signal`)".into(),
        }),
    }
}

/// A JSON value as a contract type, with the JSON path in errors.
pub(crate) fn typed<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, DecodeError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        DecodeError::Field {
            path: if path == "." { "(top)".into() } else { path },
            message,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_error(json: &str) -> (String, String) {
        match decode(json.as_bytes()) {
            Err(DecodeError::Field { path, message }) => (path, message),
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    const MINIMAL: &str = r#"{"version":1,"id":"j1","alert":{"group_id":"g","title":"t"},"targets":[{"destination":"d"}]}"#;

    #[test]
    fn minimal_job_decodes() {
        assert!(matches!(decode(MINIMAL.as_bytes()), Ok(Inbound::Job(_))));
    }

    #[test]
    fn a_typo_names_its_path() {
        let (path, message) = field_error(
            r#"{"version":1,"id":"j1","alert":{"group_id":"g","title":"t"},"targets":[{"destination":"d"},{"destinaton":"x"}]}"#,
        );
        assert_eq!(path, "targets[1]");
        assert!(
            message.contains("missing field `destination` (`destinaton` is not a field"),
            "{message}"
        );
    }

    #[test]
    fn wrong_version_is_refused() {
        let (path, message) = field_error(&MINIMAL.replace("\"version\":1", "\"version\":2"));
        assert_eq!(path, "version");
        assert!(message.contains("unsupported version 2"), "{message}");
    }

    #[test]
    fn steps_take_exactly_one_kind() {
        let job = MINIMAL.replace(
            "\"targets\"",
            r#""escalation":[{"notify":["d"]},{"wait":"5m","repeat":1}],"targets""#,
        );
        let (path, message) = field_error(&job);
        assert_eq!(path, "escalation[1]");
        assert!(message.contains("exactly one of"), "{message}");
    }

    #[test]
    fn signals_are_told_apart_from_jobs() {
        let got = decode(br#"{"version":1,"signal":"acknowledge","group_id":"ag-1"}"#);
        assert!(matches!(got, Ok(Inbound::Signal(_))), "{got:?}");
    }

    /// A job like an alert storm's: its raw upstream body is most of it.
    fn storm(alerts: usize, message: &str) -> Vec<u8> {
        let alerts: Vec<serde_json::Value> = (0..alerts)
            .map(|i| {
                serde_json::json!({"status": "firing", "labels": {"alertname": "HighLatency", "instance": format!("api-{i}:9100")},
                    "annotations": {"description": "p99 latency over 1s for 5 minutes on this instance"}, "fingerprint": format!("{i:016x}")})
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "version": 1, "id": "storm-1",
            "alert": {"group_id": "g", "title": "t", "message": message,
                      "payload": {"version": "4", "status": "firing", "alerts": alerts}},
            "targets": [{"destination": "d"}]
        }))
        .unwrap()
    }

    #[test]
    fn a_storm_over_the_limit_is_kept_with_its_payload_trimmed() {
        let bytes = storm(8_000, "many alerts");
        assert!(
            bytes.len() > MAX_MESSAGE_BYTES + MAX_MESSAGE_BYTES / 2,
            "{}",
            bytes.len()
        );
        let Ok(Inbound::Job(job)) = decode(&bytes) else {
            panic!("a storm job decodes")
        };
        let original: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let payload_bytes = encoded_len(&original["alert"]["payload"]) as u64;
        assert_eq!(job.alert.payload_trimmed, Some(payload_bytes));
        let encoded = serde_json::to_vec(&*job).unwrap();
        assert!(encoded.len() <= MAX_MESSAGE_BYTES, "{}", encoded.len());
        // The shape a template reads is kept: the top keys and the first alerts.
        assert_eq!(job.alert.payload["status"], "firing");
        assert_eq!(
            job.alert.payload["alerts"][0]["labels"]["instance"],
            "api-0:9100"
        );
        let kept = job.alert.payload["alerts"].as_array().unwrap().len();
        assert!(kept > 1_000 && kept < 8_000, "{kept}");
    }

    #[test]
    fn a_job_whose_alert_is_too_big_is_refused_with_its_real_size() {
        let bytes = storm(10, &"x".repeat(MAX_MESSAGE_BYTES + 500_000));
        let err = decode(&bytes).unwrap_err();
        let DecodeError::AlertTooLarge { size, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!(size, bytes.len());
        let text = err.to_string();
        assert!(
            text.contains(&format!("job is {} bytes", bytes.len())),
            "{text}"
        );
        assert!(text.contains("its alert itself is too big"), "{text}");
    }

    #[test]
    fn trimming_keeps_shape_within_budget() {
        let value =
            serde_json::json!({"a": "x".repeat(1000), "b": [1, 2, 3], "c": {"d": "y".repeat(500)}});
        for budget in [100, 300, 700, 1200, 5000] {
            let trimmed = trim_payload(&value, budget);
            assert!(
                encoded_len(&trimmed) <= budget,
                "{budget}: {}",
                encoded_len(&trimmed)
            );
        }
        assert_eq!(trim_payload(&value, 5000), value);
    }

    #[test]
    fn oversized_and_non_object_messages_fail_early() {
        let big = vec![b' '; MAX_READ_BYTES + 1];
        assert_eq!(
            decode(&big).unwrap_err(),
            DecodeError::TooLarge { size: big.len() }
        );
        assert_eq!(decode(b"[1,2]").unwrap_err(), DecodeError::NotAnObject);
        assert!(matches!(
            decode(b"{\"version\":"),
            Err(DecodeError::Syntax(_))
        ));
        assert!(matches!(decode(b"\xff\xfe"), Err(DecodeError::Syntax(_))));
    }
}
