//! `Config::public_bases`: a site served on loopback but known to the world
//! under another base URL (an onion service forwarding to its port) must be
//! linked, listed and recorded in the truth file under that base only.

mod common;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use testbed::{Config, Error, SITE_NAMES};
use url::Url;

const ONION: &str = "http://forumxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.onion/";

/// Hrefs and image sources of a page, resolved, without fragments.
fn links(page: &Url, html: &str) -> Vec<Url> {
    let mut raw = common::attr_values(html, "href");
    raw.extend(common::attr_values(html, "src"));
    raw.into_iter()
        .filter_map(|h| page.join(&h).ok())
        .filter(|u| u.scheme() == "http")
        .map(|mut u| {
            u.set_fragment(None);
            u
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_base_replaces_the_listening_address_everywhere() {
    let running = testbed::start(Config {
        stolen_count: 4,
        public_bases: BTreeMap::from([(
            "forum".to_string(),
            ONION.trim_end_matches('/').to_string(),
        )]),
        ..Config::default()
    })
    .await
    .unwrap();
    let forum_local = format!("http://{}/", running.local_addrs()[0]);
    assert_eq!(running.sites()[0].name, "forum");
    assert_eq!(running.sites()[0].base_url, ONION, "trailing slash added");
    assert!(running.seeds().contains(&ONION.to_string()));
    for (site, local) in running.sites().iter().zip(running.local_addrs()).skip(1) {
        assert_eq!(site.base_url, format!("http://{local}/"));
    }

    let truth = running.truth();
    assert_eq!(truth.sites[0].base_url, ONION);
    let truth_json = serde_json::to_string(&truth).unwrap();
    assert!(
        !truth_json.contains(&forum_local),
        "truth names the listener"
    );
    let forum_urls = truth
        .leaks
        .iter()
        .map(|l| l.page_url.as_str())
        .chain(truth.phrases.iter().map(|p| p.page_url.as_str()))
        .filter(|u| u.starts_with(ONION))
        .count();
    assert!(forum_urls > 0, "no truth entry on the forum under its base");

    // Crawl all four sites over their listeners, mapping the public base of
    // the forum to its listener, and look at every link.
    let to_local = |u: &Url| -> Option<String> {
        let s = u.as_str();
        if let Some(rest) = s.strip_prefix(ONION) {
            return Some(format!("{forum_local}{rest}"));
        }
        running
            .local_addrs()
            .iter()
            .any(|a| s.starts_with(&format!("http://{a}/")))
            .then(|| s.to_string())
    };
    let mut queue: VecDeque<Url> = running
        .seeds()
        .iter()
        .map(|s| Url::parse(s).unwrap())
        .collect();
    let mut seen: BTreeSet<String> = queue.iter().map(|u| u.to_string()).collect();
    let (mut pages, mut onion_links) = (0, 0);
    while let Some(url) = queue.pop_front() {
        let Some(local) = to_local(&url) else {
            continue;
        };
        let resp = common::get(&local).await;
        let ct = resp.header("content-type").unwrap_or_default().to_string();
        if ["text/plain", "application/json"]
            .iter()
            .any(|t| ct.starts_with(t))
        {
            // A raw paste: a page, whose URLs are written in its text.
            let text = String::from_utf8_lossy(&resp.body);
            assert!(
                !text.contains(&forum_local),
                "{url} names the forum's listener"
            );
            pages += 1;
            continue;
        }
        if !ct.starts_with("text/html") {
            continue;
        }
        assert_eq!(resp.status, 200, "{url}");
        let html = String::from_utf8_lossy(&resp.body);
        assert!(
            !html.contains(&forum_local),
            "{url} names the forum's listener"
        );
        pages += 1;
        for link in links(&url, &html) {
            if link.as_str().starts_with(ONION) && !url.as_str().starts_with(ONION) {
                onion_links += 1;
            }
            if seen.insert(link.to_string()) {
                queue.push_back(link);
            }
        }
    }
    assert_eq!(pages, truth.pages, "every page reachable through the bases");
    assert!(
        onion_links > 0,
        "no other site links to the forum's public base"
    );
    running.shutdown().await;
}

#[tokio::test]
async fn bad_public_bases_are_refused() {
    for (site, url) in [
        ("forum", "ftp://example.onion/"),
        ("forum", "http://"),
        ("forum", "http://a\"onmouseover=\"x.onion/"),
        ("forum", "http://a b.onion/"),
        ("gallery", "javascript:alert(1)"),
    ] {
        let err = testbed::start(Config {
            public_bases: BTreeMap::from([(site.to_string(), url.to_string())]),
            ..Config::default()
        })
        .await
        .err()
        .unwrap_or_else(|| panic!("{url} accepted"));
        assert!(matches!(err, Error::PublicBase { .. }), "{url}: {err}");
    }
    let err = testbed::start(Config {
        public_bases: BTreeMap::from([("hostile".to_string(), ONION.to_string())]),
        ..Config::default()
    })
    .await
    .err()
    .unwrap();
    assert!(
        matches!(err, Error::UnknownSite(ref s) if s == "hostile"),
        "{err}"
    );
    assert!(!SITE_NAMES.contains(&"hostile"));
}
