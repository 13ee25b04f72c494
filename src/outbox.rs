//! The outbox: instead of sending, each channel writes exactly what it
//! would send, as `DIR/<job id>/<n>-<destination>.<ext>`, charts beside it
//! as `<n>-<destination>-chart<i>.png`.
//!
//! Used by `fanout send --outbox` and by the embedded default, so a
//! newcomer (or a template author) sees the real message with no server.
//! Files are written whole (temp file + rename): a reader never sees half.

use std::io;
use std::path::{Path, PathBuf};

use crate::delivery::Delivery;

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

    /// Where `delivery`'s file ending in `suffix` (`.eml`, `-chart0.png`) goes. Job ids and
    /// destination names are restricted to path-safe characters at
    /// validation, so neither can climb out of the outbox.
    pub fn path(&self, delivery: &Delivery, suffix: &str) -> PathBuf {
        self.dir.join(&delivery.job.id).join(format!(
            "{}-{}{suffix}",
            delivery.seq,
            delivery.destination()
        ))
    }

    /// Write one file of `delivery`, whole, and return its path.
    pub fn write(&self, delivery: &Delivery, suffix: &str, bytes: &[u8]) -> io::Result<PathBuf> {
        let path = self.path(delivery, suffix);
        write_whole(&path, bytes)?;
        Ok(path)
    }

    /// Write the delivery's chart PNGs beside its message, as
    /// `<n>-<destination>-chart<i>.png`.
    pub fn write_charts(&self, delivery: &Delivery) -> io::Result<()> {
        for (i, chart) in delivery.charts.iter().enumerate() {
            if let Some(png) = &chart.png {
                self.write(delivery, &format!("-chart{i}.png"), png)?;
            }
        }
        Ok(())
    }

    /// Check the outbox can be written (for `fanout check`).
    pub fn probe(&self) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let probe = self.dir.join(format!(".probe-{}", std::process::id()));
        std::fs::write(&probe, b"ok")?;
        std::fs::remove_file(probe)
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
