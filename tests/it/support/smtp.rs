//! A real SMTP server (aiosmtpd, `tests/support/smtp_server.py`) on a free
//! loopback port, in a child process that dies with the test.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::{repo, wait_for, ReadyChild};

const INSTALL_HINT: &str = "the SMTP test server needs Python 3 and aiosmtpd: \
    `pip install -r tests/requirements.txt` (or run `.ci/test`, which installs it)";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    None,
    Implicit,
    StartTls,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub tls: TlsMode,
    pub auth: Option<(&'static str, &'static str)>,
    /// Reply to DATA with this (e.g. "451 4.3.0 Try again later") ...
    pub fail: Option<&'static str>,
    /// ... this many times (-1: always).
    pub fail_times: i32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            tls: TlsMode::None,
            auth: None,
            fail: None,
            fail_times: -1,
        }
    }
}

/// A message the server accepted.
pub struct Received {
    pub raw: Vec<u8>,
    pub meta: serde_json::Value,
}

pub struct SmtpServer {
    _child: ReadyChild,
    pub port: u16,
    spool: tempfile::TempDir,
    /// PEM of the server's self-signed certificate (TLS modes), for `tls_ca_file`.
    pub ca_file: Option<PathBuf>,
}

impl SmtpServer {
    pub fn start(options: Options) -> Self {
        let spool = tempfile::tempdir().expect("spool dir");
        let mut cmd = Command::new("python3");
        cmd.arg(repo().join("tests/support/smtp_server.py"))
            .arg("--spool")
            .arg(spool.path().join("mail"));
        let mut ca_file = None;
        if options.tls != TlsMode::None {
            let cert = rcgen::generate_simple_self_signed(vec![
                "localhost".to_string(),
                "127.0.0.1".to_string(),
            ])
            .expect("self-signed certificate");
            let cert_path = spool.path().join("cert.pem");
            let key_path = spool.path().join("key.pem");
            std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
            std::fs::write(&key_path, cert.key_pair.serialize_pem()).expect("write key");
            cmd.arg("--tls-mode")
                .arg(if options.tls == TlsMode::Implicit {
                    "implicit"
                } else {
                    "starttls"
                })
                .arg("--tls-cert")
                .arg(&cert_path)
                .arg("--tls-key")
                .arg(&key_path);
            ca_file = Some(cert_path);
        }
        if let Some((user, pass)) = options.auth {
            cmd.arg("--auth").arg(format!("{user}:{pass}"));
        }
        if let Some(reply) = options.fail {
            cmd.arg("--fail")
                .arg(reply)
                .arg("--fail-times")
                .arg(options.fail_times.to_string());
        }
        let child = ReadyChild::spawn(cmd, "the SMTP test server", INSTALL_HINT);
        Self {
            port: child.port,
            _child: child,
            spool,
            ca_file,
        }
    }

    fn mail_dir(&self) -> PathBuf {
        self.spool.path().join("mail")
    }

    /// Wait (at most 20 s) until `n` messages have arrived; return them in order.
    pub fn wait_for_messages(&self, n: usize) -> Vec<Received> {
        wait_for(
            &format!("{n} message(s) at the SMTP server"),
            Duration::from_secs(20),
            || {
                (1..=n)
                    .all(|i| self.mail_dir().join(format!("{i}.eml")).exists())
                    .then_some(())
            },
        );
        (1..=n)
            .map(|i| Received {
                raw: std::fs::read(self.mail_dir().join(format!("{i}.eml"))).expect("eml"),
                meta: serde_json::from_slice(
                    &std::fs::read(self.mail_dir().join(format!("{i}.json"))).expect("json"),
                )
                .expect("meta json"),
            })
            .collect()
    }

    /// How many messages were accepted so far.
    pub fn accepted(&self) -> usize {
        (1..)
            .take_while(|i| self.mail_dir().join(format!("{i}.eml")).exists())
            .count()
    }

    /// The server's log of DATA and AUTH replies (`DATA 451`, `DATA 250`, …).
    pub fn attempts(&self) -> Vec<String> {
        std::fs::read_to_string(self.mail_dir().join("attempts.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}
