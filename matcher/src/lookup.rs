//! The bank laid out for lookup, memory-mapped: what lets a matcher open a bank of ten
//! million photos in seconds with a small resident set.
//!
//! The bank file ([`crate::bank`]) is a compact, checksummed record stream: right for
//! import, wrong for matching, which would parse every record into the heap (labels,
//! hashes, ~3.7 KB of signature, colour and detail print per photo) and then copy the hashes again into
//! the multi-indexes (96 bytes per hash, five hashes per photo). At ten million photos that
//! is tens of gigabytes of heap before the first image is matched.
//!
//! `fingerprints.lookup` holds the same fingerprints as flat arrays, each section aligned to
//! 64 bytes, so that the matcher maps the file and uses the arrays in place:
//!
//! ```text
//! header   "LWLOOKUP" | version u32 | section count u32 | photos u64 | bank id (32)
//!          | (offset u64, length u64) × section count
//! LABEL_ENDS   (photos) × u64, the end of each label in LABELS
//! LABELS       UTF-8
//! KINDS        (photos) × [flags u8, region count u8]
//! CODES        (photos × 4) × [u64; 4]: region hashes, id = 4 · photo + region
//! REGION_MIH   16 × (65,537 offsets u32 | photos × 4 ids u32): the multi-index of CODES
//! WHOLES       (photos) × [u64; 4]: whole-photo hashes (sibling search)
//! WHOLE_MIH    16 × (65,537 offsets u32 | photos ids u32)
//! SIGNATURES   (photos) × Signature::BYTES
//! COLOURS      (photos) × colour::BYTES
//! DETAILS      (photos) × detail::BYTES
//! ```
//!
//! Version 2 added DETAILS; a file of another version is rebuilt from the bank.
//!
//! The multi-index is [`crate::mih`]'s, serialised; queries run on the mapped arrays
//! ([`crate::mih::MihRef`]). The page cache holds what is hot; nothing is copied.
//!
//! The file is derived data: it is written next to the bank whenever the bank is saved and
//! names the bank it was built from (the bank file's own trailing checksum, its "bank id").
//! A lookup file that does not name the current bank is stale and is rebuilt. It is checked
//! for shape when opened (sizes, offsets), and every read is bounds-checked, so a damaged
//! file gives wrong answers at worst, never a crash.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::colour::{self, ColourGrid};
use crate::detail::{self, Detail};
use crate::engine::Region;
use crate::grid::Signature;
use crate::hashing::Hash256;
use crate::mih::{self, words, MihRef};

pub const LOOKUP_FILE: &str = "fingerprints.lookup";
const MAGIC: &[u8; 8] = b"LWLOOKUP";
const VERSION: u32 = 2;
const ALIGN: u64 = 64;
/// Region hashes per photo in CODES (the [`Region::ALL`] order).
pub const REGIONS: usize = 4;

const FLAG_SIGNATURE: u8 = 1;
const FLAG_COLOUR: u8 = 2;
const FLAG_DETAIL: u8 = 4;

/// Sections, in file order.
#[derive(Debug, Clone, Copy)]
enum Section {
    LabelEnds,
    Labels,
    Kinds,
    Codes,
    RegionMih,
    Wholes,
    WholeMih,
    Signatures,
    Colours,
    Details,
}
const SECTIONS: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("cannot access {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a usable lookup file: {reason}")]
    Bad { path: PathBuf, reason: String },
}

/// The photos a lookup file is written from: a bank's fingerprints, or (for benchmarks)
/// photos made up on the fly. Each is read once per section, so nothing needs to be held.
pub trait Photos {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn label(&self, i: usize) -> Cow<'_, str>;
    /// Whole first, as [`Region::ALL`]; one (whole) for a bare hash.
    fn regions(&self, i: usize) -> Cow<'_, [Hash256]>;
    fn signature(&self, i: usize) -> Option<Cow<'_, Signature>>;
    fn colour(&self, i: usize) -> Option<Cow<'_, ColourGrid>>;
    /// The detail print; none by default (photos written without one).
    fn detail(&self, _i: usize) -> Option<Cow<'_, Detail>> {
        None
    }
}

impl Photos for [crate::Fingerprint] {
    fn len(&self) -> usize {
        <[crate::Fingerprint]>::len(self)
    }
    fn is_empty(&self) -> bool {
        <[crate::Fingerprint]>::is_empty(self)
    }
    fn label(&self, i: usize) -> Cow<'_, str> {
        Cow::Borrowed(&self[i].label)
    }
    fn regions(&self, i: usize) -> Cow<'_, [Hash256]> {
        Cow::Borrowed(&self[i].regions)
    }
    fn signature(&self, i: usize) -> Option<Cow<'_, Signature>> {
        self[i].signature.as_ref().map(Cow::Borrowed)
    }
    fn colour(&self, i: usize) -> Option<Cow<'_, ColourGrid>> {
        self[i].colour.as_ref().map(Cow::Borrowed)
    }
    fn detail(&self, i: usize) -> Option<Cow<'_, Detail>> {
        self[i].detail.as_ref().map(Cow::Borrowed)
    }
}

/// Writes a lookup file of `photos` (read section by section). `bank_id` names the bank it
/// is built from. Written to a temporary file and renamed into place.
pub fn write(
    path: &Path,
    bank_id: [u8; 32],
    photos: &(impl Photos + ?Sized),
) -> Result<(), LookupError> {
    let n = photos.len();
    let io = |source| LookupError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension(format!("lookup.tmp{}", std::process::id()));
    let file = File::create(&tmp).map_err(io)?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let header_len = 8 + 4 + 4 + 8 + 32 + SECTIONS as u64 * 16;
    w.write_all(&vec![0u8; header_len as usize]).map_err(io)?;
    let mut table = [(0u64, 0u64); SECTIONS];
    let mut pos = header_len;
    let mut section = |w: &mut BufWriter<File>,
                       pos: &mut u64,
                       s: Section,
                       body: &mut dyn FnMut(&mut BufWriter<File>) -> std::io::Result<u64>|
     -> std::io::Result<()> {
        let pad = (ALIGN - *pos % ALIGN) % ALIGN;
        w.write_all(&vec![0u8; pad as usize])?;
        *pos += pad;
        let len = body(w)?;
        table[s as usize] = (*pos, len);
        *pos += len;
        Ok(())
    };
    // Labels.
    section(&mut w, &mut pos, Section::LabelEnds, &mut |w| {
        let mut end = 0u64;
        for i in 0..n {
            end += photos.label(i).len() as u64;
            w.write_all(&end.to_le_bytes())?;
        }
        Ok(n as u64 * 8)
    })
    .map_err(io)?;
    section(&mut w, &mut pos, Section::Labels, &mut |w| {
        let mut len = 0u64;
        for i in 0..n {
            let l = photos.label(i);
            w.write_all(l.as_bytes())?;
            len += l.len() as u64;
        }
        Ok(len)
    })
    .map_err(io)?;
    section(&mut w, &mut pos, Section::Kinds, &mut |w| {
        for i in 0..n {
            let mut flags = 0;
            if photos.signature(i).is_some() {
                flags |= FLAG_SIGNATURE;
            }
            if photos.colour(i).is_some() {
                flags |= FLAG_COLOUR;
            }
            if photos.detail(i).is_some() {
                flags |= FLAG_DETAIL;
            }
            w.write_all(&[flags, photos.regions(i).len().min(REGIONS) as u8])?;
        }
        Ok(n as u64 * 2)
    })
    .map_err(io)?;
    // Region codes and their multi-index (built in memory: 32 bytes a code, then one slot's
    // ids at a time).
    let mut codes: Vec<[u64; 4]> = Vec::with_capacity(n * REGIONS);
    for i in 0..n {
        let regions = photos.regions(i);
        for r in 0..REGIONS {
            codes.push(regions.get(r).map_or([0; 4], words));
        }
    }
    section(&mut w, &mut pos, Section::Codes, &mut |w| {
        write_codes(w, &codes)
    })
    .map_err(io)?;
    section(&mut w, &mut pos, Section::RegionMih, &mut |w| {
        mih::write_slots(w, &codes)
    })
    .map_err(io)?;
    codes.clear();
    codes.extend((0..n).map(|i| photos.regions(i).first().map_or([0; 4], words)));
    section(&mut w, &mut pos, Section::Wholes, &mut |w| {
        write_codes(w, &codes)
    })
    .map_err(io)?;
    section(&mut w, &mut pos, Section::WholeMih, &mut |w| {
        mih::write_slots(w, &codes)
    })
    .map_err(io)?;
    drop(codes);
    section(&mut w, &mut pos, Section::Signatures, &mut |w| {
        let empty = vec![0u8; Signature::BYTES];
        for i in 0..n {
            match photos.signature(i) {
                Some(s) => w.write_all(&s.to_bytes())?,
                None => w.write_all(&empty)?,
            }
        }
        Ok((n * Signature::BYTES) as u64)
    })
    .map_err(io)?;
    section(&mut w, &mut pos, Section::Colours, &mut |w| {
        let empty = vec![0u8; colour::BYTES];
        for i in 0..n {
            match photos.colour(i) {
                Some(c) => w.write_all(&c.to_bytes())?,
                None => w.write_all(&empty)?,
            }
        }
        Ok((n * colour::BYTES) as u64)
    })
    .map_err(io)?;
    section(&mut w, &mut pos, Section::Details, &mut |w| {
        let empty = vec![0u8; detail::BYTES];
        for i in 0..n {
            match photos.detail(i) {
                Some(d) => w.write_all(&d.to_bytes())?,
                None => w.write_all(&empty)?,
            }
        }
        Ok((n * detail::BYTES) as u64)
    })
    .map_err(io)?;
    // Header last, now that the table is known.
    let mut header = Vec::with_capacity(header_len as usize);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&VERSION.to_le_bytes());
    header.extend_from_slice(&(SECTIONS as u32).to_le_bytes());
    header.extend_from_slice(&(n as u64).to_le_bytes());
    header.extend_from_slice(&bank_id);
    for (off, len) in table {
        header.extend_from_slice(&off.to_le_bytes());
        header.extend_from_slice(&len.to_le_bytes());
    }
    let mut file = w.into_inner().map_err(|e| io(e.into_error()))?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    file.write_all(&header).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        let _ = datadir::sync_dir(dir);
    }
    Ok(())
}

fn write_codes(w: &mut impl Write, codes: &[[u64; 4]]) -> std::io::Result<u64> {
    for c in codes {
        for x in c {
            w.write_all(&x.to_le_bytes())?;
        }
    }
    Ok(codes.len() as u64 * 32)
}

/// The bank id the lookup file names: the last 32 bytes of the bank file (its checksum).
pub fn bank_id(bank_file: &Path) -> Result<Option<[u8; 32]>, LookupError> {
    let io = |source| LookupError::Io {
        path: bank_file.to_path_buf(),
        source,
    };
    let mut f = match File::open(bank_file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let len = f.metadata().map_err(io)?.len();
    if len < 32 {
        return Ok(None);
    }
    f.seek(SeekFrom::End(-32)).map_err(io)?;
    let mut id = [0u8; 32];
    f.read_exact(&mut id).map_err(io)?;
    Ok(Some(id))
}

/// A mapped lookup file.
pub struct Lookup {
    map: memmap2::Mmap,
    n: usize,
    bank_id: [u8; 32],
    table: [(usize, usize); SECTIONS],
}

impl std::fmt::Debug for Lookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lookup").field("photos", &self.n).finish()
    }
}

impl Lookup {
    /// Maps `path` and checks its shape.
    pub fn open(path: &Path) -> Result<Lookup, LookupError> {
        let file = File::open(path).map_err(|source| LookupError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        // SAFETY: the file is ours, written once and renamed into place, never modified in
        // place; a replacement is a new inode, so this mapping keeps seeing the old one.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|source| LookupError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let bad = |reason: String| LookupError::Bad {
            path: path.to_path_buf(),
            reason,
        };
        Lookup::parse(map).map_err(bad)
    }

    fn parse(map: memmap2::Mmap) -> Result<Lookup, String> {
        let u32_at = |o: usize| -> Result<u32, String> {
            map.get(o..o + 4)
                .map(|b| u32::from_le_bytes(b.try_into().unwrap_or_default()))
                .ok_or_else(|| "truncated header".to_string())
        };
        let u64_at = |o: usize| -> Result<u64, String> {
            map.get(o..o + 8)
                .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
                .ok_or_else(|| "truncated header".to_string())
        };
        if map.get(..8) != Some(&MAGIC[..]) {
            return Err("not a leakwatch lookup file".into());
        }
        if u32_at(8)? != VERSION {
            return Err(format!(
                "version {}, this build reads {VERSION}",
                u32_at(8)?
            ));
        }
        if u32_at(12)? as usize != SECTIONS {
            return Err("unexpected section count".into());
        }
        let n = usize::try_from(u64_at(16)?).map_err(|_| "too many photos")?;
        let mut bank_id = [0u8; 32];
        bank_id.copy_from_slice(map.get(24..56).ok_or("truncated header")?);
        let mut table = [(0usize, 0usize); SECTIONS];
        for (s, t) in table.iter_mut().enumerate() {
            let off = u64_at(56 + s * 16)? as usize;
            let len = u64_at(64 + s * 16)? as usize;
            if !off.is_multiple_of(ALIGN as usize)
                || off.checked_add(len).is_none_or(|e| e > map.len())
            {
                return Err(format!("section {s} out of bounds"));
            }
            *t = (off, len);
        }
        let lookup = Lookup {
            map,
            n,
            bank_id,
            table,
        };
        lookup.check_shape()?;
        lookup.advise();
        Ok(lookup)
    }

    /// Section sizes that follow from the photo count, and well-formed multi-indexes.
    fn check_shape(&self) -> Result<(), String> {
        let n = self.n;
        let expect = [
            (Section::LabelEnds, Some(n * 8)),
            (Section::Labels, None),
            (Section::Kinds, Some(n * 2)),
            (Section::Codes, Some(n * REGIONS * 32)),
            (Section::RegionMih, Some(mih::slots_bytes(n * REGIONS))),
            (Section::Wholes, Some(n * 32)),
            (Section::WholeMih, Some(mih::slots_bytes(n))),
            (Section::Signatures, Some(n * Signature::BYTES)),
            (Section::Colours, Some(n * colour::BYTES)),
            (Section::Details, Some(n * detail::BYTES)),
        ];
        for (s, len) in expect {
            if let Some(len) = len {
                if self.table[s as usize].1 != len {
                    return Err(format!("section {s:?} has the wrong size"));
                }
            }
        }
        for (codes, slots, count) in [
            (Section::Codes, Section::RegionMih, n * REGIONS),
            (Section::Wholes, Section::WholeMih, n),
        ] {
            self.mih(codes, slots, count)
                .and_then(|m| m.check().ok())
                .ok_or_else(|| format!("multi-index {slots:?} is malformed"))?;
        }
        Ok(())
    }

    /// Per-photo records and multi-index ids are read a few at a time at random places:
    /// reading ahead of them (the kernel's default for a mapping) would fill memory with
    /// neighbours nobody asked for. The hash arrays, scanned whole when a query is cheaper
    /// that way, keep the default. Advice only; a refusal changes nothing.
    #[cfg(unix)]
    fn advise(&self) {
        for s in [
            Section::LabelEnds,
            Section::Labels,
            Section::Kinds,
            Section::RegionMih,
            Section::WholeMih,
            Section::Signatures,
            Section::Colours,
            Section::Details,
        ] {
            let (off, len) = self.table[s as usize];
            if len > 0 {
                let _ = self.map.advise_range(memmap2::Advice::Random, off, len);
            }
        }
    }

    #[cfg(not(unix))]
    fn advise(&self) {}

    fn bytes(&self, s: Section) -> &[u8] {
        let (off, len) = self.table[s as usize];
        &self.map[off..off + len]
    }

    fn mih(&self, codes: Section, slots: Section, count: usize) -> Option<MihRef<'_>> {
        let codes: &[[u64; 4]] = bytemuck::try_cast_slice(self.bytes(codes)).ok()?;
        let ints: &[u32] = bytemuck::try_cast_slice(self.bytes(slots)).ok()?;
        MihRef::from_serialised(codes, ints, count)
    }

    /// Photos in the file.
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The bank this file was built from.
    pub fn bank_id(&self) -> [u8; 32] {
        self.bank_id
    }

    /// The multi-index of every region hash (id = 4 · photo + region).
    pub fn regions(&self) -> MihRef<'_> {
        self.mih(Section::Codes, Section::RegionMih, self.n * REGIONS)
            .expect("shape checked at open")
    }

    /// The multi-index of the whole-photo hashes (id = photo).
    pub fn wholes(&self) -> MihRef<'_> {
        self.mih(Section::Wholes, Section::WholeMih, self.n)
            .expect("shape checked at open")
    }

    fn kind(&self, i: usize) -> (u8, usize) {
        let k = self.bytes(Section::Kinds);
        (
            k.get(2 * i).copied().unwrap_or(0),
            k.get(2 * i + 1).map_or(0, |&c| usize::from(c).min(REGIONS)),
        )
    }

    /// The region a region-index id stands for, if that photo has it.
    pub fn owner(&self, id: u32) -> Option<(u32, Region)> {
        let (photo, r) = (id as usize / REGIONS, id as usize % REGIONS);
        (photo < self.n && r < self.kind(photo).1).then(|| (photo as u32, Region::ALL[r]))
    }

    pub fn label(&self, i: usize) -> String {
        let ends = self.bytes(Section::LabelEnds);
        let end_at = |j: usize| {
            ends.get(j * 8..j * 8 + 8).map_or(0, |b| {
                u64::from_le_bytes(b.try_into().unwrap_or_default()) as usize
            })
        };
        let start = if i == 0 { 0 } else { end_at(i - 1) };
        let labels = self.bytes(Section::Labels);
        labels
            .get(start..end_at(i).max(start))
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    }

    /// The whole-photo hash of photo `i`.
    pub fn whole(&self, i: usize) -> Option<Hash256> {
        (self.kind(i).1 > 0).then(|| {
            let b = &self.bytes(Section::Wholes)[i * 32..i * 32 + 32];
            b.try_into().unwrap_or([0; 32])
        })
    }

    pub fn signature(&self, i: usize) -> Option<Signature> {
        if i >= self.n || self.kind(i).0 & FLAG_SIGNATURE == 0 {
            return None;
        }
        let b = Signature::BYTES;
        Signature::from_bytes(&self.bytes(Section::Signatures)[i * b..(i + 1) * b])
    }

    pub fn colour(&self, i: usize) -> Option<ColourGrid> {
        if i >= self.n || self.kind(i).0 & FLAG_COLOUR == 0 {
            return None;
        }
        let b = colour::BYTES;
        ColourGrid::from_bytes(&self.bytes(Section::Colours)[i * b..(i + 1) * b])
    }

    pub fn detail(&self, i: usize) -> Option<Detail> {
        if i >= self.n || self.kind(i).0 & FLAG_DETAIL == 0 {
            return None;
        }
        let b = detail::BYTES;
        Detail::from_bytes(&self.bytes(Section::Details)[i * b..(i + 1) * b])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Bank, Fingerprint};

    fn photo(seed: u32) -> Fingerprint {
        let img = image::RgbImage::from_fn(96, 64, |x, y| {
            let v = (x * 7 + y * 13 + seed * 31) ^ (x * y + seed);
            image::Rgb([
                (v % 251) as u8,
                (v * 3 % 241) as u8,
                (seed * 40 % 256) as u8,
            ])
        });
        crate::fingerprint_image(
            &image::DynamicImage::ImageRgb8(img),
            format!("photo-{seed}"),
            format!("{seed:064x}"),
        )
        .unwrap()
    }

    fn bare(seed: u8) -> Fingerprint {
        Fingerprint {
            label: format!("bare-{seed}"),
            sha256: format!("{:064x}", 1000 + u32::from(seed)),
            width: 0,
            height: 0,
            imported_at: String::new(),
            source: crate::bank::Source::Hashes,
            quality: 0,
            regions: vec![[seed; 32]],
            signature: None,
            colour: None,
            detail: None,
        }
    }

    #[test]
    fn a_saved_bank_reads_back_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let mut bank = Bank::open(dir.path()).unwrap();
        let fps = [photo(1), bare(9), photo(2)];
        for fp in fps.clone() {
            assert!(bank.insert(fp));
        }
        bank.save().unwrap();
        let l = Lookup::open(&dir.path().join(LOOKUP_FILE)).unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(
            Some(l.bank_id()),
            bank_id(&dir.path().join(crate::bank::BANK_FILE)).unwrap()
        );
        for (i, fp) in fps.iter().enumerate() {
            assert_eq!(l.label(i), fp.label);
            assert_eq!(l.signature(i), fp.signature);
            assert_eq!(l.colour(i), fp.colour);
            assert_eq!(l.detail(i), fp.detail);
            assert_eq!(l.whole(i), fp.regions.first().copied());
            for (r, h) in fp.regions.iter().enumerate() {
                let id = (i * REGIONS + r) as u32;
                assert_eq!(l.owner(id), Some((i as u32, Region::ALL[r])));
                assert!(l.regions().within(h, 0).iter().any(|&(e, _)| e == id));
            }
        }
        // The bare hash has a whole only.
        assert_eq!(l.owner((REGIONS + 1) as u32), None);
        assert_eq!(l.wholes().nearest(&[9; 32], 1, 256), vec![(1, 0)]);
    }

    #[test]
    fn a_stale_lookup_file_is_rebuilt_and_a_damaged_one_never_crashes() {
        let dir = tempfile::tempdir().unwrap();
        let params = crate::MatcherConfig::default().params();
        let mut bank = Bank::open(dir.path()).unwrap();
        bank.insert(photo(1));
        bank.save().unwrap();
        let path = dir.path().join(LOOKUP_FILE);
        let first = std::fs::read(&path).unwrap();
        // Another import adds a photo; a lookup file naming the old bank is stale.
        bank.insert(photo(2));
        bank.save().unwrap();
        std::fs::write(&path, &first).unwrap();
        let engine = crate::open_engine(dir.path(), params).unwrap();
        assert!(engine.is_mapped());
        assert_eq!(engine.len(), 2);
        // Damaged: cut short, or its offsets overwritten. Refused at open, then rebuilt.
        let good = std::fs::read(&path).unwrap();
        for damaged in [good[..good.len() / 2].to_vec(), {
            let mut b = good.clone();
            let at = good.len() - 4 * 1024;
            b[at..at + 64].fill(0xFF);
            b
        }] {
            std::fs::write(&path, &damaged).unwrap();
            let _ = Lookup::open(&path);
            let engine = crate::open_engine(dir.path(), params).unwrap();
            assert_eq!(engine.len(), 2);
            assert_eq!(engine.label(1).as_deref(), Some("photo-2"));
        }
        assert!(Lookup::open(&path).is_ok());
        let mut cut = good.clone();
        cut.truncate(100);
        std::fs::write(&path, &cut).unwrap();
        assert!(Lookup::open(&path).is_err());
    }
}
