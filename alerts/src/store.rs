//! The alert store: every alert ever raised, once.
//!
//! An append-only JSON-lines file in the data dir. Each alert is written and fsynced before
//! its bus message is acked; ids are content hashes, so an alert raised again by a re-crawl or
//! a redelivery is recognised and skipped. A torn last line (crash mid-append) is ignored on
//! load and the file is repaired on the next append.
//!
//! One writer at a time: [`AlertStore::open`] takes the store's writer lock, so a second
//! indexer, or a `retrohunt` without `--amqp` beside a running indexer, is refused with a
//! message naming the store and its holder. Readers ([`load`]) take no lock.

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use schema::Alert;

use crate::StoreError;

pub const ALERTS_FILE: &str = "alerts.jsonl";

/// Append-only, deduplicated alert log.
pub struct AlertStore {
    path: PathBuf,
    ids: HashSet<String>,
    file: std::fs::File,
    _lock: datadir::WriterLock,
}

impl AlertStore {
    /// Opens the store for writing; fails if another writer holds it.
    pub fn open(data_dir: &Path) -> Result<AlertStore, StoreError> {
        let path = data_dir.join(ALERTS_FILE);
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        datadir::create_private_dir_all(data_dir).map_err(io)?;
        let lock = datadir::WriterLock::acquire(&path, "alert store")?;
        let ids = load(&path)?.into_iter().map(|a| a.id).collect();
        let existed = path.exists();
        let mut opts = std::fs::OpenOptions::new();
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut file = opts
            .create(true)
            .append(true)
            .read(true)
            .open(&path)
            .map_err(io)?;
        if !existed {
            datadir::sync_dir(data_dir).map_err(io)?;
        }
        // Terminate a torn last line so the next alert starts on its own line.
        let len = file.metadata().map_err(io)?.len();
        if len > 0 {
            let bytes = std::fs::read(&path).map_err(io)?;
            if bytes.last() != Some(&b'\n') {
                file.write_all(b"\n").map_err(io)?;
            }
        }
        Ok(AlertStore {
            path,
            ids,
            file,
            _lock: lock,
        })
    }

    /// Stores the alert unless its id is known. Returns whether it was new.
    pub fn insert(&mut self, alert: &Alert) -> Result<bool, StoreError> {
        if self.ids.contains(&alert.id) {
            return Ok(false);
        }
        let io = |source| StoreError::Io {
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_vec(alert).map_err(|e| io(e.into()))?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.ids.insert(alert.id.clone());
        Ok(true)
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Reads every stored alert, first seen first. Safe while a writer appends.
pub fn load(path: &Path) -> Result<Vec<Alert>, StoreError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(StoreError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for line in std::io::BufReader::new(file).split(b'\n') {
        let line = line.map_err(|source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Alert>(&line) {
            Ok(a) if seen.insert(a.id.clone()) => out.push(a),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "skipping unreadable alert line")
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use schema::AlertKind;

    fn alert(url: &str) -> Alert {
        Alert {
            id: Alert::id_for(AlertKind::Image, "stolen-1", url),
            kind: AlertKind::Image,
            url: url.into(),
            page_url: None,
            label: "stolen-1".into(),
            distance: 3,
            algorithm: "pdq+grid".into(),
            detected_at: "2026-01-01T00:00:00Z".into(),
            page_fetched_at: None,
            listed_at: None,
            context: Vec::new(),
            identifier: None,
        }
    }

    #[test]
    fn dedupes_across_reopen_and_survives_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = AlertStore::open(dir.path()).unwrap();
        assert!(s.insert(&alert("http://x/1")).unwrap());
        assert!(!s.insert(&alert("http://x/1")).unwrap());
        drop(s);
        let path = dir.path().join(ALERTS_FILE);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"id\":\"torn").unwrap();
        drop(f);
        let mut s = AlertStore::open(dir.path()).unwrap();
        assert!(!s.insert(&alert("http://x/1")).unwrap());
        assert!(s.insert(&alert("http://x/2")).unwrap());
        let all = load(&path).unwrap();
        assert_eq!(
            all.iter().map(|a| a.url.as_str()).collect::<Vec<_>>(),
            ["http://x/1", "http://x/2"]
        );
    }

    #[test]
    fn a_second_writer_is_refused_while_the_first_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let first = AlertStore::open(dir.path()).unwrap();
        let err = AlertStore::open(dir.path())
            .err()
            .expect("a second writer must be refused");
        let msg = err.to_string();
        assert!(msg.contains("alert store"), "{msg}");
        assert!(msg.contains(ALERTS_FILE), "{msg}");
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        drop(first);
        AlertStore::open(dir.path()).unwrap();
    }
}
