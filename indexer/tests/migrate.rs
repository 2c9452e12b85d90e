//! An index written with the previous schema (no `fetched`, no `network`) is rebuilt when
//! opened, keeps every document, and gains the derived fields.

use std::path::Path;

use leakwatch_indexer::index::INDEX_DIR;
use leakwatch_indexer::{IndexError, Network, PageIndex, SearchRequest, SortBy};
use tantivy::schema::{Schema, STORED, STRING, TEXT};
use tantivy::{doc, Index, IndexWriter, TantivyDocument};

/// The schema before `fetched` and `network`, as it was.
fn old_schema() -> Schema {
    let mut b = Schema::builder();
    b.add_text_field("key", STRING);
    b.add_text_field("doc_type", STRING | STORED);
    b.add_text_field("url", STRING | STORED);
    b.add_text_field("host", STRING | STORED);
    b.add_text_field("title", TEXT | STORED);
    b.add_text_field("body", TEXT | STORED);
    b.add_text_field("fetched_at", STRING | STORED);
    b.add_text_field("sha256", STRING | STORED);
    b.add_text_field("images", STORED);
    b.add_text_field("page_url", STRING | STORED);
    b.add_text_field("image_hash", STRING | STORED);
    b.add_text_field("labels", STRING | STORED);
    b.build()
}

/// Writes an old-schema index under `data_dir` the way the old upsert did, over two commits
/// (two segments) and with one replaced page (a deleted document that must not come back).
fn write_old_index(data_dir: &Path) -> (Index, IndexWriter) {
    let path = data_dir.join(INDEX_DIR);
    std::fs::create_dir_all(&path).unwrap();
    let schema = old_schema();
    let index = Index::create_in_dir(&path, schema.clone()).unwrap();
    let mut w: IndexWriter = index.writer_with_num_threads(1, 20_000_000).unwrap();
    let field = |name: &str| schema.get_field(name).unwrap();
    let old_page = |url: &str, host: &str, at: &str, text: &str| -> TantivyDocument {
        doc!(
            field("key") => format!("page:{url}"),
            field("doc_type") => "page",
            field("url") => url,
            field("host") => host,
            field("title") => format!("title of {url}"),
            field("body") => text,
            field("fetched_at") => at,
            field("sha256") => "s",
            field("images") => format!("{url}/i.jpg"),
        )
    };
    w.add_document(old_page(
        "http://old.onion/1",
        "old.onion",
        "2025-12-30T08:00:00Z",
        "stale",
    ))
    .unwrap();
    w.commit().unwrap();
    let key = tantivy::Term::from_field_text(field("key"), "page:http://old.onion/1");
    w.delete_term(key);
    w.add_document(old_page(
        "http://old.onion/1",
        "old.onion",
        "2025-12-31T08:00:00Z",
        "marble harbour ledger",
    ))
    .unwrap();
    w.add_document(old_page(
        "https://plain.example/2",
        "plain.example",
        "2026-01-05T08:00:00Z",
        "marble quarry",
    ))
    .unwrap();
    w.add_document(doc!(
        field("key") => "image:http://old.onion/1/i.jpg",
        field("doc_type") => "image",
        field("url") => "http://old.onion/1/i.jpg",
        field("page_url") => "http://old.onion/1",
        field("fetched_at") => "2025-12-31T08:00:01Z",
        field("sha256") => "i",
        field("image_hash") => "dhash:0f0f",
        field("labels") => "stolen-7",
    ))
    .unwrap();
    w.commit().unwrap();
    (index, w)
}

fn leftovers(data_dir: &Path) -> Vec<String> {
    std::fs::read_dir(data_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != INDEX_DIR)
        .collect()
}

#[test]
fn an_old_schema_index_is_migrated_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let (old, w) = write_old_index(dir.path());
    drop(w);
    drop(old);

    let idx = PageIndex::open(dir.path()).expect("migrated");
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
    assert_eq!(idx.page_count().unwrap(), 2);
    let hits = idx.search("marble", 10).unwrap();
    assert_eq!(hits.len(), 2);
    assert!(
        idx.search("stale", 10).unwrap().is_empty(),
        "deleted stays deleted"
    );
    let harbour = idx.search("harbour", 10).unwrap();
    assert_eq!(harbour[0].url, "http://old.onion/1");
    assert_eq!(harbour[0].host, "old.onion");

    // The derived fields exist for migrated documents.
    let onion = idx
        .search_page(&SearchRequest {
            network: Some(Network::Onion),
            ..SearchRequest::default()
        })
        .unwrap();
    assert_eq!(onion.total, 1);
    let newest = idx
        .search_page(&SearchRequest {
            query: "marble".into(),
            sort: SortBy::Date,
            from: Some("2025-12-31".into()),
            ..SearchRequest::default()
        })
        .unwrap();
    let order: Vec<&str> = newest.hits.iter().map(|h| h.url.as_str()).collect();
    assert_eq!(order, ["https://plain.example/2", "http://old.onion/1"]);

    // Stored fields survive, images included.
    let page = idx.page("http://old.onion/1").unwrap().unwrap();
    assert_eq!(page.images, ["http://old.onion/1/i.jpg"]);
    assert_eq!(page.fetched_at, "2025-12-31T08:00:00Z");
    let images = idx.images_on("http://old.onion/1").unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].labels, ["stolen-7"]);
    assert_eq!(idx.image_sightings().unwrap()[0].hashes[0].hex, "0f0f");

    // The keys were rebuilt: an upsert replaces the migrated page instead of adding one.
    let mut w = idx.writer(20_000_000).unwrap();
    let again = schema::FetchedPage {
        url: "http://old.onion/1".into(),
        host: "old.onion".into(),
        title: "t".into(),
        text: "fresh text".into(),
        sha256: "s2".into(),
        fetched_at: "2026-02-01T00:00:00Z".into(),
        depth: 0,
        links: vec![],
        images: vec![],
        listed_at: None,
        exchange: None,
        body: vec![],
    };
    idx.upsert_page(&w, &again).unwrap();
    w.commit().unwrap();
    assert_eq!(idx.page_count().unwrap(), 2);
    assert!(idx.search("harbour", 10).unwrap().is_empty());
    drop(w);
    drop(idx);

    // Opening again finds the current schema: nothing to do, nothing lost.
    let idx = PageIndex::open(dir.path()).unwrap();
    assert_eq!(idx.page_count().unwrap(), 2);
    assert_eq!(
        idx.page("http://old.onion/1").unwrap().unwrap().text,
        "fresh text"
    );
}

#[test]
fn an_old_index_with_a_running_writer_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (_old, _w) = write_old_index(dir.path());
    let err = PageIndex::open(dir.path()).err().expect("refused");
    assert!(matches!(err, IndexError::Busy { .. }), "{err}");
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}

#[test]
fn a_swap_cut_short_between_its_renames_is_completed() {
    let dir = tempfile::tempdir().unwrap();
    // What a crash after `index` → `index.old-*` leaves: the old and the complete new index.
    let built = tempfile::tempdir().unwrap();
    {
        let idx = PageIndex::open(built.path()).unwrap();
        let mut w = idx.writer(20_000_000).unwrap();
        let p = schema::FetchedPage {
            url: "http://kept.onion/".into(),
            host: "kept.onion".into(),
            title: "kept".into(),
            text: "survivor text".into(),
            sha256: "s".into(),
            fetched_at: "2026-01-01T00:00:00Z".into(),
            depth: 0,
            links: vec![],
            images: vec![],
            listed_at: None,
            exchange: None,
            body: vec![],
        };
        idx.upsert_page(&w, &p).unwrap();
        w.commit().unwrap();
    }
    std::fs::rename(
        built.path().join(INDEX_DIR),
        dir.path().join(format!("{INDEX_DIR}.new-17")),
    )
    .unwrap();
    let (old, w) = write_old_index(dir.path());
    drop((old, w));
    std::fs::rename(
        dir.path().join(INDEX_DIR),
        dir.path().join(format!("{INDEX_DIR}.old-17")),
    )
    .unwrap();

    let idx = PageIndex::open(dir.path()).unwrap();
    assert_eq!(idx.search("survivor", 10).unwrap().len(), 1);
    assert_eq!(idx.page_count().unwrap(), 1);
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}

#[test]
fn a_rebuild_cut_short_is_cleared_by_the_next_migration() {
    let dir = tempfile::tempdir().unwrap();
    let (old, w) = write_old_index(dir.path());
    drop((old, w));
    let stale = dir.path().join(format!("{INDEX_DIR}.new-5"));
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join("half-written"), b"x").unwrap();
    let idx = PageIndex::open(dir.path()).unwrap();
    assert_eq!(idx.page_count().unwrap(), 2);
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}
