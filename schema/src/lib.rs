//! The messages that leakwatch's roles send each other, and the names of the exchanges and
//! queues that carry them.
//!
//! Roles (frontier, crawler, matcher, indexer) never call each other: they meet here. Every
//! message is a serde struct wrapped in an [`Envelope`] with a schema version, so a process
//! running an older build rejects a message it cannot understand instead of misreading it.
//! Binary payloads (image bytes) travel as base64 so the wire format stays plain JSON that any
//! third-party consumer of the alert exchange can read.
//!
//! This crate has no async runtime and no broker client: it is shared by every role and by
//! external tooling.

pub mod names;

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Version of the wire format. Bump it when a message changes incompatibly.
pub const SCHEMA_VERSION: u32 = 1;

/// Errors decoding a message from the bus.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed message: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("unsupported schema version {found} (this build speaks {SCHEMA_VERSION})")]
    Version { found: u32 },
}

/// A message as it travels: a version tag and the body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub v: u32,
    #[serde(flatten)]
    pub body: T,
}

/// A message that can travel on the bus.
pub trait Message: Serialize + DeserializeOwned {
    /// Encodes with the current schema version.
    fn encode(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Out<'a, T: Serialize> {
            v: u32,
            #[serde(flatten)]
            body: &'a T,
        }
        // Serialising plain structs to a Vec cannot fail.
        serde_json::to_vec(&Out {
            v: SCHEMA_VERSION,
            body: self,
        })
        .unwrap_or_default()
    }

    /// Decodes and checks the schema version.
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        #[derive(Deserialize)]
        struct Version {
            v: u32,
        }
        let version: Version = serde_json::from_slice(bytes)?;
        if version.v != SCHEMA_VERSION {
            return Err(DecodeError::Version { found: version.v });
        }
        let envelope: Envelope<Self> = serde_json::from_slice(bytes)?;
        Ok(envelope.body)
    }
}

/// What a URL is expected to hold; decides how the crawler treats the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ResourceKind {
    #[default]
    Page,
    Image,
}

/// The frontier asks a crawler to fetch one URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CrawlRequest {
    pub url: String,
    pub kind: ResourceKind,
    /// Link hops from a seed; 0 for a seed.
    pub depth: u32,
    /// The page that linked here (for images, the page that embeds them).
    pub referrer: Option<String>,
    /// A scheduled revisit of a page fetched before: what it looked like then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revisit: Option<Validators>,
    /// When the frontier first saw a link to this URL; for an image, to the page that embeds
    /// it (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listed_at: Option<String>,
    /// For an image: when the page that embeds it was fetched (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_fetched_at: Option<String>,
}
impl Message for CrawlRequest {}

/// What tells whether a page changed since the last fetch: the site's own validators, sent
/// back as a conditional request, and the digest of what was extracted from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Validators {
    /// `ETag` of the last response (sent back as `If-None-Match`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// `Last-Modified` of the last response (sent back as `If-Modified-Since`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// Hex digest of the extracted title, text, links and images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Hex digest of the links and images alone: a page whose links keep changing is an entry
    /// page (an index, a board, a "latest" listing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<String>,
    /// The page's inline (`data:`) images, as comma-separated 16-hex-digit prefixes of their
    /// sha256: those already matched are not sent to the matchers again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<String>,
}

/// How fetching a page went, as the crawler reports it to the frontier's schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum PageOutcome {
    /// Fetched, and new or changed: the page was published, its links are in the report.
    #[default]
    Changed,
    /// Fetched (or answered 304) and the same as last time: nothing was published.
    Unchanged,
    /// The site answered, but not with a page (an error status, a bad body).
    Refused,
    /// The site did not answer (down, unreachable, timed out).
    Unreachable,
}

/// What a crawler found on a page, sent back to the frontier for dedupe and scheduling. Every
/// page request gets one, whatever its outcome; only a changed page carries links.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Discovered {
    /// The page's final URL (after redirects).
    pub from: String,
    /// Depth of `from`; discovered links are one deeper.
    pub depth: u32,
    pub links: Vec<String>,
    pub images: Vec<String>,
    /// The URL the request named, when it differs from `from` or the fetch failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<String>,
    #[serde(default)]
    pub outcome: PageOutcome,
    /// When the page was fetched (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetched_at: Option<String>,
    /// What to compare the next fetch with.
    #[serde(default)]
    pub validators: Validators,
    /// Links to other onion sites the page announces as its mirror or new address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<String>,
    /// When the frontier first saw a link to the page (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listed_at: Option<String>,
}
impl Message for Discovered {}

impl Discovered {
    /// The URL the frontier scheduled: the requested one, or `from` when there was no redirect.
    pub fn scheduled_url(&self) -> &str {
        self.requested.as_deref().unwrap_or(&self.from)
    }
}

/// A fetched and extracted HTML page. Fanned out to the indexer and the matcher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FetchedPage {
    /// Final URL after redirects.
    pub url: String,
    pub host: String,
    pub title: String,
    /// Visible text (no script or style), whitespace-collapsed.
    pub text: String,
    pub sha256: String,
    pub fetched_at: String,
    pub depth: u32,
    pub links: Vec<String>,
    pub images: Vec<String>,
    /// When the frontier first saw a link to this page (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listed_at: Option<String>,
    /// The HTTP exchange that brought the page, for the evidence an alert keeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange: Option<Exchange>,
    /// The response body as received (before decoding and extraction), for the same
    /// evidence. Never stored by the indexer.
    #[serde(default, with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub body: Vec<u8>,
}
impl Message for FetchedPage {}

/// The HTTP request and response head of a fetch, kept with what it yielded so that an alert
/// can be backed by the response that carried it (a WARC request and response record).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    /// The request target as sent (`/path?query`); the host is in `request_headers`.
    pub target: String,
    /// Request headers as sent, in order.
    pub request_headers: Vec<(String, String)>,
    pub status: u16,
    /// Response headers as received, in order (values not valid UTF-8 are lossily decoded).
    pub response_headers: Vec<(String, String)>,
}

/// A fetched image, bytes included, for the matcher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FetchedImage {
    pub url: String,
    pub page_url: Option<String>,
    pub content_type: Option<String>,
    pub sha256: String,
    pub fetched_at: String,
    /// When the page that embeds the image was fetched (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_fetched_at: Option<String>,
    /// When the frontier first saw a link to that page (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listed_at: Option<String>,
    /// The HTTP exchange that brought the image; `None` for an image found inside a page
    /// (`data:`, base64) or an attachment, whose bytes are all the evidence there is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange: Option<Exchange>,
    #[serde(with = "b64")]
    pub bytes: Vec<u8>,
}
impl Message for FetchedImage {}

/// One perceptual hash of an image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageHash {
    pub algorithm: String,
    pub hex: String,
}

/// The matcher's view of an image, for the indexer to keep (retro-hunt later searches these).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageVerdict {
    pub url: String,
    pub page_url: Option<String>,
    pub sha256: String,
    pub fetched_at: String,
    pub width: u32,
    pub height: u32,
    pub hashes: Vec<ImageHash>,
    /// Labels of the fingerprints it matched, if any.
    pub matched: Vec<String>,
}
impl Message for ImageVerdict {}

/// What kind of sighting raised an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertKind {
    /// A found image is a copy of one stolen photo (`label`).
    Image,
    /// A page holds a watched identifier (`label`).
    Text,
    /// A found image is a frame of a stolen photo's camera but none of the stolen photos:
    /// probably more of the breach. `label` names the camera's cluster, `context` the nearest
    /// stolen photos.
    Scene,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Image => "image",
            AlertKind::Text => "text",
            AlertKind::Scene => "scene",
        }
    }
}

/// A sighting of stolen data. Published on the `alerts` topic exchange with routing key
/// `alert.<kind>`; this struct (plus `v`) is the documented public alert schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Content hash of (kind, label, url): re-running a crawl yields the same id.
    pub id: String,
    pub kind: AlertKind,
    /// The image's own URL for an image alert, the page's for a text alert.
    pub url: String,
    pub page_url: Option<String>,
    /// The fingerprint's label (image) or watchlist entry's label (text).
    pub label: String,
    /// Matcher decision score: lower is more similar; 0 for an exact text hit.
    pub distance: u32,
    pub algorithm: String,
    pub detected_at: String,
    /// When the page showing the sighting was fetched (RFC 3339): `detected_at` minus this is
    /// the pipeline's detection latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_fetched_at: Option<String>,
    /// When the frontier first saw a link to that page: `page_fetched_at` minus this is how
    /// long a listed page waited for its fetch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listed_at: Option<String>,
    /// For a scene alert, the labels of the nearest stolen photos (nearest first): context,
    /// not a claim that the image is any of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<String>,
    /// For a text alert: what kind of identifier was seen, where, and a masked form of it;
    /// never the value itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<IdentifierSighting>,
}
impl Message for Alert {}

/// Where a watched identifier was seen, without saying what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentifierSighting {
    /// `plate`, `document`, `email`, `name` or `term`.
    pub kind: String,
    /// Most of the value hidden: `KX*****21`.
    pub masked: String,
    /// `title` or `text`.
    pub field: String,
    /// Character offset of the first sighting in that field.
    pub offset: usize,
}

impl Alert {
    /// The stable id of an alert: sha256 over kind, label and url.
    pub fn id_for(kind: AlertKind, label: &str, url: &str) -> String {
        let mut h = Sha256::new();
        h.update(kind.as_str().as_bytes());
        h.update([0]);
        h.update(label.as_bytes());
        h.update([0]);
        h.update(url.as_bytes());
        hex::encode(&h.finalize()[..16])
    }

    /// Routing key on the alerts exchange.
    pub fn routing_key(&self) -> String {
        format!("alert.{}", self.kind.as_str())
    }
}

/// Hex sha256 of some bytes; content ids across leakwatch use it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// RFC 3339 UTC timestamp of now, second precision, without pulling a date crate into every role.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339_from_unix(secs)
}

/// Formats seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339_from_unix(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (proleptic Gregorian), valid for the whole u64 range we care about.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Seconds since the Unix epoch of a `YYYY-MM-DDTHH:MM:SSZ` timestamp (the form
/// [`rfc3339_from_unix`] writes); `None` for anything else.
pub fn unix_from_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days-from-civil, the inverse of the conversion in `rfc3339_from_unix`.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

/// Serde adapter: `Vec<u8>` as standard base64.
mod b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_bytes_and_version() {
        let img = FetchedImage {
            url: "http://a/b.png".into(),
            page_url: Some("http://a/".into()),
            content_type: Some("image/png".into()),
            sha256: sha256_hex(b"x"),
            fetched_at: now_rfc3339(),
            page_fetched_at: None,
            listed_at: None,
            exchange: None,
            bytes: vec![0, 1, 2, 255],
        };
        let wire = img.encode();
        let text = String::from_utf8(wire.clone()).unwrap();
        assert!(text.contains("\"v\":1"), "{text}");
        assert_eq!(FetchedImage::decode(&wire).unwrap(), img);
    }

    #[test]
    fn other_version_is_refused() {
        let err =
            CrawlRequest::decode(br#"{"v":99,"url":"x","kind":"page","depth":0,"referrer":null}"#)
                .unwrap_err();
        assert!(matches!(err, DecodeError::Version { found: 99 }));
        assert!(CrawlRequest::decode(b"\xff garbage").is_err());
    }

    #[test]
    fn alert_ids_are_stable_and_distinct() {
        let a = Alert::id_for(AlertKind::Image, "stolen-1", "http://x/1.jpg");
        assert_eq!(
            a,
            Alert::id_for(AlertKind::Image, "stolen-1", "http://x/1.jpg")
        );
        assert_ne!(
            a,
            Alert::id_for(AlertKind::Text, "stolen-1", "http://x/1.jpg")
        );
        assert_ne!(
            a,
            Alert::id_for(AlertKind::Image, "stolen-1", "http://x/2.jpg")
        );
    }

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339_from_unix(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_from_unix(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_from_unix(1_795_000_000), "2026-11-18T11:06:40Z");
    }

    #[test]
    fn rfc3339_parses_back() {
        for t in [0, 951_782_400, 1_795_000_000, 4_102_444_799] {
            assert_eq!(unix_from_rfc3339(&rfc3339_from_unix(t)), Some(t));
        }
        for bad in [
            "",
            "2026-11-18",
            "2026-13-01T00:00:00Z",
            "2026-11-18T11:06:40+01:00",
            "20é6-11-18T11:06:40Z",
        ] {
            assert_eq!(unix_from_rfc3339(bad), None, "{bad}");
        }
    }
}
