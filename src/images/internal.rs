//! `internal` storage: PNGs as files under `[storage] dir`, named by content
//! hash, served by fanout's own HTTP server behind signed, expiring URLs
//! (`{public_url}/images/<key>.png?exp=<unix>&sig=<hex>`).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use url::Url;

use super::config::StorageConfig;
use super::signing::{Rejected, Signer};
use super::{content_key, ImageStore, StorageError, Stored};
use crate::check::CheckRow;
use crate::clock::unix_now;

/// The purpose signed into image URLs.
pub const PURPOSE: &str = "image";

#[derive(Clone)]
pub struct InternalStore {
    dir: PathBuf,
    signer: Signer,
    public_url: Url,
    url_ttl: Duration,
    retention: Duration,
}

/// A content key is 64 lowercase hex digits: nothing else can name a file,
/// so `..`, slashes and other tricks never reach the file system.
pub fn valid_key(key: &str) -> bool {
    key.len() == 64
        && key
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl InternalStore {
    pub fn new(storage: &StorageConfig, public_url: Option<&Url>) -> Result<Self, StorageError> {
        let signing_key = storage
            .signing_key
            .clone()
            .ok_or_else(|| StorageError::new("storage.signing_key is required"))?;
        let public_url = public_url
            .cloned()
            .ok_or_else(|| StorageError::new("http.public_url is required for internal storage"))?;
        Ok(Self {
            dir: storage.dir.clone(),
            signer: Signer::new(signing_key),
            public_url,
            url_ttl: storage.url_ttl,
            retention: storage.retention,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.png"))
    }

    /// A signed URL for `key`, valid for `url_ttl` from now.
    pub fn url_for(&self, key: &str) -> String {
        let expires = unix_now() + self.url_ttl.as_secs().max(1);
        let sig = self.signer.sign(PURPOSE, key, expires);
        let base = self.public_url.as_str().trim_end_matches('/');
        format!("{base}/images/{key}.png?exp={expires}&sig={sig}")
    }

    /// The file behind a request, if its signature holds and it exists.
    pub fn open(&self, key: &str, expires: u64, sig: &str) -> Result<PathBuf, Refusal> {
        if !valid_key(key) {
            return Err(Refusal::NotFound);
        }
        self.signer
            .verify(PURPOSE, key, expires, sig, unix_now())
            .map_err(Refusal::Forbidden)?;
        let path = self.path(key);
        if path.is_file() {
            Ok(path)
        } else {
            Err(Refusal::NotFound)
        }
    }

    /// Remove files older than `retention`; returns how many went.
    pub fn sweep(&self) -> std::io::Result<usize> {
        let cutoff = SystemTime::now() - self.retention;
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let is_ours = name
                .to_str()
                .and_then(|n| n.strip_suffix(".png"))
                .is_some_and(valid_key);
            if is_ours && entry.metadata()?.modified()? < cutoff {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Why an image request is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    Forbidden(Rejected),
    NotFound,
}

impl ImageStore for InternalStore {
    async fn put(&self, png: &[u8]) -> Result<Stored, StorageError> {
        let key = content_key(png);
        let path = self.path(&key);
        if !path.is_file() {
            crate::outbox::write_whole(&path, png)
                .map_err(|e| StorageError::new(format!("cannot write {}: {e}", path.display())))?;
        }
        Ok(Stored {
            url: self.url_for(&key),
            key,
        })
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        if !valid_key(key) {
            return Err(StorageError::new(format!("{key:?} is not an image key")));
        }
        let path = self.path(key);
        tokio::fs::read(&path)
            .await
            .map_err(|e| StorageError::new(format!("cannot read {}: {e}", path.display())))
    }

    async fn check(&self) -> CheckRow {
        let component = "storage internal";
        let target = self.dir.display().to_string();
        let probe = format!("fanout check {}", unix_now()).into_bytes();
        let stored = match self.put(&probe).await {
            Ok(stored) => stored,
            Err(e) => {
                return CheckRow::fail(
                    component,
                    target,
                    e.message,
                    "create [storage] dir and let fanout's user write it",
                )
            }
        };
        let fetched = reqwest::get(&stored.url).await;
        let _ = std::fs::remove_file(self.path(&stored.key));
        let shown = format!("{}images/…", self.public_url);
        match fetched {
            Ok(r) if r.status().is_success() => match r.bytes().await {
                Ok(body) if body.as_ref() == probe.as_slice() => CheckRow::ok(
                    component,
                    target,
                    format!("writable; signed URL round-trips via {shown}"),
                ),
                _ => CheckRow::fail(
                    component,
                    target,
                    "the signed URL served other bytes",
                    "is http.public_url pointing at this fanout?",
                ),
            },
            Ok(r) => CheckRow::fail(
                component,
                target,
                format!("the signed URL answered {}", r.status()),
                "is http.public_url pointing at this fanout, with the same signing_key?",
            ),
            Err(e) => CheckRow::fail(
                component,
                target,
                format!("cannot fetch {shown}: {}", e.without_url()),
                "start `fanout serve` (or the worker) and make http.public_url reach it",
            ),
        }
    }
}
