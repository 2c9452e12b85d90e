//! Public-API tests of the generated world and the normal sites: determinism,
//! size, reachability over HTTP and the truth file's consistency.

mod common;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

use testbed::{Config, COMMENT_ONLY_TOKEN, SCRIPT_ONLY_TOKEN, SITE_NAMES};
use url::Url;

fn fake_bases() -> Vec<String> {
    (0..4)
        .map(|i| format!("http://127.0.0.1:{}/", 9000 + i))
        .collect()
}

#[test]
fn same_seed_same_world_other_seed_other_world() {
    let started = Instant::now();
    let a = testbed::generate(&Config::default());
    println!("generated in {:?}", started.elapsed());
    let b = testbed::generate(&Config::default());
    let bases = fake_bases();
    assert_eq!(a.truth(&bases), b.truth(&bases));
    assert_eq!(a.render(&bases), b.render(&bases));
    assert_eq!(a.identifiers(), b.identifiers());
    for (x, y) in a.stolen().iter().zip(b.stolen()) {
        assert_eq!(x.label, y.label);
        assert_eq!(x.image.as_raw(), y.image.as_raw());
    }
    let c = testbed::generate(&Config {
        seed: 8,
        ..Config::default()
    });
    assert_ne!(a.render(&bases), c.render(&bases));
    assert_ne!(a.stolen()[0].image.as_raw(), c.stolen()[0].image.as_raw());
}

#[test]
fn truth_is_consistent_with_the_world() {
    let world = testbed::generate(&Config::default());
    let truth = world.truth(&fake_bases());
    assert!(truth.pages >= 380, "{} pages", truth.pages);
    // Planted on pages, plus two photos pasted as base64 and three in attachments.
    assert!(
        (29..=35).contains(&truth.leaks.len()),
        "{}",
        truth.leaks.len()
    );
    assert!(truth.decoys.len() >= 12);
    assert!(truth.text_leaks.len() >= 10);
    assert_eq!(truth.phrases.len(), 10);
    assert_eq!(world.stolen().len(), 60);
    assert_eq!(world.stolen()[0].label, "stolen-0001");
    assert_eq!(truth.leaks.iter().filter(|l| l.data_uri).count(), 3);
    let ids: BTreeSet<&String> = world.identifiers().iter().collect();
    assert_eq!(ids.len(), world.identifiers().len());
    let labels: BTreeSet<&str> = world.stolen().iter().map(|p| p.label.as_str()).collect();
    for leak in &truth.leaks {
        assert!(labels.contains(leak.label.as_str()));
    }
    let rendered = world.render(&fake_bases());
    let page_text = |url: &str| -> String {
        let site = truth
            .sites
            .iter()
            .position(|s| url.starts_with(&s.base_url))
            .unwrap();
        let path = format!("/{}", &url[truth.sites[site].base_url.len()..]);
        String::from_utf8(rendered[site][&path].1.clone()).unwrap()
    };
    for t in &truth.text_leaks {
        assert!(ids.contains(&t.identifier));
        assert!(page_text(&t.page_url).contains(&t.written_as));
    }
    assert!(truth
        .text_leaks
        .iter()
        .any(|t| t.written_as != t.identifier));
    // Each phrase occurs on exactly one page.
    for p in &truth.phrases {
        let n = rendered
            .iter()
            .flat_map(|site| site.values())
            .filter(|(_, body)| String::from_utf8_lossy(body).contains(&p.phrase))
            .count();
        assert_eq!(n, 1, "{}", p.phrase);
        assert!(page_text(&p.page_url).contains(&p.phrase));
    }
}

/// Hrefs and image sources of a page, resolved, without fragments.
fn links(base: &Url, html: &str) -> Vec<Url> {
    let mut raw = common::attr_values(html, "href");
    raw.extend(common::attr_values(html, "src"));
    for set in common::attr_values(html, "srcset") {
        raw.extend(
            set.split(',')
                .filter_map(|c| c.split_whitespace().next().map(String::from)),
        );
    }
    let mut rest = html;
    while let Some(i) = rest.find("url(") {
        let after = &rest[i + 4..];
        let end = after.find(')').unwrap_or(after.len());
        raw.push(after[..end].trim_matches(['\'', '"']).to_string());
        rest = &after[end..];
    }
    raw.into_iter()
        .filter(|h| !h.starts_with("data:"))
        .filter_map(|h| base.join(&h).ok())
        .filter(|u| u.scheme() == "http")
        .map(|mut u| {
            u.set_fragment(None);
            u
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_is_reachable_within_five_hops() {
    let running = testbed::start(Config::default()).await.unwrap();
    let truth = running.truth();
    assert_eq!(running.seeds().len(), 4);
    assert!(running.hostile_url().is_none());
    let origins: BTreeSet<String> = truth.sites.iter().map(|s| s.base_url.clone()).collect();
    let on_sites = |u: &Url| origins.iter().any(|o| u.as_str().starts_with(o.as_str()));

    let mut depth: BTreeMap<String, usize> = BTreeMap::new();
    let mut queue = VecDeque::new();
    for s in running.seeds() {
        depth.insert(s.clone(), 0);
        queue.push_back(s);
    }
    let mut pages = 0;
    let mut max_depth = 0;
    let mut saw_mailto = false;
    while let Some(url) = queue.pop_front() {
        let d = depth[&url];
        let resp = common::get(&url).await;
        assert_eq!(resp.status, 200, "broken link {url}");
        let ct = resp.header("content-type").unwrap_or_default().to_string();
        if ["text/plain", "application/json"]
            .iter()
            .any(|t| ct.starts_with(t))
        {
            // A raw paste: its links are URLs written in the text.
            pages += 1;
            let text = String::from_utf8(resp.body).unwrap();
            for word in text.split_whitespace().filter(|w| w.starts_with("http://")) {
                let link = Url::parse(word).unwrap();
                if on_sites(&link) && !depth.contains_key(link.as_str()) {
                    depth.insert(link.to_string(), d + 1);
                    queue.push_back(link.to_string());
                }
            }
            continue;
        }
        if !ct.starts_with("text/html") {
            assert!(
                ct.starts_with("image/") || ct == "application/octet-stream",
                "{url}: {ct}"
            );
            continue;
        }
        pages += 1;
        max_depth = max_depth.max(d);
        let html = String::from_utf8(resp.body).unwrap();
        assert!(html.contains(SCRIPT_ONLY_TOKEN) && html.contains(COMMENT_ONLY_TOKEN));
        saw_mailto |= html.contains("href=\"mailto:");
        let base = Url::parse(&url).unwrap();
        for link in links(&base, &html) {
            if !on_sites(&link) {
                continue;
            }
            let s = link.to_string();
            if !depth.contains_key(&s) {
                depth.insert(s.clone(), d + 1);
                queue.push_back(s);
            }
        }
    }
    assert!(saw_mailto);
    assert_eq!(pages, truth.pages, "pages reachable over HTTP vs truth");
    assert!(pages >= 380);
    assert!(max_depth <= 5, "max depth {max_depth}");
    for leak in &truth.leaks {
        assert!(depth.contains_key(&leak.page_url), "{}", leak.page_url);
        if !leak.data_uri {
            // An image in an attachment: the attachment is reachable.
            let file = leak.image_url.split('#').next().unwrap();
            assert!(depth.contains_key(file), "{}", leak.image_url);
        }
    }
    for decoy in &truth.decoys {
        assert!(depth.contains_key(&decoy.image_url));
    }
    let missing = common::get(&format!("{}no/such/page", truth.sites[0].base_url)).await;
    assert_eq!(missing.status, 404);
    assert_eq!(truth.sites.len(), SITE_NAMES.len());
    running.shutdown().await;
}

#[tokio::test]
async fn stolen_set_and_identifiers_are_written() {
    let running = testbed::start(Config {
        stolen_count: 5,
        ..Config::default()
    })
    .await
    .unwrap();
    let dir = std::env::temp_dir().join(format!("testbed-stolen-{}", std::process::id()));
    let paths = running.write_stolen_set(&dir).unwrap();
    assert_eq!(paths.len(), 5);
    assert_eq!(paths[0].file_stem().unwrap(), "stolen-0001");
    let img = image::open(&paths[0]).unwrap();
    assert_eq!((img.width(), img.height()), (640, 480));
    let ids_path = dir.join("ids.txt");
    running.write_identifiers(&ids_path).unwrap();
    let ids = std::fs::read_to_string(&ids_path).unwrap();
    assert_eq!(ids.lines().count(), 50);
    assert!(ids.lines().any(|l| l.contains('-')) && ids.lines().any(|l| l.starts_with('P')));
    std::fs::remove_dir_all(&dir).unwrap();
    running.shutdown().await;
}

#[tokio::test]
async fn wrong_port_count_is_rejected() {
    let err = testbed::start(Config {
        ports: Some(vec![0, 0]),
        ..Config::default()
    })
    .await
    .err()
    .unwrap();
    assert!(matches!(
        err,
        testbed::Error::PortCount {
            expected: 4,
            got: 2
        }
    ));
}
