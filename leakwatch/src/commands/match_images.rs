//! `leakwatch match`: the matcher's decision for local images, nearest fingerprints first.

use std::path::Path;
use std::process::ExitCode;

use matcher::match_bytes;
use rayon::prelude::*;
use serde_json::json;

use crate::cli::MatchArgs;
use node::Config;

pub fn run(data_dir: &Path, config: &Config, args: &MatchArgs) -> anyhow::Result<ExitCode> {
    let engine = matcher::open_engine(data_dir, config.matcher.params())?;
    if engine.is_empty() {
        eprintln!(
            "warning: no fingerprints in {}: import some first",
            data_dir.display()
        );
    }
    // Matched in parallel, printed in the order given.
    let results: Vec<(String, Result<matcher::Outcome, String>)> = args
        .images
        .par_iter()
        .map(|path| {
            let r = std::fs::read(path)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    match_bytes(&b, &engine, &config.matcher, args.top).map_err(|e| e.to_string())
                });
            (path.display().to_string(), r)
        })
        .collect();
    for (shown, result) in results {
        match result {
            Ok(outcome) => {
                let matches = outcome.candidates;
                if args.json {
                    super::print_json(
                        &json!({ "path": shown, "alert": outcome.sighted, "matches": matches }),
                    )?;
                } else {
                    println!("{shown}");
                    match &outcome.sighted {
                        Some(matcher::Sighted::Image { label, .. }) => {
                            println!("  alert: image, a copy of {label}")
                        }
                        Some(matcher::Sighted::Scene { label, nearest, .. }) => println!(
                            "  alert: scene, a frame of camera {label}, none of its photos \
                             (nearest: {})",
                            nearest.join(", ")
                        ),
                        None => println!("  alert: none"),
                    }
                    for m in &matches {
                        println!(
                            "  {:<5} {:>3}  {}  ({}, hash distance {})",
                            if m.matched { "MATCH" } else { "-" },
                            m.distance,
                            m.label,
                            m.algorithm,
                            m.hash_distance
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
