//! The tests' fake Grafana (`tests/support/fake_grafana.py`) for the
//! benches: HTTPS on 127.0.0.1 with a certificate for another name, in
//! `realistic` mode (a d-solo page shaped like Grafana 11/12's: 38
//! requests, then the data 600 ms late, drawn 300 ms after it). Killed
//! when dropped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct FakeGrafana {
    child: Child,
    /// `https://127.0.0.1:PORT`
    pub url: String,
    /// The service-account token it wants as `Authorization: Bearer …`.
    pub token: String,
    dir: PathBuf,
}

impl FakeGrafana {
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "fanout-bench-grafana-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir).expect("bench dir");
        let cert = rcgen::generate_simple_self_signed(vec!["grafana.invalid".to_string()])
            .expect("certificate");
        let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&c, cert.cert.pem()).expect("cert");
        std::fs::write(&k, cert.key_pair.serialize_pem()).expect("key");
        let token = "glsa_bench".to_string();
        let mut child = Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/support/fake_grafana.py"
            ))
            .args([
                "--mode",
                "realistic",
                "--delay-ms",
                "600",
                "--draw-ms",
                "300",
            ])
            .args(["--token", &token])
            .arg("--cert")
            .arg(&c)
            .arg("--key")
            .arg(&k)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the fake Grafana");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("READY line");
        let port = line
            .trim()
            .strip_prefix("READY ")
            .expect("READY <port>")
            .to_string();
        Self {
            child,
            url: format!("https://127.0.0.1:{port}"),
            token,
            dir,
        }
    }
}

impl Drop for FakeGrafana {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
