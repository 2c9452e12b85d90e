//! `leakwatch match`: the matcher's decision for local images, nearest fingerprints first.

use std::path::Path;
use std::process::ExitCode;

use matcher::{match_bytes, Bank, ImageHasher};
use serde_json::json;

use crate::cli::MatchArgs;
use crate::config::Config;

pub fn run(data_dir: &Path, config: &Config, args: &MatchArgs) -> anyhow::Result<ExitCode> {
    let bank = Bank::open(data_dir)?;
    if bank.is_empty() {
        eprintln!(
            "warning: no fingerprints in {}: import some first",
            data_dir.display()
        );
    }
    let hasher = ImageHasher::new();
    for path in &args.images {
        let shown = path.display().to_string();
        let result = std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| {
                match_bytes(&b, &bank, &hasher, &config.matcher, args.top)
                    .map_err(|e| e.to_string())
            });
        match result {
            Ok((_, _, _, matches)) => {
                if args.json {
                    super::print_json(&json!({ "path": shown, "matches": matches }))?;
                } else {
                    println!("{shown}");
                    for m in &matches {
                        println!(
                            "  {:<5} {:>3}  {}  ({})",
                            if m.matched { "MATCH" } else { "-" },
                            m.distance,
                            m.label,
                            m.algorithm
                        );
                    }
                }
            }
            Err(e) => {
                if args.json {
                    super::print_json(&json!({ "path": shown, "error": e }))?;
                } else {
                    println!("{shown}\n  error: {e}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
