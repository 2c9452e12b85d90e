//! The XSS site: pages built to attack whoever later *shows* what was crawled.
//!
//! Everything a crawler stores from these pages — titles, visible text, link and image URLs
//! (paths, file names and query strings), and the labels of the stolen photos they carry —
//! holds script and markup payloads: `<script>`, attribute break-outs with `on*` handlers,
//! `</textarea>` and `</title>` escapes, `javascript:` URLs, template syntax (`{{7*7}}`,
//! `{% raw %}`), frames, prefetch links, meta refreshes, CSS `url()` and `@import`, and
//! Unicode tricks (right-to-left override, zero-width and full-width characters). A viewer
//! that renders any of it as markup instead of text shows up as a script, an event handler
//! or a request to `evil.example` in a browser; the console's browser test walks every
//! page and alert listed in [`XssTruth`].
//!
//! The site is separate from the normal sites and from the hostile one, so it changes none
//! of their page counts. Its pages carry two stolen photos of their own (not part of the
//! world's stolen set) whose labels are payloads: write them with
//! [`XssSite::write_stolen_set`] and import them to get image alerts whose label, image URL
//! and page URL all carry payloads. Given an identifier, one page shows it, for a text
//! alert on a payload URL.
//!
//! Payloads that name a remote host appear only as text (entity-escaped in the HTML), never
//! as live markup: a crawler follows frames and fetches CSS images, and nothing here may make
//! it contact a host off this machine. Live markup on the pages refers to this site only.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use url::Url;

use crate::rng::Rng;
use crate::{scene, server, transform, Error};

/// The payloads: one page each, in its title, text, image `alt`, link text, and in its
/// own path and its image's file name.
pub const PAYLOADS: &[&str] = &[
    "<script>document.title='pwned'</script>",
    "\"><img src=x onerror=fetch('http://evil.example/img')>",
    "'><svg onload=alert('svg')>",
    "</textarea><script>alert('textarea')</script>",
    "</pre><script>document.title='pwned-pre'</script>",
    "</title><script>alert('title')</script>",
    "--><script>alert('comment')</script><!--",
    "{{7*7}} {% raw %}{{ csrf }}{% endraw %} {# hidden #} ${7*7}",
    "<iframe src=//evil.example/frame></iframe>",
    "<link rel=prefetch href=//evil.example/prefetch>",
    "<meta http-equiv=refresh content='0;url=//evil.example/refresh'>",
    "<div style=\"background:url(//evil.example/bg.png)\">css</div>",
    "<style>@import url(//evil.example/x.css);</style>",
    "<base href=//evil.example/>",
    "<a href=\"javascript:alert('js')\">click</a>",
    "<form action=//evil.example/form><button formaction=javascript:alert(1)>go</button></form>",
    "<object data=//evil.example/obj></object><embed src=//evil.example/embed>",
    "\u{202e}gpj.exe <b onclick=alert(1)>\u{200b}bold</b> \u{ff1c}script\u{ff1e}alert(1)\u{ff1c}/script\u{ff1e}",
];

/// Payloads the pages also carry as live markup (each refers to nothing off this site).
const LIVE: &[&str] = &[
    "<script>document.title='pwned'</script>",
    "<img src=x onerror=alert('live')>",
    "<svg onload=alert('live')><circle r=1></circle></svg>",
];

/// Labels of the XSS site's own stolen photos (file stems of the stolen set written by
/// [`XssSite::write_stolen_set`]: no `/`, so they are valid file names).
pub const PHOTO_LABELS: [&str; 2] = [
    "\"><img src=x onerror=alert('label')>{{7*7}}",
    // No parenthesis: this one is a CSS `url()` too, which ends at the first `)`.
    "<svg onload=alert`1`>\u{202e}gnp.exe",
];

/// A page of the XSS site, as a crawler records it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct XssPage {
    /// Absolute URL, normalised as a crawler resolves the link to it (payload characters
    /// percent-encoded where the URL syntax requires).
    pub url: String,
    /// A word found on this page only: search for it to find the page.
    pub word: String,
    /// The page's title once its entities are decoded, payload included.
    pub title: String,
    /// Strings of the page's visible text (decoded) that a viewer must show as text.
    pub shows: Vec<String>,
}

/// A stolen photo on the XSS site.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct XssPhoto {
    pub label: String,
    /// Where the image is served (path and file name carry payloads).
    pub image_url: String,
    /// The page that shows it.
    pub page_url: String,
}

/// A watched identifier on a page of the XSS site.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct XssTextLeak {
    pub page_url: String,
    pub identifier: String,
}

/// What the XSS site holds.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct XssTruth {
    /// Root URL with a trailing slash: the seed.
    pub base_url: String,
    /// Every page reachable from the root, the root first.
    pub pages: Vec<XssPage>,
    pub photos: Vec<XssPhoto>,
    pub text_leak: Option<XssTextLeak>,
    /// [`PAYLOADS`], for whoever checks their rendering.
    pub payloads: Vec<String>,
}

/// The running XSS site.
pub struct XssSite {
    truth: XssTruth,
    photos: Vec<image::RgbImage>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
}

/// HTML-escapes text and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
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

/// A payload as one piece of a URL path: only what would end the path (`?`, `#`) or turn
/// into a separator (`\`) is encoded; the rest stays as written, for the URL parser to
/// encode or keep.
fn path_piece(s: &str) -> String {
    s.replace('%', "%25")
        .replace('?', "%3F")
        .replace('#', "%23")
        .replace('\\', "%5C")
}

/// A word of letters only (tokenisers keep it whole) unique to page `i`.
fn word(i: usize) -> String {
    let a = (b'a' + (i / 26) as u8) as char;
    let b = (b'a' + (i % 26) as u8) as char;
    format!("xssmark{a}{b}")
}

fn page_html(title: &str, body: &str) -> Vec<u8> {
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body>{body}</body></html>",
        esc(title)
    )
    .into_bytes()
}

/// Resolves `href` against `base` as a crawler does (no fragment, no empty query).
fn resolve(base: &Url, href: &str) -> Url {
    let mut u = base.join(href).expect("testbed hrefs resolve");
    u.set_fragment(None);
    if u.query() == Some("") {
        u.set_query(None);
    }
    u
}

struct Built {
    files: BTreeMap<String, (&'static str, Vec<u8>)>,
    truth: XssTruth,
    photos: Vec<image::RgbImage>,
}

/// The site's files, the links of its index and the truth of its pages, as they are added.
#[derive(Default)]
struct Site {
    files: BTreeMap<String, (&'static str, Vec<u8>)>,
    links: Vec<String>,
    pages: Vec<XssPage>,
}

impl Site {
    /// Serves an HTML page at `url`, linked from the index as `href`, showing `shows`.
    fn page(
        &mut self,
        href: String,
        url: &Url,
        title: String,
        body: &str,
        word: String,
        shows: String,
    ) {
        self.files.insert(
            url.path().to_string(),
            ("text/html; charset=utf-8", page_html(&title, body)),
        );
        self.links.push(href);
        self.pages.push(XssPage {
            url: url.to_string(),
            word,
            title,
            shows: vec![shows],
        });
    }
}

/// Builds every page and image for a site at `base`.
fn build(base: &Url, identifier: Option<&str>) -> Built {
    let mut site = Site::default();
    let filler = transform::jpeg(&scene::landscape(&mut Rng::new(0x7e57_0555)), 80).bytes;
    let live: String = LIVE.concat();

    for (i, payload) in PAYLOADS.iter().enumerate() {
        let word = word(i);
        let href = format!("/p/{i}/{}.html", path_piece(payload));
        let url = resolve(base, &href);
        let img_href = format!("/img/{i}/{}.jpg", path_piece(payload));
        let img = resolve(base, &img_href);
        site.files
            .insert(img.path().to_string(), ("image/jpeg", filler.clone()));
        let title = format!("{payload} {word}");
        let body = format!(
            "<h1>{p}</h1><p>{word} shows {p} as text {word}</p>{live}\
             <p><img src=\"{ih}\" alt=\"{p}\" title=\"{p}\"></p>\
             <p><a href=\"/\" title=\"{p}\">{p}</a></p><textarea>{p}</textarea>",
            p = esc(payload),
            ih = esc(&img_href),
        );
        let shows = format!("{word} shows {payload} as text {word}");
        site.page(href, &url, title, &body, word, shows);
    }

    // Two stolen photos of this site's own, with payload labels and file names: one as an
    // `<img>`, one as a CSS background.
    let photos: Vec<image::RgbImage> = (0..PHOTO_LABELS.len())
        .map(|i| crate::breach_photo(0x7e57_0555, i))
        .collect();
    let mut photo_truth = Vec::new();
    let photo_pages = [
        (
            "/photos/\"><svg onload=alert('page')>/index.html",
            "<img src=x onerror=alert('photo')>",
        ),
        (
            "/photos/'onmouseover='alert(1)'/{{7*7}}.html",
            "</textarea><script>alert('photo')</script>",
        ),
    ];
    for (n, ((page_path, title_payload), label)) in photo_pages.iter().zip(PHOTO_LABELS).enumerate()
    {
        let i = PAYLOADS.len() + n;
        let word = word(i);
        let href = path_piece(page_path);
        let url = resolve(base, &href);
        let img_href = format!("/photos/{n}/{}.jpg", path_piece(label));
        let img = resolve(base, &img_href);
        site.files.insert(
            img.path().to_string(),
            ("image/jpeg", transform::jpeg(&photos[n], 88).bytes),
        );
        let shown = format!("{word} camera dump {title_payload} {word}");
        let picture = if n == 0 {
            format!("<img src=\"{}\" alt=\"{}\">", esc(&img_href), esc(label))
        } else {
            format!(
                "<div style=\"background-image:url(&quot;{}&quot;)\">{}</div>",
                esc(&img_href),
                esc(label)
            )
        };
        let title = format!("{title_payload} {word}");
        let body = format!("<p>{}</p>{picture}{live}", esc(&shown));
        site.page(href, &url, title, &body, word, shown);
        photo_truth.push(XssPhoto {
            label: label.to_string(),
            image_url: img.to_string(),
            page_url: url.to_string(),
        });
    }

    // A watched identifier on a payload URL, for a text alert.
    let mut text_leak = None;
    if let Some(id) = identifier {
        let i = PAYLOADS.len() + PHOTO_LABELS.len();
        let word = word(i);
        let href = "/ids/'onmouseover='alert(1)'/\"><script>alert(1)</script>.html".to_string();
        let href = path_piece(&href);
        let url = resolve(base, &href);
        let title_payload = "</title><script>alert('plate')</script>";
        let title = format!("{title_payload} {word}");
        let body = format!(
            "<p>{word} plate seen at the crossing: {} {} {word}</p>",
            esc(id),
            esc("<img src=x onerror=alert('id')>")
        );
        let shows = "<img src=x onerror=alert('id')>".to_string();
        site.page(href, &url, title, &body, word, shows);
        text_leak = Some(XssTextLeak {
            page_url: url.to_string(),
            identifier: id.to_string(),
        });
    }

    // A payload in a query string (the server ignores queries, as many real sites do).
    {
        let i = PAYLOADS.len() + PHOTO_LABELS.len() + 1;
        let word = word(i);
        let href = "/q.html?x=\"><script>alert('query')</script>&y='onfocus='alert(1)".to_string();
        let url = resolve(base, &href);
        let title = format!("query payload {word}");
        let body = format!("<p>{word} reached through a query string {word}</p>");
        let shows = format!("{word} reached through a query string {word}");
        site.page(href, &url, title, &body, word, shows);
    }

    // The root: every page, plus links no crawler may follow.
    let word = word(PAYLOADS.len() + PHOTO_LABELS.len() + 2);
    let mut body = format!("<h1>payload index</h1><p>{word} index of payload pages {word}</p><ul>");
    let Site {
        mut files,
        links,
        mut pages,
    } = site;
    for (href, page) in links.iter().zip(&pages) {
        body.push_str(&format!(
            "<li><a href=\"{}\">{}</a></li>",
            esc(href),
            esc(&page.title)
        ));
    }
    for bad in [
        "javascript:alert('index')",
        "data:text/html,<script>alert('data')</script>",
        "vbscript:msgbox(1)",
        "jav&#x09;ascript:alert(1)",
    ] {
        body.push_str(&format!(
            "<li><a href=\"{}\">not followed</a></li>",
            esc(bad)
        ));
    }
    body.push_str("</ul>");
    let title = format!("payload index {word}");
    files.insert(
        "/".to_string(),
        ("text/html; charset=utf-8", page_html(&title, &body)),
    );
    pages.insert(
        0,
        XssPage {
            url: base.to_string(),
            word: word.clone(),
            title,
            shows: vec![format!("{word} index of payload pages {word}")],
        },
    );

    Built {
        files,
        truth: XssTruth {
            base_url: base.to_string(),
            pages,
            photos: photo_truth,
            text_leak,
            payloads: PAYLOADS.iter().map(|p| p.to_string()).collect(),
        },
        photos,
    }
}

/// Serves the XSS site on a free port of `bind`. `identifier`, when given, is written on one
/// page (a watched identifier there raises a text alert).
pub async fn start(bind: IpAddr, identifier: Option<&str>) -> Result<XssSite, Error> {
    let addr = SocketAddr::new(bind, 0);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| Error::Bind { addr, source })?;
    let base = Url::parse(&format!("http://{local}/")).expect("a socket address is a URL host");
    let identifier = identifier.map(str::to_string);
    let built = tokio::task::spawn_blocking(move || build(&base, identifier.as_deref()))
        .await
        .map_err(Error::Generate)?;
    let router = server::site_router(built.files);
    let (shutdown, mut signal) = watch::channel(false);
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = signal.wait_for(|stop| *stop).await;
            })
            .await
    });
    Ok(XssSite {
        truth: built.truth,
        photos: built.photos,
        shutdown,
        server,
    })
}

impl XssSite {
    /// Root URL, with a trailing slash: the seed of a crawl.
    pub fn url(&self) -> &str {
        &self.truth.base_url
    }

    /// What the site holds.
    pub fn truth(&self) -> &XssTruth {
        &self.truth
    }

    /// Writes the site's stolen photos as `<label>.png` into `dir` (created if missing).
    pub fn write_stolen_set(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir)?;
        self.photos
            .iter()
            .zip(PHOTO_LABELS)
            .map(|(img, label)| {
                let path = dir.join(format!("{label}.png"));
                std::fs::write(&path, transform::png(img).bytes)?;
                Ok(path)
            })
            .collect()
    }

    /// Stops the site.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if tokio::time::timeout(Duration::from_secs(2), &mut self.server)
            .await
            .is_err()
        {
            self.server.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(base: &str, path_and_query: &str) -> (u16, String, Vec<u8>) {
        use std::io::{Read, Write};
        let host = base.trim_start_matches("http://").trim_end_matches('/');
        let mut s = std::net::TcpStream::connect(host).unwrap();
        write!(
            s,
            "GET {path_and_query} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        (status, head, raw[split + 4..].to_vec())
    }

    fn path_and_query(u: &str) -> String {
        let u = Url::parse(u).unwrap();
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_listed_page_and_photo_is_served_with_its_payloads() {
        let site = start("127.0.0.1".parse().unwrap(), Some("KX7-4821"))
            .await
            .unwrap();
        let t = site.truth().clone();
        let base = t.base_url.clone();
        assert_eq!(t.pages.len(), PAYLOADS.len() + PHOTO_LABELS.len() + 3);
        let mut words = std::collections::HashSet::new();
        for p in &t.pages {
            assert!(words.insert(p.word.clone()), "word {} twice", p.word);
            let (status, head, body) = tokio::task::spawn_blocking({
                let (b, q) = (base.clone(), path_and_query(&p.url));
                move || get(&b, &q)
            })
            .await
            .unwrap();
            assert_eq!(status, 200, "{}: {head}", p.url);
            let html = String::from_utf8(body).unwrap();
            assert!(
                html.contains(&esc(&p.title)),
                "{}: title not in {html}",
                p.url
            );
            assert!(html.contains(&p.word), "{}", p.url);
            // Remote hosts appear only escaped, never in live markup. Text and attribute
            // values are escaped, so every raw `<` opens a real tag, and every URL-bearing
            // attribute the site writes is quoted, so each `="` starts a value.
            for tag in html.split('<').skip(1) {
                let tag = tag.split('>').next().unwrap();
                for (i, part) in tag.split("=\"").enumerate().skip(1) {
                    let name = tag.split("=\"").nth(i - 1).unwrap();
                    let name = name.rsplit(' ').next().unwrap();
                    let value = part.split('"').next().unwrap();
                    let remote = value.starts_with("//")
                        || value.starts_with("http:")
                        || value.starts_with("https:")
                        || name == "style" && value.contains("//");
                    assert!(!remote, "{}: live <{tag}> in {html}", p.url);
                }
            }
        }
        // Every payload is in a title and in a URL, percent-encoded where URLs need it.
        for payload in PAYLOADS {
            assert!(
                t.pages.iter().any(|p| p.title.starts_with(payload)),
                "{payload}"
            );
        }
        assert!(t.pages.iter().any(|p| p.url.contains("%3Cscript%3E")));
        assert!(t.pages.iter().any(|p| p.url.contains("'onmouseover='")));
        assert!(t.pages.iter().any(|p| p.url.contains("?x=")));
        for photo in &t.photos {
            let (status, head, body) = tokio::task::spawn_blocking({
                let (b, q) = (base.clone(), path_and_query(&photo.image_url));
                move || get(&b, &q)
            })
            .await
            .unwrap();
            assert_eq!(status, 200, "{}: {head}", photo.image_url);
            assert!(head.to_ascii_lowercase().contains("image/jpeg"), "{head}");
            assert!(image::load_from_memory(&body).is_ok());
        }
        let leak = t.text_leak.as_ref().unwrap();
        assert!(leak.page_url.contains("'onmouseover='"), "{leak:?}");

        let dir = tempfile::tempdir().unwrap();
        let written = site.write_stolen_set(dir.path()).unwrap();
        let stems: Vec<String> = written
            .iter()
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(stems, PHOTO_LABELS);
        site.shutdown().await;
    }
}
