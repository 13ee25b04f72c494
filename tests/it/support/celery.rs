//! Celery protocol v2 messages built by the real Celery client
//! (`tests/support/celery_message.py`), no broker involved.

use std::process::Command;

use base64::Engine as _;

use super::repo;

/// A message as Celery would put it on the wire.
pub struct CeleryMessage {
    pub headers: serde_json::Map<String, serde_json::Value>,
    pub content_type: String,
    pub content_encoding: String,
    pub body: Vec<u8>,
}

/// Ask Celery to build the message for `job`, with extra script `args`
/// (`--countdown 4`, `--serializer pickle`, …).
pub fn celery_message(job: &str, args: &[&str]) -> CeleryMessage {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("job.json");
    std::fs::write(&path, job).expect("write job");
    let out = Command::new("python3")
        .arg(repo().join("tests/support/celery_message.py"))
        .arg("--job")
        .arg(&path)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "the Celery client failed (pip install -r tests/requirements.txt): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON from the script");
    CeleryMessage {
        headers: v["headers"].as_object().cloned().unwrap_or_default(),
        content_type: v["content_type"].as_str().unwrap_or_default().to_string(),
        content_encoding: v["content_encoding"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        body: base64::engine::general_purpose::STANDARD
            .decode(v["body_b64"].as_str().unwrap_or_default())
            .expect("base64 body"),
    }
}
