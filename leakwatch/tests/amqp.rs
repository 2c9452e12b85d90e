//! Distributed mode against a real RabbitMQ: every role its own process, crash and broker
//! restart mid-crawl, a poison message, and the webhook forwarder.
//!
//! Each test runs in a fresh vhost; the tests of this file run one at a time because one of
//! them restarts the broker. The broker is `LEAKWATCH_TEST_AMQP_URL` (default the local one,
//! which `scripts/test.sh` starts when none answers).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "support/probe.rs"]
#[allow(dead_code)]
mod probe;
#[path = "support/services.rs"]
#[allow(dead_code)]
mod services;

use services::{rabbitmqctl, PgDb, Vhost};

const BIN: &str = env!("CARGO_BIN_EXE_leakwatch");
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A leakwatch process with its output in files.
struct Proc {
    name: String,
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

/// A test that fails part-way must not leave its processes running.
impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Proc {
    fn start(name: &str, dir: &Path, args: &[String]) -> Proc {
        let stdout = dir.join(format!("{name}.out"));
        let stderr = dir.join(format!("{name}.err"));
        let child = Command::new(BIN)
            .args(args)
            .env(
                "LEAKWATCH_LOG",
                std::env::var("LEAKWATCH_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn leakwatch");
        Proc {
            name: name.into(),
            child,
            stdout,
            stderr,
        }
    }

    fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then the exit status must be 0 (graceful shutdown).
    fn terminate(mut self) -> String {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let err = std::fs::read_to_string(&self.stderr).unwrap_or_default();
                assert!(
                    status.success(),
                    "{} exited with {status} on SIGTERM:\n{err}",
                    self.name
                );
                return std::fs::read_to_string(&self.stdout).unwrap_or_default();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "{} ignored SIGTERM:\n{}",
                    self.name,
                    std::fs::read_to_string(&self.stderr).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "{} died ({status}):\n{}",
                self.name,
                std::fs::read_to_string(&self.stderr).unwrap_or_default()
            );
        }
    }
}

fn run_ok(args: &[String]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn leakwatch(args: &[String]) -> Vec<Value> {
    run_ok(args)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{args:?} printed {l:?}: {e}")))
        .collect()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// Testbed world, data dir with fingerprints and watchlist, config.
struct Setup {
    tb: testbed::Running,
    truth: testbed::Truth,
    dir: tempfile::TempDir,
    data: PathBuf,
    config: PathBuf,
}

async fn setup(politeness_ms: u64) -> Setup {
    let tb = testbed::start(testbed::Config::default()).await.unwrap();
    let truth = tb.truth();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let stolen = dir.path().join("stolen");
    tb.write_stolen_set(&stolen).unwrap();
    let idents = dir.path().join("identifiers.txt");
    tb.write_identifiers(&idents).unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[crawler]\nworkers = 4\npoliteness_delay_ms = {politeness_ms}\n[matcher]\nworkers = 1\n"
        ),
    )
    .unwrap();
    let d = data.to_str().unwrap();
    run_ok(&s(&[
        "--data-dir",
        d,
        "fingerprints",
        "import",
        stolen.to_str().unwrap(),
    ]));
    run_ok(&s(&[
        "--data-dir",
        d,
        "watchlist",
        "import",
        idents.to_str().unwrap(),
    ]));
    Setup {
        tb,
        truth,
        dir,
        data,
        config,
    }
}

impl Setup {
    fn role(&self, name: &str, vhost: &Vhost, roles: &str, extra: &[String]) -> Proc {
        let mut args = s(&[
            "--data-dir",
            self.data.to_str().unwrap(),
            "--config",
            self.config.to_str().unwrap(),
            "run",
            "--amqp",
            &vhost.url,
            "--roles",
            roles,
            "--allow-private",
            "--transport",
            "direct",
        ]);
        args.extend_from_slice(extra);
        Proc::start(name, self.dir.path(), &args)
    }

    fn seeds(&self) -> Vec<String> {
        self.tb
            .seeds()
            .into_iter()
            .flat_map(|u| ["--seed".to_string(), u])
            .collect()
    }

    fn alerts(&self) -> Vec<Value> {
        leakwatch(&s(&[
            "--data-dir",
            self.data.to_str().unwrap(),
            "alerts",
            "--json",
        ]))
    }

    fn pages_indexed(&self) -> usize {
        if !self.data.join("index").exists() {
            return 0;
        }
        let d = self.data.to_str().unwrap();
        leakwatch(&s(&[
            "--data-dir",
            d,
            "search",
            "*",
            "--json",
            "--limit",
            "100000",
        ]))
        .len()
    }

    /// Whether every expected alert is stored, every page indexed and every queue drained.
    fn settled(&self, vhost: &Vhost) -> bool {
        let queues = leakwatch(&s(&["queues", "--amqp", &vhost.url, "--json"]));
        let count = |dlq: bool| -> u64 {
            queues
                .iter()
                .filter(|q| q["queue"].as_str().unwrap().ends_with(".dlq") == dlq)
                .map(|q| q["messages"].as_u64().unwrap())
                .sum()
        };
        let (ready, dead) = (count(false), count(true));
        let (pages, missing) = (self.pages_indexed(), self.missing_alerts());
        eprintln!(
            "waiting: {ready} ready messages ({dead} dead-lettered), {pages}/{} pages indexed, {} alerts missing",
            self.truth.pages,
            missing.len()
        );
        ready == 0 && pages == self.truth.pages && missing.is_empty()
    }

    /// Catchable leaks and text-leak pages without an alert.
    fn missing_alerts(&self) -> Vec<String> {
        let alerts = self.alerts();
        let mut missing = Vec::new();
        for leak in self
            .truth
            .leaks
            .iter()
            .filter(|l| l.expect_dct256 && !l.data_uri)
        {
            if !alerts
                .iter()
                .any(|a| a["url"] == leak.image_url.as_str() && a["label"] == leak.label.as_str())
            {
                missing.push(leak.image_url.clone());
            }
        }
        for t in &self.truth.text_leaks {
            if !alerts
                .iter()
                .any(|a| a["kind"] == "text" && a["url"] == t.page_url.as_str())
            {
                missing.push(t.page_url.clone());
            }
        }
        missing
    }

    /// The final checks: every leak alerted exactly once, no decoy.
    fn check_alerts(&self) -> Vec<Value> {
        let alerts = self.alerts();
        assert!(
            self.missing_alerts().is_empty(),
            "missing: {:?}",
            self.missing_alerts()
        );
        let ids: HashSet<&str> = alerts.iter().map(|a| a["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), alerts.len(), "duplicate alerts");
        let mut per_image: HashMap<&str, usize> = HashMap::new();
        for a in alerts.iter().filter(|a| a["kind"] == "image") {
            *per_image.entry(a["url"].as_str().unwrap()).or_default() += 1;
        }
        assert!(per_image.values().all(|n| *n == 1), "{per_image:?}");
        for d in &self.truth.decoys {
            assert!(
                !per_image.contains_key(d.image_url.as_str()),
                "decoy alerted: {d:?}"
            );
        }
        alerts
    }
}

fn wait_until(
    what: &str,
    timeout: Duration,
    procs: &mut [&mut Proc],
    mut done: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + timeout;
    while !done() {
        for p in procs.iter_mut() {
            p.assert_running();
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = procs
                .iter()
                .map(|p| {
                    let err = std::fs::read_to_string(&p.stderr).unwrap_or_default();
                    let tail: Vec<&str> = err.lines().rev().take(15).collect();
                    format!(
                        "--- {}:\n{}",
                        p.name,
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    )
                })
                .collect();
            panic!("timed out waiting for {what}\n{}", logs.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The queues that carry image bytes (images, and pages with their raw responses for the
/// matchers), and only they, expire them and are bounded in bytes.
fn assert_image_bytes_expire(vhost: &Vhost) {
    let out = Command::new("rabbitmqctl")
        .args(["list_queues", "-q", "-p", &vhost.name, "name", "arguments"])
        .output()
        .expect("rabbitmqctl");
    let listing = String::from_utf8_lossy(&out.stdout);
    let args = |q: &str| {
        listing
            .lines()
            .find(|l| l.split_whitespace().next() == Some(q))
            .unwrap_or_else(|| panic!("no queue {q}: {listing}"))
            .to_string()
    };
    for q in [
        "leakwatch.images",
        "leakwatch.images.dlq",
        "leakwatch.pages.matcher",
        "leakwatch.pages.matcher.dlq",
    ] {
        let a = args(q);
        assert!(a.contains("x-message-ttl") && a.contains("86400000"), "{a}");
        assert!(a.contains("x-max-length-bytes"), "{a}");
    }
    assert!(!args("leakwatch.pages.indexer").contains("x-message-ttl"));
}

fn dlq_depth(vhost: &Vhost, queue: &str) -> u64 {
    leakwatch(&s(&["queues", "--amqp", &vhost.url, "--json"]))
        .iter()
        .find(|q| q["queue"] == format!("{queue}.dlq").as_str())
        .and_then(|q| q["messages"].as_u64())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_its_own_process_each_leak_alerted_once_and_followed() {
    let _serial = SERIAL.lock().await;
    let vhost = Vhost::new("multi");
    let st = setup(0).await;
    let mut indexer = st.role("indexer", &vhost, "indexer", &[]);
    // The topology exists once any process has connected.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_image_bytes_expire(&vhost);
    let mut follow = Proc::start(
        "follow",
        st.dir.path(),
        &s(&["alerts", "follow", "--json", "--amqp", &vhost.url]),
    );
    let mut matchers = [
        st.role("matcher-1", &vhost, "matcher", &[]),
        st.role("matcher-2", &vhost, "matcher", &[]),
    ];
    let mut crawlers = [
        st.role("crawler-1", &vhost, "crawler", &[]),
        st.role("crawler-2", &vhost, "crawler", &[]),
    ];
    // A poison message: undecodable, it must end in the dead-letter queue, not loop.
    publish_raw(&vhost.url, "leakwatch.images", b"\xff not a message").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut frontier = st.role("frontier", &vhost, "frontier", &st.seeds());

    {
        let [m1, m2] = &mut matchers;
        let [c1, c2] = &mut crawlers;
        let mut procs = [&mut indexer, &mut frontier, m1, m2, c1, c2, &mut follow];
        wait_until(
            "the distributed crawl",
            Duration::from_secs(150),
            &mut procs,
            || st.settled(&vhost),
        );
    }
    let alerts = st.check_alerts();
    assert_eq!(
        dlq_depth(&vhost, "leakwatch.images"),
        1,
        "the poison message is dead-lettered"
    );

    // Every role stops cleanly on SIGTERM.
    frontier.terminate();
    for p in crawlers {
        p.terminate();
    }
    for p in matchers {
        p.terminate();
    }
    indexer.terminate();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let followed = follow.terminate();
    let followed: Vec<Value> = followed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let followed_ids: HashSet<&str> = followed.iter().map(|a| a["id"].as_str().unwrap()).collect();
    for a in &alerts {
        assert!(
            followed_ids.contains(a["id"].as_str().unwrap()),
            "follow missed {a}"
        );
    }
    st.tb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_roles_and_a_broker_restart_lose_nothing_and_duplicate_nothing() {
    let _serial = SERIAL.lock().await;
    let vhost = Vhost::new("chaos");
    let db = PgDb::create("chaos");
    let state = s(&["--state-url", &db.url]);
    // Politeness stretches the crawl over several seconds so the chaos lands mid-work.
    let st = setup(40).await;
    let mut indexer = st.role("indexer", &vhost, "indexer", &[]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut m1 = st.role("matcher-1", &vhost, "matcher", &[]);
    // This matcher lives through the chaos and says whether it is ready.
    let metrics = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let mut m2 = st.role(
        "matcher-2",
        &vhost,
        "matcher",
        &s(&["--metrics-listen", &metrics]),
    );
    let mut c1 = st.role("crawler-1", &vhost, "crawler", &[]);
    let mut c2 = st.role("crawler-2", &vhost, "crawler", &[]);
    // Two frontiers share their state in PostgreSQL.
    let mut f1 = st.role(
        "frontier-1",
        &vhost,
        "frontier",
        &[st.seeds(), state.clone()].concat(),
    );
    let mut f2 = st.role("frontier-2", &vhost, "frontier", &state);

    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        !st.settled(&vhost),
        "the crawl ended before the chaos; slow it down"
    );
    // Every kind of role dies mid-work; each comes back (the frontier without --seed: it
    // must remember its seeds, what it requested and what it had not yet confirmed).
    c1.kill9();
    m1.kill9();
    f1.kill9();
    indexer.kill9();
    let mut c1 = st.role("crawler-1b", &vhost, "crawler", &[]);
    let mut m1 = st.role("matcher-1b", &vhost, "matcher", &[]);
    let mut f1 = st.role("frontier-1b", &vhost, "frontier", &state);
    let mut indexer = st.role("indexer-b", &vhost, "indexer", &[]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    f2.kill9();
    let mut f2 = st.role("frontier-2b", &vhost, "frontier", &state);
    let ready = || probe::get(&metrics, "/readyz").0;
    probe::wait_for("matcher-2 ready", Duration::from_secs(30), || {
        ready() == 200
    })
    .await;
    rabbitmqctl(&["stop_app"]);
    // Cut off from its broker, a role is alive but not ready.
    probe::wait_for(
        "matcher-2 not ready without its broker",
        Duration::from_secs(3),
        || ready() == 503,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    rabbitmqctl(&["start_app"]);
    rabbitmqctl(&["await_startup"]);
    probe::wait_for("matcher-2 ready again", Duration::from_secs(60), || {
        ready() == 200
    })
    .await;

    {
        let mut procs = [
            &mut indexer,
            &mut f1,
            &mut f2,
            &mut m1,
            &mut m2,
            &mut c1,
            &mut c2,
        ];
        wait_until(
            "the crawl after the chaos",
            Duration::from_secs(240),
            &mut procs,
            || st.settled(&vhost),
        );
    }
    st.check_alerts();
    for q in [
        "leakwatch.crawl.requests",
        "leakwatch.crawl.discovered",
        "leakwatch.images",
        "leakwatch.pages.indexer",
    ] {
        assert_eq!(dlq_depth(&vhost, q), 0, "{q}: work was dead-lettered");
    }
    for p in [f1, f2, c1, c2, m1, m2, indexer] {
        p.terminate();
    }
    st.tb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_whose_handler_keeps_failing_is_dead_lettered_after_the_limit() {
    use bus::Bus;
    let _serial = SERIAL.lock().await;
    let vhost = Vhost::new("poison");
    let bus = bus::AmqpBus::connect(&vhost.url, 3).await.unwrap();
    bus.publish("", "leakwatch.verdicts", b"crashes its handler".to_vec())
        .await
        .unwrap();
    bus.publish("", "leakwatch.verdicts", b"fine".to_vec())
        .await
        .unwrap();
    let mut c = bus.consume("leakwatch.verdicts", 1).await.unwrap();
    let mut fine = 0;
    let mut attempts = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while fine == 0 || dlq_depth(&vhost, "leakwatch.verdicts") == 0 {
        assert!(Instant::now() < deadline, "poison never dead-lettered");
        let Ok(Some(d)) = tokio::time::timeout(Duration::from_secs(2), c.next()).await else {
            continue;
        };
        if d.payload == b"fine" {
            fine += 1;
            d.ack().await.unwrap();
        } else {
            attempts += 1;
            d.nack(true).await.unwrap(); // the handler failed; try again
        }
    }
    assert_eq!(fine, 1);
    assert!(
        (3..=4).contains(&attempts),
        "delivered {attempts} times with a limit of 3"
    );
    bus.close();
    bus.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_forwarder_retries_until_2xx_and_delivers_once() {
    use bus::Bus;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let _serial = SERIAL.lock().await;
    let vhost = Vhost::new("webhook");

    // A receiver that fails the first three POSTs.
    let calls = Arc::new(AtomicUsize::new(0));
    let accepted: Arc<Mutex<Vec<Value>>> = Arc::default();
    let app = {
        let (calls, accepted) = (calls.clone(), accepted.clone());
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: axum::body::Bytes| {
                let (calls, accepted) = (calls.clone(), accepted.clone());
                async move {
                    if calls.fetch_add(1, Ordering::SeqCst) < 3 {
                        return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    accepted
                        .lock()
                        .unwrap()
                        .push(serde_json::from_slice(&body).unwrap());
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let hook = format!("http://127.0.0.1:{port}/hook");
    let fwd = Proc::start(
        "forward",
        dir.path(),
        &s(&[
            "alerts",
            "forward",
            "--amqp",
            &vhost.url,
            "--webhook",
            &hook,
            "--max-backoff-secs",
            "1",
        ]),
    );
    // Wait for the forwarder's queue, then raise one alert.
    let bus = bus::AmqpBus::connect(&vhost.url, 5).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let alert = schema::Alert {
        id: schema::Alert::id_for(
            schema::AlertKind::Image,
            "stolen-0001",
            "http://x.onion/a.jpg",
        ),
        kind: schema::AlertKind::Image,
        url: "http://x.onion/a.jpg".into(),
        page_url: Some("http://x.onion/".into()),
        label: "stolen-0001".into(),
        distance: 2,
        algorithm: "pdq+grid".into(),
        detected_at: schema::now_rfc3339(),
        page_fetched_at: None,
        listed_at: None,
        context: Vec::new(),
        identifier: None,
    };
    bus::publish_msg(&bus, schema::names::ALERTS_EXCHANGE, "alert.image", &alert)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while accepted.lock().unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "alert never delivered ({} calls)",
            calls.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await; // nothing more may arrive
    assert_eq!(
        calls.load(Ordering::SeqCst),
        4,
        "three failures, then one success"
    );
    let got = accepted.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["id"], alert.id.as_str());
    assert_eq!(got[0]["v"], 1);
    let out = fwd.terminate();
    assert!(
        out.contains(&format!("forwarded alert {}", alert.id)),
        "{out}"
    );
    bus.close();
    bus.disconnect().await;
}

async fn publish_raw(url: &str, queue: &str, payload: &[u8]) {
    use bus::Bus;
    let bus = bus::AmqpBus::connect(url, 5).await.unwrap();
    bus.publish("", queue, payload.to_vec()).await.unwrap();
    bus.close();
    bus.disconnect().await;
}
