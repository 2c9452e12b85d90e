//! Hostile input: every trap of the testbed's hostile site gives a counted error and no
//! panic, nothing is fetched from a non-public address without `--allow-private`, and a crawl
//! that meets pages built to stall or crash extraction still alerts every leak elsewhere.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_leakwatch");

/// `run --once` over the direct transport; the exit status must be `code`.
async fn run(data: &Path, args: Vec<String>) -> Value {
    run_expecting(data, args, 0).await
}

async fn run_expecting(data: &Path, args: Vec<String>, code: i32) -> Value {
    std::fs::create_dir_all(data).unwrap();
    let cfg = data.join("cfg.toml");
    std::fs::write(
        &cfg,
        "[crawler]\nworkers = 8\npoliteness_delay_ms = 0\ntimeout_secs = 4\nmax_depth = 6\n",
    )
    .unwrap();
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("--data-dir").arg(data).arg("--config").arg(&cfg);
    cmd.args(["run", "--once", "--transport", "direct", "--json"])
        .args(&args);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "run: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"))
}

fn count(summary: &Value, kind: &str) -> u64 {
    summary["errors"][kind].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_site_gives_counted_errors_not_panics() {
    let tb = testbed::start(testbed::Config {
        hostile: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let root = tb.hostile_url().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let started = std::time::Instant::now();
    let s = run(
        &data,
        vec!["--allow-private".into(), "--seed".into(), root.clone()],
    )
    .await;
    for kind in [
        "fetch.body-too-large",     // /big: 50 MB page
        "fetch.too-many-redirects", // /redirect/n: endless chain
        "image.too-large",          // /bomb.png: 30000x30000
        "image.truncated",          // /truncated.jpg
        "fetch.not-an-image",       // /notimage.jpg: HTML served as image/jpeg
        "html.undeclared-encoding", // /latin1.html
        "fetch.timeout",            // /slow drips for 60 s
        "archive.bomb",             // /att/bomb.zip: 256 MiB of zeros
        "archive.unsafe-name",      // /att/climb.tar: ../../../etc/cron.d/evil.jpg
        "archive.too-deep",         // /att/nest.zip: zip in zip in zip
        "archive.too-many-entries", // /att/flood.tar: 2,000 entries
    ] {
        assert_eq!(count(&s, kind), 1, "{kind}: {s}");
    }
    // The /deep/n trap ends at the depth limit.
    assert!(s["pages"].as_u64().unwrap() <= 16, "{s}");
    assert!(
        started.elapsed().as_secs() < 40,
        "bounded time: {:?}",
        started.elapsed()
    );

    // The Latin-1 page was decoded and indexed.
    let out = std::process::Command::new(BIN)
        .arg("--data-dir")
        .arg(&data)
        .args(["search", "\"caf\u{e9} hostile latin phrase\"", "--json"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("latin1.html"), "{text}");

    // Without --allow-private, loopback is refused, also when reached by name; the run says
    // it never reached its seeds and exits 2.
    let port = url::Url::parse(&root).unwrap().port().unwrap();
    let s = run_expecting(
        &tmp.path().join("guarded"),
        vec![
            "--seed".into(),
            root.clone(),
            "--seed".into(),
            format!("http://localhost:{port}/big"),
        ],
        2,
    )
    .await;
    assert_eq!(count(&s, "fetch.private-address"), 2, "{s}");
    assert_eq!(s["pages"], 0);
    assert_eq!(s["unreached_seeds"].as_array().unwrap().len(), 2, "{s}");
    tb.shutdown().await;
}

/// Runs the binary with the data dir; panics with its stderr when it fails.
fn leakwatch(data: &Path, args: &[&str]) -> std::process::Output {
    let out = std::process::Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn alerts(data: &Path) -> Vec<Value> {
    String::from_utf8_lossy(&leakwatch(data, &["alerts", "--json"]).stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_built_to_stall_or_crash_extraction_cost_no_leak_elsewhere() {
    let tb = testbed::start(testbed::Config {
        hostile: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let truth = tb.truth();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let stolen = tmp.path().join("stolen");
    tb.write_stolen_set(&stolen).unwrap();
    let idents = tmp.path().join("identifiers.txt");
    tb.write_identifiers(&idents).unwrap();
    leakwatch(&data, &["fingerprints", "import", stolen.to_str().unwrap()]);
    leakwatch(&data, &["watchlist", "import", idents.to_str().unwrap()]);

    let mut args = vec!["--allow-private".to_string()];
    for s in tb.seeds().into_iter().chain(tb.hostile_url()) {
        args.extend(["--seed".to_string(), s]);
    }
    let started = Instant::now();
    let s = run(&data, args).await;
    let took = started.elapsed();
    // /slow drips for 60 s against a 4 s timeout; nothing else may take long.
    assert!(took < Duration::from_secs(120), "took {took:?}: {s}");
    // `<div/>` floods nest for real and are cut at the depth bound.
    assert!(count(&s, "html.too-deep") >= 1, "{s}");
    // 2,000 made-up onions on one page add at most 20 sites.
    let dropped = s["health"]["frontier.dropped.site-cap.page"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(dropped, testbed::FAKE_ONIONS as u64 - 20, "{s}");
    assert_eq!(count(&s, "fetch.onion-needs-tor"), 20, "{s}");
    assert_eq!(count(&s, "extract.panic"), 0, "{s}");

    // The page with non-ASCII image names was extracted and indexed.
    let found = leakwatch(
        &data,
        &[
            "search",
            &format!("\"{}\"", testbed::UNICODE_PHRASE),
            "--json",
        ],
    );
    let text = String::from_utf8_lossy(&found.stdout);
    assert!(text.contains("unicode.html"), "{text}");

    // Every leak on the normal sites is alerted, and only those.
    let alerts = alerts(&data);
    for leak in &truth.leaks {
        let hit = alerts.iter().any(|a| {
            let url = a["url"].as_str().unwrap();
            let same = if leak.data_uri {
                url.starts_with("data:") && a["page_url"] == leak.page_url.as_str()
            } else {
                url == leak.image_url
            };
            a["kind"] == "image" && same && a["label"] == leak.label.as_str()
        });
        assert!(hit, "planted leak not alerted: {leak:?}");
    }
    let text_pages: HashSet<&str> = alerts
        .iter()
        .filter(|a| a["kind"] == "text")
        .map(|a| a["url"].as_str().unwrap())
        .collect();
    for t in &truth.text_leaks {
        assert!(text_pages.contains(t.page_url.as_str()), "{t:?}");
    }
    tb.shutdown().await;
}
