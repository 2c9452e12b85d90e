//! WARC 1.1 records (ISO 28500) for the exchanges that carried a sighting: a `request` and a
//! `response` record for a fetch, a `resource` record for an image that had no response of
//! its own (found inside a page or an attachment). Each record carries SHA-256 block (and,
//! for responses, payload) digests in base32, and is written as its own gzip member, so a
//! file of records is a standard `.warc.gz`.
//!
//! The body kept is the one the crawler received after HTTP transfer decoding (chunking
//! removed, any content coding left as sent): a `Transfer-Encoding` header is therefore
//! dropped from the recorded response head, and a `Content-Length` the body no longer fits
//! is rewritten, so that the record reads back as the message it describes.

use std::io::Write;

use schema::Exchange;
use sha2::{Digest, Sha256};

/// One WARC record: its named fields and its block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub fields: Vec<(String, String)>,
    pub block: Vec<u8>,
}

/// `sha256:` and the digest of `bytes` in base32, as WARC digests are written.
pub fn digest(bytes: &[u8]) -> String {
    format!(
        "sha256:{}",
        data_encoding::BASE32.encode(&Sha256::digest(bytes))
    )
}

/// A fresh `<urn:uuid:…>` record id (version 4, from the OS's random source; should that
/// fail, from the clock and a counter, which is still unique within the process).
pub fn record_id() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut b = [0u8; 16];
    if crate::random_bytes(&mut b).is_err() {
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let h = Sha256::digest(format!("{t}-{n}-{}", std::process::id()));
        b.copy_from_slice(&h[..16]);
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "<urn:uuid:{}-{}-{}-{}-{}>",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Header values come from the network: no CR or LF may reach a record head.
fn clean(v: &str) -> String {
    v.chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect()
}

/// The request record of `exchange`, a GET of `uri` made at `date`.
pub fn request(uri: &str, date: &str, exchange: &Exchange) -> Record {
    let mut block = format!("GET {} HTTP/1.1\r\n", clean(&exchange.target)).into_bytes();
    for (k, v) in &exchange.request_headers {
        block.extend_from_slice(format!("{}: {}\r\n", clean(k), clean(v)).as_bytes());
    }
    block.extend_from_slice(b"\r\n");
    Record {
        fields: vec![
            ("WARC-Type".into(), "request".into()),
            ("WARC-Record-ID".into(), record_id()),
            ("WARC-Date".into(), date.into()),
            ("WARC-Target-URI".into(), clean(uri)),
            (
                "Content-Type".into(),
                "application/http;msgtype=request".into(),
            ),
            ("WARC-Block-Digest".into(), digest(&block)),
        ],
        block,
    }
}

/// The response record of `exchange` with `body`, concurrent to the request record `request_id`.
pub fn response(
    uri: &str,
    date: &str,
    exchange: &Exchange,
    body: &[u8],
    request_id: &str,
) -> Record {
    let reason = http::StatusCode::from_u16(exchange.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let mut block = format!("HTTP/1.1 {} {reason}\r\n", exchange.status).into_bytes();
    for (k, v) in &exchange.response_headers {
        let name = k.to_ascii_lowercase();
        if name == "transfer-encoding" {
            continue;
        }
        let v = if name == "content-length" {
            body.len().to_string()
        } else {
            clean(v)
        };
        block.extend_from_slice(format!("{}: {v}\r\n", clean(k)).as_bytes());
    }
    block.extend_from_slice(b"\r\n");
    block.extend_from_slice(body);
    Record {
        fields: vec![
            ("WARC-Type".into(), "response".into()),
            ("WARC-Record-ID".into(), record_id()),
            ("WARC-Date".into(), date.into()),
            ("WARC-Target-URI".into(), clean(uri)),
            ("WARC-Concurrent-To".into(), request_id.into()),
            (
                "Content-Type".into(),
                "application/http;msgtype=response".into(),
            ),
            ("WARC-Block-Digest".into(), digest(&block)),
            ("WARC-Payload-Digest".into(), digest(body)),
        ],
        block,
    }
}

/// The extension field of a resource record that names the page or attachment it came in.
pub const CARRIER_FIELD: &str = "WARC-Leakwatch-Carrier";

/// A resource record: `bytes` found at `uri` (a `data:` URL or an attachment member) with no
/// HTTP exchange of their own; `carrier` names the page or attachment they came in.
pub fn resource(
    uri: &str,
    date: &str,
    content_type: &str,
    bytes: &[u8],
    carrier: Option<&str>,
) -> Record {
    let mut fields = vec![
        ("WARC-Type".into(), "resource".into()),
        ("WARC-Record-ID".into(), record_id()),
        ("WARC-Date".into(), date.into()),
        ("WARC-Target-URI".into(), clean(uri)),
        ("Content-Type".into(), clean(content_type)),
        ("WARC-Block-Digest".into(), digest(bytes)),
    ];
    if let Some(c) = carrier {
        // An extension field: WARC's own `WARC-Refers-To-*` fields mean a revisit.
        fields.push((CARRIER_FIELD.into(), clean(c)));
    }
    Record {
        fields,
        block: bytes.to_vec(),
    }
}

impl Record {
    /// The record as WARC/1.1 bytes: version line, fields, `Content-Length`, block, two CRLFs.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.block.len() + 512);
        out.extend_from_slice(b"WARC/1.1\r\n");
        for (k, v) in &self.fields {
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", self.block.len()).as_bytes());
        out.extend_from_slice(&self.block);
        out.extend_from_slice(b"\r\n\r\n");
        out
    }

    /// The record as one gzip member.
    pub fn to_gzip(&self) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        // Writing to a Vec cannot fail.
        let _ = gz.write_all(&self.to_bytes());
        gz.finish().unwrap_or_default()
    }

    /// The value of field `name` (case-insensitive).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The records that back an image alert: the request and response that fetched `img`, or a
/// resource record of its bytes when it came inside a page or an attachment.
pub fn of_image(img: &schema::FetchedImage) -> Vec<Record> {
    let date = warc_date(&img.fetched_at);
    match &img.exchange {
        Some(ex) => exchange_records(&img.url, &date, ex, &img.bytes),
        None => {
            let ct = img
                .content_type
                .as_deref()
                .unwrap_or("application/octet-stream");
            let carrier = embedded_in(&img.url).or(img.page_url.as_deref());
            vec![resource(&img.url, &date, ct, &img.bytes, carrier)]
        }
    }
}

/// The records that back a text alert: the request and response that fetched `page`, or (a
/// message from before responses travelled with pages) a resource record of its text.
pub fn of_page(page: &schema::FetchedPage) -> Vec<Record> {
    let date = warc_date(&page.fetched_at);
    match &page.exchange {
        Some(ex) => exchange_records(&page.url, &date, ex, &page.body),
        None => {
            let text = format!("{}\n\n{}", page.title, page.text);
            let ct = "text/plain; charset=utf-8";
            vec![resource(&page.url, &date, ct, text.as_bytes(), None)]
        }
    }
}

/// The attachment an `ARCHIVE#member` URL came in.
fn embedded_in(url: &str) -> Option<&str> {
    url.split_once('#').map(|(archive, _)| archive)
}

fn exchange_records(uri: &str, date: &str, ex: &Exchange, body: &[u8]) -> Vec<Record> {
    // The request targets the final URL, fragment aside (`ARCHIVE#member` is not fetched).
    let uri = uri.split('#').next().unwrap_or(uri);
    let req = request(uri, date, ex);
    let id = req.field("WARC-Record-ID").unwrap_or_default().to_string();
    let resp = response(uri, date, ex, body, &id);
    vec![req, resp]
}

/// The WARC-Date form of an RFC 3339 time from the pipeline (already `YYYY-MM-DDThh:mm:ssZ`).
pub fn warc_date(rfc3339: &str) -> String {
    match schema::unix_from_rfc3339(rfc3339) {
        Some(secs) => schema::rfc3339_from_unix(secs),
        None => schema::now_rfc3339(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange() -> Exchange {
        Exchange {
            target: "/p?q=1".into(),
            request_headers: vec![("host".into(), "a.onion".into())],
            status: 200,
            response_headers: vec![
                ("content-type".into(), "image/jpeg".into()),
                ("transfer-encoding".into(), "chunked".into()),
                ("x-evil".into(), "a\r\nWARC-Type: forged".into()),
            ],
        }
    }

    #[test]
    fn response_head_drops_chunking_and_keeps_no_injected_line() {
        let req = request("http://a.onion/p?q=1", "2026-01-01T00:00:00Z", &exchange());
        assert!(req
            .block
            .starts_with(b"GET /p?q=1 HTTP/1.1\r\nhost: a.onion\r\n\r\n"));
        let id = req.field("WARC-Record-ID").unwrap().to_string();
        let resp = response(
            "http://a.onion/p?q=1",
            "2026-01-01T00:00:00Z",
            &exchange(),
            b"JPEG",
            &id,
        );
        let text = String::from_utf8_lossy(&resp.block).to_string();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(!text.contains("transfer-encoding"), "{text}");
        assert!(text.contains("x-evil: a  WARC-Type: forged\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nJPEG"));
        assert_eq!(resp.field("WARC-Payload-Digest").unwrap(), digest(b"JPEG"));
        assert_eq!(resp.field("warc-concurrent-to").unwrap(), id);
        let bytes = resp.to_bytes();
        let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&bytes[..head_end]);
        assert_eq!(head.matches("WARC-Type").count(), 1, "{head}");
        assert!(head.contains(&format!("Content-Length: {}", resp.block.len())));
    }

    #[test]
    fn digests_are_base32_sha256_and_ids_are_uuids() {
        // SHA-256 of the empty string.
        assert_eq!(
            digest(b""),
            "sha256:4OYMIQUY7QOBJGX36TEJS35ZEQT24QPEMSNZGTFESWMRW6CSXBKQ===="
        );
        let (a, b) = (record_id(), record_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), "<urn:uuid:>".len() + 36);
        assert_eq!(&a[24..25], "4", "{a}");
    }

    #[test]
    fn gzip_member_reads_back() {
        let r = resource(
            "data:image/png;sha256=ab",
            "2026-01-01T00:00:00Z",
            "image/png",
            b"PNG",
            Some("http://x/"),
        );
        let mut out = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&r.to_gzip()[..]),
            &mut out,
        )
        .unwrap();
        assert_eq!(out, r.to_bytes());
    }
}
