//! Memory stays bounded when crawlers outpace the matcher: a page of 200 distinct noise JPEGs
//! of a few MiB each (about 0.9 GiB in all) is crawled by eight workers and hashed by one
//! decoder. The in-process bus holds its image queue to `[bus] queue_bytes`, so the crawlers
//! wait instead of piling every image in memory; the run's peak RSS stays under the budget.

use std::time::Instant;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_leakwatch");

/// The stated budget for this run (queue 64 MiB, eight fetches of up to 10 MiB in flight, one
/// decode, the index).
const RSS_BUDGET_MIB: i64 = 512;

/// Peak resident memory of the children this process has waited for, in MiB.
fn children_peak_rss_mib() -> i64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct it is given.
    assert_eq!(
        unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) },
        0
    );
    usage.ru_maxrss / 1024 // kilobytes on Linux
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_large_images_keeps_memory_under_budget() {
    let tb = testbed::start(testbed::Config {
        hostile: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let heavy = format!("{}heavy.html", tb.hostile_url().unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let cfg = data.join("cfg.toml");
    // LEAKWATCH_TEST_QUEUE_BYTES=1000000000000 lifts the bound: the test must then fail.
    let queue_bytes =
        std::env::var("LEAKWATCH_TEST_QUEUE_BYTES").unwrap_or_else(|_| "67108864".into());
    std::fs::write(
        &cfg,
        format!(
            "[crawler]\nworkers = 8\npoliteness_delay_ms = 0\n\
             [matcher]\nworkers = 1\n\
             [bus]\nqueue_bytes = {queue_bytes}\n"
        ),
    )
    .unwrap();
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("--data-dir").arg(&data).arg("--config").arg(&cfg);
    cmd.args([
        "run",
        "--once",
        "--transport",
        "direct",
        "--allow-private",
        "--json",
    ]);
    cmd.args(["--seed", &heavy]);
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let s: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    let peak = children_peak_rss_mib();
    eprintln!(
        "{} images in {:.1}s, peak RSS {peak} MiB",
        s["images"],
        started.elapsed().as_secs_f64()
    );
    // Every image went through, none was dropped for memory.
    assert_eq!(
        s["images"].as_u64().unwrap() as usize,
        testbed::HEAVY_IMAGES,
        "{s}"
    );
    assert_eq!(
        s["images_hashed"].as_u64().unwrap() as usize,
        testbed::HEAVY_IMAGES,
        "{s}"
    );
    assert!(
        peak < RSS_BUDGET_MIB,
        "peak RSS {peak} MiB over the {RSS_BUDGET_MIB} MiB budget: {s}"
    );
    tb.shutdown().await;
}
