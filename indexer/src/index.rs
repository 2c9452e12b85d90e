//! The Tantivy index of crawled pages and image sightings.
//!
//! One document per URL (`key` = `page:<url>` or `image:<url>`): a re-crawl replaces the
//! previous document instead of adding another. Pages carry title and visible text (searchable,
//! with snippets); image documents carry the image's perceptual hashes and the page it was
//! found on, which a retro-hunt scans when new fingerprints arrive.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tantivy::collector::TopDocs;
use tantivy::directory::MmapDirectory;
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, QueryParser, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Schema, Value, STORED, STRING, TEXT};
use tantivy::snippet::SnippetGenerator;
use tantivy::{doc, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use schema::{FetchedPage, ImageHash, ImageVerdict};

use crate::IndexError;

pub const INDEX_DIR: &str = "index";

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
}

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
    };
    (b.build(), f)
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchHit {
    pub url: String,
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

/// The index in a data dir.
pub struct PageIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    path: PathBuf,
}

impl PageIndex {
    /// Opens (creating if needed) the index under `data_dir`.
    pub fn open(data_dir: &Path) -> Result<PageIndex, IndexError> {
        let path = data_dir.join(INDEX_DIR);
        datadir::create_private_dir_all(&path).map_err(|source| IndexError::Io {
            path: path.clone(),
            source,
        })?;
        let (schema, fields) = build_schema();
        let dir = MmapDirectory::open(&path).map_err(|e| IndexError::Io {
            path: path.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let index = Index::open_or_create(dir, schema)?;
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
        let key = format!("page:{}", p.url);
        w.delete_term(Term::from_field_text(f.key, &key));
        let mut d = doc!(
            f.key => key,
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
        w.add_document(d)?;
        Ok(())
    }

    /// Adds or replaces the image sighting's document.
    pub fn upsert_image(&self, w: &IndexWriter, v: &ImageVerdict) -> Result<(), IndexError> {
        let f = self.fields;
        let key = format!("image:{}", v.url);
        w.delete_term(Term::from_field_text(f.key, &key));
        let mut d = doc!(
            f.key => key,
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
        w.add_document(d)?;
        Ok(())
    }

    /// Searches pages. `query` uses Tantivy's syntax over title and body; `*` matches all.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>, IndexError> {
        self.reader.reload()?;
        let searcher = self.reader.searcher();
        let f = self.fields;
        let user: Box<dyn Query> = if query.trim() == "*" {
            Box::new(AllQuery)
        } else {
            let mut parser = QueryParser::for_index(&self.index, vec![f.title, f.body]);
            parser.set_conjunction_by_default();
            parser.parse_query(query)?
        };
        let pages_only = TermQuery::new(
            Term::from_field_text(f.doc_type, "page"),
            IndexRecordOption::Basic,
        );
        let q = BooleanQuery::new(vec![
            (Occur::Must, user.box_clone()),
            (Occur::Must, Box::new(pages_only)),
        ]);
        let top = searcher.search(&q, &TopDocs::with_limit(limit.max(1)).order_by_score())?;
        let mut snippets = SnippetGenerator::create(&searcher, user.as_ref(), f.body)?;
        snippets.set_max_num_chars(240);
        let mut out = Vec::with_capacity(top.len());
        for (_, addr) in top {
            let d: TantivyDocument = searcher.doc(addr)?;
            let text = |field: Field| {
                d.get_first(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            let snip = snippets.snippet_from_doc(&d);
            let (snippet, snippet_html) = if snip.fragment().is_empty() {
                let body = text(f.body);
                let cut: String = body.chars().take(240).collect();
                (cut.clone(), html_escape(&cut))
            } else {
                (snip.fragment().to_string(), snip.to_html())
            };
            out.push(SearchHit {
                url: text(f.url),
                title: text(f.title),
                snippet,
                snippet_html,
                fetched_at: text(f.fetched_at),
            });
        }
        Ok(out)
    }

    /// Number of page documents.
    pub fn page_count(&self) -> Result<usize, IndexError> {
        self.reader.reload()?;
        let q = TermQuery::new(
            Term::from_field_text(self.fields.doc_type, "page"),
            IndexRecordOption::Basic,
        );
        Ok(self
            .reader
            .searcher()
            .search(&q, &tantivy::collector::Count)?)
    }

    /// Every image sighting with its hashes.
    pub fn image_sightings(&self) -> Result<Vec<ImageSighting>, IndexError> {
        self.reader.reload()?;
        let searcher = self.reader.searcher();
        let f = self.fields;
        let q = TermQuery::new(
            Term::from_field_text(f.doc_type, "image"),
            IndexRecordOption::Basic,
        );
        let n = searcher.search(&q, &tantivy::collector::Count)?;
        let top = searcher.search(&q, &TopDocs::with_limit(n.max(1)).order_by_score())?;
        let mut out = Vec::new();
        for (_, addr) in top {
            let d: TantivyDocument = searcher.doc(addr)?;
            let get = |field| {
                d.get_first(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            out.push(ImageSighting {
                url: get(f.url),
                page_url: get(f.page_url),
                hashes: d
                    .get_all(f.image_hash)
                    .filter_map(|v| v.as_str().and_then(parse_stored_hash))
                    .collect(),
            });
        }
        Ok(out)
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
