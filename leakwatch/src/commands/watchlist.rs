//! `leakwatch watchlist`: the stolen identifiers, stored only as keyed hashes.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use matcher::Watchlist;

pub fn import(data_dir: &Path, file: &Path) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("failed to read {}", file.display()))?;
    let mut wl = Watchlist::open(data_dir)?;
    let (mut added, mut present, mut bad) = (0, 0, 0);
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (label, ident) = match line.split_once('\t') {
            Some((l, i)) => (Some(l.trim()), i.trim()),
            None => (None, line),
        };
        match wl.add(ident, label) {
            Ok(true) => added += 1,
            Ok(false) => present += 1,
            Err(e) => {
                bad += 1;
                eprintln!("{}:{}: {e}", file.display(), n + 1);
            }
        }
    }
    wl.save()?;
    println!(
        "watching {} identifiers ({added} new, {present} already present, {bad} rejected)",
        wl.len()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn count(data_dir: &Path) -> anyhow::Result<ExitCode> {
    println!("{}", Watchlist::open(data_dir)?.len());
    Ok(ExitCode::SUCCESS)
}
