//! The indexer: everything leakwatch crawls becomes searchable, and every alert is kept.
//!
//! - [`index`]: the Tantivy schema (pages and image sightings), upsert by URL, search with
//!   highlighted snippets. Readers in other processes (`leakwatch search`) open the same
//!   directory while the writer runs.
//! - the alert store it writes lives in the `alerts` crate (one place for building, storing
//!   and following alerts).
//! - [`role`]: the indexer role. It acks page and verdict messages only after the commit that
//!   made them durable; the commit policy (every N documents or T milliseconds) bounds what a
//!   crash can lose to what was never acked, which the bus redelivers.

pub mod index;
pub mod role;

use serde::{Deserialize, Serialize};

pub use index::{
    ImageDoc, ImageSighting, Network, PageDoc, PageIndex, SearchHit, SearchPage, SearchRequest,
    SortBy,
};
pub use role::Indexer;

/// Hides what must never be stored (the watched identifiers) in a page's text before it is
/// indexed: neither stored text, snippets nor the term dictionary may hold it.
pub trait Redact: Send + Sync {
    fn redact<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str>;
}

/// Keeps text as it is: for an index with nothing to hide.
pub struct KeepText;

impl Redact for KeepText {
    fn redact<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Errors of the index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index error: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("invalid query: {0}")]
    Query(#[from] tantivy::query::QueryParserError),
    #[error("cannot access {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Another process holds the index's writer.
    #[error(
        "the index {path} is in use by another writer (another indexer); stop that process \
         first"
    )]
    Busy { path: std::path::PathBuf },
    /// A date bound of a search is neither `YYYY-MM-DD` nor an RFC 3339 time.
    #[error("invalid date {0:?}: expected YYYY-MM-DD or an RFC 3339 time (2026-01-31T12:00:00Z)")]
    BadDate(String),
}

/// The `[indexer]` table of the config file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndexerConfig {
    /// Commit at least this often while documents are pending.
    pub commit_interval_ms: u64,
    /// Commit when this many documents are pending.
    pub commit_every_docs: usize,
    /// Commit as soon as no message has arrived for this long, so a quiet pipeline settles
    /// (and search sees new pages) without waiting for the interval.
    pub idle_commit_ms: u64,
    /// Tantivy writer memory budget.
    pub writer_heap_bytes: usize,
}

impl Default for IndexerConfig {
    fn default() -> Self {
        IndexerConfig {
            commit_interval_ms: 2_000,
            commit_every_docs: 500,
            idle_commit_ms: 100,
            writer_heap_bytes: 64 * 1024 * 1024,
        }
    }
}
