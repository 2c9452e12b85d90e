//! A live forum: a site that changes while it is being crawled.
//!
//! The rest of the testbed serves a frozen world, which is enough for a
//! one-shot crawl. leakwatch's continuous-watch mode recrawls on a schedule,
//! revalidates pages with conditional requests (`If-None-Match`,
//! `If-Modified-Since`) where sites support them, and must alert on leaks
//! posted while it runs. Testing and benchmarking that needs a site whose
//! content moves under the crawler, driven by the test: [`LiveForum::post`]
//! adds a thread (optionally planting a stolen photo or identifier),
//! [`LiveForum::edit`] appends a reply to a thread and [`LiveForum::take_down`]
//! removes one. Every request is logged ([`LiveForum::requests`]) so a test can
//! check request rates, conditional hits and that nothing was refetched early.
//!
//! The pages deliberately cover the three ways a crawler can detect change:
//! - `/` (the index) sends a strong `ETag` and honours `If-None-Match`;
//! - `/t/{n}` with even `n` sends `Last-Modified` and honours
//!   `If-Modified-Since`; odd threads send no validators;
//! - `/board/{b}` sends no validators at all, so change shows only in content.
//!
//! Boards and threads end with a footer that changes on every request (server time, users
//! online), as on most forums: a crawler that judges change by the raw text sees every page
//! change all the time.
//!
//! `Last-Modified` has one-second precision, so two versions of a thread can
//! share it. The forum never answers 304 when that could hide a change: a
//! thread changed twice within one second answers `If-Modified-Since` equal to
//! its `Last-Modified` with a full 200 until its next change in a later second.
//! Only the IMF-fixdate form of HTTP dates is understood; any other
//! `If-Modified-Since` value is ignored (the page is sent in full).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State as AxumState;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::rng::Rng;
use crate::text;
use crate::transform;
use crate::StolenPhoto;

/// Most entries kept in the request log and in the post list; the oldest are
/// dropped beyond it.
pub const MAX_LIVE_LOG: usize = 1_000_000;

/// Threads listed on the index and on each board.
const LISTED: usize = 30;

/// Number of boards (`/board/1` … `/board/3`).
const BOARDS: u64 = 3;

/// JPEG quality of planted photos.
const PHOTO_QUALITY: u8 = 80;

/// Longest request path recorded in the log, in characters.
const MAX_LOGGED_PATH: usize = 1024;

/// Body of every 404 page.
const NOT_FOUND_PAGE: &str = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>not found</title></head><body><p>not found</p></body></html>";

/// What a live post plants.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Plant {
    /// Nothing stolen: an ordinary thread.
    Nothing,
    /// A JPEG copy (re-encoded at quality 80, see `crate::transform::jpeg`)
    /// of the stolen photo at this index of `photos`, embedded with
    /// `<img src="/img/{n}.jpg">` (`/img/{n}-{r}.jpg` when planted by reply
    /// `r` of an edit).
    Photo(usize),
    /// The stolen identifier at this index of `identifiers`, written in the
    /// thread's text as-is.
    Identifier(usize),
    /// An announcement that the forum moved: "We have moved. New address:"
    /// and a link to `http://{onion}/` (the string is the onion host).
    Mirror(String),
}

/// A post or an edit made on the live forum, and what it planted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LivePost {
    /// Thread number, from 1.
    pub n: u64,
    /// Absolute URL of the thread: `{base}t/{n}`.
    pub url: String,
    /// When the post or edit was made.
    pub posted_at: SystemTime,
    /// What it planted.
    pub plant: Plant,
    /// The photo's label (`StolenPhoto::label`) for `Photo`, the identifier
    /// string for `Identifier`, the onion host for `Mirror`, `None` for
    /// `Nothing`.
    pub label: Option<String>,
    /// Absolute URL of the embedded image, for `Photo`.
    pub image_url: Option<String>,
}

/// One request served by the live forum.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiveRequest {
    /// Request path, without the query string (truncated to 1024 characters).
    pub path: String,
    /// When the request arrived.
    pub at: SystemTime,
    /// The request carried If-None-Match or If-Modified-Since.
    pub conditional: bool,
    /// Status code answered.
    pub status: u16,
}

/// A forum served on loopback whose content the test changes while a crawler
/// watches it. Cheap to clone: clones share the same forum. Dropping every
/// clone without [`LiveForum::shutdown`] also stops the server, without
/// waiting for it.
#[derive(Clone)]
pub struct LiveForum {
    /// State shared with the server.
    core: Arc<Core>,
    /// Set to `true` to stop the server; dropping it stops it too.
    stop: Arc<watch::Sender<bool>>,
    /// The server task, taken by `shutdown`.
    server: Arc<Mutex<Option<JoinHandle<std::io::Result<()>>>>>,
}

/// Everything the server and the handles share.
struct Core {
    /// Root URL with a trailing slash.
    base: String,
    /// Photos that `Plant::Photo` indexes.
    photos: Vec<StolenPhoto>,
    /// Identifiers that `Plant::Identifier` indexes.
    identifiers: Vec<String>,
    /// Everything that changes.
    state: Mutex<State>,
}

/// The mutable part of the forum.
#[derive(Default)]
struct State {
    /// Threads by number, taken-down ones included.
    threads: BTreeMap<u64, Thread>,
    /// Number of the next thread.
    next_n: u64,
    /// Post and edit records, oldest first, capped at `MAX_LIVE_LOG`.
    posts: VecDeque<LivePost>,
    /// Request log, oldest first, capped at `MAX_LIVE_LOG`.
    requests: VecDeque<LiveRequest>,
    /// JPEG encodings of the stolen photos, by index, made on first use.
    jpegs: HashMap<usize, Bytes>,
    /// Listings order threads by their last activity (a reply bumps a thread to the top),
    /// as most forum software does; otherwise by creation.
    bump: bool,
    /// Activity counter: each post and edit takes the next value.
    activity: u64,
}

/// A thread of the forum.
struct Thread {
    /// Title (plain text).
    title: String,
    /// Author of the opening post.
    author: &'static str,
    /// Opening post paragraphs (plain text).
    opening: Vec<String>,
    /// What the opening post planted.
    plant: Planted,
    /// Replies added by edits, in order.
    replies: Vec<Reply>,
    /// Unix second of the last change: the `Last-Modified` of even threads.
    modified: u64,
    /// An earlier version of the thread had the same `modified` second, so
    /// `If-Modified-Since` equal to it cannot prove the client is current.
    ambiguous: bool,
    /// Taken down: answers 404 and leaves the listings.
    down: bool,
    /// When it was last posted to (`State::activity` at that moment).
    activity: u64,
}

/// A reply appended by an edit.
struct Reply {
    /// Author of the reply.
    author: &'static str,
    /// Reply text (plain text).
    text: String,
    /// What the reply planted.
    plant: Planted,
}

/// A plant resolved to what the page shows.
enum Planted {
    /// Nothing planted.
    Nothing,
    /// A JPEG served at the post's image path.
    Photo(Bytes),
    /// An identifier written in the text.
    Identifier(String),
    /// A link to a new onion address, announced as the forum's.
    Mirror(String),
}

impl Thread {
    /// Thread `n` as first posted at unix second `now`, its opening text
    /// generated from `n`.
    fn new(n: u64, plant: Planted, now: u64) -> Self {
        let mut rng = Rng::stream(n, "live-thread");
        let words = 3 + rng.below(3) as usize;
        let title = text::title_words(&mut rng, words);
        let author = *rng.pick(text::HANDLES);
        let paragraphs = 1 + rng.below(2) as usize;
        let opening = (0..paragraphs).map(|_| text::paragraph(&mut rng)).collect();
        Self {
            title,
            author,
            opening,
            plant,
            replies: Vec::new(),
            modified: now,
            ambiguous: false,
            down: false,
            activity: 0,
        }
    }

    /// Records a change at unix second `now`. `modified` never goes back,
    /// even if the clock does.
    fn touch(&mut self, now: u64) {
        let next = now.max(self.modified);
        self.ambiguous = next == self.modified;
        self.modified = next;
    }

    /// Whether a client holding the version dated `since` (an
    /// `If-Modified-Since` value) is certainly current.
    fn not_modified(&self, since: u64) -> bool {
        since > self.modified || (since == self.modified && !self.ambiguous)
    }
}

impl LiveForum {
    /// Serves on `bind` (typically `127.0.0.1:0`, which picks a free port),
    /// with `initial` ordinary threads already posted (numbered 1 to
    /// `initial`, recorded in [`LiveForum::posts`]).
    pub async fn start(
        bind: SocketAddr,
        photos: Vec<StolenPhoto>,
        identifiers: Vec<String>,
        initial: usize,
    ) -> std::io::Result<LiveForum> {
        let listener = TcpListener::bind(bind).await?;
        let local = listener.local_addr()?;
        let core = Arc::new(Core {
            base: format!("http://{local}/"),
            photos,
            identifiers,
            state: Mutex::new(State {
                next_n: 1,
                ..State::default()
            }),
        });
        let (stop, mut signal) = watch::channel(false);
        let forum = LiveForum {
            core: Arc::clone(&core),
            stop: Arc::new(stop),
            server: Arc::new(Mutex::new(None)),
        };
        for _ in 0..initial {
            forum.post(Plant::Nothing);
        }
        let router = Router::new().fallback(serve).with_state(core);
        let server = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    // Also returns when every handle (the sender) is dropped.
                    let _ = signal.wait_for(|stop| *stop).await;
                })
                .await
        });
        *lock(&forum.server) = Some(server);
        tracing::info!(base = %forum.core.base, initial, "live forum serving");
        Ok(forum)
    }

    /// Root URL with a trailing slash, e.g. `http://127.0.0.1:41234/`.
    pub fn base_url(&self) -> String {
        self.core.base.clone()
    }

    /// Posts a new thread, listed first on the index and on its board
    /// (`/board/{n % 3 + 1}`).
    ///
    /// # Panics
    /// When the plant's index is out of range of `photos` or `identifiers`.
    pub fn post(&self, plant: Plant) -> LivePost {
        let planted = self.core.resolve(&plant);
        let mut state = self.core.lock();
        let n = state.next_n;
        state.next_n += 1;
        let at = SystemTime::now();
        state.activity += 1;
        let mut thread = Thread::new(n, planted, unix_secs(at));
        thread.activity = state.activity;
        state.threads.insert(n, thread);
        let record = self.core.record(n, at, plant, &format!("img/{n}.jpg"));
        push_capped(&mut state.posts, record.clone(), MAX_LIVE_LOG);
        record
    }

    /// Edits thread n: appends a reply (changes its body, ETag and
    /// Last-Modified); the reply may plant something too. Returns the post
    /// record for what the edit planted (url = the thread's url, posted_at =
    /// now), also kept in [`LiveForum::posts`]. Returns None when thread n
    /// does not exist or is taken down.
    ///
    /// # Panics
    /// When the plant's index is out of range of `photos` or `identifiers`.
    pub fn edit(&self, n: u64, plant: Plant) -> Option<LivePost> {
        let planted = self.core.resolve(&plant);
        let mut state = self.core.lock();
        let activity = state.activity + 1;
        let thread = state.threads.get_mut(&n).filter(|t| !t.down)?;
        thread.activity = activity;
        let r = thread.replies.len() + 1;
        let mut rng = Rng::stream(n, &format!("live-reply-{r}"));
        let author = *rng.pick(text::HANDLES);
        let reply_text = text::sentence(&mut rng);
        thread.replies.push(Reply {
            author,
            text: reply_text,
            plant: planted,
        });
        let at = SystemTime::now();
        thread.touch(unix_secs(at));
        let record = self.core.record(n, at, plant, &format!("img/{n}-{r}.jpg"));
        state.activity = activity;
        push_capped(&mut state.posts, record.clone(), MAX_LIVE_LOG);
        Some(record)
    }

    /// From now on, listings order threads by last activity: an edit (a reply) bumps its
    /// thread to the top of the index and its board. Off by default (creation order).
    pub fn bump_on_reply(&self, on: bool) {
        self.core.lock().bump = on;
    }

    /// Thread n answers 404 from now on and leaves the index and its board;
    /// its images answer 404 too. Does nothing if thread n does not exist.
    pub fn take_down(&self, n: u64) {
        let mut state = self.core.lock();
        if let Some(thread) = state.threads.get_mut(&n) {
            thread.down = true;
            thread.opening.clear();
            thread.replies.clear();
            thread.plant = Planted::Nothing;
        }
    }

    /// Every post and edit record, in order (the newest `MAX_LIVE_LOG`).
    pub fn posts(&self) -> Vec<LivePost> {
        self.core.lock().posts.iter().cloned().collect()
    }

    /// Every request served, in order (the newest `MAX_LIVE_LOG`).
    pub fn requests(&self) -> Vec<LiveRequest> {
        self.core.lock().requests.iter().cloned().collect()
    }

    /// Stops the server. Connections still open after two seconds (such as
    /// idle keep-alive connections) are cut. Other clones keep working
    /// in memory but are no longer served.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let server = lock(&self.server).take();
        if let Some(mut server) = server {
            if tokio::time::timeout(Duration::from_secs(2), &mut server)
                .await
                .is_err()
            {
                server.abort();
            }
        }
    }
}

impl Core {
    /// Locks the state, ignoring poisoning (no invariant spans a panic).
    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// What `plant` shows on a page; encodes a photo on its first use.
    fn resolve(&self, plant: &Plant) -> Planted {
        match *plant {
            Plant::Nothing => Planted::Nothing,
            Plant::Identifier(i) => {
                let Some(id) = self.identifiers.get(i) else {
                    panic!(
                        "Plant::Identifier({i}) but there are {} identifiers",
                        self.identifiers.len()
                    );
                };
                Planted::Identifier(id.clone())
            }
            Plant::Photo(i) => {
                let Some(photo) = self.photos.get(i) else {
                    panic!(
                        "Plant::Photo({i}) but there are {} photos",
                        self.photos.len()
                    );
                };
                if let Some(jpeg) = self.lock().jpegs.get(&i) {
                    return Planted::Photo(jpeg.clone());
                }
                // Encode without holding the lock, so serving goes on.
                let jpeg = Bytes::from(transform::jpeg(&photo.image, PHOTO_QUALITY).bytes);
                self.lock().jpegs.insert(i, jpeg.clone());
                Planted::Photo(jpeg)
            }
            Plant::Mirror(ref onion) => Planted::Mirror(onion.clone()),
        }
    }

    /// The record of a post or edit of thread `n` made at `at`; `image` is
    /// the image's path relative to the base, used for `Photo`.
    fn record(&self, n: u64, at: SystemTime, plant: Plant, image: &str) -> LivePost {
        let (label, image_url) = match plant {
            Plant::Nothing => (None, None),
            Plant::Photo(i) => (
                Some(self.photos[i].label.clone()),
                Some(format!("{}{image}", self.base)),
            ),
            Plant::Identifier(i) => (Some(self.identifiers[i].clone()), None),
            Plant::Mirror(ref onion) => (Some(onion.clone()), None),
        };
        LivePost {
            n,
            url: format!("{}t/{n}", self.base),
            posted_at: at,
            plant,
            label,
            image_url,
        }
    }

    /// The response to a GET of `path`.
    fn respond(&self, path: &str, headers: &HeaderMap) -> Response {
        let state = self.lock();
        if path == "/" {
            return index(&state, headers);
        }
        let footer = footer(&state);
        if let Some(b) = path.strip_prefix("/board/").and_then(number) {
            if (1..=BOARDS).contains(&b) {
                return html(board(&state, b).replace("</body>", &format!("{footer}</body>")));
            }
        }
        if let Some(n) = path.strip_prefix("/t/").and_then(number) {
            if let Some(thread) = state.threads.get(&n).filter(|t| !t.down) {
                return thread_response(n, thread, headers, &footer);
            }
        }
        if let Some(name) = path
            .strip_prefix("/img/")
            .and_then(|p| p.strip_suffix(".jpg"))
        {
            if let Some(jpeg) = image(&state, name) {
                return ([(header::CONTENT_TYPE, "image/jpeg")], jpeg).into_response();
            }
        }
        not_found()
    }

    /// Appends a request to the log.
    fn log(&self, path: &str, at: SystemTime, conditional: bool, status: StatusCode) {
        let entry = LiveRequest {
            path: path.chars().take(MAX_LOGGED_PATH).collect(),
            at,
            conditional,
            status: status.as_u16(),
        };
        push_capped(&mut self.lock().requests, entry, MAX_LIVE_LOG);
    }
}

/// Locks `mutex`, ignoring poisoning.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Appends `item`, dropping the oldest entries beyond `cap`.
fn push_capped<T>(log: &mut VecDeque<T>, item: T, cap: usize) {
    while log.len() >= cap.max(1) {
        log.pop_front();
    }
    log.push_back(item);
}

/// The single handler: serves, then logs, every request.
async fn serve(
    AxumState(core): AxumState<Arc<Core>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let at = SystemTime::now();
    let conditional = headers.contains_key(header::IF_NONE_MATCH)
        || headers.contains_key(header::IF_MODIFIED_SINCE);
    let response = if method == Method::GET || method == Method::HEAD {
        core.respond(uri.path(), &headers)
    } else {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
        )
            .into_response()
    };
    core.log(uri.path(), at, conditional, response.status());
    response
}

/// A canonical decimal number (no sign, no leading zero), as in `/t/12`.
fn number(s: &str) -> Option<u64> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    canonical.then(|| s.parse().ok()).flatten()
}

/// The newest `LISTED` threads not taken down that `keep` accepts: by creation, or by last
/// activity when the forum bumps.
fn listed(state: &State, keep: impl Fn(u64) -> bool) -> Vec<(u64, &Thread)> {
    let mut threads: Vec<(u64, &Thread)> = state
        .threads
        .iter()
        .rev()
        .filter(|(n, t)| !t.down && keep(**n))
        .map(|(n, t)| (*n, t))
        .collect();
    if state.bump {
        threads.sort_by_key(|(_, t)| std::cmp::Reverse(t.activity));
    }
    threads.truncate(LISTED);
    threads
}

/// `<li>` links to `threads`.
fn thread_links(threads: &[(u64, &Thread)]) -> String {
    threads
        .iter()
        .map(|(n, t)| format!("<li><a href=\"/t/{n}\">{}</a></li>\n", escape(&t.title)))
        .collect()
}

/// A complete HTML page.
fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n<body>\n{body}</body></html>\n",
        escape(title)
    )
}

/// The index, with its ETag; 304 when `If-None-Match` matches it.
fn index(state: &State, headers: &HeaderMap) -> Response {
    let boards: String = (1..=BOARDS)
        .map(|b| format!("<li><a href=\"/board/{b}\">Board {b}</a></li>\n"))
        .collect();
    let body = page(
        "Latest threads",
        &format!(
            "<h1>Latest threads</h1>\n<ul class=\"threads\">\n{}</ul>\n<h2>Boards</h2>\n<ul class=\"boards\">\n{boards}</ul>\n",
            thread_links(&listed(state, |_| true))
        ),
    );
    let etag = etag(body.as_bytes());
    let etag_header = HeaderValue::from_str(&etag).expect("hex is a valid header value");
    if if_none_match(headers, &etag) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag_header)]).into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::ETAG, etag_header),
        ],
        body,
    )
        .into_response()
}

/// Board `b`: threads with `n % 3 == b - 1`, without validators.
fn board(state: &State, b: u64) -> String {
    page(
        &format!("Board {b}"),
        &format!(
            "<p><a href=\"/\">Latest threads</a></p>\n<h1>Board {b}</h1>\n<ul class=\"threads\">\n{}</ul>\n",
            thread_links(&listed(state, |n| n % BOARDS == b - 1))
        ),
    )
}

/// HTML showing what a post planted; `image` is the image's absolute path.
fn planted_html(plant: &Planted, image: &str) -> String {
    match plant {
        Planted::Nothing => String::new(),
        Planted::Photo(_) => {
            format!("<p>Pic attached, fresh from the batch.</p>\n<p><img src=\"{image}\" alt=\"attachment\"></p>\n")
        }
        Planted::Identifier(id) => {
            format!("<p>Fresh from the batch: {}</p>\n", escape(id))
        }
        Planted::Mirror(onion) => {
            let onion = escape(onion);
            format!("<p>We have moved. New address:</p>\n<p><a href=\"http://{onion}/\">{onion}</a></p>\n")
        }
    }
}

/// What every board and thread page ends with, as on most forums: the server's clock and a
/// count of users online, different on every request. (The index, with its `ETag`, has none.)
fn footer(state: &State) -> String {
    let secs = unix_secs(SystemTime::now());
    let online = (state.requests.len() as u64 * 7 + 13) % 97 + 3;
    format!(
        "<p class=\"footer\">Server time: {:02}:{:02}:{:02} &middot; {online} users online</p>\n",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    )
}

/// The page of thread `n`.
fn thread_page(n: u64, thread: &Thread) -> String {
    let mut body = format!(
        "<p><a href=\"/\">Latest threads</a> | <a href=\"/board/{b}\">Board {b}</a></p>\n<h1>{title}</h1>\n<div class=\"post\">\n<p class=\"author\">{author}</p>\n",
        b = n % BOARDS + 1,
        title = escape(&thread.title),
        author = escape(thread.author),
    );
    for paragraph in &thread.opening {
        body.push_str(&format!("<p>{}</p>\n", escape(paragraph)));
    }
    body.push_str(&planted_html(&thread.plant, &format!("/img/{n}.jpg")));
    body.push_str("</div>\n");
    for (i, reply) in thread.replies.iter().enumerate() {
        let r = i + 1;
        body.push_str(&format!(
            "<div class=\"reply\" id=\"r{r}\">\n<p class=\"author\">{}</p>\n<p>{}</p>\n{}</div>\n",
            escape(reply.author),
            escape(&reply.text),
            planted_html(&reply.plant, &format!("/img/{n}-{r}.jpg")),
        ));
    }
    page(&thread.title, &body)
}

/// Thread `n`'s response: even threads carry `Last-Modified` and answer a
/// satisfied `If-Modified-Since` with 304; odd threads have no validators.
fn thread_response(n: u64, thread: &Thread, headers: &HeaderMap, footer: &str) -> Response {
    let content_type = (
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    let body = thread_page(n, thread).replace("</body>", &format!("{footer}</body>"));
    if n % 2 == 1 {
        return ([content_type], body).into_response();
    }
    let last_modified = (
        header::LAST_MODIFIED,
        HeaderValue::from_str(&http_date(thread.modified)).expect("a date is a valid header"),
    );
    // RFC 9110 §13.1.3: If-Modified-Since is ignored alongside If-None-Match,
    // and a page without an ETag never matches it.
    let since = if headers.contains_key(header::IF_NONE_MATCH) {
        None
    } else {
        headers
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_http_date)
    };
    if since.is_some_and(|s| thread.not_modified(s)) {
        return (StatusCode::NOT_MODIFIED, [last_modified]).into_response();
    }
    ([content_type, last_modified], body).into_response()
}

/// The image named `name` (`{n}` or `{n}-{r}`), unless its thread is gone.
fn image(state: &State, name: &str) -> Option<Bytes> {
    let (n, r) = match name.split_once('-') {
        Some((n, r)) => (number(n)?, Some(number(r)?)),
        None => (number(name)?, None),
    };
    let thread = state.threads.get(&n).filter(|t| !t.down)?;
    let plant = match r {
        None => &thread.plant,
        Some(r) => {
            &thread
                .replies
                .get(usize::try_from(r).ok()?.checked_sub(1)?)?
                .plant
        }
    };
    match plant {
        Planted::Photo(jpeg) => Some(jpeg.clone()),
        _ => None,
    }
}

/// An HTML 200 response.
fn html(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

/// The 404 page.
fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        NOT_FOUND_PAGE,
    )
        .into_response()
}

/// A strong ETag: the quoted hex of the first 16 bytes of the SHA3-256 of
/// `body`.
fn etag(body: &[u8]) -> String {
    use sha3::Digest;
    let digest = sha3::Sha3_256::digest(body);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// Whether an `If-None-Match` header lists `etag` (weakly compared) or `*`.
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// Escapes text for HTML content and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Seconds since the Unix epoch (0 before it).
fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Day names, from Sunday (HTTP dates).
const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// Month names (HTTP dates).
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Formats unix second `secs` as an IMF-fixdate, e.g.
/// `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[((days + 4) % 7) as usize],
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
    )
}

/// Parses an IMF-fixdate into unix seconds; `None` for anything else,
/// including dates before 1970. The day name is not checked.
fn parse_http_date(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.split_ascii_whitespace().collect();
    let [weekday, day, month, year, time, zone] = parts.as_slice() else {
        return None;
    };
    let weekday = weekday.strip_suffix(',')?;
    if *zone != "GMT" || !WEEKDAYS.contains(&weekday) {
        return None;
    }
    let digits = |s: &str, len: usize| -> Option<u64> {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let d = digits(day, 2)?;
    let m = MONTHS.iter().position(|name| name == month)? as u32 + 1;
    let y = digits(year, 4)?;
    let mut hms = time.split(':');
    let (h, mi, sec) = (
        digits(hms.next()?, 2)?,
        digits(hms.next()?, 2)?,
        digits(hms.next()?, 2)?,
    );
    if hms.next().is_some() || h > 23 || mi > 59 || sec > 60 || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y as i64, m, d as u32);
    if days < 0 || civil_from_days(days) != (y as i64, m, d as u32) {
        return None; // before 1970, or a day the month does not have
    }
    Some(days as u64 * 86_400 + h * 3600 + mi * 60 + sec)
}

/// Year, month (1–12) and day of day number `z` since 1970-01-01
/// (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Day number since 1970-01-01 of a date (inverse of `civil_from_days`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};
    use std::net::{IpAddr, Ipv4Addr};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// A parsed HTTP response.
    struct Got {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Got {
        /// The first value of header `name`.
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }

        /// The body as text.
        fn text(&self) -> String {
            String::from_utf8(self.body.clone()).expect("utf-8 body")
        }
    }

    /// GETs `path` from `forum` over a fresh `Connection: close` connection.
    async fn get(forum: &LiveForum, path: &str, extra: &[(&str, &str)]) -> Got {
        let base = forum.base_url();
        let authority = base
            .strip_prefix("http://")
            .and_then(|b| b.strip_suffix('/'))
            .expect("base url");
        let mut request =
            format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
        for (k, v) in extra {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str("\r\n");
        let raw = tokio::time::timeout(Duration::from_secs(10), async {
            let mut stream = TcpStream::connect(authority).await.expect("connect");
            stream.write_all(request.as_bytes()).await.expect("write");
            let mut raw = Vec::new();
            stream.read_to_end(&mut raw).await.expect("read");
            raw
        })
        .await
        .expect("response within 10 s");
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("end of headers");
        let head = String::from_utf8(raw[..split].to_vec()).expect("ascii head");
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .expect("status line");
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let got = Got {
            status,
            headers,
            body: raw[split + 4..].to_vec(),
        };
        assert!(
            got.header("transfer-encoding").is_none(),
            "the client does not decode chunked bodies"
        );
        got
    }

    /// Two small distinct photos.
    fn photos() -> Vec<StolenPhoto> {
        (0..2u8)
            .map(|i| StolenPhoto {
                label: format!("stolen-{i:04}"),
                image: RgbImage::from_fn(64, 48, |x, y| {
                    Rgb([(x * 4) as u8, (y * 5) as u8, 100 + 50 * i])
                }),
            })
            .collect()
    }

    /// A forum with `initial` threads, two photos and two identifiers.
    async fn forum(initial: usize) -> LiveForum {
        let bind = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
        let identifiers = vec!["KX7-4821".to_string(), "P88213045".to_string()];
        LiveForum::start(bind, photos(), identifiers, initial)
            .await
            .expect("start")
    }

    /// Thread numbers linked from a listing page, in order.
    fn linked_threads(html: &str) -> Vec<u64> {
        html.split("<a href=\"/t/")
            .skip(1)
            .map(|s| s[..s.find('"').expect("closing quote")].parse().expect("n"))
            .collect()
    }

    /// Checks the page is a complete HTML document with a title.
    fn assert_html(got: &Got) {
        assert_eq!(got.header("content-type"), Some("text/html; charset=utf-8"));
        let text = got.text();
        assert!(text.starts_with("<!DOCTYPE html>"), "{text}");
        assert!(text.contains("<title>") && text.trim_end().ends_with("</html>"));
    }

    #[tokio::test]
    async fn new_post_is_listed_first_and_shows_its_plant() {
        let forum = forum(5).await;
        let base = forum.base_url();

        let id_post = forum.post(Plant::Identifier(1));
        assert_eq!(id_post.n, 6);
        assert_eq!(id_post.url, format!("{base}t/6"));
        assert_eq!(id_post.label.as_deref(), Some("P88213045"));
        assert_eq!(id_post.image_url, None);

        let photo_post = forum.post(Plant::Photo(0));
        assert_eq!(photo_post.n, 7);
        assert_eq!(photo_post.label.as_deref(), Some("stolen-0000"));
        assert_eq!(
            photo_post.image_url.as_deref(),
            Some(format!("{base}img/7.jpg").as_str())
        );

        let index = get(&forum, "/", &[]).await;
        assert_eq!(index.status, 200);
        assert_html(&index);
        assert_eq!(linked_threads(&index.text()), [7, 6, 5, 4, 3, 2, 1]);
        for b in 1..=3 {
            assert!(index.text().contains(&format!("<a href=\"/board/{b}\">")));
        }

        // 6 % 3 == 0: board 1; 7 % 3 == 1: board 2.
        let board1 = get(&forum, "/board/1", &[]).await;
        assert_eq!(board1.status, 200);
        assert_html(&board1);
        assert_eq!(board1.header("etag"), None);
        assert_eq!(board1.header("last-modified"), None);
        assert_eq!(linked_threads(&board1.text()), [6, 3]);
        let board2 = get(&forum, "/board/2", &[]).await;
        assert_eq!(linked_threads(&board2.text()), [7, 4, 1]);

        let page6 = get(&forum, "/t/6", &[]).await;
        assert_eq!(page6.status, 200);
        assert_html(&page6);
        assert!(page6.text().contains("P88213045"));
        assert!(!page6.text().contains("<img"));
        assert!(!page6.text().contains("KX7-4821"));

        let page7 = get(&forum, "/t/7", &[]).await;
        assert!(page7.text().contains("<img src=\"/img/7.jpg\""));
        let img = get(&forum, "/img/7.jpg", &[]).await;
        assert_eq!(img.status, 200);
        assert_eq!(img.header("content-type"), Some("image/jpeg"));
        assert!(img.body.starts_with(&[0xff, 0xd8, 0xff]));
        let decoded = image::load_from_memory_with_format(&img.body, image::ImageFormat::Jpeg)
            .expect("a JPEG");
        assert_eq!((decoded.width(), decoded.height()), (64, 48));

        // Threads without a photo have no image.
        assert_eq!(get(&forum, "/img/6.jpg", &[]).await.status, 404);
        assert_eq!(get(&forum, "/img/1.jpg", &[]).await.status, 404);

        let posts = forum.posts();
        assert_eq!(posts.len(), 7);
        assert_eq!(posts[5], id_post);
        assert_eq!(posts[6], photo_post);
        forum.shutdown().await;
    }

    #[tokio::test]
    async fn edit_plants_a_photo_in_a_reply() {
        let forum = forum(2).await;
        let edit = forum.edit(1, Plant::Photo(1)).expect("thread 1 exists");
        assert_eq!(edit.n, 1);
        assert_eq!(edit.url, format!("{}t/1", forum.base_url()));
        assert_eq!(edit.label.as_deref(), Some("stolen-0001"));
        let image_url = edit.image_url.clone().expect("image url");
        let path = image_url.strip_prefix(&forum.base_url()).expect("absolute");
        let page = get(&forum, "/t/1", &[]).await;
        assert!(page.text().contains(&format!("<img src=\"/{path}\"")));
        let img = get(&forum, &format!("/{path}"), &[]).await;
        assert_eq!(img.status, 200);
        assert_eq!(img.header("content-type"), Some("image/jpeg"));
        assert_eq!(forum.posts().last(), Some(&edit));
        assert_eq!(forum.edit(9, Plant::Nothing), None);
        forum.shutdown().await;
    }

    #[tokio::test]
    async fn index_etag_revalidates_until_a_post() {
        let forum = forum(3).await;
        let first = get(&forum, "/", &[]).await;
        assert_eq!(first.status, 200);
        let etag = first.header("etag").expect("index etag").to_string();
        assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2);

        let again = get(&forum, "/", &[("If-None-Match", &etag)]).await;
        assert_eq!(again.status, 304);
        assert!(again.body.is_empty());

        let other = get(&forum, "/", &[("If-None-Match", "\"0000\"")]).await;
        assert_eq!(other.status, 200);

        forum.post(Plant::Nothing);
        let after = get(&forum, "/", &[("If-None-Match", &etag)]).await;
        assert_eq!(after.status, 200);
        let new_etag = after.header("etag").expect("index etag").to_string();
        assert_ne!(new_etag, etag);
        assert_eq!(linked_threads(&after.text())[0], 4);
        let now = get(&forum, "/", &[("If-None-Match", &new_etag)]).await;
        assert_eq!(now.status, 304);
        forum.shutdown().await;
    }

    #[tokio::test]
    async fn even_thread_last_modified_revalidates_until_an_edit() {
        let forum = forum(3).await;
        let even = get(&forum, "/t/2", &[]).await;
        assert_eq!(even.status, 200);
        assert_eq!(even.header("etag"), None);
        let lm = even.header("last-modified").expect("even last-modified");
        let lm_secs = parse_http_date(lm).expect("IMF-fixdate");
        let now = unix_secs(SystemTime::now());
        assert!(lm_secs <= now && lm_secs + 60 > now);

        let same = get(&forum, "/t/2", &[("If-Modified-Since", lm)]).await;
        assert_eq!(same.status, 304);
        assert!(same.body.is_empty());
        let earlier = http_date(lm_secs - 1);
        let stale = get(&forum, "/t/2", &[("If-Modified-Since", &earlier)]).await;
        assert_eq!(stale.status, 200);

        forum
            .edit(2, Plant::Identifier(0))
            .expect("thread 2 exists");
        let edited = get(&forum, "/t/2", &[("If-Modified-Since", lm)]).await;
        assert_eq!(edited.status, 200);
        assert!(edited.text().contains("KX7-4821"));
        assert!(edited.text().contains("class=\"reply\""));
        let new_lm = edited.header("last-modified").expect("last-modified");
        assert!(parse_http_date(new_lm).expect("date") >= lm_secs);

        let future = http_date(now + 3600);
        let odd = get(&forum, "/t/3", &[("If-Modified-Since", &future)]).await;
        assert_eq!(odd.status, 200);
        assert_eq!(odd.header("last-modified"), None);
        assert_eq!(odd.header("etag"), None);
        forum.shutdown().await;
    }

    #[test]
    fn same_second_changes_never_revalidate() {
        let mut thread = Thread::new(2, Planted::Nothing, 100);
        assert!(thread.not_modified(100));
        assert!(thread.not_modified(101));
        assert!(!thread.not_modified(99));
        thread.touch(100); // changed again within second 100
        assert!(!thread.not_modified(100));
        assert!(thread.not_modified(101));
        thread.touch(102);
        assert!(thread.not_modified(102));
        assert!(!thread.not_modified(101));
        thread.touch(50); // the clock went back: never before the last change
        assert_eq!(thread.modified, 102);
        assert!(!thread.not_modified(102));
    }

    #[tokio::test]
    async fn taken_down_thread_is_gone() {
        let forum = forum(4).await;
        let photo = forum.post(Plant::Photo(0)); // n = 5, board 3
        assert_eq!(get(&forum, "/img/5.jpg", &[]).await.status, 200);
        forum.take_down(5);
        forum.take_down(3);

        let gone = get(&forum, "/t/5", &[]).await;
        assert_eq!(gone.status, 404);
        assert_html(&gone);
        assert_eq!(get(&forum, "/t/3", &[]).await.status, 404);
        assert_eq!(get(&forum, "/img/5.jpg", &[]).await.status, 404);

        let index = get(&forum, "/", &[]).await;
        assert_eq!(linked_threads(&index.text()), [4, 2, 1]);
        let board3 = get(&forum, "/board/3", &[]).await;
        assert_eq!(linked_threads(&board3.text()), [2]);
        assert_eq!(forum.edit(5, Plant::Nothing), None);
        assert_eq!(forum.posts().last(), Some(&photo));
        forum.shutdown().await;
    }

    #[tokio::test]
    async fn unknown_paths_are_404() {
        let forum = forum(2).await;
        for path in [
            "/nope",
            "/board/0",
            "/board/4",
            "/t/0",
            "/t/01",
            "/t/3",
            "/t/1/",
            "/img/1.png",
            "/img/1-1.jpg",
        ] {
            let got = get(&forum, path, &[]).await;
            assert_eq!(got.status, 404, "{path}");
            assert_html(&got);
        }
        assert_eq!(get(&forum, "/t/1", &[]).await.status, 200);
        forum.shutdown().await;
    }

    #[tokio::test]
    async fn a_reply_bumps_its_thread_when_the_forum_bumps() {
        let forum = forum(3).await;
        forum.edit(1, Plant::Nothing).unwrap();
        let index = get(&forum, "/", &[]).await;
        assert_eq!(linked_threads(&index.text()), [3, 2, 1]);
        forum.bump_on_reply(true);
        let index = get(&forum, "/", &[]).await;
        assert_eq!(linked_threads(&index.text()), [1, 3, 2]);
        let board = get(&forum, "/board/2", &[]).await;
        assert_eq!(linked_threads(&board.text()), [1]);
        forum.shutdown().await;
    }

    #[tokio::test]
    async fn index_lists_the_newest_thirty() {
        let forum = forum(40).await;
        let index = get(&forum, "/", &[]).await;
        let expected: Vec<u64> = (11..=40).rev().collect();
        assert_eq!(linked_threads(&index.text()), expected);
        let board1 = get(&forum, "/board/1", &[]).await;
        let expected: Vec<u64> = (1..=40).rev().filter(|n| n % 3 == 0).collect();
        assert_eq!(linked_threads(&board1.text()), expected);
        forum.shutdown().await;
    }

    #[tokio::test]
    async fn request_log_records_conditional_requests_and_statuses() {
        let started = SystemTime::now();
        let forum = forum(2).await;
        let etag = get(&forum, "/", &[])
            .await
            .header("etag")
            .expect("etag")
            .to_string();
        get(&forum, "/", &[("If-None-Match", &etag)]).await;
        let lm = get(&forum, "/t/2", &[])
            .await
            .header("last-modified")
            .expect("last-modified")
            .to_string();
        get(&forum, "/t/2", &[("If-Modified-Since", &lm)]).await;
        get(&forum, "/t/1", &[("If-Modified-Since", &lm)]).await;
        get(&forum, "/missing?q=1", &[]).await;

        let log = forum.requests();
        let seen: Vec<(&str, bool, u16)> = log
            .iter()
            .map(|r| (r.path.as_str(), r.conditional, r.status))
            .collect();
        assert_eq!(
            seen,
            [
                ("/", false, 200),
                ("/", true, 304),
                ("/t/2", false, 200),
                ("/t/2", true, 304),
                ("/t/1", true, 200),
                ("/missing", false, 404),
            ]
        );
        assert!(log.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(log[0].at >= started && log[5].at <= SystemTime::now());
        forum.shutdown().await;
    }

    #[test]
    fn logs_drop_the_oldest_beyond_the_cap() {
        let mut log = VecDeque::new();
        for i in 0..5 {
            push_capped(&mut log, i, 3);
        }
        assert_eq!(log, [2, 3, 4]);
    }

    #[test]
    fn http_dates_round_trip() {
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        for secs in [0, 1, 86_399, 951_782_400, 1_700_000_000, 4_102_444_800] {
            assert_eq!(parse_http_date(&http_date(secs)), Some(secs), "{secs}");
        }
        for bad in [
            "",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 31 Feb 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1969 08:49:37 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }
}
