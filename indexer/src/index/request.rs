//! The analysts' search: a query narrowed by filters, in relevance or date order, one page of
//! results at a time.
//!
//! The web console asks for pages of hits with a total for its pager, and narrows them by
//! host, network, fetch date and "has an alert" (a set of URLs the alert store knows). Filters
//! never change the relevance order (they score nothing), and work is bounded: only the first
//! [`MAX_WINDOW`] matches can be paged to, though `total` counts them all.

use std::ops::Bound;

use tantivy::collector::{Count, TopDocs};
use tantivy::query::{
    AllQuery, BooleanQuery, ConstScoreQuery, Occur, Query, QueryParser, RangeQuery, TermQuery,
    TermSetQuery,
};
use tantivy::schema::IndexRecordOption;
use tantivy::snippet::{Snippet, SnippetGenerator};
use tantivy::time::format_description::well_known::Rfc3339;
use tantivy::time::{Date, Month, OffsetDateTime};
use tantivy::{DateTime, DocAddress, Order, Searcher, TantivyDocument, Term};

use super::{first_text, html_escape, PageIndex, SearchHit, MAX_WINDOW};
use crate::IndexError;

/// Characters of a snippet (and of the text shown when nothing in the body matched).
const SNIPPET_CHARS: usize = 240;

/// Most hits one [`SearchRequest`] returns.
pub const MAX_LIMIT: usize = 100;

/// The order of hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortBy {
    /// Best match first.
    #[default]
    Relevance,
    /// Most recently fetched first; pages without a readable fetch time last.
    Date,
}

/// Where a page is served from, by its host name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// A Tor onion service (`*.onion`).
    Onion,
    /// Anything else.
    Clearnet,
}

impl Network {
    /// The value of the index's `network` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Network::Onion => "onion",
            Network::Clearnet => "clearnet",
        }
    }
}

/// A search over pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRequest {
    /// Tantivy query syntax over title and body (`host:`, `url:`, `title:`, `body:` prefixes
    /// allowed); empty or `*` matches every page.
    pub query: String,
    /// When non-empty, only pages whose host is one of these (exactly).
    pub hosts: Vec<String>,
    pub network: Option<Network>,
    /// Earliest fetch time, inclusive: `YYYY-MM-DD` (from that UTC day's start) or RFC 3339.
    pub from: Option<String>,
    /// Latest fetch time, inclusive: `YYYY-MM-DD` (to that UTC day's end) or RFC 3339.
    pub to: Option<String>,
    /// When set, only pages whose URL is in it; an empty set matches nothing.
    pub urls: Option<Vec<String>>,
    pub sort: SortBy,
    /// Hits to skip.
    pub offset: usize,
    /// Hits to return, clamped to `1..=100`.
    pub limit: usize,
}

impl Default for SearchRequest {
    fn default() -> Self {
        SearchRequest {
            query: String::new(),
            hosts: Vec::new(),
            network: None,
            from: None,
            to: None,
            urls: None,
            sort: SortBy::Relevance,
            offset: 0,
            limit: 20,
        }
    }
}

/// One page of hits.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SearchPage {
    /// Every match, also those beyond the pagination cap.
    pub total: usize,
    pub hits: Vec<SearchHit>,
}

impl PageIndex {
    /// Runs `req`: its page of hits and the total number of matches. Offsets whose page would
    /// end beyond the first [`MAX_WINDOW`] matches get fewer (or no) hits.
    pub fn search_page(&self, req: &SearchRequest) -> Result<SearchPage, IndexError> {
        self.search_window(req, req.offset, req.limit.clamp(1, MAX_LIMIT))
    }

    /// [`Self::search_page`] with an explicit offset and limit.
    pub(super) fn search_window(
        &self,
        req: &SearchRequest,
        offset: usize,
        limit: usize,
    ) -> Result<SearchPage, IndexError> {
        let user = self.user_query(&req.query)?;
        let Some(filters) = self.filters(req)? else {
            return Ok(SearchPage {
                total: 0,
                hits: Vec::new(),
            });
        };
        let mut clauses = vec![(Occur::Must, user.box_clone())];
        clauses.extend(filters.into_iter().map(|q| (Occur::Must, q)));
        let q = BooleanQuery::new(clauses);
        self.reader.reload()?;
        let searcher = self.reader.searcher();
        let limit = limit.min(MAX_WINDOW.saturating_sub(offset));
        if limit == 0 {
            let total = searcher.search(&q, &Count)?;
            return Ok(SearchPage {
                total,
                hits: Vec::new(),
            });
        }
        let top = TopDocs::with_limit(limit).and_offset(offset);
        let (total, addrs): (usize, Vec<DocAddress>) = match req.sort {
            SortBy::Relevance => {
                let (n, top) = searcher.search(&q, &(Count, top.order_by_score()))?;
                (n, top.into_iter().map(|(_, a)| a).collect())
            }
            SortBy::Date => {
                let by_date = top.order_by_fast_field::<DateTime>("fetched", Order::Desc);
                let (n, top) = searcher.search(&q, &(Count, by_date))?;
                (n, top.into_iter().map(|(_, a)| a).collect())
            }
        };
        let hits = self.hits(&searcher, user.as_ref(), &addrs)?;
        Ok(SearchPage { total, hits })
    }

    /// The user's query: everything for `""` or `*`, else parsed over title and body.
    fn user_query(&self, query: &str) -> Result<Box<dyn Query>, IndexError> {
        let query = query.trim();
        if query.is_empty() || query == "*" {
            return Ok(Box::new(AllQuery));
        }
        let f = self.fields;
        let mut parser = QueryParser::for_index(&self.index, vec![f.title, f.body]);
        parser.set_conjunction_by_default();
        Ok(parser.parse_query(query)?)
    }

    /// The request's filters (pages only, always), each scoring nothing; `None` when they
    /// can match nothing (an empty URL set).
    fn filters(&self, req: &SearchRequest) -> Result<Option<Vec<Box<dyn Query>>>, IndexError> {
        let f = self.fields;
        let mut out: Vec<Box<dyn Query>> = vec![term(f.doc_type, "page")];
        if !req.hosts.is_empty() {
            let terms = req.hosts.iter().map(|h| Term::from_field_text(f.host, h));
            out.push(Box::new(TermSetQuery::new(terms)));
        }
        if let Some(n) = req.network {
            out.push(term(f.network, n.as_str()));
        }
        match &req.urls {
            Some(urls) if urls.is_empty() => return Ok(None),
            Some(urls) => {
                let terms = urls.iter().map(|u| Term::from_field_text(f.url, u));
                out.push(Box::new(TermSetQuery::new(terms)));
            }
            None => {}
        }
        let lower = match &req.from {
            Some(s) => Bound::Included(day_start_or_time(s)?),
            None => Bound::Unbounded,
        };
        let upper = match &req.to {
            Some(s) => day_end_or_time(s)?,
            None => Bound::Unbounded,
        };
        if !matches!((&lower, &upper), (Bound::Unbounded, Bound::Unbounded)) {
            let as_term = |t: DateTime| Term::from_field_date_for_search(f.fetched, t);
            out.push(Box::new(RangeQuery::new(
                lower.map(as_term),
                upper.map(as_term),
            )));
        }
        Ok(Some(
            out.into_iter()
                .map(|q| Box::new(ConstScoreQuery::new(q, 0.0)) as Box<dyn Query>)
                .collect(),
        ))
    }

    /// The hits at `addrs`, with snippets of the body around what `user` matched.
    fn hits(
        &self,
        searcher: &Searcher,
        user: &dyn Query,
        addrs: &[DocAddress],
    ) -> Result<Vec<SearchHit>, IndexError> {
        let f = self.fields;
        let mut snippets = SnippetGenerator::create(searcher, user, f.body)?;
        snippets.set_max_num_chars(SNIPPET_CHARS);
        let mut out = Vec::with_capacity(addrs.len());
        for addr in addrs {
            let d: TantivyDocument = searcher.doc(*addr)?;
            let (snippet, snippet_html) = snippet_texts(&snippets.snippet_from_doc(&d), &d, f);
            out.push(SearchHit {
                url: first_text(&d, f.url),
                host: first_text(&d, f.host),
                title: first_text(&d, f.title),
                snippet,
                snippet_html,
                fetched_at: first_text(&d, f.fetched_at),
            });
        }
        Ok(out)
    }
}

/// The plain and HTML snippet: the matched fragment, or the body's start when nothing in
/// it matched. The HTML escapes all crawled text; only the `<b>` highlights are markup.
fn snippet_texts(snip: &Snippet, d: &TantivyDocument, f: super::Fields) -> (String, String) {
    if snip.fragment().is_empty() {
        let cut: String = first_text(d, f.body).chars().take(SNIPPET_CHARS).collect();
        let html = html_escape(&cut);
        (cut, html)
    } else {
        // Tantivy escapes `<`, `>`, `&` and `"`; `'` too, as `html_escape` does.
        let html = snip.to_html().replace('\'', "&#39;");
        (snip.fragment().to_string(), html)
    }
}

fn term(field: tantivy::schema::Field, value: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, value),
        IndexRecordOption::Basic,
    ))
}

/// `YYYY-MM-DD` as that UTC day's start, or an RFC 3339 time.
fn day_start_or_time(s: &str) -> Result<DateTime, IndexError> {
    match parse_day(s) {
        Some(day) => to_datetime(day.midnight().assume_utc(), s),
        None => parse_time(s),
    }
}

/// `YYYY-MM-DD` as the (excluded) start of the next UTC day, or an RFC 3339 time (included).
fn day_end_or_time(s: &str) -> Result<Bound<DateTime>, IndexError> {
    match parse_day(s) {
        Some(day) => match day.next_day() {
            Some(next) => Ok(Bound::Excluded(to_datetime(
                next.midnight().assume_utc(),
                s,
            )?)),
            None => Ok(Bound::Unbounded),
        },
        None => parse_time(s).map(Bound::Included),
    }
}

fn parse_time(s: &str) -> Result<DateTime, IndexError> {
    let t = OffsetDateTime::parse(s.trim(), &Rfc3339).map_err(|_| bad_date(s))?;
    to_datetime(t, s)
}

fn to_datetime(t: OffsetDateTime, input: &str) -> Result<DateTime, IndexError> {
    DateTime::try_from_utc(t).ok_or_else(|| bad_date(input))
}

/// `YYYY-MM-DD`, strictly (four, two and two ASCII digits).
fn parse_day(s: &str) -> Option<Date> {
    let mut parts = s.trim().split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit());
    if parts.next().is_some() || !digits(y, 4) || !digits(m, 2) || !digits(d, 2) {
        return None;
    }
    let month = Month::try_from(m.parse::<u8>().ok()?).ok()?;
    Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()
}

/// The error for an unreadable date, quoting (the start of) what was given.
fn bad_date(input: &str) -> IndexError {
    IndexError::BadDate(input.chars().take(64).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_times_parse_and_bad_dates_are_refused() {
        let start = day_start_or_time("2026-02-03").unwrap();
        assert_eq!(
            start.into_utc().to_string(),
            "2026-02-03 0:00:00.0 +00:00:00"
        );
        match day_end_or_time("2026-02-28").unwrap() {
            Bound::Excluded(t) => assert_eq!(t.into_utc().date().to_string(), "2026-03-01"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            day_end_or_time("2026-02-03T10:00:00+02:00").unwrap(),
            Bound::Included(_)
        ));
        for bad in [
            "2026-13-01",
            "2026-02-30",
            "26-02-03",
            "yesterday",
            "2026-02-03T",
            "",
        ] {
            assert!(
                matches!(day_start_or_time(bad), Err(IndexError::BadDate(_))),
                "{bad}"
            );
        }
        // Non-ASCII input is refused without slicing inside a character.
        assert!(matches!(
            day_start_or_time("２０２６-01-01"),
            Err(IndexError::BadDate(_))
        ));
    }
}
