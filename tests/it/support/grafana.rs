//! The fake Grafana (`tests/support/fake_grafana.py`): HTTPS on 127.0.0.1
//! with a certificate for another host name, a bearer token, late data and
//! Grafana's ready signal.

use std::path::PathBuf;
use std::process::Command;

use super::{repo, ReadyChild};

const HINT: &str = "the fake Grafana needs python3 (standard library only)";

pub struct FakeGrafana {
    _child: ReadyChild,
    pub port: u16,
    pub token: String,
    dir: tempfile::TempDir,
    /// `https://127.0.0.1:PORT` (or http with `plain`).
    pub url: String,
}

pub struct Options {
    pub plain: bool,
    pub org: u64,
    pub delay_ms: u64,
    pub legacy: bool,
    /// Scenes as a real Grafana runs them: a variable query first, then
    /// the panel's plugin chunk, then its query (see the fake's doc).
    pub staged: bool,
    /// The name the certificate is for (not 127.0.0.1).
    pub cert_name: &'static str,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            plain: false,
            org: 1,
            delay_ms: 400,
            legacy: false,
            staged: false,
            cert_name: "grafana.invalid",
        }
    }
}

impl FakeGrafana {
    pub fn start(options: Options) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let token = format!("glsa_test_{}", std::process::id());
        let mut cmd = Command::new("python3");
        cmd.arg(repo().join("tests/support/fake_grafana.py"))
            .args(["--token", &token])
            .args(["--org", &options.org.to_string()])
            .args(["--delay-ms", &options.delay_ms.to_string()])
            .args([
                "--mode",
                match (options.legacy, options.staged) {
                    (true, _) => "legacy",
                    (_, true) => "staged",
                    _ => "scenes",
                },
            ])
            .arg("--log")
            .arg(dir.path().join("requests.jsonl"));
        if options.plain {
            cmd.arg("--plain");
        } else {
            let cert = rcgen::generate_simple_self_signed(vec![options.cert_name.to_string()])
                .expect("certificate");
            let (c, k) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            std::fs::write(&c, cert.cert.pem()).expect("cert");
            std::fs::write(&k, cert.key_pair.serialize_pem()).expect("key");
            cmd.arg("--cert").arg(&c).arg("--key").arg(&k);
        }
        let child = ReadyChild::spawn(cmd, "the fake Grafana", HINT);
        let scheme = if options.plain { "http" } else { "https" };
        Self {
            port: child.port,
            url: format!("{scheme}://127.0.0.1:{}", child.port),
            _child: child,
            token,
            dir,
        }
    }

    /// Every request it received: (path, Authorization header).
    pub fn requests(&self) -> Vec<(String, Option<String>)> {
        std::fs::read_to_string(self.log_path())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| {
                (
                    v["path"].as_str().unwrap_or_default().to_string(),
                    v["authorization"].as_str().map(str::to_string),
                )
            })
            .collect()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("requests.jsonl")
    }
}
