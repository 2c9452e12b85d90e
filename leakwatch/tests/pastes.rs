//! Paste sites for real: two live paste sites publish pastes while `leakwatch run` watches
//! them through `[[pastes]]` adapters — one listing recent pastes as HTML, the other through a
//! JSON API that answers `429` with `Retry-After` to a request that comes too soon. The HTML
//! site is down (`503`) when the watch starts.
//!
//! Checked: every paste's raw view is fetched exactly once (counted by the sites), the
//! rate-limiting site did refuse requests and the down site was tried while down, and no
//! paste was lost for either, each planted identifier
//! (spaced out, dotted, look-alike characters) raises one text alert on its paste and no decoy
//! does; after a restart nothing already fetched is fetched again.

#[path = "support/watch_run.rs"]
mod watch_run;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use testbed::pastes::{PasteSites, PastesConfig};

use watch_run::WatchRun;

const BIN: &str = env!("CARGO_BIN_EXE_leakwatch");

fn text_alerts(data: &Path) -> Vec<Value> {
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(["alerts", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|a| a["kind"] == "text")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pastes_published_during_a_run_are_each_fetched_once_and_alerted() {
    let identifiers = testbed::stolen_identifiers(11, 12, 8);
    let sites = PasteSites::start(PastesConfig::default(), &identifiers)
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let idents = tmp.path().join("identifiers.txt");
    std::fs::write(&idents, identifiers.join("\n")).unwrap();
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(&data)
        .args(["watchlist", "import"])
        .arg(&idents)
        .output()
        .unwrap();
    assert!(out.status.success());
    // The API site refuses requests closer than 300 ms; its adapter spaces them by 200 ms, so
    // some are refused and must be retried after the pause the site asks for.
    let config = format!(
        "[crawler]\nworkers = 4\npoliteness_delay_ms = 0\ntimeout_secs = 10\n\n{}",
        sites.config_toml(1)
    )
    .replace("poll_secs = 1\n", "poll_secs = 1\nmin_interval_ms = 200\n");
    std::fs::write(data.join("cfg.toml"), config).unwrap();

    let run = WatchRun::start(&data, "warn,leakwatch_crawler=info", &[]);
    let expected = sites.planted().len();
    assert!(expected >= 6, "the sites plant too few identifiers");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let fetched = sites.raw_urls().iter().all(|u| sites.hits(u) >= 1);
        if sites.all_published() && fetched && text_alerts(&data).len() >= expected {
            break;
        }
        if Instant::now() > deadline {
            let unfetched: Vec<String> = sites
                .raw_urls()
                .into_iter()
                .filter(|u| sites.hits(u) == 0)
                .collect();
            let alerted = text_alerts(&data).len();
            let (summary, log) = run.stop().await;
            panic!(
                "not every paste fetched and alerted in 60 s: {alerted} of {expected} alerts, \
                 unfetched: {unfetched:?}\n{summary}\n{log}"
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A few more polls: nothing is fetched twice.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (summary, _) = run.stop().await;
    assert!(
        summary["health"]["site.rate-limited"].as_u64().unwrap_or(0) >= 1,
        "{summary}"
    );
    assert!(
        summary["recrawl"]["pastes.listed"].as_u64().unwrap_or(0) >= sites.raw_urls().len() as u64,
        "{summary}"
    );
    assert!(
        sites.down_answers() >= 1,
        "the HTML site was never tried while it was down"
    );
    assert!(
        sites.rate_limited() >= 1,
        "the API site never refused a request"
    );
    for u in sites.raw_urls() {
        assert_eq!(sites.hits(&u), 1, "{u} fetched {} times", sites.hits(&u));
    }

    let alerts = text_alerts(&data);
    for p in sites.planted() {
        let on_page: Vec<&Value> = alerts
            .iter()
            .filter(|a| a["url"] == p.raw_url.as_str())
            .collect();
        assert_eq!(on_page.len(), 1, "{p:?}: {on_page:?}");
        assert!(on_page[0]["identifier"]["masked"]
            .as_str()
            .unwrap()
            .contains('*'));
    }
    for d in sites.decoys() {
        assert!(
            !alerts.iter().any(|a| a["url"] == d.as_str()),
            "decoy paste {d} alerted"
        );
    }
    assert_eq!(alerts.len(), expected, "{alerts:?}");

    // Restarted, the adapters poll again and fetch nothing already seen.
    let again = WatchRun::start(&data, "warn,leakwatch_crawler=info", &[]);
    tokio::time::sleep(Duration::from_secs(4)).await;
    again.stop().await;
    for u in sites.raw_urls() {
        assert_eq!(sites.hits(&u), 1, "{u} fetched again after a restart");
    }
    sites.shutdown();
}
