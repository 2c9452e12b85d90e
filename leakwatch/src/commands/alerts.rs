//! `leakwatch alerts`: every alert raised so far, oldest first.

use std::path::Path;
use std::process::ExitCode;

use crate::cli::AlertsArgs;

pub fn run(data_dir: &Path, args: &AlertsArgs) -> anyhow::Result<ExitCode> {
    let alerts = indexer::alerts::load(&data_dir.join(indexer::alerts::ALERTS_FILE))?;
    for a in &alerts {
        if args.json {
            super::print_json(a)?;
        } else {
            println!(
                "{}  {:<5}  {}  distance {}  {}  (on {})",
                a.detected_at,
                a.kind.as_str(),
                a.label,
                a.distance,
                a.url,
                a.page_url.as_deref().unwrap_or("-")
            );
        }
    }
    if !args.json {
        eprintln!("{} alerts", alerts.len());
    }
    Ok(ExitCode::SUCCESS)
}
