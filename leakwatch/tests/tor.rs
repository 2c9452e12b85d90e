//! Tor end to end: a private Tor network on loopback (`testbed/tor/privnet`: three
//! authorities, three middles, two exits) publishes the testbed's forum, market and gallery as
//! v3 onion services; the paste site stays a clearnet site on 127.0.0.1, reached through the
//! network's exits. `leakwatch run --transport tor --tor-config <privnet's arti.toml>` crawls
//! from the onion roots with its embedded arti client, under strace.
//!
//! The crawl starts without waiting for the onion services, and with their tor instance frozen
//! (SIGSTOP) for its first 20 s: the seeds must be waited for, not dropped.
//!
//! Checked: every page of every site is fetched (over Tor: leakwatch never connects to a
//! testbed port itself), the planted images are alerted as against the truth file, each site
//! uses circuits of its own (arti's circuit ids, read back from the streams), and no DNS query
//! leaves the process (no socket to port 53 at all, so no `.onion` name either).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_leakwatch");

fn privnet() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testbed/tor/privnet")
}

/// Stops the private network however the test ends.
struct Network {
    dir: PathBuf,
}

impl Drop for Network {
    fn drop(&mut self) {
        let _ = Command::new(privnet()).arg("stop").arg(&self.dir).status();
    }
}

fn run_privnet(args: &[&str], dir: &Path) {
    let out = Command::new(privnet())
        .arg(args[0])
        .arg(dir)
        .args(&args[1..])
        .output()
        .expect("run testbed/tor/privnet");
    assert!(
        out.status.success(),
        "privnet {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

fn leakwatch(data: &Path, args: &[&str]) -> Output {
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("LEAKWATCH_CONFIG")
        .output()
        .expect("run leakwatch");
    assert!(
        out.status.success(),
        "leakwatch {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json_lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

/// The value of `key="…"` in a log line.
fn quoted<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!("{key}=\""))? + key.len() + 2;
    let len = line[start..].find('"')?;
    Some(&line[start..start + len])
}

/// What a failed run leaves to go on, most telling first (a CI excerpt keeps the head): its
/// summary, the end of the onion services' tor log, and the end of its own log without the
/// repetitive mirror notices.
fn diagnosis(stdout: &[u8], stderr: &str, net_dir: &Path) -> String {
    let log: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.contains("announces a mirror"))
        .collect();
    let tail = &log[log.len().saturating_sub(40)..];
    let onion_log = std::fs::read_to_string(net_dir.join("nodes/onion/notice.log"))
        .unwrap_or_else(|e| format!("(no onion notice.log: {e})"));
    let onion: Vec<&str> = onion_log.lines().collect();
    let onion_tail = &onion[onion.len().saturating_sub(15)..];
    format!(
        "summary: {}\n--- onion tor, last lines ---\n{}\n--- leakwatch, last lines ---\n{}",
        String::from_utf8_lossy(stdout).trim(),
        onion_tail.join("\n"),
        tail.join("\n"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawls_onion_services_and_a_clearnet_site_through_a_private_tor_network() {
    let tmp = tempfile::tempdir().unwrap();
    let net_dir = tmp.path().join("net");
    // Testbed site order: forum, market, paste, gallery.
    let ports = free_ports(4);
    let onion_sites = [
        ("forum", ports[0]),
        ("market", ports[1]),
        ("gallery", ports[3]),
    ];
    let mut start = vec!["start".to_string(), "--no-wait-onions".to_string()];
    for (name, port) in onion_sites {
        start.push("--onion".into());
        start.push(format!("{name}=127.0.0.1:{port}"));
    }
    let _net = Network {
        dir: net_dir.clone(),
    };
    let t0 = Instant::now();
    let start: Vec<&str> = start.iter().map(String::as_str).collect();
    run_privnet(&start, &net_dir);
    let onions: BTreeMap<String, String> = std::fs::read_to_string(net_dir.join("onions.txt"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, a)| (n.to_string(), a.trim().to_string()))
        .collect();
    assert_eq!(onions.len(), 3, "{onions:?}");

    let tb = testbed::start(testbed::Config {
        ports: Some(ports.clone()),
        public_bases: onions
            .iter()
            .map(|(n, a)| (n.clone(), format!("http://{a}/")))
            .collect(),
        ..testbed::Config::default()
    })
    .await
    .unwrap();
    let truth = tb.truth();
    // No `privnet wait`: the crawl starts while the onion services may still be publishing
    // their descriptors, and must wait for them (`[health] once_grace_secs`). The grace spans
    // most of an onion time period (8 min at this network's 20 s voting interval): on a CI
    // machine the services once stayed unreachable for more than 240 s (a failure prints
    // the onion instance's log to tell why).
    eprintln!(
        "private network formed in {:.0}s",
        t0.elapsed().as_secs_f64()
    );

    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let stolen = tmp.path().join("stolen");
    tb.write_stolen_set(&stolen).unwrap();
    leakwatch(&data, &["fingerprints", "import", stolen.to_str().unwrap()]);
    let cfg = data.join("cfg.toml");
    std::fs::write(
        &cfg,
        "[crawler]\nworkers = 8\npoliteness_delay_ms = 0\ntimeout_secs = 60\n\
         connect_timeout_secs = 45\n\
         [tor]\nbootstrap_timeout_secs = 120\n\
         [health]\nretries = 6\nbackoff_base_ms = 500\nbackoff_max_ms = 5000\n\
         once_grace_secs = 420\n",
    )
    .unwrap();

    let trace = tmp.path().join("strace.log");
    let mut cmd = Command::new("strace");
    cmd.args([
        "-f",
        "-qq",
        "-e",
        "trace=connect,sendto,sendmsg",
        "-s",
        "256",
        "-o",
    ])
    .arg(&trace)
    .arg(BIN)
    .arg("--data-dir")
    .arg(&data)
    .arg("--config")
    .arg(&cfg)
    .args(["--log", "warn,leakwatch::tor=info,tor_hsclient=info"])
    .args(["run", "--once", "--transport", "tor", "--tor-config"])
    .arg(net_dir.join("arti.toml"))
    .args(["--allow-private", "--json"])
    .env_remove("LEAKWATCH_CONFIG");
    let seeds = tb.seeds();
    for s in &seeds {
        cmd.args(["--seed", s]);
    }
    // The onion services are frozen (SIGSTOP on their tor instance) when the crawl starts and
    // for its first 20 s: the seeds do not answer, and `run --once` must wait for them
    // instead of ending with nothing.
    let onion_pid = std::fs::read_to_string(net_dir.join("pids/onion.pid"))
        .unwrap()
        .trim()
        .to_string();
    let signal = move |sig: &str| {
        let ok = Command::new("kill")
            .args([sig, &onion_pid])
            .status()
            .unwrap();
        assert!(ok.success(), "kill {sig}");
    };
    signal("-STOP");
    let out = tokio::task::spawn_blocking(move || {
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let child = cmd
            .spawn()
            .expect("run leakwatch under strace (apt-get install strace)");
        std::thread::sleep(std::time::Duration::from_secs(20));
        signal("-CONT");
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "leakwatch run failed ({}):\n{}",
        out.status,
        diagnosis(&out.stdout, &stderr, &net_dir)
    );
    let summary = json_lines(&out.stdout).pop().expect("a JSON summary");
    eprintln!("{summary}");

    // Over Tor, from every site: all pages, bootstrap measured, nothing down.
    assert_eq!(summary["transport"], "tor");
    assert!(
        summary["tor_bootstrap_secs"].as_f64().unwrap() > 0.0,
        "{summary}"
    );
    assert_eq!(
        summary["pages"].as_u64().unwrap() as usize,
        truth.pages,
        "{summary}\n{stderr}"
    );
    assert_eq!(summary["sites_down"], 0, "{summary}");
    assert_eq!(
        summary["unreached_seeds"],
        serde_json::json!([]),
        "{summary}"
    );
    let indexed =
        json_lines(&leakwatch(&data, &["search", "*", "--json", "--limit", "10000"]).stdout);
    let hosts: HashSet<String> = indexed
        .iter()
        .filter_map(|h| url::Url::parse(h["url"].as_str()?).ok())
        .map(|u| crawler::urls::site_of(&u))
        .collect();
    let paste = format!("127.0.0.1:{}", ports[2]);
    for site in onions.values().chain([&paste]) {
        assert!(
            hosts.contains(site),
            "nothing indexed from {site}: {hosts:?}"
        );
    }

    // Planted images alerted, decoys not.
    let alerts = json_lines(&leakwatch(&data, &["alerts", "--json"]).stdout);
    let image_alerts: Vec<&Value> = alerts.iter().filter(|a| a["kind"] == "image").collect();
    let catchable: Vec<_> = truth
        .leaks
        .iter()
        .filter(|l| l.expect_dct256 && !l.data_uri)
        .collect();
    assert!(catchable.len() >= 10, "testbed plants too few leaks");
    assert!(catchable.iter().any(|l| l.image_url.contains(".onion/")));
    for leak in &catchable {
        assert!(
            image_alerts
                .iter()
                .any(|a| a["url"] == leak.image_url.as_str() && a["label"] == leak.label.as_str()),
            "planted leak not alerted: {leak:?}"
        );
    }
    for decoy in &truth.decoys {
        assert!(
            !image_alerts
                .iter()
                .any(|a| a["url"] == decoy.image_url.as_str()),
            "decoy alerted: {decoy:?}"
        );
    }

    // Isolation: arti's ids of the circuits that carried each site's streams.
    let mut circuits: HashMap<String, HashSet<String>> = HashMap::new();
    for line in stderr.lines().filter(|l| l.contains("circuit in use")) {
        if let (Some(site), Some(circ)) = (quoted(line, "site"), quoted(line, "circuit")) {
            circuits
                .entry(site.to_string())
                .or_default()
                .insert(circ.to_string());
        }
    }
    for site in onions.values().chain([&paste]) {
        assert!(
            circuits.get(site).is_some_and(|c| !c.is_empty()),
            "no circuit recorded for {site}: {circuits:?}"
        );
    }
    let sites: Vec<&String> = circuits.keys().collect();
    for (i, a) in sites.iter().enumerate() {
        for b in &sites[i + 1..] {
            let shared: Vec<_> = circuits[*a].intersection(&circuits[*b]).collect();
            assert!(shared.is_empty(), "{a} and {b} shared circuits {shared:?}");
        }
    }

    // No DNS, and nothing straight to the testbed: every connection went to the relays.
    let trace = std::fs::read_to_string(&trace).unwrap();
    let connects: Vec<&str> = trace.lines().filter(|l| l.contains("connect(")).collect();
    assert!(!connects.is_empty(), "strace recorded no connect at all");
    for line in trace.lines() {
        assert!(!line.contains("htons(53)"), "a DNS socket: {line}");
        assert!(
            !(line.contains("send") && line.contains(".onion")),
            "an onion name sent in clear: {line}"
        );
        for p in &ports {
            assert!(
                !line.contains(&format!("htons({p})")),
                "leakwatch connected to the testbed directly: {line}"
            );
        }
    }
    tb.shutdown().await;
}
