//! Continuous watch, end to end: `leakwatch run` (no `--once`) watches a live forum that posts
//! new threads (some with a stolen photo or identifier), edits old ones and takes pages down
//! while it runs; leakwatch is stopped and started again in the middle.
//!
//! It must alert every planted leak exactly once and within the README's bound, re-publish no
//! page that did not change (conditional hits and content digests, counted), keep its
//! revisits within their budget, and resume after the restart from its stored schedule:
//! nothing fetched before it is due, nothing due forgotten, and a leak posted while it was
//! down alerted after it is back. A new onion address the forum announces is flagged for an
//! analyst. Once the forum bumps replied threads to the top of its listings, a leak added to an
//! old thread is found through the listing as fast as one in a new thread.

#[path = "support/watch_run.rs"]
mod watch_run;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use testbed::{LiveForum, LivePost, Plant};

use watch_run::WatchRun;

const BIN: &str = env!("CARGO_BIN_EXE_leakwatch");

/// The schedule under test, time compressed: entry pages every 2 s, threads from 15 s up to
/// 30 s, and 5,400 revisits an hour (1.5 a second, 90 at once) for the forum. (The budget
/// holding back a schedule that asks for more is `frontier::tests::
/// the_revisit_budget_holds_and_spreads_what_it_defers`.)
const CONFIG: &str = "\
[crawler]
workers = 4
politeness_delay_ms = 50
timeout_secs = 10

[recrawl]
min_interval_secs = 1
entry_interval_secs = 2
page_interval_secs = 15
max_interval_secs = 30
site_revisits_per_hour = 5400
tick_ms = 100
";
const ENTRY_SECS: u64 = 2;
const MAX_SECS: u64 = 30;
const SITE_PER_HOUR: f64 = 5400.0;
/// What the pipeline itself may add (fetch, match, index) on a loaded 2-core machine.
const PIPELINE_SECS: u64 = 10;

fn leakwatch(data: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "leakwatch {args:?}: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

fn secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// Stored alerts, by label.
fn alerts(data: &Path) -> BTreeMap<String, Vec<Value>> {
    let mut by_label: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for line in leakwatch(data, &["alerts", "--json"]).lines() {
        let a: Value = serde_json::from_str(line).unwrap();
        by_label
            .entry(a["label"].as_str().unwrap().to_string())
            .or_default()
            .push(a);
    }
    by_label
}

/// Due time (Unix ms) of every scheduled page, read from the frontier's store.
async fn schedule(data: &Path, forum: &LiveForum) -> HashMap<String, u64> {
    let store = crawler::store::open(None, data).await.unwrap();
    let mut due = HashMap::new();
    let mut paths: Vec<String> = forum.requests().into_iter().map(|r| r.path).collect();
    paths.sort();
    paths.dedup();
    for p in paths.into_iter().filter(|p| !p.starts_with("/img/")) {
        let url = url::Url::parse(&format!("{}{}", forum.base_url(), &p[1..])).unwrap();
        if let Some(row) = store.row(crawler::frontier::digest(&url)).await.unwrap() {
            due.insert(p, row.due_ms);
        }
    }
    due
}

/// Waits until every planted leak is alerted, or the last one's deadline has passed.
async fn wait_for(data: &Path, planted: &[(LivePost, u64)]) {
    let deadline = planted
        .iter()
        .map(|(p, bound)| secs(p.posted_at) + *bound as f64)
        .fold(0.0, f64::max);
    loop {
        let found = alerts(data);
        let all = planted.iter().all(|(p, _)| found.contains_key(&label(p)));
        if all || secs(SystemTime::now()) > deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The label an alert for `post`'s plant carries.
fn label(post: &LivePost) -> String {
    match post.plant {
        Plant::Identifier(i) => format!("ident-{i}"),
        _ => post.label.clone().unwrap(),
    }
}

async fn sleep_until(t0: Instant, at: u64) {
    tokio::time::sleep_until((t0 + Duration::from_secs(at)).into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_forum_is_watched_continuously_and_across_a_restart() {
    let tb = testbed::start(testbed::Config {
        stolen_count: 8,
        ..Default::default()
    })
    .await
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("cfg.toml"), CONFIG).unwrap();
    let stolen = tmp.path().join("stolen");
    tb.write_stolen_set(&stolen).unwrap();
    // Labelled, so that an alert names the identifier without holding it.
    let idents = tmp.path().join("identifiers.txt");
    let lines: Vec<String> = tb
        .world()
        .identifiers()
        .iter()
        .enumerate()
        .map(|(i, id)| format!("ident-{i}\t{id}\n"))
        .collect();
    std::fs::write(&idents, lines.concat()).unwrap();
    leakwatch(&data, &["fingerprints", "import", stolen.to_str().unwrap()]);
    leakwatch(&data, &["watchlist", "import", idents.to_str().unwrap()]);
    let photos = tb.world().stolen().to_vec();
    let identifiers = tb.world().identifiers().to_vec();
    let forum = LiveForum::start("127.0.0.1:0".parse().unwrap(), photos, identifiers, 12)
        .await
        .unwrap();
    let seed = forum.base_url();

    // First run: new threads, an edit that plants an identifier, a page taken down.
    let t0 = Instant::now();
    let run = WatchRun::start(&data, "warn", &["--seed", &seed]);
    let mut planted: Vec<(LivePost, u64)> = Vec::new(); // (post, bound in seconds)
    let new_bound = 2 * ENTRY_SECS + PIPELINE_SECS;
    let edit_bound = 2 * MAX_SECS + PIPELINE_SECS;
    let bumped_bound = 2 * ENTRY_SECS + PIPELINE_SECS + 1;
    sleep_until(t0, 6).await;
    planted.push((forum.post(Plant::Photo(0)), new_bound));
    sleep_until(t0, 9).await;
    planted.push((forum.post(Plant::Identifier(0)), new_bound));
    sleep_until(t0, 12).await;
    forum.post(Plant::Nothing);
    sleep_until(t0, 14).await;
    planted.push((forum.edit(4, Plant::Identifier(1)).unwrap(), edit_bound));
    sleep_until(t0, 16).await;
    forum.take_down(3);
    sleep_until(t0, 18).await;
    planted.push((forum.post(Plant::Photo(1)), new_bound));
    sleep_until(t0, 26).await;
    wait_for(&data, &planted).await;
    let (first, _) = run.stop().await;
    let stopped = SystemTime::now();
    let first_secs = t0.elapsed().as_secs_f64();

    // While it is down: a new leak, and the schedule as it was left.
    let down_post = forum.post(Plant::Identifier(2));
    let due_at_stop = schedule(&data, &forum).await;
    let mut requested: Vec<String> = forum
        .requests()
        .into_iter()
        .map(|r| r.path)
        .filter(|p| !p.starts_with("/img/"))
        .collect();
    requested.sort();
    requested.dedup();
    let mut scheduled: Vec<String> = due_at_stop.keys().cloned().collect();
    scheduled.sort();
    assert_eq!(
        scheduled, requested,
        "every page requested is on the schedule"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Second run: resumes; a new post and an edit that plants a photo. From now on the forum
    // bumps a thread to the top of its listings when it gets a reply, as most forums do: the
    // edit must then be found through the listing, as fast as a new thread.
    forum.bump_on_reply(true);
    let t1 = Instant::now();
    let restarted = SystemTime::now();
    let run = WatchRun::start(&data, "warn", &["--seed", &seed]);
    planted.push((down_post, 3 + 2 * ENTRY_SECS + PIPELINE_SECS));
    sleep_until(t1, 4).await;
    planted.push((forum.post(Plant::Photo(2)), new_bound));
    planted.push((forum.edit(7, Plant::Photo(3)).unwrap(), bumped_bound));
    // The forum announces a new onion address: flagged, not trusted.
    let mirror = testbed::fake_onion(7);
    forum.post(Plant::Mirror(mirror.clone()));
    sleep_until(t1, 8).await;
    planted.push((forum.post(Plant::Identifier(3)), new_bound));

    wait_for(&data, &planted).await;
    let (second, _) = run.stop().await;
    let second_secs = t1.elapsed().as_secs_f64();
    let found = alerts(&data);

    // Every planted leak: one alert, on its thread, within its bound.
    for (post, bound) in &planted {
        let label = &label(post);
        let got = found.get(label).unwrap_or_else(|| {
            panic!(
                "{label} planted in {} was never alerted: {found:?}",
                post.url
            )
        });
        assert_eq!(got.len(), 1, "{label}: {got:?}");
        let a = &got[0];
        let on_page = a["page_url"].as_str() == Some(&post.url) || a["url"] == post.url.as_str();
        assert!(on_page, "{label} alerted elsewhere: {a}");
        let detected = schema::unix_from_rfc3339(a["detected_at"].as_str().unwrap()).unwrap();
        let latency = detected as f64 - secs(post.posted_at).floor();
        assert!(
            latency <= *bound as f64,
            "{label} alerted {latency} s after it was posted (bound {bound} s)"
        );
        assert!(a["page_fetched_at"].is_string(), "{a}");
        if *bound == new_bound {
            // A new thread was listed (on the index) before it was fetched.
            let listed = schema::unix_from_rfc3339(a["listed_at"].as_str().unwrap_or_default());
            let fetched = schema::unix_from_rfc3339(a["page_fetched_at"].as_str().unwrap());
            assert!(listed.is_some() && listed <= fetched, "{a}");
        }
    }
    assert_eq!(found.len(), planted.len(), "only planted leaks: {found:?}");
    for s in [&first, &second] {
        assert_eq!(s["repeated_alerts"], 0, "a leak alerted twice: {s}");
    }

    // Unchanged pages were neither re-published nor re-indexed: the index answered 304s,
    // the validator-less boards were recognised by their content.
    let count = |k: &str| {
        first["recrawl"][k].as_u64().unwrap_or(0) + second["recrawl"][k].as_u64().unwrap_or(0)
    };
    assert!(count("recrawl.not-modified") > 0, "{first}\n{second}");
    assert!(count("recrawl.unchanged") > 0, "{first}\n{second}");
    let requests = forum.requests();
    let pages_served = requests
        .iter()
        .filter(|r| r.status == 200 && !r.path.starts_with("/img/"))
        .count() as u64;
    let published = first["pages"].as_u64().unwrap() + second["pages"].as_u64().unwrap();
    // (Up to one page per worker may be in flight when a run stops.)
    let accounted = published + count("recrawl.unchanged");
    assert!(
        accounted <= pages_served && accounted + 8 >= pages_served,
        "{accounted} pages published or found unchanged, {pages_served} served"
    );
    let not_modified = requests.iter().filter(|r| r.status == 304).count() as u64;
    let counted = count("recrawl.not-modified");
    assert!(
        counted <= not_modified && not_modified <= counted + 8,
        "{counted} of {not_modified}"
    );
    eprintln!(
        "forum: {} requests, {pages_served} pages served in full, {not_modified} answered 304; \
         leakwatch: {published} pages published, {} found unchanged",
        requests.len(),
        count("recrawl.unchanged")
    );

    // Revisits stay within the budget: the rate plus a minute's worth at once, per run.
    let mut first_fetch: HashMap<&str, SystemTime> = HashMap::new();
    let mut revisits = [0u64; 2];
    for r in &requests {
        if r.path.starts_with("/img/") {
            continue;
        }
        if first_fetch.contains_key(r.path.as_str()) {
            revisits[usize::from(r.at >= restarted)] += 1;
        } else {
            first_fetch.insert(&r.path, r.at);
        }
    }
    for (n, secs) in revisits.iter().zip([first_secs, second_secs]) {
        let allowed = SITE_PER_HOUR / 60.0 + SITE_PER_HOUR / 3600.0 * secs;
        assert!(
            (*n as f64) <= allowed,
            "{n} revisits in {secs:.0} s (budget {allowed:.0})"
        );
    }
    assert!(revisits[1] > 0, "nothing was revisited after the restart");

    // After the restart: nothing fetched before its stored due time (one second of slack
    // for the schedule's clock), and every page due during the second run fetched.
    let end = SystemTime::now();
    for (path, due_ms) in &due_at_stop {
        let after: Vec<SystemTime> = requests
            .iter()
            .filter(|r| &r.path == path && r.at >= stopped)
            .map(|r| r.at)
            .collect();
        // (Threads with replies move to the top of the listings once the forum bumps: they
        // are due at once, by design.)
        let bumped = ["/t/4", "/t/7"].contains(&path.as_str());
        if let (Some(first_after), false) = (after.first(), bumped) {
            let early = *due_ms as f64 / 1000.0 - secs(*first_after);
            assert!(
                early <= 1.0,
                "{path} refetched {early:.1} s before it was due"
            );
        }
        let due = UNIX_EPOCH + Duration::from_millis(*due_ms);
        if due + Duration::from_secs(5) < end {
            assert!(
                !after.is_empty(),
                "{path} was due during the second run and never fetched"
            );
        }
    }

    // Liveness: the forum is up, with its pages on the schedule.
    let sites = leakwatch(&data, &["sites", "--json"]);
    let host = seed.trim_start_matches("http://").trim_end_matches('/');
    let site: Value = sites
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|s| s["site"] == host)
        .unwrap_or_else(|| panic!("{host} not in {sites}"));
    assert_eq!(site["state"], "up", "{site}");
    assert!(site["seed"].as_bool().unwrap(), "{site}");
    assert!(
        second["recrawl"]["recrawl.bumped"].as_u64().unwrap_or(0) >= 1,
        "{second}"
    );
    let mirrors: Vec<&str> = site["mirrors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(mirrors, [mirror.as_str()], "{site}");
    assert!(
        second["recrawl"]["sites.mirrors-announced"] == 1,
        "{second}"
    );
    // The index at least (a seed); boards are entry pages while they show fresh links.
    assert!(site["entry_pages"].as_u64().unwrap() >= 1, "{site}");
    // The summary reports detection latency from the alerts' own timestamps.
    assert!(
        second["detection_latency"]["alerts"].as_u64().unwrap() >= 1,
        "{second}"
    );

    forum.shutdown().await;
    tb.shutdown().await;
}
