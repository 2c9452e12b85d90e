//! The text watchlist: stolen identifiers (plate and document numbers, e-mail addresses, names,
//! terms) kept only as keyed hashes.
//!
//! Each identifier has a kind ([`crate::identifiers::Kind`]) that fixes its canonical form
//! (`kx7 4821`, `KX7-4821` and `КХ7-482I` are one plate) and is stored as HMAC-SHA256 of that
//! form under a secret key. Neither the watchlist file nor a copy of the index reveals the
//! identifiers, and without the key they cannot be brute-forced offline. The key belongs
//! outside the data dir: `LEAKWATCH_WATCHLIST_KEY_FILE` names a key file (a mounted secret),
//! `LEAKWATCH_WATCHLIST_KEY` holds the key itself (64 hex digits); without either, a key is
//! made once in the data dir.
//!
//! [`Watchlist::mask`] finds every spelling of a watched identifier in a text and replaces it
//! by `[kind-N]` (N: the entry's number): the indexer stores only masked text, and a text
//! alert carries the kind, position and a masked value ([`Hit`]), never the value.
//!
//! The key is created once, atomically (a complete temp file linked into place): two roles
//! starting together end with the same key, and a crash mid-write never leaves a short one.
//! One writer at a time: [`Watchlist::open_writer`] holds the watchlist's writer lock until
//! dropped, and a [`Watchlist::save`] without it takes the lock for the write.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::identifiers::{self, Class, Kind};

pub const WATCHLIST_FILE: &str = "watchlist.json";
pub const KEY_FILE: &str = "watchlist.key";
/// A key file outside the data dir (a mounted secret).
pub const KEY_FILE_ENV: &str = "LEAKWATCH_WATCHLIST_KEY_FILE";
/// The key itself, 64 hex digits.
pub const KEY_ENV: &str = "LEAKWATCH_WATCHLIST_KEY";
const FORMAT: &str = "leakwatch-watchlist";
/// Version 2 added kinds and folded canonical forms; version 1 entries (codes hashed without
/// folding) are still found.
const VERSION: u32 = 2;
/// Tokens of one text looked at (a page's text is bounded before this).
const MAX_TOKENS: usize = 1_000_000;

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
    /// The value itself is never part of the message: it is a stolen identifier.
    #[error("not a {kind}: {why}", kind = kind.as_str())]
    BadIdentifier { kind: Kind, why: &'static str },
    #[error("unknown kind {0:?} (plate, document, email, name, term)")]
    BadKind(String),
    #[error("{KEY_ENV} must be 64 hex digits")]
    BadKeyEnv,
    #[error(
        "watchlist {0} was made with another key, or its key is elsewhere: give the key it \
         was imported with ({KEY_FILE_ENV} or {KEY_ENV})"
    )]
    WrongKey(PathBuf),
    /// Another process writes the watchlist, or the data dir refused us.
    #[error(transparent)]
    DataDir(#[from] datadir::DataDirError),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub label: String,
    pub hmac: String,
    /// Missing in version 1 files: those entries are codes hashed unfolded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
}

impl Entry {
    pub fn kind(&self) -> Kind {
        self.kind.unwrap_or(Kind::Plate)
    }
}

#[derive(Serialize, Deserialize)]
struct WatchlistFile {
    format: String,
    version: u32,
    /// HMAC of a constant under the key: a watchlist opened with another key is refused
    /// instead of silently matching nothing (files before it have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_check: Option<String>,
    entries: Vec<Entry>,
}

const KEY_CHECK: &[u8] = b"leakwatch watchlist key check";

/// A watched identifier found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Index of the entry in the watchlist (its number is this plus one).
    pub entry: usize,
    pub kind: Kind,
    pub label: String,
    /// Byte range of the spelling in the text.
    pub start: usize,
    pub end: usize,
    /// The value with most of it hidden (`KX*****21`).
    pub masked: String,
    /// The spelling stands on its own. A code that goes on (`KX7-4821-9`, a spaced-out
    /// spelling followed by more single characters) is another code: it raises no alert, but
    /// is masked all the same, since it holds the watched one.
    pub whole: bool,
}

/// Keyed hashes of the identifiers to watch for.
pub struct Watchlist {
    dir: PathBuf,
    mac: Hmac<Sha256>,
    entries: Vec<Entry>,
    by_hmac: HashMap<String, usize>,
    /// Canonical lengths (chars) of watched codes, word counts of watched words.
    code_lengths: HashSet<usize>,
    word_counts: HashSet<usize>,
    emails: bool,
    legacy: bool,
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

    /// Opens the watchlist in `data_dir` with the key named by the environment, or the data
    /// dir's own key (created on first use).
    pub fn open(data_dir: &Path) -> Result<Watchlist, WatchlistError> {
        let key = match (std::env::var_os(KEY_ENV), std::env::var_os(KEY_FILE_ENV)) {
            (Some(hexkey), _) => hex::decode(hexkey.to_string_lossy().trim())
                .ok()
                .filter(|k| k.len() == 32)
                .ok_or(WatchlistError::BadKeyEnv)?,
            (None, Some(file)) => key_of(data_dir, Path::new(&file))?,
            (None, None) => key_of(data_dir, &data_dir.join(KEY_FILE))?,
        };
        Watchlist::open_with_key(data_dir, &key)
    }

    /// How many identifiers the watchlist in `data_dir` holds, read without its key (the
    /// console counts coverage against it and is never given the key).
    pub fn count_in(data_dir: &Path) -> Result<usize, WatchlistError> {
        let path = data_dir.join(WATCHLIST_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<WatchlistFile>(&bytes)
                .map(|f| f.entries.len())
                .map_err(|e| WatchlistError::Corrupt {
                    path,
                    reason: e.to_string(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(source) => Err(WatchlistError::Io { path, source }),
        }
    }

    /// Opens the watchlist in `data_dir` under `key`.
    pub fn open_with_key(data_dir: &Path, key: &[u8]) -> Result<Watchlist, WatchlistError> {
        let path = data_dir.join(WATCHLIST_FILE);
        let mut wl = Watchlist {
            dir: data_dir.to_path_buf(),
            // HMAC accepts keys of any length.
            mac: <Hmac<Sha256> as Mac>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("HMAC takes any key length")),
            entries: Vec::new(),
            by_hmac: HashMap::new(),
            code_lengths: HashSet::new(),
            word_counts: HashSet::new(),
            emails: false,
            legacy: false,
            lock: None,
        };
        match std::fs::read(&path) {
            Ok(bytes) => {
                let file: WatchlistFile =
                    serde_json::from_slice(&bytes).map_err(|e| WatchlistError::Corrupt {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                if file.format != FORMAT || !(1..=VERSION).contains(&file.version) {
                    return Err(WatchlistError::Corrupt {
                        path,
                        reason: format!("unknown format {} v{}", file.format, file.version),
                    });
                }
                if file.key_check.is_some_and(|c| c != wl.key_check()) {
                    return Err(WatchlistError::WrongKey(path));
                }
                for e in file.entries {
                    wl.push(e, None);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(WatchlistError::Io { path, source }),
        }
        Ok(wl)
    }

    fn push(&mut self, e: Entry, canonical: Option<&str>) -> bool {
        if self.by_hmac.contains_key(&e.hmac) {
            return false;
        }
        match (e.kind, canonical) {
            (None, _) => {
                self.legacy = true;
                self.code_lengths
                    .extend(identifiers::MIN_CODE..=identifiers::MAX_CODE);
            }
            (Some(k), Some(c)) => match k.class() {
                Class::Code => {
                    self.code_lengths.insert(c.chars().count());
                }
                Class::Email => self.emails = true,
                Class::Words => {
                    self.word_counts.insert(c.split(' ').count());
                }
            },
            // Loaded from the file: the canonical length is not kept, look at every one.
            (Some(k), None) => match k.class() {
                Class::Code => self
                    .code_lengths
                    .extend(identifiers::MIN_CODE..=identifiers::MAX_CODE),
                Class::Email => self.emails = true,
                Class::Words => self.word_counts.extend(1..=identifiers::MAX_WORDS),
            },
        }
        self.by_hmac.insert(e.hmac.clone(), self.entries.len());
        self.entries.push(e);
        true
    }

    /// Adds an identifier of `kind` (kept only as its keyed hash). Returns whether it was new.
    pub fn add(
        &mut self,
        identifier: &str,
        kind: Kind,
        label: Option<&str>,
    ) -> Result<bool, WatchlistError> {
        let canonical = kind
            .canonical(identifier)
            .map_err(|why| WatchlistError::BadIdentifier { kind, why })?;
        let hmac = self.keyed_hash(kind.class(), &canonical);
        let label = label
            .map(str::to_string)
            .unwrap_or_else(|| format!("{}-{}", kind.as_str(), &hmac[..12]));
        let entry = Entry {
            label,
            hmac,
            kind: Some(kind),
        };
        Ok(self.push(entry, Some(&canonical)))
    }

    /// Adds the identifiers of a watchlist file, one per line: `[LABEL<TAB>][KIND:]IDENTIFIER`
    /// or `LABEL<TAB>KIND<TAB>IDENTIFIER`, of `default_kind` where no kind is given; `#` starts
    /// a comment line.
    pub fn import_text(&mut self, text: &str, default_kind: Kind) -> WatchlistImport {
        let mut out = WatchlistImport::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let added = parse_line(line, default_kind)
                .and_then(|(label, kind, ident)| self.add(ident, kind, label));
            match added {
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

    pub fn entries(&self) -> &[Entry] {
        &self.entries
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
            key_check: Some(self.key_check()),
            entries: self.entries.clone(),
        };
        let bytes = serde_json::to_vec(&file).map_err(|e| WatchlistError::Io {
            path: path.clone(),
            source: e.into(),
        })?;
        datadir::replace(&path, &bytes)?;
        Ok(())
    }

    /// Labels of the watched identifiers found in `text` on their own, each once, in order of
    /// appearance.
    pub fn scan(&self, text: &str) -> Vec<String> {
        let mut seen = HashSet::new();
        self.find(text)
            .into_iter()
            .filter(|h| h.whole && seen.insert(h.entry))
            .map(|h| h.label)
            .collect()
    }

    /// Every spelling of a watched identifier in `text`, in order of appearance (longest
    /// first at one start); those inside a longer code too (`whole: false`). Two spellings
    /// may overlap (`AB12-3456-789` holding two watched codes that share `3456`).
    pub fn find(&self, text: &str) -> Vec<Hit> {
        if self.entries.is_empty() {
            return Vec::new();
        }
        let mut hits = Vec::new();
        if !self.code_lengths.is_empty() || !self.word_counts.is_empty() {
            let tokens = identifiers::tokens(text, MAX_TOKENS);
            if !self.code_lengths.is_empty() {
                self.find_codes(text, &tokens, &mut hits);
            }
            if !self.word_counts.is_empty() {
                self.find_words(text, &tokens, &mut hits);
            }
        }
        if self.emails {
            for (start, end, canonical) in identifiers::emails(text, MAX_TOKENS) {
                if let Some(&i) = self.by_hmac.get(&self.keyed_hash(Class::Email, &canonical)) {
                    hits.push(self.hit(i, start, end, &canonical, true));
                }
            }
        }
        hits.sort_by_key(|h| (h.start, std::cmp::Reverse(h.end)));
        hits
    }

    /// `text` with every watched identifier replaced by `[kind-N]`, and what was replaced
    /// (positions in `text`). A mask can free a spelling glued to the one it replaced
    /// (`ＫＸ７４８２１j@x.example`: the address goes, the plate stands alone), so masking
    /// repeats until nothing is left to mask.
    pub fn mask(&self, text: &str) -> (String, Vec<Hit>) {
        let hits = self.find(text);
        let mut masked = replace_hits(text, &hits);
        // Each pass removes at least one spelling, and a mask never joins its neighbours
        // (brackets are no separators): the passes end; 64 bounds a pathological text.
        for _ in 0..64 {
            let more = self.find(&masked);
            if more.is_empty() {
                break;
            }
            masked = replace_hits(&masked, &more);
        }
        (masked, hits)
    }

    fn hit(&self, entry: usize, start: usize, end: usize, canonical: &str, whole: bool) -> Hit {
        let e = &self.entries[entry];
        Hit {
            entry,
            kind: e.kind(),
            label: e.label.clone(),
            start,
            end,
            masked: e.kind().masked(canonical),
            whole,
        }
    }

    /// Runs of tokens read as one code (`KX7 4821`, `K X 7 - 4 8 2 1`).
    fn find_codes(&self, text: &str, tokens: &[identifiers::Token], hits: &mut Vec<Hit>) {
        let max_len = self.code_lengths.iter().copied().max().unwrap_or(0);
        for i in 0..tokens.len() {
            let mut folded = String::new();
            let mut raw = String::new();
            for j in i..tokens.len().min(i + identifiers::MAX_CODE) {
                if j > i && !tokens[j].joined {
                    break;
                }
                let piece = &text[tokens[j].start..tokens[j].end];
                folded.push_str(&identifiers::fold_code(piece));
                let len = folded.chars().count();
                if len > max_len {
                    break;
                }
                let watched =
                    self.code_lengths.contains(&len) && folded.bytes().any(|b| b.is_ascii_digit());
                if !watched && !self.legacy {
                    continue;
                }
                let mut found = self
                    .by_hmac
                    .get(&self.keyed_hash(Class::Code, &folded))
                    .copied();
                if found.is_none() && self.legacy {
                    // Version 1 hashed codes unfolded: uppercase letters and digits as written.
                    raw.clear();
                    for t in &tokens[i..=j] {
                        raw.extend(text[t.start..t.end].chars().flat_map(char::to_uppercase));
                    }
                    found = self
                        .by_hmac
                        .get(&self.keyed_hash(Class::Code, &raw))
                        .copied();
                }
                if let Some(e) = found {
                    let whole = identifiers::whole_code(tokens, i, j);
                    hits.push(self.hit(e, tokens[i].start, tokens[j].end, &folded, whole));
                }
            }
        }
    }

    /// Runs of words (names, terms).
    fn find_words(&self, text: &str, tokens: &[identifiers::Token], hits: &mut Vec<Hit>) {
        let most = self.word_counts.iter().copied().max().unwrap_or(0);
        for i in 0..tokens.len() {
            let mut words = String::new();
            for j in i..tokens.len().min(i + most) {
                if j > i {
                    // Words of one name are apart by a little punctuation or space at most.
                    if tokens[j].start - tokens[j - 1].end > 3 {
                        break;
                    }
                    words.push(' ');
                }
                words.extend(
                    text[tokens[j].start..tokens[j].end]
                        .chars()
                        .flat_map(char::to_lowercase),
                );
                if !self.word_counts.contains(&(j - i + 1)) {
                    continue;
                }
                if let Some(&e) = self.by_hmac.get(&self.keyed_hash(Class::Words, &words)) {
                    hits.push(self.hit(e, tokens[i].start, tokens[j].end, &words, true));
                }
            }
        }
    }

    fn key_check(&self) -> String {
        let mut mac = self.mac.clone();
        mac.update(KEY_CHECK);
        hex::encode(mac.finalize().into_bytes())
    }

    fn keyed_hash(&self, class: Class, canonical: &str) -> String {
        let mut mac = self.mac.clone();
        // Codes keep the bare form of version 1; other classes are domain-separated.
        match class {
            Class::Code => {}
            Class::Email => mac.update(b"email\0"),
            Class::Words => mac.update(b"words\0"),
        }
        mac.update(canonical.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// `text` with each hit (`hits` in order of start) replaced by `[kind-N]`; overlapping hits
/// are masked as one span, named by the first.
fn replace_hits(text: &str, hits: &[Hit]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for h in hits {
        if h.end <= at {
            continue;
        }
        if h.start >= at {
            out.push_str(&text[at..h.start]);
            out.push_str(&format!("[{}-{}]", h.kind.as_str(), h.entry + 1));
        }
        at = h.end;
    }
    out.push_str(&text[at..]);
    out
}

/// `(label, kind, identifier)` of one import line.
fn parse_line(
    line: &str,
    default_kind: Kind,
) -> Result<(Option<&str>, Kind, &str), WatchlistError> {
    let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
    let (label, rest) = match fields.as_slice() {
        [ident] => (None, *ident),
        [label, ident] => (Some(*label), *ident),
        [label, kind, ident] => {
            let k = Kind::parse(kind).ok_or_else(|| WatchlistError::BadKind(kind.to_string()))?;
            return Ok((Some(*label).filter(|l| !l.is_empty()), k, ident));
        }
        _ => return Err(WatchlistError::BadKind(line.chars().take(40).collect())),
    };
    let label = label.filter(|l| !l.is_empty());
    match rest.split_once(':') {
        Some((k, ident)) if Kind::parse(k).is_some() => {
            Ok((label, Kind::parse(k).unwrap_or(default_kind), ident.trim()))
        }
        _ => Ok((label, default_kind, rest)),
    }
}

/// The key file at `path` for the watchlist in `data_dir`: made only for a watchlist that
/// has no entries yet. A watchlist whose key is missing was made with a key kept elsewhere;
/// a new key would make it match nothing.
fn key_of(data_dir: &Path, path: &Path) -> Result<Vec<u8>, WatchlistError> {
    let watchlist = data_dir.join(WATCHLIST_FILE);
    if watchlist.exists() && !path.exists() {
        return Err(WatchlistError::WrongKey(watchlist));
    }
    load_or_create_key(path)
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

    fn watching(ids: &[(&str, Kind)]) -> (tempfile::TempDir, Watchlist) {
        let dir = tempfile::tempdir().unwrap();
        let mut wl = Watchlist::open_with_key(dir.path(), &[7u8; 32]).unwrap();
        for (i, (id, kind)) in ids.iter().enumerate() {
            wl.add(id, *kind, Some(&format!("id-{i}"))).unwrap();
        }
        (dir, wl)
    }

    #[test]
    fn spellings_meant_to_dodge_are_found_and_decoys_one_character_off_are_not() {
        let (_d, wl) = watching(&[("KX7-4821", Kind::Plate), ("P1O88213", Kind::Document)]);
        for text in [
            "plate KX7-4821 seen",
            "plate K X 7 - 4 8 2 1 seen",
            "K-X-7-4-8-2-1",
            "KX7 -48 21",
            "kx7.4821",
            "KX7-482I",
            "КХ7-4821",
            "ＫＸ７－４８２１",
            "KX7\u{ad}4821",
            "KX\u{200b}7\u{2212}4821",
            "KX7\u{2011}4821",
            "𝐊𝐗𝟕𝟒𝟖𝟐𝟏",
            "doc P1088213",
            "doc p I 0 8 8 2 1 3",
        ] {
            assert_eq!(wl.find(text).len(), 1, "{text:?} not found");
        }
        for decoy in [
            "KX7-4822",
            "KX7-48210",
            "K X 7 4 8 2 1 0",
            "0 K X 7 4 8 2 1",
            "KX7-4821-9",
            "AKX7-4821",
            "KX7-482",
            "KX7, 4821",
            "P1088214",
        ] {
            assert!(wl.scan(decoy).is_empty(), "decoy {decoy:?} alerted");
        }
    }

    #[test]
    fn overlapping_spellings_both_alert_and_are_masked_as_one() {
        let (_d, wl) = watching(&[("AB12-3456", Kind::Document), ("3456-789X", Kind::Document)]);
        let text = "ref AB12 3456 789X end";
        assert_eq!(wl.scan(text), vec!["id-0", "id-1"]);
        let (masked, _) = wl.mask(text);
        assert_eq!(masked, "ref [document-1] end");
    }

    #[test]
    fn a_code_that_goes_on_raises_nothing_but_is_masked() {
        let (_d, wl) = watching(&[("KX7-4821", Kind::Plate)]);
        for text in [
            "ref KX7-4821-9",
            "ref K X 7 4 8 2 1 0",
            "ref 0 K X 7 4 8 2 1",
        ] {
            assert!(wl.scan(text).is_empty(), "{text:?}");
            let (masked, hits) = wl.mask(text);
            assert_eq!(hits.len(), 1, "{text:?}");
            assert!(!hits[0].whole);
            assert!(masked.contains("[plate-1]"), "{masked}");
        }
    }

    #[test]
    fn masking_leaves_no_spelling_of_the_identifier() {
        let (_d, wl) = watching(&[
            ("KX7-4821", Kind::Plate),
            ("jane.doe@mail.example", Kind::Email),
            ("Jane Q Doe", Kind::Name),
        ]);
        let text = "dump é: K X 7 - 4 8 2 1; kx74821 and Jane.Doe@Mail.example, by jane q. doe!";
        let (masked, hits) = wl.mask(text);
        assert_eq!(hits.len(), 4, "{hits:?}");
        assert_eq!(
            masked,
            "dump é: [plate-1]; [plate-1] and [email-2], by [name-3]!"
        );
        assert_eq!(hits[0].masked, "K*****1");
        assert_eq!(hits[0].kind, Kind::Plate);
        assert_eq!(&text[hits[1].start..hits[1].end], "kx74821");
        assert_eq!(wl.scan(text), vec!["id-0", "id-1", "id-2"]);
    }

    #[test]
    fn import_lines_choose_their_kind() {
        let (_d, mut wl) = watching(&[]);
        let out = wl.import_text(
            "# comment\nKX7-4821\nemail:jd@x.example\nlabel-a\tname\tJane Doe\n\
             label-b\tterm:border cam 7\nbad\tsmell\tx\nname:Jane\n",
            Kind::Plate,
        );
        assert_eq!(out.added, 4, "{:?}", out.rejected);
        assert_eq!(out.rejected.len(), 2);
        let kinds: Vec<Kind> = wl.entries().iter().map(Entry::kind).collect();
        assert_eq!(kinds, [Kind::Plate, Kind::Email, Kind::Name, Kind::Term]);
        assert_eq!(wl.entries()[2].label, "label-a");
        assert_eq!(wl.scan("the Border  Cam 7 feed by jane doe").len(), 2);
    }

    #[test]
    fn a_watchlist_opened_with_another_key_is_refused() {
        let (dir, mut wl) = watching(&[("KX7-4821", Kind::Plate)]);
        wl.save().unwrap();
        let err = Watchlist::open_with_key(dir.path(), &[8u8; 32])
            .err()
            .unwrap();
        assert!(matches!(err, WatchlistError::WrongKey(_)), "{err}");
        assert_eq!(
            Watchlist::open_with_key(dir.path(), &[7u8; 32])
                .unwrap()
                .len(),
            1
        );
        let bad = wl.add("KX7", Kind::Plate, None).err().unwrap().to_string();
        assert!(!bad.contains("KX7"), "the error repeats the value: {bad}");
    }

    #[test]
    fn version_1_files_are_still_found() {
        let dir = tempfile::tempdir().unwrap();
        let key = [9u8; 32];
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
        mac.update(b"AB0I123");
        let hmac = hex::encode(mac.finalize().into_bytes());
        let file = format!(
            r#"{{"format":"leakwatch-watchlist","version":1,"entries":[{{"label":"old","hmac":"{hmac}"}}]}}"#
        );
        std::fs::write(dir.path().join(WATCHLIST_FILE), file).unwrap();
        let wl = Watchlist::open_with_key(dir.path(), &key).unwrap();
        assert_eq!(wl.scan("seen ab0i-123 today"), vec!["old"]);
        assert!(
            wl.scan("seen AB01-123").is_empty(),
            "v1 entries were not folded"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any text, with watched spellings and multi-byte characters mixed in: no panic, and
        /// the masked text holds nothing more to mask.
        #[test]
        fn masking_any_text_is_safe_and_complete(
            pieces in proptest::collection::vec(proptest::prop_oneof![
                "\\PC{0,12}",
                proptest::strategy::Just("KX7-4821".to_string()),
                proptest::strategy::Just("K X 7 - 4 8 2 1".to_string()),
                proptest::strategy::Just("ＫＸ７４８２１".to_string()),
                proptest::strategy::Just("jane doe".to_string()),
                proptest::strategy::Just("j@x.example".to_string()),
                "[ é€😀.-]{0,3}",
            ], 0..40)
        ) {
            let (_d, wl) = watching(&[
                ("KX7-4821", Kind::Plate),
                ("Jane Doe", Kind::Name),
                ("j@x.example", Kind::Email),
            ]);
            let text = pieces.concat();
            let (masked, _) = wl.mask(&text);
            let again = wl.find(&masked);
            proptest::prop_assert!(again.is_empty(), "{masked:?} still holds {again:?}");
        }
    }

    #[test]
    fn scanning_a_large_text_is_bounded() {
        let (_d, wl) = watching(&[("KX7-4821", Kind::Plate), ("Jane Doe", Kind::Name)]);
        let text = "a 1 ".repeat(125_000) + "KX7-4821";
        let t = std::time::Instant::now();
        assert_eq!(wl.find(&text).len(), 1);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(20),
            "{:?}",
            t.elapsed()
        );
    }

    #[test]
    fn finds_identifiers_however_written_and_stores_no_plaintext() {
        let dir = tempfile::tempdir().unwrap();
        let mut wl = Watchlist::open(dir.path()).unwrap();
        assert!(wl.add("KX7-4821", Kind::Plate, Some("plate-1")).unwrap());
        assert!(!wl.add("kx7 4821", Kind::Plate, None).unwrap());
        wl.add("P88213045", Kind::Document, None).unwrap();
        assert!(wl.add("ab", Kind::Plate, None).is_err());
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
        wa.add("KX74821", Kind::Plate, None).unwrap();
        wb.add("KX74821", Kind::Plate, None).unwrap();
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
                            wl.add("KX74821", Kind::Plate, None).unwrap();
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
        first.add("KX74821", Kind::Plate, None).unwrap();
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
