//! The outbox: instead of sending, each channel writes exactly what it
//! would send, as `DIR/<job id>/<n>-<destination>.<ext>`.
//!
//! Used by `fanout send --outbox` and by the embedded default, so a
//! newcomer (or a template author) sees the real message with no server.
//! Files are written whole (temp file + rename): a reader never sees half.

use std::io;
use std::path::{Path, PathBuf};

use crate::deliver::Delivery;

#[derive(Clone, Debug)]
pub struct Outbox {
    dir: PathBuf,
}

impl Outbox {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where `delivery`'s file with extension `ext` goes. Job ids and
    /// destination names are restricted to path-safe characters at
    /// validation, so neither can climb out of the outbox.
    pub fn path(&self, delivery: &Delivery, ext: &str) -> PathBuf {
        self.dir.join(&delivery.job.id).join(format!(
            "{}-{}.{ext}",
            delivery.seq,
            delivery.destination()
        ))
    }

    /// Write one file of `delivery`, whole, and return its path.
    pub fn write(&self, delivery: &Delivery, ext: &str, bytes: &[u8]) -> io::Result<PathBuf> {
        let path = self.path(delivery, ext);
        write_whole(&path, bytes)?;
        Ok(path)
    }

    /// Check the outbox can be written (for `fanout check`).
    pub fn probe(&self) -> io::Result<()> {
        crate::check::probe_dir(&self.dir)
    }
}

/// Write `bytes` to `path` through a temporary file in the same folder.
pub fn write_whole(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), fastrand::u64(..)));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
