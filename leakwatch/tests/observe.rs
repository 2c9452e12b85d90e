//! What an operator's monitoring sees of a running node: `/metrics` counters move while it
//! crawls, `/healthz` answers throughout, `/readyz` turns 503 while the transport is down
//! (the SOCKS proxy stopped) and 200 again once it is back, and logs are JSON lines when
//! asked. An idle crawler and a frontier over a real broker and PostgreSQL report their
//! transport and their store (and recover from a database outage by themselves), and the
//! broker's queue depths, without a request in flight.

#[path = "support/probe.rs"]
mod probe;
#[path = "support/services.rs"]
#[allow(dead_code)]
mod services;

use std::io::BufRead;
use std::time::Duration;

use probe::{get, sample, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_leakwatch");

/// The watched process, killed if the test ends early.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_health_and_readiness_follow_the_transport() {
    let tb = testbed::start(testbed::Config::default()).await.unwrap();
    let mut proxy = testbed::SocksProxy::start().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let cfg = data.join("cfg.toml");
    std::fs::write(
        &cfg,
        // Slow enough that the crawl is still going when the proxy stops (412 pages).
        "[crawler]\nworkers = 4\npoliteness_delay_ms = 200\ntimeout_secs = 10\n",
    )
    .unwrap();
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("--data-dir").arg(&data).arg("--config").arg(&cfg);
    cmd.args(["--log", "info", "run", "--allow-private", "--transport"])
        .arg(format!("socks5://{}", proxy.addr()))
        .args(["--metrics-listen", "127.0.0.1:0"])
        .env("LEAKWATCH_LOG_FORMAT", "json")
        .env_remove("LEAKWATCH_CONFIG");
    for s in tb.seeds() {
        cmd.args(["--seed", &s]);
    }
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = KillOnDrop(cmd.spawn().unwrap());
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let addr = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("no metrics address printed");
        if let Some(rest) = line.strip_prefix("metrics on http://") {
            break rest.split('/').next().unwrap().to_string();
        }
        lines.push(line);
    };

    assert_eq!(get(&addr, "/healthz").0, 200);
    let pages = |a: &str| sample(&get(a, "/metrics").1, "leakwatch_pages_total").unwrap_or(0.0);
    wait_for("pages crawled", Duration::from_secs(60), || {
        pages(&addr) > 0.0
    })
    .await;
    wait_for("ready", Duration::from_secs(30), || {
        get(&addr, "/readyz").0 == 200
    })
    .await;
    let (_, metrics) = get(&addr, "/metrics");
    // Fetches and index commits are timed.
    for h in ["fetch_duration", "index_commit_duration"] {
        let count = |a: &str| {
            let name = format!("leakwatch_{h}_seconds_count");
            sample(&get(a, "/metrics").1, &name).unwrap_or(0.0)
        };
        wait_for(h, Duration::from_secs(30), || count(&addr) > 0.0).await;
    }
    for role in ["frontier", "crawler", "matcher", "indexer"] {
        let line = format!("leakwatch_role_ready{{role=\"{role}\"}} 1");
        assert!(metrics.contains(&line), "{line} missing:\n{metrics}");
    }

    // The transport goes down: the crawler is not ready, the process is still alive.
    proxy.stop();
    wait_for(
        "not ready while the proxy is down",
        Duration::from_secs(60),
        || get(&addr, "/readyz").0 == 503,
    )
    .await;
    let (code, body) = get(&addr, "/readyz");
    assert_eq!(code, 503);
    assert!(body.contains("\"crawler\":false"), "{body}");
    assert_eq!(get(&addr, "/healthz").0, 200);
    let down_at = pages(&addr);
    assert!(
        (down_at as usize) < tb.truth().pages,
        "the crawl ended before the outage: the test proves nothing"
    );
    proxy.restart().await.unwrap();
    wait_for("ready again", Duration::from_secs(90), || {
        get(&addr, "/readyz").0 == 200
    })
    .await;
    wait_for("pages after the outage", Duration::from_secs(60), || {
        pages(&addr) > down_at
    })
    .await;

    let pid = child.0.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = tokio::task::spawn_blocking(move || child.0.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    // Until the reader thread sees the end of stderr.
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(10)) {
        lines.push(line);
    }
    let json: Vec<serde_json::Value> = lines
        .iter()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    assert!(
        json.iter()
            .any(|v| v["level"].is_string() && v["fields"]["message"].is_string()),
        "no JSON log line among {lines:?}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with('{') || l.starts_with("metrics on ")),
        "a log line that is not JSON: {lines:?}"
    );
    tb.shutdown().await;
}

/// A role waiting for its broker (a vhost that does not exist, `connect_wait_secs` long) is
/// alive and not ready, and a SIGTERM meanwhile stops it at once instead of being ignored
/// until the wait runs out (in a container, the process is PID 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_waiting_for_its_broker_is_not_ready_and_stops_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let vhost = format!("leakwatch-test-absent-{}", std::process::id());
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("--data-dir").arg(tmp.path().join("data"));
    cmd.args([
        "run",
        "--roles",
        "indexer",
        "--metrics-listen",
        "127.0.0.1:0",
    ])
    .arg("--amqp")
    .arg(format!("amqp://guest:guest@127.0.0.1:5672/{vhost}"))
    .env("LEAKWATCH_BUS_CONNECT_WAIT_SECS", "300")
    .env_remove("LEAKWATCH_CONFIG")
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped());
    let mut child = KillOnDrop(cmd.spawn().unwrap());
    let (addr, rx) = metrics_address(&mut child.0);
    assert_eq!(get(&addr, "/healthz").0, 200);
    for _ in 0..5 {
        let (code, body) = get(&addr, "/readyz");
        assert_eq!((code, body.as_str()), (503, "{\"indexer\":false}"));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let pid = child.0.id().to_string();
    let sent = std::time::Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = tokio::task::spawn_blocking(move || child.0.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(
        sent.elapsed() < Duration::from_secs(10),
        "SIGTERM took {:?} to stop a process waiting for its broker",
        sent.elapsed()
    );
    // Killed by the signal itself would be no exit code at all: it was heard and handled.
    assert!(status.code().is_some(), "{status}");
    // Until the reader thread sees the end of stderr.
    let said: Vec<String> =
        std::iter::from_fn(|| rx.recv_timeout(Duration::from_secs(10)).ok()).collect();
    assert!(
        said.iter()
            .any(|l| l.contains("stopped before the bus was connected")),
        "{said:?}"
    );
}

/// The metrics address a starting process prints on stderr, and its later stderr lines.
fn metrics_address(child: &mut std::process::Child) -> (String, std::sync::mpsc::Receiver<String>) {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("no metrics address printed");
        if let Some(rest) = line.strip_prefix("metrics on http://") {
            return (rest.split('/').next().unwrap().to_string(), rx);
        }
    }
}

/// A crawler with nothing to fetch still reports a dead transport (its SOCKS proxy is
/// asked every few seconds), a frontier reports its PostgreSQL down and connects again
/// by itself once it is back, and both expose the broker's queue depths and consumers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_crawler_and_a_frontier_report_their_transport_store_and_queues() {
    let vhost = services::Vhost::new("idle-ready");
    let db = services::PgDb::create("idle_ready");
    let mut proxy = testbed::SocksProxy::start().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("--data-dir").arg(tmp.path().join("data"));
    cmd.args(["run", "--roles", "crawler,frontier", "--allow-private"])
        .arg("--transport")
        .arg(format!("socks5://{}", proxy.addr()))
        .arg("--amqp")
        .arg(&vhost.url)
        .arg("--state-url")
        .arg(&db.url)
        .args(["--metrics-listen", "127.0.0.1:0"])
        .env_remove("LEAKWATCH_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = KillOnDrop(cmd.spawn().unwrap());
    let (addr, _lines) = metrics_address(&mut child.0);
    let metric = |name: &str| sample(&get(&addr, "/metrics").1, name);
    let ready = || get(&addr, "/readyz");
    wait_for("ready", Duration::from_secs(60), || ready().0 == 200).await;
    // Sampled from the broker: the crawler's workers consume the requests, the frontier
    // the discoveries, and nothing waits in either.
    let requests = "leakwatch_queue_consumers{queue=\"leakwatch.crawl.requests\"}";
    let discovered = "leakwatch_queue_consumers{queue=\"leakwatch.crawl.discovered\"}";
    wait_for("queue depths sampled", Duration::from_secs(30), || {
        metric(requests).is_some_and(|n| n >= 1.0) && metric(discovered) == Some(1.0)
    })
    .await;
    assert_eq!(
        metric("leakwatch_queue_messages{queue=\"leakwatch.crawl.requests\"}"),
        Some(0.0)
    );
    assert_eq!(metric("leakwatch_transport_up"), Some(1.0));
    assert_eq!(
        metric("leakwatch_pages_total"),
        Some(0.0),
        "the crawler is idle"
    );

    // Waits for /readyz to answer `code` with these roles' readiness in its body.
    let readiness = |what: &'static str, code: u16, roles: &'static [&'static str]| {
        let ready = &ready;
        async move {
            wait_for(what, Duration::from_secs(30), || {
                let (c, body) = ready();
                c == code && roles.iter().all(|r| body.contains(r))
            })
            .await
        }
    };
    // The proxy goes away while nothing is being fetched.
    proxy.stop();
    const PROXY_DOWN: &[&str] = &["\"crawler\":false", "\"frontier\":true"];
    readiness("not ready with the proxy down", 503, PROXY_DOWN).await;
    assert_eq!(metric("leakwatch_transport_up"), Some(0.0));
    proxy.restart().await.unwrap();
    readiness("ready with the proxy back", 200, &[]).await;

    // The database goes down: the frontier is not ready (the crawler still is); once it is
    // back, the frontier connects again by itself.
    db.go_down();
    const DB_DOWN: &[&str] = &["\"frontier\":false", "\"crawler\":true"];
    readiness("not ready with the database down", 503, DB_DOWN).await;
    db.come_back();
    readiness("ready with the database back", 200, &[]).await;
    assert_eq!(metric("leakwatch_pages_total"), Some(0.0));
    drop(child);
}
