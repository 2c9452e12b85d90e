//! The evidence vault: encrypted, rotating files of WARC records under `DATA_DIR/evidence/`.
//!
//! Layout: one directory per UTC day (`evidence/2026-12-07/`), holding files named by their
//! writer (`<unix secs>-<pid>-<random>.lwe`), so several matcher processes sharing a data dir
//! never write the same file. A file starts with a magic line and the key's id (an HMAC of a
//! fixed string under the key, which tells a wrong key from damage); then frames, one per
//! alert:
//!
//! ```text
//! u32 BE  length of the rest of the frame
//! u8      alert id length, then the alert id (ASCII)
//! 24      XChaCha20-Poly1305 nonce (random)
//! ..      ciphertext of the alert's records, each a gzip member; AAD = key id ‖ alert id
//! ```
//!
//! A frame is fsynced before its alert is published. A torn last frame (a crash mid-write)
//! ends the file's reading and is reported; a frame whose tag does not verify is damage or
//! tampering and is an error, never silently skipped. Retention deletes whole days: what was
//! written on day D goes once `retention_days` have passed since D ended.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::warc::Record;
use crate::{EvidenceConfig, EvidenceError};

/// The vault's directory inside the data dir.
pub const EVIDENCE_DIR: &str = "evidence";
/// A key file outside the data dir (a mounted secret).
pub const KEY_FILE_ENV: &str = "LEAKWATCH_EVIDENCE_KEY_FILE";
/// The key itself, 64 hex digits.
pub const KEY_ENV: &str = "LEAKWATCH_EVIDENCE_KEY";

const MAGIC: &[u8; 12] = b"LWEVIDENCE1\n";
const KEY_ID_LEN: usize = 16;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// The largest frame read back: one alert's records (a page or an image, bounded by the
/// crawler's body limits) fit many times over.
const MAX_FRAME: u32 = 512 << 20;
const FILE_SUFFIX: &str = "lwe";

/// The evidence key: 32 secret bytes and the id written into every file.
#[derive(Clone)]
pub struct EvidenceKey {
    key: [u8; 32],
    id: [u8; KEY_ID_LEN],
}

impl std::fmt::Debug for EvidenceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EvidenceKey(id {})", hex::encode(self.id))
    }
}

impl EvidenceKey {
    pub fn from_bytes(key: [u8; 32]) -> EvidenceKey {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(b"leakwatch evidence key id");
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&mac.finalize().into_bytes()[..KEY_ID_LEN]);
        EvidenceKey { key, id }
    }

    /// A fresh random key.
    pub fn generate() -> std::io::Result<EvidenceKey> {
        let mut key = [0u8; 32];
        crate::random_bytes(&mut key)?;
        Ok(EvidenceKey::from_bytes(key))
    }

    /// A key written as 32 raw bytes or 64 hex digits (surrounding whitespace ignored);
    /// `source` names where it came from in the error.
    pub fn parse(bytes: &[u8], source: &str) -> Result<EvidenceKey, EvidenceError> {
        let bad = || EvidenceError::BadKey(source.to_string());
        let text = std::str::from_utf8(bytes).ok().map(str::trim);
        let key: Vec<u8> = match text {
            Some(t) if t.len() == 64 => hex::decode(t).map_err(|_| bad())?,
            // 32 raw bytes, unless they read as a passphrase (guessable against the key id).
            _ if bytes.len() == 32 && !bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ') => {
                bytes.to_vec()
            }
            _ => return Err(bad()),
        };
        let mut k = [0u8; 32];
        k.copy_from_slice(&key);
        Ok(EvidenceKey::from_bytes(k))
    }

    /// The key as 64 hex digits (what `evidence keygen` writes).
    pub fn to_hex(&self) -> String {
        hex::encode(self.key)
    }

    /// The key named by the environment (`LEAKWATCH_EVIDENCE_KEY`, then
    /// `LEAKWATCH_EVIDENCE_KEY_FILE`) or by `[evidence] key_file`; `None` when none is set
    /// (evidence is then not kept). A key file inside `data_dir` is refused.
    pub fn load(
        config: &EvidenceConfig,
        data_dir: &Path,
    ) -> Result<Option<EvidenceKey>, EvidenceError> {
        // An empty variable is an unset one (an optional secret left blank).
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        if let Some(k) = var(KEY_ENV) {
            return EvidenceKey::parse(k.to_string_lossy().as_bytes(), KEY_ENV).map(Some);
        }
        let file = var(KEY_FILE_ENV)
            .map(PathBuf::from)
            .or_else(|| config.key_file.clone());
        let Some(file) = file else {
            return Ok(None);
        };
        let io = |source| EvidenceError::Io {
            path: file.clone(),
            source,
        };
        let bytes = std::fs::read(&file).map_err(io)?;
        let real = file.canonicalize().map_err(io)?;
        if let Ok(data) = data_dir.canonicalize() {
            if real.starts_with(&data) {
                return Err(EvidenceError::KeyInDataDir(file));
            }
        }
        EvidenceKey::parse(&bytes, &file.display().to_string()).map(Some)
    }

    /// Writes a new random key to `path` (owner-only; an existing file is never replaced).
    pub fn create_file(path: &Path) -> Result<EvidenceKey, EvidenceError> {
        let io = |source| EvidenceError::Io {
            path: path.to_path_buf(),
            source,
        };
        let key = EvidenceKey::generate().map_err(io)?;
        let mut opts = std::fs::OpenOptions::new();
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.write(true).create_new(true).open(path).map_err(io)?;
        f.write_all(format!("{}\n", key.to_hex()).as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(io)?;
        Ok(key)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.key).into())
    }

    fn aad(&self, alert_id: &str) -> Vec<u8> {
        let mut aad = self.id.to_vec();
        aad.extend_from_slice(alert_id.as_bytes());
        aad
    }
}

/// What the vault holds for one alert.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Kept {
    pub alert_id: String,
    /// Frames kept (one per process that raised the alert; normally 1).
    pub frames: usize,
    /// Encrypted bytes.
    pub bytes: u64,
    /// The UTC day it was written (the newest, if several).
    pub day: String,
}

/// The file a writer appends to.
struct Current {
    path: PathBuf,
    file: File,
    day: String,
    len: u64,
}

/// An evidence vault in a data dir, for writing and reading.
pub struct Vault {
    dir: PathBuf,
    key: EvidenceKey,
    max_file_bytes: u64,
    current: Option<Current>,
    kept: HashSet<String>,
    unreadable: Vec<EvidenceError>,
}

/// Where one frame lies in a file.
struct FrameAt {
    alert_id: String,
    /// Offset of the nonce.
    offset: u64,
    /// Nonce and ciphertext length.
    len: u64,
}

impl Vault {
    /// Opens the vault in `data_dir` under `key`; the alerts it already keeps are read from
    /// the frames' headers (nothing is decrypted). A file written under another key is an
    /// error.
    pub fn open(
        data_dir: &Path,
        key: EvidenceKey,
        config: &EvidenceConfig,
    ) -> Result<Vault, EvidenceError> {
        let mut vault = Vault {
            dir: data_dir.join(EVIDENCE_DIR),
            key,
            max_file_bytes: config.max_file_mib.max(1) << 20,
            current: None,
            kept: HashSet::new(),
            unreadable: Vec::new(),
        };
        for (_, path) in vault.files()? {
            match vault.frames(&path) {
                Ok(frames) => vault.kept.extend(frames.into_iter().map(|f| f.alert_id)),
                Err(e) => {
                    // Another key's file (before a key rotation) or a damaged one: what it
                    // holds cannot be read, the rest of the vault still works.
                    tracing::warn!(error = %e, "evidence file left unread");
                    vault.unreadable.push(e);
                }
            }
        }
        Ok(vault)
    }

    /// The files [`Vault::open`] could not read (another key, damage), with why.
    pub fn unreadable(&self) -> &[EvidenceError] {
        &self.unreadable
    }

    /// Whether evidence for `alert_id` is kept.
    pub fn has(&self, alert_id: &str) -> bool {
        self.kept.contains(alert_id)
    }

    /// Keeps `records` as the evidence of `alert_id`, durably; `false` (and nothing written)
    /// when that alert's evidence is already kept.
    pub fn keep(&mut self, alert_id: &str, records: &[Record]) -> Result<bool, EvidenceError> {
        if self.kept.contains(alert_id) {
            return Ok(false);
        }
        if alert_id.is_empty() || alert_id.len() > 255 {
            return Err(EvidenceError::BadAlertId(alert_id.to_string()));
        }
        let frame = self.seal(alert_id, records)?;
        let current = self.current_file()?;
        let io = |source| EvidenceError::Io {
            path: current.path.clone(),
            source,
        };
        let written = current
            .file
            .write_all(&frame)
            .and_then(|_| current.file.sync_data());
        if let Err(e) = written {
            // Cut the partial frame off (best effort) and never append to this file again:
            // a later frame behind a torn one would be unreadable.
            let _ = current.file.set_len(current.len);
            let e = io(e);
            self.current = None;
            return Err(e);
        }
        current.len += frame.len() as u64;
        self.kept.insert(alert_id.to_string());
        Ok(true)
    }

    /// `records` as one frame: header, nonce and ciphertext.
    fn seal(&self, alert_id: &str, records: &[Record]) -> Result<Vec<u8>, EvidenceError> {
        let plain: Vec<u8> = records.iter().flat_map(Record::to_gzip).collect();
        let mut nonce = [0u8; NONCE_LEN];
        crate::random_bytes(&mut nonce).map_err(|source| EvidenceError::Io {
            path: PathBuf::from("/dev/urandom"),
            source,
        })?;
        let aad = self.key.aad(alert_id);
        let payload = Payload {
            msg: &plain,
            aad: &aad,
        };
        let sealed = self
            .key
            .cipher()
            .encrypt(XNonce::from_slice(&nonce), payload)
            .map_err(|_| EvidenceError::TooLarge(plain.len()))?;
        let rest = 1 + alert_id.len() + NONCE_LEN + sealed.len();
        if rest > MAX_FRAME as usize {
            return Err(EvidenceError::TooLarge(plain.len()));
        }
        let mut frame = Vec::with_capacity(4 + rest);
        frame.extend_from_slice(&(rest as u32).to_be_bytes());
        frame.push(alert_id.len() as u8);
        frame.extend_from_slice(alert_id.as_bytes());
        frame.extend_from_slice(&nonce);
        frame.extend_from_slice(&sealed);
        Ok(frame)
    }

    /// The file to append to: today's, below the size limit; a new one otherwise.
    fn current_file(&mut self) -> Result<&mut Current, EvidenceError> {
        let today = today();
        let stale = self
            .current
            .as_ref()
            .is_none_or(|c| c.day != today || c.len >= self.max_file_bytes);
        if stale {
            self.current = Some(self.create_file(&today)?);
        }
        Ok(self.current.as_mut().expect("set above"))
    }

    fn create_file(&self, day: &str) -> Result<Current, EvidenceError> {
        let dir = self.dir.join(day);
        let mut tag = [0u8; 4];
        let _ = crate::random_bytes(&mut tag);
        let secs = schema::unix_from_rfc3339(&schema::now_rfc3339()).unwrap_or(0);
        let path = dir.join(format!(
            "{secs}-{}-{}.{FILE_SUFFIX}",
            std::process::id(),
            hex::encode(tag)
        ));
        let io = |source| EvidenceError::Io {
            path: path.clone(),
            source,
        };
        let fresh = !dir.exists();
        datadir::create_private_dir_all(&dir).map_err(io)?;
        if fresh {
            // The new day directory (and a new vault directory) must survive a crash too.
            datadir::sync_dir(&self.dir).map_err(io)?;
            if let Some(data_dir) = self.dir.parent() {
                datadir::sync_dir(data_dir).map_err(io)?;
            }
        }
        let mut opts = std::fs::OpenOptions::new();
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut file = opts.append(true).create_new(true).open(&path).map_err(io)?;
        file.write_all(MAGIC)
            .and_then(|_| file.write_all(&self.key.id))
            .and_then(|_| file.sync_all())
            .and_then(|_| datadir::sync_dir(&dir))
            .map_err(io)?;
        Ok(Current {
            path,
            file,
            day: day.to_string(),
            len: (MAGIC.len() + KEY_ID_LEN) as u64,
        })
    }

    /// Every evidence file with its day, oldest day first.
    fn files(&self) -> Result<Vec<(String, PathBuf)>, EvidenceError> {
        let mut out = Vec::new();
        for (day, dir) in self.days()? {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                // Purged by another process meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(EvidenceError::Io {
                        path: dir.clone(),
                        source,
                    })
                }
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == FILE_SUFFIX))
                .collect();
            files.sort();
            out.extend(files.into_iter().map(|f| (day.clone(), f)));
        }
        Ok(out)
    }

    /// The day directories (`YYYY-MM-DD`), oldest first; anything else is left alone.
    fn days(&self) -> Result<Vec<(String, PathBuf)>, EvidenceError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(EvidenceError::Io {
                    path: self.dir.clone(),
                    source,
                })
            }
        };
        let mut days: Vec<(String, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                day_start(&name).map(|_| (name, e.path()))
            })
            .collect();
        days.sort();
        Ok(days)
    }

    /// The frames of `path`, read from their headers; checks the file's key id.
    fn frames(&self, path: &Path) -> Result<Vec<FrameAt>, EvidenceError> {
        let io = |source| EvidenceError::Io {
            path: path.to_path_buf(),
            source,
        };
        let corrupt = |reason: &str| EvidenceError::Corrupt {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let mut f = File::open(path).map_err(io)?;
        let size = f.metadata().map_err(io)?.len();
        let mut head = [0u8; MAGIC.len() + KEY_ID_LEN];
        if f.read_exact(&mut head).is_err() {
            // Created and never written (a crash at creation): holds nothing.
            return Ok(Vec::new());
        }
        if &head[..MAGIC.len()] != MAGIC {
            return Err(corrupt("not an evidence file"));
        }
        if head[MAGIC.len()..] != self.key.id {
            return Err(EvidenceError::WrongKey(path.to_path_buf()));
        }
        let mut out = Vec::new();
        let mut pos = head.len() as u64;
        while pos < size {
            let mut len = [0u8; 5];
            if size - pos < 5 || f.read_exact(&mut len).is_err() {
                tracing::warn!(path = %path.display(), "torn last evidence frame ignored");
                break;
            }
            let rest = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
            let id_len = len[4] as u64;
            if rest > MAX_FRAME || (rest as u64) < 1 + id_len + (NONCE_LEN + TAG_LEN) as u64 {
                return Err(corrupt("frame length out of bounds"));
            }
            if pos + 4 + rest as u64 > size {
                tracing::warn!(path = %path.display(), "torn last evidence frame ignored");
                break;
            }
            let mut id = vec![0u8; id_len as usize];
            f.read_exact(&mut id).map_err(io)?;
            let alert_id = String::from_utf8(id).map_err(|_| corrupt("alert id not UTF-8"))?;
            let offset = pos + 5 + id_len;
            let len = rest as u64 - 1 - id_len;
            pos = offset + len;
            f.seek(SeekFrom::Start(pos)).map_err(io)?;
            out.push(FrameAt {
                alert_id,
                offset,
                len,
            });
        }
        Ok(out)
    }

    /// The decrypted records kept for `alert_id`: gzip members, one per record, in the order
    /// they were written (a `.warc.gz` as is).
    pub fn records(&self, alert_id: &str) -> Result<Vec<u8>, EvidenceError> {
        let mut out = Vec::new();
        let mut found = false;
        for (_, path) in self.files()? {
            for frame in self.frames(&path).unwrap_or_default() {
                if frame.alert_id != alert_id {
                    continue;
                }
                out.extend(self.open_frame(&path, &frame)?);
                found = true;
            }
        }
        if !found {
            return Err(EvidenceError::NoEvidence(alert_id.to_string()));
        }
        Ok(out)
    }

    fn open_frame(&self, path: &Path, frame: &FrameAt) -> Result<Vec<u8>, EvidenceError> {
        let io = |source| EvidenceError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut f = File::open(path).map_err(io)?;
        f.seek(SeekFrom::Start(frame.offset)).map_err(io)?;
        let mut sealed = vec![0u8; frame.len as usize];
        f.read_exact(&mut sealed).map_err(io)?;
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let aad = self.key.aad(&frame.alert_id);
        self.key
            .cipher()
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map_err(|_| EvidenceError::Corrupt {
                path: path.to_path_buf(),
                reason: format!(
                    "the evidence of alert {} does not verify (damaged or altered)",
                    frame.alert_id
                ),
            })
    }

    /// What the vault keeps, per alert, sorted by alert id.
    pub fn list(&self) -> Result<Vec<Kept>, EvidenceError> {
        let mut by_id: BTreeMap<String, Kept> = BTreeMap::new();
        for (day, path) in self.files()? {
            for frame in self.frames(&path).unwrap_or_default() {
                let k = by_id.entry(frame.alert_id.clone()).or_insert(Kept {
                    alert_id: frame.alert_id,
                    frames: 0,
                    bytes: 0,
                    day: day.clone(),
                });
                k.frames += 1;
                k.bytes += frame.len;
                k.day = day.clone();
            }
        }
        Ok(by_id.into_values().collect())
    }

    /// Deletes the days whose retention has passed at `now` (Unix seconds): a day D goes once
    /// `retention_days` (at least 1) days have passed since D ended. Days are told by their
    /// directory names alone, so unreadable files go too. Returns the files deleted.
    pub fn purge(&mut self, retention_days: u32, now: u64) -> Result<usize, EvidenceError> {
        let keep_days = u64::from(retention_days.max(1)) + 1;
        let mut deleted = 0;
        for (day, dir) in self.days()? {
            let Some(start) = day_start(&day) else {
                continue;
            };
            if start + keep_days * 86_400 > now {
                continue;
            }
            if self.current.as_ref().is_some_and(|c| c.day == day) {
                self.current = None;
            }
            deleted += self.purge_day(&dir)?;
            tracing::info!(day = %day, "evidence past its retention deleted");
        }
        Ok(deleted)
    }

    /// Deletes one day's directory; the alerts it held are no longer kept. Another process
    /// purging the same day at once is no error.
    fn purge_day(&mut self, dir: &Path) -> Result<usize, EvidenceError> {
        let files: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(source) => {
                return Err(EvidenceError::Io {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        };
        let mut gone = Vec::new();
        for f in files
            .iter()
            .filter(|p| p.extension().is_some_and(|x| x == FILE_SUFFIX))
        {
            gone.extend(
                self.frames(f)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|f| f.alert_id),
            );
        }
        match std::fs::remove_dir_all(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(EvidenceError::Io {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
        for id in gone {
            self.kept.remove(&id);
        }
        Ok(files.len())
    }
}

/// Unix seconds at the start of `day` (`YYYY-MM-DD`), if it is one.
fn day_start(day: &str) -> Option<u64> {
    let ok = day.len() == 10
        && day.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    ok.then(|| schema::unix_from_rfc3339(&format!("{day}T00:00:00Z")))
        .flatten()
}

/// Today's UTC day, `YYYY-MM-DD`.
fn today() -> String {
    schema::now_rfc3339()[..10].to_string()
}

/// What [`export`] wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    pub warc: PathBuf,
    pub alert: PathBuf,
    pub manifest: PathBuf,
    /// WARC records in the file.
    pub records: usize,
}

/// Writes alert `alert_id`'s evidence into `out`: `<id>.warc.gz` (its records, decrypted),
/// `alert.json` (the alert as stored) and `SHA256SUMS` (both files, `sha256sum -c` format).
/// Refuses to overwrite any of them.
pub fn export(
    data_dir: &Path,
    key: EvidenceKey,
    alert_id: &str,
    out: &Path,
) -> Result<Exported, EvidenceError> {
    if alert_id.is_empty()
        || alert_id.len() > 255
        || !alert_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(EvidenceError::BadAlertId(alert_id.to_string()));
    }
    let alert = alerts::load(&data_dir.join(alerts::ALERTS_FILE))?
        .into_iter()
        .find(|a| a.id == alert_id)
        .ok_or_else(|| EvidenceError::NoAlert(alert_id.to_string()))?;
    let vault = Vault::open(data_dir, key, &EvidenceConfig::default())?;
    let warc = vault.records(alert_id)?;
    let records = count_members(&warc);
    let alert_json = serde_json::to_vec_pretty(&alert).unwrap_or_default();
    let warc_name = format!("{alert_id}.warc.gz");
    let files = [
        (warc_name.as_str(), warc.as_slice()),
        ("alert.json", alert_json.as_slice()),
    ];
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EvidenceError::Io { path, source }
    };
    // The bundle holds what the vault encrypts: owner-only, never inside the data dir.
    datadir::create_private_dir_all(out).map_err(io(out))?;
    if let (Ok(o), Ok(d)) = (out.canonicalize(), data_dir.canonicalize()) {
        if o.starts_with(&d) {
            return Err(EvidenceError::ExportInDataDir(out.to_path_buf()));
        }
    }
    let mut manifest = String::new();
    for (name, bytes) in files {
        let p = out.join(name);
        write_new(&p, bytes)?;
        manifest.push_str(&format!("{}  {name}\n", hex::encode(Sha256::digest(bytes))));
    }
    let m = out.join("SHA256SUMS");
    write_new(&m, manifest.as_bytes())?;
    Ok(Exported {
        warc: out.join(warc_name),
        alert: out.join("alert.json"),
        manifest: m,
        records,
    })
}

/// Writes `bytes` to a new owner-only file at `path`; an existing file (or a symlink) there
/// is refused, never written through.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), EvidenceError> {
    let mut opts = std::fs::OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = match opts.write(true).create_new(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(EvidenceError::Exists(path.to_path_buf()))
        }
        Err(source) => {
            return Err(EvidenceError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|source| EvidenceError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// How many gzip members `bytes` holds (records in a `.warc.gz`).
fn count_members(bytes: &[u8]) -> usize {
    let mut n = 0;
    let mut rest = bytes;
    while !rest.is_empty() {
        let mut d = flate2::bufread::GzDecoder::new(rest);
        if std::io::copy(&mut d, &mut std::io::sink()).is_err() {
            break;
        }
        let left = d.into_inner();
        if left.len() == rest.len() {
            break;
        }
        rest = left;
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warc;

    fn key(b: u8) -> EvidenceKey {
        EvidenceKey::from_bytes([b; 32])
    }

    fn records(body: &[u8]) -> Vec<Record> {
        let ex = schema::Exchange {
            target: "/paste/1".into(),
            request_headers: vec![("host".into(), "paste.onion".into())],
            status: 200,
            response_headers: vec![("content-type".into(), "text/plain".into())],
        };
        let date = "2026-12-07T10:00:00Z";
        let req = warc::request("http://paste.onion/paste/1", date, &ex);
        let id = req.field("WARC-Record-ID").unwrap().to_string();
        let resp = warc::response("http://paste.onion/paste/1", date, &ex, body, &id);
        vec![req, resp]
    }

    fn all_files(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(p) = todo.pop() {
            if p.is_dir() {
                todo.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            } else {
                out.push(p);
            }
        }
        out
    }

    fn gunzip_all(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn kept_records_are_encrypted_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = EvidenceConfig::default();
        let mut v = Vault::open(dir.path(), key(1), &cfg).unwrap();
        let secret = b"plate KX7-4821 in a paste";
        assert!(v.keep("alert-1", &records(secret)).unwrap());
        assert!(!v.keep("alert-1", &records(b"again")).unwrap());
        assert!(v.keep("alert-2", &records(b"other")).unwrap());
        for f in all_files(dir.path()) {
            let bytes = std::fs::read(&f).unwrap();
            assert!(
                !bytes.windows(7).any(|w| w == b"KX7-482"),
                "{}",
                f.display()
            );
        }
        let v = Vault::open(dir.path(), key(1), &cfg).unwrap();
        assert!(v.has("alert-1") && v.has("alert-2") && !v.has("alert-3"));
        let plain = gunzip_all(&v.records("alert-1").unwrap());
        let text = String::from_utf8_lossy(&plain);
        assert_eq!(text.matches("WARC/1.1\r\n").count(), 2, "{text}");
        assert!(text.contains("plate KX7-4821 in a paste") && !text.contains("again"));
        assert_eq!(count_members(&v.records("alert-1").unwrap()), 2);
        let listed = v.list().unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(
            (listed[0].alert_id.as_str(), listed[0].frames),
            ("alert-1", 1)
        );
        assert!(matches!(
            v.records("alert-3"),
            Err(EvidenceError::NoEvidence(_))
        ));
    }

    #[test]
    fn another_key_is_refused_and_an_altered_byte_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = EvidenceConfig::default();
        let mut v = Vault::open(dir.path(), key(1), &cfg).unwrap();
        v.keep("a", &records(b"body")).unwrap();
        drop(v);
        let file = all_files(dir.path()).pop().unwrap();
        // Another key (a rotation) reads nothing of the old files and still writes.
        let mut other = Vault::open(dir.path(), key(2), &cfg).unwrap();
        assert!(!other.has("a"));
        assert!(matches!(other.unreadable(), [EvidenceError::WrongKey(_)]));
        assert!(other.keep("b", &records(b"new key")).unwrap());
        assert!(matches!(
            other.records("a"),
            Err(EvidenceError::NoEvidence(_))
        ));
        drop(other);
        let mut bytes = std::fs::read(&file).unwrap();
        let last = bytes.len() - 20;
        bytes[last] ^= 1;
        std::fs::write(&file, &bytes).unwrap();
        let v = Vault::open(dir.path(), key(1), &cfg).unwrap();
        let e = v.records("a").unwrap_err();
        assert!(e.to_string().contains("does not verify"), "{e}");
    }

    #[test]
    fn a_torn_last_frame_loses_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = EvidenceConfig::default();
        let mut v = Vault::open(dir.path(), key(1), &cfg).unwrap();
        v.keep("a", &records(b"first")).unwrap();
        v.keep("b", &records(b"second")).unwrap();
        drop(v);
        let file = all_files(dir.path()).pop().unwrap();
        let len = std::fs::metadata(&file).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(len - 7)
            .unwrap();
        let v = Vault::open(dir.path(), key(1), &cfg).unwrap();
        assert!(v.has("a") && !v.has("b"));
        assert!(String::from_utf8_lossy(&gunzip_all(&v.records("a").unwrap())).contains("first"));
    }

    #[test]
    fn files_rotate_by_size_and_days_go_after_their_retention() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = EvidenceConfig {
            max_file_mib: 1,
            ..EvidenceConfig::default()
        };
        let mut v = Vault::open(dir.path(), key(1), &cfg).unwrap();
        // Incompressible bodies: three of 600 KiB need two files at 1 MiB.
        for i in 0..3u8 {
            let mut body = vec![0u8; 600 << 10];
            crate::random_bytes(&mut body).unwrap();
            v.keep(&format!("big-{i}"), &records(&body)).unwrap();
        }
        assert_eq!(all_files(dir.path()).len(), 2);
        // Move today's files to an old day, as if written then.
        let ev = dir.path().join(EVIDENCE_DIR);
        std::fs::rename(ev.join(today()), ev.join("2026-01-10")).unwrap();
        drop(v);
        let mut v = Vault::open(dir.path(), key(1), &cfg).unwrap();
        v.keep("fresh", &records(b"new")).unwrap();
        let jan10 = day_start("2026-01-10").unwrap();
        // Kept for 30 days after the day ended, gone after.
        assert_eq!(v.purge(30, jan10 + 31 * 86_400 - 1).unwrap(), 0);
        assert!(v.has("big-0"));
        assert_eq!(v.purge(30, jan10 + 31 * 86_400).unwrap(), 2);
        assert!(!v.has("big-0") && v.has("fresh"));
        assert!(!ev.join("2026-01-10").exists());
        assert_eq!(v.list().unwrap().len(), 1);
        assert!(day_start("2026-1-10").is_none() && day_start("../../etc").is_none());
    }

    #[test]
    fn keys_parse_and_a_key_inside_the_data_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let outside = dir.path().join("evidence.key");
        let made = EvidenceKey::create_file(&outside).unwrap();
        assert!(
            EvidenceKey::create_file(&outside).is_err(),
            "a key file was replaced"
        );
        let cfg = EvidenceConfig {
            key_file: Some(outside.clone()),
            ..EvidenceConfig::default()
        };
        let loaded = EvidenceKey::load(&cfg, &data).unwrap().unwrap();
        assert_eq!(loaded.id, made.id);
        let inside = data.join("k");
        std::fs::copy(&outside, &inside).unwrap();
        let cfg = EvidenceConfig {
            key_file: Some(inside),
            ..EvidenceConfig::default()
        };
        let e = EvidenceKey::load(&cfg, &data).unwrap_err();
        assert!(matches!(e, EvidenceError::KeyInDataDir(_)), "{e}");
        assert!(EvidenceKey::load(&EvidenceConfig::default(), &data)
            .unwrap()
            .is_none());
        assert!(EvidenceKey::parse(b"abc", "x").is_err());
        assert!(EvidenceKey::parse(&[7u8; 32], "x").is_ok());
        assert!(EvidenceKey::parse(b"correct horse battery staple 123", "x").is_err());
        let e = EvidenceKey::parse(&[b'z'; 64], "the env").unwrap_err();
        assert!(e.to_string().contains("the env"), "{e}");
        assert!(!format!("{made:?}").contains(&made.to_hex()));
    }

    #[test]
    fn export_writes_records_alert_and_a_manifest_it_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut store = alerts::AlertStore::open(&data).unwrap();
        let alert = alerts::text(
            "plate-1",
            "http://paste.onion/paste/1",
            schema::IdentifierSighting {
                kind: "plate".into(),
                masked: "KX*-***1".into(),
                field: "text".into(),
                offset: 6,
            },
        );
        store.insert(&alert).unwrap();
        let mut v = Vault::open(&data, key(3), &EvidenceConfig::default()).unwrap();
        v.keep(&alert.id, &records(b"paste body")).unwrap();
        let out = dir.path().join("bundle");
        let e = export(&data, key(3), &alert.id, &out).unwrap();
        assert_eq!(e.records, 2);
        let sums = std::fs::read_to_string(&e.manifest).unwrap();
        for line in sums.lines() {
            let (sum, name) = line.split_once("  ").unwrap();
            let bytes = std::fs::read(out.join(name)).unwrap();
            assert_eq!(sum, hex::encode(Sha256::digest(&bytes)), "{name}");
        }
        assert_eq!(sums.lines().count(), 2);
        let back: schema::Alert =
            serde_json::from_slice(&std::fs::read(&e.alert).unwrap()).unwrap();
        assert_eq!(back, alert);
        let again = export(&data, key(3), &alert.id, &out).unwrap_err();
        assert!(matches!(again, EvidenceError::Exists(_)), "{again}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!((mode(&out), mode(&e.warc)), (0o700, 0o600));
            // A symlink planted where a bundle file goes is refused, not written through.
            let trap = dir.path().join("trap");
            let out2 = dir.path().join("bundle2");
            std::fs::create_dir(&out2).unwrap();
            std::os::unix::fs::symlink(&trap, out2.join("alert.json")).unwrap();
            let e = export(&data, key(3), &alert.id, &out2).unwrap_err();
            assert!(matches!(e, EvidenceError::Exists(_)), "{e}");
            assert!(!trap.exists());
        }
        let inside = export(&data, key(3), &alert.id, &data.join("b")).unwrap_err();
        assert!(
            matches!(inside, EvidenceError::ExportInDataDir(_)),
            "{inside}"
        );
        let none = export(&data, key(3), "0123abcd", &dir.path().join("b2")).unwrap_err();
        assert!(matches!(none, EvidenceError::NoAlert(_)), "{none}");
        let bad = export(&data, key(3), "../x", &dir.path().join("b3")).unwrap_err();
        assert!(matches!(bad, EvidenceError::BadAlertId(_)), "{bad}");
    }
}
