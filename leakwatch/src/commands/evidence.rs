//! `leakwatch evidence`: the responses kept to back alerts (keygen, list, export, purge).

use std::path::Path;
use std::process::ExitCode;

use ::evidence::{EvidenceConfig, EvidenceKey, Vault};
use anyhow::Context;

use crate::cli::EvidenceCmd;

pub fn run(data_dir: &Path, config: &EvidenceConfig, cmd: EvidenceCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        EvidenceCmd::Keygen { file } => {
            refuse_inside(data_dir, &file)?;
            EvidenceKey::create_file(&file)?;
            println!(
                "wrote a new evidence key to {}; set {}={} for the matchers",
                file.display(),
                ::evidence::vault::KEY_FILE_ENV,
                file.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        EvidenceCmd::List { json } => list(&open(data_dir, config)?, json),
        EvidenceCmd::Export { alert_id, dir } => {
            let out = ::evidence::export(data_dir, key(data_dir, config)?, &alert_id, &dir)?;
            println!(
                "{} records in {}, alert in {}, sums in {}",
                out.records,
                out.warc.display(),
                out.alert.display(),
                out.manifest.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        EvidenceCmd::Purge => {
            let mut vault = open(data_dir, config)?;
            let now = schema::unix_from_rfc3339(&schema::now_rfc3339()).unwrap_or(0);
            let n = vault.purge(config.retention_days, now)?;
            println!(
                "deleted {n} evidence files older than {} days",
                config.retention_days
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A key file may not live in the data dir: a copy of the data dir must not open the vault.
fn refuse_inside(data_dir: &Path, file: &Path) -> anyhow::Result<()> {
    let parent = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let (Ok(dir), Ok(data)) = (parent.canonicalize(), data_dir.canonicalize()) {
        if dir.starts_with(&data) {
            anyhow::bail!(
                "{} is inside the data dir {}; keep the evidence key outside it (a mounted secret)",
                file.display(),
                data_dir.display()
            );
        }
    }
    Ok(())
}

/// The evidence key, which every command but `keygen` needs.
fn key(data_dir: &Path, config: &EvidenceConfig) -> anyhow::Result<EvidenceKey> {
    EvidenceKey::load(config, data_dir)?.with_context(|| {
        format!(
            "no evidence key: set {} (a key file outside the data dir) or {}",
            ::evidence::vault::KEY_FILE_ENV,
            ::evidence::vault::KEY_ENV
        )
    })
}

fn open(data_dir: &Path, config: &EvidenceConfig) -> anyhow::Result<Vault> {
    Ok(Vault::open(data_dir, key(data_dir, config)?, config)?)
}

fn list(vault: &Vault, json: bool) -> anyhow::Result<ExitCode> {
    for k in vault.list()? {
        if json {
            super::print_json(&k)?;
        } else {
            println!(
                "{}  {}  {} frame(s)  {} bytes",
                k.alert_id, k.day, k.frames, k.bytes
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
