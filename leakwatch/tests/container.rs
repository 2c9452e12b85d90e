//! The runtime image as operators run it: `docker/build-local.sh` builds it from this build's
//! binary, and each role runs as its own container (host network, the host's RabbitMQ, one
//! shared data dir) against the testbed. The indexer starts before its vhost exists: it is
//! alive but not ready until the broker lets it in. Every container's `/metrics` moves, the
//! alerts match the testbed's truth, and every container stops cleanly on SIGTERM. Then
//! `docker/compose.yaml`'s `demo` profile runs the whole product in one container.
//!
//! Needs podman (with runc) and rabbitmqctl, which `scripts/test.sh` installs; without them
//! the test says that it skipped, and why.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "support/probe.rs"]
mod probe;
use probe::{get, sample, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_leakwatch");
/// What podman needs on these machines (crun fails on their cgroups).
const PODMAN_FLAGS: &[&str] = &["--runtime", "runc", "--cgroup-manager", "cgroupfs"];
/// The label of this test's containers: any left by a killed run are removed at start.
const LABEL: &str = "leakwatch-test=container";

fn podman(args: &[&str]) -> Output {
    Command::new("podman")
        .args(PODMAN_FLAGS)
        .args(args)
        .output()
        .expect("run podman")
}

/// Why containers cannot run here, if they cannot.
fn cannot_run_containers() -> Option<String> {
    let ok = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    // The data dir is handed to the image's uid 10001 with chown (rootful podman).
    if !Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
    {
        return Some("it needs root (rootful podman, chown to the image's user)".into());
    }
    let mut info = PODMAN_FLAGS.to_vec();
    info.push("info");
    if !ok("podman", &info) {
        return Some("podman is not installed or cannot run containers".into());
    }
    if !ok("rabbitmqctl", &["-q", "list_vhosts"]) {
        return Some("no RabbitMQ answers rabbitmqctl".into());
    }
    None
}

/// The containers, image and vhost of one run, removed however the test ends.
struct Deployment {
    tag: String,
    vhost: String,
    containers: Vec<String>,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = podman(&["rm", "-f", "-t", "5", c]);
        }
        let _ = podman(&["rmi", "-f", &self.tag]);
        let _ = Command::new("rabbitmqctl")
            .args(["delete_vhost", &self.vhost])
            .output();
    }
}

impl Deployment {
    /// Starts `leakwatch ARGS` as container `name`, sharing `data` as /data; returns the
    /// address of its metrics endpoint (a free port it picked itself and printed).
    async fn start(&mut self, name: &str, data: &Path, amqp: &str, args: &[&str]) -> String {
        let name = format!("{name}-{}", std::process::id());
        let _ = podman(&["rm", "-f", &name]);
        let volume = format!("{}:/data", data.display());
        let label = format!("--label={LABEL}");
        let amqp_env = format!("LEAKWATCH_AMQP_URL={amqp}");
        let mut run = vec![
            "run",
            "-d",
            &label,
            "--name",
            &name,
            "--network",
            "host",
            "-v",
            &volume,
        ];
        run.extend(["-e", &amqp_env, "-e", "LEAKWATCH_BUS_CONNECT_WAIT_SECS=120"]);
        run.extend(["-e", "LEAKWATCH_CRAWLER_POLITENESS_DELAY_MS=0"]);
        run.extend(["-e", "LEAKWATCH_CONSOLE_LISTEN=127.0.0.1:0", &self.tag]);
        run.extend(["run", "--metrics-listen", "127.0.0.1:0"]);
        run.extend(args);
        let out = podman(&run);
        assert!(
            out.status.success(),
            "podman run {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.containers.push(name.clone());
        let started = Instant::now();
        loop {
            let logs = podman(&["logs", &name]);
            let text = String::from_utf8_lossy(&logs.stderr).into_owned();
            if let Some(at) = text.find("metrics on http://") {
                let rest = &text[at + "metrics on http://".len()..];
                return rest.split('/').next().unwrap_or_default().to_string();
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{name} printed no metrics address:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn logs(&self) -> String {
        let mut all = String::new();
        for c in &self.containers {
            let out = podman(&["logs", "--tail", "30", c]);
            all.push_str(&format!(
                "--- {c}\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        all
    }
}

fn host_leakwatch(data: &Path, args: &[&str]) -> Output {
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("LEAKWATCH_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "leakwatch {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn alerts(data: &Path) -> Vec<Value> {
    let out = host_leakwatch(data, &["alerts", "--json"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Whether `alerts` hold every leak of `truth` (by image, or by page for inline images) with
/// its label, and every text leak's page.
fn all_leaks_alerted(alerts: &[Value], truth: &testbed::Truth) -> bool {
    let images = truth.leaks.iter().all(|leak| {
        alerts.iter().any(|a| {
            let url = a["url"].as_str().unwrap_or("");
            let same = if leak.data_uri {
                url.starts_with("data:") && a["page_url"] == leak.page_url.as_str()
            } else {
                url == leak.image_url
            };
            a["kind"] == "image" && same && a["label"] == leak.label.as_str()
        })
    });
    let pages: HashSet<&str> = alerts
        .iter()
        .filter(|a| a["kind"] == "text")
        .filter_map(|a| a["url"].as_str())
        .collect();
    images
        && truth
            .text_leaks
            .iter()
            .all(|t| pages.contains(t.page_url.as_str()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_in_its_own_container_crawls_alerts_and_reports() {
    if let Some(why) = cannot_run_containers() {
        eprintln!("SKIPPED: the container test needs podman and rabbitmqctl: {why}");
        return;
    }
    let tb = testbed::start(testbed::Config::default()).await.unwrap();
    let truth = tb.truth();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let stolen = tmp.path().join("stolen");
    tb.write_stolen_set(&stolen).unwrap();
    let idents = tmp.path().join("identifiers.txt");
    tb.write_identifiers(&idents).unwrap();
    host_leakwatch(&data, &["fingerprints", "import", stolen.to_str().unwrap()]);
    host_leakwatch(&data, &["watchlist", "import", idents.to_str().unwrap()]);
    // The image runs as uid 10001.
    let chown = Command::new("chown")
        .args(["-R", "10001:10001"])
        .arg(&data)
        .status()
        .unwrap();
    assert!(chown.success(), "chown the data dir to the image's user");

    let tag = format!("localhost/leakwatch-test:{}", std::process::id());
    let build = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docker/build-local.sh"
    ))
    .args(["--binary", BIN, "--strip", "--tag", &tag])
    .output()
    .unwrap();
    let mut deployment = Deployment {
        tag: tag.clone(),
        vhost: format!("leakwatch-test-container-{}", std::process::id()),
        containers: Vec::new(),
    };
    assert!(
        build.status.success(),
        "build-local.sh: {}",
        String::from_utf8_lossy(&build.stderr)
    );
    let _ = Command::new("rabbitmqctl")
        .args(["delete_vhost", &deployment.vhost])
        .output();
    let stale = podman(&["ps", "-aq", "--filter", &format!("label={LABEL}")]);
    for id in String::from_utf8_lossy(&stale.stdout).split_whitespace() {
        let _ = podman(&["rm", "-f", id]);
    }
    let amqp = format!("amqp://guest:guest@127.0.0.1:5672/{}", deployment.vhost);

    // The indexer (with the console beside it) starts before its vhost exists: alive, not
    // ready.
    let indexer = deployment
        .start("lw-indexer", &data, &amqp, &["--roles", "indexer,console"])
        .await;
    wait_for("the indexer's /healthz", Duration::from_secs(60), || {
        get(&indexer, "/healthz").0 == 200
    })
    .await;
    for _ in 0..5 {
        assert_eq!(get(&indexer, "/readyz").0, 503, "ready without a bus");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for args in [
        vec!["add_vhost", deployment.vhost.as_str()],
        vec![
            "set_permissions",
            "-p",
            deployment.vhost.as_str(),
            "guest",
            ".*",
            ".*",
            ".*",
        ],
    ] {
        assert!(Command::new("rabbitmqctl")
            .args(&args)
            .output()
            .unwrap()
            .status
            .success());
    }
    wait_for(
        "the indexer ready once the vhost exists",
        Duration::from_secs(60),
        || get(&indexer, "/readyz").0 == 200,
    )
    .await;

    // The console role came up with the indexer: its login page, under its security headers.
    let mut console = String::new();
    wait_for("the console's address", Duration::from_secs(60), || {
        let logs = podman(&["logs", &deployment.containers[0]]);
        let text = String::from_utf8_lossy(&logs.stderr).into_owned();
        if let Some(at) = text.find("console on http://") {
            let rest = &text[at + "console on http://".len()..];
            console = rest.split('/').next().unwrap_or_default().to_string();
        }
        !console.is_empty()
    })
    .await;
    let (status, page) = get(&console, "/login");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"login\""), "{page}");
    assert_eq!(get(&console, "/alerts").0, 303, "pages need a login");

    let crawler = [
        "--roles",
        "crawler",
        "--transport",
        "direct",
        "--allow-private",
    ];
    let mut frontier = vec!["--roles", "frontier"];
    let seeds = tb.seeds();
    for s in &seeds {
        frontier.extend(["--seed", s.as_str()]);
    }
    let mut addrs = vec![indexer];
    for (name, args) in [
        ("lw-matcher", &["--roles", "matcher"][..]),
        ("lw-crawler", &crawler[..]),
        ("lw-frontier", &frontier[..]),
    ] {
        addrs.push(deployment.start(name, &data, &amqp, args).await);
    }
    let addr = |i: usize| addrs[i].clone();

    let started = Instant::now();
    while !all_leaks_alerted(&alerts(&data), &truth) {
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "not every leak alerted in 240 s\n{}",
            deployment.logs()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let got = alerts(&data);
    // A decoy at a stolen camera may be a scene sighting, never an image alert.
    for decoy in &truth.decoys {
        assert!(
            !got.iter()
                .any(|a| a["kind"] == "image" && a["url"] == decoy.image_url.as_str()),
            "decoy alerted as a stolen photo: {decoy:?}"
        );
    }
    // Every container's counters moved, and every one is ready.
    let moved = [
        (0, "leakwatch_indexed_pages_total"),
        (1, "leakwatch_images_hashed_total"),
        (2, "leakwatch_pages_total"),
    ];
    for (i, name) in moved {
        let m = get(&addr(i), "/metrics").1;
        assert!(
            sample(&m, name).unwrap_or(0.0) > 0.0,
            "{name} did not move:\n{m}"
        );
    }
    let frontier_metrics = get(&addr(3), "/metrics").1;
    assert!(
        frontier_metrics.contains("leakwatch_role_ready{role=\"frontier\"} 1"),
        "{frontier_metrics}"
    );
    for i in 0..4 {
        assert_eq!(get(&addr(i), "/readyz").0, 200, "{}", deployment.logs());
    }

    // SIGTERM (what `podman stop` and Kubernetes send): each exits 0.
    for c in deployment.containers.clone().iter().rev() {
        let out = podman(&["stop", "-t", "40", c]);
        assert!(out.status.success(), "{out:?}");
        let code = podman(&["inspect", "--format", "{{.State.ExitCode}}", c]);
        assert_eq!(
            String::from_utf8_lossy(&code.stdout).trim(),
            "0",
            "{c} did not stop cleanly\n{}",
            deployment.logs()
        );
    }
    demo_profile_runs_the_product_in_one_container(&deployment.tag);
    drop(deployment);
    tb.shutdown().await;
}

/// `docker/compose.yaml`'s `demo` profile, run by podman-compose on the image just built:
/// one read-only container without a network crawls the testbed on its own loopback, alerts
/// every planted leak and no decoy.
fn demo_profile_runs_the_product_in_one_container(tag: &str) {
    let compose = std::env::var("LEAKWATCH_PODMAN_COMPOSE").unwrap_or("podman-compose".into());
    let project = format!("leakwatch-test-{}", std::process::id());
    let run = |args: &[&str]| {
        Command::new(&compose)
            .arg(format!("--podman-args={}", PODMAN_FLAGS.join(" ")))
            .args(["-p", &project, "-f"])
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../docker/compose.yaml"))
            .args(args)
            .env("LEAKWATCH_IMAGE", tag)
            .env("LEAKWATCH_RABBITMQ_PASSWORD", "unused-by-the-demo")
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run {compose} ({e}); scripts/test.sh installs podman-compose and sets LEAKWATCH_PODMAN_COMPOSE")
            })
    };
    /// The project's volume and network go, whatever the outcome.
    struct Down<F: Fn(&[&str]) -> Output>(F);
    impl<F: Fn(&[&str]) -> Output> Drop for Down<F> {
        fn drop(&mut self) {
            let _ = (self.0)(&["--profile", "demo", "down", "-v"]);
        }
    }
    let down = Down(run);
    let out = (down.0)(&["--profile", "demo", "run", "--rm", "-T", "demo"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "compose demo: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("against the testbed's truth:"))
        .unwrap_or_else(|| panic!("no report in {stdout}"));
    let numbers: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    // caught, leaks, decoys alerted as a stolen photo, decoys, as a scene
    assert!(numbers.len() >= 4, "{line}");
    assert!(
        numbers[0] == numbers[1] && numbers[1] > 0,
        "leaks missed: {line}"
    );
    assert_eq!(numbers[2], 0, "a decoy named as a stolen photo: {line}");
}
