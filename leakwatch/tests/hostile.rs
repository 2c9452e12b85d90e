//! Hostile input: every trap of the testbed's hostile site gives a counted error and no
//! panic, and nothing is fetched from a non-public address without `--allow-private`.

use std::path::Path;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_leakwatch");

async fn run(data: &Path, args: Vec<String>) -> Value {
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
    assert!(out.status.success(), "run failed: {stderr}");
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
    ] {
        assert_eq!(count(&s, kind), 1, "{kind}: {s}");
    }
    // The /deep/n trap ends at the depth limit.
    assert!(s["pages"].as_u64().unwrap() <= 12, "{s}");
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

    // Without --allow-private, loopback is refused, also when reached by name.
    let port = url::Url::parse(&root).unwrap().port().unwrap();
    let s = run(
        &tmp.path().join("guarded"),
        vec![
            "--seed".into(),
            root.clone(),
            "--seed".into(),
            format!("http://localhost:{port}/big"),
        ],
    )
    .await;
    assert_eq!(count(&s, "fetch.private-address"), 2, "{s}");
    assert_eq!(s["pages"], 0);
    tb.shutdown().await;
}
