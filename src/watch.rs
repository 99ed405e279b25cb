//! Noticing that files named in the configuration changed (token files, TLS certificates),
//! by polling their modification times: this works the same for files replaced in place,
//! renamed over, or swapped through the symlinks Kubernetes uses for mounted secrets.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use tokio::time::{Interval, MissedTickBehavior};

/// A set of files and the modification times last seen for them.
pub struct WatchedFiles {
    files: Vec<PathBuf>,
    seen: Vec<Option<SystemTime>>,
}

impl WatchedFiles {
    pub fn new(files: Vec<PathBuf>) -> Self {
        let seen = modified_times(&files);
        Self { files, seen }
    }

    /// True when any file changed (or appeared, or vanished) since last seen; the change is
    /// then taken as seen.
    pub fn changed(&mut self) -> bool {
        let now = modified_times(&self.files);
        if now == self.seen {
            return false;
        }
        self.seen = now;
        true
    }

    /// Watches `files` from now on, as they are now.
    pub fn replace(&mut self, files: Vec<PathBuf>) {
        *self = Self::new(files);
    }

    /// Takes the files as they are now as seen.
    pub fn rescan(&mut self) {
        self.seen = modified_times(&self.files);
    }
}

fn modified_times(files: &[PathBuf]) -> Vec<Option<SystemTime>> {
    files
        .iter()
        .map(|path| {
            std::fs::metadata(path)
                .and_then(|meta| meta.modified())
                .ok()
        })
        .collect()
}

/// A polling clock that, after a slow reload, waits a full period rather than catching up.
pub fn ticker(period: Duration) -> Interval {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticks
}
