//! A real Prometheus and a real Alertmanager (Debian's `prometheus` and
//! `prometheus-alertmanager`) on loopback ports, with the configs a test
//! writes, killed with the test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, wait_for};

const INSTALL_HINT: &str = "the monitor tests need Debian's Prometheus and Alertmanager: \
    `apt-get install prometheus prometheus-alertmanager` (or run `.ci/test`, which installs them)";

/// A running monitor; its log is `<name>.log` in the test's directory.
pub struct Daemon {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Daemon {
    fn start(dir: &Path, name: &str, binary: &str, args: &[String], port: u16) -> Self {
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(binary)
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary} ({e}); {INSTALL_HINT}"));
        let daemon = Self { child, port, log };
        let ready = format!("http://127.0.0.1:{port}/-/ready");
        wait_for(
            &format!("{name} to be ready"),
            Duration::from_secs(30),
            || {
                reqwest::blocking::get(&ready)
                    .ok()
                    .filter(|r| r.status().is_success())
                    .map(drop)
            },
        );
        daemon
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Alertmanager sending every group to `webhook` with `token` as bearer,
/// resolved notifications too, grouped and sent within a second.
pub fn alertmanager(dir: &Path, webhook: &str, token: &str) -> Daemon {
    let port = free_port();
    let config = format!(
        "route:\n  receiver: fanout\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n\
         receivers:\n  - name: fanout\n    webhook_configs:\n      - url: \"{webhook}\"\n        send_resolved: true\n\
         \x20       http_config:\n          authorization:\n            credentials: \"{token}\"\n"
    );
    std::fs::write(dir.join("alertmanager.yml"), config).expect("alertmanager.yml");
    std::fs::create_dir_all(dir.join("am-data")).expect("am-data");
    let args = [
        "--config.file=alertmanager.yml".to_string(),
        "--storage.path=am-data".to_string(),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--cluster.listen-address=".to_string(),
    ];
    Daemon::start(dir, "alertmanager", "prometheus-alertmanager", &args, port)
}

/// Prometheus scraping `target` (host:port) every second, evaluating
/// `rules` (a rules file's text) every second, and alerting
/// `alertmanager`.
pub fn prometheus(dir: &Path, target: &str, rules: &str, alertmanager: u16) -> Daemon {
    let port = free_port();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [\"127.0.0.1:{alertmanager}\"]\n\
         rule_files: [rules.yml]\n\
         scrape_configs:\n  - job_name: checkout\n    static_configs:\n      - targets: [\"{target}\"]\n"
    );
    std::fs::write(dir.join("prometheus.yml"), config).expect("prometheus.yml");
    std::fs::write(dir.join("rules.yml"), rules).expect("rules.yml");
    std::fs::create_dir_all(dir.join("prom-data")).expect("prom-data");
    let args = [
        "--config.file=prometheus.yml".to_string(),
        "--storage.tsdb.path=prom-data".to_string(),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--rules.alert.resend-delay=1s".to_string(),
    ];
    Daemon::start(dir, "prometheus", "prometheus", &args, port)
}
