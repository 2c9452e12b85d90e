//! End to end: the real binary against the testbed served on loopback — import, crawl,
//! alerts, re-crawl, search — checked against the testbed's truth file.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Output;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_leakwatch");

/// Runs the binary with a data dir (and config) and returns its output; panics with its
/// stderr when it fails.
async fn leakwatch(data: &Path, args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("--data-dir").arg(data);
    let cfg = data.join("test-config.toml");
    if cfg.exists() {
        cmd.arg("--config").arg(&cfg);
    }
    cmd.args(args).env_remove("LEAKWATCH_CONFIG");
    // The evidence key lives beside the data dir, never in it.
    let key = evidence_key(data);
    if key.exists() {
        cmd.env("LEAKWATCH_EVIDENCE_KEY_FILE", key);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run leakwatch"))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "leakwatch {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

fn evidence_key(data: &Path) -> std::path::PathBuf {
    data.with_file_name("evidence.key")
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

fn write_config(data: &Path, extra: &str) {
    std::fs::create_dir_all(data).unwrap();
    std::fs::write(
        data.join("test-config.toml"),
        format!("[crawler]\nworkers = 8\npoliteness_delay_ms = 0\n{extra}"),
    )
    .unwrap();
}

/// `run --once` over the loopback testbed from `seeds`, JSON summary.
fn crawl_args(seeds: &[String]) -> Vec<&str> {
    let mut run = vec![
        "run",
        "--once",
        "--transport",
        "direct",
        "--allow-private",
        "--json",
    ];
    for s in seeds {
        run.extend(["--seed", s.as_str()]);
    }
    run
}

/// The spellings of a stolen identifier that must not be stored anywhere.
fn spellings(t: &testbed::TextLeak) -> Vec<String> {
    let listed = t.identifier.to_ascii_lowercase();
    let bare: String = listed.chars().filter(char::is_ascii_alphanumeric).collect();
    let mut out = vec![
        listed.clone(),
        bare,
        listed.replace('-', " "),
        t.written_as.to_lowercase(),
    ];
    out.sort();
    out.dedup();
    out
}

/// No file under the data dir holds a planted identifier in any of its spellings, and the
/// index finds none of them (the term dictionary has neither the identifier nor its pieces
/// side by side), while the masks that replaced them are searchable.
async fn assert_nothing_watched_is_stored(data: &Path, truth: &testbed::Truth) {
    let mut files = vec![data.to_path_buf()];
    let mut contents = Vec::new();
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else if let Ok(bytes) = std::fs::read(&p) {
            contents.push((p, bytes.to_ascii_lowercase()));
        }
    }
    assert!(contents.len() > 5, "the data dir is nearly empty");
    for t in &truth.text_leaks {
        for s in spellings(t) {
            for (path, bytes) in &contents {
                assert!(
                    !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                    "{s:?} ({}) stored in clear in {}",
                    t.identifier,
                    path.display()
                );
            }
        }
    }
    // One query for all of them: each identifier whole, and its pieces side by side.
    let q: Vec<String> = truth
        .text_leaks
        .iter()
        .flat_map(|t| {
            let pieces = t.identifier.replace('-', " ");
            [format!("\"{pieces}\""), t.identifier.replace('-', "")]
        })
        .collect();
    let q = q.join(" OR ");
    let hits = json_lines(&leakwatch(data, &["search", &q, "--json"]).await);
    assert!(hits.is_empty(), "the index finds {q}: {hits:?}");
    let masked =
        json_lines(&leakwatch(data, &["search", "plate", "--json", "--limit", "1000"]).await);
    let leak_pages: HashSet<&str> = truth
        .text_leaks
        .iter()
        .map(|t| t.page_url.as_str())
        .collect();
    assert!(
        masked
            .iter()
            .any(|h| leak_pages.contains(h["url"].as_str().unwrap())
                && h["snippet"].as_str().unwrap().contains("[plate-")),
        "no masked identifier is searchable: {masked:?}"
    );
}

/// Runs `program` with `args` in `dir`; its output, whatever its exit status.
fn run_in(dir: &Path, program: &str, args: &[&str]) -> Output {
    std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}); scripts/test.sh installs warcio and sets LEAKWATCH_WARCIO")
        })
}

/// Every alert has its evidence kept and nothing else is kept; the bundles of a fetched
/// image, an image inside a page, one inside an attachment and a text alert pass
/// `warcio check` and `sha256sum -c`, and a WARC with one altered byte fails the check.
async fn assert_evidence_exports(data: &Path, tmp: &Path, alerts: &[Value]) {
    let kept = json_lines(&leakwatch(data, &["evidence", "list", "--json"]).await);
    let kept: HashSet<&str> = kept
        .iter()
        .map(|k| k["alert_id"].as_str().unwrap())
        .collect();
    let raised: HashSet<&str> = alerts.iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(kept, raised, "evidence kept is not exactly the alerts'");
    let warcio = std::env::var("LEAKWATCH_WARCIO").unwrap_or_else(|_| "warcio".into());
    let pick = |what: &str, f: &dyn Fn(&Value) -> bool| {
        alerts
            .iter()
            .find(|a| f(a))
            .unwrap_or_else(|| panic!("no {what} alert"))
            .clone()
    };
    let url = |a: &Value| a["url"].as_str().unwrap().to_string();
    let cases = [
        pick("fetched image", &|a| {
            a["kind"] == "image" && url(a).starts_with("http") && !url(a).contains('#')
        }),
        pick("inline image", &|a| {
            a["kind"] == "image" && url(a).starts_with("data:")
        }),
        pick("attachment image", &|a| {
            a["kind"] == "image" && url(a).contains('#')
        }),
        pick("text", &|a| a["kind"] == "text"),
    ];
    for (n, alert) in cases.iter().enumerate() {
        let id = alert["id"].as_str().unwrap();
        let dir = tmp.join(format!("bundle-{n}"));
        leakwatch(data, &["evidence", "export", id, dir.to_str().unwrap()]).await;
        let sums = run_in(&dir, "sha256sum", &["-c", "SHA256SUMS"]);
        assert!(sums.status.success(), "{sums:?}");
        let warc = format!("{id}.warc.gz");
        let check = run_in(&dir, &warcio, &["check", "-v", &warc]);
        let report = String::from_utf8_lossy(&check.stdout);
        assert!(
            check.status.success(),
            "warcio check failed on {alert}: {report}"
        );
        assert!(
            report.contains("digest pass"),
            "warcio checked no digest: {report}"
        );
        let mut plain = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::MultiGzDecoder::new(&std::fs::read(dir.join(&warc)).unwrap()[..]),
            &mut plain,
        )
        .unwrap();
        let text = String::from_utf8_lossy(&plain).into_owned();
        let types: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("WARC-Type: "))
            .collect();
        let target = url(alert);
        if target.starts_with("data:") || target.contains('#') {
            assert_eq!(types, ["resource"], "{text:.600}");
        } else {
            assert_eq!(types, ["request", "response"], "{text:.600}");
            assert!(text.contains("\r\nHTTP/1.1 200 OK\r\n"), "{text:.600}");
        }
        assert!(
            text.contains(&format!("WARC-Target-URI: {target}\r\n")),
            "{text:.600}"
        );
        // The check can fail: one altered byte in the last block.
        let altered = dir.join("altered.warc");
        let mut bad = plain.clone();
        let at = bad.len() - 10;
        bad[at] ^= 0x20;
        std::fs::write(&altered, bad).unwrap();
        let check = run_in(&dir, &warcio, &["check", "altered.warc"]);
        assert!(!check.status.success(), "warcio passed an altered record");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawl_alerts_every_catchable_leak_once_and_no_decoy() {
    let tb = testbed::start(testbed::Config::default()).await.unwrap();
    let truth = tb.truth();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_config(&data, "");
    let stolen = tmp.path().join("stolen");
    tb.write_stolen_set(&stolen).unwrap();
    let idents = tmp.path().join("identifiers.txt");
    tb.write_identifiers(&idents).unwrap();

    // Import twice: the second adds nothing.
    let out = leakwatch(&data, &["fingerprints", "import", stolen.to_str().unwrap()]).await;
    let n_stolen = std::fs::read_dir(&stolen).unwrap().count();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("imported {n_stolen} new")));
    let out = leakwatch(&data, &["fingerprints", "import", stolen.to_str().unwrap()]).await;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("imported 0 new"),
        "{out:?}"
    );
    let listed = json_lines(&leakwatch(&data, &["fingerprints", "list", "--json"]).await);
    assert_eq!(listed.len(), n_stolen);
    // Only hashes are stored: no image bytes in the data dir.
    let bank = std::fs::read(data.join("fingerprints.bank")).unwrap();
    assert!(bank.len() < n_stolen * 4096, "bank is {} bytes", bank.len());
    leakwatch(&data, &["watchlist", "import", idents.to_str().unwrap()]).await;

    let key = evidence_key(&data);
    leakwatch(&data, &["evidence", "keygen", key.to_str().unwrap()]).await;
    // A key inside the data dir would open the vault to whoever copies the data dir.
    let inside = std::process::Command::new(BIN)
        .arg("--data-dir")
        .arg(&data)
        .args(["evidence", "keygen"])
        .arg(data.join("evidence.key"))
        .output()
        .unwrap();
    assert!(!inside.status.success() && !data.join("evidence.key").exists());

    let seeds = tb.seeds();
    let run = crawl_args(&seeds);
    let summary = &json_lines(&leakwatch(&data, &run).await)[0];
    assert_eq!(
        summary["pages"].as_u64().unwrap() as usize,
        truth.pages,
        "{summary}"
    );
    assert_eq!(summary["errors"], serde_json::json!({}), "{summary}");

    let alerts = json_lines(&leakwatch(&data, &["alerts", "--json"]).await);
    let ids: HashSet<&str> = alerts.iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), alerts.len(), "duplicate alert ids");
    let image_alerts: Vec<&Value> = alerts.iter().filter(|a| a["kind"] == "image").collect();
    let mut per_url: HashMap<&str, usize> = HashMap::new();
    for a in &image_alerts {
        *per_url.entry(a["url"].as_str().unwrap()).or_default() += 1;
    }
    assert!(
        per_url.values().all(|n| *n == 1),
        "an image alerted twice: {per_url:?}"
    );

    // Every planted leak, whatever its edit (flips, crops, pads and banners included).
    let catchable: Vec<_> = truth.leaks.iter().collect();
    assert!(
        catchable.len() >= 10,
        "testbed plants too few catchable leaks"
    );
    for leak in &catchable {
        let hit = image_alerts.iter().find(|a| {
            let url = a["url"].as_str().unwrap();
            let same_image = if leak.data_uri {
                url.starts_with("data:") && a["page_url"] == leak.page_url.as_str()
            } else {
                url == leak.image_url
            };
            same_image && a["label"] == leak.label.as_str()
        });
        assert!(hit.is_some(), "planted leak not alerted: {leak:?}");
    }
    for decoy in &truth.decoys {
        assert!(
            !image_alerts
                .iter()
                .any(|a| a["url"] == decoy.image_url.as_str()),
            "decoy alerted: {decoy:?}"
        );
    }
    let leak_urls: HashSet<&str> = truth.leaks.iter().map(|l| l.image_url.as_str()).collect();
    for a in &image_alerts {
        let url = a["url"].as_str().unwrap();
        assert!(
            url.starts_with("data:") || leak_urls.contains(url),
            "alert on a non-leak: {a}"
        );
    }
    let text_pages: HashSet<&str> = alerts
        .iter()
        .filter(|a| a["kind"] == "text")
        .map(|a| a["url"].as_str().unwrap())
        .collect();
    for t in &truth.text_leaks {
        assert!(
            text_pages.contains(t.page_url.as_str()),
            "text leak not alerted: {t:?}"
        );
    }
    let leak_pages: HashSet<&str> = truth
        .text_leaks
        .iter()
        .map(|t| t.page_url.as_str())
        .collect();
    assert!(
        text_pages.iter().all(|p| leak_pages.contains(p)),
        "text alert on a page without a leak"
    );

    // Text alerts say what kind of identifier was seen and where, masked.
    for a in alerts.iter().filter(|a| a["kind"] == "text") {
        let sighting = &a["identifier"];
        assert!(
            ["plate", "document"].contains(&sighting["kind"].as_str().unwrap()),
            "{a}"
        );
        assert!(sighting["masked"].as_str().unwrap().contains('*'), "{a}");
        assert!(sighting["offset"].is_u64(), "{a}");
    }
    assert_eq!(summary["evidence_kept"], alerts.len(), "{summary}");
    assert_evidence_exports(&data, tmp.path(), &alerts).await;
    assert_nothing_watched_is_stored(&data, &truth).await;

    // A second crawl finds the same leaks and stores no alert twice.
    let again = &json_lines(&leakwatch(&data, &run).await)[0];
    assert_eq!(again["new_alerts"], 0, "{again}");
    assert_eq!(again["evidence_kept"], 0, "evidence kept twice: {again}");
    assert!(again["repeated_alerts"].as_u64().unwrap() >= catchable.len() as u64);
    assert_eq!(
        json_lines(&leakwatch(&data, &["alerts", "--json"]).await).len(),
        alerts.len()
    );

    // Search finds a planted phrase on its page, and never script text.
    let phrase = &truth.phrases[0];
    let q = format!("\"{}\"", phrase.phrase);
    let hits = json_lines(&leakwatch(&data, &["search", &q, "--json"]).await);
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0]["url"], phrase.page_url.as_str());
    for key in ["url", "title", "snippet", "fetched_at"] {
        assert!(hits[0].get(key).is_some(), "search result lacks {key}");
    }
    let script =
        json_lines(&leakwatch(&data, &["search", testbed::SCRIPT_ONLY_TOKEN, "--json"]).await);
    assert!(script.is_empty(), "script text was indexed: {script:?}");
    let all = json_lines(&leakwatch(&data, &["search", "*", "--json", "--limit", "10000"]).await);
    assert_eq!(all.len(), truth.pages);

    // `match` gives the same decision as the crawl, nearest first.
    let first = std::fs::read_dir(&stolen)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let not_image = tmp.path().join("notes.txt");
    std::fs::write(&not_image, "not an image").unwrap();
    let m = json_lines(
        &leakwatch(
            &data,
            &[
                "match",
                first.to_str().unwrap(),
                not_image.to_str().unwrap(),
                "--json",
                "--top",
                "3",
            ],
        )
        .await,
    );
    let stem = first.file_stem().unwrap().to_str().unwrap();
    assert_eq!(m[0]["matches"][0]["label"], stem);
    assert_eq!(m[0]["matches"][0]["distance"], 0);
    assert_eq!(m[0]["matches"][0]["matched"], true);
    assert_eq!(m[0]["matches"].as_array().unwrap().len(), 3);
    assert!(m[0]["matches"][1]["distance"].as_u64() >= m[0]["matches"][0]["distance"].as_u64());
    assert!(m[1]["error"].is_string());
    tb.shutdown().await;
}

/// After a crawl with an empty bank, importing the stolen set and running `retrohunt` raises
/// the alerts the crawl would have raised, from what the index recorded (no image is fetched
/// again); a second retro-hunt adds nothing. Fingerprints shared as bare PDQ hashes match too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrohunt_finds_past_sightings_and_shared_hashes_match() {
    let tb = testbed::start(testbed::Config::default()).await.unwrap();
    let truth = tb.truth();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_config(&data, "");
    let stolen = tmp.path().join("stolen");
    tb.write_stolen_set(&stolen).unwrap();

    let seeds = tb.seeds();
    let run = crawl_args(&seeds);
    let summary = &json_lines(&leakwatch(&data, &run).await)[0];
    assert_eq!(summary["total_alerts"], 0, "{summary}");
    tb.shutdown().await;

    // The testbed is gone: the retro-hunt works from the index alone.
    leakwatch(&data, &["fingerprints", "import", stolen.to_str().unwrap()]).await;
    let found = json_lines(&leakwatch(&data, &["retrohunt", "--json"]).await);
    let decoys: HashSet<&str> = truth.decoys.iter().map(|d| d.image_url.as_str()).collect();
    let leak_urls: HashSet<&str> = truth.leaks.iter().map(|l| l.image_url.as_str()).collect();
    for a in &found {
        let url = a["url"].as_str().unwrap();
        assert!(
            !decoys.contains(url),
            "decoy alerted by the retro-hunt: {a}"
        );
        assert!(
            url.starts_with("data:") || leak_urls.contains(url),
            "retro-hunt alert on a non-leak: {a}"
        );
    }
    // Recorded framings only: edits that need the framing search (crops, rotations) may be
    // missed, all others must be found, each with its own label.
    let plain: Vec<_> = truth
        .leaks
        .iter()
        .filter(|l| l.expect_dct256 && !l.data_uri)
        .collect();
    assert!(plain.len() >= 10);
    for leak in plain {
        assert!(
            found
                .iter()
                .any(|a| a["url"] == leak.image_url.as_str() && a["label"] == leak.label.as_str()),
            "past sighting not found: {leak:?}"
        );
    }
    let stored = json_lines(&leakwatch(&data, &["alerts", "--json"]).await);
    assert_eq!(stored.len(), found.len());
    let again = leakwatch(&data, &["retrohunt"]).await;
    assert!(
        String::from_utf8_lossy(&again.stderr).contains(&format!("{} matched, 0 new", found.len())),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // Shared hashes: another data dir gets only PDQ hashes, one per line with a label.
    let listed = json_lines(&leakwatch(&data, &["fingerprints", "list", "--json"]).await);
    let mut lines = String::from("# PDQ hashes shared by a partner\n");
    for fp in &listed {
        lines.push_str(&format!(
            "{} {}\n",
            fp["regions"][0].as_str().unwrap(),
            fp["label"].as_str().unwrap()
        ));
    }
    let shared = tmp.path().join("shared.txt");
    let other = tmp.path().join("other");
    std::fs::write(&shared, format!("{lines}not-a-hash label\n")).unwrap();
    let bad = std::process::Command::new(BIN)
        .arg("--data-dir")
        .arg(&other)
        .args(["fingerprints", "import", "--from-hashes"])
        .arg(&shared)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains(&format!("line {}", listed.len() + 2)) && err.contains("nothing imported"),
        "{err}"
    );
    std::fs::write(&shared, &lines).unwrap();
    leakwatch(
        &other,
        &[
            "fingerprints",
            "import",
            "--from-hashes",
            shared.to_str().unwrap(),
        ],
    )
    .await;
    let first = std::fs::read_dir(&stolen)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let m = json_lines(&leakwatch(&other, &["match", first.to_str().unwrap(), "--json"]).await);
    let best = &m[0]["matches"][0];
    assert_eq!(best["label"], first.file_stem().unwrap().to_str().unwrap());
    assert_eq!(best["matched"], true);
    assert_eq!(best["algorithm"], "pdq");
}
