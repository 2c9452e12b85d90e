//! The text watchlist: stolen identifiers (plate numbers, document numbers) kept only as keyed
//! hashes.
//!
//! Each identifier is normalised (uppercase, letters and digits only, so `kx7 4821` and
//! `KX7-4821` are one identifier) and stored as HMAC-SHA256 under a secret key that lives in
//! the data dir. Neither the watchlist file nor a copy of the index reveals the identifiers, and
//! without the key they cannot be brute-forced offline.
//!
//! Scanning a page hashes each run of 1–3 adjacent alphanumeric tokens whose normalised length
//! fits an identifier and that contains a digit, and looks it up.
//!
//! The key is created once, atomically (a complete temp file linked into place): two roles
//! starting together end with the same key, and a crash mid-write never leaves a short one.
//! One writer at a time: [`Watchlist::open_writer`] holds the watchlist's writer lock until
//! dropped, and a [`Watchlist::save`] without it takes the lock for the write.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

pub const WATCHLIST_FILE: &str = "watchlist.json";
pub const KEY_FILE: &str = "watchlist.key";
const FORMAT: &str = "leakwatch-watchlist";
const VERSION: u32 = 1;
const MIN_LEN: usize = 5;
const MAX_LEN: usize = 20;

/// What [`Watchlist::import_text`] did.
#[derive(Debug, Default)]
pub struct WatchlistImport {
    pub added: usize,
    pub present: usize,
    /// Rejected lines (1-based) and why.
    pub rejected: Vec<(usize, WatchlistError)>,
}

#[derive(Debug, thiserror::Error)]
pub enum WatchlistError {
    #[error("cannot access {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("watchlist {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("identifier {0:?} is not {MIN_LEN}-{MAX_LEN} letters and digits")]
    BadIdentifier(String),
    /// Another process writes the watchlist, or the data dir refused us.
    #[error(transparent)]
    DataDir(#[from] datadir::DataDirError),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub label: String,
    pub hmac: String,
}

#[derive(Serialize, Deserialize)]
struct WatchlistFile {
    format: String,
    version: u32,
    entries: Vec<Entry>,
}

/// Keyed hashes of the identifiers to watch for.
pub struct Watchlist {
    dir: PathBuf,
    key: Vec<u8>,
    entries: Vec<Entry>,
    by_hmac: HashMap<String, usize>,
    /// Held by a watchlist opened for writing.
    lock: Option<datadir::WriterLock>,
}

impl Watchlist {
    /// Opens the watchlist for an import: takes its writer lock first (refused while another
    /// process writes it) and keeps it until dropped.
    pub fn open_writer(data_dir: &Path) -> Result<Watchlist, WatchlistError> {
        let lock = datadir::WriterLock::acquire(&data_dir.join(WATCHLIST_FILE), "watchlist")?;
        let mut wl = Watchlist::open(data_dir)?;
        wl.lock = Some(lock);
        Ok(wl)
    }

    /// Opens the watchlist in `data_dir`, creating the key on first use.
    pub fn open(data_dir: &Path) -> Result<Watchlist, WatchlistError> {
        let key = load_or_create_key(&data_dir.join(KEY_FILE))?;
        let path = data_dir.join(WATCHLIST_FILE);
        let mut wl = Watchlist {
            dir: data_dir.to_path_buf(),
            key,
            entries: Vec::new(),
            by_hmac: HashMap::new(),
            lock: None,
        };
        match std::fs::read(&path) {
            Ok(bytes) => {
                let file: WatchlistFile =
                    serde_json::from_slice(&bytes).map_err(|e| WatchlistError::Corrupt {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                if file.format != FORMAT || file.version != VERSION {
                    return Err(WatchlistError::Corrupt {
                        path,
                        reason: format!("unknown format {} v{}", file.format, file.version),
                    });
                }
                for e in file.entries {
                    wl.push(e);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(WatchlistError::Io { path, source }),
        }
        Ok(wl)
    }

    fn push(&mut self, e: Entry) -> bool {
        if self.by_hmac.contains_key(&e.hmac) {
            return false;
        }
        self.by_hmac.insert(e.hmac.clone(), self.entries.len());
        self.entries.push(e);
        true
    }

    /// Adds an identifier (kept only as its keyed hash). Returns whether it was new.
    pub fn add(&mut self, identifier: &str, label: Option<&str>) -> Result<bool, WatchlistError> {
        let norm = normalize(identifier);
        if norm.len() < MIN_LEN || norm.len() > MAX_LEN {
            return Err(WatchlistError::BadIdentifier(identifier.to_string()));
        }
        let hmac = self.keyed_hash(&norm);
        let label = label
            .map(str::to_string)
            .unwrap_or_else(|| format!("identifier-{}", &hmac[..12]));
        Ok(self.push(Entry { label, hmac }))
    }

    /// Adds the identifiers of a watchlist file: one per line, optionally
    /// `LABEL<TAB>IDENTIFIER`; `#` starts a comment line.
    pub fn import_text(&mut self, text: &str) -> WatchlistImport {
        let mut out = WatchlistImport::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (label, ident) = match line.split_once('\t') {
                Some((l, i)) => (Some(l.trim()), i.trim()),
                None => (None, line),
            };
            match self.add(ident, label) {
                Ok(true) => out.added += 1,
                Ok(false) => out.present += 1,
                Err(e) => out.rejected.push((n + 1, e)),
            }
        }
        out
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Writes the watchlist atomically (temp file, fsync, rename, fsync of the directory).
    pub fn save(&self) -> Result<(), WatchlistError> {
        let path = self.dir.join(WATCHLIST_FILE);
        let _transient = match self.lock {
            Some(_) => None,
            None => Some(datadir::WriterLock::acquire(&path, "watchlist")?),
        };
        let file = WatchlistFile {
            format: FORMAT.into(),
            version: VERSION,
            entries: self.entries.clone(),
        };
        let bytes = serde_json::to_vec(&file).map_err(|e| WatchlistError::Io {
            path: path.clone(),
            source: e.into(),
        })?;
        datadir::replace(&path, &bytes)?;
        Ok(())
    }

    /// Labels of the watched identifiers found in `text`, each once, in order of appearance.
    pub fn scan(&self, text: &str) -> Vec<String> {
        if self.entries.is_empty() {
            return Vec::new();
        }
        let tokens: Vec<String> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|t| !t.is_empty() && t.len() <= MAX_LEN)
            .map(normalize)
            .collect();
        let mut found = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for i in 0..tokens.len() {
            let mut cand = String::new();
            for tok in tokens.iter().skip(i).take(3) {
                cand.push_str(tok);
                if cand.len() > MAX_LEN {
                    break;
                }
                if cand.len() >= MIN_LEN && cand.bytes().any(|b| b.is_ascii_digit()) {
                    if let Some(&idx) = self.by_hmac.get(&self.keyed_hash(&cand)) {
                        if seen.insert(idx) {
                            found.push(self.entries[idx].label.clone());
                        }
                    }
                }
            }
        }
        found
    }

    fn keyed_hash(&self, normalized: &str) -> String {
        // HMAC accepts keys of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(normalized.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// Uppercase letters and digits only.
pub fn normalize(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .collect()
}

/// The key at `path`, created once and atomically on first use.
fn load_or_create_key(path: &Path) -> Result<Vec<u8>, WatchlistError> {
    let io = |source| WatchlistError::Io {
        path: path.to_path_buf(),
        source,
    };
    let key = match std::fs::read(path) {
        Ok(k) => k,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut fresh = vec![0u8; 32];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| f.read_exact(&mut fresh))
                .map_err(io)?;
            // Whoever links its key into place first wins; a racer reads the winner's.
            datadir::create_once(path, &fresh)?
        }
        Err(e) => return Err(io(e)),
    };
    if key.len() < 32 {
        return Err(WatchlistError::Corrupt {
            path: path.to_path_buf(),
            reason: "key shorter than 32 bytes".into(),
        });
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_identifiers_however_written_and_stores_no_plaintext() {
        let dir = tempfile::tempdir().unwrap();
        let mut wl = Watchlist::open(dir.path()).unwrap();
        assert!(wl.add("KX7-4821", Some("plate-1")).unwrap());
        assert!(!wl.add("kx7 4821", None).unwrap());
        wl.add("P88213045", None).unwrap();
        assert!(wl.add("ab", None).is_err());
        wl.save().unwrap();
        let stored = std::fs::read_to_string(dir.path().join(WATCHLIST_FILE)).unwrap();
        assert!(!stored.contains("4821") && !stored.contains("88213045"));

        let wl = Watchlist::open(dir.path()).unwrap();
        let hits = wl.scan("dump: kx7 4821, doc p88213045; kx7-4821 again; KX7-4822 no");
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0], "plate-1");
        assert!(wl.scan("KX7-4822 and P88213046").is_empty());
    }

    #[test]
    fn another_key_gives_other_hashes() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let mut wa = Watchlist::open(a.path()).unwrap();
        let mut wb = Watchlist::open(b.path()).unwrap();
        wa.add("KX74821", None).unwrap();
        wb.add("KX74821", None).unwrap();
        assert_ne!(wa.entries[0].hmac, wb.entries[0].hmac);
    }

    #[test]
    fn racing_opens_on_a_fresh_data_dir_share_one_key() {
        for round in 0..10 {
            let dir = tempfile::tempdir().unwrap();
            let barrier = std::sync::Barrier::new(6);
            let hashes: Vec<String> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..6)
                    .map(|_| {
                        s.spawn(|| {
                            barrier.wait();
                            let mut wl = Watchlist::open(dir.path()).unwrap();
                            wl.add("KX74821", None).unwrap();
                            wl.entries[0].hmac.clone()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert!(
                hashes.iter().all(|h| *h == hashes[0]),
                "round {round}: two keys were used: {hashes:?}"
            );
            let key = std::fs::read(dir.path().join(KEY_FILE)).unwrap();
            assert_eq!(key.len(), 32);
        }
    }

    #[test]
    fn a_second_watchlist_writer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = Watchlist::open_writer(dir.path()).unwrap();
        first.add("KX74821", None).unwrap();
        let msg = Watchlist::open_writer(dir.path())
            .err()
            .unwrap()
            .to_string();
        assert!(
            msg.contains("watchlist") && msg.contains("in use by another writer"),
            "{msg}"
        );
        // A save from a reader's handle is refused too, while the writer holds the lock.
        let reader = Watchlist::open(dir.path()).unwrap();
        assert!(reader.save().is_err());
        first.save().unwrap();
        drop(first);
        assert_eq!(Watchlist::open(dir.path()).unwrap().len(), 1);
    }
}
