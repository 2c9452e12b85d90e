//! `leakwatch search`: full-text search over everything crawled.

use std::path::Path;
use std::process::ExitCode;

use indexer::PageIndex;
use serde_json::json;

use crate::cli::SearchArgs;

pub fn run(data_dir: &Path, args: &SearchArgs) -> anyhow::Result<ExitCode> {
    if !data_dir.join(indexer::index::INDEX_DIR).exists() {
        anyhow::bail!(
            "no index in {}: crawl something first (leakwatch run) or pass --data-dir",
            data_dir.display()
        );
    }
    let index = PageIndex::open(data_dir)?;
    let hits = index.search(&args.query, args.limit)?;
    for h in &hits {
        if args.json {
            super::print_json(&json!({
                "url": h.url,
                "title": h.title,
                "snippet": h.snippet,
                "fetched_at": h.fetched_at,
            }))?;
        } else {
            println!("{}\n  {}\n  {}\n", h.title, h.url, h.snippet);
        }
    }
    if !args.json {
        eprintln!("{} results", hits.len());
    }
    Ok(ExitCode::SUCCESS)
}
