//! A transport-wide outage pauses the crawl instead of draining it: the SOCKS proxy every
//! request goes through is stopped for 30 s in the middle of a crawl, and still every page
//! of the testbed is crawled, no site is marked down and no request is dropped.

use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_leakwatch");

const OUTAGE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_proxy_pauses_the_crawl_and_nothing_is_lost() {
    let tb = testbed::start(testbed::Config::default()).await.unwrap();
    let truth = tb.truth();
    let mut proxy = testbed::SocksProxy::start().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let cfg = data.join("cfg.toml");
    std::fs::write(
        &cfg,
        "[crawler]\nworkers = 4\npoliteness_delay_ms = 20\ntimeout_secs = 10\n",
    )
    .unwrap();
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("--data-dir").arg(&data).arg("--config").arg(&cfg);
    cmd.args(["run", "--once", "--allow-private", "--json", "--transport"])
        .arg(format!("socks5://{}", proxy.addr()));
    for s in tb.seeds() {
        cmd.args(["--seed", &s]);
    }
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let started = Instant::now();
    let child = cmd.spawn().unwrap();

    // Kill the proxy once the crawl is well under way, bring it back 30 s later.
    while proxy.connections() < 40 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "crawl never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.stop();
    let stopped_at = proxy.connections();
    tokio::time::sleep(OUTAGE).await;
    proxy.restart().await.unwrap();

    let pid = child.id();
    let wait = tokio::task::spawn_blocking(move || child.wait_with_output());
    let Ok(out) = tokio::time::timeout(Duration::from_secs(240), wait).await else {
        let _ = std::process::Command::new("kill")
            .arg(pid.to_string())
            .status();
        panic!("the crawl did not finish after the proxy came back");
    };
    let out = out.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let s: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert!(
        (stopped_at as usize) < truth.pages,
        "the outage came after the crawl: {s}"
    );
    assert!(started.elapsed() >= OUTAGE);
    // Every page, as without an outage; the wait is counted, nothing else failed.
    assert_eq!(s["pages"].as_u64().unwrap() as usize, truth.pages, "{s}");
    let errors = s["errors"].as_object().unwrap();
    assert!(errors["transport.down"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(errors.len(), 1, "only the outage: {s}");
    assert_eq!(s["sites_down"], 0, "{s}");
    tb.shutdown().await;
}
