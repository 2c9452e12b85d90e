//! `leakwatch fingerprints import|list`: building the bank from the stolen images.
//!
//! Files are hashed in parallel in chunks, and the bank is saved after each chunk, so an
//! interrupted import of a large set resumes where it stopped (files already in the bank are
//! recognised by their sha256 and skipped without decoding).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use matcher::{bank::Fingerprint, hashing, Bank, ImageHasher};
use rayon::prelude::*;

use crate::config::Config;

/// Larger files are not read: no stolen photo is this big, and reading it costs memory.
const MAX_FILE_BYTES: u64 = 200 * 1024 * 1024;
const CHUNK: usize = 512;

pub fn import(data_dir: &Path, config: &Config, paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let files = collect_files(paths)?;
    let mut bank = Bank::open(data_dir)?;
    let bar = if std::io::stderr().is_terminal() {
        let b = ProgressBar::new(files.len() as u64);
        b.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} images {per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let hasher = ImageHasher::new();
    let (mut added, mut present, mut unreadable) = (0usize, 0usize, 0usize);
    for chunk in files.chunks(CHUNK) {
        let results: Vec<(PathBuf, Result<Option<Fingerprint>, String>)> = chunk
            .par_iter()
            .map(|p| (p.clone(), fingerprint_file(p, &bank, &hasher, config)))
            .collect();
        for (path, r) in results {
            match r {
                Ok(Some(fp)) => {
                    if bank.insert(fp) {
                        added += 1;
                    } else {
                        present += 1;
                    }
                }
                Ok(None) => present += 1,
                Err(e) => {
                    unreadable += 1;
                    bar.suspend(|| eprintln!("unreadable: {}: {e}", path.display()));
                }
            }
            bar.inc(1);
        }
        bank.save()?;
    }
    bar.finish_and_clear();
    println!(
        "imported {added} new fingerprints, {present} already present, {unreadable} unreadable; \
         the bank holds {} fingerprints ({})",
        bank.len(),
        data_dir.join(matcher::bank::BANK_FILE).display()
    );
    Ok(if added + present == 0 && unreadable > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn fingerprint_file(
    path: &Path,
    bank: &Bank,
    hasher: &ImageHasher,
    config: &Config,
) -> Result<Option<Fingerprint>, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!("larger than {MAX_FILE_BYTES} bytes"));
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let sha256 = schema::sha256_hex(&bytes);
    if bank.contains_source(&sha256) {
        return Ok(None);
    }
    let img = hashing::decode(&bytes, config.matcher.decode).map_err(|e| e.to_string())?;
    let hash = hasher.dct256(&img);
    let label = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| sha256[..12].to_string());
    Ok(Some(Fingerprint {
        label,
        sha256,
        algorithm: hashing::DCT256.to_string(),
        hash: hex::encode(hash),
        width: img.width(),
        height: img.height(),
        imported_at: schema::now_rfc3339(),
    }))
}

/// Files under the given paths, sorted for a stable order.
fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
        if meta.is_file() {
            out.push(p.clone());
            continue;
        }
        for entry in walkdir::WalkDir::new(p).sort_by_file_name() {
            match entry {
                Ok(e) if e.file_type().is_file() => out.push(e.into_path()),
                Ok(_) => {}
                Err(e) => eprintln!("unreadable: {e}"),
            }
        }
    }
    Ok(out)
}

pub fn list(data_dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let bank = Bank::open(data_dir)?;
    for fp in bank.fingerprints() {
        if json {
            super::print_json(fp)?;
        } else {
            println!(
                "{}\t{}\t{}x{}\t{}",
                fp.label, fp.algorithm, fp.width, fp.height, fp.hash
            );
        }
    }
    if !json {
        eprintln!("{} fingerprints", bank.len());
    }
    Ok(ExitCode::SUCCESS)
}
