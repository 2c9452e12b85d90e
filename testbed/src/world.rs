//! Generation of the whole synthetic dark web, as pure data.
//!
//! `generate` turns a `Config` into a `World`: every page and image of the four
//! normal sites, the stolen photo set, the stolen identifiers and the record
//! of what was planted where. It does no I/O, so tests can inspect a world
//! without serving it and determinism is a plain equality check. Pages are
//! stored as templates because the absolute cross-site links need the other
//! sites' ports, which are only known once the listeners are bound;
//! `World::render` fills them in.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use image::RgbImage;

use crate::rng::Rng;
use crate::scene::{self, Camera, Car};
use crate::text;
use crate::transform::{self, Encoded, Transform};
use crate::{Config, Decoy, Leak, Phrase, SiteInfo, TextLeak, Truth};

/// Names of the normal sites, in serving order.
pub const SITE_NAMES: [&str; 4] = ["forum", "market", "paste", "gallery"];
/// Number of cameras that took the stolen photos.
pub const STOLEN_CAMERAS: usize = 4;
/// Text that only ever appears inside `<script>` blocks.
pub const SCRIPT_ONLY_TOKEN: &str = "SCRIPTONLY-TOKEN";
/// Text that only ever appears inside `<style>` blocks.
pub const STYLE_ONLY_TOKEN: &str = "STYLEONLY-TOKEN";
/// Text that only ever appears inside HTML comments.
pub const COMMENT_ONLY_TOKEN: &str = "COMMENTONLY-TOKEN";

const FORUM: usize = 0;
const MARKET: usize = 1;
const PASTE: usize = 2;
const GALLERY: usize = 3;

const FORUM_SECTIONS: &[(&str, &str)] = &[
    ("plates-papers", "Plates &amp; Papers"),
    ("border-runs", "Border Runs"),
    ("fresh-dumps", "Fresh Dumps"),
    ("opsec", "OpSec &amp; Tools"),
    ("market-talk", "Market Talk"),
    ("off-topic", "Off&#8209;Topic"),
];
const FORUM_THREADS: usize = 120;
const MARKET_CATEGORIES: &[(&str, &str)] = &[
    ("documents", "Documents"),
    ("plates", "Plates"),
    ("databases", "Databases"),
    ("accounts", "Accounts"),
    ("cards", "Cards"),
    ("guides", "Guides &amp; Tutorials"),
    ("services", "Services"),
    ("other", "Other"),
];
const MARKET_LISTINGS: usize = 100;
const PASTES: usize = 100;
const PASTES_PER_RECENT_PAGE: usize = 25;
const GALLERY_TAGS: &[&str] = &["cars", "roads", "travel", "night", "misc"];
const ALBUMS: usize = 60;
const LEAKS: usize = 28;
const TEXT_LEAK_PASTES: usize = 10;
const DECOY_PASTES: usize = 5;
const PHRASES: usize = 10;
const STOLEN_PLATES: usize = 30;
const STOLEN_DOCUMENTS: usize = 20;

/// A place on one of the normal sites.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Loc {
    pub site: usize,
    pub path: String,
}

impl Loc {
    fn new(site: usize, path: impl Into<String>) -> Self {
        Self {
            site,
            path: path.into(),
        }
    }

    fn absolute(&self, bases: &[String]) -> String {
        format!("{}{}", bases[self.site], &self.path[1..])
    }

    /// Template form of an absolute URL (filled in by `World::render`).
    fn placeholder_url(&self) -> String {
        format!("{}{}", placeholder(self.site), self.path)
    }
}

fn placeholder(site: usize) -> String {
    format!("@@BASE{site}@@")
}

/// One file served by a site.
#[derive(Clone, Debug)]
pub struct Resource {
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// HTML pages are templates holding cross-site placeholders.
    pub is_page: bool,
}

/// One photo of the stolen set.
#[derive(Clone, Debug)]
pub struct StolenPhoto {
    pub label: String,
    pub image: RgbImage,
}

#[derive(Clone, Debug, PartialEq)]
struct LeakRecord {
    page: Loc,
    image: Option<Loc>,
    label: String,
    transform: String,
    expect_dct256: bool,
}

#[derive(Clone, Debug, PartialEq)]
struct DecoyRecord {
    page: Loc,
    image: Loc,
    kind: String,
}

#[derive(Clone, Debug, PartialEq)]
struct TextLeakRecord {
    page: Loc,
    identifier: String,
    written_as: String,
}

/// The generated world: four sites' files plus what was planted in them.
#[derive(Clone, Debug)]
pub struct World {
    sites: Vec<BTreeMap<String, Resource>>,
    stolen: Vec<StolenPhoto>,
    identifiers: Vec<String>,
    leaks: Vec<LeakRecord>,
    decoys: Vec<DecoyRecord>,
    text_leaks: Vec<TextLeakRecord>,
    phrases: Vec<(Loc, String)>,
}

impl World {
    /// Files of the normal site `site` (index into `SITE_NAMES`), by path.
    pub fn site_resources(&self, site: usize) -> &BTreeMap<String, Resource> {
        &self.sites[site]
    }

    /// The stolen photo set, in label order.
    pub fn stolen(&self) -> &[StolenPhoto] {
        &self.stolen
    }

    /// The stolen identifiers (plate numbers, then document numbers).
    pub fn identifiers(&self) -> &[String] {
        &self.identifiers
    }

    /// Number of HTML pages over the normal sites.
    pub fn page_count(&self) -> usize {
        self.sites
            .iter()
            .map(|s| s.values().filter(|r| r.is_page).count())
            .sum()
    }

    /// Fills the cross-site placeholders: `bases[i]` is the base URL (with a
    /// trailing slash) of site `i`. Returns each site's files by path.
    pub fn render(&self, bases: &[String]) -> Vec<BTreeMap<String, (&'static str, Vec<u8>)>> {
        let patterns: Vec<(String, String)> = bases
            .iter()
            .enumerate()
            .map(|(i, b)| (placeholder(i), b.trim_end_matches('/').to_string()))
            .collect();
        self.sites
            .iter()
            .map(|site| {
                site.iter()
                    .map(|(path, r)| {
                        let body = if r.is_page {
                            let mut html = String::from_utf8_lossy(&r.body).into_owned();
                            for (from, to) in &patterns {
                                html = html.replace(from, to);
                            }
                            html.into_bytes()
                        } else {
                            r.body.clone()
                        };
                        (path.clone(), (r.content_type, body))
                    })
                    .collect()
            })
            .collect()
    }

    /// The truth file for the sites served at `bases`.
    pub fn truth(&self, bases: &[String]) -> Truth {
        Truth {
            sites: SITE_NAMES
                .iter()
                .zip(bases)
                .map(|(name, base)| SiteInfo {
                    name: name.to_string(),
                    base_url: base.clone(),
                })
                .collect(),
            pages: self.page_count(),
            leaks: self
                .leaks
                .iter()
                .map(|l| Leak {
                    page_url: l.page.absolute(bases),
                    image_url: l
                        .image
                        .as_ref()
                        .map_or_else(|| "data:".to_string(), |i| i.absolute(bases)),
                    label: l.label.clone(),
                    transform: l.transform.clone(),
                    expect_dct256: l.expect_dct256,
                    data_uri: l.image.is_none(),
                })
                .collect(),
            decoys: self
                .decoys
                .iter()
                .map(|d| Decoy {
                    page_url: d.page.absolute(bases),
                    image_url: d.image.absolute(bases),
                    kind: d.kind.clone(),
                })
                .collect(),
            text_leaks: self
                .text_leaks
                .iter()
                .map(|t| TextLeak {
                    page_url: t.page.absolute(bases),
                    identifier: t.identifier.clone(),
                    written_as: t.written_as.clone(),
                })
                .collect(),
            phrases: self
                .phrases
                .iter()
                .map(|(loc, phrase)| Phrase {
                    page_url: loc.absolute(bases),
                    phrase: phrase.clone(),
                })
                .collect(),
        }
    }
}

/// A page under construction.
struct Page {
    title: String,
    body: Vec<String>,
}

/// Builds the world for `config`. Pure and deterministic.
pub fn generate(config: &Config) -> World {
    Builder::new(config).build()
}

struct Builder {
    seed: u64,
    stolen_count: usize,
    pages: Vec<BTreeMap<String, Page>>,
    files: Vec<BTreeMap<String, Resource>>,
    used_ids: BTreeSet<u64>,
}

impl Builder {
    fn new(config: &Config) -> Self {
        Self {
            seed: config.seed,
            stolen_count: config.stolen_count.max(1),
            pages: (0..4).map(|_| BTreeMap::new()).collect(),
            files: (0..4).map(|_| BTreeMap::new()).collect(),
            used_ids: BTreeSet::new(),
        }
    }

    fn rng(&self, name: &str) -> Rng {
        Rng::stream(self.seed, name)
    }

    /// Stores an image on `site` under an opaque name and returns its location.
    fn add_image(&mut self, rng: &mut Rng, site: usize, enc: Encoded) -> Loc {
        let id = loop {
            let id = rng.next_u64() & 0xffff_ffff_ffff;
            if self.used_ids.insert(id) {
                break id;
            }
        };
        let path = format!("/img/u/{id:012x}.{}", enc.ext);
        self.files[site].insert(
            path.clone(),
            Resource {
                content_type: enc.content_type,
                body: enc.bytes,
                is_page: false,
            },
        );
        Loc::new(site, path)
    }

    fn page(&mut self, loc: &Loc) -> &mut Page {
        self.pages[loc.site]
            .get_mut(&loc.path)
            .expect("page planned before use")
    }

    fn add_page(&mut self, site: usize, path: &str, title: String) {
        self.pages[site].insert(
            path.to_string(),
            Page {
                title,
                body: Vec::new(),
            },
        );
    }

    fn build(mut self) -> World {
        let identifiers = text::stolen_identifiers(self.seed, STOLEN_PLATES, STOLEN_DOCUMENTS);
        let stolen_norm: BTreeSet<String> =
            identifiers.iter().map(|i| text::normalize(i)).collect();
        let stolen = self.stolen_photos(&identifiers, &stolen_norm);

        // Filler pools.
        let mut rng = self.rng("filler");
        let avatars: Vec<Loc> = (0..24)
            .map(|_| {
                let img = scene::filler_picture(&mut rng, 64, 64);
                self.add_image(&mut rng, FORUM, transform::png(&img))
            })
            .collect();
        let products: Vec<Loc> = (0..50)
            .map(|_| {
                let img = scene::filler_picture(&mut rng, 240, 180);
                self.add_image(&mut rng, MARKET, transform::jpeg(&img, 80))
            })
            .collect();
        let photos: Vec<Loc> = (0..80)
            .map(|_| {
                let img = scene::filler_picture(&mut rng, 320, 240);
                self.add_image(&mut rng, GALLERY, transform::jpeg(&img, 82))
            })
            .collect();

        let threads = self.forum(&avatars);
        let listings = self.market(&products);
        let pastes = self.paste(&identifiers, &stolen_norm);
        let albums = self.gallery(&photos);
        let raw = self.raw_pastes(&identifiers, &stolen_norm, &stolen);
        let mut text_leaks = pastes.1;
        text_leaks.extend(raw.0);

        let mut leaks = self.plant_leaks(&stolen, &threads, &listings, &albums, &photos);
        leaks.extend(raw.1);
        let decoys = self.plant_decoys(&stolen_norm, &threads, &listings, &albums);
        let phrases = self.plant_phrases(&threads, &listings, &pastes.0, &albums);
        self.cross_links(&threads, &listings, &pastes.0, &albums);

        let mut sites = std::mem::take(&mut self.files);
        for (site, pages) in std::mem::take(&mut self.pages).into_iter().enumerate() {
            for (path, page) in pages {
                let html = render_page(site, &path, &page);
                sites[site].insert(
                    path,
                    Resource {
                        content_type: "text/html; charset=utf-8",
                        body: html.into_bytes(),
                        is_page: true,
                    },
                );
            }
        }
        World {
            sites,
            stolen,
            identifiers,
            leaks,
            decoys,
            text_leaks,
            phrases,
        }
    }

    fn stolen_photos(
        &self,
        identifiers: &[String],
        stolen_norm: &BTreeSet<String>,
    ) -> Vec<StolenPhoto> {
        let cameras: Vec<Camera> = (0..STOLEN_CAMERAS)
            .map(|i| Camera::new(self.seed, i))
            .collect();
        let mut rng = self.rng("stolen");
        (0..self.stolen_count)
            .map(|i| {
                let plate = if i < STOLEN_PLATES {
                    identifiers[i].clone()
                } else {
                    unlisted_plate(&mut rng, stolen_norm)
                };
                let car = Car::random(&mut rng, &plate);
                let image =
                    scene::camera_photo(&cameras[i % STOLEN_CAMERAS], Some(&car), rng.next_u64());
                StolenPhoto {
                    label: format!("stolen-{:04}", i + 1),
                    image,
                }
            })
            .collect()
    }

    fn forum(&mut self, avatars: &[Loc]) -> Vec<Loc> {
        let mut rng = self.rng("forum");
        let mut root = Page {
            title: "Crossroads Board &mdash; index".into(),
            body: vec![format!("<p>{}</p>", text::paragraph(&mut rng))],
        };
        let mut list = String::from("<h2>Sections</h2><ul>");
        for (slug, name) in FORUM_SECTIONS {
            list.push_str(&format!("<li><a href=\"s/{slug}/\">{name}</a></li>"));
        }
        list.push_str("</ul>");
        root.body.push(list);

        let mut threads = Vec::new();
        let mut section_lists: Vec<String> = vec![String::new(); FORUM_SECTIONS.len()];
        for n in 1..=FORUM_THREADS {
            let sec = n % FORUM_SECTIONS.len();
            let path = format!("/thread/{n}/");
            let title = match rng.below(4) {
                0 => format!(
                    "{} &amp; {}",
                    text::title_words(&mut rng, 2),
                    text::title_words(&mut rng, 1)
                ),
                1 => format!(
                    "{}&#39;s {}",
                    rng.pick(text::HANDLES),
                    text::title_words(&mut rng, 2)
                ),
                2 => format!(
                    "&quot;{}&quot; {}",
                    text::title_words(&mut rng, 1),
                    text::title_words(&mut rng, 3)
                ),
                _ => text::title_words(&mut rng, 4),
            };
            section_lists[sec].push_str(&format!(
                "<li><a href=\"../../thread/{n}/\">{title}</a></li>"
            ));
            let (slug, sec_name) = FORUM_SECTIONS[sec];
            let mut body = vec![format!(
                "<nav><a href=\"../../s/{slug}/\">{sec_name}</a> &raquo; <a href=\"./\">this thread</a> <a href=\"./#reply\">reply</a></nav>"
            )];
            for k in 0..rng.range(3, 8) {
                let avatar = rng.pick(avatars);
                let src = if rng.chance(0.5) {
                    relative(&path, &avatar.path)
                } else {
                    avatar.path.clone()
                };
                body.push(format!(
                    "<div class=\"post\" id=\"post-{k}\"><img class=\"avatar\" src=\"{src}\" alt=\"\" width=\"64\" height=\"64\"><b>{}</b><p>{}</p></div>",
                    rng.pick(text::HANDLES),
                    text::paragraph(&mut rng)
                ));
            }
            let next = n % FORUM_THREADS + 1;
            let other = rng.range(1, FORUM_THREADS as i64 + 1);
            body.push(format!(
                "<p>See also <a href=\"../{next}/\">the next thread</a>, <a href=\"../{other}/#post-1\">this one</a>, <a href=\"/thread/{other}/\">same again</a> and <a href=\"../../s/{slug}/\">back to {sec_name}</a>.</p>"
            ));
            self.add_page(FORUM, &path, title);
            self.page(&Loc::new(FORUM, path.clone())).body = body;
            threads.push(Loc::new(FORUM, path));
        }
        let mut latest = String::from("<h2>Latest threads</h2><ul>");
        for n in (FORUM_THREADS - 9..=FORUM_THREADS).rev() {
            latest.push_str(&format!("<li><a href=\"/thread/{n}/\">thread {n}</a></li>"));
        }
        latest.push_str("</ul>");
        root.body.push(latest);
        self.pages[FORUM].insert("/".into(), root);
        for (i, (slug, name)) in FORUM_SECTIONS.iter().enumerate() {
            let path = format!("/s/{slug}/");
            let body = vec![
                format!("<p>{}</p>", text::paragraph(&mut rng)),
                format!("<ul>{}</ul>", section_lists[i]),
                "<p><a href=\"../../\">Board index</a> <a href=\"../../#top\">top</a></p>".into(),
            ];
            self.pages[FORUM].insert(
                path,
                Page {
                    title: format!("{name} &mdash; Crossroads Board"),
                    body,
                },
            );
        }
        threads
    }

    fn market(&mut self, products: &[Loc]) -> Vec<Loc> {
        let mut rng = self.rng("market");
        let mut cats: Vec<String> = vec![String::new(); MARKET_CATEGORIES.len()];
        let mut listings = Vec::new();
        for n in 1..=MARKET_LISTINGS {
            let cat = n % MARKET_CATEGORIES.len();
            let (slug, cat_name) = MARKET_CATEGORIES[cat];
            let path = format!("/listing/{n}.html");
            let title = format!("{} &ndash; {}", text::title_words(&mut rng, 3), cat_name);
            cats[cat].push_str(&format!(
                "<li><a href=\"../../listing/{n}.html\">{title}</a> <a href=\"/listing/{n}.html\">(open)</a></li>"
            ));
            let photo = rng.pick(products).clone();
            let related = n % MARKET_LISTINGS + 1;
            let other = rng.range(1, MARKET_LISTINGS as i64 + 1);
            let body = vec![
                format!(
                    "<nav><a href=\"../category/{slug}/\">{cat_name}</a> | <a href=\"../\">market home</a></nav>"
                ),
                format!(
                    "<img class=\"product\" src=\"{}\" alt=\"product photo\">",
                    relative(&path, &photo.path)
                ),
                format!(
                    "<p class=\"price\">Price: {}.{:02} XMR &middot; vendor <b>{}</b></p>",
                    rng.range(1, 40),
                    rng.below(100),
                    rng.pick(text::HANDLES)
                ),
                format!("<p>{}</p><p>{}</p>", text::paragraph(&mut rng), text::paragraph(&mut rng)),
                format!(
                    "<p>Related: <a href=\"./{related}.html\">next listing</a>, <a href=\"{other}.html#reviews\">another</a>, <a href=\"{other}.html\">another again</a></p>"
                ),
            ];
            self.pages[MARKET].insert(path.clone(), Page { title, body });
            listings.push(Loc::new(MARKET, path));
        }
        let mut root_list = String::from("<ul>");
        for (i, (slug, name)) in MARKET_CATEGORIES.iter().enumerate() {
            root_list.push_str(&format!("<li><a href=\"category/{slug}/\">{name}</a></li>"));
            let body = vec![
                format!("<p>{}</p>", text::paragraph(&mut rng)),
                format!("<ul>{}</ul>", cats[i]),
                "<p><a href=\"../../\">Market home</a></p>".into(),
            ];
            self.pages[MARKET].insert(
                format!("/category/{slug}/"),
                Page {
                    title: format!("{name} | Silk Lane Market"),
                    body,
                },
            );
        }
        root_list.push_str("</ul>");
        self.pages[MARKET].insert(
            "/".into(),
            Page {
                title: "Silk Lane Market &ndash; vendors &amp; escrow".into(),
                body: vec![format!("<p>{}</p>", text::paragraph(&mut rng)), root_list],
            },
        );
        listings
    }

    /// Returns the pastes and the text leaks planted in them.
    fn paste(
        &mut self,
        identifiers: &[String],
        stolen_norm: &BTreeSet<String>,
    ) -> (Vec<Loc>, Vec<TextLeakRecord>) {
        let mut rng = self.rng("paste");
        let mut ids = BTreeSet::new();
        let mut pastes = Vec::new();
        while pastes.len() < PASTES {
            let id: String = (0..8)
                .map(|_| (b'a' + rng.below(26) as u8) as char)
                .collect();
            if ids.insert(id.clone()) {
                pastes.push(Loc::new(PASTE, format!("/p/{id}")));
            }
        }
        let mut order: Vec<usize> = (0..PASTES).collect();
        rng.shuffle(&mut order);
        let leak_set: BTreeSet<usize> = order[..TEXT_LEAK_PASTES].iter().copied().collect();
        let decoy_set: BTreeSet<usize> = order[TEXT_LEAK_PASTES..TEXT_LEAK_PASTES + DECOY_PASTES]
            .iter()
            .copied()
            .collect();
        let mut text_leaks = Vec::new();
        let mut variant = 0u64;
        for (i, loc) in pastes.iter().enumerate() {
            let recent = i / PASTES_PER_RECENT_PAGE + 1;
            let title = match rng.below(3) {
                0 => format!("{} dump", text::title_words(&mut rng, 2)),
                1 => format!("untitled &lt;{}&gt;", i + 1),
                _ => text::title_words(&mut rng, 3),
            };
            let mut lines: Vec<String> =
                (0..rng.range(6, 20)).map(|_| dump_line(&mut rng)).collect();
            if leak_set.contains(&i) {
                let n = rng.range(1, 4) as usize;
                let mut chosen = BTreeSet::new();
                for _ in 0..n {
                    let id = rng.pick(identifiers).clone();
                    if !chosen.insert(id.clone()) {
                        continue;
                    }
                    let written = text::sloppy(&id, variant);
                    variant += 1;
                    let at = rng.below(lines.len() as u64 + 1) as usize;
                    let field = if id.contains('-') { "plate" } else { "doc" };
                    lines.insert(
                        at,
                        format!(
                            "{field}: {written} | name: {} | crossing: 2024-{:02}-{:02}",
                            rng.pick(text::HANDLES),
                            rng.range(1, 13),
                            rng.range(1, 29)
                        ),
                    );
                    text_leaks.push(TextLeakRecord {
                        page: loc.clone(),
                        identifier: id,
                        written_as: written,
                    });
                }
            } else if decoy_set.contains(&i) {
                for _ in 0..rng.range(2, 4) {
                    let id = rng.pick(identifiers);
                    let miss = text::near_miss(&mut rng, id, stolen_norm);
                    let at = rng.below(lines.len() as u64 + 1) as usize;
                    lines.insert(at, format!("ref: {miss} | status: unverified"));
                }
            }
            let body = vec![
                format!(
                    "<nav><a href=\"../recent/{recent}\">recent pastes</a> | <a href=\"../\">new paste</a> | <a href=\"javascript:void(0)\">raw</a></nav>"
                ),
                format!("<pre>{}</pre>", lines.join("\n")),
            ];
            self.pages[PASTE].insert(loc.path.clone(), Page { title, body });
        }
        let pages = PASTES.div_ceil(PASTES_PER_RECENT_PAGE);
        for k in 1..=pages {
            let mut list = String::from("<ul>");
            for loc in pastes
                .iter()
                .skip((k - 1) * PASTES_PER_RECENT_PAGE)
                .take(PASTES_PER_RECENT_PAGE)
            {
                list.push_str(&format!(
                    "<li><a href=\"..{}\">{}</a></li>",
                    loc.path,
                    &loc.path[3..]
                ));
            }
            list.push_str("</ul>");
            let mut nav = String::from("<p>");
            if k > 1 {
                nav.push_str(&format!("<a href=\"{}\">newer</a> ", k - 1));
            }
            if k < pages {
                nav.push_str(&format!("<a href=\"./{}\">older</a> ", k + 1));
            }
            nav.push_str("<a href=\"/\">home</a></p>");
            self.pages[PASTE].insert(
                format!("/recent/{k}"),
                Page {
                    title: format!("Recent pastes &middot; page {k}"),
                    body: vec![list, nav],
                },
            );
        }
        let mut root = String::from("<h2>Recent pastes</h2><ul>");
        for loc in pastes.iter().take(10) {
            root.push_str(&format!(
                "<li><a href=\"{}\">{}</a></li>",
                &loc.path[1..],
                &loc.path[3..]
            ));
        }
        root.push_str("</ul><p>");
        for k in 1..=pages {
            root.push_str(&format!("<a href=\"recent/{k}\">page {k}</a> "));
        }
        root.push_str("</p>");
        self.pages[PASTE].insert(
            "/".into(),
            Page {
                title: "ZeroBin &mdash; anonymous pastes".into(),
                body: vec![format!("<p>{}</p>", text::sentence(&mut rng)), root],
            },
        );
        (pastes, text_leaks)
    }

    /// Pastes in the forms leakers use to slip past a scanner, linked from the paste site's
    /// front page: raw text views (`text/plain`, JSON) with identifiers spaced out, dotted,
    /// with look-alike characters, and photos pasted as base64 or attached in archives; an
    /// HTML paste with identifiers split across tags; and a raw paste of decoys one character
    /// off. Returns the text leaks and the photos' image leaks.
    fn raw_pastes(
        &mut self,
        identifiers: &[String],
        stolen_norm: &BTreeSet<String>,
        stolen: &[StolenPhoto],
    ) -> (Vec<TextLeakRecord>, Vec<LeakRecord>) {
        let mut rng = self.rng("raw-pastes");
        let mut found = Found::default();

        // Plain text: spaced out, look-alikes, dotted.
        let ids = pick_ids(&mut rng, identifiers, 3);
        let written = [
            text::spaced(&ids[0]),
            text::look_alike(&ids[1]),
            ids[2].to_lowercase().replace('-', "."),
        ];
        let mut lines = filler_lines(&mut rng, 8);
        for (k, w) in written.iter().enumerate() {
            lines.insert(k * 2, format!("record {k}: {w}"));
        }
        let body = lines.join("\n");
        let loc = self.add_raw(
            &mut found.pages,
            "/raw/r7dump.txt",
            "text/plain; charset=utf-8",
            body,
        );
        found.text(&loc, ids.iter().cloned().zip(written));

        self.photo_pastes(&mut rng, identifiers, stolen, &mut found);
        self.split_paste(&mut rng, identifiers, &mut found);

        // Decoys: one character off, in the same disguises.
        let mut lines = filler_lines(&mut rng, 6);
        for id in pick_ids(&mut rng, identifiers, 3) {
            lines.extend(decoy_lines(&mut rng, &id, stolen_norm));
        }
        self.add_raw(
            &mut found.pages,
            "/raw/d0refs.txt",
            "text/plain",
            lines.join("\n"),
        );

        let mut list = String::from("<h3>raw</h3><ul>");
        for loc in &found.pages {
            let rel = &loc.path[1..];
            list.push_str(&format!("<li><a href=\"{rel}\">{rel}</a></li>"));
        }
        list.push_str("</ul>");
        self.pages[PASTE]
            .get_mut("/")
            .expect("the paste site's front page")
            .body
            .push(list);
        (found.text_leaks, found.leaks)
    }

    /// A photo pasted as base64 (wrapped at 76 columns) beside links to attachments, and a
    /// JSON export with a photo in a string with JSON's escapes; one identifier in each.
    fn photo_pastes(
        &mut self,
        rng: &mut Rng,
        identifiers: &[String],
        stolen: &[StolenPhoto],
        found: &mut Found,
    ) {
        let (label, wrapped) = base64_photo(rng, stolen, 80, 76);
        let id = pick_ids(rng, identifiers, 1).remove(0);
        let attachments = self.attachments(rng, stolen, &mut found.leaks, "/raw/q2photo.txt");
        let body = format!(
            "-----BEGIN PHOTO-----\n{}\n-----END PHOTO-----\nplate on it: {id}\n{}\nmore: {}",
            wrapped.join("\n"),
            filler_lines(rng, 6).join("\n"),
            attachments.join(" ")
        );
        let loc = self.add_raw(&mut found.pages, "/raw/q2photo.txt", "text/plain", body);
        found.text(&loc, [(id.clone(), id)]);
        found.leaks.push(pasted_photo(loc, label, "base64-text"));

        let (label, lines) = base64_photo(rng, stolen, 70, 64);
        let escaped: Vec<String> = lines.iter().map(|l| l.replace('/', "\\/")).collect();
        let id = pick_ids(rng, identifiers, 1).remove(0);
        let written = id.to_lowercase().replace('-', " ");
        let body = format!(
            "{{\"records\": [{{\"id\": {}, \"value\": \"{written}\"}}], \"photo\": \"{}\"}}",
            rng.range(100, 999),
            escaped.join("\\n")
        );
        let loc = self.add_raw(
            &mut found.pages,
            "/raw/j4export.json",
            "application/json",
            body,
        );
        found.text(&loc, [(id, written)]);
        found.leaks.push(pasted_photo(loc, label, "base64-json"));
    }

    /// An HTML paste with one identifier a tag per character, another split in two tags.
    fn split_paste(&mut self, rng: &mut Rng, identifiers: &[String], found: &mut Found) {
        let ids = pick_ids(rng, identifiers, 2);
        let split_chars: String = ids[0]
            .chars()
            .map(|c| format!("<span>{c}</span>"))
            .collect();
        let (a, b) = ids[1].split_at(ids[1].len() / 2);
        let split_half = format!("<b>{a}</b><i>{b}</i>");
        let pre = format!(
            "<pre>{}\nplate: {split_chars}\nother: {split_half}</pre>",
            filler_lines(rng, 6).join("\n"),
        );
        let loc = Loc::new(PASTE, "/p/split-batch");
        let page = Page {
            title: "batch 3".into(),
            body: vec![pre],
        };
        self.pages[PASTE].insert(loc.path.clone(), page);
        found.pages.push(loc.clone());
        found.text(&loc, ids.into_iter().zip([split_chars, split_half]));
    }

    /// Serves `body` at `path` on the paste site as a page of `content_type`, listed in `pages`.
    fn add_raw(
        &mut self,
        pages: &mut Vec<Loc>,
        path: &str,
        content_type: &'static str,
        body: String,
    ) -> Loc {
        self.files[PASTE].insert(
            path.to_string(),
            Resource {
                content_type,
                body: body.into_bytes(),
                is_page: true,
            },
        );
        let loc = Loc::new(PASTE, path);
        pages.push(loc.clone());
        loc
    }

    /// Stolen photos in attachments linked from the page at `linked_from`: a zip (deflated)
    /// and a `.tar.gz` holding a photo and a zip with another. Each photo is an image leak at
    /// `ARCHIVE#PATH`. Returns the attachments' URLs (as placeholders).
    fn attachments(
        &mut self,
        rng: &mut Rng,
        stolen: &[StolenPhoto],
        leaks: &mut Vec<LeakRecord>,
        linked_from: &str,
    ) -> Vec<String> {
        let photo = |rng: &mut Rng| {
            let p = &stolen[rng.below(stolen.len() as u64) as usize];
            let q = rng.range(60, 90) as u8;
            (
                p.label.clone(),
                Transform::Jpeg(q).apply(&p.image, "").bytes,
            )
        };
        let (a, a_jpeg) = photo(rng);
        let (b, b_jpeg) = photo(rng);
        let (c, c_jpeg) = photo(rng);
        let zip = crate::archive::zip(&[
            ("readme.txt", b"fresh from the border, enjoy", false),
            ("cam2/0001.jpg", &a_jpeg, true),
        ]);
        let inner = crate::archive::zip(&[("more/0007.jpg", &c_jpeg, false)]);
        let tgz = crate::archive::gzip(&crate::archive::tar(&[
            ("0002.jpg", &b_jpeg),
            ("inner.zip", &inner),
        ]));
        let mut urls = Vec::new();
        for (path, body, members) in [
            ("/att/cam2-sample.zip", zip, vec![("cam2/0001.jpg", a)]),
            (
                "/att/set-14.tar.gz",
                tgz,
                vec![("0002.jpg", b), ("inner.zip/more/0007.jpg", c)],
            ),
        ] {
            self.files[PASTE].insert(
                path.to_string(),
                Resource {
                    content_type: "application/octet-stream",
                    body,
                    is_page: false,
                },
            );
            let loc = Loc::new(PASTE, path);
            urls.push(loc.placeholder_url());
            for (member, label) in members {
                leaks.push(LeakRecord {
                    page: Loc::new(PASTE, linked_from),
                    image: Some(Loc::new(PASTE, format!("{path}#{member}"))),
                    label,
                    transform: "archive".into(),
                    expect_dct256: true,
                });
            }
        }
        urls
    }

    fn gallery(&mut self, photos: &[Loc]) -> Vec<Loc> {
        let mut rng = self.rng("gallery");
        let mut tags: Vec<String> = vec![String::new(); GALLERY_TAGS.len()];
        let mut albums = Vec::new();
        for n in 1..=ALBUMS {
            let tag = n % GALLERY_TAGS.len();
            let path = format!("/album/{n}/");
            let title = format!("{} ({})", text::title_words(&mut rng, 2), GALLERY_TAGS[tag]);
            tags[tag].push_str(&format!(
                "<li><a href=\"../../album/{n}/\">{title}</a></li>"
            ));
            let mut body = vec![format!(
                "<nav><a href=\"../../tag/{}/\">#{}</a> <a href=\"../{}/\">next album</a></nav>",
                GALLERY_TAGS[tag],
                GALLERY_TAGS[tag],
                n % ALBUMS + 1
            )];
            let mut grid = String::from("<div class=\"grid\">");
            for _ in 0..rng.range(4, 7) {
                let p = rng.pick(photos);
                let src = match rng.below(3) {
                    0 => relative(&path, &p.path),
                    1 => p.path.clone(),
                    _ => p.placeholder_url(),
                };
                grid.push_str(&format!(
                    "<a href=\"{src}\"><img src=\"{src}\" alt=\"\"></a>"
                ));
            }
            grid.push_str("</div>");
            body.push(grid);
            body.push(format!("<p>{}</p>", text::sentence(&mut rng)));
            self.pages[GALLERY].insert(path.clone(), Page { title, body });
            albums.push(Loc::new(GALLERY, path));
        }
        let mut root = String::from("<h2>Tags</h2><ul>");
        for (i, tag) in GALLERY_TAGS.iter().enumerate() {
            root.push_str(&format!("<li><a href=\"./tag/{tag}/\">#{tag}</a></li>"));
            self.pages[GALLERY].insert(
                format!("/tag/{tag}/"),
                Page {
                    title: format!("#{tag} &middot; Lens Gallery"),
                    body: vec![
                        format!("<ul>{}</ul>", tags[i]),
                        "<p><a href=\"/\">all tags</a></p>".into(),
                    ],
                },
            );
        }
        root.push_str("</ul><h2>New albums</h2><ul>");
        for n in (ALBUMS - 11..=ALBUMS).rev() {
            root.push_str(&format!("<li><a href=\"album/{n}/\">album {n}</a></li>"));
        }
        root.push_str("</ul>");
        self.pages[GALLERY].insert(
            "/".into(),
            Page {
                title: "Lens Gallery &ndash; share albums".into(),
                body: vec![root],
            },
        );
        albums
    }

    fn plant_leaks(
        &mut self,
        stolen: &[StolenPhoto],
        threads: &[Loc],
        listings: &[Loc],
        albums: &[Loc],
        photos: &[Loc],
    ) -> Vec<LeakRecord> {
        let mut rng = self.rng("leaks");
        let mut transforms = vec![Transform::Original];
        for _ in 0..6 {
            transforms.push(Transform::Jpeg(rng.range(30, 91) as u8));
        }
        transforms.extend([
            Transform::Resize50,
            Transform::Resize50,
            Transform::Brightness(20),
            Transform::Brightness(-20),
            Transform::Grayscale,
            Transform::Grayscale,
            Transform::Blur(2),
            Transform::Blur(2),
            Transform::Banner {
                top: true,
                percent: 12,
            },
            Transform::Banner {
                top: false,
                percent: 15,
            },
            Transform::Banner {
                top: true,
                percent: 10,
            },
            Transform::Webp,
            Transform::Webp,
            Transform::Gif,
            Transform::Gif,
            Transform::FlipH,
            Transform::FlipH,
            Transform::Crop4,
            Transform::Crop4,
            Transform::Pad8,
            Transform::Pad8,
        ]);
        debug_assert_eq!(transforms.len(), LEAKS);
        rng.shuffle(&mut transforms);
        // The data: URI leak must be a JPEG; move one to the front.
        let first_jpeg = transforms
            .iter()
            .position(|t| matches!(t, Transform::Jpeg(_)))
            .expect("jpeg transforms present");
        transforms.swap(0, first_jpeg);

        let mut photo_order: Vec<usize> = (0..stolen.len()).collect();
        rng.shuffle(&mut photo_order);
        let mut pages: Vec<Loc> = Vec::new();
        for (pool, n) in [(threads, 10), (listings, 8), (albums, 10)] {
            let mut p = pool.to_vec();
            rng.shuffle(&mut p);
            pages.extend(p.into_iter().take(n));
        }
        // The data: URI leak goes on a forum thread (index 0).
        let mut constructs = [
            "img-relative",
            "img-root",
            "img-absolute",
            "srcset",
            "background",
            "cross-site",
        ];
        let mut leaks = Vec::new();
        for (i, t) in transforms.iter().enumerate() {
            let photo = &stolen[photo_order[i % photo_order.len()]];
            let page = pages[i].clone();
            let banner_text = format!("JOIN {} FOR MORE", rng.range(100, 1000));
            let enc = t.apply(&photo.image, &banner_text);
            if i % constructs.len() == 1 {
                rng.shuffle(&mut constructs);
            }
            let (snippet, image) = if i == 0 {
                let uri = format!(
                    "data:{};base64,{}",
                    enc.content_type,
                    base64::engine::general_purpose::STANDARD.encode(&enc.bytes)
                );
                (
                    format!("<p>preview:</p><img src=\"{uri}\" alt=\"preview\">"),
                    None,
                )
            } else {
                let construct = constructs[i % constructs.len()];
                let host = if construct == "cross-site" && page.site != GALLERY {
                    GALLERY
                } else {
                    page.site
                };
                let loc = self.add_image(&mut rng, host, enc);
                let rel = relative(&page.path, &loc.path);
                let snippet = match construct {
                    "img-relative" => format!("<img src=\"{rel}\" alt=\"pic\">"),
                    "img-root" => format!("<p><img alt=\"scan\" src=\"{}\"></p>", loc.path),
                    "img-absolute" | "cross-site" => {
                        format!("<img src=\"{}\" alt=\"photo\" loading=\"lazy\">", loc.placeholder_url())
                    }
                    "srcset" => {
                        let small = rng.pick(photos);
                        let small_url = if page.site == GALLERY {
                            relative(&page.path, &small.path)
                        } else {
                            small.placeholder_url()
                        };
                        format!(
                            "<img src=\"{small_url}\" srcset=\"{small_url} 1x, {rel} 2x\" alt=\"hd\">"
                        )
                    }
                    _ => format!(
                        "<div class=\"hero\" style=\"background-image: url('{rel}'); height: 240px\"></div>"
                    ),
                };
                (snippet, Some(loc))
            };
            let body = &mut self.page(&page).body;
            let at = 1.min(body.len());
            body.insert(at, snippet);
            leaks.push(LeakRecord {
                page,
                image,
                label: photo.label.clone(),
                transform: t.name(),
                expect_dct256: t.expect_dct256(),
            });
        }
        leaks
    }

    fn plant_decoys(
        &mut self,
        stolen_norm: &BTreeSet<String>,
        threads: &[Loc],
        listings: &[Loc],
        albums: &[Loc],
    ) -> Vec<DecoyRecord> {
        let mut rng = self.rng("decoys");
        let mut pages: Vec<Loc> = Vec::new();
        for (pool, n) in [(threads, 6), (listings, 4), (albums, 5)] {
            let mut p = pool.to_vec();
            rng.shuffle(&mut p);
            pages.extend(p.into_iter().take(n));
        }
        rng.shuffle(&mut pages);
        let mut kinds: Vec<&str> = Vec::new();
        kinds.extend(["same-camera-other-car"; 7]);
        kinds.extend(["unseen-camera"; 4]);
        kinds.extend(["unrelated"; 4]);
        let mut decoys = Vec::new();
        for (i, kind) in kinds.iter().enumerate() {
            let img = match *kind {
                "same-camera-other-car" => {
                    let cam = Camera::new(self.seed, i % STOLEN_CAMERAS);
                    let plate = unlisted_plate(&mut rng, stolen_norm);
                    let car = Car::random(&mut rng, &plate);
                    scene::camera_photo(&cam, Some(&car), rng.next_u64())
                }
                "unseen-camera" => {
                    let cam = Camera::new(self.seed, STOLEN_CAMERAS + i);
                    let plate = unlisted_plate(&mut rng, stolen_norm);
                    let car = Car::random(&mut rng, &plate);
                    scene::camera_photo(&cam, Some(&car), rng.next_u64())
                }
                _ => scene::landscape(&mut rng),
            };
            let enc = if i % 2 == 0 {
                transform::jpeg(&img, 80)
            } else {
                transform::png(&img)
            };
            let page = pages[i].clone();
            let loc = self.add_image(&mut rng, page.site, enc);
            let snippet = if i % 5 == 3 {
                format!(
                    "<div style=\"background-image:url({})\" class=\"banner\"></div>",
                    relative(&page.path, &loc.path)
                )
            } else {
                format!(
                    "<img src=\"{}\" alt=\"car\">",
                    relative(&page.path, &loc.path)
                )
            };
            self.page(&page).body.push(snippet);
            decoys.push(DecoyRecord {
                page,
                image: loc,
                kind: kind.to_string(),
            });
        }
        decoys
    }

    fn plant_phrases(
        &mut self,
        threads: &[Loc],
        listings: &[Loc],
        pastes: &[Loc],
        albums: &[Loc],
    ) -> Vec<(Loc, String)> {
        let mut rng = self.rng("phrases");
        let mut pages: Vec<Loc> = Vec::new();
        for (pool, n) in [(threads, 3), (listings, 2), (pastes, 3), (albums, 2)] {
            let mut p = pool.to_vec();
            rng.shuffle(&mut p);
            pages.extend(p.into_iter().take(n));
        }
        let phrases = text::phrases(self.seed, PHRASES);
        let mut out = Vec::new();
        for (loc, phrase) in pages.into_iter().zip(phrases) {
            let snippet = format!(
                "<p>{} {phrase} {}</p>",
                text::sentence(&mut rng),
                text::sentence(&mut rng)
            );
            self.page(&loc).body.push(snippet);
            out.push((loc, phrase));
        }
        out
    }

    /// Absolute links between the sites, as in real link lists and signatures.
    fn cross_links(&mut self, threads: &[Loc], listings: &[Loc], pastes: &[Loc], albums: &[Loc]) {
        let mut rng = self.rng("cross-links");
        let pools = [threads, listings, pastes, albums];
        for (site, pool) in pools.iter().enumerate() {
            for loc in pool.iter() {
                let mut links = Vec::new();
                for _ in 0..rng.range(1, 4) {
                    let other = (site + 1 + rng.below(3) as usize) % 4;
                    let target = rng.pick(pools[other]);
                    links.push(format!(
                        "<a href=\"{}\">{}</a>",
                        target.placeholder_url(),
                        text::title_words(&mut rng, 2)
                    ));
                }
                self.page(loc).body.push(format!(
                    "<p class=\"sig\">mirrors: {}</p>",
                    links.join(" &middot; ")
                ));
            }
        }
    }
}

fn unlisted_plate(rng: &mut Rng, stolen_norm: &BTreeSet<String>) -> String {
    loop {
        let p = text::plate(rng);
        if !stolen_norm.contains(&text::normalize(&p)) {
            return p;
        }
    }
}

/// What the raw pastes planted: pages to list, text leaks, image leaks.
#[derive(Default)]
struct Found {
    pages: Vec<Loc>,
    text_leaks: Vec<TextLeakRecord>,
    leaks: Vec<LeakRecord>,
}

impl Found {
    /// Text leaks on `page`: `(identifier, as written)`.
    fn text(&mut self, page: &Loc, written: impl IntoIterator<Item = (String, String)>) {
        for (identifier, written_as) in written {
            self.text_leaks.push(TextLeakRecord {
                page: page.clone(),
                identifier,
                written_as,
            });
        }
    }
}

/// `n` distinct identifiers picked by `rng`.
fn pick_ids(rng: &mut Rng, identifiers: &[String], n: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    while out.len() < n {
        let id = rng.pick(identifiers).clone();
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// A few (3 to `most`) lines of dump filler.
fn filler_lines(rng: &mut Rng, most: i64) -> Vec<String> {
    (0..rng.range(3, most)).map(|_| dump_line(rng)).collect()
}

/// A stolen photo (picked by `rng`) as a JPEG of `quality` in base64 lines of `width`
/// columns, with its label.
fn base64_photo(
    rng: &mut Rng,
    stolen: &[StolenPhoto],
    quality: u8,
    width: usize,
) -> (String, Vec<String>) {
    let photo = &stolen[rng.below(stolen.len() as u64) as usize];
    let enc = Transform::Jpeg(quality).apply(&photo.image, "");
    let b64 = base64::engine::general_purpose::STANDARD.encode(&enc.bytes);
    let lines = b64
        .as_bytes()
        .chunks(width)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    (photo.label.clone(), lines)
}

/// The image leak of a photo pasted as base64 into the text of `page`.
fn pasted_photo(page: Loc, label: String, transform: &str) -> LeakRecord {
    LeakRecord {
        page,
        image: None,
        label,
        transform: transform.into(),
        expect_dct256: true,
    }
}

/// Lines that are one character off the stolen `id`, or `id` going on into a longer code,
/// in the disguises the leaks use: none may alert.
fn decoy_lines(rng: &mut Rng, id: &str, stolen_norm: &BTreeSet<String>) -> [String; 4] {
    let miss = text::near_miss(rng, id, stolen_norm);
    [
        format!("ref: {}", text::spaced(&miss)),
        format!("ref: {}", text::look_alike(&miss)),
        format!("ref: {} {}", text::spaced(id), rng.below(10)),
        format!("ref: {}-{}", id, rng.below(10)),
    ]
}

fn dump_line(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => format!(
            "{}.{}@mailbox.onion:{}{}",
            rng.pick(text::WORDS),
            rng.pick(text::WORDS),
            rng.pick(text::WORDS),
            rng.range(10, 100)
        ),
        1 => format!(
            "{} = \"{}\"",
            rng.pick(text::WORDS),
            text::title_words(rng, 2).to_lowercase()
        ),
        2 => format!(
            "[{:02}:{:02}] {}",
            rng.below(24),
            rng.below(60),
            text::sentence(rng)
        ),
        _ => (0..4)
            .map(|_| format!("{:08x}", rng.next_u64() as u32))
            .collect::<Vec<_>>()
            .join(" ")
            .replace(|c: char| c.is_ascii_digit(), "f"),
    }
}

/// A relative reference from the page at `from` to `to` (both absolute paths).
pub fn relative(from: &str, to: &str) -> String {
    let from_dir: Vec<&str> = from.split('/').collect();
    let from_dir = &from_dir[1..from_dir.len() - 1];
    let to_parts: Vec<&str> = to.split('/').skip(1).collect();
    let (to_dirs, file) = to_parts.split_at(to_parts.len() - 1);
    let common = from_dir
        .iter()
        .zip(to_dirs)
        .take_while(|(a, b)| a == b)
        .count();
    let mut out = String::new();
    for _ in common..from_dir.len() {
        out.push_str("../");
    }
    for d in &to_dirs[common..] {
        out.push_str(d);
        out.push('/');
    }
    out.push_str(file[0]);
    if out.is_empty() {
        "./".into()
    } else {
        out
    }
}

fn render_page(site: usize, path: &str, page: &Page) -> String {
    let home = relative(path, "/");
    let others: Vec<String> = (0..4)
        .filter(|&s| s != site)
        .map(|s| format!("<a href=\"{}/\">{}</a>", placeholder(s), SITE_NAMES[s]))
        .collect();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n\
<style>body {{ font-family: monospace; background: #111; color: #ccc }} .sig::after {{ content: \"{STYLE_ONLY_TOKEN}\" }}</style>\n\
<script>window.__cfg = {{ token: \"{SCRIPT_ONLY_TOKEN}\", page: \"{path}\" }}; if (1 < 2) {{ document.title += \"\"; }}</script>\n\
</head>\n<body id=\"top\">\n<!-- {COMMENT_ONLY_TOKEN} build 4471 -->\n\
<header><a href=\"{home}\">home</a> | <a href=\"mailto:admin@{name}.onion\">contact</a> | <a href=\"javascript:history.back()\">back</a> | <a href=\"#top\">top</a></header>\n\
<main>\n<h1>{title}</h1>\n{body}\n</main>\n<footer>network: {others}</footer>\n</body>\n</html>\n",
        title = page.title,
        name = SITE_NAMES[site],
        body = page.body.join("\n"),
        others = others.join(" "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_resolve() {
        assert_eq!(relative("/thread/17/", "/img/u/a.jpg"), "../../img/u/a.jpg");
        assert_eq!(
            relative("/listing/3.html", "/img/u/a.jpg"),
            "../img/u/a.jpg"
        );
        assert_eq!(relative("/album/2/", "/album/3/"), "../3/");
        assert_eq!(relative("/", "/s/x/"), "s/x/");
        assert_eq!(relative("/s/x/", "/"), "../../");
        assert_eq!(relative("/", "/"), "./");
    }
}
