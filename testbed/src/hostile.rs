//! The hostile site: responses built to hurt a careless crawler.
//!
//! Every route here targets one failure mode — unbounded bodies, redirect
//! loops, decompression bombs, broken or mislabelled images, undeclared
//! encodings, infinite link spaces and slowloris-style trickles — so the
//! crawler's limits can be tested against a real socket instead of mocks.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress};
use tokio::sync::mpsc;

use crate::rng::Rng;
use crate::scene;
use crate::transform;

/// Size of the `/big` body.
pub const BIG_BYTES: u64 = 50 * 1024 * 1024;
/// Width and height declared by `/bomb.png`.
pub const BOMB_SIDE: u32 = 30_000;
/// How long `/slow` keeps trickling.
pub const SLOW_SECONDS: u64 = 60;
/// Non-ASCII phrase on `/latin1.html` (served as ISO-8859-1 bytes).
pub const LATIN1_PHRASE: &str = "caf\u{e9} hostile latin phrase";
/// ASCII phrase on `/latin1.html`.
pub const LATIN1_ASCII_PHRASE: &str = "latin one marker";
/// Phrase on `/unicode.html`, whose image names are Cyrillic, CJK and emoji: the page must
/// still be indexed.
pub const UNICODE_PHRASE: &str = "unicode hostile marker";
/// Made-up (valid-checksum) onion addresses linked from `/onions.html`.
pub const FAKE_ONIONS: usize = 2_000;
/// Self-closed divs on `/divflood.html` (the parser opens every one).
pub const DIV_FLOOD: usize = 200_000;
/// Images on `/heavy.html` (not linked from the index): each a distinct, valid JPEG of a few
/// MiB of noise, so crawlers fetch them far faster than one decoder can hash them.
pub const HEAVY_IMAGES: usize = 200;

/// Routes of the hostile site.
pub fn router() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/big", get(big))
        .route("/redirect/{n}", get(redirect))
        .route("/bomb.png", get(bomb))
        .route("/truncated.jpg", get(truncated))
        .route("/notimage.jpg", get(not_image))
        .route("/latin1.html", get(latin1))
        .route("/deep/{n}", get(deep))
        .route("/slow", get(slow))
        .route("/unicode.html", get(unicode))
        .route("/divflood.html", get(div_flood))
        .route("/closers.html", get(closers))
        .route("/onions.html", get(onions))
        .route("/heavy.html", get(heavy_page))
        .route("/heavy/{n}", get(heavy_image))
        .route("/att/{name}", get(attachment))
}

async fn index() -> Response {
    html(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>hostile</title></head><body>\
<h1>hostile</h1><ul>\
<li><a href=\"/big\">big</a></li>\
<li><a href=\"/redirect/0\">redirects</a></li>\
<li><a href=\"/latin1.html\">latin1</a></li>\
<li><a href=\"/deep/0\">deep</a></li>\
<li><a href=\"/slow\">slow</a></li>\
<li><a href=\"/bomb.png\">bomb</a></li>\
<li><a href=\"/unicode.html\">unicode</a></li>\
<li><a href=\"/divflood.html\">div flood</a></li>\
<li><a href=\"/closers.html\">closers</a></li>\
<li><a href=\"/onions.html\">onions</a></li>\
<li><a href=\"/att/bomb.zip\">bomb.zip</a></li>\
<li><a href=\"/att/climb.tar\">climb.tar</a></li>\
<li><a href=\"/att/nest.zip\">nest.zip</a></li>\
<li><a href=\"/att/flood.tar\">flood.tar</a></li>\
</ul>\
<img src=\"/bomb.png\" alt=\"\"><img src=\"/truncated.jpg\" alt=\"\"><img src=\"/notimage.jpg\" alt=\"\">\
</body></html>"
            .to_string(),
    )
}

/// Image names whose fifth byte falls inside a multi-byte character, in every place an
/// image reference can be.
async fn unicode() -> Response {
    let names = [
        "фото.jpg",
        "写真の車.png",
        "a😀b.jpg",
        "abcé.gif",
        "ab€.jpg",
    ];
    let mut body = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>unicode</title></head>\
         <body><p>{UNICODE_PHRASE}</p>"
    );
    for n in names {
        body.push_str(&format!(
            "<img src=\"{n}\"><img srcset=\"{n} 1x, /{n} 2x\">\
             <div style=\"background-image:url('{n}')\"></div>"
        ));
    }
    body.push_str("</body></html>");
    html(body)
}

/// `<div/>` is not self-closing in HTML: every one opens a div, nested.
async fn div_flood() -> Response {
    html(format!(
        "<html><body><p>div flood head</p>{}<p>div flood tail</p></body></html>",
        "<div/>".repeat(DIV_FLOOD)
    ))
}

/// Nesting just under the usual depth bound, then a million end tags that match nothing:
/// each one makes the parser search the whole stack of open elements.
async fn closers() -> Response {
    html(format!(
        "<html><body><p>closers head</p>{}{}</body></html>",
        "<span>".repeat(500),
        "</x>".repeat(1_000_000)
    ))
}

/// Links to [`FAKE_ONIONS`] onion addresses with valid checksums that no service answers on.
async fn onions() -> Response {
    let mut body = String::from("<html><body><p>mirrors</p>");
    for i in 0..FAKE_ONIONS as u32 {
        body.push_str(&format!("<a href=\"http://{}/\">m</a>", fake_onion(i)));
    }
    body.push_str("</body></html>");
    html(body)
}

async fn heavy_page() -> Response {
    let imgs: String = (0..HEAVY_IMAGES)
        .map(|i| format!("<img src=\"/heavy/{i}.jpg\">"))
        .collect();
    html(format!("<html><body><p>heavy</p>{imgs}</body></html>"))
}

/// Image `n` of `/heavy.html`: the same noise JPEG with `n` in a comment segment, so every one
/// has its own bytes (and hash) but costs the same to decode.
async fn heavy_image(Path(n): Path<String>) -> Response {
    let base = tokio::task::spawn_blocking(|| heavy_jpeg().clone())
        .await
        .unwrap_or_default();
    let comment = format!("heavy {n}");
    let len = (comment.len() + 2) as u16;
    let mut bytes = Vec::with_capacity(base.len() + comment.len() + 4);
    bytes.extend_from_slice(&base[..2.min(base.len())]); // SOI
    bytes.extend_from_slice(&[0xff, 0xfe]);
    bytes.extend_from_slice(&len.to_be_bytes());
    bytes.extend_from_slice(comment.as_bytes());
    bytes.extend_from_slice(base.get(2..).unwrap_or_default());
    ([(header::CONTENT_TYPE, "image/jpeg")], bytes).into_response()
}

/// 1400×1400 pixels at quality 95: an 8×8 grid of coloured blocks (structure the matcher
/// can hash) under strong per-pixel noise (bytes JPEG cannot squeeze): a few MiB. Built once,
/// then cached.
fn heavy_jpeg() -> &'static Bytes {
    static HEAVY: OnceLock<Bytes> = OnceLock::new();
    HEAVY.get_or_init(|| {
        const SIDE: u32 = 1400;
        let mut rng = Rng::new(0x4eaf);
        let blocks: Vec<u64> = (0..64).map(|_| rng.next_u64()).collect();
        let img = image::RgbImage::from_fn(SIDE, SIDE, |x, y| {
            let b = blocks[((y * 8 / SIDE) * 8 + x * 8 / SIDE) as usize];
            let n = rng.next_u64();
            let px = |base: u64, noise: u64| {
                ((base & 0xff) as i32 + (noise & 0x7f) as i32 - 64).clamp(0, 255) as u8
            };
            image::Rgb([px(b, n), px(b >> 8, n >> 8), px(b >> 16, n >> 16)])
        });
        Bytes::from(transform::jpeg(&img, 95).bytes)
    })
}

/// A v3 onion address with a valid checksum, made from `i`.
pub fn fake_onion(i: u32) -> String {
    use sha3::Digest;
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut bytes = sha3::Sha3_256::digest(i.to_le_bytes()).to_vec(); // the "public key"
    let mut h = sha3::Sha3_256::new();
    h.update(b".onion checksum");
    h.update(&bytes);
    h.update([3u8]);
    bytes.extend_from_slice(&h.finalize()[..2]);
    bytes.push(3);
    let (mut acc, mut bits, mut out) = (0u64, 0u32, String::new());
    for b in bytes {
        acc = (acc << 8) | b as u64;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    out + ".onion"
}

fn html(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

/// A `Stream` of body chunks fed by a channel, so a background task can pace
/// or bound the body without buffering it.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl futures_core::Stream for ChannelBody {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|c| c.map(Ok))
    }
}

async fn big() -> Response {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let line = "<p>filler filler filler filler filler filler filler filler filler</p>\n";
        let chunk = Bytes::from(line.repeat(65_536 / line.len()));
        let head =
            Bytes::from_static(b"<!DOCTYPE html><html><head><title>big</title></head><body>\n");
        let mut left = BIG_BYTES;
        let mut first = Some(head);
        while left > 0 {
            let mut c = first.take().unwrap_or_else(|| chunk.clone());
            if c.len() as u64 > left {
                c.truncate(left as usize);
            }
            left -= c.len() as u64;
            if tx.send(c).await.is_err() {
                return;
            }
        }
    });
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        Body::from_stream(ChannelBody(rx)),
    )
        .into_response()
}

async fn redirect(Path(n): Path<u64>) -> Response {
    (
        StatusCode::FOUND,
        [(
            header::LOCATION,
            format!("/redirect/{}", n.saturating_add(1)),
        )],
    )
        .into_response()
}

async fn bomb() -> Response {
    let bytes = tokio::task::spawn_blocking(|| bomb_png().clone())
        .await
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "image/png")], bytes).into_response()
}

/// A complete, valid PNG of `BOMB_SIDE`² black RGB pixels: 2.7 GB once
/// inflated, about 2.6 MB on the wire. Built once, then cached.
pub fn bomb_png() -> &'static Bytes {
    static BOMB: OnceLock<Bytes> = OnceLock::new();
    BOMB.get_or_init(build_bomb)
}

fn build_bomb() -> Bytes {
    let row = 1 + 3 * BOMB_SIDE as usize; // filter byte + RGB samples
    let rows_per_block = 10;
    assert_eq!(BOMB_SIDE as usize % rows_per_block, 0);
    // Deflate one block of zero rows with a full flush: the output is
    // byte-aligned and refers to nothing before it, so repeating it yields a
    // valid stream of all-zero rows.
    let zeros = vec![0u8; row * rows_per_block];
    let mut deflate = Compress::new(Compression::best(), false);
    let mut block = Vec::with_capacity(zeros.len() / 500 + 1024);
    deflate
        .compress_vec(&zeros, &mut block, FlushCompress::Full)
        .expect("deflate to memory");
    assert_eq!(
        deflate.total_in() as usize,
        zeros.len(),
        "output buffer too small"
    );
    let total = row as u64 * u64::from(BOMB_SIDE);
    let mut zlib = Vec::with_capacity(block.len() * BOMB_SIDE as usize / rows_per_block + 16);
    zlib.extend_from_slice(&[0x78, 0xda]);
    for _ in 0..BOMB_SIDE as usize / rows_per_block {
        zlib.extend_from_slice(&block);
    }
    // Final empty stored block, then Adler-32 of `total` zero bytes.
    zlib.extend_from_slice(&[0x01, 0x00, 0x00, 0xff, 0xff]);
    let adler = ((total % 65_521) << 16) | 1;
    zlib.extend_from_slice(&(adler as u32).to_be_bytes());

    let mut png = Vec::with_capacity(zlib.len() + 64);
    png.extend_from_slice(b"\x89PNG\r\n\x1a\n");
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&BOMB_SIDE.to_be_bytes());
    ihdr.extend_from_slice(&BOMB_SIDE.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, no interlace
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &zlib);
    chunk(&mut png, b"IEND", &[]);
    Bytes::from(png)
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
}

/// The first half of a real JPEG.
pub fn truncated_jpeg() -> &'static Bytes {
    static JPEG: OnceLock<Bytes> = OnceLock::new();
    JPEG.get_or_init(|| {
        let img = scene::landscape(&mut Rng::new(0x5eed));
        let full = transform::jpeg(&img, 85).bytes;
        Bytes::copy_from_slice(&full[..full.len() / 2])
    })
}

async fn truncated() -> Response {
    let bytes = tokio::task::spawn_blocking(|| truncated_jpeg().clone())
        .await
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "image/jpeg")], bytes).into_response()
}

/// Hostile attachments, one failure mode each: a zip bomb (256 MiB of zeros in a few hundred
/// KiB), a tar whose names climb out of their directory, zips nested three deep, a tar of
/// 2,000 entries.
async fn attachment(Path(name): Path<String>) -> Response {
    static BODIES: OnceLock<Vec<(&'static str, Vec<u8>)>> = OnceLock::new();
    let bodies = BODIES.get_or_init(|| {
        let zeros = vec![0u8; 256 << 20];
        let bomb = crate::archive::zip(&[("scan-0001.jpg", &zeros, true)]);
        let climb = crate::archive::tar(&[("../../../etc/cron.d/evil", b"* * * * * root true\n")]);
        let inner = crate::archive::zip(&[("a.txt", b"deep", false)]);
        let middle = crate::archive::zip(&[("inner.zip", &inner, false)]);
        let nest = crate::archive::zip(&[("middle.zip", &middle, false)]);
        let names: Vec<String> = (0..2_000).map(|i| format!("{i}.txt")).collect();
        let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
        let flood = crate::archive::tar(&entries);
        vec![
            ("bomb.zip", bomb),
            ("climb.tar", climb),
            ("nest.zip", nest),
            ("flood.tar", flood),
        ]
    });
    match bodies.iter().find(|(n, _)| *n == name) {
        Some((_, body)) => (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            body.clone(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn not_image() -> Response {
    (
        [(header::CONTENT_TYPE, "image/jpeg")],
        "<!DOCTYPE html><html><body><p>this is not a picture</p></body></html>",
    )
        .into_response()
}

/// `/latin1.html` body: ISO-8859-1 bytes, no charset anywhere.
pub fn latin1_page() -> Vec<u8> {
    let text = format!(
        "<!DOCTYPE html><html><head><title>Caf\u{e9} cr\u{e8}me</title></head><body>\
<p>{LATIN1_PHRASE}</p><p>{LATIN1_ASCII_PHRASE}</p><p>na\u{ef}ve fa\u{e7}ade \u{e0} la carte</p>\
</body></html>"
    );
    // Every character above is below U+0100, so this is exact ISO-8859-1.
    text.chars().map(|c| c as u32 as u8).collect()
}

async fn latin1() -> Response {
    ([(header::CONTENT_TYPE, "text/html")], latin1_page()).into_response()
}

async fn deep(Path(n): Path<u64>) -> Response {
    let next = n.saturating_add(1);
    html(format!(
        "<!DOCTYPE html><html><head><title>deep {n}</title></head><body>\
<p>level {n}</p><a href=\"/deep/{next}\">deeper</a> <a href=\"{next}\">deeper again</a></body></html>"
    ))
}

async fn slow() -> Response {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        if tx
            .send(Bytes::from_static(b"<!DOCTYPE html><html><body>\n"))
            .await
            .is_err()
        {
            return;
        }
        for i in 0..SLOW_SECONDS {
            ticker.tick().await;
            if tx.send(Bytes::from(format!("<p>{i}</p>\n"))).await.is_err() {
                return;
            }
        }
        let _ = tx.send(Bytes::from_static(b"</body></html>\n")).await;
    });
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        Body::from_stream(ChannelBody(rx)),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_has_raw_e_acute_and_no_charset() {
        let page = latin1_page();
        assert!(page.contains(&0xe9));
        assert!(std::str::from_utf8(&page).is_err());
        let lower = String::from_utf8_lossy(&page).to_lowercase();
        assert!(!lower.contains("charset"));
    }
}
