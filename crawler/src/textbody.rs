//! Extraction from text bodies: a paste site's raw view (`text/plain`), CSV, JSON, markdown.
//! Stolen data surfaces there first, as lists of identifiers, links and photos pasted as
//! base64. A text body yields its text (whitespace collapsed, bounded), the URLs and onion
//! addresses written in it (image URLs as images), and the images hidden in it as base64.
//!
//! Base64 hides in many wrappers: a bare block wrapped at 64 or 76 columns, a `data:` URI, a
//! JSON string with `\n` and `\/` escapes. [`base64_images`] reads any run of long base64
//! words as one block, decodes it when it is within the per-image bound, and keeps what starts
//! like an image; blocks that are too large are counted and skipped undecoded. HTML pages get
//! the same scan over their visible text.

use std::borrow::Cow;

use base64::Engine;
use url::Url;

use crate::extract::{push_collapsed, ExtractLimits, Extracted, InlineImage};
use crate::fetch::image_magic;
use crate::urls;

/// Shortest word taken as a line of a base64 block (wrapped blocks use 64 or 76 columns).
const MIN_LINE: usize = 40;
/// Shortest block worth decoding (a tiny image is a few hundred bytes).
const MIN_BLOCK: usize = 128;
/// Most candidate blocks looked at in one text.
const MAX_BLOCKS: usize = 256;

/// What the base64 scan of a text found.
#[derive(Debug, Default, PartialEq)]
pub struct Hidden {
    pub images: Vec<InlineImage>,
    /// Blocks longer than the per-image bound, skipped undecoded.
    pub too_large: usize,
}

/// Extracts from a text body fetched at `page_url`.
pub fn extract_text(body: &str, page_url: &Url, limits: &ExtractLimits) -> (Extracted, Hidden) {
    let mut out = Extracted::default();
    let hidden = base64_images(body, limits.max_data_uri_bytes, limits.max_images);
    let mut text = String::new();
    push_collapsed(&mut text, body, limits.max_text_chars);
    out.text = text.trim().to_string();
    let mut seen = std::collections::HashSet::new();
    for found in written_urls(body, limits.max_links + limits.max_images) {
        let Some(u) = urls::normalize(page_url, &found) else {
            continue;
        };
        if !seen.insert(u.to_string()) {
            continue;
        }
        if looks_like_image(&u) {
            if out.images.len() < limits.max_images {
                out.images.push(u);
            }
        } else if out.links.len() < limits.max_links {
            out.links.push(u);
        }
    }
    (out, hidden)
}

fn looks_like_image(u: &Url) -> bool {
    let path = u.path().to_ascii_lowercase();
    [".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp"]
        .iter()
        .any(|ext| path.ends_with(ext))
}

/// `http(s)://…` URLs and bare v3 onion addresses written in `text`, at most `max`.
pub fn written_urls(text: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    for word in text.split(|c: char| c.is_whitespace() || "\"'<>()[]{}`|\\".contains(c)) {
        if out.len() >= max {
            break;
        }
        let word = word.trim_end_matches(['.', ',', ';', ':', '!', '?']);
        // ASCII lowercasing keeps byte offsets, so `at` is a char boundary of `word`.
        let lower = word.to_ascii_lowercase();
        if let Some(at) = lower.find("http://").or_else(|| lower.find("https://")) {
            out.push(word[at..].to_string());
        } else if let Some(host) = bare_onion(word) {
            out.push(format!("http://{host}/"));
        }
    }
    out
}

/// `word` when it is a v3 onion host (`…56 base32….onion`, maybe with a path).
fn bare_onion(word: &str) -> Option<String> {
    let lower = word.to_ascii_lowercase();
    let end = lower.find(".onion")?;
    let label = &lower[..end];
    let host = label.rsplit('.').next().unwrap_or(label);
    (host.len() == crate::onion::V3_LEN
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)))
    .then(|| format!("{host}.onion"))
}

fn is_b64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=' || b == b'-' || b == b'_'
}

/// A word as base64: JSON escapes undone, wrappers (`data:…,`, quotes, commas) stripped.
/// `None` when what is left is not base64.
/// Allocates only for a word with JSON's `\/` escapes: this runs over every word of every
/// page's text.
fn b64_word(word: &str) -> Option<Cow<'_, str>> {
    let word = match word.rfind("base64,") {
        Some(i) => &word[i + 7..],
        None => word,
    };
    let w = word.trim_matches(|c: char| "\"',;:()[]{}".contains(c));
    let w = if w.contains("\\/") {
        Cow::Owned(w.replace("\\/", "/"))
    } else {
        Cow::Borrowed(w)
    };
    (!w.is_empty() && w.bytes().all(is_b64)).then_some(w)
}

/// A base64 block being read: its characters, and where its last word started (a block that
/// ran on into a word of prose is decoded without that word).
#[derive(Default)]
struct Block {
    data: String,
    last_word: usize,
    oversize: bool,
}

impl Block {
    fn push(&mut self, word: &str, max_chars: usize) {
        if self.oversize || self.data.len() + word.len() > max_chars {
            self.oversize = true;
            self.data.clear();
        } else {
            self.last_word = self.data.len();
            self.data.push_str(word);
        }
    }

    fn is_open(&self) -> bool {
        !self.data.is_empty() || self.oversize
    }

    /// Ends the block: its image, if any, goes to `hidden`.
    fn flush(&mut self, hidden: &mut Hidden, max_images: usize) {
        if self.oversize {
            hidden.too_large += 1;
        } else if self.data.len() >= MIN_BLOCK && hidden.images.len() < max_images {
            let img =
                decode_image(&self.data).or_else(|| decode_image(&self.data[..self.last_word]));
            if let Some(img) = img.filter(|i| !hidden.images.contains(i)) {
                hidden.images.push(img);
            }
        }
        *self = Block::default();
    }
}

/// Images hidden as base64 in `text`: each at most `max_bytes` decoded, at most `max_images`.
pub fn base64_images(text: &str, max_bytes: usize, max_images: usize) -> Hidden {
    let mut hidden = Hidden::default();
    let max_chars = max_bytes.saturating_mul(4) / 3 + 4;
    let mut block = Block::default();
    let mut blocks = 0;
    // JSON strings carry line breaks as `\n`: read them as the breaks they stand for.
    let words = text
        .split(|c: char| c.is_whitespace())
        .flat_map(|w| w.split("\\n"))
        .flat_map(|w| w.split("\\r"))
        .filter(|w| !w.is_empty());
    for word in words {
        if blocks >= MAX_BLOCKS {
            break;
        }
        match b64_word(word) {
            Some(w) if w.len() >= MIN_LINE || block.is_open() && w.len() >= 4 => {
                block.push(&w, max_chars);
                // A short word ends a block: the last line of a wrapped block.
                if w.len() < MIN_LINE {
                    block.flush(&mut hidden, max_images);
                    blocks += 1;
                }
            }
            _ if block.is_open() => {
                block.flush(&mut hidden, max_images);
                blocks += 1;
            }
            _ => {}
        }
    }
    if block.is_open() {
        block.flush(&mut hidden, max_images);
    }
    hidden
}

/// Decodes a block (standard or URL-safe alphabet, padded or not) when it is an image.
fn decode_image(block: &str) -> Option<InlineImage> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let data = block.trim_end_matches('=');
    // Padding inside a block ends the first image: take what precedes it.
    let data = data.split('=').next().unwrap_or(data);
    // A length of 1 mod 4 has a stray character at the end.
    let data = &data[..data.len() - usize::from(data.len() % 4 == 1)];
    let bytes = if data.contains(['-', '_']) {
        URL_SAFE_NO_PAD.decode(data).ok()?
    } else {
        STANDARD_NO_PAD.decode(data).ok()?
    };
    if !image_magic(&bytes) {
        return None;
    }
    Some(InlineImage {
        mime: mime_of(&bytes).to_string(),
        bytes,
    })
}

/// The MIME type of an image by its magic bytes.
pub fn mime_of(b: &[u8]) -> &'static str {
    if b.starts_with(&[0xff, 0xd8, 0xff]) {
        "image/jpeg"
    } else if b.starts_with(b"\x89PNG") {
        "image/png"
    } else if b.starts_with(b"GIF8") {
        "image/gif"
    } else if b.starts_with(b"BM") {
        "image/bmp"
    } else {
        "image/webp"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png() -> Vec<u8> {
        let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
        b.extend((0..600u32).map(|i| (i * 7 % 251) as u8));
        b
    }

    fn wrapped(b64: &str, width: usize) -> String {
        b64.as_bytes()
            .chunks(width)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn base64_photos_are_found_in_every_wrapper() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(png());
        let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(png());
        for text in [
            format!("fresh dump:\n{}\nenjoy the show", wrapped(&b64, 76)),
            format!(
                "fresh dump:\r\n{}\r\nend",
                wrapped(&b64, 64).replace('\n', "\r\n")
            ),
            format!(
                "{{\"photo\": \"{}\", \"n\": 1}}",
                wrapped(&b64, 76).replace('\n', "\\n").replace('/', "\\/")
            ),
            format!("see data:image/png;base64,{b64} ok"),
            format!("one line {b64}"),
            format!("urlsafe {url_safe}"),
        ] {
            let h = base64_images(&text, 1 << 20, 10);
            assert_eq!(h.images.len(), 1, "{}", &text[..60]);
            assert_eq!(h.images[0].bytes, png());
            assert_eq!(h.images[0].mime, "image/png");
        }
    }

    #[test]
    fn prose_and_oversized_blocks_give_no_image() {
        let prose = "the quick brown fox jumps over the lazy dog ".repeat(200);
        assert_eq!(base64_images(&prose, 1 << 20, 10), Hidden::default());
        let not_image = base64::engine::general_purpose::STANDARD.encode(vec![7u8; 3000]);
        assert!(base64_images(&not_image, 1 << 20, 10).images.is_empty());
        let big = base64::engine::general_purpose::STANDARD.encode(vec![0u8; 300_000]);
        let h = base64_images(&format!("{}\nend", wrapped(&big, 76)), 100_000, 10);
        assert_eq!(h.too_large, 1);
        assert!(h.images.is_empty());
    }

    #[test]
    fn a_text_body_gives_text_links_and_images() {
        let onion = "a".repeat(56) + ".onion";
        let body = format!(
            "KX7-4821\tP88213045\nmirror: {onion}/p/1, more at https://paste.test/raw/9.\n\
             pic: (http://img.test/a.JPG) é"
        );
        let base = Url::parse("http://paste.test/raw/1").unwrap();
        let (out, hidden) = extract_text(&body, &base, &ExtractLimits::default());
        assert!(
            out.text.starts_with("KX7-4821 P88213045 mirror:"),
            "{}",
            out.text
        );
        let links: Vec<&str> = out.links.iter().map(Url::as_str).collect();
        assert_eq!(
            links,
            [
                format!("http://{onion}/"),
                "https://paste.test/raw/9".into()
            ]
        );
        assert_eq!(out.images[0].as_str(), "http://img.test/a.JPG");
        assert!(hidden.images.is_empty());
    }
}
