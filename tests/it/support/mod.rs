//! Shared test harness: run the real `fanout` binary with bounded waits,
//! and start real servers (see `smtp.rs`).

pub mod celery;
pub mod dingtalk;
pub mod discord;
pub mod feishu;
pub mod forward;
pub mod grafana;
pub mod monitors;
pub mod prometheusalert;
pub mod rabbit;
pub mod rabbit_node;
pub mod receiver;
pub mod redis;
pub mod s3;
pub mod serve;
pub mod slack;
pub mod smtp;
pub mod teams;
pub mod telegram;
pub mod wecom;
pub mod window;
pub mod worker;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The repository root, for fixtures and examples.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture_png() -> Vec<u8> {
    std::fs::read(repo().join("tests/data/chart.png")).expect("tests/data/chart.png")
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Everything the run printed, for secret scans.
    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "unexpected exit status\n{self}");
        assert!(
            !self.stderr.contains("panicked"),
            "the binary panicked\n{self}"
        );
        self
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// The longest any single run of the binary may take.
pub const RUN_LIMIT: Duration = Duration::from_secs(60);

/// `fanout send JOB --config CONFIG --outbox outbox` in a fresh directory,
/// as a person previews what would go out: the directory (its `outbox/`
/// holds the messages) and the run.
pub fn send_to_outbox(config: &str, job: &str) -> (tempfile::TempDir, Run) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_file(dir.path(), "fanout.toml", config);
    let path = write_file(dir.path(), "job.json", job);
    let run = fanout_in(
        dir.path(),
        &["send", &path, "--config", &cfg, "--outbox", "outbox"],
        None,
        &[],
    );
    (dir, run)
}

/// Run `fanout ARGS` in `dir` with `stdin` and extra env, bounded by [`RUN_LIMIT`].
pub fn fanout_in(dir: &Path, args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fanout"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("FANOUT_CONFIG")
        .env_remove("FANOUT_LOG_FORMAT")
        .env("RUST_LOG", "info")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn the fanout binary");
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let bytes = bytes.to_vec();
        // A writer thread, so a child that stops reading cannot block us.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        match child.try_wait().expect("wait for fanout") {
            Some(status) => break status,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                panic!("fanout {args:?} ran longer than {RUN_LIMIT:?}");
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&out_reader.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned(),
    }
}

/// Run `fanout ARGS` in a fresh temporary directory.
pub fn fanout(args: &[&str], stdin: Option<&[u8]>) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    fanout_in(dir.path(), args, stdin, &[])
}

/// Poll `check` every 20 ms until it returns `Some`, or fail after `limit`.
#[track_caller]
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Write `text` to `dir/name` and return the path as a string.
pub fn write_file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test file");
    path.display().to_string()
}

/// The files in `dir` ending in `.ext`, sorted.
pub fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

/// A child process that prints `READY <port>` once it listens, and exits
/// when its stdin closes (so it dies with the test).
pub struct ReadyChild {
    pub child: std::process::Child,
    _stdin: std::process::ChildStdin,
    pub port: u16,
}

impl ReadyChild {
    /// Spawn `cmd` and wait (at most 20 s) for its READY line; `hint` says
    /// how to install what it needs.
    pub fn spawn(mut cmd: Command, what: &str, hint: &str) -> Self {
        use std::io::BufRead;
        let mut child = match cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(child) => child,
            Err(e) => panic!("cannot start {what} ({e}); {hint}"),
        };
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
        let Some(port) = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
        else {
            let _ = child.kill();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("{what} did not start: {err}\n{hint}");
        };
        Self {
            child,
            _stdin: stdin,
            port,
        }
    }
}

impl Drop for ReadyChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}
