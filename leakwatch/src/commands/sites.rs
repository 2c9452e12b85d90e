//! `leakwatch sites`: what the frontier knows of each site — whether it answers, since when,
//! and how its pages are scheduled — read from the frontier's store.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use crawler::schedule::SiteStatus;

pub async fn run(data_dir: &Path, state_url: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    if state_url.is_none() && !data_dir.join(crawler::store::SQLITE_FILE).exists() {
        anyhow::bail!(
            "no frontier state in {} (it is written by `leakwatch run` without --once); \
             pass --state-url for a shared PostgreSQL store",
            data_dir.display()
        );
    }
    let store = crawler::store::open(state_url, data_dir)
        .await
        .context("cannot open the frontier's store")?;
    let sites = store.sites().await.context("cannot read the sites")?;
    if json {
        for s in &sites {
            println!("{}", serde_json::to_string(&Line::from(s))?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<8} {:<5} {:>9} {:>9} {:<20} {:<20} {:>6} {:>5} {:<20}  SITE",
        "STATE",
        "SEED",
        "ANSWERED",
        "MISSED",
        "LAST UP",
        "LAST DOWN",
        "PAGES",
        "ENTRY",
        "NEXT VISIT"
    );
    for s in &sites {
        let l = Line::from(s);
        println!(
            "{:<8} {:<5} {:>9} {:>9} {:<20} {:<20} {:>6} {:>5} {:<20}  {}",
            l.state,
            if s.seed { "yes" } else { "" },
            s.answered,
            s.unanswered,
            l.last_up.as_deref().unwrap_or("-"),
            l.last_down.as_deref().unwrap_or("-"),
            s.scheduled_pages,
            s.entry_pages,
            l.next_visit.as_deref().unwrap_or("-"),
            s.site
        );
        for m in &s.mirrors {
            println!("{:>8} announces mirror {m}", "");
        }
    }
    eprintln!("{} sites", sites.len());
    Ok(ExitCode::SUCCESS)
}

/// One site as printed: times as RFC 3339, the state as a word.
#[derive(serde::Serialize)]
struct Line<'a> {
    site: &'a str,
    seed: bool,
    /// `up`, `down`, or `unknown` (never requested yet).
    state: &'static str,
    answered: u64,
    unanswered: u64,
    last_up: Option<String>,
    last_down: Option<String>,
    scheduled_pages: u64,
    entry_pages: u64,
    next_visit: Option<String>,
    fetches: u64,
    changes: u64,
    /// Onion sites this site announced as its mirror or new address (not followed blindly).
    mirrors: &'a [String],
}

impl<'a> From<&'a SiteStatus> for Line<'a> {
    fn from(s: &'a SiteStatus) -> Self {
        let time = |ms: Option<u64>| ms.map(|ms| schema::rfc3339_from_unix(ms / 1000));
        Line {
            site: &s.site,
            seed: s.seed,
            state: match s.up {
                Some(true) => "up",
                Some(false) => "down",
                None => "unknown",
            },
            answered: s.answered,
            unanswered: s.unanswered,
            last_up: time(s.last_up_ms),
            last_down: time(s.last_down_ms),
            scheduled_pages: s.scheduled_pages,
            entry_pages: s.entry_pages,
            next_visit: time(s.next_due_ms),
            fetches: s.fetches,
            changes: s.changes,
            mirrors: &s.mirrors,
        }
    }
}
