//! The fingerprint bank: perceptual hashes of the stolen images, and nothing else.
//!
//! The bank never holds image bytes, so the monitor cannot leak what it watches for. It is a
//! binary, versioned file in the data dir (`fingerprints.bank`):
//!
//! ```text
//! "LWFPBANK" | version u32 | count u64 | record × count | sha256 of everything before (32 bytes)
//! record = label (u16 length + UTF-8) | source sha256 (32) | width u32 | height u32
//!        | imported_at (u16 length + RFC 3339) | flags u8 | quality u8
//!        | region count u8 | region hashes (32 each) | [legacy dct256 (32), skipped] | [signature]
//!        | [colour grid (288)] | [detail print (2,016)]
//! ```
//!
//! Optional parts are present when their flag is set; a bank written before the colour grid
//! existed reads as fingerprints without one (judged on luminance alone). Version 3 added
//! the detail print ([`crate::detail`]); a version-2 bank still opens, its photos without
//! one (judged as before it existed: re-import them into a new data dir to get it), and a
//! build that reads only version 2 refuses a version-3 bank with a clear error.
//!
//! All integers little-endian. The file is written atomically (temporary file, fsync, rename)
//! and its checksum is verified on open, so a torn or corrupted bank is a clear error, never a
//! silently smaller one.
//!
//! A long import appends each new fingerprint to a journal (`fingerprints.journal`: the same
//! records, each framed by its length and a checksum) and folds it into the bank when it
//! finishes. Opening the bank replays a journal left by an interrupted import, up to the first
//! torn frame, so an import that is stopped resumes where it stopped.
//!
//! Only one import writes at a time: [`Bank::open_writer`] takes the bank's writer lock
//! (`fingerprints.bank.lock`), so a second import is refused with a message naming its holder.
//! Readers (the matcher role, `match`, `fingerprints list`) open it without a lock.

use std::collections::HashSet;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::colour::ColourGrid;
use crate::detail::Detail;
use crate::grid::Signature;
use crate::hashing::Hash256;
use crate::lookup::LookupError;

pub const BANK_FILE: &str = "fingerprints.bank";
pub const JOURNAL_FILE: &str = "fingerprints.journal";
/// The JSON bank of version 1, recognised only to explain that it must be rebuilt.
const V1_FILE: &str = "fingerprints.json";
const MAGIC: &[u8; 8] = b"LWFPBANK";
const JOURNAL_MAGIC: &[u8; 8] = b"LWFPJRNL";
const VERSION: u32 = 3;
/// The oldest version still read: its records are version 3's without a detail print.
const OLDEST_READ: u32 = 2;
const MAX_LABEL: usize = 1024;
const MAX_REGIONS: usize = 16;

/// Banks written before PDQ replaced `image_hasher`'s DCT hash carry one more hash per
/// fingerprint; it is skipped on read and never written.
const FLAG_LEGACY_DCT256: u8 = 1;
const FLAG_SIGNATURE: u8 = 2;
const FLAG_FROM_HASHES: u8 = 4;
const FLAG_COLOUR: u8 = 8;
const FLAG_DETAIL: u8 = 16;

#[derive(Debug, thiserror::Error)]
pub enum BankError {
    #[error("cannot access fingerprint bank {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("fingerprint bank {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "fingerprint bank {path} has format version {found}; this build reads versions \
         {OLDEST_READ} to {VERSION}. \
         Re-import the stolen images (or their hashes) into a new data dir"
    )]
    Version { path: PathBuf, found: u32 },
    /// Another import writes this bank, or the data dir refused us.
    #[error(transparent)]
    DataDir(#[from] datadir::DataDirError),
}

/// Where a fingerprint came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Hashed here from the image file.
    Image,
    /// A PDQ hash computed elsewhere (`fingerprints import --from-hashes`).
    Hashes,
}

/// One stolen image, as hashes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Fingerprint {
    pub label: String,
    /// sha256 of the source file (or of the shared hash): the dedupe key.
    pub sha256: String,
    pub width: u32,
    pub height: u32,
    pub imported_at: String,
    pub source: Source,
    /// PDQ quality of the image (0–100); 0 when unknown.
    pub quality: u8,
    /// PDQ hashes of the whole image, then of [`crate::engine::Region`]s (hash-only
    /// fingerprints have the whole only).
    #[serde(serialize_with = "hex_list")]
    pub regions: Vec<Hash256>,
    /// The verification signature ([`crate::grid`]).
    #[serde(skip)]
    pub signature: Option<Signature>,
    /// The colour print ([`crate::colour`]); `None` for a grey photo or a bare hash.
    #[serde(skip)]
    pub colour: Option<ColourGrid>,
    /// The detail print ([`crate::detail`]); `None` for a bare hash or a bank of version 2.
    #[serde(skip)]
    pub detail: Option<Detail>,
}

fn hex_list<S: serde::Serializer>(v: &[Hash256], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(hex::encode))
}

impl Fingerprint {
    /// The PDQ hash of the whole image.
    pub fn pdq(&self) -> Option<&Hash256> {
        self.regions.first()
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let label = truncate(&self.label, MAX_LABEL);
        out.extend_from_slice(&(label.len() as u16).to_le_bytes());
        out.extend_from_slice(label.as_bytes());
        let mut sha = [0u8; 32];
        if let Ok(v) = hex::decode(&self.sha256) {
            if v.len() == 32 {
                sha.copy_from_slice(&v);
            }
        }
        out.extend_from_slice(&sha);
        out.extend_from_slice(&self.width.to_le_bytes());
        out.extend_from_slice(&self.height.to_le_bytes());
        let at = truncate(&self.imported_at, 64);
        out.extend_from_slice(&(at.len() as u16).to_le_bytes());
        out.extend_from_slice(at.as_bytes());
        let mut flags = 0;
        if self.signature.is_some() {
            flags |= FLAG_SIGNATURE;
        }
        if self.source == Source::Hashes {
            flags |= FLAG_FROM_HASHES;
        }
        if self.colour.is_some() {
            flags |= FLAG_COLOUR;
        }
        if self.detail.is_some() {
            flags |= FLAG_DETAIL;
        }
        out.push(flags);
        out.push(self.quality);
        let n = self.regions.len().min(MAX_REGIONS);
        out.push(n as u8);
        for r in &self.regions[..n] {
            out.extend_from_slice(r);
        }
        if let Some(s) = &self.signature {
            out.extend_from_slice(&s.to_bytes());
        }
        if let Some(c) = &self.colour {
            out.extend_from_slice(&c.to_bytes());
        }
        if let Some(d) = &self.detail {
            out.extend_from_slice(&d.to_bytes());
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Fingerprint, String> {
        let label = r.string(MAX_LABEL)?;
        let sha256 = hex::encode(r.take(32)?);
        let width = r.u32()?;
        let height = r.u32()?;
        let imported_at = r.string(64)?;
        let flags = r.u8()?;
        let quality = r.u8()?;
        let n = r.u8()? as usize;
        if n == 0 || n > MAX_REGIONS {
            return Err(format!("{label}: {n} region hashes"));
        }
        let mut regions = Vec::with_capacity(n);
        for _ in 0..n {
            regions.push(r.hash()?);
        }
        if flags & FLAG_LEGACY_DCT256 != 0 {
            r.hash()?;
        }
        let signature = if flags & FLAG_SIGNATURE != 0 {
            Some(
                Signature::from_bytes(r.take(Signature::BYTES)?)
                    .ok_or_else(|| format!("{label}: bad signature"))?,
            )
        } else {
            None
        };
        let colour = if flags & FLAG_COLOUR != 0 {
            Some(
                ColourGrid::from_bytes(r.take(crate::colour::BYTES)?)
                    .ok_or_else(|| format!("{label}: bad colour grid"))?,
            )
        } else {
            None
        };
        let detail = if flags & FLAG_DETAIL != 0 {
            Some(
                Detail::from_bytes(r.take(crate::detail::BYTES)?)
                    .ok_or_else(|| format!("{label}: bad detail print"))?,
            )
        } else {
            None
        };
        Ok(Fingerprint {
            label,
            sha256,
            width,
            height,
            imported_at,
            source: if flags & FLAG_FROM_HASHES != 0 {
                Source::Hashes
            } else {
                Source::Image
            },
            quality,
            regions,
            signature,
            colour,
            detail,
        })
    }
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A bounds-checked cursor over untrusted bytes.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| format!("truncated at byte {}", self.pos))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, String> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn hash(&mut self) -> Result<Hash256, String> {
        let mut h = [0u8; 32];
        h.copy_from_slice(self.take(32)?);
        Ok(h)
    }
    fn string(&mut self, max: usize) -> Result<String, String> {
        let n = self.u16()? as usize;
        if n > max {
            return Err(format!("string of {n} bytes"));
        }
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "invalid UTF-8".to_string())
    }
}

/// The loaded bank.
#[derive(Debug, Default)]
pub struct Bank {
    dir: PathBuf,
    fingerprints: Vec<Fingerprint>,
    by_sha: HashSet<String>,
    /// Fingerprints recovered from an interrupted import's journal.
    recovered: usize,
    /// Length of the journal up to its last whole frame.
    journal_len: u64,
    /// Held by a bank opened for writing.
    lock: Option<datadir::WriterLock>,
}

impl Bank {
    /// Opens the bank for an import: takes its writer lock first (refused while another
    /// process writes it), then reads it as [`Bank::open`] does.
    pub fn open_writer(data_dir: &Path) -> Result<Bank, BankError> {
        let lock = datadir::WriterLock::acquire(&data_dir.join(BANK_FILE), "fingerprint bank")?;
        let mut bank = Bank::open(data_dir)?;
        bank.lock = Some(lock);
        Ok(bank)
    }

    /// Opens the bank in `data_dir`, replaying an interrupted import's journal; a missing file
    /// is an empty bank.
    pub fn open(data_dir: &Path) -> Result<Bank, BankError> {
        let path = data_dir.join(BANK_FILE);
        let mut bank = Bank {
            dir: data_dir.to_path_buf(),
            ..Bank::default()
        };
        match std::fs::read(&path) {
            Ok(bytes) => {
                for fp in parse_bank(&bytes).map_err(|e| match e {
                    ParseError::Version(found) => BankError::Version {
                        path: path.clone(),
                        found,
                    },
                    ParseError::Corrupt(reason) => BankError::Corrupt {
                        path: path.clone(),
                        reason,
                    },
                })? {
                    bank.insert(fp);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let v1 = data_dir.join(V1_FILE);
                if v1.exists() {
                    return Err(BankError::Version { path: v1, found: 1 });
                }
            }
            Err(source) => return Err(BankError::Io { path, source }),
        }
        let jpath = data_dir.join(JOURNAL_FILE);
        match std::fs::read(&jpath) {
            Ok(bytes) => {
                let (fps, len) = parse_journal(&bytes).map_err(|reason| BankError::Corrupt {
                    path: jpath.clone(),
                    reason,
                })?;
                bank.journal_len = len as u64;
                for fp in fps {
                    if bank.insert(fp) {
                        bank.recovered += 1;
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(BankError::Io {
                    path: jpath,
                    source,
                })
            }
        }
        Ok(bank)
    }

    /// How many fingerprints came from an interrupted import's journal.
    pub fn recovered(&self) -> usize {
        self.recovered
    }

    /// Adds a fingerprint unless one from the same source is present. Returns whether added.
    pub fn insert(&mut self, fp: Fingerprint) -> bool {
        if fp.regions.is_empty() || !self.by_sha.insert(fp.sha256.clone()) {
            return false;
        }
        self.fingerprints.push(fp);
        true
    }

    pub fn contains_source(&self, sha256: &str) -> bool {
        self.by_sha.contains(sha256)
    }

    /// Writes the bank atomically and drops the journal it now contains. A bank not opened
    /// with [`Bank::open_writer`] takes the writer lock for the write (refused while another
    /// process holds it).
    pub fn save(&self) -> Result<(), BankError> {
        let path = self.dir.join(BANK_FILE);
        let io = |source| BankError::Io {
            path: path.clone(),
            source,
        };
        let _transient = match self.lock {
            Some(_) => None,
            None => Some(datadir::WriterLock::acquire(&path, "fingerprint bank")?),
        };
        let mut bytes = Vec::with_capacity(64 + self.fingerprints.len() * 600);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(&(self.fingerprints.len() as u64).to_le_bytes());
        for fp in &self.fingerprints {
            fp.encode(&mut bytes);
        }
        let sum = Sha256::digest(&bytes);
        bytes.extend_from_slice(&sum);
        datadir::replace(&path, &bytes)?;
        drop(bytes);
        // The lookup file is derived data: a failure leaves matchers reading the bank into
        // memory (and trying again), not a failed import.
        if let Err(e) = self.write_lookup_as(sum.into()) {
            tracing::warn!(error = %e, "the bank's lookup file was not written");
        }
        let journal = self.dir.join(JOURNAL_FILE);
        match std::fs::remove_file(&journal) {
            Ok(()) => datadir::sync_dir(&self.dir).map_err(io),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(BankError::Io {
                path: journal,
                source,
            }),
        }
    }

    /// Writes the lookup file ([`crate::lookup`]) for the bank file as saved.
    pub fn write_lookup(&self) -> Result<(), LookupError> {
        let path = self.dir.join(BANK_FILE);
        match crate::lookup::bank_id(&path)? {
            Some(id) => self.write_lookup_as(id),
            None => Err(LookupError::Bad {
                path,
                reason: "no bank file to build a lookup file from".into(),
            }),
        }
    }

    fn write_lookup_as(&self, id: [u8; 32]) -> Result<(), LookupError> {
        crate::lookup::write(
            &self.dir.join(crate::lookup::LOOKUP_FILE),
            id,
            &self.fingerprints[..],
        )
    }

    /// Opens the journal for appending new fingerprints of an import in progress.
    /// A torn frame at its end (from an interrupted write) is cut off first.
    pub fn journal(&self) -> Result<Journal, BankError> {
        datadir::create_private_dir_all(&self.dir).map_err(|source| BankError::Io {
            path: self.dir.clone(),
            source,
        })?;
        Journal::open(&self.dir.join(JOURNAL_FILE), self.journal_len)
    }

    pub fn len(&self) -> usize {
        self.fingerprints.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fingerprints.is_empty()
    }

    pub fn get(&self, index: usize) -> Option<&Fingerprint> {
        self.fingerprints.get(index)
    }

    pub fn fingerprints(&self) -> &[Fingerprint] {
        &self.fingerprints
    }
}

enum ParseError {
    Version(u32),
    Corrupt(String),
}

/// Entry points for the fuzz targets (`fuzz/`): the parsers of what is read back from disk.
#[cfg(fuzzing)]
pub mod fuzzing {
    use super::*;

    /// A bank file as found on disk.
    pub fn bank(bytes: &[u8]) -> usize {
        super::parse_bank(bytes).map_or(0, |v| v.len())
    }

    /// A bank file around `body` with a valid header and checksum, so the records are parsed.
    pub fn bank_records(body: &[u8]) -> usize {
        let mut file = MAGIC.to_vec();
        file.extend_from_slice(&VERSION.to_le_bytes());
        file.extend_from_slice(body);
        let sum = Sha256::digest(&file);
        file.extend_from_slice(&sum);
        bank(&file)
    }

    /// An import journal as found on disk.
    pub fn journal(bytes: &[u8]) -> usize {
        super::parse_journal(bytes).map_or(0, |(v, _)| v.len())
    }
}

fn parse_bank(bytes: &[u8]) -> Result<Vec<Fingerprint>, ParseError> {
    let corrupt = ParseError::Corrupt;
    if bytes.len() < 8 || &bytes[..8] != MAGIC {
        return Err(corrupt("not a leakwatch fingerprint bank".into()));
    }
    let mut r = Reader { buf: bytes, pos: 8 };
    let version = r.u32().map_err(corrupt)?;
    if !(OLDEST_READ..=VERSION).contains(&version) {
        return Err(ParseError::Version(version));
    }
    if bytes.len() < 20 + 32 {
        return Err(corrupt("truncated".into()));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(body).as_slice() != sum {
        return Err(corrupt(
            "checksum mismatch (the file is truncated or was modified)".into(),
        ));
    }
    let mut r = Reader {
        buf: body,
        pos: r.pos,
    };
    let count = r.u64().map_err(corrupt)?;
    let mut out = Vec::with_capacity(count.min(1 << 20) as usize);
    for i in 0..count {
        out.push(
            Fingerprint::decode(&mut r)
                .map_err(|e| ParseError::Corrupt(format!("record {i}: {e}")))?,
        );
    }
    if r.pos != body.len() {
        return Err(corrupt(format!(
            "{} trailing bytes after {count} records",
            body.len() - r.pos
        )));
    }
    Ok(out)
}

/// Frames of a journal, up to the first torn one (the tail of an interrupted write), and the
/// length of the whole frames.
fn parse_journal(bytes: &[u8]) -> Result<(Vec<Fingerprint>, usize), String> {
    if bytes.len() < 12 || &bytes[..8] != JOURNAL_MAGIC {
        return Err("not a leakwatch import journal".into());
    }
    let mut r = Reader { buf: bytes, pos: 8 };
    let version = r.u32()?;
    if !(OLDEST_READ..=VERSION).contains(&version) {
        return Err(format!("journal version {version}"));
    }
    let mut out = Vec::new();
    let mut good = r.pos;
    while r.pos < bytes.len() {
        let Ok(len) = r.u32() else { break };
        let Ok(frame) = r.take(len as usize) else {
            break;
        };
        let Ok(sum) = r.take(8) else { break };
        if &Sha256::digest(frame)[..8] != sum {
            break;
        }
        let mut fr = Reader { buf: frame, pos: 0 };
        out.push(Fingerprint::decode(&mut fr)?);
        good = r.pos;
    }
    Ok((out, good))
}

/// Appends fingerprints to the import journal; [`Journal::sync`] makes them durable.
pub struct Journal {
    path: PathBuf,
    out: BufWriter<std::fs::File>,
}

impl Journal {
    /// Opens `path`, keeping its first `valid` bytes (0 = a new journal).
    fn open(path: &Path, valid: u64) -> Result<Journal, BankError> {
        let io = |source| BankError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut opts = std::fs::OpenOptions::new();
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let file = opts
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io)?;
        // The journal may have been folded into the bank since `valid` was read.
        let actual = file.metadata().map_err(io)?.len();
        let keep = if valid < 12 { 0 } else { valid.min(actual) };
        file.set_len(keep).map_err(io)?;
        let mut file = file;
        file.seek(SeekFrom::End(0)).map_err(io)?;
        let mut out = BufWriter::new(file);
        if keep == 0 {
            out.write_all(JOURNAL_MAGIC).map_err(io)?;
            out.write_all(&VERSION.to_le_bytes()).map_err(io)?;
            if let Some(dir) = path.parent() {
                datadir::sync_dir(dir).map_err(io)?;
            }
        }
        Ok(Journal {
            path: path.to_path_buf(),
            out,
        })
    }

    pub fn append(&mut self, fp: &Fingerprint) -> Result<(), BankError> {
        let mut frame = Vec::with_capacity(600);
        fp.encode(&mut frame);
        let sum = Sha256::digest(&frame);
        let io = |source| BankError::Io {
            path: self.path.clone(),
            source,
        };
        self.out
            .write_all(&(frame.len() as u32).to_le_bytes())
            .map_err(io)?;
        self.out.write_all(&frame).map_err(io)?;
        self.out.write_all(&sum[..8]).map_err(io)
    }

    /// Flushes and fsyncs what was appended.
    pub fn sync(&mut self) -> Result<(), BankError> {
        let io = |source| BankError::Io {
            path: self.path.clone(),
            source,
        };
        self.out.flush().map_err(io)?;
        self.out.get_ref().sync_data().map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(label: &str, sha: u8, fill: u8, sig: bool) -> Fingerprint {
        Fingerprint {
            label: label.into(),
            sha256: hex::encode([sha; 32]),
            width: 640,
            height: 480,
            imported_at: "2026-01-01T00:00:00Z".into(),
            source: if sig { Source::Image } else { Source::Hashes },
            quality: 90,
            regions: if sig {
                vec![[fill; 32], [fill ^ 1; 32], [fill ^ 2; 32], [fill ^ 3; 32]]
            } else {
                vec![[fill; 32]]
            },
            signature: sig.then(|| {
                let plane = crate::views::Plane::from_luma(
                    32,
                    32,
                    (0..1024)
                        .map(|i| ((i * 37 + fill as usize) % 251) as f32)
                        .collect(),
                );
                Signature::of(&plane, &plane.full())
            }),
            colour: sig
                .then(|| {
                    let rgb = image::RgbImage::from_fn(24, 24, |x, y| {
                        image::Rgb([fill, (x * 10) as u8, (y * 10) as u8])
                    });
                    crate::colour::ColourGrid::of(crate::colour::Chroma::of(&rgb).as_ref())
                })
                .flatten(),
            detail: sig.then(|| {
                let plane = crate::views::Plane::from_luma(
                    32,
                    32,
                    (0..1024)
                        .map(|i| ((i * 11 + fill as usize) % 7) as f32)
                        .collect(),
                );
                Detail::of(&plane, &plane.full())
            }),
        }
    }

    #[test]
    fn round_trip_and_dedupe() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Bank::open(dir.path()).unwrap();
        assert!(b.insert(fp("a", 1, 0, true)));
        assert!(b.insert(fp("b", 2, 0xff, false)));
        assert!(!b.insert(fp("a-again", 1, 7, true)));
        b.save().unwrap();
        let again = Bank::open(dir.path()).unwrap();
        assert_eq!(again.fingerprints(), b.fingerprints());
        assert_eq!(again.get(1).unwrap().source, Source::Hashes);
    }

    #[test]
    fn a_second_import_is_refused_while_one_writes_the_bank() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = Bank::open_writer(dir.path()).unwrap();
        first.insert(fp("a", 1, 0, true));
        let msg = Bank::open_writer(dir.path()).unwrap_err().to_string();
        assert!(msg.contains("fingerprint bank"), "{msg}");
        assert!(msg.contains(BANK_FILE), "{msg}");
        assert!(msg.contains("in use by another writer"), "{msg}");
        let hashes = vec![([7u8; 32], "shared".to_string())];
        let msg = crate::import::import_hashes(dir.path(), hashes.clone())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("in use by another writer"), "{msg}");
        // A reader is never refused.
        Bank::open(dir.path()).unwrap();
        first.save().unwrap();
        drop(first);
        crate::import::import_hashes(dir.path(), hashes).unwrap();
        assert_eq!(Bank::open(dir.path()).unwrap().len(), 2);
    }

    #[test]
    fn corrupt_bank_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Bank::open(dir.path()).unwrap();
        b.insert(fp("a", 1, 0, true));
        b.save().unwrap();
        let path = dir.path().join(BANK_FILE);
        let good = std::fs::read(&path).unwrap();
        // One flipped byte in a record.
        let mut bad = good.clone();
        bad[40] ^= 0x10;
        std::fs::write(&path, &bad).unwrap();
        let e = Bank::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("corrupt") && e.contains("checksum"), "{e}");
        // Truncated.
        std::fs::write(&path, &good[..good.len() - 100]).unwrap();
        let e = Bank::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("corrupt"), "{e}");
        // Not a bank at all.
        std::fs::write(&path, b"{\"format\": 3").unwrap();
        let e = Bank::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not a leakwatch fingerprint bank"), "{e}");
        // Another version.
        let mut v9 = good.clone();
        v9[8] = 9;
        std::fs::write(&path, &v9).unwrap();
        assert!(matches!(
            Bank::open(dir.path()),
            Err(BankError::Version { found: 9, .. })
        ));
        // A version-1 JSON bank left from an older build.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(dir.path().join(V1_FILE), b"{}").unwrap();
        let e = Bank::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("version 1") && e.contains("Re-import"), "{e}");
    }

    #[test]
    fn a_version_2_bank_opens_without_detail_prints() {
        let dir = tempfile::tempdir().unwrap();
        let mut old = fp("a", 1, 0, true);
        old.detail = None;
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&2u32.to_le_bytes());
        bytes.extend_from_slice(&1u64.to_le_bytes());
        old.encode(&mut bytes);
        let sum = Sha256::digest(&bytes);
        bytes.extend_from_slice(&sum);
        std::fs::write(dir.path().join(BANK_FILE), &bytes).unwrap();
        let b = Bank::open(dir.path()).unwrap();
        assert_eq!(b.fingerprints(), &[old]);
        // Saved again, it is a version-3 bank; new photos carry their detail print.
        let mut b = b;
        assert!(b.insert(fp("b", 2, 5, true)));
        b.save().unwrap();
        let again = Bank::open(dir.path()).unwrap();
        assert!(again.get(0).unwrap().detail.is_none() && again.get(1).unwrap().detail.is_some());
        let raw = std::fs::read(dir.path().join(BANK_FILE)).unwrap();
        assert_eq!(raw[8..12], VERSION.to_le_bytes());
    }

    #[test]
    fn journal_survives_interruption_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let b = Bank::open(dir.path()).unwrap();
        let mut j = b.journal().unwrap();
        j.append(&fp("a", 1, 0, true)).unwrap();
        j.append(&fp("b", 2, 9, false)).unwrap();
        j.sync().unwrap();
        drop(j);
        // A torn third frame.
        let jpath = dir.path().join(JOURNAL_FILE);
        let mut bytes = std::fs::read(&jpath).unwrap();
        bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3]);
        std::fs::write(&jpath, &bytes).unwrap();
        let b = Bank::open(dir.path()).unwrap();
        assert_eq!((b.len(), b.recovered()), (2, 2));
        // Appending after reopening continues the same journal.
        let mut j = b.journal().unwrap();
        j.append(&fp("c", 3, 5, true)).unwrap();
        j.sync().unwrap();
        drop(j);
        // The torn frame was cut off before appending, so "c" is replayed too.
        let b = Bank::open(dir.path()).unwrap();
        assert_eq!(b.len(), 3);
        b.save().unwrap();
        assert!(!jpath.exists());
        let b = Bank::open(dir.path()).unwrap();
        assert_eq!((b.len(), b.recovered()), (3, 0));
    }
}
