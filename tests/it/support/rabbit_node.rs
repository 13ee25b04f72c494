//! A RabbitMQ node of the test's own (Debian's `rabbitmq-server`), on free
//! loopback ports with its data in a temporary directory: for tests that
//! stop the broker (`rabbitmqctl stop_app`) without touching the
//! machine's, which other tests use side by side. Stopped and removed when
//! dropped.

use std::path::PathBuf;
use std::process::{Command, Output};

use super::free_port;

const SBIN: &str = "/usr/lib/rabbitmq/bin";
const INSTALL_HINT: &str =
    "this test starts a RabbitMQ node of its own: `apt-get install rabbitmq-server`";

pub struct RabbitNode {
    pub name: String,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl RabbitNode {
    /// Start a node and wait (at most 60 s) until it takes connections.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("a directory for the node");
        let (port, dist) = (free_port(), free_port());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("fanout-test-{}-{nanos}@localhost", std::process::id());
        std::fs::write(dir.path().join("enabled_plugins"), "[].\n").unwrap();
        let node = Self { name, port, dir };
        let started = Command::new(node.bin("rabbitmq-server"))
            .arg("-detached")
            .envs(node.env())
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", port.to_string())
            .env("RABBITMQ_DIST_PORT", dist.to_string())
            .env("RABBITMQ_MNESIA_BASE", node.path("mnesia"))
            .env("RABBITMQ_LOG_BASE", node.path("log"))
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                node.path("enabled_plugins"),
            )
            .env("RABBITMQ_CONFIG_FILE", node.path("rabbitmq"))
            .current_dir(node.dir.path())
            .status()
            .unwrap_or_else(|e| panic!("cannot start rabbitmq-server ({e}); {INSTALL_HINT}"));
        assert!(started.success(), "rabbitmq-server -detached failed");
        let pid_file = node.path("pid").display().to_string();
        let up = node.ctl(&["wait", &pid_file, "--timeout", "60"]);
        assert!(
            up.status.success(),
            "the test's RabbitMQ node did not start within 60 s: {}\n(its log: {})",
            String::from_utf8_lossy(&up.stderr),
            node.path("log").display()
        );
        node
    }

    fn bin(&self, name: &str) -> PathBuf {
        PathBuf::from(SBIN).join(name)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The environment both the server and `rabbitmqctl` need: the node's
    /// name, and a home of its own for the Erlang cookie.
    fn env(&self) -> [(&'static str, String); 3] {
        [
            ("HOME", self.dir.path().display().to_string()),
            ("RABBITMQ_NODENAME", self.name.clone()),
            ("RABBITMQ_PID_FILE", self.path("pid").display().to_string()),
        ]
    }

    /// `rabbitmqctl -n <node> args…`, bounded by `-t` where given.
    pub fn ctl(&self, args: &[&str]) -> Output {
        Command::new(self.bin("rabbitmqctl"))
            .args(["-n", &self.name])
            .args(args)
            .envs(self.env())
            .output()
            .unwrap_or_else(|e| panic!("cannot run rabbitmqctl ({e}); {INSTALL_HINT}"))
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// The broker goes away (the node's Erlang VM stays, as in an upgrade
    /// or a partition): every connection is closed, the port refuses.
    pub fn stop_app(&self) {
        let out = self.ctl(&["-t", "60", "stop_app"]);
        assert!(out.status.success(), "stop_app: {out:?}");
    }

    pub fn start_app(&self) {
        let out = self.ctl(&["-t", "60", "start_app"]);
        assert!(out.status.success(), "start_app: {out:?}");
    }
}

impl Drop for RabbitNode {
    fn drop(&mut self) {
        let stopped = self.ctl(&["-t", "30", "stop"]);
        if !stopped.status.success() {
            if let Ok(pid) = std::fs::read_to_string(self.path("pid")) {
                let _ = Command::new("kill").args(["-9", pid.trim()]).status();
            }
        }
    }
}
