//! Alerts into the console's state: the indexer appends every alert to the data dir's alert
//! log; the console follows that file from where it last read and adds what is new (by id,
//! so several consoles sharing one database add each alert once).
//!
//! A step that fails (the log unreadable, the state refusing the new alerts) says so with a
//! [`FeedError`] and leaves its place unchanged, so the next step tries the same lines again;
//! the console serves what its state holds meanwhile and shows that the feed is behind.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::store::{StateStore, StoreError};

/// Why a step read nothing new into the state.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("alert log {path} unreadable: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("alerts from the alert log not stored: {0}")]
    Store(#[from] StoreError),
}

/// Most bytes read per step: a huge backlog is taken in slices.
const SLICE: u64 = 8 << 20;

/// Where the console is in the alert log.
pub struct AlertFeed {
    path: PathBuf,
    offset: u64,
}

impl AlertFeed {
    pub fn new(data_dir: &Path) -> AlertFeed {
        AlertFeed {
            path: data_dir.join(alerts::ALERTS_FILE),
            offset: 0,
        }
    }

    /// Reads complete new lines and adds their alerts; returns how many were new. A line
    /// that is not an alert is skipped with a warning; a torn last line waits for its end;
    /// no log yet is nothing new.
    pub async fn step(&mut self, store: &StateStore) -> Result<u64, FeedError> {
        let (lines, advanced) = match self.read_new() {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(source) => {
                return Err(FeedError::Read {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        let mut batch = Vec::with_capacity(lines.len());
        for l in lines {
            match serde_json::from_slice::<schema::Alert>(&l) {
                Ok(a) => batch.push(a),
                Err(e) => tracing::warn!(error = %e, "not an alert in the alert log"),
            }
        }
        let added = store.add_alerts(&batch).await?;
        self.offset = advanced;
        Ok(added)
    }

    fn read_new(&self) -> std::io::Result<(Vec<Vec<u8>>, u64)> {
        let mut f = std::fs::File::open(&self.path)?;
        let meta = f.metadata()?;
        if !meta.is_file() {
            return Err(std::io::Error::other("not a regular file"));
        }
        let len = meta.len();
        // A shorter file was replaced: read it from the start.
        let start = if len < self.offset { 0 } else { self.offset };
        if len == start {
            return Ok((Vec::new(), start));
        }
        f.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::new();
        f.take(SLICE.min(len - start)).read_to_end(&mut buf)?;
        let Some(end) = buf.iter().rposition(|&b| b == b'\n') else {
            // No complete line yet; a line longer than a slice is skipped.
            let skip = if buf.len() as u64 == SLICE { SLICE } else { 0 };
            return Ok((Vec::new(), start + skip));
        };
        let lines = buf[..end]
            .split(|&b| b == b'\n')
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .map(<[u8]>::to_vec)
            .collect();
        Ok((lines, start + end as u64 + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[tokio::test]
    async fn new_lines_are_added_once_and_torn_ones_wait() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open(None, dir.path()).await.unwrap();
        let mut feed = AlertFeed::new(dir.path());
        assert_eq!(feed.step(&store).await.unwrap(), 0, "no log yet");
        let a = alerts::image(
            "cam-1",
            "http://x.onion/a.jpg",
            Some("http://x.onion/"),
            3,
            "pdq",
        );
        let b = alerts::image(
            "cam-2",
            "http://x.onion/b.jpg",
            Some("http://x.onion/"),
            3,
            "pdq",
        );
        let line = |a: &schema::Alert| serde_json::to_string(a).unwrap();
        let mut f = std::fs::File::create(dir.path().join(alerts::ALERTS_FILE)).unwrap();
        write!(f, "{}\nnot json\n{}", line(&a), &line(&b)[..10]).unwrap();
        assert_eq!(feed.step(&store).await.unwrap(), 1);
        writeln!(f, "{}", &line(&b)[10..]).unwrap();
        assert_eq!(feed.step(&store).await.unwrap(), 1);
        assert_eq!(feed.step(&store).await.unwrap(), 0);
        // Another console on the same state adds nothing twice.
        assert_eq!(AlertFeed::new(dir.path()).step(&store).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn an_unreadable_log_is_an_error_not_nothing_new() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open(None, dir.path()).await.unwrap();
        std::fs::create_dir(dir.path().join(alerts::ALERTS_FILE)).unwrap();
        let e = AlertFeed::new(dir.path()).step(&store).await.unwrap_err();
        assert!(matches!(e, FeedError::Read { .. }), "{e}");
    }
}
