//! The negative list: images an analyst marked as false positives, by the SHA-256 of their
//! bytes, so that the same image never alerts again wherever it is posted next.
//!
//! The console keeps the list in its database and writes it here, one hex digest per line,
//! atomically; every matcher reads the file and picks up a new version within
//! [`RECHECK`], so the list reaches matchers on other machines through the shared data dir.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

pub const NEGATIVES_FILE: &str = "negatives.txt";

/// How often a matcher looks for a new version of the file.
pub const RECHECK: Duration = Duration::from_secs(2);

/// Writes the whole list (replacing the file atomically).
pub fn write(data_dir: &Path, sha256s: &[String]) -> Result<(), datadir::DataDirError> {
    let mut body = String::with_capacity(sha256s.len() * 65);
    for s in sha256s {
        body.push_str(s);
        body.push('\n');
    }
    datadir::replace(&data_dir.join(NEGATIVES_FILE), body.as_bytes())
}

/// The list as a matcher reads it: re-read when the file changes.
pub struct NegativeList {
    path: PathBuf,
    state: Mutex<Loaded>,
}

#[derive(Default)]
struct Loaded {
    checked: Option<Instant>,
    modified: Option<SystemTime>,
    digests: HashSet<String>,
}

impl NegativeList {
    pub fn new(data_dir: &Path) -> NegativeList {
        NegativeList {
            path: data_dir.join(NEGATIVES_FILE),
            state: Mutex::new(Loaded::default()),
        }
    }

    /// Whether the image with this SHA-256 (hex) is on the list.
    pub fn contains(&self, sha256: &str) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.checked.is_none_or(|t| t.elapsed() >= RECHECK) {
            s.checked = Some(Instant::now());
            let modified = std::fs::metadata(&self.path)
                .and_then(|m| m.modified())
                .ok();
            if modified != s.modified {
                s.modified = modified;
                s.digests = std::fs::read_to_string(&self.path)
                    .unwrap_or_default()
                    .lines()
                    .map(|l| l.trim().to_ascii_lowercase())
                    .filter(|l| l.len() == 64 && l.bytes().all(|b| b.is_ascii_hexdigit()))
                    .collect();
            }
        }
        s.digests.contains(&sha256.to_ascii_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_list_is_read_and_followed() {
        let dir = tempfile::tempdir().unwrap();
        let list = NegativeList::new(dir.path());
        let a = "ab".repeat(32);
        assert!(!list.contains(&a), "no file: nothing listed");
        write(dir.path(), &[a.clone(), "junk".into()]).unwrap();
        // A fresh reader sees it at once; a running one within RECHECK.
        assert!(NegativeList::new(dir.path()).contains(&a.to_uppercase()));
        std::thread::sleep(RECHECK + Duration::from_millis(50));
        assert!(list.contains(&a));
        assert!(!list.contains("junk"));
    }
}
