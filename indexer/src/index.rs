//! The Tantivy index of crawled pages and image sightings.
//!
//! One document per URL (`key` = `page:<url>` or `image:<url>`): a re-crawl replaces the
//! previous document instead of adding another. Pages carry title and visible text (searchable,
//! with snippets); image documents carry the image's perceptual hashes and the page it was
//! found on, which a retro-hunt scans when new fingerprints arrive.
//!
//! Besides what is stored, each document carries fields derived from it on upsert: `key`,
//! `fetched` (the fetch time as a date, for date filters and newest-first order) and, for
//! pages, `network` (`onion` or `clearnet`). The analysts' search (filters, order, pages of
//! results) lives in [`request`]; [`migrate`] rebuilds an index written with an older schema
//! when it is opened.

mod migrate;
mod request;

use std::path::{Path, PathBuf};

use serde::Serialize;
use tantivy::collector::{Count, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, Value, FAST, INDEXED, STORED, STRING, TEXT,
};
use tantivy::time::format_description::well_known::Rfc3339;
use tantivy::time::OffsetDateTime;
use tantivy::{
    doc, DateTime, Index, IndexReader, IndexSettings, IndexWriter, ReloadPolicy, TantivyDocument,
    Term,
};

use schema::{FetchedPage, ImageHash, ImageVerdict};

use crate::IndexError;

pub use request::{Network, SearchPage, SearchRequest, SortBy, MAX_LIMIT};

pub const INDEX_DIR: &str = "index";

/// At most this many documents are collected for one answer: the deep-pagination cap of
/// [`PageIndex::search_page`], and the most images [`PageIndex::images_on`] returns.
pub const MAX_WINDOW: usize = 10_000;

#[derive(Clone, Copy)]
struct Fields {
    key: Field,
    doc_type: Field,
    url: Field,
    host: Field,
    title: Field,
    body: Field,
    fetched_at: Field,
    sha256: Field,
    images: Field,
    page_url: Field,
    image_hash: Field,
    labels: Field,
    fetched: Field,
    network: Field,
}

/// The derived fields: never copied when an index is rebuilt, always computed again.
const DERIVED_FIELDS: [&str; 3] = ["key", "fetched", "network"];

fn build_schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let f = Fields {
        key: b.add_text_field("key", STRING),
        doc_type: b.add_text_field("doc_type", STRING | STORED),
        url: b.add_text_field("url", STRING | STORED),
        host: b.add_text_field("host", STRING | STORED),
        title: b.add_text_field("title", TEXT | STORED),
        body: b.add_text_field("body", TEXT | STORED),
        fetched_at: b.add_text_field("fetched_at", STRING | STORED),
        sha256: b.add_text_field("sha256", STRING | STORED),
        images: b.add_text_field("images", STORED),
        page_url: b.add_text_field("page_url", STRING | STORED),
        image_hash: b.add_text_field("image_hash", STRING | STORED),
        labels: b.add_text_field("labels", STRING | STORED),
        fetched: b.add_date_field("fetched", INDEXED | FAST | STORED),
        network: b.add_text_field("network", STRING),
    };
    (b.build(), f)
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchHit {
    pub url: String,
    pub host: String,
    pub title: String,
    /// Plain-text fragment around the best match.
    pub snippet: String,
    /// The same fragment, HTML-escaped, with matches in `<b>`.
    pub snippet_html: String,
    pub fetched_at: String,
}

/// An image document as stored, for retro-hunts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageSighting {
    pub url: String,
    pub page_url: String,
    /// The hashes the matcher recorded, as they came in the verdict.
    pub hashes: Vec<ImageHash>,
}

/// A page document as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PageDoc {
    pub url: String,
    pub host: String,
    pub title: String,
    /// The visible text (redacted as indexed).
    pub text: String,
    pub fetched_at: String,
    pub sha256: String,
    /// URLs of the images the page shows.
    pub images: Vec<String>,
}

/// An image document as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageDoc {
    pub url: String,
    /// The page it was found on; empty when unknown.
    pub page_url: String,
    pub sha256: String,
    pub fetched_at: String,
    pub hashes: Vec<ImageHash>,
    /// Labels of the fingerprints it matched.
    pub labels: Vec<String>,
}

/// The index in a data dir.
pub struct PageIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    path: PathBuf,
}

impl PageIndex {
    /// Opens (creating if needed) the index under `data_dir`. An index written with an older
    /// schema is rebuilt with the current one first (see [`migrate`]); that needs its writer
    /// lock, so it fails with [`IndexError::Busy`] while an older indexer still runs.
    pub fn open(data_dir: &Path) -> Result<PageIndex, IndexError> {
        let path = data_dir.join(INDEX_DIR);
        migrate::recover_interrupted_swap(&path)?;
        datadir::create_private_dir_all(&path).map_err(|source| IndexError::Io {
            path: path.clone(),
            source,
        })?;
        let (schema, fields) = build_schema();
        let dir = mmap_dir(&path)?;
        let index = if Index::exists(&dir).map_err(tantivy::TantivyError::from)? {
            let existing = Index::open(dir)?;
            if existing.schema() == schema {
                existing
            } else {
                migrate::upgrade(existing, &path, &schema, fields)?;
                Index::open(mmap_dir(&path)?)?
            }
        } else {
            Index::create(dir, schema, IndexSettings::default())?
        };
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(PageIndex {
            index,
            reader,
            fields,
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The single writer. Fails if another process holds it.
    pub fn writer(&self, heap_bytes: usize) -> Result<IndexWriter, IndexError> {
        match self
            .index
            .writer_with_num_threads(1, heap_bytes.max(15_000_000))
        {
            Ok(w) => Ok(w),
            Err(tantivy::TantivyError::LockFailure(
                tantivy::directory::error::LockError::LockBusy,
                _,
            )) => Err(IndexError::Busy {
                path: self.path.clone(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Adds or replaces the page's document.
    pub fn upsert_page(&self, w: &IndexWriter, p: &FetchedPage) -> Result<(), IndexError> {
        let f = self.fields;
        let mut d = doc!(
            f.doc_type => "page",
            f.url => p.url.as_str(),
            f.host => p.host.as_str(),
            f.title => p.title.as_str(),
            f.body => p.text.as_str(),
            f.fetched_at => p.fetched_at.as_str(),
            f.sha256 => p.sha256.as_str(),
        );
        for i in &p.images {
            d.add_text(f.images, i);
        }
        let key = add_derived(f, &mut d);
        w.delete_term(Term::from_field_text(f.key, &key));
        w.add_document(d)?;
        Ok(())
    }

    /// Adds or replaces the image sighting's document.
    pub fn upsert_image(&self, w: &IndexWriter, v: &ImageVerdict) -> Result<(), IndexError> {
        let f = self.fields;
        let mut d = doc!(
            f.doc_type => "image",
            f.url => v.url.as_str(),
            f.page_url => v.page_url.clone().unwrap_or_default(),
            f.fetched_at => v.fetched_at.as_str(),
            f.sha256 => v.sha256.as_str(),
        );
        for h in &v.hashes {
            d.add_text(f.image_hash, stored_hash(h));
        }
        for l in &v.matched {
            d.add_text(f.labels, l);
        }
        let key = add_derived(f, &mut d);
        w.delete_term(Term::from_field_text(f.key, &key));
        w.add_document(d)?;
        Ok(())
    }

    /// Searches pages, best first. `query` uses Tantivy's syntax over title and body (`*` or
    /// nothing matches all); at most [`MAX_WINDOW`] hits.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>, IndexError> {
        let req = SearchRequest {
            query: query.to_string(),
            ..SearchRequest::default()
        };
        Ok(self
            .search_window(&req, 0, limit.clamp(1, MAX_WINDOW))?
            .hits)
    }

    /// Number of page documents.
    pub fn page_count(&self) -> Result<usize, IndexError> {
        self.reader.reload()?;
        let q = self.doc_type_query("page");
        Ok(self.reader.searcher().search(&q, &Count)?)
    }

    /// Every image sighting with its hashes.
    pub fn image_sightings(&self) -> Result<Vec<ImageSighting>, IndexError> {
        let docs = self.docs_matching(self.doc_type_query("image"), usize::MAX)?;
        let f = self.fields;
        Ok(docs
            .iter()
            .map(|d| ImageSighting {
                url: first_text(d, f.url),
                page_url: first_text(d, f.page_url),
                hashes: stored_hashes(d, f.image_hash),
            })
            .collect())
    }

    /// The page document of `url`, if indexed.
    pub fn page(&self, url: &str) -> Result<Option<PageDoc>, IndexError> {
        let f = self.fields;
        let q = TermQuery::new(
            Term::from_field_text(f.key, &format!("page:{url}")),
            IndexRecordOption::Basic,
        );
        let docs = self.docs_matching(q, 1)?;
        Ok(docs.first().map(|d| PageDoc {
            url: first_text(d, f.url),
            host: first_text(d, f.host),
            title: first_text(d, f.title),
            text: first_text(d, f.body),
            fetched_at: first_text(d, f.fetched_at),
            sha256: first_text(d, f.sha256),
            images: all_texts(d, f.images),
        }))
    }

    /// The image documents found on the page `page_url`, by URL (at most [`MAX_WINDOW`]).
    pub fn images_on(&self, page_url: &str) -> Result<Vec<ImageDoc>, IndexError> {
        let f = self.fields;
        let on_page = TermQuery::new(
            Term::from_field_text(f.page_url, page_url),
            IndexRecordOption::Basic,
        );
        let q = BooleanQuery::new(vec![
            (Occur::Must, Box::new(on_page) as Box<dyn Query>),
            (Occur::Must, Box::new(self.doc_type_query("image"))),
        ]);
        let docs = self.docs_matching(q, MAX_WINDOW)?;
        let mut out: Vec<ImageDoc> = docs.iter().map(|d| image_doc(f, d)).collect();
        out.sort_by(|a, b| a.url.cmp(&b.url));
        Ok(out)
    }

    /// The image document of `url`, if indexed.
    pub fn image(&self, url: &str) -> Result<Option<ImageDoc>, IndexError> {
        let f = self.fields;
        let q = TermQuery::new(
            Term::from_field_text(f.key, &format!("image:{url}")),
            IndexRecordOption::Basic,
        );
        let docs = self.docs_matching(q, 1)?;
        Ok(docs.first().map(|d| image_doc(f, d)))
    }

    fn doc_type_query(&self, doc_type: &str) -> TermQuery {
        TermQuery::new(
            Term::from_field_text(self.fields.doc_type, doc_type),
            IndexRecordOption::Basic,
        )
    }

    /// The stored documents matching `q` (at most `max`), after a reload.
    fn docs_matching(&self, q: impl Query, max: usize) -> Result<Vec<TantivyDocument>, IndexError> {
        self.reader.reload()?;
        let searcher = self.reader.searcher();
        let n = searcher.search(&q, &Count)?.min(max);
        if n == 0 {
            return Ok(Vec::new());
        }
        let top = searcher.search(&q, &TopDocs::with_limit(n).order_by_score())?;
        top.into_iter()
            .map(|(_, addr)| searcher.doc(addr).map_err(IndexError::from))
            .collect()
    }
}

fn mmap_dir(path: &Path) -> Result<MmapDirectory, IndexError> {
    MmapDirectory::open(path).map_err(|e| IndexError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })
}

/// Adds the derived fields of a document whose stored fields are set, and returns its key.
fn add_derived(f: Fields, d: &mut TantivyDocument) -> String {
    let doc_type = first_text(d, f.doc_type);
    let key = format!("{doc_type}:{}", first_text(d, f.url));
    d.add_text(f.key, &key);
    if let Some(t) = parse_fetched(&first_text(d, f.fetched_at)) {
        d.add_date(f.fetched, t);
    }
    if doc_type == "page" {
        d.add_text(f.network, network_of(&first_text(d, f.host)).as_str());
    }
    key
}

/// An RFC 3339 time as a Tantivy date; `None` if it is not one (or out of range).
fn parse_fetched(s: &str) -> Option<DateTime> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .and_then(DateTime::try_from_utc)
}

/// Which network serves `host` (`abc.onion`, `abc.onion:80`, case-insensitive).
fn network_of(host: &str) -> Network {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name.ends_with(".onion") {
        Network::Onion
    } else {
        Network::Clearnet
    }
}

fn first_text(d: &TantivyDocument, field: Field) -> String {
    d.get_first(field)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string()
}

fn all_texts(d: &TantivyDocument, field: Field) -> Vec<String> {
    d.get_all(field)
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn stored_hashes(d: &TantivyDocument, field: Field) -> Vec<ImageHash> {
    d.get_all(field)
        .filter_map(|v| v.as_str().and_then(parse_stored_hash))
        .collect()
}

fn image_doc(f: Fields, d: &TantivyDocument) -> ImageDoc {
    ImageDoc {
        url: first_text(d, f.url),
        page_url: first_text(d, f.page_url),
        sha256: first_text(d, f.sha256),
        fetched_at: first_text(d, f.fetched_at),
        hashes: stored_hashes(d, f.image_hash),
        labels: all_texts(d, f.labels),
    }
}

/// How a hash is kept in the index: `ALGORITHM:HEX`, one term, so an analyst can search
/// for a hash (algorithm names contain no `:`).
fn stored_hash(h: &ImageHash) -> String {
    format!("{}:{}", h.algorithm, h.hex)
}

/// The inverse of [`stored_hash`].
fn parse_stored_hash(s: &str) -> Option<ImageHash> {
    let (algorithm, hex) = s.split_once(':')?;
    Some(ImageHash {
        algorithm: algorithm.to_string(),
        hex: hex.to_string(),
    })
}

/// Escapes text for HTML.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(url: &str, title: &str, text: &str) -> FetchedPage {
        FetchedPage {
            url: url.into(),
            host: "h".into(),
            title: title.into(),
            text: text.into(),
            sha256: "s".into(),
            fetched_at: "2026-01-01T00:00:00Z".into(),
            depth: 0,
            links: vec![],
            images: vec![],
            listed_at: None,
            exchange: None,
            body: vec![],
        }
    }

    #[test]
    fn upsert_search_and_snippets() {
        let dir = tempfile::tempdir().unwrap();
        let idx = PageIndex::open(dir.path()).unwrap();
        let mut w = idx.writer(20_000_000).unwrap();
        idx.upsert_page(&w, &page("http://a/1", "Dump", "old text about nothing"))
            .unwrap();
        idx.upsert_page(
            &w,
            &page(
                "http://a/1",
                "Dump v2",
                "fresh <b>quartz lantern</b> manifest",
            ),
        )
        .unwrap();
        idx.upsert_page(&w, &page("http://a/2", "Other", "unrelated words"))
            .unwrap();
        w.commit().unwrap();
        assert_eq!(idx.page_count().unwrap(), 2);
        let hits = idx.search("\"quartz lantern\"", 10).unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].title, "Dump v2");
        assert!(hits[0].snippet.contains("quartz lantern"));
        assert!(hits[0].snippet_html.contains("<b>quartz</b>"));
        assert!(
            hits[0].snippet_html.contains("&lt;b&gt;")
                || !hits[0].snippet_html.contains("<b>quartz lantern</b>")
        );
        assert_eq!(idx.search("*", 10).unwrap().len(), 2);
        assert!(idx.search("old", 10).unwrap().is_empty());
        assert!(matches!(
            idx.search("title:(", 10),
            Err(IndexError::Query(_))
        ));
        // A second handle (as another process would) sees the committed documents.
        let other = PageIndex::open(dir.path()).unwrap();
        assert_eq!(other.search("unrelated", 10).unwrap().len(), 1);
    }

    #[test]
    fn networks_and_fetch_times_are_derived() {
        for onion in [
            "abc.onion",
            "ABC.Onion",
            "x.onion:80",
            "x.onion.",
            "a.b.onion:8080",
        ] {
            assert_eq!(network_of(onion), Network::Onion, "{onion}");
        }
        for clear in [
            "onion",
            "example.com",
            "x.onion.example",
            "x.onion:",
            "[::1]:80",
            "",
        ] {
            assert_eq!(network_of(clear), Network::Clearnet, "{clear}");
        }
        let t = parse_fetched("2026-01-02T03:04:05+01:00").unwrap();
        assert_eq!(t.into_timestamp_secs(), 1_767_319_445);
        assert_eq!(parse_fetched("2026-01-02"), None);
        assert_eq!(parse_fetched("héllo"), None);
    }

    #[test]
    fn a_second_index_writer_is_refused_with_the_index_path() {
        let dir = tempfile::tempdir().unwrap();
        let idx = PageIndex::open(dir.path()).unwrap();
        let _w = idx.writer(20_000_000).unwrap();
        let other = PageIndex::open(dir.path()).unwrap();
        let err = other
            .writer(20_000_000)
            .err()
            .expect("second writer refused");
        assert!(matches!(err, IndexError::Busy { .. }), "{err}");
        assert!(err.to_string().contains(INDEX_DIR), "{err}");
    }
}
