//! `leakwatch watchlist`: the stolen identifiers, stored only as keyed hashes.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use matcher::{IdentifierKind, Watchlist};

pub fn import(data_dir: &Path, file: &Path, kind: IdentifierKind) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("failed to read {}", file.display()))?;
    let mut wl = Watchlist::open_writer(data_dir)?;
    let imported = wl.import_text(&text, kind);
    for (line, e) in &imported.rejected {
        eprintln!("{}:{line}: {e}", file.display());
    }
    wl.save()?;
    println!(
        "watching {} identifiers ({} new, {} already present, {} rejected)",
        wl.len(),
        imported.added,
        imported.present,
        imported.rejected.len()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn count(data_dir: &Path) -> anyhow::Result<ExitCode> {
    println!("{}", Watchlist::open(data_dir)?.len());
    Ok(ExitCode::SUCCESS)
}
