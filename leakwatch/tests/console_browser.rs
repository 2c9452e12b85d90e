//! The analysts' console in a real browser, and against stored script and markup.
//!
//! A crawl of the testbed (normal sites, the hostile one, and the XSS site whose titles,
//! texts, URLs, file names and stolen-photo labels carry payloads) fills a data dir; the
//! real binary serves the console on it; `console/tests/browser/console.mjs` drives Debian's
//! headless Chromium through Playwright: login (a wrong password first), search, a stored
//! page, alert reviews (one confirmed with a note, one false positive put on the negative
//! list), coverage, users as admin and as analyst (refused), logout — then every XSS page,
//! its page view and every alert it raised. The script records every request the browser
//! makes and fails on any outside the console's origin, on a dialog, on a `<script>`,
//! `on*` attribute or foreign URL in the DOM, on a changed title and on any CSP violation.
//! Screenshots of each page go to `$SCREENSHOTS` (default `target/console-screenshots`).
//!
//! Afterwards the reviews are read back from disk and from a restarted console: the
//! negative list holds the SHA-256 the page showed, and the API returns the reviewed state
//! and note. Without node, Chromium or the npm packages the test says SKIPPED, unless `CI`
//! is set, where it fails (`scripts/test.sh` installs them).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_leakwatch");
const ADMIN: (&str, &str) = ("ada", "admin-password-0451");
const ANALYST: (&str, &str) = ("ana", "analyst-password-7719");
/// The browser script's own bound (the test's timeout is nextest's).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(240);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/bin/chromium".into())
}

/// What is missing to run the browser, if anything.
fn missing_tools() -> Option<String> {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !node {
        return Some("node is not installed".into());
    }
    if !chromium().exists() {
        return Some(format!(
            "{} is missing (apt-get install chromium)",
            chromium().display()
        ));
    }
    let pkg = workspace().join("console/tests/browser/node_modules/playwright-core");
    if !pkg.exists() {
        return Some(format!(
            "{} is missing (npm ci in console/tests/browser)",
            pkg.display()
        ));
    }
    None
}

fn command(data: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir")
        .arg(data)
        .arg("--config")
        .arg(data.join("test-config.toml"))
        .env_remove("LEAKWATCH_CONFIG")
        .env_remove("LEAKWATCH_STATE_URL")
        .env_remove("LEAKWATCH_CONSOLE_LISTEN");
    cmd
}

/// Runs the binary, feeding `stdin`; panics with its stderr when it fails.
fn leakwatch(data: &Path, args: &[&str], stdin: &str) -> String {
    let mut child = command(data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run leakwatch");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "leakwatch {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A console process and what it wrote on stderr.
struct Console {
    child: Child,
    url: String,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Console {
    fn start(data: &Path) -> Console {
        let mut child = command(data)
            .args(["console", "--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the console");
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("console on ") {
                    let _ = tx.send(url.trim().trim_end_matches('/').to_string());
                }
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("the console did not start:\n{}", log.lock().unwrap())
            });
        Console { child, url, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGTERM; the console must exit 0 within 20 s.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "console exited with {status}:\n{}",
                    self.log()
                );
                return;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the console ignored SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `GET path` with a bearer token: status and body.
fn api_get(base: &str, path: &str, token: &str) -> (u16, String) {
    let host = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    (status, body.to_string())
}

/// Runs the browser script; its exit status and everything it printed.
fn run_browser(env: &[(&str, String)]) -> (bool, String) {
    let dir = workspace().join("console/tests/browser");
    let mut cmd = Command::new("node");
    cmd.arg(dir.join("console.mjs"))
        .current_dir(workspace())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run node");
    let mut outputs = Vec::new();
    for pipe in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        outputs.push(std::thread::spawn(move || {
            let mut s = String::new();
            let _ = BufReader::new(pipe).read_to_string(&mut s);
            s
        }));
    }
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > SCRIPT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text: String = outputs.into_iter().map(|t| t.join().unwrap()).collect();
    match status {
        Some(s) => (s.success(), text),
        None => (false, format!("{text}\nkilled after {SCRIPT_TIMEOUT:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_a_browser_runs_no_stored_script_and_contacts_no_other_origin() {
    if let Some(why) = missing_tools() {
        if std::env::var_os("CI").is_some() {
            panic!("the browser test cannot run: {why}; scripts/test.sh installs it");
        }
        println!("SKIPPED: {why}");
        return;
    }
    let started = Instant::now();
    let tb = testbed::start(testbed::Config {
        hostile: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let truth = tb.truth();
    let identifier = tb.world().identifiers()[0].clone();
    let xss = testbed::xss::start("127.0.0.1".parse().unwrap(), Some(&identifier))
        .await
        .unwrap();
    let xss_truth = xss.truth().clone();

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("test-config.toml"),
        "[crawler]\nworkers = 8\npoliteness_delay_ms = 0\ntimeout_secs = 4\nmax_depth = 6\n",
    )
    .unwrap();
    let stolen = tmp.path().join("stolen");
    tb.write_stolen_set(&stolen).unwrap();
    xss.write_stolen_set(&stolen).unwrap();
    let idents = tmp.path().join("identifiers.txt");
    tb.write_identifiers(&idents).unwrap();
    let (d, s, i) = (data.clone(), stolen.clone(), idents.clone());
    let mut seeds = tb.seeds();
    seeds.extend(tb.hostile_url());
    seeds.push(xss.url().to_string());
    let summary = tokio::task::spawn_blocking(move || {
        leakwatch(&d, &["fingerprints", "import", s.to_str().unwrap()], "");
        leakwatch(&d, &["watchlist", "import", i.to_str().unwrap()], "");
        let mut run = vec![
            "run",
            "--once",
            "--transport",
            "direct",
            "--allow-private",
            "--json",
        ];
        for s in &seeds {
            run.extend(["--seed", s.as_str()]);
        }
        let summary = leakwatch(&d, &run, "");
        for (name, password, role) in [
            (ADMIN.0, ADMIN.1, "admin"),
            (ANALYST.0, ANALYST.1, "analyst"),
        ] {
            leakwatch(
                &d,
                &["users", "add", name, "--role", role, "--password-stdin"],
                &format!("{password}\n"),
            );
        }
        summary
    })
    .await
    .unwrap();
    tb.shutdown().await;
    xss.shutdown().await;
    let crawled = started.elapsed();
    let alerts: Vec<Value> = leakwatch(&data, &["alerts", "--json"], "")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The payload-carrying alerts exist, so the walk has them to visit.
    for photo in &xss_truth.photos {
        assert!(
            alerts
                .iter()
                .any(|a| a["url"] == photo.image_url.as_str() && a["label"] == photo.label.as_str()),
            "no alert for the XSS site's photo {photo:?}: {summary}"
        );
    }
    let leak = xss_truth.text_leak.as_ref().unwrap();
    assert!(
        alerts
            .iter()
            .any(|a| a["kind"] == "text" && a["url"] == leak.page_url.as_str()),
        "no text alert on {}",
        leak.page_url
    );

    let console = Console::start(&data);
    let shots = std::env::var("SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join("target/console-screenshots"));
    let fixture = tmp.path().join("fixture.json");
    let results = tmp.path().join("results.json");
    let phrase = &truth.phrases[0];
    std::fs::write(
        &fixture,
        serde_json::to_vec_pretty(&json!({
            "phrase": phrase.phrase,
            "phrase_url": phrase.page_url,
            "xss": xss_truth,
        }))
        .unwrap(),
    )
    .unwrap();
    let env = [
        ("CONSOLE_URL", console.url.clone()),
        ("ADMIN_USER", ADMIN.0.to_string()),
        ("ADMIN_PASSWORD", ADMIN.1.to_string()),
        ("ANALYST_USER", ANALYST.0.to_string()),
        ("ANALYST_PASSWORD", ANALYST.1.to_string()),
        ("SCREENSHOTS", shots.display().to_string()),
        ("DATA_DIR", data.display().to_string()),
        ("FIXTURE", fixture.display().to_string()),
        ("RESULTS", results.display().to_string()),
        ("CHROMIUM", chromium().display().to_string()),
    ];
    let browsing = Instant::now();
    let (ok, output) = tokio::task::spawn_blocking(move || run_browser(&env))
        .await
        .unwrap();
    println!("{output}");
    assert!(
        ok,
        "the browser test failed:\n{output}\n--- console log ---\n{}",
        console.log()
    );
    assert!(
        output.contains("foreign requests 0"),
        "no summary line: {output}"
    );
    let browsed = browsing.elapsed();
    console.stop();

    // What the browser did is on disk.
    let r: Value = serde_json::from_slice(&std::fs::read(&results).unwrap()).unwrap();
    let sha = r["negative_sha256"].as_str().unwrap();
    assert!(
        sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
        "{r}"
    );
    assert_eq!(
        r["xss_pages"].as_u64(),
        Some(xss_truth.pages.len() as u64),
        "not every XSS page was visited: {r}"
    );
    assert!(
        r["xss_alerts"].as_u64().unwrap() > xss_truth.photos.len() as u64,
        "not every XSS alert was visited: {r}"
    );
    let negatives = std::fs::read_to_string(data.join("negatives.txt")).unwrap_or_default();
    assert!(
        negatives
            .lines()
            .any(|l| l.split_whitespace().next() == Some(sha)),
        "{sha} not on the negative list: {negatives:?}"
    );
    let shots_taken = std::fs::read_dir(&shots)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "png"))
        })
        .count();
    assert!(
        shots_taken as u64 >= r["pages"].as_u64().unwrap(),
        "{shots_taken} screenshots for {r}"
    );

    // A restarted console still has both reviews.
    let token = leakwatch(
        &data,
        &["tokens", "create", ADMIN.0, "--label", "check"],
        "",
    )
    .trim()
    .to_string();
    let console = Console::start(&data);
    for (id, state, note) in [
        (
            &r["confirmed_id"],
            "confirmed",
            r["confirmed_note"].as_str(),
        ),
        (&r["negative_id"], "false_positive", None),
    ] {
        let id = id.as_str().unwrap();
        let (status, body) = api_get(&console.url, &format!("/api/alerts/{id}"), &token);
        assert_eq!(status, 200, "{body}");
        let a: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(a["state"], state, "{a}");
        assert_eq!(a["reviewed_by"], ADMIN.0, "{a}");
        if let Some(note) = note {
            assert_eq!(a["note"], note, "{a}");
        }
    }
    console.stop();
    println!(
        "crawl and setup {crawled:.1?}, browser {browsed:.1?}, total {:.1?}",
        started.elapsed()
    );
}
