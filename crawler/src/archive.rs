//! Images inside attachments: zip, tar and gzip (`.tar.gz` too), nested once.
//!
//! Leaked photos travel as archives linked from pastes. An archive is the most hostile input a
//! crawler reads: a zip bomb expands a few KiB into gigabytes, a tar names `../../etc/passwd`,
//! a central directory claims a million entries. Nothing here is written to disk; every read
//! is bounded before it happens: entries looked at, bytes expanded per entry and in total, the
//! expansion ratio of each entry, and nesting. What crosses a bound is a counted error
//! ([`Problem`]) and the rest of the archive is still read where that is safe.

use std::io::Read;

use flate2::read::{DeflateDecoder, GzDecoder};

use crate::fetch::image_magic;

/// Bounds on what one archive may cost.
#[derive(Debug, Clone)]
pub struct ArchiveLimits {
    /// Entries looked at, over all nesting levels.
    pub max_entries: usize,
    /// Bytes one entry may expand to (an image larger than this is not read).
    pub max_entry_bytes: usize,
    /// Bytes all entries together may expand to.
    pub max_total_bytes: usize,
    /// Most an entry may expand relative to its compressed size.
    pub max_ratio: usize,
    /// Archives inside archives are opened this many levels deep.
    pub max_depth: u32,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        ArchiveLimits {
            max_entries: 1_000,
            max_entry_bytes: 10 * 1024 * 1024,
            max_total_bytes: 64 * 1024 * 1024,
            max_ratio: 200,
            max_depth: 1,
        }
    }
}

/// Why part of an archive was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// More entries than `max_entries`.
    TooManyEntries,
    /// An entry or the whole archive expands past its bound, or past `max_ratio`.
    Bomb,
    /// A name that would climb out of a directory (`../`) or start at the root (the entry is
    /// still read, under a cleaned name).
    UnsafeName,
    /// Archives nested deeper than `max_depth`.
    TooDeep,
    /// Not the format it claims, truncated, or an unsupported method.
    Corrupt,
}

impl Problem {
    /// The error kind it is counted as.
    pub fn kind(self) -> &'static str {
        match self {
            Problem::TooManyEntries => "archive.too-many-entries",
            Problem::Bomb => "archive.bomb",
            Problem::UnsafeName => "archive.unsafe-name",
            Problem::TooDeep => "archive.too-deep",
            Problem::Corrupt => "archive.corrupt",
        }
    }
}

/// An image found in an archive: its path inside (`inner.zip/photos/a.jpg` when nested).
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// What an archive held.
#[derive(Debug, Default)]
pub struct Unpacked {
    pub images: Vec<Member>,
    pub problems: Vec<Problem>,
}

/// The archive format `body` starts like, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Zip,
    Tar,
    Gzip,
}

pub fn format_of(body: &[u8]) -> Option<Format> {
    if body.starts_with(b"PK\x03\x04") || body.starts_with(b"PK\x05\x06") {
        Some(Format::Zip)
    } else if body.starts_with(&[0x1f, 0x8b]) {
        Some(Format::Gzip)
    } else if body.get(257..262) == Some(b"ustar") {
        Some(Format::Tar)
    } else {
        None
    }
}

/// Reads the images out of an archive.
pub fn unpack(body: &[u8], limits: &ArchiveLimits) -> Unpacked {
    let mut run = Run {
        limits,
        entries: 0,
        expanded: 0,
        out: Unpacked::default(),
    };
    run.archive(body, "", 0);
    run.out
}

struct Run<'a> {
    limits: &'a ArchiveLimits,
    entries: usize,
    expanded: usize,
    out: Unpacked,
}

impl Run<'_> {
    fn problem(&mut self, p: Problem) {
        // One count per kind and archive is enough to see it; a hostile archive could
        // otherwise fill the list.
        if !self.out.problems.contains(&p) {
            self.out.problems.push(p);
        }
    }

    fn archive(&mut self, body: &[u8], prefix: &str, depth: u32) {
        match format_of(body) {
            Some(Format::Zip) => self.zip(body, prefix, depth),
            Some(Format::Tar) => self.tar(body, prefix, depth),
            Some(Format::Gzip) => {
                let budget = self.budget(body.len());
                match read_bounded(GzDecoder::new(body), budget) {
                    // A `.tar.gz` is one archive, not two nested.
                    Ok(Some(inner)) if format_of(&inner).is_some_and(|f| f != Format::Gzip) => {
                        self.archive(&inner, prefix, depth)
                    }
                    Ok(Some(inner)) => {
                        let name = prefix.trim_end_matches('/');
                        self.member(
                            if name.is_empty() { "gunzipped" } else { name },
                            inner,
                            depth,
                        )
                    }
                    Ok(None) => self.problem(Problem::Bomb),
                    Err(()) => self.problem(Problem::Corrupt),
                }
            }
            None => self.problem(Problem::Corrupt),
        }
    }

    /// Bytes an entry of `compressed` bytes may expand to.
    fn budget(&self, compressed: usize) -> usize {
        let room = self.limits.max_total_bytes.saturating_sub(self.expanded);
        self.limits
            .max_entry_bytes
            .min(room)
            .min(compressed.max(1).saturating_mul(self.limits.max_ratio))
    }

    /// An entry's expanded bytes: kept if an image, opened if an archive.
    fn member(&mut self, name: &str, bytes: Vec<u8>, depth: u32) {
        self.expanded += bytes.len();
        if image_magic(&bytes) {
            self.out.images.push(Member {
                name: name.to_string(),
                bytes,
            });
        } else if format_of(&bytes).is_some() {
            if depth >= self.limits.max_depth {
                self.problem(Problem::TooDeep);
            } else {
                self.archive(&bytes, &format!("{name}/"), depth + 1);
            }
        }
    }

    /// Counts an entry; false once there are too many.
    fn admit(&mut self, name: &str) -> bool {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            self.problem(Problem::TooManyEntries);
            return false;
        }
        if !safe_name(name) {
            self.problem(Problem::UnsafeName);
        }
        true
    }

    /// Reads the central directory, then each entry through its local header.
    fn zip(&mut self, body: &[u8], prefix: &str, depth: u32) {
        let Some(entries) = zip_directory(body) else {
            self.problem(Problem::Corrupt);
            return;
        };
        for e in entries {
            let name = String::from_utf8_lossy(&e.name).into_owned();
            if !self.admit(&name) {
                return;
            }
            if name.ends_with('/') {
                continue;
            }
            let Some(data) = zip_data(body, &e) else {
                self.problem(Problem::Corrupt);
                continue;
            };
            let budget = self.budget(data.len());
            if e.size > budget {
                self.problem(Problem::Bomb);
                continue;
            }
            let read = match e.method {
                0 => read_bounded(data, budget),
                8 => read_bounded(DeflateDecoder::new(data), budget),
                _ => Err(()),
            };
            match read {
                Ok(Some(bytes)) => self.member(&format!("{prefix}{}", clean(&name)), bytes, depth),
                Ok(None) => {
                    // What was inflated counts, and a bomb ends the archive.
                    self.expanded += budget;
                    self.problem(Problem::Bomb);
                    return;
                }
                Err(()) => self.problem(Problem::Corrupt),
            }
        }
    }

    /// Walks 512-byte headers; sizes are octal; data is padded to 512.
    fn tar(&mut self, body: &[u8], prefix: &str, depth: u32) {
        let mut at = 0usize;
        while let Some(header) = body.get(at..at + 512) {
            if header.iter().all(|&b| b == 0) {
                return;
            }
            let name = tar_name(header);
            let Some(size) = octal(&header[124..136]) else {
                self.problem(Problem::Corrupt);
                return;
            };
            if !self.admit(&name) {
                return;
            }
            let start = at + 512;
            let Some(data) = start.checked_add(size).and_then(|end| body.get(start..end)) else {
                self.problem(Problem::Corrupt);
                return;
            };
            if matches!(header[156], b'0' | 0) {
                if size > self.budget(size) {
                    self.problem(Problem::Bomb);
                } else {
                    self.member(&format!("{prefix}{}", clean(&name)), data.to_vec(), depth);
                }
            }
            at = start + size.div_ceil(512) * 512;
        }
    }
}

/// Reads all of `r` if it is at most `max` bytes: `Ok(None)` when it is longer.
fn read_bounded(r: impl Read, max: usize) -> Result<Option<Vec<u8>>, ()> {
    let mut out = Vec::new();
    let limit = (max as u64).saturating_add(1);
    r.take(limit).read_to_end(&mut out).map_err(|_| ())?;
    Ok((out.len() <= max).then_some(out))
}

/// `name` without the parts that would climb out or start at a root: nothing is written to
/// disk, but an entry named `../a.jpg` is still a photo to match (its name is reported).
fn clean(name: &str) -> String {
    name.split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != "." && *p != "..")
        .map(|p| p.replace(':', "_"))
        .collect::<Vec<_>>()
        .join("/")
}

/// A name that stays inside the directory it is unpacked into.
fn safe_name(name: &str) -> bool {
    !name.starts_with('/')
        && !name.starts_with('\\')
        && !name.contains(':')
        && !name.split(['/', '\\']).any(|part| part == "..")
}

struct ZipEntry {
    name: Vec<u8>,
    method: u16,
    compressed: usize,
    size: usize,
    local: usize,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize)
}

/// The central directory's entries, found through the end-of-directory record (searched for
/// in the last 64 KiB + 22 bytes, where a comment may push it).
fn zip_directory(body: &[u8]) -> Option<Vec<ZipEntry>> {
    let from = body.len().saturating_sub(65_557);
    let eocd = (from..body.len().saturating_sub(21))
        .rev()
        .find(|&i| body[i..].starts_with(b"PK\x05\x06"))?;
    let count = u16_at(body, eocd + 10)? as usize;
    let mut at = u32_at(body, eocd + 16)?;
    let mut out = Vec::new();
    for _ in 0..count {
        if !body.get(at..)?.starts_with(b"PK\x01\x02") {
            return None;
        }
        let name_len = u16_at(body, at + 28)? as usize;
        let extra = u16_at(body, at + 30)? as usize;
        let comment = u16_at(body, at + 32)? as usize;
        out.push(ZipEntry {
            method: u16_at(body, at + 10)?,
            compressed: u32_at(body, at + 20)?,
            size: u32_at(body, at + 24)?,
            local: u32_at(body, at + 42)?,
            name: body.get(at + 46..at + 46 + name_len)?.to_vec(),
        });
        at += 46 + name_len + extra + comment;
    }
    Some(out)
}

/// An entry's compressed bytes, after its local header.
fn zip_data<'a>(body: &'a [u8], e: &ZipEntry) -> Option<&'a [u8]> {
    let h = e.local;
    if !body.get(h..)?.starts_with(b"PK\x03\x04") {
        return None;
    }
    let start = h + 30 + u16_at(body, h + 26)? as usize + u16_at(body, h + 28)? as usize;
    body.get(start..start.checked_add(e.compressed)?)
}

fn tar_name(header: &[u8]) -> String {
    let field = |r: std::ops::Range<usize>| {
        let f = &header[r];
        let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
        String::from_utf8_lossy(&f[..end]).into_owned()
    };
    let (prefix, name) = (field(345..500), field(0..100));
    if prefix.is_empty() {
        name
    } else {
        format!("{prefix}/{name}")
    }
}

fn octal(field: &[u8]) -> Option<usize> {
    let s = std::str::from_utf8(field).ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c == ' ');
    if s.is_empty() {
        return Some(0);
    }
    usize::from_str_radix(s, 8).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn jpeg() -> Vec<u8> {
        let mut b = vec![0xff, 0xd8, 0xff, 0xe0];
        b.extend((0..2000u32).map(|i| (i % 251) as u8));
        b
    }

    #[test]
    fn images_come_out_of_zip_tar_gzip_and_a_zip_in_a_tar_gz() {
        let zip =
            testbed::archive::zip(&[("photos/a.jpg", &jpeg(), true), ("notes.txt", b"hi", false)]);
        let got = unpack(&zip, &ArchiveLimits::default());
        assert_eq!(got.problems, []);
        assert_eq!(
            got.images,
            [Member {
                name: "photos/a.jpg".into(),
                bytes: jpeg()
            }]
        );

        let tar = testbed::archive::tar(&[("b.jpg", &jpeg()), ("inner.zip", &zip)]);
        let tgz = testbed::archive::gzip(&tar);
        let got = unpack(&tgz, &ArchiveLimits::default());
        assert_eq!(got.problems, []);
        let names: Vec<&str> = got.images.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["b.jpg", "inner.zip/photos/a.jpg"]);
    }

    #[test]
    fn bombs_traversal_floods_and_deep_nesting_are_counted_problems() {
        let limits = ArchiveLimits::default();
        let bomb = testbed::archive::zip(&[("zeros.jpg", &vec![0u8; 64 << 20], true)]);
        assert!(bomb.len() < 1 << 20);
        let t = std::time::Instant::now();
        assert_eq!(unpack(&bomb, &limits).problems, [Problem::Bomb]);
        assert!(t.elapsed() < std::time::Duration::from_secs(5));

        let gz_bomb = testbed::archive::gzip(&vec![0u8; 32 << 20]);
        assert_eq!(unpack(&gz_bomb, &limits).problems, [Problem::Bomb]);

        let evil =
            testbed::archive::tar(&[("../../etc/cron.d/x.jpg", &jpeg()), ("ok.jpg", &jpeg())]);
        let got = unpack(&evil, &limits);
        assert_eq!(got.problems, [Problem::UnsafeName]);
        let names: Vec<&str> = got.images.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            ["etc/cron.d/x.jpg", "ok.jpg"],
            "a photo hidden behind ../ is read"
        );

        let many: Vec<(String, Vec<u8>)> =
            (0..1500).map(|i| (format!("{i}.txt"), vec![1u8])).collect();
        let refs: Vec<(&str, &[u8])> = many
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        let got = unpack(&testbed::archive::tar(&refs), &limits);
        assert_eq!(got.problems, [Problem::TooManyEntries]);

        let inner = testbed::archive::zip(&[("a.jpg", &jpeg(), false)]);
        let middle = testbed::archive::zip(&[("inner.zip", &inner, false)]);
        let outer = testbed::archive::zip(&[("middle.zip", &middle, false)]);
        assert_eq!(unpack(&outer, &limits).problems, [Problem::TooDeep]);
    }

    #[test]
    fn truncated_and_lying_archives_are_corrupt_not_panics() {
        let zip = testbed::archive::zip(&[("a.jpg", &jpeg(), true)]);
        for cut in [4, 30, zip.len() / 2, zip.len() - 10] {
            let _ = unpack(&zip[..cut], &ArchiveLimits::default());
        }
        let mut lying = zip.clone();
        let n = lying.len();
        lying[n - 12..n - 8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            unpack(&lying, &ArchiveLimits::default()).problems,
            [Problem::Corrupt]
        );
        let mut gz = Vec::new();
        let mut e = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::fast());
        e.write_all(b"plain text").unwrap();
        e.finish().unwrap();
        assert!(unpack(&gz, &ArchiveLimits::default()).images.is_empty());
    }
}
