//! The analysts' search over a real index: filters, order, pagination, document look-ups and
//! the escaping of snippets.

use leakwatch_indexer::{IndexError, Network, PageIndex, SearchRequest, SortBy};
use schema::{FetchedPage, ImageHash, ImageVerdict};

fn page(url: &str, host: &str, fetched_at: &str, title: &str, text: &str) -> FetchedPage {
    FetchedPage {
        url: url.into(),
        host: host.into(),
        title: title.into(),
        text: text.into(),
        sha256: format!("sha-{url}"),
        fetched_at: fetched_at.into(),
        depth: 0,
        links: vec![],
        images: vec![format!("{url}/a.jpg")],
        listed_at: None,
        exchange: None,
        body: vec![],
    }
}

fn image(url: &str, page_url: &str) -> ImageVerdict {
    ImageVerdict {
        url: url.into(),
        page_url: Some(page_url.into()),
        sha256: format!("sha-{url}"),
        fetched_at: "2026-01-01T10:00:01Z".into(),
        width: 10,
        height: 10,
        hashes: vec![ImageHash {
            algorithm: "dhash".into(),
            hex: "00ff".into(),
        }],
        matched: vec!["stolen-1".into()],
    }
}

const P1: &str = "http://abc.onion/1";
const P2: &str = "http://xyz.onion:80/2";
const P3: &str = "https://clear.example/3";
const P4: &str = "https://clear.example/4";

/// Four pages: two onion (one host with a port and capitals), two clearnet (one without a
/// readable fetch time), and images on the first.
fn fixture() -> (tempfile::TempDir, PageIndex) {
    let dir = tempfile::tempdir().unwrap();
    let idx = PageIndex::open(dir.path()).unwrap();
    let mut w = idx.writer(20_000_000).unwrap();
    let pages = [
        page(
            P1,
            "abc.onion",
            "2026-01-01T10:00:00Z",
            "Alpha dump",
            "quartz lantern alpha",
        ),
        page(
            P2,
            "XYZ.Onion:80",
            "2026-01-02T23:59:59Z",
            "Beta",
            "quartz beta",
        ),
        page(
            P3,
            "clear.example",
            "2026-01-03T00:00:00+00:00",
            "Gamma",
            "quartz gamma",
        ),
        page(P4, "clear.example", "last tuesday", "Delta", "quartz delta"),
    ];
    for p in &pages {
        idx.upsert_page(&w, p).unwrap();
    }
    idx.upsert_image(&w, &image("http://abc.onion/1/b.jpg", P1))
        .unwrap();
    idx.upsert_image(&w, &image("http://abc.onion/1/a.jpg", P1))
        .unwrap();
    idx.upsert_image(&w, &image("http://elsewhere/c.jpg", P3))
        .unwrap();
    w.commit().unwrap();
    (dir, idx)
}

fn req(query: &str) -> SearchRequest {
    SearchRequest {
        query: query.into(),
        ..SearchRequest::default()
    }
}

/// The URLs of `r`'s hits, sorted unless the order matters.
fn urls(idx: &PageIndex, r: &SearchRequest) -> Vec<String> {
    let page = idx.search_page(r).unwrap();
    let mut out: Vec<String> = page.hits.into_iter().map(|h| h.url).collect();
    if r.sort == SortBy::Relevance {
        out.sort();
    }
    out
}

#[test]
fn all_pages_and_only_pages() {
    let (_dir, idx) = fixture();
    for q in ["", "*", "  "] {
        let page = idx.search_page(&req(q)).unwrap();
        assert_eq!(page.total, 4, "{q:?}");
        assert_eq!(page.hits.len(), 4);
    }
    let hit = idx.search_page(&req("lantern")).unwrap().hits.remove(0);
    assert_eq!((hit.url.as_str(), hit.host.as_str()), (P1, "abc.onion"));
    assert_eq!(hit.fetched_at, "2026-01-01T10:00:00Z");
    // The old entry point still works, with the host now in its hits.
    let old = idx.search("quartz", 2).unwrap();
    assert_eq!(old.len(), 2);
    assert!(old.iter().all(|h| !h.host.is_empty()));
}

#[test]
fn field_prefixes_in_the_query() {
    let (_dir, idx) = fixture();
    assert_eq!(urls(&idx, &req("host:abc.onion")), [P1]);
    assert_eq!(urls(&idx, &req(&format!("url:\"{P3}\""))), [P3]);
    assert_eq!(urls(&idx, &req("title:beta")), [P2]);
    assert_eq!(urls(&idx, &req("body:gamma")), [P3]);
    assert_eq!(urls(&idx, &req("quartz AND host:clear.example")), [P3, P4]);
    assert!(matches!(
        idx.search_page(&req("title:(")),
        Err(IndexError::Query(_))
    ));
}

#[test]
fn filters_by_host_network_and_url_set() {
    let (_dir, idx) = fixture();
    let by_hosts = |hosts: &[&str]| SearchRequest {
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        ..req("quartz")
    };
    assert_eq!(urls(&idx, &by_hosts(&["abc.onion"])), [P1]);
    assert_eq!(
        urls(&idx, &by_hosts(&["abc.onion", "clear.example"])),
        [P1, P3, P4]
    );
    // Exact: no case folding, no prefix match.
    assert!(urls(&idx, &by_hosts(&["ABC.onion", "abc"])).is_empty());

    let by_network = |n| SearchRequest {
        network: Some(n),
        ..req("")
    };
    assert_eq!(urls(&idx, &by_network(Network::Onion)), [P1, P2]);
    assert_eq!(urls(&idx, &by_network(Network::Clearnet)), [P3, P4]);

    let by_urls = |u: &[&str]| SearchRequest {
        urls: Some(u.iter().map(|s| s.to_string()).collect()),
        ..req("quartz")
    };
    assert_eq!(urls(&idx, &by_urls(&[P1, P3, "http://unknown/"])), [P1, P3]);
    let none = idx.search_page(&by_urls(&[])).unwrap();
    assert_eq!((none.total, none.hits.len()), (0, 0));
    // Image URLs never come back as pages.
    assert!(urls(&idx, &by_urls(&["http://abc.onion/1/a.jpg"])).is_empty());
}

#[test]
fn filters_by_inclusive_dates() {
    let (_dir, idx) = fixture();
    let between = |from: Option<&str>, to: Option<&str>| SearchRequest {
        from: from.map(str::to_string),
        to: to.map(str::to_string),
        ..req("*")
    };
    // A day includes its last second.
    assert_eq!(
        urls(&idx, &between(Some("2026-01-02"), Some("2026-01-02"))),
        [P2]
    );
    // Pages without a readable fetch time fall outside every date range.
    assert_eq!(urls(&idx, &between(Some("2026-01-02"), None)), [P2, P3]);
    assert_eq!(urls(&idx, &between(None, Some("2026-01-01"))), [P1]);
    assert_eq!(
        urls(&idx, &between(Some("2026-01-01"), Some("2026-01-03"))),
        [P1, P2, P3]
    );
    // RFC 3339 bounds are instants, both inclusive.
    assert_eq!(
        urls(
            &idx,
            &between(Some("2026-01-02T23:59:59Z"), Some("2026-01-03T00:00:00Z"))
        ),
        [P2, P3]
    );
    assert_eq!(
        urls(&idx, &between(Some("2026-01-03T01:00:00+01:00"), None)),
        [P3]
    );
    assert!(urls(&idx, &between(Some("2026-01-04"), Some("2026-01-01"))).is_empty());
    for bad in ["2026-1-2", "tomorrow", "2026-02-30"] {
        let err = idx.search_page(&between(Some(bad), None)).unwrap_err();
        assert!(matches!(err, IndexError::BadDate(_)), "{err}");
        assert!(err.to_string().contains(bad), "{err}");
        let err = idx.search_page(&between(None, Some(bad))).unwrap_err();
        assert!(matches!(err, IndexError::BadDate(_)), "{err}");
    }
}

#[test]
fn sorts_newest_first_with_undated_pages_last() {
    let (_dir, idx) = fixture();
    let r = SearchRequest {
        sort: SortBy::Date,
        ..req("quartz")
    };
    assert_eq!(urls(&idx, &r), [P3, P2, P1, P4]);
    let second = SearchRequest {
        offset: 1,
        limit: 2,
        ..r
    };
    let page = idx.search_page(&second).unwrap();
    assert_eq!(page.total, 4);
    let got: Vec<&str> = page.hits.iter().map(|h| h.url.as_str()).collect();
    assert_eq!(got, [P2, P1]);
}

#[test]
fn pagination_totals_and_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let idx = PageIndex::open(dir.path()).unwrap();
    let mut w = idx.writer(20_000_000).unwrap();
    for i in 0..130 {
        let url = format!("http://many.onion/{i:03}");
        let fetched = format!("2026-01-01T00:{:02}:{:02}Z", i / 60, i % 60);
        idx.upsert_page(&w, &page(&url, "many.onion", &fetched, "t", "common words"))
            .unwrap();
    }
    w.commit().unwrap();
    let at = |offset, limit| {
        idx.search_page(&SearchRequest {
            sort: SortBy::Date,
            offset,
            limit,
            ..req("common")
        })
        .unwrap()
    };
    let p = at(20, 10);
    assert_eq!((p.total, p.hits.len()), (130, 10));
    assert_eq!(p.hits[0].url, "http://many.onion/109");
    let last = at(120, 50);
    assert_eq!((last.total, last.hits.len()), (130, 10));
    assert_eq!(last.hits[9].url, "http://many.onion/000");
    // The limit is clamped to 1..=100.
    assert_eq!(at(0, 0).hits.len(), 1);
    assert_eq!(at(0, 1_000).hits.len(), 100);
    // Past the matches, or past the deep-pagination cap: no hits, the total still right.
    let past = at(500, 10);
    assert_eq!((past.total, past.hits.len()), (130, 0));
    let capped = at(10_000, 10);
    assert_eq!((capped.total, capped.hits.len()), (130, 0));
    let huge = at(usize::MAX, usize::MAX);
    assert_eq!((huge.total, huge.hits.len()), (130, 0));
}

#[test]
fn documents_round_trip() {
    let (_dir, idx) = fixture();
    let p = idx.page(P1).unwrap().expect("page indexed");
    assert_eq!(p.url, P1);
    assert_eq!(p.host, "abc.onion");
    assert_eq!(p.title, "Alpha dump");
    assert_eq!(p.text, "quartz lantern alpha");
    assert_eq!(p.fetched_at, "2026-01-01T10:00:00Z");
    assert_eq!(p.sha256, format!("sha-{P1}"));
    assert_eq!(p.images, [format!("{P1}/a.jpg")]);
    assert_eq!(idx.page("http://abc.onion/1/a.jpg").unwrap(), None);
    assert_eq!(idx.page("http://nowhere/").unwrap(), None);

    let on_p1 = idx.images_on(P1).unwrap();
    let got: Vec<&str> = on_p1.iter().map(|i| i.url.as_str()).collect();
    assert_eq!(
        got,
        ["http://abc.onion/1/a.jpg", "http://abc.onion/1/b.jpg"]
    );
    assert!(idx.images_on(P2).unwrap().is_empty());

    let img = idx.image("http://elsewhere/c.jpg").unwrap().expect("image");
    assert_eq!(img, idx.images_on(P3).unwrap()[0]);
    assert_eq!(img.page_url, P3);
    assert_eq!(img.sha256, "sha-http://elsewhere/c.jpg");
    assert_eq!(img.fetched_at, "2026-01-01T10:00:01Z");
    assert_eq!(img.hashes, image("x", "y").hashes);
    assert_eq!(img.labels, ["stolen-1"]);
    assert_eq!(idx.image(P1).unwrap(), None);
}

#[test]
fn a_reupsert_replaces_the_page_and_its_derived_fields() {
    let (dir, idx) = fixture();
    let mut w = idx.writer(20_000_000).unwrap();
    idx.upsert_page(
        &w,
        &page(
            P4,
            "clear.example",
            "2026-02-01T00:00:00Z",
            "Delta",
            "quartz delta v2",
        ),
    )
    .unwrap();
    w.commit().unwrap();
    let r = SearchRequest {
        from: Some("2026-02-01".into()),
        ..req("")
    };
    assert_eq!(urls(&idx, &r), [P4]);
    assert_eq!(idx.page_count().unwrap(), 4);
    // A reader opened afterwards sees the same.
    let other = PageIndex::open(dir.path()).unwrap();
    assert_eq!(other.page(P4).unwrap().unwrap().text, "quartz delta v2");
}

#[test]
fn snippet_html_never_carries_crawled_markup() {
    let dir = tempfile::tempdir().unwrap();
    let idx = PageIndex::open(dir.path()).unwrap();
    let mut w = idx.writer(20_000_000).unwrap();
    let body = "before <script>alert(1)</script> after <img src=x onerror='boom'> & more";
    let title = "<b onmouseover=\"x()\">Dump</b> <script>t()</script>";
    idx.upsert_page(
        &w,
        &page(
            "http://evil.onion/",
            "evil.onion",
            "2026-01-01T00:00:00Z",
            title,
            body,
        ),
    )
    .unwrap();
    w.commit().unwrap();
    // A match in the body, a match only in the title (no body fragment), and all pages.
    for q in ["alert", "before", "title:dump", "*"] {
        let page = idx.search_page(&req(q)).unwrap();
        assert_eq!(page.total, 1, "{q}");
        let html = &page.hits[0].snippet_html;
        assert!(html.contains("&lt;script&gt;"), "{q}: {html}");
        assert!(!html.contains("<script"), "{q}: {html}");
        assert!(!html.contains("<img"), "{q}: {html}");
        assert!(!html.contains('\''), "{q}: {html}");
        let markup: Vec<&str> = html.match_indices('<').map(|(i, _)| &html[i..]).collect();
        assert!(
            markup
                .iter()
                .all(|m| m.starts_with("<b>") || m.starts_with("</b>")),
            "{q}: {html}"
        );
        assert!(
            page.hits[0].snippet.contains("<script>"),
            "plain stays plain"
        );
    }
    let hit = idx.search_page(&req("alert")).unwrap().hits.remove(0);
    assert!(
        hit.snippet_html.contains("<b>alert</b>"),
        "{}",
        hit.snippet_html
    );
}

#[test]
fn date_order_copes_with_a_segment_without_any_fetch_time() {
    let dir = tempfile::tempdir().unwrap();
    let idx = PageIndex::open(dir.path()).unwrap();
    let mut w = idx.writer(20_000_000).unwrap();
    idx.upsert_page(&w, &page(P4, "clear.example", "?", "Delta", "quartz delta"))
        .unwrap();
    w.commit().unwrap();
    idx.upsert_page(
        &w,
        &page(
            P1,
            "abc.onion",
            "2026-01-01T10:00:00Z",
            "Alpha",
            "quartz alpha",
        ),
    )
    .unwrap();
    w.commit().unwrap();
    let r = SearchRequest {
        sort: SortBy::Date,
        ..req("quartz")
    };
    assert_eq!(urls(&idx, &r), [P1, P4]);
}
