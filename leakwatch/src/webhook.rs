//! A minimal HTTP(S) client for delivering alerts to webhooks (SIEMs, chat bridges).
//!
//! Webhook targets are configured by the operator, usually on the internal network, so the
//! crawler's SSRF guard deliberately does not apply here. Each POST is bounded in time and the
//! response body is not read beyond what the status needs.
//!
//! Internal webhooks often sit behind a private CA (`--ca-file` adds its roots to the web
//! PKI's) and may be addressed by an IPv6 literal (`https://[::1]:8443/hook`): the connection
//! and the TLS server name are taken from the parsed host, never from its bracketed text.
//! Webhook URLs carry secrets (tokens in the query, userinfo): [`redact`] is what gets printed.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio_rustls::rustls;
use url::{Host, Url};

const TIMEOUT: Duration = Duration::from_secs(15);

/// What replaces a secret in a printed URL.
const REDACTED: &str = "REDACTED";

/// Posts JSON bodies.
pub struct WebhookClient {
    tls: tokio_rustls::TlsConnector,
}

impl WebhookClient {
    /// A client trusting the web PKI roots, plus the CA certificates of `ca_file` (PEM).
    pub fn new(ca_file: Option<&Path>) -> anyhow::Result<Self> {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(file) = ca_file {
            add_pem_roots(&mut roots, file)?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("failed to set up TLS")?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(WebhookClient {
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
        })
    }

    /// POSTs `body` as `application/json`; returns the response status.
    pub async fn post_json(&self, url: &Url, body: &[u8]) -> Result<u16, String> {
        tokio::time::timeout(TIMEOUT, self.post_inner(url, body))
            .await
            .map_err(|_| "timed out".to_string())?
    }

    async fn post_inner(&self, url: &Url, body: &[u8]) -> Result<u16, String> {
        let host = url.host().ok_or("URL has no host")?;
        let port = url.port_or_known_default().ok_or("URL has no port")?;
        let tcp = match &host {
            Host::Domain(d) => tokio::net::TcpStream::connect((*d, port)).await,
            Host::Ipv4(ip) => tokio::net::TcpStream::connect(SocketAddr::from((*ip, port))).await,
            Host::Ipv6(ip) => tokio::net::TcpStream::connect(SocketAddr::from((*ip, port))).await,
        }
        .map_err(|e| format!("connect: {e}"))?;
        if url.scheme() == "https" {
            let tls = self
                .tls
                .connect(server_name(&host)?, tcp)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            send(tls, url, body).await
        } else {
            send(tcp, url, body).await
        }
    }
}

/// Adds every certificate of the PEM file `file` to `roots`; a file without one is an error.
fn add_pem_roots(roots: &mut rustls::RootCertStore, file: &Path) -> anyhow::Result<()> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(file)
        .with_context(|| format!("cannot read CA file {}", file.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("CA file {} is not valid PEM", file.display()))?;
    if certs.is_empty() {
        anyhow::bail!("CA file {} holds no certificate", file.display());
    }
    for cert in certs {
        roots
            .add(cert)
            .with_context(|| format!("CA file {}: unusable certificate", file.display()))?;
    }
    Ok(())
}

/// The TLS server name of a parsed host: SNI for a name, an IP identity for a literal.
fn server_name(host: &Host<&str>) -> Result<rustls::pki_types::ServerName<'static>, String> {
    use rustls::pki_types::ServerName;
    match host {
        Host::Domain(d) => ServerName::try_from(d.trim_end_matches('.').to_string())
            .map_err(|_| "invalid host name for TLS".to_string()),
        Host::Ipv4(ip) => Ok(ServerName::IpAddress(std::net::IpAddr::V4(*ip).into())),
        Host::Ipv6(ip) => Ok(ServerName::IpAddress(std::net::IpAddr::V6(*ip).into())),
    }
}

/// `url` as it may be printed or logged: scheme, host, port and path kept; userinfo, every
/// query value (or a bare query token) and the fragment replaced with `REDACTED`.
pub fn redact(url: &Url) -> String {
    let mut out = format!("{}://", url.scheme());
    if !url.username().is_empty() || url.password().is_some() {
        out.push_str(REDACTED);
        out.push('@');
    }
    if let Some(host) = url.host_str() {
        out.push_str(host);
    }
    if let Some(port) = url.port() {
        out.push_str(&format!(":{port}"));
    }
    out.push_str(url.path());
    if let Some(query) = url.query() {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) => format!("{k}={REDACTED}"),
                None if pair.is_empty() => String::new(),
                None => REDACTED.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    if url.fragment().is_some() {
        out.push('#');
        out.push_str(REDACTED);
    }
    out
}

async fn send<S>(stream: S, url: &Url, body: &[u8]) -> Result<u16, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = http::Request::post(crawler::transport::request_target(url))
        .header(http::header::HOST, crawler::transport::host_header(url))
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::USER_AGENT, "leakwatch-alerts")
        .body(Full::new(bytes::Bytes::copy_from_slice(body)))
        .map_err(|e| e.to_string())?;
    let result = sender
        .send_request(req)
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string());
    driver.abort();
    result
}

#[cfg(test)]
#[path = "../tests/support/hook_server.rs"]
mod hook_server;

#[cfg(test)]
mod tests {
    use super::hook_server;
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn redact_hides_userinfo_query_values_and_fragment_only() {
        assert_eq!(
            redact(&url(
                "https://bot:s3cret@siem.internal:8443/hook/in?token=abc&x=1#frag"
            )),
            "https://REDACTED@siem.internal:8443/hook/in?token=REDACTED&x=REDACTED#REDACTED"
        );
        assert_eq!(
            redact(&url("https://[::1]:8443/hook?abcdef")),
            "https://[::1]:8443/hook?REDACTED"
        );
        assert_eq!(
            redact(&url("http://siem.internal/hook")),
            "http://siem.internal/hook"
        );
    }

    #[tokio::test]
    async fn posts_to_an_ipv6_literal_host() {
        let server = hook_server::HookServer::start("[::1]:0", None, |_| 204).await;
        let client = WebhookClient::new(None).unwrap();
        let hook = url(&format!("http://[::1]:{}/hook?t=1", server.port()));
        assert_eq!(client.post_json(&hook, b"{}").await, Ok(204));
        let got = server.requests();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].target, "/hook?t=1");
        assert_eq!(got[0].host, format!("[::1]:{}", server.port()));
    }

    #[tokio::test]
    async fn tls_to_a_private_ca_needs_ca_file_and_works_on_ipv6_and_names() {
        let tls = Some(hook_server::test_tls());
        let v6 = hook_server::HookServer::start("[::1]:0", tls.clone(), |_| 200).await;
        let v4 = hook_server::HookServer::start("127.0.0.1:0", tls, |_| 200).await;
        let ca = hook_server::data_file("webhook-ca.pem");
        let trusting = WebhookClient::new(Some(&ca)).unwrap();
        let by_ip = url(&format!("https://[::1]:{}/hook", v6.port()));
        let by_name = url(&format!("https://localhost:{}/hook", v4.port()));
        assert_eq!(trusting.post_json(&by_ip, b"{}").await, Ok(200));
        assert_eq!(trusting.post_json(&by_name, b"{}").await, Ok(200));
        // Without the CA the private certificate is refused.
        let public_only = WebhookClient::new(None).unwrap();
        let err = public_only.post_json(&by_ip, b"{}").await.unwrap_err();
        assert!(err.contains("TLS"), "{err}");
        assert_eq!(v6.requests().len() + v4.requests().len(), 2);
    }

    #[test]
    fn a_ca_file_without_certificates_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = WebhookClient::new(Some(&empty)).err().unwrap().to_string();
        assert!(err.contains("no certificate"), "{err}");
    }
}
