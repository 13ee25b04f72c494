//! A real S3 server (s3s-fs: file-backed, checks SigV4 signatures, presigned
//! URLs and their expiry included) on a free loopback port, in a child
//! process that dies with the test.
//!
//! `tests/support/install-s3-server.sh` installs it into
//! `$FANOUT_TOOLS/bin` (default `/var/tmp/fanout-tools/bin`); it is also
//! found on PATH. A missing server fails the test, it never skips it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use super::wait_for;

const INSTALL_HINT: &str = "the S3 test server s3s-fs is missing: run \
    `tests/support/install-s3-server.sh` (installs it into $FANOUT_TOOLS/bin, \
    default /var/tmp/fanout-tools/bin), or put s3s-fs on PATH";

/// How long the server may take to start and answer.
const START_LIMIT: Duration = Duration::from_secs(20);

pub struct S3Server {
    /// `http://127.0.0.1:PORT`, for `storage.s3.endpoint` (path style).
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    /// A fresh bucket with a random name, empty at start.
    pub bucket: String,
    child: Child,
    root: tempfile::TempDir,
    /// What the server printed, for failure messages.
    output: Arc<Mutex<String>>,
}

impl S3Server {
    /// Start a server on a port the kernel picks, with a random secret and
    /// a fresh bucket, and wait (at most 20 s) until it refuses an unsigned
    /// request, which also shows that it checks signatures.
    pub fn start() -> Self {
        let binary = find_binary();
        let root = tempfile::tempdir().expect("S3 data dir");
        let bucket = format!("fanout-test-{:08x}", fastrand::u32(..));
        // s3s-fs serves each directory under its root as a bucket.
        std::fs::create_dir(root.path().join(&bucket)).expect("create the bucket dir");
        let access_key = "fanout-test".to_string();
        let secret_key = format!("s3-test-secret-{:016x}", fastrand::u64(..));
        let mut child = Command::new(&binary)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(["--access-key", &access_key, "--secret-key", &secret_key])
            .arg(root.path())
            // Its own info lines only: the address, not every refused request.
            .env("RUST_LOG", "s3s_fs=info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}\n{INSTALL_HINT}", binary.display()));
        let output = Arc::new(Mutex::new(String::new()));
        let address = read_address(&mut child, &output);
        let mut server = Self {
            endpoint: String::new(),
            access_key,
            secret_key,
            bucket,
            child,
            root,
            output,
        };
        let Some(address) = address else {
            server.fail("did not print its address");
        };
        server.endpoint = format!("http://{address}");
        wait_for("the S3 server to answer", START_LIMIT, || {
            unsigned_get_status(&address)
        });
        let status = unsigned_get_status(&address);
        if status != Some(403) {
            server.fail(&format!(
                "answered an unsigned request with {status:?}, not 403: it does not check signatures"
            ));
        }
        server
    }

    /// The directory holding the bucket's objects (one file per object).
    pub fn bucket_dir(&self) -> PathBuf {
        self.root.path().join(&self.bucket)
    }

    /// The data dir, where a bucket is a directory.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    fn fail(&mut self, what: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let output = self.output.lock().map(|o| o.clone()).unwrap_or_default();
        panic!("the S3 test server (s3s-fs) {what}\n--- its output ---\n{output}");
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `$FANOUT_TOOLS/bin/s3s-fs`, where the install script puts it, else PATH.
fn find_binary() -> PathBuf {
    let tools = std::env::var_os("FANOUT_TOOLS")
        .map_or_else(|| PathBuf::from("/var/tmp/fanout-tools"), PathBuf::from);
    let installed = tools.join("bin/s3s-fs");
    if installed.is_file() {
        return installed;
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("s3s-fs"))
                .find(|path| path.is_file())
        })
        .unwrap_or_else(|| panic!("{INSTALL_HINT}"))
}

/// Collect the child's output on threads (so its pipes never fill) and
/// return the address from its "server is running at http://…" line.
fn read_address(child: &mut Child, output: &Arc<Mutex<String>>) -> Option<String> {
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    for (pipe, tx) in [
        (Box::new(stdout) as Box<dyn Read + Send>, Some(tx)),
        (Box::new(stderr), None),
    ] {
        let output = Arc::clone(output);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let (Some(tx), Some(rest)) =
                    (&tx, line.split("server is running at http://").nth(1))
                {
                    let _ = tx.send(rest.trim().to_string());
                }
                if let Ok(mut output) = output.lock() {
                    output.push_str(&line);
                    output.push('\n');
                }
            }
        });
    }
    rx.recv_timeout(START_LIMIT).ok()
}

/// The status of an unsigned `GET /`, or `None` while nothing answers.
/// Plain TCP, so it works inside a tokio test.
fn unsigned_get_status(address: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut status_line = String::new();
    BufReader::new(stream).read_line(&mut status_line).ok()?;
    status_line.split_whitespace().nth(1)?.parse().ok()
}
