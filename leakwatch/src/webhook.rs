//! A minimal HTTP(S) client for delivering alerts to webhooks (SIEMs, chat bridges).
//!
//! Webhook targets are configured by the operator, usually on the internal network, so the
//! crawler's SSRF guard deliberately does not apply here. Each POST is bounded in time and the
//! response body is not read beyond what the status needs.

use std::time::Duration;

use anyhow::Context;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use url::Url;

const TIMEOUT: Duration = Duration::from_secs(15);

/// Posts JSON bodies.
pub struct WebhookClient {
    tls: tokio_rustls::TlsConnector,
}

impl WebhookClient {
    pub fn new() -> anyhow::Result<Self> {
        Ok(WebhookClient {
            tls: crawler::transport::tls_connector().context("failed to set up TLS")?,
        })
    }

    /// POSTs `body` as `application/json`; returns the response status.
    pub async fn post_json(&self, url: &Url, body: &[u8]) -> Result<u16, String> {
        tokio::time::timeout(TIMEOUT, self.post_inner(url, body))
            .await
            .map_err(|_| "timed out".to_string())?
    }

    async fn post_inner(&self, url: &Url, body: &[u8]) -> Result<u16, String> {
        let host = url.host_str().ok_or("URL has no host")?.to_string();
        let port = url.port_or_known_default().ok_or("URL has no port")?;
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        if url.scheme() == "https" {
            let tls = crawler::transport::tls_wrap(&self.tls, url, tcp)
                .await
                .map_err(|e| e.to_string())?;
            send(tls, url, body).await
        } else {
            send(tcp, url, body).await
        }
    }
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
