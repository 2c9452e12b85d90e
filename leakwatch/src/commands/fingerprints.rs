//! `leakwatch fingerprints import|list`: building the bank ([`matcher::import`]) with a
//! progress bar, and listing it.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use matcher::bank::Source;
use matcher::import::{self, ImportError, ImportProgress, ImportReport};
use matcher::{Bank, ImageError};
use node::Config;

/// Without a terminal, a progress line this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Progress on a terminal (a bar) or in logs (a line every few seconds).
struct Progress {
    bar: ProgressBar,
    total: usize,
    done: usize,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    fn new(total: usize) -> Progress {
        let bar = if std::io::stderr().is_terminal() {
            let b = ProgressBar::new(total as u64);
            b.set_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} images {per_sec} eta {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b
        } else {
            ProgressBar::hidden()
        };
        Progress {
            bar,
            total,
            done: 0,
            started: Instant::now(),
            last_line: Instant::now(),
        }
    }
}

impl ImportProgress for Progress {
    fn resumed(&mut self, recovered: usize) {
        eprintln!("resuming: {recovered} fingerprints recovered from an interrupted import");
    }

    fn refused(&mut self, path: &Path, error: &ImageError) {
        self.bar
            .suspend(|| eprintln!("not imported: {}: {error}", path.display()));
    }

    fn advanced(&mut self, n: usize) {
        self.done += n;
        self.bar.inc(n as u64);
        if self.bar.is_hidden() && self.last_line.elapsed() >= PROGRESS_EVERY {
            self.last_line = Instant::now();
            let rate = self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
            eprintln!("imported {}/{} images ({rate:.0}/s)", self.done, self.total);
        }
    }
}

pub fn import(data_dir: &Path, config: &Config, paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let files = import::collect_files(paths, |e| eprintln!("unreadable: {e}"))?;
    let mut progress = Progress::new(files.len());
    let report = import::import_images(data_dir, &config.matcher, &files, &mut progress)?;
    progress.bar.finish_and_clear();
    print_import(data_dir, &report);
    let refused: usize = report.refused.values().sum();
    Ok(if report.added + report.present == 0 && refused > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_import(data_dir: &Path, report: &ImportReport) {
    let refused: usize = report.refused.values().sum();
    let reasons = report
        .refused
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "imported {} new fingerprints, {} already present, {refused} not imported{}; the bank \
         holds {} fingerprints ({})",
        report.added,
        report.present,
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" ({reasons})")
        },
        report.bank_len,
        data_dir.join(matcher::bank::BANK_FILE).display()
    );
}

/// `fingerprints import --from-hashes FILE`: PDQ hashes computed elsewhere.
pub fn import_hashes(data_dir: &Path, file: &Path) -> anyhow::Result<ExitCode> {
    let hashes = import::read_hash_file(file).inspect_err(|e| {
        if let ImportError::BadLines { path, lines, .. } = e {
            for b in lines {
                eprintln!("{}: {b}", path.display());
            }
        }
    })?;
    let report = import::import_hashes(data_dir, hashes)?;
    println!(
        "imported {} new PDQ hashes, {} already present; the bank holds {} fingerprints ({})",
        report.added,
        report.present,
        report.bank_len,
        data_dir.join(matcher::bank::BANK_FILE).display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn list(data_dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let bank = Bank::open(data_dir)?;
    for fp in bank.fingerprints() {
        if json {
            super::print_json(fp)?;
        } else {
            println!(
                "{}\t{}\t{}x{}\t{}",
                fp.label,
                match fp.source {
                    Source::Image => "image",
                    Source::Hashes => "pdq-only",
                },
                fp.width,
                fp.height,
                fp.pdq().map(hex::encode).unwrap_or_default()
            );
        }
    }
    if !json {
        eprintln!("{} fingerprints", bank.len());
    }
    Ok(ExitCode::SUCCESS)
}
