//! A deterministic synthetic "dark web" served on loopback.
//!
//! leakwatch's crawler, matcher and indexer need a target that behaves like
//! the real thing yet whose every leak is known in advance. `start` generates
//! such a world from a seed and serves it: a forum, a market, a paste site and
//! an image gallery (hundreds of interlinked pages), optionally a hostile site
//! full of crawler traps. The returned `Truth` lists everything planted: image
//! leaks (transformed copies of a generated stolen photo set), decoys that must
//! not alert, stolen identifiers in paste text and unique searchable phrases.
//! A separate XSS site ([`xss`]) carries script and markup payloads in everything
//! a crawler stores, for testing whatever later shows it.
//!
//! Design choices:
//! - Generation (`generate`) is pure and driven by a tiny SplitMix64 generator
//!   with named streams, so a seed fully determines every byte served.
//! - Pages are generated as templates and rendered after the listeners are
//!   bound, because cross-site links need the other sites' ports.
//! - Each site has its own listener and axum router; content is held in
//!   memory, so serving never touches the disk.
//!
//! What the matcher must do with it: alert on every leak in `Truth::leaks`, whatever its
//! edit (flips, crops, pads and banners included), and on no decoy. The end-to-end suite
//! (`leakwatch/tests/e2e.rs`) asserts exactly that; the matcher's own calibration is in
//! `matcher/tests/robustness.rs` and `bench/robustness`.

pub mod archive;
pub mod day;
mod hostile;
mod live;
pub mod pastes;
mod rng;
mod scene;
mod server;
mod socks;
mod text;
mod transform;
mod world;
pub mod xss;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use hostile::{
    fake_onion, BIG_BYTES, BOMB_SIDE, DIV_FLOOD, FAKE_ONIONS, HEAVY_IMAGES, LATIN1_ASCII_PHRASE,
    LATIN1_PHRASE, SLOW_SECONDS, UNICODE_PHRASE,
};
pub use live::{LiveForum, LivePost, LiveRequest, Plant, MAX_LIVE_LOG};
pub use socks::SocksProxy;
pub use world::{
    generate, Resource, StolenPhoto, World, COMMENT_ONLY_TOKEN, SCRIPT_ONLY_TOKEN, SITE_NAMES,
    STYLE_ONLY_TOKEN,
};

/// What to generate and where to serve it.
#[derive(Clone, Debug)]
pub struct Config {
    /// Seed of the whole world.
    pub seed: u64,
    /// Size of the stolen photo set.
    pub stolen_count: usize,
    /// Also serve the hostile site.
    pub hostile: bool,
    /// Address every site listens on.
    pub bind: IpAddr,
    /// Fixed ports in site order: forum, market, paste, gallery, then hostile
    /// when enabled. `None` picks free ports.
    pub ports: Option<Vec<u16>>,
    /// Public base URL by site name (`forum`, `market`, `paste`, `gallery`):
    /// the site's pages, the links to it from the other sites and the truth
    /// file use this base instead of the listening address, e.g. an onion
    /// service (`http://<56 chars>.onion/`) that forwards to the listener.
    /// A missing trailing slash is added.
    pub public_bases: BTreeMap<String, String>,
}

/// Border-camera photos and their twins: `n` pairs of the same car model at the same spot in
/// the same conditions, the second with another paint (of the same brightness half the
/// time), plate and driver. The hardest look-alike a breach of lane-camera photos holds;
/// the first of each pair is at camera `i % cameras`.
pub fn twin_photos(seed: u64, n: usize, cameras: usize) -> Vec<(image::RgbImage, image::RgbImage)> {
    let cams: Vec<scene::Camera> = (0..cameras.max(1))
        .map(|i| scene::Camera::new(seed, i))
        .collect();
    let mut rng = rng::Rng::stream(seed, "twin-photos");
    (0..n)
        .map(|i| {
            let cam = &cams[i % cams.len()];
            let plate = text::plate(&mut rng);
            let car = scene::Car::random(&mut rng, &plate);
            let plate = text::plate(&mut rng);
            let twin = car.twin(&mut rng, &plate);
            let conditions = rng.next_u64();
            (
                scene::camera_photo_in(cam, Some(&car), conditions, rng.next_u64()),
                scene::camera_photo_in(cam, Some(&twin), conditions, rng.next_u64()),
            )
        })
        .collect()
}

/// Stolen identifiers as the testbed makes them (`plates` plate numbers like `KX7-4821`, then
/// `docs` document numbers like `P88213045`), for tests that need a watchlist without a
/// whole world.
pub fn stolen_identifiers(seed: u64, plates: usize, docs: usize) -> Vec<String> {
    text::stolen_identifiers(seed, plates, docs)
}

/// Photo number `i` of a breach of border-camera photos: a crossing at one of 8 lane
/// cameras; every fourth (after the first round) is a twin of the crossing one round earlier
/// at the same camera ([`twin_photos`]). A pure function of `seed` and `i`, so large sets can
/// be written in parallel (`examples/breach_set.rs`).
pub fn breach_photo(seed: u64, i: usize) -> image::RgbImage {
    const CAMERAS: usize = 8;
    let camera = scene::Camera::new(seed, i % CAMERAS);
    let crossing = |j: usize| {
        let mut rng = rng::Rng::stream(seed, &format!("breach-{j}"));
        let plate = text::plate(&mut rng);
        let car = scene::Car::random(&mut rng, &plate);
        (car, rng.next_u64(), rng.next_u64())
    };
    let (car, conditions, noise) = crossing(i);
    if i >= CAMERAS && i % 4 == 3 {
        let (base, conditions, _) = crossing(i - CAMERAS);
        let mut rng = rng::Rng::stream(seed, &format!("breach-twin-{i}"));
        let plate = text::plate(&mut rng);
        let twin = base.twin(&mut rng, &plate);
        return scene::camera_photo_in(&camera, Some(&twin), conditions, noise);
    }
    scene::camera_photo_in(&camera, Some(&car), conditions, noise)
}

impl Default for Config {
    fn default() -> Self {
        Self {
            seed: 7,
            stolen_count: 60,
            hostile: false,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ports: None,
            public_bases: BTreeMap::new(),
        }
    }
}

/// Why the testbed could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("expected {expected} ports, got {got}")]
    PortCount { expected: usize, got: usize },
    #[error("stolen_count must be at least 1")]
    EmptyStolenSet,
    #[error("failed to bind {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("public base for unknown site {0:?} (expected forum, market, paste or gallery)")]
    UnknownSite(String),
    #[error("public base {url:?} of site {site} is not an http(s) URL with a host")]
    PublicBase { site: String, url: String },
    #[error("world generation failed")]
    Generate(#[source] tokio::task::JoinError),
}

/// A served site.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SiteInfo {
    /// `forum`, `market`, `paste`, `gallery` or `hostile`.
    pub name: String,
    /// Root URL with a trailing slash, e.g. `http://127.0.0.1:41234/`, or
    /// the public base given in `Config::public_bases`.
    pub base_url: String,
}

/// Longest public base URL accepted.
const MAX_PUBLIC_BASE: usize = 512;

/// Checks a public base URL and returns it with a trailing slash. It is
/// pasted into HTML attributes, so it must be a plain http(s) URL: a host,
/// optional port and path, and no characters that need escaping.
fn public_base(site: &str, url: &str) -> Result<String, Error> {
    let bad = || Error::PublicBase {
        site: site.to_string(),
        url: url.chars().take(MAX_PUBLIC_BASE).collect(),
    };
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(bad)?;
    let host = rest.split('/').next().unwrap_or_default();
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~/:%[]".contains(c);
    if url.len() > MAX_PUBLIC_BASE || host.is_empty() || !rest.chars().all(allowed) {
        return Err(bad());
    }
    Ok(if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    })
}

/// Everything planted in the normal sites; all URLs are absolute.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Truth {
    /// The four normal sites (never the hostile one).
    pub sites: Vec<SiteInfo>,
    /// Number of HTML pages on the normal sites, all reachable from the roots.
    pub pages: usize,
    pub leaks: Vec<Leak>,
    pub decoys: Vec<Decoy>,
    pub text_leaks: Vec<TextLeak>,
    pub phrases: Vec<Phrase>,
}

/// A transformed copy of a stolen photo on a page.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Leak {
    pub page_url: String,
    /// Absolute image URL, or `"data:"` when the image is inline (`data_uri`).
    pub image_url: String,
    /// File stem of the stolen photo, e.g. `stolen-0007`.
    pub label: String,
    /// e.g. `jpeg-q42`, `resize-50`, `brightness-20`, `grayscale`, `blur-r2`,
    /// `banner-top-12`, `webp-lossless`, `gif`, `flip-h`, `crop-4`, `pad-8`,
    /// `original`.
    pub transform: String,
    /// Whether the edit is pixel-level only (re-encoding, resizing, colour, blur), which
    /// even a whole-image hash survives; flips, crops, pads and banners are not. Suites that
    /// need only the easy leaks (the Tor and broker suites, for speed) select on it.
    pub expect_dct256: bool,
    /// The image is a `data:image/jpeg;base64,…` URI inside the page.
    pub data_uri: bool,
}

/// An image that looks like the stolen set but must not alert.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Decoy {
    pub page_url: String,
    pub image_url: String,
    /// `same-camera-other-car`, `unseen-camera` or `unrelated`.
    pub kind: String,
}

/// A stolen identifier appearing in a page's text.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TextLeak {
    pub page_url: String,
    /// As listed in the stolen identifiers, e.g. `KX7-4821`.
    pub identifier: String,
    /// As written on the page, e.g. `kx7 4821`.
    pub written_as: String,
}

/// A unique phrase planted on exactly one page.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Phrase {
    pub page_url: String,
    pub phrase: String,
}

/// A started testbed. Dropping it without `shutdown` leaves the servers
/// running until the runtime stops.
pub struct Running {
    sites: Vec<SiteInfo>,
    local_addrs: Vec<SocketAddr>,
    truth: Truth,
    world: World,
    shutdown: watch::Sender<bool>,
    servers: Vec<JoinHandle<std::io::Result<()>>>,
}

/// Generates the world for `config` and serves it.
pub async fn start(config: Config) -> Result<Running, Error> {
    if config.stolen_count == 0 {
        return Err(Error::EmptyStolenSet);
    }
    let mut public = BTreeMap::new();
    for (site, url) in &config.public_bases {
        if !SITE_NAMES.contains(&site.as_str()) {
            return Err(Error::UnknownSite(site.chars().take(64).collect()));
        }
        public.insert(site.clone(), public_base(site, url)?);
    }
    let site_count = SITE_NAMES.len() + usize::from(config.hostile);
    let ports = match &config.ports {
        Some(p) if p.len() != site_count => {
            return Err(Error::PortCount {
                expected: site_count,
                got: p.len(),
            })
        }
        Some(p) => p.clone(),
        None => vec![0; site_count],
    };
    let mut listeners = Vec::new();
    let mut sites = Vec::new();
    let mut local_addrs = Vec::new();
    for (i, port) in ports.into_iter().enumerate() {
        let addr = SocketAddr::new(config.bind, port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| Error::Bind { addr, source })?;
        let name = SITE_NAMES.get(i).copied().unwrap_or("hostile");
        let base_url = public
            .get(name)
            .cloned()
            .unwrap_or_else(|| format!("http://{local}/"));
        sites.push(SiteInfo {
            name: name.to_string(),
            base_url,
        });
        local_addrs.push(local);
        listeners.push(listener);
    }
    let bases: Vec<String> = sites
        .iter()
        .take(SITE_NAMES.len())
        .map(|s| s.base_url.clone())
        .collect();
    let cfg = config.clone();
    let render_bases = bases.clone();
    let (world, rendered) = tokio::task::spawn_blocking(move || {
        let world = generate(&cfg);
        let rendered = world.render(&render_bases);
        (world, rendered)
    })
    .await
    .map_err(Error::Generate)?;
    let truth = world.truth(&bases);

    let (shutdown, signal) = watch::channel(false);
    let mut servers = Vec::new();
    let mut routers: Vec<axum::Router> = rendered.into_iter().map(server::site_router).collect();
    if config.hostile {
        routers.push(hostile::router());
    }
    for (listener, router) in listeners.into_iter().zip(routers) {
        let mut signal = signal.clone();
        servers.push(tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = signal.wait_for(|stop| *stop).await;
                })
                .await
        }));
    }
    tracing::info!(
        pages = truth.pages,
        leaks = truth.leaks.len(),
        "testbed serving"
    );
    Ok(Running {
        sites,
        local_addrs,
        truth,
        world,
        shutdown,
        servers,
    })
}

impl Running {
    /// Every served site, the hostile one last when enabled.
    pub fn sites(&self) -> &[SiteInfo] {
        &self.sites
    }

    /// The address each site listens on, in the order of `sites`. It differs
    /// from the site's `base_url` when a public base was given.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Root URLs of the normal sites (never the hostile one).
    pub fn seeds(&self) -> Vec<String> {
        self.sites
            .iter()
            .filter(|s| s.name != "hostile")
            .map(|s| s.base_url.clone())
            .collect()
    }

    /// Root URL of the hostile site, when enabled.
    pub fn hostile_url(&self) -> Option<String> {
        self.sites
            .iter()
            .find(|s| s.name == "hostile")
            .map(|s| s.base_url.clone())
    }

    /// What was planted where.
    pub fn truth(&self) -> Truth {
        self.truth.clone()
    }

    /// The generated world behind the sites.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// Writes the stolen set as `<label>.png` files into `dir` (created if
    /// missing) and returns their paths in label order.
    pub fn write_stolen_set(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir)?;
        self.world
            .stolen()
            .iter()
            .map(|photo| {
                let path = dir.join(format!("{}.png", photo.label));
                std::fs::write(&path, transform::png(&photo.image).bytes)?;
                Ok(path)
            })
            .collect()
    }

    /// Writes the stolen identifiers, one per line.
    pub fn write_identifiers(&self, path: &Path) -> std::io::Result<()> {
        let mut out = self.world.identifiers().join("\n");
        out.push('\n');
        std::fs::write(path, out)
    }

    /// Stops all sites. Connections still open after two seconds (such as
    /// `/slow`) are cut.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for mut server in self.servers {
            if tokio::time::timeout(Duration::from_secs(2), &mut server)
                .await
                .is_err()
            {
                server.abort();
            }
        }
    }
}
