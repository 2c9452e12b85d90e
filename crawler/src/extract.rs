//! Extraction of what leakwatch needs from an HTML page: title, visible text, links and
//! every image reference (`img` `src`/`srcset`/`data-src`, `picture > source`, CSS
//! `background-image` in style attributes, and `data:` URIs carried inline).
//!
//! Input is hostile: parsing is bounded in depth and time ([`crate::parse`]), outputs are
//! bounded (text length, number of links and images), the tree is walked iteratively so deep
//! nesting costs no stack, and every slice of an input string is taken on a char boundary.

use base64::Engine;
use ego_tree::iter::Edge;
use scraper::Node;
use std::time::Duration;
use url::Url;

use crate::mirror;
use crate::parse::{parse_bounded, Cut};
use crate::urls;

/// Bounds on what one page may yield.
#[derive(Debug, Clone)]
pub struct ExtractLimits {
    pub max_text_chars: usize,
    pub max_title_chars: usize,
    pub max_links: usize,
    pub max_images: usize,
    pub max_data_uri_bytes: usize,
    /// HTML parsing cost grows with element nesting; elements nested deeper than this (as the
    /// parser builds them) are left out. Browsers stop nesting at 512 too.
    pub max_nesting: u32,
    /// Parsing stops where this much time has passed; what was parsed is kept.
    pub max_parse_time: Duration,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        ExtractLimits {
            max_text_chars: 500_000,
            max_title_chars: 512,
            max_links: 2_000,
            max_images: 500,
            max_data_uri_bytes: 5 * 1024 * 1024,
            max_nesting: 512,
            max_parse_time: Duration::from_secs(5),
        }
    }
}

/// An image carried inside the page as a `data:` URI.
#[derive(Debug, Clone, PartialEq)]
pub struct InlineImage {
    pub mime: String,
    pub bytes: Vec<u8>,
}

/// What a page yields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extracted {
    pub title: String,
    pub text: String,
    pub links: Vec<Url>,
    pub images: Vec<Url>,
    pub inline_images: Vec<InlineImage>,
    /// Links to other onion sites that the page announces as its mirror or new address
    /// ([`crate::mirror`]); also in `links`.
    pub mirrors: Vec<Url>,
    /// The document was cut: it nested deeper than the limit or took too long to parse.
    pub cut: Option<Cut>,
}

/// Extracts from `html` fetched at `page_url`.
pub fn extract(html: &str, page_url: &Url, limits: &ExtractLimits) -> Extracted {
    let parsed = parse_bounded(html, limits.max_nesting, limits.max_parse_time);
    let doc = parsed.html;
    let mut out = Extracted {
        cut: parsed.cut,
        ..Extracted::default()
    };
    let mut base = page_url.clone();
    let mut skip_depth = 0usize; // >0 while inside script/style/etc.
    let mut in_title = false;
    let mut text = String::new();
    let mut title = String::new();
    let mut seen_links = std::collections::HashSet::new();
    let mut seen_images = std::collections::HashSet::new();

    for edge in doc.tree.root().traverse() {
        match edge {
            Edge::Open(node) => match node.value() {
                Node::Element(el) => {
                    let name = el.name();
                    if matches!(name, "script" | "style" | "noscript" | "template" | "svg") {
                        skip_depth += 1;
                    }
                    if name == "title" {
                        in_title = true;
                    }
                    if name == "base" {
                        if let Some(b) = el.attr("href").and_then(|h| urls::normalize(page_url, h))
                        {
                            base = b;
                        }
                    }
                    let mut add_link = |href: &str, out: &mut Extracted| {
                        if out.links.len() < limits.max_links {
                            if let Some(u) = urls::normalize(&base, href) {
                                if seen_links.insert(u.to_string()) {
                                    out.links.push(u);
                                }
                            }
                        }
                    };
                    match name {
                        "a" | "area" => {
                            if let Some(h) = el.attr("href") {
                                add_link(h, &mut out);
                                let anchor = || {
                                    scraper::ElementRef::wrap(node)
                                        .map(|e| {
                                            e.text()
                                                .flat_map(str::chars)
                                                .take(mirror::ANCHOR_CHARS)
                                                .collect::<String>()
                                        })
                                        .unwrap_or_default()
                                };
                                if let Some(m) = other_onion(&base, page_url, h) {
                                    let before = mirror::tail(&text, mirror::CONTEXT_CHARS);
                                    if out.mirrors.len() < mirror::MAX_PER_PAGE
                                        && !out.mirrors.contains(&m)
                                        && mirror::announced(&anchor(), el.attr("title"), before)
                                    {
                                        out.mirrors.push(m);
                                    }
                                }
                            }
                        }
                        "iframe" | "frame" => {
                            if let Some(h) = el.attr("src") {
                                add_link(h, &mut out);
                            }
                        }
                        _ => {}
                    }
                    let mut refs: Vec<&str> = Vec::new();
                    if name == "img" || name == "input" && el.attr("type") == Some("image") {
                        refs.extend(el.attr("src"));
                        refs.extend(el.attr("data-src"));
                    }
                    if name == "img" || name == "source" {
                        for attr in ["srcset", "data-srcset"] {
                            if let Some(s) = el.attr(attr) {
                                refs.extend(srcset_urls(s));
                            }
                        }
                    }
                    if name == "body" || name == "table" || name == "td" {
                        refs.extend(el.attr("background"));
                    }
                    let style_urls = el.attr("style").map(css_urls).unwrap_or_default();
                    refs.extend(style_urls.iter().map(|s| s.as_str()));
                    for r in refs {
                        add_image(r, &base, limits, &mut out, &mut seen_images);
                    }
                }
                Node::Text(t) if skip_depth == 0 => {
                    if in_title {
                        push_collapsed(&mut title, t, limits.max_title_chars);
                    } else {
                        push_collapsed(&mut text, t, limits.max_text_chars);
                    }
                }
                _ => {}
            },
            Edge::Close(node) => {
                if let Node::Element(el) = node.value() {
                    let name = el.name();
                    if matches!(name, "script" | "style" | "noscript" | "template" | "svg") {
                        skip_depth = skip_depth.saturating_sub(1);
                    }
                    if name == "title" {
                        in_title = false;
                    }
                    if is_block(name) && !text.ends_with(' ') && !text.is_empty() {
                        text.push(' ');
                    }
                }
            }
        }
    }
    out.title = title.trim().to_string();
    out.text = text.trim().to_string();
    out
}

/// `href` when it names an onion site other than the page's own.
fn other_onion(base: &Url, page_url: &Url, href: &str) -> Option<Url> {
    let u = urls::normalize(base, href)?;
    (urls::is_onion(&u) && u.host_str() != page_url.host_str()).then_some(u)
}

fn add_image(
    r: &str,
    base: &Url,
    limits: &ExtractLimits,
    out: &mut Extracted,
    seen: &mut std::collections::HashSet<String>,
) {
    if out.images.len() + out.inline_images.len() >= limits.max_images {
        return;
    }
    let r = r.trim();
    if r.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("data:")) {
        if let Some(img) = parse_data_uri(r, limits.max_data_uri_bytes) {
            if seen.insert(schema::sha256_hex(&img.bytes)) {
                out.inline_images.push(img);
            }
        }
        return;
    }
    if let Some(u) = urls::normalize(base, r) {
        if seen.insert(u.to_string()) {
            out.images.push(u);
        }
    }
}

/// Parses `data:image/...;base64,...`; only images, only base64, bounded size.
pub fn parse_data_uri(uri: &str, max_bytes: usize) -> Option<InlineImage> {
    let rest = uri.get(5..)?;
    let (meta, data) = rest.split_once(',')?;
    let mut parts = meta.split(';');
    let mime = parts.next()?.trim().to_ascii_lowercase();
    if !mime.starts_with("image/") || !parts.any(|p| p.trim().eq_ignore_ascii_case("base64")) {
        return None;
    }
    if data.len() / 4 * 3 > max_bytes {
        return None;
    }
    let cleaned: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cleaned.trim_end_matches('='))
        .or_else(|_| {
            base64::engine::general_purpose::STANDARD_NO_PAD.decode(cleaned.trim_end_matches('='))
        })
        .ok()?;
    Some(InlineImage { mime, bytes })
}

/// URLs of a `srcset` attribute (`a.jpg 1x, b.jpg 640w`).
fn srcset_urls(s: &str) -> Vec<&str> {
    s.split(',')
        .filter_map(|c| c.split_whitespace().next())
        .filter(|u| !u.is_empty())
        .take(32)
        .collect()
}

/// `url(...)` references in a style attribute.
fn css_urls(style: &str) -> Vec<String> {
    let mut out = Vec::new();
    let lower = style.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = lower[from..].find("url(") {
        let start = from + pos + 4;
        let Some(end) = style[start..].find(')') else {
            break;
        };
        let inner = style[start..start + end]
            .trim()
            .trim_matches(|c| c == '"' || c == '\'');
        out.push(inner.to_string());
        from = start + end;
        if out.len() >= 16 {
            break;
        }
    }
    out
}

/// Appends the words of `s` to `out`, one space apart, while `out` stays within `max` bytes.
pub(crate) fn push_collapsed(out: &mut String, s: &str, max: usize) {
    for word in s.split_whitespace() {
        if out.len() + word.len() + 1 > max {
            return;
        }
        if !out.is_empty() && !out.ends_with(' ') {
            out.push(' ');
        }
        out.push_str(word);
    }
    if s.ends_with(char::is_whitespace) && !out.is_empty() && !out.ends_with(' ') && out.len() < max
    {
        out.push(' ');
    }
}

fn is_block(name: &str) -> bool {
    matches!(
        name,
        "p" | "div"
            | "br"
            | "li"
            | "tr"
            | "td"
            | "th"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "pre"
            | "section"
            | "article"
            | "header"
            | "footer"
            | "blockquote"
            | "table"
            | "ul"
            | "ol"
            | "title"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(html: &str) -> Extracted {
        extract(
            html,
            &Url::parse("http://site.test/dir/page.html").unwrap(),
            &ExtractLimits::default(),
        )
    }

    #[test]
    fn a_link_announced_as_a_mirror_or_new_address_is_flagged() {
        let a = "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion";
        let b = "xa4r2iadxm55fbnqgwwi5mymqdcofiu3w6rpbtqn7b2dyn7mgwj64jyd.onion";
        let onion_page = Url::parse(&format!("http://{a}/news")).unwrap();
        let e = extract(
            &format!(
                "<p>Seizure rumours. Our new address:</p><p><a href='http://{b}/'>{b}</a></p>\
                 <a href='http://{b}/market' title='Official link'>shop</a>\
                 <a href='http://{a}/mirror'>our own mirror page</a>\
                 <a href='http://other.test/'>mirror of a clearnet site</a>"
            ),
            &onion_page,
            &ExtractLimits::default(),
        );
        let got: Vec<&str> = e.mirrors.iter().map(Url::as_str).collect();
        assert_eq!(got, [format!("http://{b}/"), format!("http://{b}/market")]);
        // A link to another onion with nothing said about it is only a link.
        let plain = extract(
            &format!("<p>Recommended:</p><a href='http://{b}/'>a market</a>"),
            &onion_page,
            &ExtractLimits::default(),
        );
        assert!(plain.mirrors.is_empty() && plain.links.len() == 1);
    }

    #[test]
    fn title_text_without_script_and_style() {
        let e = page(
            "<html><head><title> Dump &amp; more </title><style>.x{color:red}</style>\
             <script>var SCRIPTONLY = 1;</script></head><body><p>hello</p><p>world</p>\
             <noscript>nojs</noscript></body></html>",
        );
        assert_eq!(e.title, "Dump & more");
        assert_eq!(e.text, "hello world");
    }

    #[test]
    fn links_and_every_kind_of_image() {
        let png = base64::engine::general_purpose::STANDARD.encode(b"\x89PNG\r\n\x1a\nabc");
        let e = page(&format!(
            "<a href='x.html#f'>x</a><a href='./x.html'>dup</a><a href='mailto:a@b'>m</a>\
             <img src='/i/a.jpg'><img srcset='b.jpg 1x, /c.jpg 2x'>\
             <div style=\"background-image: url('bg.png')\"></div>\
             <img src='data:image/png;base64,{png}'><img src='data:text/html;base64,PGI+'>"
        ));
        let links: Vec<_> = e.links.iter().map(|u| u.as_str()).collect();
        assert_eq!(links, ["http://site.test/dir/x.html"]);
        let imgs: Vec<_> = e.images.iter().map(|u| u.as_str()).collect();
        assert_eq!(
            imgs,
            [
                "http://site.test/i/a.jpg",
                "http://site.test/dir/b.jpg",
                "http://site.test/c.jpg",
                "http://site.test/dir/bg.png"
            ]
        );
        assert_eq!(e.inline_images.len(), 1);
        assert_eq!(e.inline_images[0].mime, "image/png");
        assert!(e.inline_images[0].bytes.starts_with(b"\x89PNG"));
    }

    #[test]
    fn base_href_is_respected() {
        let e = page("<head><base href='http://other.test/b/'></head><a href='y'>y</a>");
        assert_eq!(e.links[0].as_str(), "http://other.test/b/y");
    }

    #[test]
    fn hostile_pages_are_bounded() {
        let deep = "<div>".repeat(10) + "shallow text" + &"<div>".repeat(100_000) + "deep text";
        let e = page(&deep);
        assert_eq!(e.cut, Some(Cut::TooDeep));
        assert!(e.text.contains("shallow text") && !e.text.contains("deep text"));
        let ordinary = "<ul>".to_string() + &"<li><p>item".repeat(50_000) + "</ul>";
        let e = page(&ordinary);
        assert!(e.cut.is_none() && e.text.ends_with("item"));
        let many: String = (0..5000)
            .map(|i| format!("<a href='/p{i}'>l</a>"))
            .collect();
        assert_eq!(page(&many).links.len(), ExtractLimits::default().max_links);
        let huge = "word ".repeat(300_000);
        assert!(page(&huge).text.len() <= ExtractLimits::default().max_text_chars);
    }

    #[test]
    fn non_ascii_image_names_do_not_panic() {
        // The fifth byte of each falls inside a multi-byte character.
        for name in [
            "фото.jpg",
            "写真の車.png",
            "a😀b.jpg",
            "abcé.gif",
            "ab€.jpg",
        ] {
            let e = page(&format!(
                "<p>text</p><img src='{name}'><img srcset='{name} 2x'>\
                 <div style=\"background:url({name})\"></div><a href='/next'>n</a>"
            ));
            assert_eq!(e.images.len(), 1, "{name}");
            assert_eq!((e.text.as_str(), e.links.len()), ("text n", 1), "{name}");
        }
        assert_eq!(page("<img src='DATA:image/png;base64,'>").images.len(), 0);
    }
}
