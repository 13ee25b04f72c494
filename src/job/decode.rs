//! Decode: raw message bytes → a typed job or signal, or an error that says
//! where the input is wrong (`targets[1].destination: …`).

use serde::de::DeserializeOwned;
use thiserror::Error;

use super::{Job, Signal};

/// Larger messages are refused before parsing: a job is a few KiB, and a
/// broker message of many MiB is a producer bug, not an alert.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

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
    #[error("message is over the {MAX_MESSAGE_BYTES}-byte limit ({size} bytes read)")]
    TooLarge { size: usize },
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
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(DecodeError::TooLarge { size: bytes.len() });
    }
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| DecodeError::Syntax(e.to_string()))?;
    let serde_json::Value::Object(map) = &value else {
        return Err(DecodeError::NotAnObject);
    };
    if map.contains_key("signal") {
        typed(value).map(Inbound::Signal)
    } else {
        typed(value).map(|job| Inbound::Job(Box::new(job)))
    }
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
        assert_eq!(path, "targets[1].destinaton");
        assert!(message.contains("unknown field `destinaton`"), "{message}");
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

    #[test]
    fn oversized_and_non_object_messages_fail_early() {
        let big = vec![b' '; MAX_MESSAGE_BYTES + 1];
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
