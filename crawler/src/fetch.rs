//! Fetching one resource the way a crawler must: redirects followed hop by hop (each hop
//! normalised and sent back through the transport's checks), a cap on hops, and the response
//! classified by what its bytes are rather than what its headers claim.

use url::Url;

use crate::transport::{Fetcher, Limits, RawResponse};
use crate::urls;
use crate::FetchError;

/// What a response turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    Html,
    /// Plain text, CSV, JSON, markdown: a paste's raw view ([`crate::textbody`]).
    Text,
    /// A zip, tar or gzip attachment ([`crate::archive`]).
    Archive,
    Image,
    Other,
    /// `304 Not Modified` to a conditional request: the page is as it was.
    NotModified,
}

/// A successful fetch after redirects.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub final_url: Url,
    pub response: RawResponse,
    pub sniffed: Sniffed,
}

/// GETs `url`, following at most `max_redirects` redirects.
pub async fn fetch(
    fetcher: &dyn Fetcher,
    url: &Url,
    limits: &Limits,
    max_redirects: u32,
) -> Result<Fetched, FetchError> {
    let mut current = url.clone();
    let mut hops = 0;
    loop {
        let resp = fetcher.get(&current, limits).await?;
        if matches!(resp.status, 301 | 302 | 303 | 307 | 308) {
            let location = resp
                .header("location")
                .ok_or(FetchError::Status(resp.status))?;
            let next = urls::normalize(&current, location).ok_or(FetchError::BadRedirect)?;
            hops += 1;
            if hops > max_redirects {
                return Err(FetchError::TooManyRedirects(max_redirects));
            }
            current = next;
            continue;
        }
        if resp.status == 304 && limits.conditional.is_some() {
            return Ok(Fetched {
                final_url: current,
                response: resp,
                sniffed: Sniffed::NotModified,
            });
        }
        if !(200..300).contains(&resp.status) {
            return Err(FetchError::Status(resp.status));
        }
        let sniffed = sniff(resp.header("content-type"), &resp.body);
        return Ok(Fetched {
            final_url: current,
            response: resp,
            sniffed,
        });
    }
}

/// Classifies a body: image magic numbers win over any header; HTML by header or by its start.
pub fn sniff(content_type: Option<&str>, body: &[u8]) -> Sniffed {
    if image_magic(body) {
        return Sniffed::Image;
    }
    if crate::archive::format_of(body).is_some() {
        return Sniffed::Archive;
    }
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    if ct.starts_with("text/html") || ct.starts_with("application/xhtml") {
        return Sniffed::Html;
    }
    let head: Vec<u8> = body
        .iter()
        .skip_while(|b| b.is_ascii_whitespace() || **b == 0xef || **b == 0xbb || **b == 0xbf)
        .take(64)
        .map(|b| b.to_ascii_lowercase())
        .collect();
    let markup = [
        &b"<!doctype html"[..],
        b"<html",
        b"<head",
        b"<body",
        b"<title",
        b"<!--",
    ];
    if markup.iter().any(|m| head.starts_with(m))
        || (ct.is_empty() || ct.starts_with("text/plain")) && head.starts_with(b"<")
    {
        return Sniffed::Html;
    }
    if TEXT_TYPES.iter().any(|t| ct.starts_with(t)) || ct.is_empty() && looks_like_text(body) {
        return Sniffed::Text;
    }
    Sniffed::Other
}

/// Content types read as text bodies.
const TEXT_TYPES: [&str; 8] = [
    "text/plain",
    "text/csv",
    "text/markdown",
    "text/x-markdown",
    "text/tab-separated-values",
    "application/json",
    "application/x-ndjson",
    "application/ld+json",
];

/// A body without a content type whose first KiB is text: no NUL, few control bytes.
fn looks_like_text(body: &[u8]) -> bool {
    let head = &body[..body.len().min(1024)];
    let control = head
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t'))
        .count();
    !head.is_empty() && !head.contains(&0) && control * 100 <= head.len()
}

/// Whether the bytes start like an image format leakwatch decodes.
pub fn image_magic(b: &[u8]) -> bool {
    b.starts_with(&[0xff, 0xd8, 0xff])
        || b.starts_with(b"\x89PNG\r\n\x1a\n")
        || b.starts_with(b"GIF87a")
        || b.starts_with(b"GIF89a")
        || b.starts_with(b"BM")
        || (b.len() >= 12 && &b[0..4] == b"RIFF" && &b[8..12] == b"WEBP")
}

/// Decodes an HTML body to text. Charset from the header, else a `<meta>` in the first 1 KiB,
/// else UTF-8 when valid, else Windows-1252 (what browsers assume). The flag says whether the
/// encoding had to be guessed for bytes that are not UTF-8.
pub fn decode_html(content_type: Option<&str>, body: &[u8]) -> (String, bool) {
    let declared = content_type
        .and_then(charset_param)
        .or_else(|| meta_charset(&body[..body.len().min(1024)]))
        .and_then(|label| encoding_rs::Encoding::for_label(label.as_bytes()));
    if let Some(enc) = declared {
        let (text, _, _) = enc.decode(body);
        return (text.into_owned(), false);
    }
    match std::str::from_utf8(body) {
        Ok(s) => (s.to_string(), false),
        Err(_) => {
            let (text, _, _) = encoding_rs::WINDOWS_1252.decode(body);
            (text.into_owned(), true)
        }
    }
}

fn charset_param(ct: &str) -> Option<String> {
    ct.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("charset")).then(|| v.trim().trim_matches('"').to_string())
    })
}

fn meta_charset(head: &[u8]) -> Option<String> {
    let lower: Vec<u8> = head.iter().map(|b| b.to_ascii_lowercase()).collect();
    let pos = lower.windows(8).position(|w| w == b"charset=")?;
    let rest = &lower[pos + 8..];
    let rest = rest
        .strip_prefix(b"\"")
        .or_else(|| rest.strip_prefix(b"'"))
        .unwrap_or(rest);
    let end = rest
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_'))
        .unwrap_or(rest.len());
    (end > 0).then(|| String::from_utf8_lossy(&rest[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use std::sync::Mutex;

    /// Answers from a fixed map of URL → (status, location), recording what was asked.
    struct FakeSite {
        routes: Vec<(&'static str, u16, Option<&'static str>)>,
        asked: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Fetcher for FakeSite {
        async fn get(&self, url: &Url, _: &Limits) -> Result<RawResponse, FetchError> {
            self.asked.lock().unwrap().push(url.to_string());
            if crate::urls::is_onion(url) {
                return Err(FetchError::OnionNeedsTor);
            }
            let (_, status, location) = self
                .routes
                .iter()
                .find(|(u, _, _)| *u == url.as_str())
                .ok_or(FetchError::Status(404))?;
            let mut headers = http::HeaderMap::new();
            if let Some(l) = location {
                headers.insert("location", l.parse().unwrap());
            }
            headers.insert("content-type", "text/html".parse().unwrap());
            Ok(RawResponse {
                request_headers: http::HeaderMap::new(),
                status: *status,
                headers,
                body: b"<html>ok</html>".to_vec(),
            })
        }
    }

    fn site(routes: Vec<(&'static str, u16, Option<&'static str>)>) -> FakeSite {
        FakeSite {
            routes,
            asked: Mutex::new(Vec::new()),
        }
    }

    #[tokio::test]
    async fn redirects_are_followed_hop_by_hop_and_bounded() {
        let s = site(vec![
            ("http://a.test/", 301, Some("/b#frag")),
            ("http://a.test/b", 302, Some("http://c.test/final")),
            ("http://c.test/final", 200, None),
        ]);
        let u = Url::parse("http://a.test/").unwrap();
        let f = fetch(&s, &u, &Limits::default(), 5).await.unwrap();
        assert_eq!(f.final_url.as_str(), "http://c.test/final");
        assert_eq!(f.sniffed, Sniffed::Html);
        assert_eq!(s.asked.lock().unwrap().len(), 3);
        let e = fetch(&s, &u, &Limits::default(), 1).await.unwrap_err();
        assert!(matches!(e, FetchError::TooManyRedirects(1)));

        let loop_site = site(vec![("http://a.test/", 302, Some("/"))]);
        let e = fetch(&loop_site, &u, &Limits::default(), 5)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), "fetch.too-many-redirects");
        assert_eq!(loop_site.asked.lock().unwrap().len(), 6);
    }

    #[tokio::test]
    async fn every_hop_goes_back_through_the_transport_checks() {
        let s = site(vec![
            (
                "http://a.test/",
                302,
                Some("http://abcdefghijklmnopqrstuvwxyz.onion/"),
            ),
            ("http://a.test/js", 302, Some("javascript:alert(1)")),
            ("http://a.test/none", 302, None),
        ]);
        let e = fetch(
            &s,
            &Url::parse("http://a.test/").unwrap(),
            &Limits::default(),
            5,
        )
        .await;
        assert_eq!(e.unwrap_err().kind(), "fetch.onion-needs-tor");
        let e = fetch(
            &s,
            &Url::parse("http://a.test/js").unwrap(),
            &Limits::default(),
            5,
        )
        .await;
        assert_eq!(e.unwrap_err().kind(), "fetch.bad-redirect");
        let e = fetch(
            &s,
            &Url::parse("http://a.test/none").unwrap(),
            &Limits::default(),
            5,
        )
        .await;
        assert_eq!(e.unwrap_err().kind(), "fetch.status-3xx");
    }

    #[test]
    fn sniffing() {
        assert_eq!(sniff(Some("image/jpeg"), b"<html>"), Sniffed::Html);
        assert_eq!(
            sniff(Some("text/html"), b"\x89PNG\r\n\x1a\nxxxx"),
            Sniffed::Image
        );
        assert_eq!(sniff(None, b"  <!DOCTYPE html><p>"), Sniffed::Html);
        assert_eq!(sniff(Some("application/pdf"), b"%PDF-1.4"), Sniffed::Other);
        assert_eq!(
            sniff(Some("text/plain; charset=utf-8"), b"KX7-4821"),
            Sniffed::Text
        );
        assert_eq!(sniff(Some("Application/JSON"), b"{}"), Sniffed::Text);
        assert_eq!(sniff(None, b"plates:\nKX7-4821\n"), Sniffed::Text);
        assert_eq!(sniff(None, b"\0\x01\x02binary"), Sniffed::Other);
        assert_eq!(
            sniff(Some("application/zip"), b"PK\x03\x04...."),
            Sniffed::Archive
        );
        assert_eq!(sniff(None, &[0x1f, 0x8b, 8, 0]), Sniffed::Archive);
        assert_eq!(
            sniff(Some("application/octet-stream"), b"RIFF\0\0\0\0WEBPVP8 "),
            Sniffed::Image
        );
    }

    #[test]
    fn charsets() {
        let latin1 = b"<html><body>caf\xe9</body></html>";
        let (text, guessed) = decode_html(None, latin1);
        assert!(text.contains("caf\u{e9}") && guessed);
        let (text, guessed) = decode_html(Some("text/html; charset=ISO-8859-1"), latin1);
        assert!(text.contains("caf\u{e9}") && !guessed);
        let meta = b"<meta charset=\"koi8-r\"><p>\xc1";
        assert!(decode_html(None, meta).0.contains('\u{430}'));
        assert_eq!(
            decode_html(None, "h\u{e9}".as_bytes()),
            ("h\u{e9}".to_string(), false)
        );
    }
}
