//! The HTTP side: routes, the security headers every response carries, who is asking
//! (session cookie for pages, bearer token for the API), and the operations pages and API
//! share (catching up with the alert log, alert listing parameters, search, review with the
//! negative list, coverage).

mod api;
mod forms;
mod pages;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRequestParts, Request};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use indexer::{ImageDoc, PageIndex, SearchPage, SearchRequest};
use serde::Serialize;

use crate::auth::{self, LoginLimiter};
use crate::feed::{AlertFeed, FeedError};
use crate::negatives::NegativesFile;
use crate::store::{AlertFilter, StateStore, StoreError, UserRole, STATES};
use crate::views::Views;
use crate::{ConsoleError, ConsoleOptions, Inventory};

pub use forms::FormData;

/// No script, no remote anything: styles and images from the console itself only.
pub const CSP: &str = "default-src 'none'; script-src 'none'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'none'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

pub const SESSION_COOKIE: &str = "lw_session";
pub const LOGIN_COOKIE: &str = "lw_login";

/// How long a session lasts after login.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// How often the alert log is read for new alerts.
const FEED_EVERY: Duration = Duration::from_secs(1);

/// Everything a request handler uses.
pub struct App {
    pub store: StateStore,
    index: Arc<PageIndex>,
    views: Views,
    limiter: LoginLimiter,
    /// Password checks running at once.
    verifying: tokio::sync::Semaphore,
    negatives: NegativesFile,
    paste_hosts: Vec<String>,
    inventory: Arc<dyn Inventory>,
    feed: tokio::sync::Mutex<AlertFeed>,
}

/// What a page says when the alert log could not be read just now.
pub const FEED_BEHIND: &str = "The alert feed is behind: new alerts could not be read from \
     the alert log just now, so the newest may be missing here. The console's log says why.";

impl App {
    /// Opens the state and the index, and writes the negative list's file afresh from the
    /// state (a lost or edited file is restored).
    pub async fn open(o: ConsoleOptions) -> Result<Arc<App>, ConsoleError> {
        let store = crate::store::open(o.state_url.as_deref(), &o.data_dir).await?;
        let negatives = NegativesFile::new(&o.data_dir);
        negatives.rewrite(&store).await?;
        let dir = o.data_dir.clone();
        let index = tokio::task::spawn_blocking(move || PageIndex::open(&dir))
            .await
            .map_err(|e| ConsoleError::Serve(std::io::Error::other(e)))??;
        Ok(Arc::new(App {
            store,
            index: Arc::new(index),
            views: Views::new(),
            limiter: LoginLimiter::new(Duration::from_secs(300), 5, 30),
            verifying: tokio::sync::Semaphore::new(4),
            feed: tokio::sync::Mutex::new(AlertFeed::new(&o.data_dir)),
            negatives,
            paste_hosts: o.paste_hosts,
            inventory: o.inventory,
        }))
    }

    /// Reads new alerts from the alert log into the state.
    pub async fn sync_alerts(&self) -> Result<u64, FeedError> {
        self.feed.lock().await.step(&self.store).await
    }

    /// Reads new alerts before a request that shows them. A failure fails no request: what
    /// the state holds is served, the failure is logged, and the page says the feed is
    /// behind ([`FEED_BEHIND`], returned here).
    pub async fn catch_up(&self) -> Option<&'static str> {
        match self.sync_alerts().await {
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "alert feed behind: serving what the state holds");
                Some(FEED_BEHIND)
            }
        }
    }

    /// Keeps reading the alert log in the background.
    pub fn follow_alerts(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if let Err(e) = self.sync_alerts().await {
                    tracing::warn!(error = %e, "alerts not read into the console's state");
                }
                tokio::time::sleep(FEED_EVERY).await;
            }
        })
    }

    fn render(&self, name: &str, ctx: impl Serialize) -> Response {
        match self.views.render(name, ctx) {
            Ok(html) => {
                ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
            }
            Err(e) => {
                tracing::error!(template = name, error = %e, "page not rendered");
                (StatusCode::INTERNAL_SERVER_ERROR, "page not rendered").into_response()
            }
        }
    }

    async fn audit(&self, user: &str, action: &str, target: &str) {
        if let Err(e) = self.store.audit(user, action, target).await {
            tracing::error!(error = %e, user, action, "audit entry not written");
        }
    }
}

/// The routes. Everything but `/healthz`, `/login` and the style sheet needs a user.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/static/style.css", get(style))
        .route("/openapi.json", get(api::openapi))
        .merge(pages::routes())
        .merge(api::routes())
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(middleware::from_fn(security_headers))
        .with_state(app)
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        crate::views::STYLE,
    )
        .into_response()
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let set = |h: &mut HeaderMap, k: HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(h, header::CONTENT_SECURITY_POLICY, CSP);
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    // Not `no-referrer`: with it browsers send `Origin: null` on the console's own forms,
    // which the origin check must refuse. Nothing links to another origin anyway.
    set(h, header::REFERRER_POLICY, "same-origin");
    set(
        h,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        h,
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    set(
        h,
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    res
}

/// The value of cookie `name` in the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: always `HttpOnly; Secure; SameSite=Strict`.
pub fn set_cookie(name: &str, value: &str, path: &str, max_age: Duration) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={}; HttpOnly; Secure; SameSite=Strict",
        max_age.as_secs()
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

/// The logged-in user of a page request; anyone else is sent to the login page.
#[derive(Debug, Clone, Serialize)]
pub struct Viewer {
    pub name: String,
    pub role: UserRole,
    pub admin: bool,
    #[serde(skip)]
    pub csrf: String,
    #[serde(skip)]
    pub token_hash: String,
}

impl FromRequestParts<Arc<App>> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Response> {
        let to_login = || Redirect::to("/login").into_response();
        let token = cookie(&parts.headers, SESSION_COOKIE).ok_or_else(to_login)?;
        let hash = auth::token_hash(token);
        let session = app
            .store
            .session(&hash)
            .await
            .map_err(internal)?
            .ok_or_else(to_login)?;
        let user = app
            .store
            .user(&session.user)
            .await
            .map_err(internal)?
            .ok_or_else(to_login)?;
        Ok(Viewer {
            name: user.name,
            role: user.role,
            admin: user.role == UserRole::Admin,
            csrf: session.csrf,
            token_hash: hash,
        })
    }
}

/// A store failure, as a response (the detail goes to the log, not to the browser).
pub fn internal(e: StoreError) -> Response {
    tracing::error!(error = %e, "console state failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "the console's state failed",
    )
        .into_response()
}

/// A POST from a page must carry the session's CSRF token and, when the browser names its
/// origin, come from this host.
pub fn check_post(headers: &HeaderMap, form_csrf: Option<&str>, expected: &str) -> bool {
    let same_origin = match (headers.get(header::ORIGIN), headers.get(header::HOST)) {
        (Some(o), Some(h)) => {
            let o = o.to_str().unwrap_or("");
            let h = h.to_str().unwrap_or("");
            o.strip_prefix("http://")
                .or_else(|| o.strip_prefix("https://"))
                .is_some_and(|rest| rest == h)
        }
        (Some(_), None) => false,
        (None, _) => true,
    };
    same_origin && form_csrf.is_some_and(|t| auth::same_token(t, expected))
}

/// Alert listing parameters, from the query string of the page or the API.
#[derive(Debug, Clone, Default, serde::Deserialize, Serialize)]
#[serde(default)]
pub struct AlertsParams {
    pub state: String,
    pub kind: String,
    pub label: String,
    pub site: String,
    pub offset: i64,
    /// The API's page size (the page's is fixed).
    pub limit: Option<i64>,
}

impl AlertsParams {
    /// The listing these parameters ask for, `limit` alerts from their offset.
    pub fn filter(&self, limit: i64) -> AlertFilter {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        AlertFilter {
            state: some(&self.state),
            kind: some(&self.kind),
            label: some(&self.label),
            site: some(&self.site),
            page_url: None,
            offset: self.offset.max(0),
            limit,
        }
    }
}

/// Search parameters, from the query string of the page or the API.
#[derive(Debug, Clone, Default, serde::Deserialize, Serialize)]
#[serde(default)]
pub struct SearchParams {
    pub q: String,
    pub site: String,
    /// `onion`, `clearnet` or `paste`.
    pub source: String,
    pub from: String,
    pub to: String,
    pub has_alert: String,
    /// `relevance` (default) or `date`.
    pub sort: String,
    pub offset: usize,
    pub limit: Option<usize>,
}

impl SearchParams {
    fn has_alert(&self) -> bool {
        matches!(self.has_alert.as_str(), "1" | "true" | "on" | "yes")
    }
}

/// Why a search was not run.
#[derive(Debug)]
pub enum SearchError {
    /// The analyst's input (query syntax, dates, source).
    Input(String),
    Store(StoreError),
    Internal(String),
}

impl App {
    /// Runs a search as the analyst asked it.
    pub async fn search(&self, p: &SearchParams) -> Result<SearchPage, SearchError> {
        let nonempty = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
        let mut hosts: Vec<String> = nonempty(&p.site).into_iter().collect();
        let network = match p.source.as_str() {
            "" => None,
            "onion" => Some(indexer::Network::Onion),
            "clearnet" => Some(indexer::Network::Clearnet),
            "paste" => {
                hosts = if hosts.is_empty() {
                    self.paste_hosts.clone()
                } else {
                    hosts.retain(|h| self.paste_hosts.contains(h));
                    hosts
                };
                if hosts.is_empty() {
                    return Ok(SearchPage {
                        total: 0,
                        hits: vec![],
                    });
                }
                None
            }
            other => return Err(SearchError::Input(format!("unknown source {other:?}"))),
        };
        let urls = if p.has_alert() {
            Some(
                self.store
                    .alerted_pages()
                    .await
                    .map_err(SearchError::Store)?,
            )
        } else {
            None
        };
        let req = SearchRequest {
            query: p.q.trim().to_string(),
            hosts,
            network,
            from: nonempty(&p.from),
            to: nonempty(&p.to),
            urls,
            sort: if p.sort == "date" {
                indexer::SortBy::Date
            } else {
                indexer::SortBy::Relevance
            },
            offset: p.offset,
            limit: p.limit.unwrap_or(20).clamp(1, 100),
        };
        let index = self.index.clone();
        tokio::task::spawn_blocking(move || index.search_page(&req))
            .await
            .map_err(|e| SearchError::Internal(e.to_string()))?
            .map_err(|e| match e {
                indexer::IndexError::Query(_) | indexer::IndexError::BadDate(_) => {
                    SearchError::Input(e.to_string())
                }
                other => SearchError::Internal(other.to_string()),
            })
    }

    /// The index's record of an image, if it has one.
    pub async fn image(&self, url: &str) -> Option<ImageDoc> {
        let index = self.index.clone();
        let url = url.to_string();
        tokio::task::spawn_blocking(move || index.image(&url))
            .await
            .ok()?
            .map_err(|e| tracing::warn!(error = %e, "index lookup failed"))
            .ok()?
    }
}

/// Most alerts one review may set (a bulk review is one page of the queue).
pub const MAX_REVIEWED: usize = 500;

/// What a review asked for.
pub struct ReviewRequest<'a> {
    pub ids: &'a [String],
    pub state: &'a str,
    pub note: &'a str,
    /// Put the alerts' images on the negative list (implies `false_positive`).
    pub negative: bool,
}

/// Why a review was refused.
#[derive(Debug)]
pub enum ReviewError {
    Input(String),
    /// No alert has this id.
    NotFound,
    Store(StoreError),
}

impl App {
    /// Reviews alerts; with `negative`, their images never alert again. Returns how many
    /// alerts were reviewed.
    pub async fn review(&self, who: &str, r: &ReviewRequest<'_>) -> Result<u64, ReviewError> {
        // An alert appended a moment ago can be reviewed already (when the feed works).
        self.catch_up().await;
        let state = if r.negative {
            "false_positive"
        } else {
            r.state
        };
        if !STATES.contains(&state) {
            return Err(ReviewError::Input(format!(
                "unknown state {state:?}: one of {}",
                STATES.join(", ")
            )));
        }
        if r.ids.is_empty() {
            return Err(ReviewError::Input("no alert selected".into()));
        }
        if r.ids.len() > MAX_REVIEWED {
            return Err(ReviewError::Input(format!(
                "at most {MAX_REVIEWED} alerts are reviewed at once"
            )));
        }
        if r.note.chars().count() > 2000 {
            return Err(ReviewError::Input(
                "a note is at most 2000 characters".into(),
            ));
        }
        if r.negative {
            self.negative_list(who, r.ids).await?;
        }
        let n = self
            .store
            .review(r.ids, state, who, r.note)
            .await
            .map_err(ReviewError::Store)?;
        for id in r.ids {
            self.audit(who, "review", &format!("{id} {state}")).await;
        }
        Ok(n)
    }

    async fn negative_list(&self, who: &str, ids: &[String]) -> Result<(), ReviewError> {
        for id in ids {
            let a = self
                .store
                .alert(id)
                .await
                .map_err(ReviewError::Store)?
                .ok_or(ReviewError::NotFound)?;
            if a.kind == "text" {
                return Err(ReviewError::Input(
                    "a text alert has no image to put on the negative list".into(),
                ));
            }
            let img = self.image(&a.url).await.ok_or_else(|| {
                ReviewError::Input(
                    "the image is not in the index yet, so its hash is unknown; try again \
                     once the indexer has caught up"
                        .into(),
                )
            })?;
            self.store
                .add_negative(&img.sha256, id, who)
                .await
                .map_err(ReviewError::Store)?;
            self.audit(who, "negative-list", &format!("{id} sha256:{}", img.sha256))
                .await;
        }
        match self.negatives.rewrite(&self.store).await {
            Ok(_) => Ok(()),
            Err(crate::negatives::NegativesError::Store(e)) => Err(ReviewError::Store(e)),
            Err(e) => {
                tracing::error!(error = %e, "negative list not written");
                Err(ReviewError::Input(e.to_string()))
            }
        }
    }
}

/// The coverage figures, for the page and the API.
#[derive(Debug, Clone, Serialize)]
pub struct Coverage {
    pub photos: usize,
    pub photos_total: Option<usize>,
    pub identifiers: usize,
    pub identifiers_total: Option<usize>,
    pub scenes: usize,
    pub sightings: i64,
    pub first_seen: Option<String>,
    pub per_day: Vec<(String, i64)>,
    pub sites: Vec<(String, i64)>,
    pub surfaced: Vec<crate::store::Surfaced>,
}

impl App {
    pub async fn coverage(&self) -> Result<Coverage, StoreError> {
        let surfaced = self.store.surfaced().await?;
        let count = |k: &str| surfaced.iter().filter(|s| s.kind == k).count();
        let (photos_total, identifiers_total) = self.inventory.counts();
        Ok(Coverage {
            photos: count("image"),
            identifiers: count("text"),
            scenes: count("scene"),
            photos_total,
            identifiers_total,
            sightings: surfaced.iter().map(|s| s.sightings).sum(),
            first_seen: surfaced.iter().map(|s| s.first_seen.clone()).min(),
            per_day: self.store.per_day().await?,
            sites: self.store.per_site().await?,
            surfaced,
        })
    }

    /// First and last sighting of the same photo or identifier as `label`.
    pub async fn seen_span(
        &self,
        kind: &str,
        label: &str,
    ) -> Result<Vec<crate::store::AlertRow>, StoreError> {
        let f = AlertFilter {
            kind: Some(kind.to_string()),
            label: Some(label.to_string()),
            limit: 200,
            ..Default::default()
        };
        Ok(self.store.alerts(&f).await?.1)
    }
}
