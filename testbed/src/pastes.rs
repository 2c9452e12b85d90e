//! Live paste sites: pastes are published while a crawl runs, as on a real paste site.
//!
//! Two sites, one per listing style a paste adapter must read:
//! - **bin** lists its recent pastes as HTML (`/recent`, `<ul class="recent">` of links to
//!   `/p/{id}`, besides navigation links that are no pastes);
//! - **api** lists them as JSON (`/api/recent`: `{"data": {"pastes": [{"key": …}]}}`) and
//!   rate-limits: a request less than `min_gap` after the previous one gets `429` with
//!   `Retry-After: 1`.
//!
//! **bin** is down when the watch starts: for `down_for` it answers every request `503`
//! without `Retry-After`, as a site behind an overloaded proxy does.
//!
//! Both serve each paste's raw text at `/raw/{id}` (`text/plain`). Every few pastes carries a
//! stolen identifier in a disguise (spaced out, dotted, look-alike characters); some carry
//! decoys one character off. Requests are counted per path, so a test can tell that each
//! paste was fetched once.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::rng::Rng;
use crate::text;

/// How the paste sites behave.
#[derive(Debug, Clone)]
pub struct PastesConfig {
    pub seed: u64,
    /// Pastes each site publishes over the run.
    pub per_site: usize,
    /// Time between two pastes of one site (the first is there at start).
    pub every: Duration,
    /// The API site answers `429` to a request closer than this to the previous one.
    pub min_gap: Duration,
    /// The HTML site answers `503` to everything for this long after start.
    pub down_for: Duration,
}

impl Default for PastesConfig {
    fn default() -> Self {
        PastesConfig {
            seed: 7,
            per_site: 10,
            every: Duration::from_millis(400),
            min_gap: Duration::from_millis(300),
            down_for: Duration::from_secs(2),
        }
    }
}

/// A paste that holds a stolen identifier.
#[derive(Debug, Clone, PartialEq)]
pub struct PlantedPaste {
    /// Its raw URL.
    pub raw_url: String,
    pub identifier: String,
    pub written_as: String,
}

struct Paste {
    id: String,
    text: String,
    /// When it appears in the listing.
    at: Instant,
}

struct Site {
    api: bool,
    pastes: Vec<Paste>,
    hits: Mutex<HashMap<String, u32>>,
    limited: Mutex<(Option<Instant>, u32)>,
    min_gap: Duration,
    /// Answers `503` until then (and counts how often).
    down_until: Instant,
    down_answers: Mutex<u32>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The two running paste sites.
pub struct PasteSites {
    bases: [String; 2],
    sites: [Arc<Site>; 2],
    planted: Vec<PlantedPaste>,
    decoys: Vec<String>,
    stop: watch::Sender<bool>,
}

impl PasteSites {
    /// Serves both sites on loopback; `identifiers` are the stolen ones (planted) and
    /// `stolen_norm` their normalised forms (decoys must differ from all of them).
    pub async fn start(config: PastesConfig, identifiers: &[String]) -> std::io::Result<Self> {
        let stolen: BTreeSet<String> = identifiers.iter().map(|i| text::normalize(i)).collect();
        let mut rng = Rng::stream(config.seed, "live-pastes");
        let (stop, signal) = watch::channel(false);
        let start = Instant::now();
        let mut bases = Vec::new();
        let mut sites = Vec::new();
        let mut planted = Vec::new();
        let mut decoys = Vec::new();
        for api in [false, true] {
            let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
            let base = format!("http://{}/", listener.local_addr()?);
            let mut pastes = Vec::new();
            for k in 0..config.per_site {
                let id: String = (0..10)
                    .map(|_| (b'a' + rng.below(26) as u8) as char)
                    .collect();
                let mut lines: Vec<String> = (0..rng.range(3, 8))
                    .map(|_| text::title_words(&mut rng, 4).to_lowercase())
                    .collect();
                let raw_url = format!("{base}raw/{id}");
                match k % 3 {
                    0 => {
                        let ident = rng.pick(identifiers).clone();
                        let written = disguise(&ident, k);
                        lines.insert(1, format!("plate {written} seen"));
                        planted.push(PlantedPaste {
                            raw_url,
                            identifier: ident,
                            written_as: written,
                        });
                    }
                    1 => {
                        let ident = rng.pick(identifiers);
                        let miss = text::near_miss(&mut rng, ident, &stolen);
                        lines.insert(1, format!("ref {}", disguise(&miss, k)));
                        decoys.push(raw_url);
                    }
                    _ => {}
                }
                pastes.push(Paste {
                    id,
                    text: lines.join("\n"),
                    at: start + config.every * k as u32,
                });
            }
            let site = Arc::new(Site {
                api,
                pastes,
                hits: Mutex::new(HashMap::new()),
                limited: Mutex::new((None, 0)),
                min_gap: config.min_gap,
                down_until: if api { start } else { start + config.down_for },
                down_answers: Mutex::new(0),
            });
            let router = Router::new().fallback(serve).with_state(site.clone());
            let mut signal = signal.clone();
            tokio::spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(async move {
                        let _ = signal.wait_for(|s| *s).await;
                    })
                    .await
            });
            bases.push(base);
            sites.push(site);
        }
        Ok(PasteSites {
            bases: [bases[0].clone(), bases[1].clone()],
            sites: [sites[0].clone(), sites[1].clone()],
            planted,
            decoys,
            stop,
        })
    }

    /// `[[pastes]]` config entries that watch both sites.
    pub fn config_toml(&self, poll_secs: u64) -> String {
        let [bin, api] = &self.bases;
        format!(
            "[[pastes]]\nname = \"bin\"\nlisting = \"{bin}recent\"\nlinks = \"ul.recent a\"\n\
             raw = \"{bin}raw/{{id}}\"\npoll_secs = {poll_secs}\n\n\
             [[pastes]]\nname = \"api\"\nlisting = \"{api}api/recent\"\n\
             ids = \"data.pastes.*.key\"\nraw = \"{api}raw/{{id}}\"\npoll_secs = {poll_secs}\n"
        )
    }

    /// Raw URLs of every paste, published or not.
    pub fn raw_urls(&self) -> Vec<String> {
        self.bases
            .iter()
            .zip(&self.sites)
            .flat_map(|(b, s)| s.pastes.iter().map(move |p| format!("{b}raw/{}", p.id)))
            .collect()
    }

    pub fn planted(&self) -> &[PlantedPaste] {
        &self.planted
    }

    /// Raw URLs of the pastes that hold decoys.
    pub fn decoys(&self) -> &[String] {
        &self.decoys
    }

    /// Requests served for `url` (any of the two sites).
    pub fn hits(&self, url: &str) -> u32 {
        self.bases
            .iter()
            .zip(&self.sites)
            .filter_map(|(b, s)| url.strip_prefix(b.as_str()).map(|p| (p, s)))
            .map(|(path, s)| lock(&s.hits).get(&format!("/{path}")).copied().unwrap_or(0))
            .sum()
    }

    /// `429` answers the API site gave.
    pub fn rate_limited(&self) -> u32 {
        lock(&self.sites[1].limited).1
    }

    /// `503` answers the HTML site gave while it was down.
    pub fn down_answers(&self) -> u32 {
        *lock(&self.sites[0].down_answers)
    }

    /// Whether every paste has been published.
    pub fn all_published(&self) -> bool {
        let now = Instant::now();
        self.sites
            .iter()
            .all(|s| s.pastes.iter().all(|p| p.at <= now))
    }

    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }
}

/// The identifier written the way paste `k` disguises it.
fn disguise(ident: &str, k: usize) -> String {
    match k % 4 {
        0 => text::spaced(ident),
        1 => ident.to_lowercase().replace('-', "."),
        2 => text::look_alike(ident),
        _ => ident.to_string(),
    }
}

async fn serve(State(site): State<Arc<Site>>, uri: Uri) -> Response {
    let path = uri.path().to_string();
    if Instant::now() < site.down_until {
        *lock(&site.down_answers) += 1;
        return (StatusCode::SERVICE_UNAVAILABLE, "upstream down").into_response();
    }
    if site.api {
        let mut limited = lock(&site.limited);
        let now = Instant::now();
        if limited
            .0
            .is_some_and(|last| now.duration_since(last) < site.min_gap)
        {
            limited.1 += 1;
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "1")],
                "slow down",
            )
                .into_response();
        }
        limited.0 = Some(now);
    }
    *lock(&site.hits).entry(path.clone()).or_default() += 1;
    let now = Instant::now();
    let published: Vec<&Paste> = site.pastes.iter().filter(|p| p.at <= now).collect();
    if let Some(id) = path.strip_prefix("/raw/") {
        return match published.iter().find(|p| p.id == id) {
            Some(p) => (
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                p.text.clone(),
            )
                .into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        };
    }
    match (site.api, path.as_str()) {
        (true, "/api/recent") => {
            let items: Vec<String> = published
                .iter()
                .rev()
                .map(|p| format!("{{\"key\": \"{}\", \"size\": {}}}", p.id, p.text.len()))
                .collect();
            (
                [(header::CONTENT_TYPE, "application/json")],
                format!("{{\"data\": {{\"pastes\": [{}]}}}}", items.join(", ")),
            )
                .into_response()
        }
        (false, "/recent") => {
            let items: String = published
                .iter()
                .rev()
                .map(|p| format!("<li><a href=\"/p/{}\">untitled</a></li>", p.id))
                .collect();
            let html = format!(
                "<!DOCTYPE html><html><head><title>recent</title></head><body>\
                 <ul class=\"nav\"><li><a href=\"/\">new paste</a></li><li><a href=\"/faq\">faq</a></li></ul>\
                 <ul class=\"recent\">{items}</ul></body></html>"
            );
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}
