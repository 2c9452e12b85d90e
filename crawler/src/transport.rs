//! Transports: how a request reaches a site.
//!
//! [`Fetcher`] is the seam. Every transport performs one HTTP/1.1 GET, without following
//! redirects (the caller re-checks each hop), with bounded headers and body and a deadline.
//! The HTTP exchange itself ([`http_get`]) runs over any byte stream, so transports differ only
//! in how they open that stream: [`DirectFetcher`] resolves and connects itself after the SSRF
//! check; a Tor transport opens the stream through a circuit instead.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use url::Url;

use crate::guard::is_non_public;
use crate::urls::is_onion;
use crate::FetchError;

/// Bounds on one request.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Whole request, connect to last body byte.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
    /// How hard to try a site that has never answered (see [`crate::health`]).
    pub patience: Patience,
    /// Validators from the last fetch: sent as `If-None-Match` / `If-Modified-Since`, so an
    /// unchanged page costs the site a `304` and no body.
    pub conditional: Option<schema::Validators>,
}

/// How hard to try a site that has never answered yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Patience {
    /// The usual retries.
    #[default]
    Normal,
    /// A seed: an onion service may still be publishing its descriptor, so keep trying on a
    /// backoff schedule for the grace period.
    Seed,
    /// A site only a crawled link vouches for: one attempt, then it is down.
    Probe,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(15),
            max_body_bytes: 5 * 1024 * 1024,
            max_header_bytes: 64 * 1024,
            patience: Patience::Normal,
            conditional: None,
        }
    }
}

/// A response with its whole (bounded) body.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The request headers as sent (kept as evidence with what the response yields).
    pub request_headers: http::HeaderMap,
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The request and response heads of this fetch of `url`, as evidence travels with them.
    pub fn exchange(&self, url: &Url) -> schema::Exchange {
        let pairs = |h: &http::HeaderMap| {
            h.iter()
                .map(|(k, v)| {
                    let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                    (k.as_str().to_string(), v)
                })
                .collect()
        };
        schema::Exchange {
            target: request_target(url),
            request_headers: pairs(&self.request_headers),
            status: self.status,
            response_headers: pairs(&self.headers),
        }
    }
}

/// One GET, no redirects followed.
#[async_trait]
pub trait Fetcher: Send + Sync + 'static {
    async fn get(&self, url: &Url, limits: &Limits) -> Result<RawResponse, FetchError>;

    /// Whether the way out is up now, without fetching anything: the Tor client is ready
    /// for traffic, the SOCKS proxy answers. Readiness asks it every few seconds, so a dead
    /// transport shows even while no request is being fetched. `Err` is
    /// [`FetchError::TransportDown`] saying why.
    async fn probe(&self) -> Result<(), FetchError> {
        Ok(())
    }
}

/// Plain TCP (and TLS) from this machine: for tests and clearnet paste sites.
/// Refuses `.onion` names outright, and non-public addresses unless allowed.
pub struct DirectFetcher {
    allow_private: bool,
    user_agent: String,
    tls: tokio_rustls::TlsConnector,
}

impl DirectFetcher {
    /// A direct transport; `allow_private` lifts the SSRF guard (tests, local sites).
    pub fn new(allow_private: bool, user_agent: &str) -> Result<Self, FetchError> {
        Ok(DirectFetcher {
            allow_private,
            user_agent: user_agent.to_string(),
            tls: tls_connector().map_err(|e| FetchError::Tls(e.to_string()))?,
        })
    }

    async fn resolve(&self, url: &Url, limits: &Limits) -> Result<SocketAddr, FetchError> {
        let port = url.port_or_known_default().ok_or(FetchError::BadUrl)?;
        let addrs: Vec<SocketAddr> = match url.host() {
            Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(ip.into(), port)],
            Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(ip.into(), port)],
            Some(url::Host::Domain(d)) => {
                tokio::time::timeout(limits.connect_timeout, tokio::net::lookup_host((d, port)))
                    .await
                    .map_err(|_| FetchError::Timeout)?
                    .map_err(|e| FetchError::Dns(e.to_string()))?
                    .collect()
            }
            None => return Err(FetchError::BadUrl),
        };
        let first = *addrs
            .first()
            .ok_or_else(|| FetchError::Dns("no address".into()))?;
        // One non-public answer taints the name: a rebinding server mixes them.
        if !self.allow_private && addrs.iter().any(|a| is_non_public(a.ip())) {
            return Err(FetchError::PrivateAddress(first.ip()));
        }
        Ok(first)
    }
}

#[async_trait]
impl Fetcher for DirectFetcher {
    async fn get(&self, url: &Url, limits: &Limits) -> Result<RawResponse, FetchError> {
        if is_onion(url) {
            return Err(FetchError::OnionNeedsTor);
        }
        let work = async {
            let addr = self.resolve(url, limits).await?;
            let tcp =
                tokio::time::timeout(limits.connect_timeout, tokio::net::TcpStream::connect(addr))
                    .await
                    .map_err(|_| FetchError::Timeout)?
                    .map_err(|e| FetchError::Connect(e.to_string()))?;
            let _ = tcp.set_nodelay(true);
            get_over(tcp, &self.tls, url, &self.user_agent, limits).await
        };
        tokio::time::timeout(limits.timeout, work)
            .await
            .map_err(|_| FetchError::Timeout)?
    }
}

/// A TLS connector trusting the web PKI roots (ring provider, TLS 1.2 and 1.3).
pub fn tls_connector() -> Result<tokio_rustls::TlsConnector, rustls::Error> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// The `Host` header for `url`: host, plus the port when it is not the scheme's default.
pub fn host_header(url: &Url) -> String {
    match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    }
}

/// The request target for `url`: path and query.
pub fn request_target(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

/// One GET over an open stream: TLS first (rustls, SNI from the URL's host) when the URL is
/// `https`, then the bounded HTTP/1.1 exchange. Every transport ends here once it has a stream.
pub async fn get_over<S>(
    stream: S,
    tls: &tokio_rustls::TlsConnector,
    url: &Url,
    user_agent: &str,
    limits: &Limits,
) -> Result<RawResponse, FetchError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if url.scheme() != "https" {
        return http_get(stream, url, user_agent, limits).await;
    }
    let tls = tls_wrap(tls, url, stream).await?;
    http_get(tls, url, user_agent, limits).await
}

/// TLS over an open stream to `url`'s host (SNI and certificate name from the host, a
/// trailing dot dropped): for every client in the project that speaks HTTPS.
pub async fn tls_wrap<S>(
    tls: &tokio_rustls::TlsConnector,
    url: &Url,
    stream: S,
) -> Result<tokio_rustls::client::TlsStream<S>, FetchError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // An IPv6 literal is `[::1]` in the URL and must be an IP address for TLS.
    let name = match url.host().ok_or(FetchError::BadUrl)? {
        url::Host::Ipv4(ip) => rustls::pki_types::ServerName::IpAddress(ip.into()),
        url::Host::Ipv6(ip) => rustls::pki_types::ServerName::IpAddress(ip.into()),
        url::Host::Domain(d) => {
            rustls::pki_types::ServerName::try_from(d.trim_end_matches('.').to_string())
                .map_err(|_| FetchError::BadUrl)?
        }
    };
    tls.connect(name, stream)
        .await
        .map_err(|e| FetchError::Tls(e.to_string()))
}

/// A failed exchange: the connection dropping before the response was complete is a failure
/// of the way there (a proxy or circuit that died, a reset), retried like a failed connect;
/// anything else is the site speaking bad HTTP.
fn http_error(e: hyper::Error) -> FetchError {
    let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
    if e.is_incomplete_message() || e.is_closed() || e.is_canceled() || io {
        FetchError::Connect(format!("connection lost mid-response: {e}"))
    } else {
        FetchError::Http(e.to_string())
    }
}

/// Longest `ETag` or `Last-Modified` value kept and sent back.
pub const MAX_VALIDATOR_BYTES: usize = 256;

/// One HTTP/1.1 GET over an established stream, with bounded headers and body.
pub async fn http_get<S>(
    stream: S,
    url: &Url,
    user_agent: &str,
    limits: &Limits,
) -> Result<RawResponse, FetchError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(limits.max_header_bytes.max(8192))
        .handshake::<_, http_body_util::Empty<bytes::Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|e| FetchError::Http(e.to_string()))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = http::Request::get(request_target(url));
    if let Some(v) = &limits.conditional {
        // Values a site sent us earlier: sent back only when they are short and legal.
        let legal = |s: &Option<String>| {
            s.as_deref()
                .filter(|s| s.len() <= MAX_VALIDATOR_BYTES)
                .and_then(|s| http::HeaderValue::from_str(s).ok())
        };
        if let Some(etag) = legal(&v.etag) {
            req = req.header(http::header::IF_NONE_MATCH, etag);
        }
        if let Some(date) = legal(&v.last_modified) {
            req = req.header(http::header::IF_MODIFIED_SINCE, date);
        }
    }
    let req = req
        .header(http::header::HOST, host_header(url))
        .header(http::header::USER_AGENT, user_agent)
        .header(
            http::header::ACCEPT,
            "text/html,application/xhtml+xml,image/*;q=0.9,*/*;q=0.5",
        )
        .header(http::header::ACCEPT_ENCODING, "identity")
        .header(http::header::CONNECTION, "close")
        .body(http_body_util::Empty::new())
        .map_err(|_| FetchError::BadUrl)?;
    let request_headers = req.headers().clone();
    let result = async {
        let resp = sender.send_request(req).await.map_err(http_error)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        if let Some(len) = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        {
            if len > limits.max_body_bytes as u64 {
                return Err(FetchError::BodyTooLarge(limits.max_body_bytes));
            }
        }
        let mut body = resp.into_body();
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(http_error)?;
            if let Ok(data) = frame.into_data() {
                if out.len() + data.len() > limits.max_body_bytes {
                    return Err(FetchError::BodyTooLarge(limits.max_body_bytes));
                }
                out.extend_from_slice(&data);
            }
        }
        Ok(RawResponse {
            request_headers,
            status,
            headers,
            body: out,
        })
    }
    .await;
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// The request head `http_get` sends with `conditional`.
    async fn head_sent(conditional: schema::Validators) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 8192];
            let mut head = Vec::new();
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&buf[..n]);
            }
            s.write_all(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 0\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8_lossy(&head).to_lowercase()
        });
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let url = Url::parse(&format!("http://{addr}/t/1")).unwrap();
        let limits = Limits {
            conditional: Some(conditional),
            ..Limits::default()
        };
        let r = http_get(tcp, &url, "ua", &limits).await.unwrap();
        assert_eq!(r.status, 304);
        server.await.unwrap()
    }

    #[tokio::test]
    async fn a_connection_lost_mid_response_is_a_transport_failure_not_bad_http() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            for reply in [
                &b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial"[..],
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n",
                b"NOT HTTP AT ALL\r\n\r\n",
            ] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await;
                s.write_all(reply).await.unwrap();
                // Dropped: the connection closes before the body is complete.
            }
        });
        let url = Url::parse(&format!("http://{addr}/")).unwrap();
        for expect_connect in [true, true, false] {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let e = http_get(tcp, &url, "ua", &Limits::default())
                .await
                .unwrap_err();
            let is_connect = matches!(e, FetchError::Connect(_));
            assert_eq!(is_connect, expect_connect, "{e:?}");
            assert_eq!(
                crate::health::is_transient(&e),
                expect_connect,
                "retried only when the connection was lost: {e:?}"
            );
        }
    }

    #[tokio::test]
    async fn validators_are_sent_back_only_when_legal() {
        let head = head_sent(schema::Validators {
            etag: Some("\"abc\"".into()),
            last_modified: Some("Sun, 06 Nov 1994 08:49:37 GMT".into()),
            ..Default::default()
        })
        .await;
        assert!(head.contains("if-none-match: \"abc\"\r\n"), "{head}");
        assert!(
            head.contains("if-modified-since: sun, 06 nov 1994"),
            "{head}"
        );
        // A site's header smuggling a line break, or one too long, is not sent back.
        let head = head_sent(schema::Validators {
            etag: Some("\"a\"\r\nx-injected: 1".into()),
            last_modified: Some("x".repeat(MAX_VALIDATOR_BYTES + 1)),
            ..Default::default()
        })
        .await;
        assert!(!head.contains("if-none-match"), "{head}");
        assert!(!head.contains("x-injected"), "{head}");
        assert!(!head.contains("if-modified-since"), "{head}");
    }
}
